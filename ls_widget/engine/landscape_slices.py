"""The evaluating side of a Landscape: lines, planes and progressive streams of tiles.

A mixin of `Landscape` (landscape.py), kept apart because it is another responsibility: it
lays out grids along the landscape's directions and collects the values its bound evaluator
computes on them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from typing import Any, Protocol

import numpy as np
import torch

from ..directions.direction import Direction
from ..results.records import Curve, Surface
from .named import Bound
from .progress import check_progress, track_tiles
from .progressive import collect, progressive
from .sampling import Grid, Tile


class _Float32Mode:
    """PyTorch's float32 settings are process-wide: threads that evaluate at once (the
    widget's worker, its gallery, a miner, the panels of a comparison) share one setting.
    The first to enter saves PyTorch's own and sets ours, the last to leave restores them;
    a thread asking for the other mode waits until the current users are done."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._users = 0
        self._mode: bool | None = None
        self._saved: tuple[str, bool] = ("highest", True)

    @contextmanager
    def __call__(self, tf32: bool) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: self._users == 0 or self._mode == tf32)
            if self._users == 0:
                self._saved = (torch.get_float32_matmul_precision(),
                               torch.backends.cudnn.allow_tf32)
                torch.set_float32_matmul_precision("high" if tf32 else "highest")
                torch.backends.cudnn.allow_tf32 = tf32
                self._mode = tf32
            self._users += 1
        try:
            yield
        finally:
            with self._cond:
                self._users -= 1
                if self._users == 0:
                    torch.set_float32_matmul_precision(self._saved[0])
                    torch.backends.cudnn.allow_tf32 = self._saved[1]
                    self._mode = None
                    self._cond.notify_all()


float32_mode = _Float32Mode()
"""``with float32_mode(tf32):`` float32 matmuls and cuDNN convolutions in full precision
(``tf32=False``) or in TF32 while inside; PyTorch's settings are restored when the last
thread leaves, also after an exception.

TF32 (Ampere and later GPUs) keeps 10 mantissa bits of the inputs: faster, ~1e-3 relative
error, and other bits than a CPU or an older GPU. PyTorch allows it for cuDNN convolutions by
default; a Landscape turns it off unless ``tf32=True``. No effect on CPUs."""


def in_float32_mode(
    evaluate: Callable[[np.ndarray], np.ndarray], tf32: bool
) -> Callable[[np.ndarray], np.ndarray]:
    """`evaluate` running each call under `float32_mode(tf32)` (between calls, a stream's
    consumer runs with its own settings)."""

    def run(coeffs: np.ndarray) -> np.ndarray:
        with float32_mode(tf32):
            return evaluate(coeffs)

    return run


class Executor(Protocol):
    """Where a stream's tiles are computed away from this process (distributed.py)."""

    def tiles(self, land: Any, grid: Grid, dirs: list[Direction], *, adaptive: bool,
              tol: float, tile_size: int | None) -> Iterator[Tile]:
        """The tiles of the local stream of the same arguments, with the same values."""

    def meta(self) -> dict[str, Any]:
        """What results record of the executor (after `tiles`)."""


_ADAPTERS: list[Callable[[Any], Executor]] = []


def register_executor(adapter: Callable[[Any], Executor]) -> None:
    """Let `client=` take what `adapter` turns into an `Executor` (ls_widget.distributed
    registers its Dask executor: the engine never imports the layers above it)."""
    if adapter not in _ADAPTERS:
        _ADAPTERS.append(adapter)


def executor_of(client: Any) -> Executor | None:
    """None (here) for None or False, else the executor of `client`: a registered adapter's
    (for a ``distributed.Client`` or an ``ls_widget.distributed.DaskExecutor``)."""
    if client is None or client is False:
        return None
    if not _ADAPTERS:
        raise TypeError(
            f"client={type(client).__name__}: no executor is registered; import "
            "ls_widget.distributed (pip install 'ls-widget[dask]')"
        )
    return _ADAPTERS[-1](client)


class _Host(Protocol):
    """What the mixin uses of its Landscape."""

    client: Any
    tf32: bool

    @property
    def metric_names(self) -> tuple[str, ...]: ...

    def _bind(self, dirs: Sequence[Direction]) -> Bound: ...

    def describe(self, dirs: Sequence[Direction] = (), **extra: Any) -> dict[str, Any]: ...

    def check_job(self, points: int, *, max_points: int | None = None, force: bool = False,
                  metrics: int | None = None) -> None: ...

    def surface(self, grid: Grid, dirs: Sequence[Direction],
                values: Mapping[str, np.ndarray], evaluated: np.ndarray | None = None,
                **meta: Any) -> Surface: ...

    def _stream(self, grid: Grid, dirs: list[Direction], *, adaptive: bool, tol: float,
                tile_size: int | None, executor: Executor | None = None) -> Iterator[Tile]: ...

    def _collect(self, grid: Grid, dirs: list[Direction], adaptive: bool, tol: float,
                 max_points: int | None, force: bool, progress: bool,
                 executor: Executor | None = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
        ...


class SlicesMixin:
    """`stream`, `line`, `plane` and `surface`: a mixin of `Landscape`."""

    def stream(
        self: _Host,
        d1: Direction,
        d2: Direction | None = None,
        *,
        span: float | Sequence = 1.0,
        n: int | Sequence[int] = 41,
        grid: Grid | None = None,
        adaptive: bool = False,
        tol: float = 0.01,
        tile_size: int | None = None,
        max_points: int | None = None,
        force: bool = False,
        progress: bool = False,
        client: Any = None,
    ) -> Iterator[Tile]:
        """Tiles of a line (``d2=None``) or plane, coarse levels first; stop whenever you like.

        Each tile holds its points' grid indices and metric values. ``adaptive=True`` evaluates
        finer levels only where interpolating the coarser one misses by more than ``tol`` × the
        value range; the rest arrive interpolated (``exact=False``). A `grid` replaces `span`
        and `n`. `tile_size` only groups points for delivery: no value depends on it.
        ``progress=True`` shows a bar of the points delivered (as `plane`'s); it closes when the
        stream ends or is closed (``stream.close()``). Off by default: the widget shows its own.

        ``client``: a ``distributed.Client`` or an ``ls_widget.distributed.DaskExecutor``
        (default: the Landscape's ``client``; False: here). Tiles then run as Dask tasks and
        arrive level by level, within a level as they complete: the same tiles with the same
        values as here (see ls_widget.distributed); closing the stream cancels the tasks.
        """
        check_progress(progress)
        dirs = [d1] if d2 is None else [d1, d2]
        grid = Grid.of(len(dirs), span, n, grid)
        self.check_job(grid.size, max_points=max_points, force=force)
        executor = executor_of(self.client if client is None else client)
        tiles = self._stream(grid, dirs, adaptive=adaptive, tol=tol, tile_size=tile_size,
                             executor=executor)
        if not progress:
            return tiles
        return track_tiles(tiles, progress, grid)

    def _stream(
        self: _Host, grid: Grid, dirs: list[Direction], *, adaptive: bool, tol: float,
        tile_size: int | None, executor: Executor | None = None,
    ) -> Iterator[Tile]:
        if executor is not None:
            return executor.tiles(self, grid, dirs, adaptive=adaptive, tol=tol,
                                  tile_size=tile_size)
        bound = self._bind(dirs)
        return progressive(
            grid, in_float32_mode(bound.evaluate, self.tf32), self.metric_names,
            adaptive=adaptive, tol=tol,
            tile_size=bound.tile_size if tile_size is None else tile_size,
        )

    def line(
        self: _Host,
        d: Direction,
        *,
        span: float | Sequence[float] = 1.0,
        n: int = 51,
        adaptive: bool = False,
        tol: float = 0.01,
        max_points: int | None = None,
        force: bool = False,
        progress: bool = True,
        client: Any = None,
    ) -> Curve:
        """f(α) = L(θ + α·d) at `n` points of `span` (a number s means (−s, s)).

        ``progress=True`` shows a bar (`tqdm.auto`) of the points done, with points/s and the
        time left, once the call has run for a second; ``False`` shows nothing. Display only:
        the values are the same bits either way. ``client``: on Dask, as `plane`.
        """
        dirs, grid = [d], Grid.line(span, n)
        executor = executor_of(self.client if client is None else client)
        vals, _ = self._collect(grid, dirs, adaptive, tol, max_points, force, progress,
                                executor)
        extra = executor.meta() if executor is not None else {}
        return Curve(
            x=grid.x,
            values={m: v[0] for m, v in vals.items()},
            directions=(d.provenance,),
            meta=self.describe(dirs, adaptive=adaptive, **extra),
            direction_tensors=(d,),
        )

    def plane(
        self: _Host,
        d1: Direction,
        d2: Direction,
        *,
        span: float | Sequence = 1.0,
        n: int | Sequence[int] = 41,
        adaptive: bool = False,
        tol: float = 0.01,
        max_points: int | None = None,
        force: bool = False,
        progress: bool = True,
        client: Any = None,
    ) -> Surface:
        """f(α, β) = L(θ + α·d₁ + β·d₂) on an n×n grid; ``Z[i, j]`` is at ``(x[j], y[i])``.

        `span`: a number s (both axes (−s, s)), a pair (lo, hi), or ((xlo, xhi), (ylo, yhi));
        `n`: an int or (nx, ny). An odd n on a symmetric span puts the model at the centre.
        ``adaptive=True``: see `stream`; ``surface.evaluated`` marks the evaluated points.
        Grids over `max_points` are refused (`check_job`). Same inputs, same bits as `stream`.

        ``progress=True`` shows a bar (`tqdm.auto`: a widget in Jupyter, text in a terminal)
        of the grid points done, with points/s and the time left, once the call has run for a
        second; a finished plane leaves its last line. With ``adaptive=True`` interpolated
        points count too (the bar reaches the grid size), and the number evaluated is shown
        beside it. ``False`` shows nothing. Display only: the values are the same bits either
        way.

        ``client``: a ``distributed.Client`` or an ``ls_widget.distributed.DaskExecutor``
        (default: the Landscape's ``client``; False: here): the tiles run as Dask tasks, the
        same bits as here (see ls_widget.distributed for the rules: threads, retries, the
        timeout and ``WorkersLost``, which carries the partial surface).
        """
        dirs, grid = [d1, d2], Grid.plane(span, n)
        executor = executor_of(self.client if client is None else client)
        vals, evaluated = self._collect(grid, dirs, adaptive, tol, max_points, force, progress,
                                        executor)
        extra = executor.meta() if executor is not None else {}
        return self.surface(grid, (d1, d2), vals, evaluated, adaptive=adaptive,
                            tol=tol if adaptive else None, evaluations=int(evaluated.sum()),
                            **extra)

    def surface(
        self: _Host,
        grid: Grid,
        dirs: Sequence[Direction],
        values: Mapping[str, np.ndarray],
        evaluated: np.ndarray | None = None,
        **meta: Any,
    ) -> Surface:
        """The `Surface` record of values computed on `grid` along `dirs` (with `meta`)."""
        return Surface(x=grid.x, y=grid.y, values=values, evaluated=evaluated,
                       directions=tuple(d.provenance for d in dirs),
                       meta=self.describe(dirs, **meta), direction_tensors=tuple(dirs))

    def _collect(
        self: _Host, grid: Grid, dirs: list[Direction], adaptive: bool, tol: float,
        max_points: int | None, force: bool, progress: bool,
        executor: Executor | None = None,
    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        check_progress(progress)
        self.check_job(grid.size, max_points=max_points, force=force)
        tiles = self._stream(grid, dirs, adaptive=adaptive, tol=tol, tile_size=None,
                             executor=executor)
        # closing(): the bar ends here even if collect itself is interrupted between tiles.
        with closing(track_tiles(tiles, progress, grid)) as tracked:
            return collect(tracked, self.metric_names, grid.shape)
