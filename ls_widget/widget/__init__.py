"""The Jupyter layer: the live landscape view, its controls and panels (anywidget, ipywidgets).

Where each feature lives:

- view.py: `LandscapeWidget`, the anywidget model and its synced traits;
- worker.py: the background thread streaming each generation (replay, cross-sections);
- stream.py: one generation: its request, values, tile batches and cross-sections;
- protocol.py: every trait payload and message (declared in messages.py), built and validated;
- explorer.py: `explore()` and `Explorer`, which compose the parts below;
- compare.py: `Compare` (what `lw.compare` returns), 2–4 models side by side, one set of
  controls;
- compare_view.py: `CompareWidget`, the linked panels (one `LandscapeWidget` per model);
- scale.py: the colour scale the panels of a comparison share;
- paths.py: a training trajectory drawn over the plane of its principal directions;
- bank.py: the direction bank (random pairs, Hessian eigenvectors scaled to its norm);
- scope.py: which parameters the explorer moves (`params=`) and the labels that say so;
- param_control.py: the "parameters" control (trainable | all | custom globs);
- controls.py: axis controls (bank dropdowns, mix, span and points sliders) and drawing ones;
- hessian_job.py: the background Hessian computation and its panel wiring;
- panels.py: the bqplot Hessian panel;
- shapes_toggle.py: the explorer's "shapes" toggle, building the panel on first use;
- shapes_panel.py: the "shapes" panel (kinds of the surface and cross-sections, a gallery of
  shaped curves, the mining row; Xu et al. 2024);
- shapes_job.py: its background work (labels, gallery curves, mining), shapes_control.py:
  its wiring to the bank, the axes and the view;
- snapshot.py: the picture a saved notebook keeps (a PNG output beside the view, updated by
  display id);
- export.py: the standalone HTML page;
- faults.py: how faults in background threads are shown;
- tree.py: closing a composite widget and every widget it holds.
"""

from .compare import Compare
from .compare_view import CompareWidget
from .explorer import Explorer, explore
from .view import LandscapeWidget

__all__ = ["Compare", "CompareWidget", "Explorer", "LandscapeWidget", "explore"]
