"""The shape of a 1D loss curve f(α) = L(θ + α·d): the kinds of Xu et al. 2024.

Xu, Li, Li & Zhan 2024 ("Visualizing, Rethinking, and Mining the Loss Landscape of Deep
Neural Networks", arXiv:2405.12493) name the shapes a curve through a trained model takes;
their exact definitions are not public in our sources, so these are our operational ones
(../shared/METHODS.md). The model sits at α = `center` (0); every decision is made on the
curve after light smoothing.

- **smoothing**: a Gaussian filter of width `smoothing` grid steps (``gaussian_filter1d``,
  ``mode="nearest"``), never wider than 1/16 of the points. A Gaussian creates no new extrema
  (scale-space, Lindeberg 1994) and keeps a monotone curve monotone; Savitzky–Golay rings at
  a ReLU kink and invents extrema.
- **non-finite values**: +inf, and NaN/−inf runs that reach an end (the loss diverged towards
  it), are walls one range above the largest finite value; interior NaN/−inf runs are masked
  (linearly interpolated). Fewer than 3 finite values: "other", margin 0.
- **flat**: max − min of the finite values ≤ 1e-5 × their largest magnitude (far above
  float32 rounding, far below any shape worth a name: e.g. a frozen layer's direction).
- **extrema**: the interior local extrema of the smoothed curve that survive persistence
  simplification (Edelsbrunner, Letscher & Zomorodian 2002) at `prominence` × its range:
  adjacent pairs differing by less are cancelled, smallest first; a dip next to an end goes
  alone. So each survivor's prominence (its height over the nearer neighbouring survivor or
  end) passes the threshold, and between two minima there is always a barrier (scipy's
  ``find_peaks`` gives two equal minima the full depth however low the barrier between them).
  The ends are never extrema: a minimum at an end is no interior basin, the curve is monotone
  through the model ("v-side"). α is refined by a parabola through three points;
  ``Extremum.loss`` is the raw value at the grid point.
- **scale**: a curve of 11 points or more whose smoothed range spans 3 decades above
  ε = max(20 × the noise at its floor, 1e-5 × the range) is also read on log(f − min + ε)
  (the noise: a robust deviation of fourth differences at the lowest 10 % of the points), and
  that reading wins when it finds more extrema: walls 1e4 times a basin's depth hide it on
  the linear scale. `CurveShape.scale` says which; heights for the position stay linear.
- **the model's position**: "minimum" when it is in the catchment of a minimum m (between
  the maxima around it) and at its bottom: near, |α_m − center| ≤ max(0.1 × the half-span,
  one grid step); or fairly near, ≤ 0.5 × the half-span, and low, f(center) − f(m) ≤ 0.25 ×
  m's prominence (smoothed linear values). A model a little off the bottom of a wide basin (a
  network not quite converged) is at it; one high on its wall or far from it is not. "maximum"
  likewise. "elsewhere": the model at an end of the curve, or a flat or too short curve.
  "wall": otherwise.
- **kinds**: v-basin: one minimum, no maximum, the model at it (ends that flatten count).
  v-side: at most one minimum, no maximum, the model on a wall. w-basin: two minima, the
  model at one. w-peak: the model at a maximum with minima on both sides. vvv-basin: three or
  more minima, the model at one with minima on both sides. The W kinds need every maximum
  between two minima (the curve rises towards both ends). flat: above. other: the rest (e.g.
  two minima and the model on a barrier off-centre, minima not around the model, a hill).
- **margin**: the smallest of (a) log(p/t)/log 4 over the survivors' prominences p (t the
  threshold), (b) log(t/q)/log 4 for the largest cancelled difference q, (c) the position's,
  1 − o at an extremum and 1 − 1/o on a wall, with o = min(d/near, max(d/far, rise/0.25))
  for the extremum whose catchment holds the model (d its distance, rise its height over the
  prominence; o ≤ 1 is "at it"), each clipped to [0, 1]; times (n − 1)/10 for a curve of
  fewer than 11 points. For "flat": log(limit/range)/log 4.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..results.records import Curve, Surface
from . import _smooth

KINDS = ("v-basin", "v-side", "w-basin", "w-peak", "vvv-basin", "flat", "other")
POSITIONS = ("minimum", "maximum", "wall", "elsewhere")

POSITION_TOL = 0.1  # |α − center| within this fraction of the half-span: at the extremum;
POSITION_FAR = 0.5  # or within this fraction of it and
HEIGHT_TOL = 0.25  # within this fraction of the extremum's prominence in height
FLAT_RTOL = 1e-5  # a range below this fraction of the values' magnitude is flat
CLEAN = 4.0  # a prominence this many times from the threshold gives margin 1
FULL_POINTS = 11  # fewer points scale the margin down


@dataclass(frozen=True)
class Extremum:
    """A located local minimum or maximum of a curve.

    Attributes:
        alpha: the coordinate on the curve's axis (refined between grid points).
        loss: the raw (unsmoothed) value at the grid point nearest `alpha` (NaN or −inf
            where that value was masked).
        kind: "min" or "max".
        prominence: scipy's prominence on the smoothed curve, relative to its range (0..1).
    """

    alpha: float
    loss: float
    kind: str
    prominence: float


@dataclass(frozen=True)
class CurveShape:
    """The shape of a curve (Xu et al. 2024; definitions in `ls_widget.shapes.classify`).

    Attributes:
        kind: one of `KINDS`.
        minima: interior local minima that pass the prominence threshold, by alpha.
        maxima: interior local maxima that pass it, by alpha.
        position: where the model (alpha = center) sits: "minimum", "maximum", "wall" or
            "elsewhere".
        margin: confidence in [0, 1]: how far the deciding prominences and the model's
            position are from their thresholds.
        metric: which values were classified.
        smoothing: the Gaussian width asked for, in grid steps.
        prominence: the prominence threshold, relative to the range.
        scale: "linear", or "log" when the curve was classified on log(f − min + ε).
    """

    kind: str
    minima: tuple[Extremum, ...]
    maxima: tuple[Extremum, ...]
    position: str
    margin: float
    metric: str
    smoothing: float
    prominence: float
    scale: str = "linear"

    def __str__(self) -> str:
        parts = []
        for name, ext in (("minim", self.minima), ("maxim", self.maxima)):
            if ext:
                where = ", ".join(f"{_r(e.alpha):.2f}" for e in ext)
                parts.append(f"{name}{'a' if len(ext) > 1 else 'um'} at α={where}")
        log = ", log scale" if self.scale == "log" else ""
        head = f"{self.kind} (margin {self.margin:.2f}{log})"
        return head + (": " + "; ".join(parts) if parts else "")


def classify(
    curve: Curve | Surface | tuple[Any, Any],
    *,
    metric: str = "loss",
    smoothing: float = 1.0,
    prominence: float = 0.05,
    center: float = 0.0,
    along: str | None = None,
    at: float = 0.0,
) -> CurveShape:
    """Classify a curve as v-basin, v-side, w-basin, w-peak, vvv-basin, flat or other.

    The operational definitions of the kinds of Xu et al. 2024 ("Visualizing, Rethinking, and
    Mining the Loss Landscape of Deep Neural Networks", arXiv:2405.12493) are in this
    module's docstring.

    Args:
        curve: a `lw.Curve`; a `lw.Surface` with `along` ("x": the row at β = `at`, "y": the
            column at α = `at`; the grid line nearest `at`); or a pair ``(alphas, values)`` of
            1D arrays, alphas strictly increasing.
        metric: which values of a Curve or Surface to classify.
        smoothing: the Gaussian filter's width in grid steps (0: none).
        prominence: the smallest prominence of an extremum, relative to the range (0 < p < 1).
        center: where the model sits on the axis (within the curve's range).
        along: for a Surface, "x" or "y"; None for a Curve or a pair.
        at: for a Surface, the coordinate of the row or column on the other axis.

    Returns:
        The `CurveShape`: kind, located extrema, the model's position and a margin.
    """
    _check_number("smoothing", smoothing, lo=0.0, example="smoothing=1.0")
    _check_number("prominence", prominence, lo=0.0, example="prominence=0.05")
    if not 0.0 < prominence < 1.0:
        raise ValueError(f"prominence={prominence!r} must lie in (0, 1); pass e.g. 0.05")
    x, f = _values(curve, metric, along, at)
    _check_number("center", center, example="center=0.0")
    if len(x) and not x[0] <= center <= x[-1]:
        raise ValueError(
            f"center={center!r} lies outside the curve's range [{x[0]:.6g}, {x[-1]:.6g}]; "
            "pass the model's coordinate on this axis"
        )
    return _Classifier(x, f, metric, float(smoothing), float(prominence), float(center)).run()


def _profile_shape(t: np.ndarray, f: np.ndarray, *, prominence: float,
                  reference: float) -> CurveShape:
    """The shape of a profile of an already smoothed surface through the model at t = 0:
    no further smoothing, the linear scale, prominences relative to `reference` (a range
    shared by several profiles) instead of the profile's own range."""
    return _Classifier(t, f, "loss", 0.0, prominence, 0.0, reference=reference).run()


class _Classifier:
    """One classification: the smoothed curve, its extrema, the model's position, the kind."""

    def __init__(self, x: np.ndarray, f: np.ndarray, metric: str, smoothing: float,
                 prominence: float, center: float, reference: float | None = None) -> None:
        self.x, self.raw, self.metric, self.c = x, f, metric, center
        self.smoothing, self.t, self.reference = smoothing, prominence, reference
        self.walled, self.finite = _smooth.walled(f)

    def _shape(self, kind: str, position: str, margin: float, scale: str = "linear",
               minima: tuple[Extremum, ...] = (),
               maxima: tuple[Extremum, ...] = ()) -> CurveShape:
        return CurveShape(kind, minima, maxima, position, float(np.clip(margin, 0.0, 1.0)),
                          self.metric, self.smoothing, self.t, scale)

    def run(self) -> CurveShape:
        n = len(self.x)
        if int(self.finite.sum()) < 3:
            return self._shape("other", "elsewhere", 0.0)
        fin = self.raw[self.finite]
        spread, limit = float(fin.max() - fin.min()), FLAT_RTOL * float(np.abs(fin).max())
        if spread <= limit:
            flat = 1.0 if spread == 0 else _log_ratio(limit / spread)
            return self._shape("flat", "elsewhere", flat * _few(n))
        s = _smooth.smooth1d(self.walled, _smooth.effective_sigma(self.smoothing, n))
        shape = self._on(s, s, "linear")
        use_log = n >= FULL_POINTS and self.reference is None
        eps = _smooth.log_offset(self.walled, s) if use_log else None
        if eps is not None:
            # Walls decades above the floor: the log scale may show what the linear one hides.
            log = self._on(_smooth.to_log(s, eps), s, "log")
            if len(log.minima) + len(log.maxima) > len(shape.minima) + len(shape.maxima):
                shape = log
        return shape

    def _on(self, s: np.ndarray, lin: np.ndarray, scale: str) -> CurveShape:
        """The shape whose extrema are read from `s` (the smoothed values `lin`, or their log);
        the model's height is always measured on `lin`."""
        n, span = len(s), float(s.max() - s.min())
        if self.reference is not None and scale == "linear":
            span = max(span, self.reference)
        kept, cancelled = _smooth.simplify(s, self.t * span)
        seq = [0, *kept, n - 1]
        exts: list[Extremum] = []
        depths: list[float] = []  # each extremum's prominence on the linear scale
        for k in range(1, len(seq) - 1):
            i, nbrs = seq[k], [seq[k - 1], seq[k + 1]]
            kind = "min" if s[i] < s[nbrs[0]] else "max"
            exts.append(self._extremum(s, i, _prominence(s, i, nbrs, kind) / span, kind))
            depths.append(_prominence(lin, i, nbrs, kind))
        minima = tuple(e for e in exts if e.kind == "min")
        maxima = tuple(e for e in exts if e.kind == "max")
        margins = [_log_ratio(e.prominence / self.t) for e in exts]
        margins.append(_log_ratio(self.t * span / max(cancelled, 1e-300)))
        step = float(np.median(np.diff(self.x)))
        if min(self.c - self.x[0], self.x[-1] - self.c) < 0.5 * step:
            return self._shape("other", "elsewhere", 0.0, scale, minima, maxima)
        position, at, pos_margin = self._position(lin, exts, depths, step)
        kind = _kind(position, at, minima, maxima)
        return self._shape(kind, position, min(*margins, pos_margin) * _few(n), scale,
                           minima, maxima)

    def _extremum(self, s: np.ndarray, i: int, prominence: float, kind: str) -> Extremum:
        """The extremum at grid point i, located between grid points by a parabola."""
        x = self.x
        curv = s[i - 1] - 2 * s[i] + s[i + 1]
        d = 0.0 if curv == 0 else float(np.clip(0.5 * (s[i - 1] - s[i + 1]) / curv, -0.5, 0.5))
        alpha = x[i] + d * (x[i + 1] - x[i] if d > 0 else x[i] - x[i - 1])
        return Extremum(float(alpha), float(self.raw[i]), kind, prominence)

    def _position(self, s: np.ndarray, exts: list[Extremum], depths: list[float],
                  step: float) -> tuple[str, Extremum | None, float]:
        """The model's position, the extremum it is at (if any) and the position's margin."""
        half = 0.5 * (self.x[-1] - self.x[0])
        near, far = max(POSITION_TOL * half, step), max(POSITION_FAR * half, step)
        sc = float(np.interp(self.c, self.x, s))
        best: tuple[float, Extremum | None] = (math.inf, None)
        for k, e in enumerate(exts):
            lo = exts[k - 1].alpha if k > 0 else -math.inf
            hi = exts[k + 1].alpha if k + 1 < len(exts) else math.inf
            if not lo <= self.c <= hi:
                continue  # the model is not in this extremum's catchment
            se = float(np.interp(e.alpha, self.x, s))
            height = max(0.0, (sc - se) if e.kind == "min" else (se - sc))
            dist = abs(e.alpha - self.c)
            rise = height / max(HEIGHT_TOL * depths[k], 1e-300)
            o = min(dist / near, max(dist / far, rise))
            if o < best[0]:
                best = (o, e)
        o, at = best
        if at is not None and o <= 1.0:
            return ("minimum" if at.kind == "min" else "maximum"), at, 1.0 - o
        return "wall", None, (1.0 - 1.0 / o) if math.isfinite(o) else 1.0


def _kind(position: str, at: Extremum | None, minima: tuple[Extremum, ...],
          maxima: tuple[Extremum, ...]) -> str:
    """The kind from the accepted extrema and the model's position (module docstring)."""
    if position == "wall":
        return "v-side" if len(minima) <= 1 and not maxima else "other"
    if at is None:
        return "other"
    walled_in = bool(minima) and all(minima[0].alpha < m.alpha < minima[-1].alpha
                                     for m in maxima)
    left = sum(m.alpha < at.alpha for m in minima)
    right = sum(m.alpha > at.alpha for m in minima)
    if position == "maximum":
        return "w-peak" if walled_in and left and right else "other"
    if len(minima) == 1:
        return "v-basin" if not maxima else "other"
    if len(minima) == 2:
        return "w-basin" if walled_in else "other"
    return "vvv-basin" if walled_in and left and right else "other"


def _prominence(s: np.ndarray, i: int, nbrs: list[int], kind: str) -> float:
    """The height of point i above (a max) or below (a min) the nearer of its neighbours."""
    return float(s[nbrs].min() - s[i]) if kind == "min" else float(s[i] - s[nbrs].max())


def _log_ratio(r: float) -> float:
    """log(r)/log(CLEAN) clipped to [0, 1]: 0 at a threshold, 1 at CLEAN times from it."""
    return float(np.clip(math.log(max(r, 1e-300)) / math.log(CLEAN), 0.0, 1.0))


def _r(v: float) -> float:
    """The value rounded for printing, without a sign on zero ("-0.00")."""
    return round(v, 2) + 0.0


def _few(n: int) -> float:
    return min(1.0, (n - 1) / (FULL_POINTS - 1))


def _values(curve: Any, metric: str, along: str | None, at: float) -> tuple[np.ndarray, np.ndarray]:
    """The axis and the values to classify, from a Curve, a Surface's grid line or a pair."""
    if isinstance(curve, Surface):
        if along not in ("x", "y"):
            raise ValueError(f"along={along!r}: for a Surface pass along='x' (a row) or 'y' "
                             "(a column), and at= the coordinate of that line on the other axis")
        _check_number("at", at, example="at=0.0")
        z = _metric(curve, metric)
        other = curve.y if along == "x" else curve.x
        if not other[0] <= at <= other[-1]:
            raise ValueError(f"at={at!r} lies outside the surface's {'y' if along == 'x' else 'x'}"
                             f" range [{other[0]:.6g}, {other[-1]:.6g}]")
        i = int(np.argmin(np.abs(other - at)))
        return (curve.x, z[i, :]) if along == "x" else (curve.y, z[:, i])
    if along is not None:
        raise ValueError(f"along={along!r} applies to a Surface only; leave it out for a curve")
    if isinstance(curve, Curve):
        return curve.x, _metric(curve, metric)
    if isinstance(curve, (tuple, list)) and len(curve) == 2:
        x = np.asarray(curve[0], dtype=np.float64)
        f = np.asarray(curve[1], dtype=np.float64)
        if x.ndim != 1 or f.shape != x.shape:
            raise ValueError(f"(alphas, values) must be two 1D arrays of one length; got shapes "
                             f"{x.shape} and {f.shape}")
        if not (np.isfinite(x).all() and (np.diff(x) > 0).all()):
            raise ValueError("alphas must be finite and strictly increasing; sort the pair first "
                             "(order = np.argsort(alphas))")
        return x, f
    raise TypeError(f"classify() takes a Curve, a Surface or a pair (alphas, values); got "
                    f"{type(curve).__name__}")


def _metric(record: Curve | Surface, metric: str) -> np.ndarray:
    if metric not in record.values:
        suffix = [m for m in record.values if m.endswith("/" + metric)]
        hint = f"; pass metric={suffix[0]!r}" if suffix else ""
        raise ValueError(f"metric={metric!r}: this record has {list(record.values)}{hint}")
    return np.asarray(record.values[metric], dtype=np.float64)


def _check_number(name: str, value: object, *, lo: float | None = None, example: str) -> None:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not ok or not math.isfinite(float(value)) or (lo is not None and float(value) < lo):  # type: ignore[arg-type]
        bound = f" ≥ {lo}" if lo is not None else ""
        raise ValueError(f"{name}={value!r} must be a finite number{bound}; pass e.g. {example}")
