"""Matplotlib figures of `Curve` and `Surface` records."""

from .contour import contour_levels, plot_surface
from .curves import plot_curve
from .explorer import explorer_figure, save_explorer
from .labels import save_figure
from .scale import auto_log

__all__ = ["auto_log", "contour_levels", "explorer_figure", "plot_curve", "plot_surface",
           "save_explorer", "save_figure"]
