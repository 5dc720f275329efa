"""ls-widget: a live loss-landscape explorer for Jupyter.

The engine (`Landscape`, `directions`, `Curve`, `Surface`) needs only PyTorch, NumPy and
SciPy; the widget is imported on first use, so batch jobs never load Jupyter packages.
"""

from . import directions, metrics
from .engine.directions import Direction
from .engine.landscape import Landscape
from .engine.results import Curve, Surface, load
from .engine.sampling import Tile

__version__ = "0.1.0"

__all__ = [
    "Curve",
    "Direction",
    "Landscape",
    "Surface",
    "Tile",
    "__version__",
    "directions",
    "load",
    "metrics",
]
