"""Compare: 2–4 models' loss surfaces side by side, live, on one colour scale.

`Compare` (what `lw.compare` returns) is the `CompareWidget` (compare_view.py: one panel per
model, linked) with one set of controls for all panels: span and points re-slice every panel
at once, metric, colours, isolines and log scale redraw them all. Its `surfaces`, `compute()`
and `figure()` give the results without a browser.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets as W

from ..figures.compare import plot_compare
from ..results.records import Surface
from .compare_view import CompareWidget, PanelSpec
from .controls import DrawControls, check_view_settings, points_slider, span_slider
from .tree import close_tree


class Compare(W.VBox):
    """The compare view and its controls: one span and points slider, metric, colours,
    isolines and log scale for every panel (built by `lw.compare`).

    Construction returns once every panel's first tile is computed; a failure before (a model
    or loss that cannot be evaluated, a refused grid) raises there, with every thread stopped
    and every widget closed.

    Attributes:
        view: the `CompareWidget` (panels side by side).
        span_slider: half-width of the view, for every panel.
        points_slider: points per axis, for every panel.
        metric_select: the metric drawn.
        log_checkbox: log colour scale.
        colormap_select: the colormap.
        levels_slider: number of isolines.
    """

    def __init__(
        self,
        panels: Sequence[PanelSpec],
        *,
        span: float = 1.0,
        n: int = 41,
        metric: str | None = None,
        log: bool = False,
        colormap: str = "viridis",
        n_levels: int = 12,
        max_points: int | None = None,
        force: bool = False,
    ) -> None:
        metrics = list(panels[0][1].metric_names)
        metric = metric or metrics[0]  # "loss", or "train/loss" for named sets
        check_view_settings(metrics, metric, span, n, colormap, n_levels,
                            widget="lw.compare_surfaces")
        try:
            self.span_slider = span_slider(span)
            self.points_slider = points_slider(n, None if force else max_points)
            draw = DrawControls(metrics, metric=metric, log=log, colormap=colormap,
                                n_levels=n_levels)
            self.metric_select, self.log_checkbox = draw.metric, draw.log
            self.colormap_select, self.levels_slider = draw.colormap, draw.levels
            self.view = CompareWidget(
                panels, span=self.span_slider.value, n=self.points_slider.value,
                max_points=max_points, force=force, metric=metric, log_scale=log,
                colormap=colormap, n_levels=n_levels,
            )
            draw.link(self.view)
            self.span_slider.observe(self._resliced, names="value")
            self.points_slider.observe(self._resliced, names="value")
            super().__init__([self.view, W.VBox([
                W.HBox([self.span_slider, self.points_slider]),
                W.HBox([self.metric_select, self.colormap_select, self.levels_slider,
                        self.log_checkbox]),
            ])])
            self.add_class("lsw-compare")
            for view in self.view.views.values():  # a model that cannot be evaluated fails
                error = view._first_tile()  # here, leaving nothing running
                if error is not None:
                    raise error
        except BaseException:
            self.close()
            raise

    def _resliced(self, change: Mapping[str, Any]) -> None:
        """A slider moved: every panel shows the new grid. A refused grid puts the slider
        back and raises (shown under the cell)."""
        try:
            self.view.set_view(span=self.span_slider.value, n=self.points_slider.value)
        except BaseException:
            owner = change["owner"]
            owner.unobserve(self._resliced, names="value")
            try:
                owner.value = change["old"]
            finally:
                owner.observe(self._resliced, names="value")
            raise

    # ----------------------------------------------------------------- results
    @property
    def names(self) -> list[str]:
        """The models' names, in panel order."""
        return list(self.view.views)

    @property
    def surfaces(self) -> dict[str, Surface]:
        """The `lw.Surface` of each panel whose current view is complete, by name (all of
        them once `compute()` or `wait()` returned)."""
        out = {}
        for name, view in self.view.views.items():
            surf = view.surface_record
            if surf is not None and view.surface_info.get("gen") == view.generation:
                out[name] = surf
        return out

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every panel's current view is complete (or failed)."""
        return self.view.wait(timeout)

    def compute(self, timeout: float | None = None) -> dict[str, Surface]:
        """Wait for every panel and return name → `lw.Surface`; a panel whose model or loss
        failed raises a RuntimeError naming it and the error."""
        if not self.wait(timeout):
            raise TimeoutError(f"the panels are not complete after {timeout} s; wait longer")
        for name, view in self.view.views.items():
            if view.status.get("state") == "error":
                raise RuntimeError(f"panel {name!r} failed: {view.status.get('message')}")
        return self.surfaces

    def figure(
        self, metric: str | None = None, *, log: bool | None = None, levels: int = 20,
        cmap: str | None = None,
    ) -> Any:
        """A matplotlib figure of the panels side by side with one colorbar (waits for them),
        drawn as on screen unless `metric`, `log` or `cmap` say otherwise."""
        return plot_compare(
            self.compute(), metric or self.view.metric,
            log=self.view.log_scale if log is None else log, levels=levels,
            cmap=cmap or self.view.colormap,
        )

    def close(self) -> None:
        """Stop every panel's worker (joined) and close the view, its panels and controls,
        also after a failed construction."""
        view = getattr(self, "view", None)
        if view is not None:  # absent if construction failed before it
            view.close()  # first: stops and joins the workers
        close_tree(self)
        super().close()
