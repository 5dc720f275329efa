"""Results: immutable `Curve` and `Surface` records, and their files."""

from .records import Curve, Surface, load

__all__ = ["Curve", "Surface", "load"]
