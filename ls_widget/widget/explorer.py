"""explore(): the landscape view with ipywidgets controls that re-slice it live.

`Explorer` composes the parts, each in its own module:

- view.py: `LandscapeWidget`, the contour view (its worker streams the tiles: worker.py);
- bank.py: `DirectionBank`, the directions the axes are built from;
- scope.py + param_control.py: which parameters the directions move and H is taken over,
  and the "parameters" control that changes it;
- controls.py: the axis controls (bank dropdowns, mix, span and points sliders) and the
  drawing controls (metric, colours, isolines, log scale);
- hessian_job.py + panels.py: Hessian eigenvectors computed in the background, put in the
  bank and shown in a clickable bqplot panel;
- shapes_toggle.py (+ shapes_panel.py, shapes_control.py, shapes_job.py): the "shapes"
  panel, built on first use: the kinds of the surface and its cross-sections, a gallery of
  shaped curves, mining;
- export.py: the standalone HTML page;
- paths.py: a training trajectory drawn over the plane of its principal directions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import ipywidgets as W
import torch.nn.functional as F
from torch import nn

from .. import metrics as _metrics
from ..directions import Direction, towards
from ..engine.landscape import Landscape
from ..engine.params import ParamChoice
from ..results.records import Surface
from .bank import DirectionBank
from .controls import COLORMAPS, AxisControls, AxisRow, DrawControls, check_view_args
from .export import write_html
from .hessian_job import HessianDirections, HessianMethods
from .panels import HessianPanel
from .param_control import ParamsControl
from .paths import PathOverlay, path_span, trajectory_plane
from .scope import resolve
from .shapes_toggle import ShapesMethods
from .snapshot import display_with_picture
from .tree import close_tree
from .view import LandscapeWidget

__all__ = ["COLORMAPS", "Explorer", "ExplorerView", "explore"]

CrossListener = Callable[[dict[str, Any], list[bytes]], Any]


class ExplorerView(LandscapeWidget):
    """The explorer's `LandscapeWidget`: it also hands every pair of cross-sections it sends
    to `cross_listeners` (the shapes panel classifies them) and keeps the latest.

    Attributes:
        cross_listeners: ``fn(content, buffers)`` of each "cross" message sent (from the
            worker's thread: they must return at once).
        last_cross: the latest "cross" message and its buffers, or None.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.cross_listeners: list[CrossListener] = []
        self.last_cross: tuple[dict[str, Any], list[bytes]] | None = None
        super().__init__(*args, **kwargs)

    def send(self, content: Any, buffers: Any = None) -> None:
        """Send a message to the frontend; a "cross" one also goes to `cross_listeners`."""
        super().send(content, buffers)
        if isinstance(content, dict) and content.get("type") == "cross":
            self.last_cross = (content, list(buffers or []))
            for listener in list(self.cross_listeners):
                listener(*self.last_cross)


class Explorer(HessianMethods, ShapesMethods, W.VBox):
    """A LandscapeWidget and the controls that drive it.

    Construction returns once the first tile is computed; a failure before (a bad argument,
    a model or loss that cannot be evaluated, a grid over `max_points`) raises there, with
    every thread stopped and every widget closed. The random directions of `seeds` and the
    Hessian move the parameters `params` selects (see `lw.directions.random`); the directions
    given in `bank` are kept as given. A `path` (a projected training trajectory) is drawn
    whenever the axes show the two directions it was projected on.

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
        params_control: "parameters: trainable | all | custom…" (`set_params`).
        hessian_panel: the bqplot panel of Hessian eigenvalues and spectral density (see
            `add_hessian`).
        shapes_toggle: shows / hides the "shapes" panel (`shapes`), built when first shown.
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
        metric: str | None = None,
        log: bool = False,
        colormap: str = "viridis",
        n_levels: int = 12,
        adaptive: bool = False,
        hessian_k: int = 5,
        max_points: int | None = None,
        force: bool = False,
        params: ParamChoice = "trainable",
        seeds: Sequence[int] = (),
        path: PathOverlay | None = None,
    ) -> None:
        self.landscape = landscape
        metric = metric or landscape.metric_names[0]  # "loss", or "train/loss" for named sets
        self.bank = DirectionBank(landscape, bank, resolve(landscape.model, params), seeds)
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
            self.view = ExplorerView(
                landscape, d1, d2, span=self.span_slider.value, n=self.points_slider.value,
                adaptive=adaptive, max_points=max_points, force=force, metric=metric,
                log_scale=log, colormap=colormap, n_levels=n_levels, path=path,
            )
            draw.link(self.view)
            self._controls.drive(self.view, adaptive=adaptive)
            self.hessian_panel = HessianPanel(
                k=hessian_k, on_compute=lambda: self.add_hessian(hessian_k),
                on_pick=self._controls.choose,
            )
            self._hessian = HessianDirections(self.bank, self._controls, self.hessian_panel,
                                              self._controls.restart)
            self.params_control = ParamsControl(self.bank, self._controls, self._hessian.rescope)
            super().__init__([self.view, W.VBox([
                *(W.HBox(list(row)) for row in self.axes.values()),
                W.HBox([self.span_slider, self.points_slider, self.new_random]),
                self.params_control.box,
                W.HBox([self.metric_select, self.colormap_select, self.levels_slider,
                        self.log_checkbox]),
                self.hessian_panel,
                *self._shapes_row(),
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
        pair = self.bank.random_pair()
        with self._controls.quiet():
            for label, d in pair:
                self.bank.put_drawn(label, d)
            self._controls.set_options()
            for ax, (label, _) in zip(("x", "y"), pair, strict=True):
                self._controls.select(ax, label)
        self._controls.restart()
        return pair[0][0], pair[1][0]

    # ----------------------------------------------------------------- parameters
    @property
    def params(self) -> ParamChoice:
        """The parameters the random directions and the Hessian move (`set_params`)."""
        return self.bank.scope.choice

    def set_params(self, params: ParamChoice) -> None:
        """Move the parameters `params` selects, as `lw.directions.random` takes it: the random
        directions are drawn again (same seeds), the view restarts, Hessian eigenpairs are
        computed again if some were asked for. A bad choice raises, changing nothing."""
        self.params_control.apply(params)

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
        matplotlib's rendering of the same surface; with ``width=``/``height=`` (pixels at
        ``dpi=``), matplotlib's contour, colorbar and cross-sections at that size."""
        return self.view.save_png(path, **kwargs)

    def save_svg(self, path: str | Path) -> Path:
        """SVG of the contour, colorbar and cross-sections (matplotlib)."""
        return self.view.save_svg(path)

    def save_pdf(self, path: str | Path) -> Path:
        """PDF of the contour, colorbar and cross-sections (matplotlib)."""
        return self.view.save_pdf(path)

    def _ipython_display_(self) -> None:
        """IPython shows the explorer, then the view's last picture as a PNG output, which a
        saved notebook keeps (snapshot.py)."""
        display_with_picture(self, self.view.picture)

    def to_html(self, path: str | Path, *, title: str = "ls-widget landscape") -> Path:
        """A standalone HTML page showing the last complete picture, without a kernel."""
        return write_html(self.view, path, title=title)

    def close(self) -> None:
        """Stop the worker; close the widget, its controls and panels (a Hessian computation
        under way finishes in the background, not installed; mining is cancelled and the
        shapes panel's threads joined), also after a failed construction. Every widget is
        closed, not only this box: ipywidgets keeps an open widget (and through its
        observers, this explorer and its landscape) alive."""
        parts = ("_shapes", "_hessian", "view")
        for part in (getattr(self, name, None) for name in parts):
            if part is not None:  # absent if construction failed before it
                part.close()  # the view first of the widgets: stops and joins the worker
        close_tree(self)
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
    span: float | None = None,
    n: int = 41,
    metric: str | None = None,
    log: bool = False,
    colormap: str = "viridis",
    n_levels: int = 12,
    adaptive: bool = False,
    seeds: tuple[int, ...] = (0, 1, 2, 3),
    params: ParamChoice = "trainable",
    hessian: int | None = None,
    trajectory: Any = None,
    max_points: int | None = None,
    force: bool = False,
    client: Any = None,
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
        x: bank label of the initial x axis (default: the first random seed, or with a
            `trajectory` its first principal direction).
        y: bank label of the initial y axis (default: the second random seed, or the
            trajectory's second principal direction).
        span: half-width s of the initial view, (−s, s) on both axes (a positive number);
            default 1.0, or with a `trajectory` the reach of its path plus 25 %.
        n: points per axis of the initial view (an int ≥ 2).
        metric: the metric drawn (default: the first, "loss" or "<first set>/loss").
        log: colour scale and isolines on a log scale.
        colormap: one of `COLORMAPS`.
        n_levels: number of isolines (≥ 2).
        adaptive: evaluate finer levels only where interpolation misses (see
            `Landscape.stream`).
        seeds: seeds of the filter-normalized random directions in the bank.
        params: which parameters the random directions move and the Hessian is taken over,
            as `lw.directions.random` takes it: ``"trainable"`` (default: those with
            ``requires_grad=True``, every one when none has), ``"all"``, a list of glob
            patterns over the parameter names (``["layer4.*", "fc.*"]``) or a predicate
            ``fn(name, parameter)``; the others get a zero direction, and the axis labels
            say what moves. The widget's "parameters" control changes it live.
        hessian: compute the `hessian` largest and smallest Hessian eigenpairs in the
            background (`Explorer.add_hessian`) and add the eigenvectors to the bank; unless
            `x` or `y` is given, λ1 and λmin become the axes when they are ready (if the
            axes were not changed meanwhile). Without it, the panel's button computes them.
        trajectory: an `lw.Trajectory` (from `lw.Recorder` or checkpoints): its first two
            principal directions (`lw.directions.pca(traj, k=2)`, labelled with their
            explained variance) join the bank and become the axes, and the snapshots,
            projected around `model` (`traj.project(d1, d2, origin=model)`), are drawn over
            the contours as a path from start to end; hovering a snapshot shows its step
            and recorded loss. The path shows whenever the axes are those two directions.
        max_points: grids of more points are refused with ``lw.JobTooLarge``, which states
            the estimated time and memory (None: the engine's default limit).
        force: compute grids of any size.
        client: compute the tiles on a Dask cluster: a ``distributed.Client`` or an
            ``ls_widget.distributed.DaskExecutor`` (the same bits as here; a slider move
            cancels the pending tasks). None: in this kernel.
        **landscape_kwargs: passed to `lw.Landscape` (batch_size, memory_budget, strategy).
    """
    if metrics is None:
        metrics = {"accuracy": _metrics.accuracy} if loss is F.cross_entropy else {}
    params = resolve(model, params).choice  # a bad choice fails now, before the data is read
    path: PathOverlay | None = None
    bank: dict[str, Direction] = {}
    if trajectory is not None:  # before the data is read: a bad trajectory fails fast
        pc1, pc2, projected = trajectory_plane(model, trajectory)
        path = PathOverlay(projected, pc1, pc2)
        bank.update({pc1.label: pc1, pc2.label: pc2})
        x, y = x or pc1.label, y or pc2.label
        span = path_span(projected) if span is None else span
    land = Landscape(model, data, loss, metrics, client=client, **landscape_kwargs)
    if other is not None:
        bank["towards other"] = towards(model, other, buffers=True)
    bank.update(directions or {})
    labels = list(dict.fromkeys([*(f"random #{s}" for s in seeds), *bank]))
    if len(labels) < 2:
        raise ValueError(
            f"the direction bank holds {labels}: it needs at least two directions; give two "
            f"seeds (seeds={tuple(seeds)!r} now) or more `directions`"
        )
    explorer = Explorer(
        land, bank, x=x or labels[0], y=y or labels[1], span=1.0 if span is None else span,
        n=n, metric=metric, log=log, colormap=colormap, n_levels=n_levels, adaptive=adaptive,
        hessian_k=hessian or 5, max_points=max_points, force=force, params=params,
        seeds=seeds, path=path,
    )
    if hessian is not None:
        try:
            explorer.add_hessian(hessian, select=x is None and y is None)
        except BaseException:
            explorer.close()
            raise
    return explorer
