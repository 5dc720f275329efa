"""Matplotlib figures of `Curve` and `Surface` records."""

from .contour import contour_levels, plot_surface
from .curves import plot_curve

__all__ = ["contour_levels", "plot_curve", "plot_surface"]
