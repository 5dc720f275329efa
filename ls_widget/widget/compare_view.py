"""CompareWidget: the surfaces of 2–4 models side by side, on one colour scale.

Each model's panel is a `LandscapeWidget` of its own (its worker streams that model's tiles,
answers its picks and keeps its last surface, as in `explore`); the panels are synced to the
frontend as widget references but never displayed by themselves. The compare view (js/src/
compare.ts) draws them side by side and links them:

- one plane layout: `set_view` re-slices every panel at once (the same span and grid), each
  on its own model's directions; every call starts a new generation on every panel and the
  old streams are abandoned at their next tile boundary;
- one colour scale and levels: the `scale` trait, the range of the drawn metric over every
  panel's values known so far (`SharedScale`), updated as their tiles are sent;
- one probe: hovering a panel shows the same (α, β) on all of them (frontend only);
- linked cross-sections: a click ("pick" on this widget) asks every panel for the 1D
  sections through that point.

Drawing settings (metric, log scale, colours, isolines) are this widget's traits, passed on
to every panel.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

import anywidget
import traitlets as t
from ipywidgets import widget_serialization

from ..directions import Direction
from ..engine.landscape import Landscape
from ..engine.sampling import Grid
from . import protocol
from .scale import SharedScale
from .view import LandscapeWidget, bundle

_DRAWING = ("metric", "log_scale", "colormap", "n_levels")

PanelSpec = tuple[str, Landscape, Direction, Direction]
"""A panel: the model's name, its landscape, and its plane's directions d1, d2 (an
`lw.compare.Panel`)."""


class CompareWidget(anywidget.AnyWidget):
    """Panels of several models' surfaces side by side, linked (see the module docstring).

    Args:
        panels: one `PanelSpec` per model: (name, landscape, d1, d2).
        span: half-width s of the view, (−s, s) on both axes, or as `lw.Grid.plane`.
        n: points per axis (or (nx, ny)).
        max_points: grids of more points are refused with ``lw.JobTooLarge``.
        force: compute grids of any size.
        **traits: initial drawing settings (metric, log_scale, colormap, n_levels).

    Attributes:
        views: name → the panel's `LandscapeWidget`.
    """

    _esm = bundle("compare.js")
    _css = bundle("compare.css")

    panels = t.List(t.Instance(LandscapeWidget)).tag(sync=True, **widget_serialization)
    """The panels' own widgets, in display order (references: the frontend resolves them)."""

    names = t.List(t.Unicode()).tag(sync=True)
    """The panels' titles (the models' names), in display order."""

    metric_names = t.List(t.Unicode()).tag(sync=True)
    """Metrics computed at every point, "loss" first (the same on every panel)."""

    metric = t.Unicode("loss").tag(sync=True)
    """The metric drawn on every panel."""

    log_scale = t.Bool(False).tag(sync=True)
    """Colour scale and isolines on a log scale."""

    colormap = t.Unicode("viridis").tag(sync=True)
    """Name of the colormap (viridis, magma, inferno, plasma, cividis, turbo)."""

    n_levels = t.Int(12).tag(sync=True)
    """Number of isolines (the same levels on every panel)."""

    scale = t.Dict().tag(sync=True)
    """The shared colour scale, a `protocol.ColorRange` ({} while nothing is known)."""

    def __init__(
        self,
        panels: Sequence[PanelSpec],
        *,
        span: Any = 1.0,
        n: int | Sequence[int] = 41,
        max_points: int | None = None,
        force: bool = False,
        **traits: Any,
    ) -> None:
        self.views: dict[str, LandscapeWidget] = {}
        self._directions = {name: (d1, d2) for name, _, d1, d2 in panels}
        self._lock = threading.RLock()  # one re-slice (or rescale) at a time
        # anywidget's hot-reload hook would keep every instance alive (see LandscapeWidget).
        for key in ("_esm", "_css"):
            self.__dict__[key] = str(getattr(type(self), key))
        try:
            for name, land, d1, d2 in panels:  # each view checks the grid, starts its worker
                self.views[name] = LandscapeWidget(
                    land, d1, d2, span=span, n=n, max_points=max_points, force=force, **traits,
                )
            first = panels[0][1]
            self._scale = SharedScale(len(panels), first.metric_names, self._set_scale)
            super().__init__(panels=list(self.views.values()), names=list(self.views),
                             metric_names=list(first.metric_names), **traits)
            for name in _DRAWING:  # the panels draw as this view says
                for view in self.views.values():
                    t.dlink((self, name), (view, name))
            self.observe(lambda _: self._rescale(), names=["metric", "log_scale"])
            for i, view in enumerate(self.views.values()):
                view.observe(lambda change, i=i: self._progress(i, change["new"]),
                             names="status")
            self.on_msg(self._on_frontend_msg)
            self._rescale()  # what the panels knew before they were observed
        except BaseException:
            self.close()
            raise

    # ----------------------------------------------------------------- views
    @property
    def generation(self) -> int:
        """The generation every panel shows (they move together)."""
        gens = {v.generation for v in self.views.values()}
        if len(gens) != 1:  # set_view moves them all under one lock: a broken invariant
            raise RuntimeError(f"the panels are out of step: generations {sorted(gens)}")
        return gens.pop()

    @property
    def landscapes(self) -> dict[str, Landscape]:
        """The panels' landscapes: name → `lw.Landscape`."""
        return {name: v.landscape for name, v in self.views.items()}

    def set_view(self, span: Any = 1.0, n: int | Sequence[int] = 41) -> int:
        """Show every panel on the grid of `span` and `n` (as `lw.Grid.plane`), each on its own
        directions: a new generation on all of them, their old streams abandoned. A refused
        grid (``lw.JobTooLarge``) raises before any panel changes. Returns the generation."""
        with self._lock:
            views = list(self.views.values())
            # The refusal depends on the point count alone, the same for every panel: the
            # first decides before anything changes.
            views[0].landscape.check_job(
                Grid.plane(span, n).size, max_points=views[0].max_points, force=views[0].force,
            )
            gen = self.generation + 1
            self._scale.reset(gen, self.metric, self.log_scale)
            for name, view in self.views.items():
                d1, d2 = self._directions[name]
                view.set_view(d1, d2, span=span, n=n)
            return self.generation

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every panel's current view is complete (or failed); True if they all
        finished within `timeout` seconds (each panel waits at most that long)."""
        return all(view.wait(timeout) for view in self.views.values())

    def close(self) -> None:
        """Stop every panel's worker (joined) and close the panels and this widget."""
        for view in self.views.values():
            view.close()
        super().close()
        layout = self._trait_values.get("layout")
        if layout is not None:
            layout.close()

    # ----------------------------------------------------------------- the shared scale
    def _set_scale(self, value: Mapping[str, Any]) -> None:
        self.scale = dict(value)

    def _rescale(self) -> None:
        """Recompute the shared scale from what every panel knows (a new metric or scale)."""
        with self._lock:
            gen = self.generation
            self._scale.reset(gen, self.metric, self.log_scale)
            for i, view in enumerate(self.views.values()):
                self._scale.update(i, gen, view.known(gen))

    def _progress(self, panel: int, status: Mapping[str, Any]) -> None:
        """A panel reported progress (from its worker's thread, after sending its tiles)."""
        if status.get("state") in ("computing", "done"):
            gen = int(status.get("gen", -1))
            view = list(self.views.values())[panel]
            self._scale.update(panel, gen, view.known(gen))

    # ----------------------------------------------------------------- frontend
    def _on_frontend_msg(self, _: Any, content: Any, buffers: list[bytes]) -> None:
        msg = protocol.parse_frontend(content, buffers)  # None (and a warning) if malformed
        if msg is not None and msg["type"] == "pick":
            for view in self.views.values():  # linked: the sections at one (α, β) on all
                view.pick(msg["x"], msg["y"])
