"""Directions in parameter space: `Direction` and its constructors (Li et al. 2018, §4–5).

- `random`: seeded Gaussian, filter-normalized by default (`normalize` for the others);
- `towards`: from the model to another one (1D interpolation), BatchNorm statistics included;
- `through`: the plane through three models (mode connectivity), each model's coordinates;
- `pca`: the principal directions of a training trajectory, with explained variance;
- `orthogonalize`, `mix`, `combine`: Gram–Schmidt, rotation within a plane, linear combinations.
"""

from .direction import Direction, combine
from .gaussian import Ignore, Norm, normalize, random
from .ops import mix, mix_coefficients, orthogonalize
from .pca import pca
from .through import through
from .towards import towards

__all__ = [
    "Direction",
    "Ignore",
    "Norm",
    "combine",
    "mix",
    "mix_coefficients",
    "normalize",
    "orthogonalize",
    "pca",
    "random",
    "through",
    "towards",
]
