"""LandscapeWidget: streams a Landscape's tiles to the browser and keeps the last picture.

One background worker per widget consumes `Landscape.stream(...)`. Every change of settings
bumps `generation`; the worker abandons the old stream at the next tile boundary (a
cancelled stream is a generation number, never a killed thread). Tiles travel as custom
messages with little-endian binary buffers, batched to stay under ~40 messages/s. The last
complete surface is also kept in the binary `surface` trait, so a saved notebook or an HTML
export shows the picture without a kernel.

Faults never stop the worker: anything the user's model or loss raises in it, a
KeyboardInterrupt included, becomes the "error" status and an error message, and the next
view computes as usual. A widget that fails to construct stops its worker and closes its comm
before the error reaches the caller.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anywidget
import numpy as np
import traitlets as t

from ..directions import Direction
from ..engine.landscape import Landscape
from ..engine.sampling import (
    Tile,
    axis,
    grid_strides,
    level_grid,
    parse_n,
    parse_plane_span,
)
from ..results.records import Surface

_STATIC = Path(__file__).parent.parent / "static"
_MIN_INTERVAL = 0.025  # seconds between tile messages: at most 40 messages/s
_CROSS_POINTS = 101


def _bundle(name: str) -> Path | str:
    path = _STATIC / name
    if not path.exists():
        raise FileNotFoundError(
            f"the widget's frontend bundle {path} is missing; build it with `make js` "
            "(or reinstall ls-widget from a wheel)"
        )
    return path


def _i32(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a, dtype="<i4").tobytes()


def _f32(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a, dtype="<f4").tobytes()


def _fatal(exc: BaseException) -> bool:
    """Whether a worker thread must let `exc` end it: only SystemExit while the interpreter
    shuts down. Everything else (an Exception, a KeyboardInterrupt raised by the user's loss)
    is shown to the user and the thread goes on."""
    return isinstance(exc, SystemExit) and sys.is_finalizing()


def _describe(exc: BaseException) -> str:
    """"ValueError: text" (the type alone when there is no text, as for a bare Ctrl-C)."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass
class _View:
    """What the worker computes for one generation."""

    gen: int
    d1: Direction
    d2: Direction
    x: np.ndarray
    y: np.ndarray
    adaptive: bool
    tol: float
    started: bool = False  # the first tile arrived, or the stream ended (see `error`)
    error: BaseException | None = None  # what ended the stream before its first tile


@dataclass
class _Job:
    view: _View
    values: np.ndarray  # (metrics, ny, nx), NaN where unknown
    evaluated: np.ndarray
    sent: list[tuple[dict, list[bytes]]] = field(default_factory=list)


class LandscapeWidget(anywidget.AnyWidget):
    """Contour view of a loss surface that sharpens tile by tile, with 1D cross-sections."""

    _esm = _bundle("widget.js")
    _css = _bundle("widget.css")

    generation = t.Int(0).tag(sync=True)
    """Bumped on every change of settings; the frontend drops tiles of older generations."""

    grid_x = t.List(t.Float()).tag(sync=True)
    """α coordinates (columns) of the current grid."""

    grid_y = t.List(t.Float()).tag(sync=True)
    """β coordinates (rows) of the current grid."""

    x_label = t.Unicode("").tag(sync=True)
    """Axis label of d₁, from its provenance (e.g. "random #0, filter-norm")."""

    y_label = t.Unicode("").tag(sync=True)
    """Axis label of d₂."""

    metric_names = t.List(t.Unicode()).tag(sync=True)
    """Metrics computed at every point, "loss" first."""

    metric = t.Unicode("loss").tag(sync=True)
    """The metric drawn in the contour view."""

    log_scale = t.Bool(False).tag(sync=True)
    """Colour scale and isolines on a log scale."""

    colormap = t.Unicode("viridis").tag(sync=True)
    """Name of the colormap (viridis, magma, inferno, plasma, cividis, turbo)."""

    n_levels = t.Int(12).tag(sync=True)
    """Number of isolines."""

    status = t.Dict().tag(sync=True)
    """{"state": idle|computing|done|error, "gen", "level", "levels", "fraction", "message"}."""

    surface = t.Bytes(b"").tag(sync=True)
    """The last complete surface: float32 little-endian, metrics × ny × nx."""

    surface_info = t.Dict().tag(sync=True)
    """Shape, coordinates, metrics and labels of `surface` (gen, nx, ny, x, y, metrics, ...)."""

    def __init__(
        self,
        landscape: Landscape,
        d1: Direction,
        d2: Direction,
        *,
        span: Any = 1.0,
        n: int = 41,
        adaptive: bool = False,
        tol: float = 0.01,
        max_points: int | None = None,
        force: bool = False,
        **traits: Any,
    ) -> None:
        self.landscape = landscape
        self.max_points = max_points
        """Grids of more points are refused (`Landscape.check_job`; None: its default)."""
        self.force = force
        """Compute grids of any size (no `check_job` refusal)."""
        # Set before the comm opens, so that close() (also run by __del__) works whatever
        # failed below.
        self._cond = threading.Condition()
        self._closed = False
        self._view: _View | None = None
        self._latest: _View | None = None
        self._pending: _View | None = None
        self._picks: deque[tuple[int, float, float]] = deque()
        self._job: _Job | None = None
        self._surface: Surface | None = None
        self._snapshots: dict[int, bytes] = {}
        self._done = threading.Event()
        self._thread = threading.Thread(
            target=self._work, name="ls-widget-worker", daemon=True
        )
        self._own_layout = "layout" not in traits  # then close() closes it too
        # anywidget hooks every instance to the bundle's FileContents (hot reload) with a
        # closure over the widget, which keeps each widget and its landscape alive for good
        # (manzt/anywidget#929). The bundle's text, as an instance attribute, skips the hook.
        for key in ("_esm", "_css"):
            self.__dict__[key] = str(getattr(type(self), key))
        try:
            super().__init__(metric_names=list(landscape.metric_names), **traits)
            self.on_msg(self._on_frontend_msg)
            self.set_view(d1, d2, span=span, n=n, adaptive=adaptive, tol=tol)
            self._thread.start()  # last: a refused view leaves no thread behind
        except BaseException:
            self.close()
            raise

    # ----------------------------------------------------------------- public
    @property
    def surface_record(self) -> Surface | None:
        """The latest complete `lw.Surface` (None until one finished)."""
        return self._surface

    def set_view(
        self,
        d1: Direction,
        d2: Direction,
        *,
        span: Any = 1.0,
        n: int | tuple[int, int] = 41,
        adaptive: bool = False,
        tol: float = 0.01,
        max_points: int | None = None,
        force: bool | None = None,
    ) -> int:
        """Show the plane of d₁, d₂; restarts the stream. Returns the new generation.

        A grid over `max_points` points is refused with `lw.JobTooLarge` (stating the
        estimated time and memory) unless `force`; both default to the widget's settings.
        A refused or invalid view leaves the current one as it is.
        """
        for name, d in (("d1", d1), ("d2", d2)):
            if not isinstance(d, Direction):
                raise TypeError(
                    f"{name} must be an lw.Direction, got {type(d).__name__}; build one with "
                    "lw.directions.random(model)"
                )
        (sx, sy), (nx, ny) = parse_plane_span(span), parse_n(n, 2)
        self.landscape.check_job(
            nx * ny,
            max_points=self.max_points if max_points is None else max_points,
            force=self.force if force is None else force,
        )
        x, y = axis(sx, nx), axis(sy, ny)
        with self._cond:
            gen = self.generation + 1
            view = _View(gen, d1, d2, x, y, adaptive, tol)
            self._pending = self._latest = view
            self._done.clear()
            with self.hold_sync():
                self.grid_x = x.tolist()
                self.grid_y = y.tolist()
                self.x_label = d1.label
                self.y_label = d2.label
                self.status = {"state": "computing", "gen": gen, "level": 0,
                               "levels": len(grid_strides((ny, nx))), "fraction": 0.0,
                               "message": ""}
                self.generation = gen
            self._cond.notify_all()
        return gen

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the current generation is complete (or failed). True if it finished."""
        return self._done.wait(timeout)

    def close(self) -> None:
        """Stop the worker and close the widget."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=10)  # it stops at the next tile boundary
        super().close()
        # Our Layout is a widget of its own, open (and registered) until closed.
        layout = self._trait_values.get("layout") if self._own_layout else None
        if layout is not None:
            layout.close()

    def _first_tile(self) -> BaseException | None:
        """Block until the latest view's first tile arrived (or its stream ended, or a newer
        view or close() replaced it). Returns the error that ended it before any tile."""
        with self._cond:
            view = self._latest
            if view is None:
                return None
            self._cond.wait_for(
                lambda: view.started or self._closed or view is not self._latest
            )
            return view.error

    # ----------------------------------------------------------------- messages in
    def _on_frontend_msg(self, _: Any, content: dict, buffers: list[bytes]) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "ready":
            self._replay()
        elif kind == "pick":
            with self._cond:
                self._picks.append(
                    (self.generation, float(content["x"]), float(content["y"]))
                )
                self._cond.notify_all()
        elif kind == "snapshot" and buffers:
            self._snapshots = {int(content.get("gen", -1)): bytes(buffers[0])}

    def _replay(self) -> None:
        """A view mounted: resend what this generation has sent so far."""
        with self._cond:
            job = self._job
            msgs = list(job.sent) if job is not None else []
        for content, buffers in msgs:
            self.send(content, buffers)

    # ----------------------------------------------------------------- worker
    def _emit(self, job: _Job, content: dict, buffers: list[bytes] | None = None) -> None:
        buffers = buffers or []
        with self._cond:
            if job.view.gen != self.generation or self._closed:
                return
            job.sent.append((content, buffers))
        self.send(content, buffers)

    def _stale(self, gen: int) -> bool:
        return self._closed or self._pending is not None or gen != self.generation

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._closed and self._pending is None and not self._picks:
                    self._cond.wait()
                if self._closed:
                    return
                view, self._pending = self._pending, None
            try:
                if view is not None:
                    self._run(view)
                self._serve_picks()
            except BaseException as exc:  # a fault of ours: show it, keep the worker alive
                if _fatal(exc):
                    raise
                self._fail(self.generation, exc)

    def _started(self, view: _View, error: BaseException | None = None) -> None:
        with self._cond:
            if not view.started:
                view.started, view.error = True, error
                self._cond.notify_all()

    def _run(self, view: _View) -> None:
        error = None
        try:
            self._stream(view)
        except BaseException as exc:  # the user's model or loss failed: show it, keep working
            if _fatal(exc):
                raise
            error = exc
            self._fail(view.gen, exc)
        finally:
            self._started(view, error)

    def _stream(self, view: _View) -> None:
        land = self.landscape
        names = land.metric_names
        shape = (len(view.y), len(view.x))
        job = _Job(view, np.full((len(names), *shape), np.nan), np.zeros(shape, bool))
        with self._cond:
            self._job = job
            self._view = view
        levels = len(grid_strides(shape))
        announced: set[int] = set()
        batch: list[Tile] = []
        last = 0.0

        def flush() -> None:
            nonlocal last
            if not batch:
                return
            rows = np.concatenate([b.rows for b in batch])
            cols = np.concatenate([b.cols for b in batch])
            vals = np.stack([np.concatenate([b.values[m] for b in batch]) for m in names])
            exact = all(b.exact for b in batch)
            self._emit(job, {"type": "tile", "gen": view.gen, "level": batch[0].level,
                             "count": len(rows), "metrics": list(names), "exact": exact},
                       [_i32(rows), _i32(cols), _f32(vals)])
            self.status = {"state": "computing", "gen": view.gen, "level": batch[-1].level,
                           "levels": levels, "fraction": batch[-1].done, "message": ""}
            batch.clear()
            last = time.perf_counter()

        # set_view checked the grid's size: the caller got any refusal.
        stream = land.stream(view.d1, view.d2, span=((view.x[0], view.x[-1]),
                             (view.y[0], view.y[-1])), n=(shape[1], shape[0]),
                             adaptive=view.adaptive, tol=view.tol, force=True)
        try:
            for tile in stream:
                self._started(view)
                if self._stale(view.gen):
                    return
                if batch and batch[0].level != tile.level:
                    flush()
                if tile.level not in announced:
                    announced.add(tile.level)
                    gy, gx = level_grid(shape, tile.level)
                    self._emit(job, {"type": "level", "gen": view.gen, "level": tile.level,
                                     "rows": gy.tolist(), "cols": gx.tolist()})
                for i, m in enumerate(names):
                    job.values[i, tile.rows, tile.cols] = tile.values[m]
                job.evaluated[tile.rows, tile.cols] = tile.exact
                batch.append(tile)
                if time.perf_counter() - last >= _MIN_INTERVAL:
                    flush()
                if self._picks:
                    flush()
                    self._serve_picks()
            flush()
        finally:
            if isinstance(stream, Generator):  # at once, not when collected: ends its work
                stream.close()
        if self._stale(view.gen):
            return
        self._finish(job)

    def _finish(self, job: _Job) -> None:
        view, names = job.view, self.landscape.metric_names
        surf = Surface(
            x=view.x, y=view.y,
            values={m: job.values[i] for i, m in enumerate(names)},
            evaluated=job.evaluated,
            directions=(view.d1.provenance, view.d2.provenance),
            meta=self.landscape.describe(adaptive=view.adaptive),
        )
        with self._cond:
            if view.gen != self.generation:
                return
            self._surface = surf
            with self.hold_sync():
                self.surface = _f32(job.values)
                self.surface_info = {
                    "gen": view.gen, "nx": len(view.x), "ny": len(view.y),
                    "x": view.x.tolist(), "y": view.y.tolist(), "metrics": list(names),
                    "x_label": view.d1.label, "y_label": view.d2.label,
                }
                self.status = {"state": "done", "gen": view.gen, "level": self.status.get(
                    "levels", 1) - 1, "levels": self.status.get("levels", 1),
                    "fraction": 1.0, "message": ""}
        self._emit(job, {"type": "done", "gen": view.gen})
        self._done.set()

    def _fail(self, gen: int, exc: BaseException) -> None:
        message = _describe(exc)
        with self._cond:
            if gen != self.generation:
                return
        self.status = {"state": "error", "gen": gen, "level": 0, "levels": 0,
                       "fraction": 0.0, "message": message}
        if self._job is not None:
            self._emit(self._job, {"type": "error", "gen": gen, "message": message})
        self._done.set()

    def _serve_picks(self) -> None:
        """Cross-sections through clicked points, along x and along y, at fine resolution."""
        while True:
            with self._cond:
                if not self._picks:
                    return
                gen, x0, y0 = self._picks.pop()
                self._picks.clear()  # only the latest click matters
                view = self._view
            if view is None or gen != view.gen:
                continue
            try:
                xs = axis((view.x[0], view.x[-1]), _CROSS_POINTS)
                ys = axis((view.y[0], view.y[-1]), _CROSS_POINTS)
                dirs = [view.d1, view.d2]
                along_x = self.landscape.evaluate(dirs, np.stack([xs, np.full_like(xs, y0)], 1))
                along_y = self.landscape.evaluate(dirs, np.stack([np.full_like(ys, x0), ys], 1))
            except BaseException as exc:  # as in _run: shown, and the worker goes on
                if _fatal(exc):
                    raise
                self._fail(gen, exc)
                continue
            names = self.landscape.metric_names
            if self._job is not None and self._job.view.gen == gen:
                self._emit(self._job, {
                    "type": "cross", "gen": gen, "x0": x0, "y0": y0, "metrics": list(names),
                    "nx": len(xs), "ny": len(ys),
                }, [_f32(xs), _f32(np.stack([along_x[m] for m in names])), _f32(ys),
                    _f32(np.stack([along_y[m] for m in names]))])

    # ----------------------------------------------------------------- export
    def save_png(self, path: str | Path, *, dpi: int = 150) -> Path:
        """Write the picture as a PNG: the frontend's own snapshot of the screen when one of
        the current generation arrived, else the same surface rendered with matplotlib."""
        path = Path(path)
        snap = self._snapshots.get(self.generation)
        if snap is not None:
            path.write_bytes(snap)
            return path
        surf = self._surface
        if surf is None:
            raise RuntimeError(
                "no surface has been computed yet; wait for it with w.wait() and try again"
            )
        fig = surf.plot(self.metric, log=self.log_scale, levels=max(2, self.n_levels),
                        cmap=self.colormap)
        fig.savefig(path, dpi=dpi)
        import matplotlib.pyplot as plt

        plt.close(fig)
        return path
