"""The evaluating side of a Landscape: lines, planes and progressive streams of tiles.

A mixin of `Landscape` (landscape.py), kept apart because it is another responsibility: it
lays out grids along the landscape's directions and collects the values its bound evaluator
computes on them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing
from typing import Any, Protocol

import numpy as np

from ..directions.direction import Direction
from ..results.records import Curve, Surface
from .named import Bound
from .progress import check_progress, track_tiles
from .progressive import collect, progressive
from .sampling import Grid, Tile


class _Host(Protocol):
    """What the mixin uses of its Landscape."""

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
                tile_size: int | None) -> Iterator[Tile]: ...

    def _collect(self, grid: Grid, dirs: list[Direction], adaptive: bool, tol: float,
                 max_points: int | None, force: bool,
                 progress: bool) -> tuple[dict[str, np.ndarray], np.ndarray]: ...


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
    ) -> Iterator[Tile]:
        """Tiles of a line (``d2=None``) or plane, coarse levels first; stop whenever you like.

        Each tile holds its points' grid indices and metric values. ``adaptive=True`` evaluates
        finer levels only where interpolating the coarser one misses by more than ``tol`` × the
        value range; the rest arrive interpolated (``exact=False``). A `grid` replaces `span`
        and `n`. `tile_size` only groups points for delivery: no value depends on it.
        ``progress=True`` shows a bar of the points delivered (as `plane`'s); it closes when the
        stream ends or is closed (``stream.close()``). Off by default: the widget shows its own.
        """
        check_progress(progress)
        dirs = [d1] if d2 is None else [d1, d2]
        grid = Grid.of(len(dirs), span, n, grid)
        self.check_job(grid.size, max_points=max_points, force=force)
        tiles = self._stream(grid, dirs, adaptive=adaptive, tol=tol, tile_size=tile_size)
        if not progress:
            return tiles
        return track_tiles(tiles, progress, grid)

    def _stream(
        self: _Host, grid: Grid, dirs: list[Direction], *, adaptive: bool, tol: float,
        tile_size: int | None,
    ) -> Iterator[Tile]:
        bound = self._bind(dirs)
        return progressive(
            grid, bound.evaluate, self.metric_names, adaptive=adaptive, tol=tol,
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
    ) -> Curve:
        """f(α) = L(θ + α·d) at `n` points of `span` (a number s means (−s, s)).

        ``progress=True`` shows a bar (`tqdm.auto`) of the points done, with points/s and the
        time left, once the call has run for a second; ``False`` shows nothing. Display only:
        the values are the same bits either way.
        """
        dirs, grid = [d], Grid.line(span, n)
        vals, _ = self._collect(grid, dirs, adaptive, tol, max_points, force, progress)
        return Curve(
            x=grid.x,
            values={m: v[0] for m, v in vals.items()},
            directions=(d.provenance,),
            meta=self.describe(dirs, adaptive=adaptive),
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
        """
        dirs, grid = [d1, d2], Grid.plane(span, n)
        vals, evaluated = self._collect(grid, dirs, adaptive, tol, max_points, force, progress)
        return self.surface(grid, (d1, d2), vals, evaluated, adaptive=adaptive,
                            tol=tol if adaptive else None, evaluations=int(evaluated.sum()))

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
    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        check_progress(progress)
        self.check_job(grid.size, max_points=max_points, force=force)
        tiles = self._stream(grid, dirs, adaptive=adaptive, tol=tol, tile_size=None)
        # closing(): the bar ends here even if collect itself is interrupted between tiles.
        with closing(track_tiles(tiles, progress, grid)) as tracked:
            return collect(tracked, self.metric_names, grid.shape)
