"""The explorer's layout in one figure: the contour and its colorbar on the left, the two
cross-sections through a point on the right, for PNG/SVG/PDF files of a chosen size.

The cross-sections are the surface's own row and column nearest the point (a record never
recomputes), drawn as the explorer draws them: titled with where they cut, the metric on the
y axis and the direction's label on the x axis.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ._common import SurfaceLike, axis_label
from .contour import plot_surface
from .labels import label_directions, save_figure
from .scale import auto_log

_CROSS_COLOR = "#ff7f0e"


def _check_cross(surface: SurfaceLike, cross: object) -> tuple[int, int]:
    """(row, column) of the grid nearest `cross` = (α, β); when None, nearest (0, 0)."""
    x, y = np.asarray(surface.x, dtype=float), np.asarray(surface.y, dtype=float)
    if cross is None:
        cross = (float(np.clip(0.0, x[0], x[-1])), float(np.clip(0.0, y[0], y[-1])))
    ok = isinstance(cross, (tuple, list, np.ndarray)) and len(cross) == 2
    if ok:
        try:
            a, b = float(cross[0]), float(cross[1])  # type: ignore[index]
            ok = bool(np.isfinite(a) and np.isfinite(b))
        except (TypeError, ValueError):
            ok = False
    if not ok:
        raise ValueError(f"cross is {cross!r}; pass a point (α, β) of the plane, e.g. (0, 0)")
    if not (x[0] <= a <= x[-1] and y[0] <= b <= y[-1]):
        raise ValueError(
            f"cross={cross!r} lies outside the surface (α in [{x[0]:.3g}, {x[-1]:.3g}], "
            f"β in [{y[0]:.3g}, {y[-1]:.3g}]); pass a point inside it"
        )
    return int(np.argmin(np.abs(y - b))), int(np.argmin(np.abs(x - a)))


def _size(width: float | None, height: float | None, dpi: float) -> tuple[float, float]:
    """Figure size in inches from a size in pixels (the default: 10 × 5 inches)."""
    for name, v in (("width", width), ("height", height)):
        if v is not None and not (np.isfinite(v) and v >= 100):
            raise ValueError(f"{name}={v!r} px; pass at least 100 pixels")
    if not (np.isfinite(dpi) and dpi > 0):
        raise ValueError(f"dpi={dpi!r}; pass a positive number of dots per inch")
    w = width / dpi if width is not None else 10.0
    h = height / dpi if height is not None else w / 2
    return w, h


def explorer_figure(
    surface: SurfaceLike, metric: str | None = None, *, cross: tuple[float, float] | None = None,
    width: float | None = None, height: float | None = None, dpi: float = 100, **style: Any,
) -> Any:
    """The contour of `metric` with its colorbar on the left and, on the right, the
    cross-sections along α (the row through `cross`) and along β (its column), each titled
    with where it cuts; dashed lines mark them on the contour.

    Args:
        surface: a `lw.Surface`.
        metric: the metric drawn (default: the surface's first).
        cross: the point (α, β) the cross-sections go through (default: the grid point
            nearest (0, 0)), snapped to the nearest grid row and column.
        width: figure width in pixels at `dpi` (default 10 inches).
        height: figure height in pixels (default half the width).
        dpi: dots per inch the pixel sizes are taken at.
        **style: `plot_surface` options: log, levels, vmin, vmax, cmap, path, markers.
    """
    import matplotlib.pyplot as plt

    metric = metric or surface.metrics[0]
    i, j = _check_cross(surface, cross)
    fig = plt.figure(figsize=_size(width, height, dpi), dpi=dpi, layout="constrained")
    left, right = np.asarray(fig.subfigures(1, 2, width_ratios=(1.35, 1))).ravel()
    main = left.subplots()
    plot_surface(surface, metric, ax=main, **style)
    x, y = np.asarray(surface.x, dtype=float), np.asarray(surface.y, dtype=float)
    z = np.asarray(surface[metric], dtype=float)
    main.axhline(y[i], color=_CROSS_COLOR, ls="--", lw=1)
    main.axvline(x[j], color=_CROSS_COLOR, ls="--", lw=1)
    along_a, along_b = right.subplots(2, 1)
    log = style.get("log", "auto")
    logy = log is True or (log == "auto" and auto_log(z))  # as the contour's colour scale
    xa, xb = axis_label(surface, 0, "α"), axis_label(surface, 1, "β")
    for ax, coord, vals, name, at, dirs in (
        (along_a, x, z[i, :], xa, f"β = {y[i]:.3g}", surface.directions[:1]),
        (along_b, y, z[:, j], xb, f"α = {x[j]:.3g}", surface.directions[1:2]),
    ):
        ax.plot(coord, vals, color=_CROSS_COLOR, lw=1.6)
        ax.set_title(f"{metric} at {at}", fontsize=10)
        ax.set_ylabel(metric)
        label_directions(ax, dirs, (name,), "x")
        if logy:
            ax.set_yscale("log")
    return fig


def save_explorer(
    surface: SurfaceLike, file: str | Path, metric: str | None = None, *,
    cross: tuple[float, float] | None = None, width: float | None = None,
    height: float | None = None, dpi: float = 100, **style: Any,
) -> Path:
    """`explorer_figure` written to `file` (.png, .svg or .pdf), provenance as tooltips;
    `path` in `style` is a training path drawn over the contour, as in `plot_surface`."""
    import matplotlib.pyplot as plt

    fig = explorer_figure(surface, metric, cross=cross, width=width, height=height, dpi=dpi,
                          **style)
    try:
        return save_figure(fig, file, dpi=dpi)
    finally:
        plt.close(fig)
