"""Resuming a stream: the tiles of a grid, evaluating only the points not known already.

A job that stopped part-way (a killed batch job, a preempted node) kept the values of its
finished tiles. `resume` replays the same stream (the same levels, tiles and order, adaptive
decisions included) and takes the values of those points from what was kept instead of
evaluating them again. A point's value never depends on which points share its call (the
engine's schedule is a pure function of the inputs), so the finished grid is bit-identical to
one computed without a stop, however often it was stopped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..directions.direction import Direction
from .progressive import progressive
from .sampling import Grid, Tile

if TYPE_CHECKING:
    from .landscape import Landscape

__all__ = ["resume"]


def resume(
    land: Landscape,
    directions: Sequence[Direction],
    grid: Grid,
    values: Mapping[str, np.ndarray],
    known: np.ndarray,
    *,
    adaptive: bool = False,
    tol: float = 0.01,
    max_points: int | None = None,
    force: bool = False,
) -> Iterator[Tile]:
    """The tiles of ``land.stream(*directions, grid=grid, adaptive=adaptive, tol=tol)``, with
    the points where `known` is True taken from `values` rather than evaluated.

    Tiles whose points are all known arrive at once, with the kept values; the others hold
    the kept values where known and evaluated ones elsewhere. With an empty `known` this is
    the plain stream.

    Args:
        land: the landscape (the same model, data and settings as the stopped job).
        directions: the k directions of `grid` (1 for a line, 2 for a plane).
        grid: the grid the stopped job streamed.
        values: metric name → array of ``grid.shape``, for every name of
            ``land.metric_names`` (anything where `known` is False).
        known: bool mask of ``grid.shape``: the points evaluated before.
        adaptive: adaptive refinement, as `Landscape.stream` (the stopped job's setting).
        tol: its tolerance, a fraction of the value range.
        max_points: grids over this many points are refused (`Landscape.check_job`).
        force: run a grid over `max_points` anyway.
    """
    dirs = list(directions)
    if len(dirs) != grid.k:
        raise ValueError(f"the grid spans {grid.k} direction(s); got {len(dirs)}")
    names = land.metric_names
    known = np.asarray(known, dtype=bool)
    if known.shape != grid.shape:
        raise ValueError(f"known has shape {known.shape}; the grid's is {grid.shape}")
    missing = [m for m in names if m not in values]
    if missing:
        raise ValueError(f"values lack the metrics {missing}; the landscape computes {names}")
    kept = np.stack([np.asarray(values[m], dtype=np.float64) for m in names])
    if kept.shape[1:] != grid.shape:
        raise ValueError(f"values have shape {kept.shape[1:]}; the grid's is {grid.shape}")
    land.check_job(grid.size, max_points=max_points, force=force)
    # The stream's own binding and tile size (landscape_slices._stream): same tiles, same order.
    bound = land._bind(dirs)
    evaluate = _skipping_known(bound.evaluate, grid, kept, known)
    return progressive(grid, evaluate, names, adaptive=adaptive, tol=tol,
                       tile_size=bound.tile_size)


def _skipping_known(
    evaluate: Callable[[np.ndarray], np.ndarray],
    grid: Grid,
    kept: np.ndarray,
    known: np.ndarray,
) -> Callable[[np.ndarray], np.ndarray]:
    """`evaluate(coeffs)` that evaluates only the points not `known` (kept: (m, ny, nx))."""

    def run(coeffs: np.ndarray) -> np.ndarray:
        rows, cols = grid_indices(grid, coeffs)
        have = known[rows, cols]
        out = np.empty((len(rows), kept.shape[0]))
        out[have] = kept[:, rows[have], cols[have]].T
        if not have.all():
            out[~have] = evaluate(coeffs[~have])
        return out

    return run


def grid_indices(grid: Grid, coeffs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of the points `coeffs` (P, k) of `grid`, which must be grid points."""
    coeffs = np.asarray(coeffs, dtype=np.float64).reshape(-1, grid.k)
    cols = _positions(grid.x, coeffs[:, 0])
    rows = _positions(grid.y, coeffs[:, 1]) if grid.k == 2 else np.zeros_like(cols)
    return rows, cols


def _positions(axis: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Indices of the values `at` in the increasing `axis` (exact matches only)."""
    idx = np.clip(np.searchsorted(axis, at), 0, len(axis) - 1)
    if not np.array_equal(axis[idx], at):
        raise ValueError("a point asked for is not on the grid")
    return idx
