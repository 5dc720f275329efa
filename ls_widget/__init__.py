"""ls-widget: a live loss-landscape explorer for Jupyter.

The engine (`Landscape`, `directions`, `Curve`, `Surface`) needs only PyTorch, NumPy and
SciPy; the widget is imported on first use, so batch jobs never load Jupyter packages.
"""

from . import directions, metrics
from .engine.curvature import NonSmoothWarning
from .engine.directions import Direction
from .engine.jobs import JobEstimate, JobTooLarge
from .engine.landscape import Landscape
from .engine.results import Curve, Surface, load
from .engine.sampling import Grid, Tile

__version__ = "0.1.0"

_WIDGET_NAMES = {"explore": "app", "Explorer": "app", "LandscapeWidget": "widget"}


def __getattr__(name: str) -> object:
    """The widget layer loads on first use, so the engine runs without Jupyter packages."""
    if name in _WIDGET_NAMES:
        import importlib

        module = importlib.import_module(f".{_WIDGET_NAMES[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "Curve",
    "Direction",
    "Explorer",
    "Grid",
    "JobEstimate",
    "JobTooLarge",
    "Landscape",
    "LandscapeWidget",
    "NonSmoothWarning",
    "Surface",
    "Tile",
    "__version__",
    "directions",
    "explore",
    "load",
    "metrics",
]
