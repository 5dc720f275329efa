"""explore(): the landscape view with ipywidgets controls that re-slice it live.

`Explorer` composes the parts, each in its own module:

- view.py: `LandscapeWidget`, the contour view (its worker streams the tiles: worker.py);
- bank.py: `DirectionBank`, the directions the axes are built from;
- controls.py: the axis controls (bank dropdowns, mix, span and points sliders) and the
  drawing controls (metric, colours, isolines, log scale);
- hessian_job.py + panels.py: Hessian eigenvectors computed in the background, put in the
  bank and shown in a clickable bqplot panel;
- export.py: the standalone HTML page.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import ipywidgets as W
import torch.nn.functional as F
from torch import nn

from .. import metrics as _metrics
from ..curvature import Density, Eigen
from ..directions import Direction, random, towards
from ..engine.landscape import Landscape
from ..results.records import Surface
from .bank import DirectionBank
from .controls import COLORMAPS, AxisControls, AxisRow, DrawControls, check_view_args
from .export import write_html
from .hessian_job import HessianDirections
from .panels import HessianPanel
from .view import LandscapeWidget

__all__ = ["COLORMAPS", "Explorer", "explore"]


def _widget_tree(root: W.Widget) -> list[W.Widget]:
    """`root` and every widget it holds, in traits or attributes (children, layouts, styles,
    bqplot marks and scales, a panel's plot before it is shown), also through containers and
    this package's helpers (the controls, the Hessian job), whether or not shown yet."""
    found: dict[int, W.Widget] = {}
    seen: set[int] = set()
    todo: list[Any] = [root]
    while todo:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, W.Widget):
            found[id(obj)] = obj
            todo.extend(vars(obj).values())  # holds `_trait_values`
        elif isinstance(obj, dict):
            todo.extend(obj.values())
        elif isinstance(obj, (list, tuple)):
            todo.extend(obj)
        elif type(obj).__module__.startswith(__package__ or "") and hasattr(obj, "__dict__"):
            todo.extend(vars(obj).values())
    return list(found.values())


class Explorer(W.VBox):
    """A LandscapeWidget and the controls that drive it.

    Construction returns once the first tile is computed; a failure before (a bad argument,
    a model or loss that cannot be evaluated, a grid over `max_points`) raises there, with
    every thread stopped and every widget closed.

    Attributes:
        landscape: the `lw.Landscape` being explored.
        view: the `LandscapeWidget` (contour + cross-sections).
        bank: the `DirectionBank`, label → `lw.Direction` that the axes can be built from
            (read-only: add with `add_direction`).
        axes: "x" / "y" → `AxisRow` (direction dropdown, blend dropdown, mix slider).
        span_slider: half-width of the view.
        points_slider: points per axis.
        metric_select: the metric drawn.
        log_checkbox: log colour scale.
        colormap_select: the colormap.
        levels_slider: number of isolines.
        new_random: button: two fresh random directions on the axes.
        hessian_panel: the bqplot panel of Hessian eigenvalues and spectral density (see
            `add_hessian`).
    """

    def __init__(
        self,
        landscape: Landscape,
        bank: Mapping[str, Direction],
        *,
        x: str,
        y: str,
        span: float = 1.0,
        n: int = 41,
        metric: str = "loss",
        log: bool = False,
        colormap: str = "viridis",
        n_levels: int = 12,
        adaptive: bool = False,
        hessian_k: int = 5,
        max_points: int | None = None,
        force: bool = False,
    ) -> None:
        self.landscape = landscape
        self.bank = DirectionBank(landscape, bank)
        check_view_args(list(self.bank), x, y, landscape.metric_names, metric, span, n,
                        colormap, n_levels)
        try:
            self._controls = AxisControls(self.bank, x=x, y=y, span=span, n=n,
                                          max_points=None if force else max_points)
            self.axes: dict[str, AxisRow] = self._controls.axes
            self.span_slider, self.points_slider = self._controls.span, self._controls.points
            draw = DrawControls(list(landscape.metric_names), metric=metric, log=log,
                                colormap=colormap, n_levels=n_levels)
            self.metric_select, self.log_checkbox = draw.metric, draw.log
            self.colormap_select, self.levels_slider = draw.colormap, draw.levels
            self.new_random = W.Button(description="new random directions", icon="refresh",
                                       layout=W.Layout(width="200px"))
            self.new_random.on_click(lambda _: self.add_random_pair())
            d1, d2 = self._controls.directions()
            self.view = LandscapeWidget(
                landscape, d1, d2, span=self.span_slider.value, n=self.points_slider.value,
                adaptive=adaptive, max_points=max_points, force=force, metric=metric,
                log_scale=log, colormap=colormap, n_levels=n_levels,
            )
            draw.link(self.view)
            self._controls.drive(self.view, adaptive=adaptive)
            self.hessian_panel = HessianPanel(
                k=hessian_k, on_compute=lambda: self.add_hessian(hessian_k),
                on_pick=self._controls.choose,
            )
            self._hessian = HessianDirections(landscape, self.bank, self._controls,
                                              self.hessian_panel, self._controls.restart)
            super().__init__([self.view, W.VBox([
                *(W.HBox(list(row)) for row in self.axes.values()),
                W.HBox([self.span_slider, self.points_slider, self.new_random]),
                W.HBox([self.metric_select, self.colormap_select, self.levels_slider,
                        self.log_checkbox]),
                self.hessian_panel,
            ])])
            self.add_class("lsw-explorer")
            # The first tile (or the error before it) arrives before we return: a model or
            # loss that cannot be evaluated fails here, leaving nothing running.
            error = self.view._first_tile()
            if error is not None:
                raise error
        except BaseException:
            self.close()  # whatever was built: threads stopped and joined, comms closed
            raise

    # ----------------------------------------------------------------- the bank
    def add_direction(self, label: str, d: Direction) -> None:
        """Put a direction in the bank (e.g. a Hessian eigenvector), selectable per axis.

        The axes keep their directions (no restart), unless `label` replaces the direction
        of one of them."""
        with self._controls.quiet():
            replaced = label in self.bank and self._controls.uses(label)
            self.bank.put(label, d)
            self._controls.set_options()
        if replaced:
            self._controls.restart()

    def add_random_pair(self) -> tuple[str, str]:
        """Two fresh seeds become the x and y axes (mix reset to 0)."""
        labels = []
        for label, d in self.bank.random_pair():
            self.add_direction(label, d)
            labels.append(label)
        with self._controls.quiet():
            for ax, label in zip(("x", "y"), labels, strict=True):
                self._controls.select(ax, label)
        self._controls.restart()
        return labels[0], labels[1]

    # ----------------------------------------------------------------- Hessian
    def add_hessian(self, k: int = 5, *, select: bool = False, tol: float = 1e-6) -> None:
        """Compute the k largest and k smallest eigenpairs of H in the background, then the
        spectral density, and put the 2k eigenvectors in the bank.

        Returns at once; progress and errors show in the panel's status line, the result in
        `eigen` and `density` (wait with `wait_hessian`). Results are cached: asking again for
        the same k computes nothing. The bank labels are "λ1 = …", "λ2 = …" (descending) and
        "λmin+1 = …", "λmin = …" (the most negative last). Each eigenvector is scaled to the
        norm of the bank's first random direction (≈ ‖θ‖ when filter-normalized), so the span
        slider means the same on every axis and the mix slider blends directions of one size;
        Böttcher & Wheeler's unit eigenvectors are `eigen.vectors`.

        Args:
            k: eigenpairs from each end of the spectrum.
            select: when done, put λ1 on the x axis and λmin on the y axis (Böttcher &
                Wheeler's saddle-revealing plane), unless the axes were changed meanwhile.
            tol: relative accuracy of the Lanczos eigenpairs (ARPACK's `tol`). The bottom of
                a network's spectrum is a dense cluster near 0 where tighter tolerances cost
                many more Hessian-vector products (digits MLP, k=3: 249 at 1e-4, 701 at 1e-6,
                about 2000 at 1e-8); 1e-6 is ample for choosing plot directions.
        """
        self._hessian.request(k, tol, select)

    def wait_hessian(self, timeout: float | None = None) -> bool:
        """Block until the Hessian computation has finished (or failed: see `hessian_error`).
        True if it finished within `timeout` seconds."""
        return self._hessian.wait(timeout)

    @property
    def eigen(self) -> Eigen | None:
        """The `lw.Eigen` record of the eigenvectors in the bank (unit vectors), or None
        before they are computed."""
        return self._hessian.eigen

    @property
    def density(self) -> Density | None:
        """The SLQ spectral density of H once computed (after the eigenpairs), else None."""
        return self._hessian.density

    @property
    def hessian_error(self) -> str | None:
        """The error of the last Hessian computation, or None."""
        return self._hessian.error

    @property
    def hessian_labels(self) -> list[str]:
        """Bank labels of the Hessian eigenvectors, by descending eigenvalue."""
        return self.bank.hessian_labels

    def hessian_entries(self, eig: Eigen, k: int) -> dict[str, Direction]:
        """Bank label → eigenvector scaled to the bank's random-direction norm (see
        `add_hessian`); its provenance adds "rank", "scale" and "scaled_to"."""
        return self.bank.hessian_entries(eig, k)

    # ----------------------------------------------------------------- results
    @property
    def surface(self) -> Surface | None:
        """The `lw.Surface` on screen (the latest complete one)."""
        return self.view.surface_record

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the current picture is complete."""
        return self.view.wait(timeout)

    def save_png(self, path: str | Path, **kwargs: Any) -> Path:
        """PNG of the picture: the screen's own pixels when a frontend sent them, else
        matplotlib's rendering of the same surface."""
        return self.view.save_png(path, **kwargs)

    def to_html(self, path: str | Path, *, title: str = "ls-widget landscape") -> Path:
        """A standalone HTML page showing the last complete picture, without a kernel."""
        return write_html(self.view, path, title=title)

    def close(self) -> None:
        """Stop the worker; close the widget, its controls and panels (a Hessian computation
        under way finishes in the background, not installed), also after a failed
        construction. Every widget is closed, not only this box: ipywidgets keeps an open
        widget (and through its observers, this explorer and its landscape) alive."""
        for part in (getattr(self, "_hessian", None), getattr(self, "view", None)):
            if part is not None:  # absent if construction failed before it
                part.close()  # the view first of the widgets: stops and joins the worker
        for w in _widget_tree(self):
            if w is not self:
                w.close()
        super().close()


def explore(
    model: nn.Module,
    data: Any,
    loss: Callable[..., Any] | None = F.cross_entropy,
    *,
    metrics: Mapping[str, Callable[..., Any]] | None = None,
    other: nn.Module | None = None,
    directions: Mapping[str, Direction] | None = None,
    x: str | None = None,
    y: str | None = None,
    span: float = 1.0,
    n: int = 41,
    metric: str = "loss",
    log: bool = False,
    colormap: str = "viridis",
    n_levels: int = 12,
    adaptive: bool = False,
    seeds: tuple[int, ...] = (0, 1, 2, 3),
    hessian: int | None = None,
    max_points: int | None = None,
    force: bool = False,
    **landscape_kwargs: Any,
) -> Explorer:
    """Explore the loss landscape of `model` on `data` in a live widget.

    Returns once the first tile is computed; any failure before (a bad argument, a model or
    loss that cannot be evaluated, a refused grid) raises here and leaves nothing running.

    Args:
        model: a trained ``torch.nn.Module`` (never modified).
        data: anything `lw.Landscape` takes: ``(X, y)``, a Dataset, a DataLoader, batches of
            tensors, tuples or dicts.
        loss: ``loss(output, target)`` → batch mean; cross-entropy by default (then accuracy
            is computed too unless `metrics` says otherwise); ``None`` uses the model's own
            loss where its output has one (Hugging Face style), as `lw.Landscape` does.
        metrics: more ``name → fn(output, target)`` batch means.
        other: a second model of the same architecture: adds "towards other" (with BN
            buffers) to the direction bank.
        directions: more labelled directions for the bank.
        x: bank label of the initial x axis (default: the first random seed).
        y: bank label of the initial y axis (default: the second random seed).
        span: half-width s of the initial view, (−s, s) on both axes (a positive number).
        n: points per axis of the initial view (an int ≥ 2).
        metric: the metric drawn.
        log: colour scale and isolines on a log scale.
        colormap: one of `COLORMAPS`.
        n_levels: number of isolines (≥ 2).
        adaptive: evaluate finer levels only where interpolation misses (see
            `Landscape.stream`).
        seeds: seeds of the filter-normalized random directions in the bank.
        hessian: compute the `hessian` largest and smallest Hessian eigenpairs in the
            background (`Explorer.add_hessian`) and add the eigenvectors to the bank; unless
            `x` or `y` is given, λ1 and λmin become the axes when they are ready (if the
            axes were not changed meanwhile). Without it, the panel's button computes them.
        max_points: grids of more points are refused with ``lw.JobTooLarge``, which states
            the estimated time and memory (None: the engine's default limit).
        force: compute grids of any size.
        **landscape_kwargs: passed to `lw.Landscape` (batch_size, memory_budget, strategy).
    """
    if metrics is None:
        metrics = {"accuracy": _metrics.accuracy} if loss is F.cross_entropy else {}
    land = Landscape(model, data, loss, metrics, **landscape_kwargs)
    bank = {f"random #{s}": random(model, seed=s) for s in seeds}
    if other is not None:
        bank["towards other"] = towards(model, other, buffers=True)
    bank.update(directions or {})
    labels = list(bank)
    if len(labels) < 2:
        raise ValueError(
            f"the direction bank holds {labels}: it needs at least two directions; give two "
            f"seeds (seeds={tuple(seeds)!r} now) or more `directions`"
        )
    explorer = Explorer(
        land, bank, x=x or labels[0], y=y or labels[1], span=span, n=n, metric=metric,
        log=log, colormap=colormap, n_levels=n_levels, adaptive=adaptive,
        hessian_k=hessian or 5, max_points=max_points, force=force,
    )
    if hessian is not None:
        try:
            explorer.add_hessian(hessian, select=x is None and y is None)
        except BaseException:
            explorer.close()
            raise
    return explorer
