"""Contour figures of surfaces (PNG, SVG, PDF via `fig.savefig`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._common import SurfaceLike, axes, axis_label


def contour_levels(z: np.ndarray, levels: int | np.ndarray, log: bool) -> np.ndarray:
    """Round isoline levels spanning the finite values: 1-2-5 steps, or 1-2-5 per decade."""
    from matplotlib import ticker

    if not isinstance(levels, (int, np.integer)):
        return np.asarray(levels, dtype=float)
    finite = z[np.isfinite(z)]
    if log:
        finite = finite[finite > 0]
    if finite.size == 0:
        return np.array([0.0, 1.0])
    lo, hi = float(finite.min()), float(finite.max())
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0) * 1e-6
    if log:
        subs = (1.0, 2.0, 5.0) if np.log10(hi / lo) <= int(levels) / 2 else (1.0,)
        ticks = np.asarray(ticker.LogLocator(subs=subs).tick_values(lo, hi))
    else:
        ticks = np.asarray(ticker.MaxNLocator(int(levels)).tick_values(lo, hi))
    inside = ticks[(ticks >= lo) & (ticks <= hi)]
    # Bracket the data so every finite value gets a colour.
    below = ticks[ticks < lo][-1:] if (ticks < lo).any() else np.array([lo])
    above = ticks[ticks > hi][:1] if (ticks > hi).any() else np.array([hi])
    return np.unique(np.concatenate([below, inside, above]))


def plot_surface(
    surface: SurfaceLike,
    metric: str = "loss",
    *,
    ax: Any = None,
    log: bool = False,
    levels: int | np.ndarray = 20,
    filled: bool = True,
    cmap: str = "viridis",
) -> Any:
    """Filled contour + labelled isolines, colorbar, the model marked at the origin."""
    from matplotlib import colors

    z = np.asarray(surface[metric], dtype=float)
    if log and not (np.isfinite(z) & (z > 0)).any():
        raise ValueError(
            f"no positive {metric} values to draw on a log scale; plot with log=False"
        )
    zm = np.ma.masked_invalid(np.where(z > 0, z, np.nan) if log else z)
    fig, ax = axes(ax, (5.6, 4.6))
    lv = contour_levels(z, levels, log)
    norm = colors.LogNorm(vmin=lv[0], vmax=lv[-1]) if log else None
    X, Y = np.meshgrid(surface.x, surface.y)
    if filled:
        cf = ax.contourf(X, Y, zm, levels=lv, cmap=cmap, norm=norm, extend="neither")
        cbar = fig.colorbar(cf, ax=ax, label=metric + (" (log scale)" if log else ""),
                            format="%.3g")
        cbar.minorticks_off()
        cbar.set_ticks(lv[:: max(1, len(lv) // 8)])
    cs = ax.contour(X, Y, zm, levels=lv, colors="k", linewidths=0.5, alpha=0.8, norm=norm)
    ax.clabel(cs, cs.levels[:: max(1, len(cs.levels) // 6)], inline=True, fontsize=7,
              fmt="%.3g")
    bad = ~np.isfinite(z)
    if bad.any():
        ax.contourf(X, Y, bad.astype(float), levels=[0.5, 1.5], colors=["#d0d0d0"])
    title = f"{metric} surface"
    if surface.x[0] <= 0 <= surface.x[-1] and surface.y[0] <= 0 <= surface.y[-1]:
        ax.plot([0], [0], marker="*", color="white", markeredgecolor="black", markersize=12)
        i, j = int(np.argmin(np.abs(surface.y))), int(np.argmin(np.abs(surface.x)))
        if surface.x[j] == 0 and surface.y[i] == 0 and np.isfinite(z[i, j]):
            title += f" (★ model: {z[i, j]:.3g})"
    ax.set_xlabel(axis_label(surface, 0, "α"))
    ax.set_ylabel(axis_label(surface, 1, "β"))
    ax.set_box_aspect(1)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.yaxis.set_major_locator(MaxNLocator(5))
    ax.set_title(title)
    return fig
