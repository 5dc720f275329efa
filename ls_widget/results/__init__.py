"""Results: immutable `Curve` and `Surface` records, and their files (.npz, .h5, .vts, .vtp)."""

from .hdf5 import load_directions
from .records import Curve, Surface, load

__all__ = ["Curve", "Surface", "load", "load_directions"]
