"""The Jupyter layer: the live landscape view, its controls and panels (anywidget, ipywidgets).

Where each feature lives:

- view.py: `LandscapeWidget`, the anywidget model and its synced traits;
- worker.py: the background thread streaming each generation (replay, cross-sections);
- stream.py: one generation: its request, values, tile batches and cross-sections;
- protocol.py: every trait payload and message, as TypedDicts, built and validated there;
- explorer.py: `explore()` and `Explorer`, which compose the parts below;
- bank.py: the direction bank (random pairs, Hessian eigenvectors scaled to its norm);
- scope.py: which parameters the explorer moves (`params=`) and the labels that say so;
- param_control.py: the "parameters" control (trainable | all | custom globs);
- controls.py: axis controls (bank dropdowns, mix, span and points sliders) and drawing ones;
- hessian_job.py: the background Hessian computation and its panel wiring;
- panels.py: the bqplot Hessian panel;
- export.py: the standalone HTML page;
- faults.py: how faults in background threads are shown.
"""

from .explorer import Explorer, explore
from .view import LandscapeWidget

__all__ = ["Explorer", "LandscapeWidget", "explore"]
