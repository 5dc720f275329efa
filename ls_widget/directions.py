"""Directions in parameter space: `lw.directions.random`, `towards`, `orthogonalize`, `mix`."""

from .engine.directions import (
    Direction,
    combine,
    mix,
    mix_coefficients,
    normalize,
    orthogonalize,
    random,
    towards,
)

__all__ = [
    "Direction",
    "combine",
    "mix",
    "mix_coefficients",
    "normalize",
    "orthogonalize",
    "random",
    "towards",
]
