"""The colour scale of a surface figure, chosen as the widget chooses it.

The widget (js/src/colormap.ts `ColorScale`, js/src/contour.ts `contourLevels`) maps the finite
values over [min, max] linearly, or on a log scale of the positive values (values ≤ 0 clamp to
the bottom colour), and draws `n_levels` isolines (12 by default) evenly spaced, or geometric on
a log scale, strictly inside [min, max]. The figures use the same mapping and levels.

``log="auto"`` takes the log scale when every finite value is positive and they span more than
two decades: ``max / min > 100``. A loss whose minimum is near 0 (say 1e-4 with a maximum of 2)
spans more than two decades and is drawn on the log scale, which is what resolves its basin; a
surface with a zero or negative value is drawn linearly (a log of it would hide those points in
the bottom colour).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

DEFAULT_CMAP = "viridis"  # the widget's `colormap` trait
DEFAULT_LEVELS = 12  # the widget's `n_levels` trait
AUTO_LOG_SPAN = 100.0  # two decades above the minimum
WIDGET_COLORMAPS = ("viridis", "magma", "inferno", "plasma", "cividis", "turbo")


@dataclass(frozen=True)
class Scale:
    """Colour scale of a figure: its ends, whether log, and the isoline levels."""

    lo: float
    hi: float
    log: bool
    levels: np.ndarray

    def norm(self) -> Any:
        """The matplotlib norm of the scale (clipped: values outside take the end colours)."""
        from matplotlib import colors

        if self.log:
            return colors.LogNorm(self.lo, self.hi, clip=True)
        return colors.Normalize(self.lo, self.hi, clip=True)

    def fill_levels(self, n: int = 129) -> np.ndarray:
        """Boundaries of a fine fill, so the colours vary as smoothly as the widget's raster."""
        if self.log:
            return np.geomspace(self.lo, self.hi, n)
        return np.linspace(self.lo, self.hi, n)

    def ticks(self, n: int = 6) -> np.ndarray:
        """Colorbar ticks: both ends of the scale and round values between them."""
        from matplotlib import ticker

        loc = ticker.LogLocator() if self.log else ticker.MaxNLocator(n)
        inner = np.asarray(loc.tick_values(self.lo, self.hi), dtype=float)
        inner = inner[(inner > self.lo) & (inner < self.hi)]
        # a round tick too near an end would print over that end's label
        gap = 0.06 * (np.log(self.hi / self.lo) if self.log else self.hi - self.lo)
        pos = np.log(inner) if self.log else inner
        lo_p, hi_p = (np.log(self.lo), np.log(self.hi)) if self.log else (self.lo, self.hi)
        inner = inner[(pos - lo_p > gap) & (hi_p - pos > gap)]
        return np.unique(np.concatenate([[self.lo], inner, [self.hi]]))


def auto_log(z: np.ndarray) -> bool:
    """Whether ``log="auto"`` draws `z` on a log scale: its finite values are all positive and
    ``max / min > 100`` (more than two decades above the minimum)."""
    finite = np.asarray(z, dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0 or finite.min() <= 0:
        return False
    return bool(finite.max() / finite.min() > AUTO_LOG_SPAN)


def widget_levels(lo: float, hi: float, n: int, log: bool) -> np.ndarray:
    """`n` isolines strictly inside [lo, hi], evenly spaced or geometric (contour.ts
    `contourLevels`); empty for an empty or degenerate range."""
    if n <= 0 or not (np.isfinite(lo) and np.isfinite(hi) and hi > lo) or (log and lo <= 0):
        return np.array([], dtype=float)
    k = np.arange(1, n + 1) / (n + 1)
    return lo * np.exp(np.log(hi / lo) * k) if log else lo + (hi - lo) * k


def _check_log(log: object) -> None:
    if not (log == "auto" or isinstance(log, bool)):
        raise ValueError(f"log is {log!r}; pass log='auto', True or False")


def _check_limit(name: str, v: float | None) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)) or not (
        np.isfinite(float(v))
    ):
        raise ValueError(f"{name} is {v!r}; pass a finite number, or None for the data's end")
    return float(v)


def resolve(
    z: np.ndarray, metric: str, *, log: bool | str = "auto", levels: int | np.ndarray | None = None,
    vmin: float | None = None, vmax: float | None = None,
) -> Scale:
    """The scale of `z`: log per `log` ("auto": `auto_log`), ends at the finite (positive, on
    a log scale) extremes unless `vmin`/`vmax` clip them, and the widget's isoline levels
    (`levels` isolines, or the given values)."""
    _check_log(log)
    lo_in, hi_in = _check_limit("vmin", vmin), _check_limit("vmax", vmax)
    z = np.asarray(z, dtype=float)
    use_log = auto_log(z) if log == "auto" else bool(log)
    finite = z[np.isfinite(z)]
    if use_log:
        finite = finite[finite > 0]
        if finite.size == 0 and (lo_in is None or hi_in is None):
            raise ValueError(
                f"no positive {metric} values to draw on a log scale; plot with log=False"
            )
        for name, v in (("vmin", lo_in), ("vmax", hi_in)):
            if v is not None and v <= 0:
                raise ValueError(f"{name}={v} on a log scale; pass a positive {name} or log=False")
    lo = lo_in if lo_in is not None else (float(finite.min()) if finite.size else 0.0)
    hi = hi_in if hi_in is not None else (float(finite.max()) if finite.size else 1.0)
    if lo_in is not None and hi_in is not None and not hi > lo:
        raise ValueError(f"vmin={lo} is not below vmax={hi}; pass vmin < vmax")
    if not hi > lo:  # a constant surface: a sliver of range so the scale is defined
        pad = (abs(lo) or 1.0) * 1e-6
        if hi_in is None:  # widen on the side the caller left free
            hi = lo + pad
        else:
            lo = hi - pad
        if use_log and lo <= 0:
            lo = hi * (1 - 1e-6)
    if levels is None:
        levels = DEFAULT_LEVELS
    if isinstance(levels, bool):
        raise ValueError(f"levels={levels}; pass a number of isolines or their values")
    if isinstance(levels, (int, np.integer)):
        if levels < 0:
            raise ValueError(f"levels={levels}; pass a number of isolines ≥ 0 or their values")
        lv = widget_levels(lo, hi, int(levels), use_log)
    else:
        lv = np.sort(np.asarray(levels, dtype=float).ravel())
        if lv.size and not np.isfinite(lv).all():
            raise ValueError(f"levels {levels!r} hold a non-finite value; pass finite values")
    return Scale(lo, hi, use_log, lv)
