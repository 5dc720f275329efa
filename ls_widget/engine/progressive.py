"""Coarse-to-fine evaluation of a grid as a stream of tiles, with adaptive refinement."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np

from .sampling import Grid, Tile, chunks, interpolate

# Halving the grid spacing shrinks interpolation error at least 4× (linear) and 16× (cubic) on
# smooth surfaces; we assume only 4× when predicting where the next level needs evaluating.
_ADAPTIVE_DECAY = 0.25


def progressive(
    grid: Grid,
    evaluate: Callable[[np.ndarray], np.ndarray],
    names: Sequence[str],
    *,
    adaptive: bool,
    tol: float,
    tile_size: int,
) -> Iterator[Tile]:
    """Coarse-to-fine tiles of `grid`; `evaluate(coeffs (P, k))` → values (P, len(names)).

    With `adaptive`, finer levels evaluate only where interpolation from the coarser level is
    expected to miss by more than `tol` × the value range; the rest arrive interpolated in
    tiles with ``exact=False``. Which points are evaluated depends on the values only.
    """
    if not (isinstance(tol, (int, float)) and tol > 0):
        raise ValueError(f"tol must be a positive fraction of the value range, got {tol!r}")
    if isinstance(tile_size, bool) or not isinstance(tile_size, (int, np.integer)) or (
        tile_size < 1
    ):
        raise ValueError(f"tile_size must be a positive int (points per tile), got "
                         f"{tile_size!r}")
    tile_size = int(tile_size)
    shape = grid.shape
    total = grid.size
    known = 0
    values = np.full((len(names), *shape), np.nan)
    err = np.zeros(shape)
    evaluated = np.zeros(shape, dtype=bool)
    xs, ys = grid.x, grid.y

    def run(level: int, rows: np.ndarray, cols: np.ndarray) -> Iterator[Tile]:
        nonlocal known
        for r, c in chunks(rows, cols, tile_size):
            vals = evaluate(grid.coeffs(r, c))
            values[:, r, c] = vals.T
            evaluated[r, c] = True
            known += len(r)
            yield Tile(level, r, c, {m: vals[:, i] for i, m in enumerate(names)},
                       True, known / total)

    for level, rows, cols in grid.order:
        if not adaptive or level == 0:
            yield from run(level, rows, cols)
            continue
        gy, gx = grid.level_grid(level - 1)
        pts = (ys[rows], xs[cols])
        pred = np.stack([
            interpolate((ys[gy], xs[gx]), values[i][np.ix_(gy, gx)], pts)
            for i in range(len(names))
        ])
        if level == 1:
            need = np.ones(len(rows), dtype=bool)
        else:
            from scipy.ndimage import maximum_filter

            stride = max(grid.strides[level - 1])
            est = maximum_filter(err, size=2 * stride + 1, mode="nearest")[rows, cols]
            finite = values[0][evaluated]
            finite = finite[np.isfinite(finite)]
            vrange = float(np.ptp(finite)) if finite.size else 0.0
            need = (est * _ADAPTIVE_DECAY > tol * vrange) | ~np.isfinite(pred[0])
            err[rows[~need], cols[~need]] = est[~need] * _ADAPTIVE_DECAY
        yield from run(level, rows[need], cols[need])
        with np.errstate(invalid="ignore"):  # inf − inf where both are divergent
            miss = np.abs(values[0][rows[need], cols[need]] - pred[0][need])
        err[rows[need], cols[need]] = np.where(np.isfinite(miss), miss, np.inf)
        skip = ~need
        if skip.any():
            r, c = rows[skip], cols[skip]
            values[:, r, c] = pred[:, skip]
            known += int(skip.sum())
            yield Tile(level, r, c, {m: pred[i, skip] for i, m in enumerate(names)},
                       False, known / total)


def collect(
    tiles: Iterable[Tile], names: Sequence[str], shape: tuple[int, int]
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Assemble tiles into one array per metric (NaN where no tile came) and the mask of
    points that were evaluated rather than interpolated."""
    vals = {m: np.full(shape, np.nan) for m in names}
    evaluated = np.zeros(shape, dtype=bool)
    for tile in tiles:
        for m in names:
            vals[m][tile.rows, tile.cols] = tile.values[m]
        evaluated[tile.rows, tile.cols] = tile.exact
    return vals, evaluated
