"""Surfaces of several models side by side on one colour scale, with one colorbar.

The levels come from `contour_levels` (as in a single contour figure) over the values of every
panel together, and every panel is filled with those levels and one norm: the same colour
means the same loss in every panel, which is what makes a comparison of minima honest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ._common import SurfaceLike, axis_label
from .contour import contour_levels

_NONFINITE = "#d0d0d0"  # as in the contour figure and the widget


def shared_levels(
    surfaces: Mapping[str, SurfaceLike], metric: str = "loss", levels: int | np.ndarray = 20,
    log: bool = False,
) -> np.ndarray:
    """Isoline levels spanning the finite values of `metric` over every surface together
    (`contour_levels` of them all): one scale for all panels."""
    if not surfaces:
        raise ValueError("no surfaces to draw; pass a dict name → lw.Surface")
    every = np.concatenate([np.asarray(s[metric], dtype=float).ravel() for s in surfaces.values()])
    return contour_levels(every, levels, log)


def plot_compare(
    surfaces: Mapping[str, SurfaceLike],
    metric: str = "loss",
    *,
    log: bool = False,
    levels: int | np.ndarray = 20,
    cmap: str = "viridis",
    panel_size: float = 3.6,
) -> Any:
    """Filled contours of `metric`, one panel per surface (titled with its name), on shared
    levels and one norm, with a single colorbar for all of them; the model marked at the
    origin of each panel.

    Args:
        surfaces: name → `lw.Surface` (e.g. from `lw.compare_surfaces`).
        metric: the metric drawn.
        log: colours and isolines on a log scale (positive values only).
        levels: the number of isolines (rounded levels over all panels), or the levels.
        cmap: a matplotlib colormap name.
        panel_size: width and height of each panel in inches.
    """
    import matplotlib.pyplot as plt
    from matplotlib import colors

    for name, surf in surfaces.items():
        if metric not in surf.metrics:
            raise KeyError(f"surface {name!r} has no metric {metric!r}; it has {surf.metrics}")
    lv = shared_levels(surfaces, metric, levels, log)
    if log and not (lv > 0).all():
        raise ValueError(f"no positive {metric} values to draw on a log scale; plot with log=False")
    norm = colors.LogNorm(lv[0], lv[-1]) if log else colors.Normalize(lv[0], lv[-1])
    fig, axs = plt.subplots(
        1, len(surfaces), figsize=(panel_size * len(surfaces) + 1.2, panel_size + 0.4),
        layout="constrained", squeeze=False, sharex=True, sharey=True,
    )
    filled = [_panel(ax, name, surf, metric, lv, norm, cmap, log)
              for ax, (name, surf) in zip(axs[0], surfaces.items(), strict=True)]
    # one colorbar stands for every panel: they share the levels, the norm and the colormap
    cbar = fig.colorbar(filled[0], ax=list(axs[0]), label=metric + (" (log scale)" if log else ""),
                        format="%.3g", shrink=0.9)
    cbar.minorticks_off()
    cbar.set_ticks([float(v) for v in lv[:: max(1, len(lv) // 8)]])
    axs[0][0].set_ylabel(axis_label(next(iter(surfaces.values())), 1, "β"))
    return fig


def _panel(
    ax: Any, name: str, surf: SurfaceLike, metric: str, lv: np.ndarray, norm: Any, cmap: str,
    log: bool,
) -> Any:
    """One panel on the shared levels and norm; returns its filled contour set."""
    from matplotlib.ticker import MaxNLocator

    z = np.asarray(surf[metric], dtype=float)
    zm = np.ma.masked_invalid(np.where(z > 0, z, np.nan) if log else z)
    X, Y = np.meshgrid(surf.x, surf.y)
    filled = ax.contourf(X, Y, zm, levels=lv, cmap=cmap, norm=norm, extend="neither")
    ax.contour(X, Y, zm, levels=lv, colors="k", linewidths=0.5, alpha=0.8, norm=norm)
    bad = ~np.isfinite(z)
    if bad.any():
        ax.contourf(X, Y, bad.astype(float), levels=[0.5, 1.5], colors=[_NONFINITE])
    title = name
    if surf.x[0] <= 0 <= surf.x[-1] and surf.y[0] <= 0 <= surf.y[-1]:
        ax.plot([0], [0], marker="*", color="white", markeredgecolor="black", markersize=11)
        i, j = int(np.argmin(np.abs(surf.y))), int(np.argmin(np.abs(surf.x)))
        if surf.x[j] == 0 and surf.y[i] == 0 and np.isfinite(z[i, j]):
            title += f" (★ {metric}: {z[i, j]:.3g})"
    ax.set_title(title)
    ax.set_xlabel(axis_label(surf, 0, "α"))
    ax.set_box_aspect(1)
    ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.yaxis.set_major_locator(MaxNLocator(5))
    return filled
