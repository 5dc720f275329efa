"""Contour figures of surfaces (PNG, SVG, PDF via `fig.savefig`), with training paths and
named points drawn over them."""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from . import scale
from ._common import SurfaceLike, axes, axis_label
from .labels import label_directions
from .scale import DEFAULT_CMAP

PATH_COLOR = "#d62728"


@runtime_checkable
class PathLike(Protocol):
    """Points (α, β) of a plane with a label each (a `lw.Path`)."""

    @property
    def alpha(self) -> np.ndarray:
        """α per point."""
        ...

    @property
    def beta(self) -> np.ndarray:
        """β per point."""
        ...

    @property
    def labels(self) -> Sequence[str]:
        """A text per point (the legend names the first and the last)."""
        ...


@runtime_checkable
class TrajectoryLike(Protocol):
    """Something that knows its path on a surface's plane (a `lw.Trajectory`)."""

    def path_on(self, record: Any) -> PathLike:
        """Its path on the plane of `record` (a surface)."""
        ...


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
    log: bool | str = "auto",
    levels: int | np.ndarray | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    filled: bool = True,
    cmap: str = DEFAULT_CMAP,
    path: PathLike | TrajectoryLike | None = None,
    markers: Mapping[str, tuple[float, float]] | None = None,
) -> Any:
    """Filled contour + labelled isolines, colorbar, the model marked at the origin, drawn
    as the widget draws it (scale.py: the same colormap, log rule and isoline levels).

    `log`: "auto" (log when the finite values are positive and span more than two decades),
    True or False. `levels`: how many isolines (the widget's 12 by default), or their values.
    `vmin`/`vmax` clip the colour scale. The colorbar is labelled with `metric` and ticked at
    both ends. `path`: a `lw.Path`, or a `lw.Trajectory` whose PCA directions the surface was
    computed along, drawn as a line through its snapshots with the start (○) and end (●)
    marked and labelled in a legend. `markers`: named points ``{"m1": (1.0, 0.0)}`` drawn as
    ◆ with their names. The axes keep the surface's extent; points outside it are reported
    in a warning.
    """
    points = _resolve_path(surface, path)
    named = _check_markers(markers)
    if metric not in surface.metrics:
        raise KeyError(f"no metric {metric!r}; the surface has {surface.metrics}")
    z = np.asarray(surface[metric], dtype=float)
    sc = scale.resolve(z, metric, log=log, levels=levels, vmin=vmin, vmax=vmax)
    # on a log scale values ≤ 0 take the bottom colour (the widget's ColorScale clamps them)
    zm = np.ma.masked_invalid(np.where(np.isfinite(z) & (z <= 0), sc.lo, z) if sc.log else z)
    fig, ax = axes(ax, (5.6, 4.6))
    norm = sc.norm()
    X, Y = np.meshgrid(surface.x, surface.y)
    if filled:
        # values beyond vmin/vmax take the end colours, as in the widget
        cf = ax.contourf(X, Y, np.ma.clip(zm, sc.lo, sc.hi), levels=sc.fill_levels(), cmap=cmap,
                         norm=norm)
        _colorbar(fig, ax, cf, sc, metric)
    if sc.levels.size:
        cs = ax.contour(X, Y, zm, levels=sc.levels, colors="k", linewidths=0.5, alpha=0.8,
                        norm=norm)
        ax.clabel(cs, cs.levels[:: max(1, len(cs.levels) // 6)], inline=True, fontsize=7,
                  fmt="%.3g")
    bad = ~np.isfinite(z)
    if bad.any():
        ax.contourf(X, Y, bad.astype(float), levels=[0.5, 1.5], colors=["#d0d0d0"])
        ax.set_facecolor("#d0d0d0")  # what the masked fill leaves uncovered: no value there
    title = f"{metric} surface"
    if surface.x[0] <= 0 <= surface.x[-1] and surface.y[0] <= 0 <= surface.y[-1]:
        ax.plot([0], [0], marker="*", color="white", markeredgecolor="black", markersize=12,
                zorder=5)
        i, j = int(np.argmin(np.abs(surface.y))), int(np.argmin(np.abs(surface.x)))
        if surface.x[j] == 0 and surface.y[i] == 0 and np.isfinite(z[i, j]):
            title += f" (★ model: {z[i, j]:.3g})"
    outside = _outside(surface, points, named)
    if points is not None:
        _draw_path(ax, points)
    for name, (mx, my) in named.items():
        ax.plot([mx], [my], marker="D", color="white", markeredgecolor="black", markersize=7,
                linestyle="none", zorder=4)
        ax.annotate(name, (mx, my), xytext=(5, 5), textcoords="offset points", fontsize=8,
                    zorder=4)
    ax.set_xlim(float(surface.x[0]), float(surface.x[-1]))
    ax.set_ylim(float(surface.y[0]), float(surface.y[-1]))
    if outside:
        warnings.warn(
            f"{outside} lie outside the surface's grid (α in [{surface.x[0]:.3g}, "
            f"{surface.x[-1]:.3g}], β in [{surface.y[0]:.3g}, {surface.y[-1]:.3g}]) and are "
            "cut off; compute the plane with a span that covers them",
            UserWarning, stacklevel=3,
        )
    label_directions(ax, surface.directions,
                     (axis_label(surface, 0, "α"), axis_label(surface, 1, "β")))
    ax.set_box_aspect(1)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.yaxis.set_major_locator(MaxNLocator(5))
    ax.set_title(title)
    return fig


def _colorbar(fig: Any, ax: Any, filled: Any, sc: scale.Scale, metric: str) -> None:
    """Colorbar labelled with the metric, ticked at both ends of the scale and between."""
    cbar = fig.colorbar(filled, ax=ax, label=metric + (" (log scale)" if sc.log else ""),
                        format="%.3g")
    cbar.minorticks_off()
    cbar.set_ticks([float(v) for v in sc.ticks()])
    for v in sc.levels:  # the isolines' values across the bar, as the widget marks them
        cbar.ax.axhline(float(v), color="k", linewidth=0.5, alpha=0.8)


def _resolve_path(surface: SurfaceLike, path: object) -> PathLike | None:
    """`path` as points: a Path as is, a Trajectory's path on this surface's plane."""
    if path is None:
        return None
    if isinstance(path, PathLike):
        points = path
    elif isinstance(path, TrajectoryLike):
        points = path.path_on(surface)
    else:
        raise TypeError(
            f"path must be a lw.Path (traj.project(d1, d2)) or a lw.Trajectory, got "
            f"{type(path).__name__}"
        )
    if len(points.alpha) == 0:
        raise ValueError("the path has no snapshots to draw")
    return points


def _check_markers(markers: object) -> dict[str, tuple[float, float]]:
    if markers is None:
        return {}
    if not isinstance(markers, Mapping):
        raise TypeError(
            f"markers must be a dict name → (α, β), e.g. {{'m1': (1.0, 0.0)}}, got "
            f"{type(markers).__name__}"
        )
    out = {}
    for name, xy in markers.items():
        ok = (isinstance(xy, (tuple, list, np.ndarray)) and len(xy) == 2
              and all(isinstance(v, numbers.Real) and math.isfinite(float(v)) for v in xy))
        if not ok:
            raise ValueError(
                f"marker {name!r} is {xy!r}; a marker is a pair of finite numbers (α, β), "
                "e.g. (1.0, 0.0)"
            )
        out[str(name)] = (float(xy[0]), float(xy[1]))
    return out


def _outside(
    surface: SurfaceLike, points: PathLike | None, named: Mapping[str, tuple[float, float]]
) -> str:
    """Which points fall outside the grid, in words ("" when none)."""
    x0, x1, y0, y1 = surface.x[0], surface.x[-1], surface.y[0], surface.y[-1]

    def out(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return (a < x0) | (a > x1) | (b < y0) | (b > y1)

    parts = []
    if points is not None:
        a, b = np.asarray(points.alpha), np.asarray(points.beta)
        n = int(out(a, b).sum())
        if n:
            parts.append(f"{n} of the path's {len(a)} snapshots (it spans α in "
                         f"[{a.min():.3g}, {a.max():.3g}], β in [{b.min():.3g}, {b.max():.3g}])")
    names = [k for k, (a, b) in named.items() if out(np.array([a]), np.array([b]))[0]]
    if names:
        parts.append(f"markers {names}")
    return " and ".join(parts)


def _draw_path(ax: Any, path: PathLike) -> None:
    """The path's line and points, ○ at its start and ● at its end, in a legend."""
    a, b = np.asarray(path.alpha, dtype=float), np.asarray(path.beta, dtype=float)
    ax.plot(a, b, color=PATH_COLOR, linewidth=1.4, marker=".", markersize=4, zorder=3,
            label=f"path ({len(a)} snapshots)")
    ax.plot(a[:1], b[:1], linestyle="none", marker="o", markersize=9, markerfacecolor="white",
            markeredgecolor=PATH_COLOR, markeredgewidth=1.8, zorder=4,
            label=f"start: {path.labels[0]}")
    ax.plot(a[-1:], b[-1:], linestyle="none", marker="o", markersize=8,
            markerfacecolor=PATH_COLOR, markeredgecolor="black", zorder=4,
            label=f"end: {path.labels[-1]}")
    ax.legend(loc="best", fontsize=7, framealpha=0.8)
