"""The shape of a 2D loss surface around the model: basin, saddle, wine-bottle, valley, other.

The 2D kinds of Xu et al. 2024 (a v-basin × w-peak plane is a saddle, w-peak × w-peak a
ring-shaped trough around a central bump); their definitions are not public, so these are our
operational ones (../shared/METHODS.md). The model sits at (α, β) = (0, 0).

- **smoothing**: ``scipy.ndimage.gaussian_filter`` of width `smoothing` grid steps (never wider
  than 1/16 of the shorter side), ``mode="nearest"``; non-finite values (NaN, ±inf) are walls
  one range above the largest finite value.
- **profiles**: the smoothed surface read (bilinearly) along straight lines, and classified
  as curves by `ls_widget.shapes.classify` without further smoothing, the prominence
  threshold relative to the largest range among the profiles looked at together.
- **the decision** reads 10 profiles through the model: 8 angles (every 22.5°) and the two
  eigenvectors of the smoothed surface's Hessian there, in coordinates scaled by the distance
  from the model to the grid's nearest edge along each axis (an ellipse inscribed in the
  grid). A profile is *flat* when its range is at most 10 % of the largest; over the others:
  - basin: the model at a minimum of every one, and no flat direction;
  - valley: the same, with a flat direction: the loss varies along a trough less than 10 % of
    what it varies across it (α² + 0·β, or a trough rotated or gently tilted);
  - saddle: the model at a minimum of one and at a maximum of another, or at a maximum of a
    flat one read at its own scale (prominence relative to its own range) when its range
    exceeds 0.1 % of the largest and 20 × the surface's noise (a robust deviation of the
    fourth differences along rows and columns): a shallow mined w-peak across a steep v-basin;
  - wine-bottle: every one a w-peak: along every ray the lowest point lies at an interior
    radius and the values rise beyond it, a ring-shaped trough around a central bump;
  - other: anything else (a slope, a hill, too few points, a flat surface).
- **critical points**: interior grid points of the smoothed surface that are strict minima or
  maxima of their 8 neighbours, or saddles, where s − s(p) changes sign at least 4 times around
  that ring (Kuijper 2004, "On detecting all saddle points in 2D images"). The kind is from the
  signs of the Hessian's eigenvalues (finite differences, in α, β units; the ring's verdict
  where an eigenvalue is 0). A point is kept when the profiles through it along the Hessian's
  eigenvectors (to the grid's edges, read as above against the larger of their ranges and the
  decision's) have it as the minimum or maximum its eigenvalues say. Two minima are one basin
  when the segment between them rises less than the prominence threshold above the higher
  (the lower stays; maxima likewise); of saddles within 0.1 of each other (coordinates over
  the half-spans) the one nearest the model stays. One Newton step (at most half a grid step)
  refines the location. Nearest the model first.
- **margin**: the smallest 1D margin among the deciding profiles (for a saddle: the best
  minimum profile's and the best maximum profile's), and for basin and valley how far the
  flat-to-steep range ratio is from 10 % (log-ratio, 1 at a factor 4).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import map_coordinates

from ..results.records import Surface
from . import _smooth
from .classify import FLAT_RTOL, POSITION_TOL, CurveShape, _check_number, _log_ratio, _metric, _r
from .classify import _profile_shape as profile_shape

SURFACE_KINDS = ("basin", "saddle", "wine-bottle", "valley", "other")
ANGLES = 8  # profiles through the model every 180°/ANGLES, plus the Hessian's eigenvectors
VALLEY_RATIO = 0.1  # a profile whose range is at most this fraction of the largest is flat
FLAT_FLOOR = 1e-3  # a flat profile with a range above this fraction (and the noise) has a shape
MAX_CANDIDATES = 256  # ring-test critical points examined, nearest the model first
_RING = ((-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1))


@dataclass(frozen=True)
class CriticalPoint:
    """A located critical point of the smoothed surface.

    Attributes:
        alpha: the coordinate along x (d₁).
        beta: the coordinate along y (d₂).
        loss: the raw (unsmoothed) value at the grid point nearest (alpha, beta).
        kind: "min", "max" or "saddle", from the signs of the smoothed surface's Hessian.
        eigenvalues: the Hessian's eigenvalues there, ascending, in loss per coordinate².
    """

    alpha: float
    beta: float
    loss: float
    kind: str
    eigenvalues: tuple[float, float]


@dataclass(frozen=True)
class SurfaceShape:
    """The shape of a surface around the model (Xu et al. 2024; definitions in
    `ls_widget.shapes.surface`).

    Attributes:
        kind: one of `SURFACE_KINDS`.
        critical: located critical points, nearest the model first.
        margin: confidence in [0, 1].
        metric: which values were classified.
    """

    kind: str
    critical: tuple[CriticalPoint, ...]
    margin: float
    metric: str

    def __str__(self) -> str:
        head = f"{self.kind} (margin {self.margin:.2f})"
        pts = "; ".join(f"{c.kind} at ({_r(c.alpha):.2f}, {_r(c.beta):.2f})"
                       for c in self.critical[:4])
        more = f" (+{len(self.critical) - 4} more)" if len(self.critical) > 4 else ""
        return head + (f": {pts}{more}" if pts else "")


def classify_surface(
    surf: Surface,
    *,
    metric: str = "loss",
    smoothing: float = 1.0,
    prominence: float = 0.05,
) -> SurfaceShape:
    """Classify the surface around the model as basin, saddle, wine-bottle, valley or other.

    The operational definitions of the 2D shapes of Xu et al. 2024 ("Visualizing,
    Rethinking, and Mining the Loss Landscape of Deep Neural Networks") are in this module's
    docstring (arXiv:2405.12493); saddles by the ring test of Kuijper 2004.

    Args:
        surf: a `lw.Surface` whose grid contains the model at (0, 0).
        metric: which values to classify.
        smoothing: the Gaussian filter's width in grid steps (0: none).
        prominence: the smallest prominence of an extremum along a profile, relative to the
            largest range among the profiles looked at together (0 < p < 1).

    Returns:
        The `SurfaceShape`: kind, located critical points (nearest the model first), margin.
    """
    if not isinstance(surf, Surface):
        raise TypeError(f"classify_surface() takes a Surface, got {type(surf).__name__}; "
                        "for a curve use classify()")
    _check_number("smoothing", smoothing, lo=0.0, example="smoothing=1.0")
    _check_number("prominence", prominence, lo=0.0, example="prominence=0.05")
    if not 0.0 < prominence < 1.0:
        raise ValueError(f"prominence={prominence!r} must lie in (0, 1); pass e.g. 0.05")
    z = _metric(surf, metric)
    x, y = np.asarray(surf.x, np.float64), np.asarray(surf.y, np.float64)
    if len(x) < 3 or len(y) < 3:
        return SurfaceShape("other", (), 0.0, metric)
    if not (x[0] <= 0.0 <= x[-1] and y[0] <= 0.0 <= y[-1]):
        raise ValueError(f"the model (0, 0) lies outside this surface's grid (x in [{x[0]:.6g}, "
                         f"{x[-1]:.6g}], y in [{y[0]:.6g}, {y[-1]:.6g}]); classify a surface "
                         "computed around the model")
    finite = np.isfinite(z)
    if finite.sum() < 9:
        return SurfaceShape("other", (), 0.0, metric)
    spread = float(z[finite].max() - z[finite].min())
    if spread <= FLAT_RTOL * float(np.abs(z[finite]).max()):
        return SurfaceShape("other", (), 0.0, metric)
    lo, hi = float(z[finite].min()), float(z[finite].max())
    walled = np.where(finite, z, hi + (hi - lo))
    sigma = _smooth.effective_sigma(float(smoothing), min(len(x), len(y)))
    noise = _noise(walled) if len(x) >= 5 and len(y) >= 5 else 0.0
    grid = _Grid(x, y, _smooth.smooth2d(walled, sigma), z, noise)
    kind, margin, top = _decide(grid, float(prominence))
    critical = _critical_points(grid, float(prominence), top)
    return SurfaceShape(kind, critical, float(np.clip(margin, 0.0, 1.0)), metric)


class _Grid:
    """The smoothed surface: values along lines, finite-difference derivatives."""

    def __init__(self, x: np.ndarray, y: np.ndarray, s: np.ndarray, raw: np.ndarray,
                 noise: float) -> None:
        self.x, self.y, self.s, self.raw, self.noise = x, y, s, raw, noise
        self.half = np.array([(x[-1] - x[0]) / 2, (y[-1] - y[0]) / 2])

    def sample(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """The smoothed values at the points (a, b), bilinearly."""
        j = np.interp(a, self.x, np.arange(len(self.x)))
        i = np.interp(b, self.y, np.arange(len(self.y)))
        return np.asarray(map_coordinates(self.s, [i, j], order=1, mode="nearest"), np.float64)

    def derivatives(self, i: int, j: int) -> tuple[np.ndarray, np.ndarray]:
        """Gradient and Hessian at the interior grid point (i, j), in (α, β) units."""
        s, x, y = self.s, self.x, self.y
        hx0, hx1, hy0, hy1 = x[j] - x[j - 1], x[j + 1] - x[j], y[i] - y[i - 1], y[i + 1] - y[i]
        gx = (s[i, j + 1] - s[i, j - 1]) / (hx0 + hx1)
        gy = (s[i + 1, j] - s[i - 1, j]) / (hy0 + hy1)
        sxx = 2 * ((s[i, j + 1] - s[i, j]) / hx1 - (s[i, j] - s[i, j - 1]) / hx0) / (hx0 + hx1)
        syy = 2 * ((s[i + 1, j] - s[i, j]) / hy1 - (s[i, j] - s[i - 1, j]) / hy0) / (hy0 + hy1)
        sxy = (s[i + 1, j + 1] - s[i + 1, j - 1] - s[i - 1, j + 1] + s[i - 1, j - 1]) / (
            (hx0 + hx1) * (hy0 + hy1))
        return np.array([gx, gy]), np.array([[sxx, sxy], [sxy, syy]])

    def directions(self, hess: np.ndarray, reach: np.ndarray) -> list[np.ndarray]:
        """The Hessian's eigenvectors in coordinates scaled by `reach` (ascending
        eigenvalues), or none where the Hessian vanishes."""
        scaled = hess * np.outer(reach, reach)
        if not np.any(scaled):
            return []
        _, vecs = np.linalg.eigh(scaled)
        return [vecs[:, 0], vecs[:, 1]]

    def profile(self, p: np.ndarray, u: np.ndarray, reach: np.ndarray,
                t_range: tuple[float, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Values along p + t·(reach ⊙ u): t in `t_range`, or out to the grid's edges."""
        step = reach * u
        if t_range is None:
            lo_t, hi_t = -math.inf, math.inf
            for k, (lo, hi) in enumerate(((self.x[0], self.x[-1]), (self.y[0], self.y[-1]))):
                if abs(step[k]) > 1e-15:
                    a, b = sorted(((lo - p[k]) / step[k], (hi - p[k]) / step[k]))
                    lo_t, hi_t = max(lo_t, a), min(hi_t, b)
        else:
            lo_t, hi_t = t_range
        cells = np.abs(step) * (hi_t - lo_t) / (2 * self.half) * (
            np.array([len(self.x), len(self.y)]) - 1)
        n = max(5, math.ceil(float(np.hypot(*cells))) + 1) | 1
        t = np.linspace(lo_t, hi_t, n)
        return t, self.sample(p[0] + t * step[0], p[1] + t * step[1])


def _decide(grid: _Grid, prominence: float) -> tuple[str, float, float]:
    """The kind and margin from the profiles through the model, and their largest range."""
    reach = np.array([min(-grid.x[0], grid.x[-1]), min(-grid.y[0], grid.y[-1])])
    if not (reach > 0).all():
        return "other", 0.0, 0.0  # the model on the grid's edge: no profile through it
    i = int(np.clip(np.argmin(np.abs(grid.y)), 1, len(grid.y) - 2))
    j = int(np.clip(np.argmin(np.abs(grid.x)), 1, len(grid.x) - 2))
    angles = [np.array([math.cos(a), math.sin(a)]) for a in np.arange(ANGLES) * math.pi / ANGLES]
    dirs = angles + grid.directions(grid.derivatives(i, j)[1], reach)
    origin = np.zeros(2)
    profiles = [grid.profile(origin, u, reach, (-1.0, 1.0)) for u in dirs]
    ranges = np.array([float(np.ptp(v)) for _, v in profiles])
    top = float(ranges.max())
    if top <= 0:
        return "other", 0.0, top
    steep = ranges > VALLEY_RATIO * top
    read = [_read(p, top, prominence, grid.noise) for p in profiles]
    shapes = [r for r, keep in zip(read, steep, strict=True) if keep and r is not None]
    flat_ratio = float(ranges.min() / top)
    at_min = [s.margin for s in shapes if s.position == "minimum"]
    at_max = [s.margin for s in read if s is not None and s.position == "maximum"]
    if len(at_min) == len(shapes) and not at_max:
        if steep.all():
            return "basin", min(*at_min, _log_ratio(flat_ratio / VALLEY_RATIO)), top
        return "valley", min(*at_min, _log_ratio(VALLEY_RATIO / max(flat_ratio, 1e-300))), top
    if at_min and at_max:
        return "saddle", min(max(at_min), max(at_max)), top
    if steep.all() and all(s.kind == "w-peak" for s in shapes):
        return "wine-bottle", min(s.margin for s in shapes), top
    return "other", min(s.margin for s in shapes), top


def _read(profile: tuple[np.ndarray, np.ndarray], top: float, prominence: float,
          noise: float) -> CurveShape | None:
    """A profile's shape, prominences relative to `top`; a flat one (range ≤ VALLEY_RATIO ×
    top) at its own scale when clear of the noise (a shallow barrier across a steep basin is
    still a saddle: Xu et al.'s v-basin × mined w-peak plane), else None."""
    t, v = profile
    r = float(np.ptp(v))
    if r > VALLEY_RATIO * top:
        return profile_shape(t, v, prominence=prominence, reference=top)
    if r > max(FLAT_FLOOR * top, _smooth.NOISE_FACTOR * noise):
        return profile_shape(t, v, prominence=prominence, reference=r)
    return None


def _noise(z: np.ndarray) -> float:
    """A robust noise level: 1.4826 × median |Δ⁴z| / √70 over the rows' and columns' fourth
    differences (which cancel any cubic; √70 is the norm of the weights 1, −4, 6, −4, 1)."""
    d4 = np.concatenate([np.diff(z, 4, axis=0).ravel(), np.diff(z, 4, axis=1).ravel()])
    return float(1.4826 * np.median(np.abs(d4)) / math.sqrt(70.0))


def _ring_kinds(s: np.ndarray) -> list[tuple[int, int, str]]:
    """Interior grid points that are strict minima or maxima of their 8 neighbours, or saddles
    (s − s(p) changes sign at least 4 times around them), with that verdict."""
    ny, nx = s.shape
    c = s[1:-1, 1:-1]
    diffs = np.stack([s[1 + di:ny - 1 + di, 1 + dj:nx - 1 + dj] - c for di, dj in _RING])
    out = []
    for kind, mask in (("min", (diffs > 0).all(0)), ("max", (diffs < 0).all(0))):
        out += [(int(i) + 1, int(j) + 1, kind) for i, j in zip(*np.nonzero(mask), strict=True)]
    mixed = (diffs > 0).any(0) & (diffs < 0).any(0)
    for i, j in zip(*np.nonzero(mixed), strict=True):
        signs = [v for v in np.sign(diffs[:, i, j]) if v != 0]
        changes = sum(a != b for a, b in zip(signs, signs[1:] + signs[:1], strict=True))
        if changes >= 4:
            out.append((int(i) + 1, int(j) + 1, "saddle"))
    return out


def _critical_points(grid: _Grid, prominence: float,
                     top: float) -> tuple[CriticalPoint, ...]:
    """Located critical points, confirmed along their Hessian's eigenvectors, nearest first;
    prominences relative to the larger of `top` and their own profiles' ranges."""
    cands = _ring_kinds(grid.s)
    dist = [float(np.hypot(grid.x[j] / grid.half[0], grid.y[i] / grid.half[1]))
            for i, j, _ in cands]
    order = np.argsort(dist, kind="stable")[:MAX_CANDIDATES]
    kept: list[CriticalPoint] = []
    for k in order:
        i, j, ring = cands[k]
        point = _confirmed(grid, i, j, ring, prominence, top)
        if point is not None:
            kept.append(point)
    return tuple(_distinct(kept, grid, prominence * top))


def _confirmed(grid: _Grid, i: int, j: int, ring: str, prominence: float,
               top: float) -> CriticalPoint | None:
    """The critical point at grid point (i, j) if its profiles confirm it, else None."""
    grad, hess = grid.derivatives(i, j)
    lam = np.linalg.eigvalsh(hess)
    degenerate = abs(lam).min() <= 1e-12 * abs(lam).max() if np.any(lam) else True
    kind = ring if degenerate else ("min" if lam[0] > 0 else "max" if lam[1] < 0 else "saddle")
    dirs = grid.directions(hess, grid.half)
    if len(dirs) < 2:
        return None
    p = np.array([grid.x[j], grid.y[i]])
    profiles = [grid.profile(p, u, grid.half) for u in dirs]
    top = max(top, *(float(np.ptp(v)) for _, v in profiles))
    if top <= 0:
        return None
    read = [_read(pr, top, prominence, grid.noise) for pr in profiles]
    positions = [r.position if r is not None else "flat" for r in read]
    want = {"min": ["minimum"] * 2, "max": ["maximum"] * 2, "saddle": ["maximum", "minimum"]}
    if positions != want[kind]:
        return None
    # One Newton step towards the stationary point, at most half a grid step per axis.
    steps = np.array([grid.x[j + 1] - grid.x[j], grid.y[i + 1] - grid.y[i]])
    delta = np.zeros(2)
    if abs(np.linalg.det(hess)) > 0:
        delta = np.clip(-np.linalg.solve(hess, grad), -steps / 2, steps / 2)
    return CriticalPoint(float(p[0] + delta[0]), float(p[1] + delta[1]),
                         float(grid.raw[i, j]), kind, (float(lam[0]), float(lam[1])))


def _distinct(points: list[CriticalPoint], grid: _Grid, barrier: float) -> list[CriticalPoint]:
    """One point per feature, nearest the model first. Two minima are one basin when the
    smoothed values on the segment between them rise less than `barrier` above the higher
    (likewise maxima, upside down): the lower minimum (higher maximum) stays. Of saddles
    within POSITION_TOL of each other (coordinates over the half-spans), the nearest the
    model stays."""
    def scaled(c: CriticalPoint) -> np.ndarray:
        return np.array([c.alpha, c.beta]) / grid.half

    def height(c: CriticalPoint) -> float:
        return float(grid.sample(np.array([c.alpha]), np.array([c.beta]))[0])

    def same(a: CriticalPoint, b: CriticalPoint) -> bool:
        if a.kind != b.kind:
            return False
        if a.kind == "saddle":
            return float(np.hypot(*(scaled(a) - scaled(b)))) <= POSITION_TOL
        t = np.linspace(0.0, 1.0, 17)
        seg = grid.sample(a.alpha + t * (b.alpha - a.alpha), a.beta + t * (b.beta - a.beta))
        sign = 1.0 if a.kind == "min" else -1.0
        return float(np.max(sign * seg) - max(sign * height(a), sign * height(b))) < barrier

    rank = {"min": height, "max": lambda c: -height(c),
            "saddle": lambda c: float(np.hypot(*scaled(c)))}
    out: list[CriticalPoint] = []
    for c in sorted(points, key=lambda c: (c.kind, rank[c.kind](c))):
        if not any(same(o, c) for o in out):
            out.append(c)
    return sorted(out, key=lambda c: float(np.hypot(*scaled(c))))
