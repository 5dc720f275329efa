"""Numerical helpers of the shape classifiers: walls for non-finite values, Gaussian smoothing,
the noise at a curve's floor, the log scale's offset, and persistence simplification.

Gaussian smoothing is used, not Savitzky–Golay, because a Gaussian kernel does not create new
local extrema as its width grows (the scale-space property: Lindeberg 1994, "Scale-Space Theory
in Computer Vision"), and with ``mode="nearest"`` a monotone curve stays monotone; a
Savitzky–Golay filter rings at a kink (a ReLU network's curve has many) and invents extrema.
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy.ndimage import gaussian_filter, gaussian_filter1d

# A smoothing never wider than this fraction of the curve's points, so a short curve keeps its
# shape (under 17 points are smoothed less than asked, 5 points hardly at all).
MAX_SIGMA_FRACTION = 1.0 / 16.0
# The floor whose noise sets the log scale's offset: this fraction of the points (at least 3).
FLOOR_FRACTION = 0.1
# The log scale's offset ε is this many times the floor's noise: a wiggle of the noise's size
# then moves log(f − min + ε) by at most ~1/NOISE_FACTOR.
NOISE_FACTOR = 20.0
# Try the log scale when the range spans this many decades above ε...
LOG_DECADES = 3.0
# ... and never look more than this fraction of the range below it (ε is at least this × range).
LOG_FLOOR = 1e-5
_TINY = 1e-300


def walled(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The values made finite, and the mask of the finite ones.

    +inf anywhere, and any non-finite run that reaches an end of the curve (the loss diverged
    towards that end), become walls one range above the largest finite value. Interior runs of
    NaN or −inf between finite values (an undefined point, not a high one) are masked: filled
    by linear interpolation between their finite neighbours. Where no value is finite, zeros.
    """
    f = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(f)
    if not finite.any():
        return np.zeros_like(f), finite
    lo, hi = float(f[finite].min()), float(f[finite].max())
    wall = hi + (hi - lo if hi > lo else max(abs(hi), 1.0))
    idx = np.arange(len(f))
    first, last = idx[finite][0], idx[finite][-1]
    inner = ~finite & (idx > first) & (idx < last) & (f != np.inf)
    out = np.where(finite, f, wall)
    out[inner] = np.interp(idx[inner], idx[finite], f[finite])
    return out, finite


def effective_sigma(smoothing: float, n: int) -> float:
    """The Gaussian width in grid steps actually used on `n` points (see MAX_SIGMA_FRACTION)."""
    return min(float(smoothing), (n - 1) * MAX_SIGMA_FRACTION)


def smooth1d(f: np.ndarray, sigma: float) -> np.ndarray:
    """A Gaussian filter of width `sigma` grid steps, edges continued by their end values."""
    if sigma <= 0:
        return f.copy()
    return np.asarray(gaussian_filter1d(f, sigma, mode="nearest"), dtype=np.float64)


def smooth2d(z: np.ndarray, sigma: float) -> np.ndarray:
    """The 2D version of `smooth1d` (the same width along both axes)."""
    if sigma <= 0:
        return z.copy()
    return np.asarray(gaussian_filter(z, sigma, mode="nearest"), dtype=np.float64)


def floor_noise(raw: np.ndarray, smooth: np.ndarray) -> float:
    """A robust noise level at the curve's floor, from fourth differences (which cancel any
    cubic, so a smooth curve's shape hardly counts): 1.4826 × median |Δ⁴f| / √70 over the
    FLOOR_FRACTION of the points where the smoothed curve is lowest (√70: the norm of Δ⁴'s
    weights 1, −4, 6, −4, 1, so white noise of deviation σ gives σ). A ReLU network's kinks
    there count as noise. 0 for fewer than 5 points."""
    if len(raw) < 5:
        return 0.0
    d4 = np.diff(raw, 4)  # d4[i] is centred on point i + 2
    k = max(3, int(np.ceil(FLOOR_FRACTION * len(d4))))
    low = np.argsort(smooth[2:-2], kind="stable")[:k]
    return float(1.4826 * np.median(np.abs(d4[low])) / np.sqrt(70.0))


def log_offset(raw: np.ndarray, smooth: np.ndarray) -> float | None:
    """ε for log(f − min + ε), or None when the range spans fewer than LOG_DECADES decades
    above it (then the linear scale sees everything there is).

    ε = NOISE_FACTOR × the floor's noise, at least LOG_FLOOR × the range.
    """
    lo, hi = float(smooth.min()), float(smooth.max())
    eps = max(NOISE_FACTOR * floor_noise(raw, smooth), LOG_FLOOR * (hi - lo), _TINY)
    if hi - lo < 10.0**LOG_DECADES * eps:
        return None
    return eps


def to_log(smooth: np.ndarray, eps: float) -> np.ndarray:
    """log(s − min s + ε)."""
    return np.asarray(np.log(smooth - smooth.min() + eps), dtype=np.float64)


def turning_points(s: np.ndarray) -> list[int]:
    """Indices of the interior local extrema of `s`, alternating minima and maxima (a plateau
    counts once, at its middle point)."""
    d = np.diff(s)
    moves = np.flatnonzero(d != 0)
    out = []
    for a, b in itertools.pairwise(moves):
        if (d[a] > 0) != (d[b] > 0):
            out.append(int((a + 1 + b) // 2))
    return out


def simplify(s: np.ndarray, threshold: float) -> tuple[list[int], float]:
    """The extrema of `s` that survive topological persistence simplification at `threshold`
    (Edelsbrunner, Letscher & Zomorodian 2002, "Topological persistence and simplification"),
    and the largest height difference cancelled.

    The sequence end, extrema..., end is simplified by repeatedly cancelling the adjacent pair
    with the smallest height difference below `threshold`: two interior extrema go together (a
    dip and its barrier), an interior one next to an end goes alone (a dip at an end is not a
    basin). Unlike scipy's `find_peaks` prominence, which gives each of two equal minima the
    full depth however low the barrier between them, the survivors alternate: between any two
    minima there is a maximum at least `threshold` above both.
    """
    seq = [0, *turning_points(s), len(s) - 1]
    cancelled = 0.0
    while len(seq) > 2:
        gaps = np.abs(np.diff(s[seq]))
        j = int(np.argmin(gaps))
        if gaps[j] >= threshold:
            break
        cancelled = max(cancelled, float(gaps[j]))
        drop = {j, j + 1} - {0, len(seq) - 1}
        seq = [i for k, i in enumerate(seq) if k not in drop]
    return seq[1:-1], cancelled
