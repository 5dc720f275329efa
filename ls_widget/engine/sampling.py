"""Grids, the coarse-to-fine order of their points, and the tiles a stream yields.

Level 0 is a coarse subgrid that contains the centre (the model) and the edges; each finer
level halves the stride, reuses every point of the coarser levels and adds the missing ones.
Within a level, points nearest the centre come first, so the picture sharpens around the
model first.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

Span = tuple[float, float]


def parse_span(span: float | Sequence[float], what: str = "span") -> Span:
    """`s` → (−s, s); `(lo, hi)` → itself. Raises unless lo < hi, both finite."""
    if isinstance(span, (int, float, np.floating, np.integer)) and not isinstance(span, bool):
        lo, hi = -float(span), float(span)
    else:
        try:
            lo, hi = (float(v) for v in span)  # type: ignore[union-attr]
        except (TypeError, ValueError):
            raise TypeError(
                f"{what} must be a number s (meaning (-s, s)) or a pair (min, max), got {span!r}"
            ) from None
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"{what} must be finite, got ({lo}, {hi})")
    if lo >= hi:
        raise ValueError(
            f"{what} has min {lo} ≥ max {hi}; give (min, max) with min < max, e.g. (-1, 1)"
        )
    return lo, hi


def parse_plane_span(span: float | Sequence) -> tuple[Span, Span]:
    """A plane's span: a number, one (lo, hi) for both axes, or ((xlo, xhi), (ylo, yhi))."""
    if (
        isinstance(span, Sequence)
        and len(span) == 2
        and all(isinstance(s, Sequence) for s in span)
    ):
        return parse_span(span[0], "x span"), parse_span(span[1], "y span")
    s = parse_span(span)
    return s, s


def parse_n(n: int | Sequence[int], axes: int) -> tuple[int, ...]:
    """Points per axis: an int for every axis or one int per axis, each at least 2."""
    try:
        ns = (n,) * axes if isinstance(n, (int, np.integer)) else tuple(n)
    except TypeError:
        raise TypeError(f"n must be an int or {axes} ints, got {n!r}") from None
    if len(ns) != axes or not all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in ns
    ):
        raise TypeError(f"n must be an int or {axes} ints, got {n!r}")
    if any(v < 2 for v in ns):
        raise ValueError(f"n={n!r}: a grid needs at least 2 points per axis (n ≥ 2)")
    return tuple(int(v) for v in ns)


def axis(span: Span, n: int) -> np.ndarray:
    """`n` points from lo to hi, built from the centre so an odd symmetric grid hits 0 exactly."""
    lo, hi = span
    centre, half = (lo + hi) / 2.0, (hi - lo) / 2.0
    k = np.arange(n, dtype=np.float64)
    x = centre + half * ((2.0 * k - (n - 1)) / (n - 1))
    x[0], x[-1] = lo, hi
    if n % 2 == 1:
        x[n // 2] = centre
    return x


def level_strides(n: int, coarse: int = 5) -> list[int]:
    """Strides from coarse to 1: the coarsest leaves at least `coarse` points per axis."""
    s = 1
    while (n - 1) // (2 * s) >= coarse - 1:
        s *= 2
    out = []
    while s >= 1:
        out.append(s)
        s //= 2
    return out


def level_indices(n: int, stride: int) -> np.ndarray:
    """Indices of one axis at a stride: centre ± k·stride, plus both ends (nested in stride)."""
    c = n // 2
    idx = set(range(c, -1, -stride)) | set(range(c, n, stride)) | {0, n - 1}
    return np.array(sorted(idx), dtype=np.int64)


@dataclass(frozen=True)
class Tile:
    """A batch of grid points and their values.

    Attributes:
        level: refinement level (0 is the coarsest).
        rows: row index of each point (the y axis; all zeros for a line).
        cols: column index of each point (the x axis).
        values: metric name → values at the points (float64; NaN/inf where non-finite).
        exact: False for points filled by interpolation (adaptive refinement), not evaluated.
        done: fraction of the grid's points known after this tile.
    """

    level: int
    rows: np.ndarray
    cols: np.ndarray
    values: dict[str, np.ndarray]
    exact: bool = True
    done: float = 0.0

    def __len__(self) -> int:
        return len(self.cols)


def grid_strides(shape: tuple[int, int]) -> list[tuple[int, int]]:
    """(row stride, column stride) of each level of a (ny, nx) grid, coarse to fine.

    The axis with fewer levels repeats its coarsest stride, so both reach 1 on the last level.
    """
    sy, sx = level_strides(shape[0]), level_strides(shape[1])
    levels = max(len(sy), len(sx))
    sy = [sy[0]] * (levels - len(sy)) + sy
    sx = [sx[0]] * (levels - len(sx)) + sx
    return list(zip(sy, sx, strict=True))


def progressive_order(shape: tuple[int, int]) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """(level, rows, cols) of the points each level adds, nearest the centre first."""
    ny, nx = shape
    seen = np.zeros((ny, nx), dtype=bool)
    out = []
    cy, cx = ny // 2, nx // 2
    for level, (a, b) in enumerate(grid_strides(shape)):
        mask = np.zeros_like(seen)
        mask[np.ix_(level_indices(ny, a), level_indices(nx, b))] = True
        mask &= ~seen
        rows, cols = np.nonzero(mask)
        d = ((rows - cy) / max(ny, 1)) ** 2 + ((cols - cx) / max(nx, 1)) ** 2
        order = np.argsort(d, kind="stable")
        out.append((level, rows[order], cols[order]))
        seen |= mask
    return out


def chunks(
    rows: np.ndarray, cols: np.ndarray, size: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Consecutive runs of `size` points (the last may be shorter)."""
    for i in range(0, len(rows), max(1, size)):
        yield rows[i : i + size], cols[i : i + size]


def level_grid(shape: tuple[int, int], level: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of the rectilinear subgrid known after `level`."""
    sy, sx = grid_strides(shape)[level]
    return level_indices(shape[0], sy), level_indices(shape[1], sx)


def interpolate(
    coords: tuple[np.ndarray, np.ndarray],
    grid_values: np.ndarray,
    points: tuple[np.ndarray, np.ndarray],
) -> np.ndarray:
    """Values at `points` (y, x) from a rectilinear grid: cubic where possible, else linear.

    Cubic splines would smear one non-finite value over the whole grid, so a grid holding NaN
    or inf is interpolated linearly (non-finite values then stay local).
    """
    from scipy.interpolate import RegularGridInterpolator

    gy, gx = coords
    finite = bool(np.isfinite(grid_values).all())
    if len(gy) == 1 or len(gx) == 1:  # a line: interpolate along the one real axis
        g = gx if len(gy) == 1 else gy
        p = points[1] if len(gy) == 1 else points[0]
        v = grid_values.reshape(-1)
        if finite and len(g) >= 4:
            from scipy.interpolate import CubicSpline

            return CubicSpline(g, v)(p)
        return np.interp(p, g, v)
    method = "cubic" if finite and min(len(gy), len(gx)) >= 4 else "linear"
    rgi = RegularGridInterpolator((gy, gx), grid_values, method=method)
    return rgi(np.stack(points, axis=-1))


@dataclass(frozen=True, eq=False)
class Grid:
    """The points of a line or a plane and the coarse-to-fine order they are computed in.

    One value, made here and passed to everything that needs it (the engine's streams, the
    widget's traits and level messages), so the grid is derived once.

    Attributes:
        x: α coordinates (columns), read-only.
        y: β coordinates (rows), read-only; ``[0.0]`` for a line.
        k: directions spanning it: 1 for a line, 2 for a plane.
    """

    x: np.ndarray
    y: np.ndarray
    k: int

    def __post_init__(self) -> None:
        for name in ("x", "y"):
            a = np.array(getattr(self, name), dtype=np.float64)
            a.setflags(write=False)
            object.__setattr__(self, name, a)

    @classmethod
    def line(cls, span: float | Sequence[float] = 1.0, n: int = 51) -> Grid:
        """`n` points over `span` (a number s means (−s, s))."""
        (nx,) = parse_n(n, 1)
        return cls(axis(parse_span(span), nx), np.zeros(1), 1)

    @classmethod
    def plane(cls, span: float | Sequence = 1.0, n: int | Sequence[int] = 41) -> Grid:
        """An nx × ny grid; `span` as `parse_plane_span`, `n` an int or (nx, ny)."""
        (sx, sy), (nx, ny) = parse_plane_span(span), parse_n(n, 2)
        return cls(axis(sx, nx), axis(sy, ny), 2)

    @classmethod
    def of(cls, k: int, span: float | Sequence = 1.0, n: int | Sequence[int] = 41,
           grid: Grid | None = None) -> Grid:
        """`grid` if given (checked to span `k` directions), else a line (k = 1) or a plane."""
        if grid is None:
            return cls.line(span, n) if k == 1 else cls.plane(span, n)  # type: ignore[arg-type]
        if not isinstance(grid, Grid) or grid.k != k:
            raise TypeError(f"grid must be an lw.Grid with k={k} for {k} direction(s), "
                            f"got {grid!r}")
        return grid

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns) = (len(y), len(x))."""
        return (len(self.y), len(self.x))

    @property
    def size(self) -> int:
        """Number of points."""
        return len(self.x) * len(self.y)

    @property
    def span(self) -> tuple[Span, Span]:
        """((x min, x max), (y min, y max))."""
        return (float(self.x[0]), float(self.x[-1])), (float(self.y[0]), float(self.y[-1]))

    @cached_property
    def strides(self) -> list[tuple[int, int]]:
        """(row stride, column stride) of each level, coarse to fine."""
        return grid_strides(self.shape)

    @cached_property
    def order(self) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """(level, rows, cols) of the points each level adds, nearest the centre first."""
        return progressive_order(self.shape)

    @property
    def levels(self) -> int:
        """Number of refinement levels."""
        return len(self.strides)

    def level_grid(self, level: int) -> tuple[np.ndarray, np.ndarray]:
        """Row and column indices of the rectilinear subgrid known after `level`."""
        return level_grid(self.shape, level)

    def coeffs(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Coefficients (P, k) of the points (rows[p], cols[p]) along the k directions."""
        if self.k == 1:
            return self.x[cols][:, None]
        return np.stack([self.x[cols], self.y[rows]], axis=1)
