"""ls-widget: a live loss-landscape explorer for Jupyter.

The engine (`Landscape`, `directions`, `Curve`, `Surface`, `compare_surfaces`) needs only
PyTorch, NumPy, SciPy and matplotlib; the widget (`explore`, `compare`, `Explorer`,
`Compare`, `LandscapeWidget`) is imported on first use, so batch jobs never load Jupyter
packages.
"""

from . import directions, distributed, metrics, shapes
from .comparison import compare, compare_surfaces
from .curvature import NonSmoothWarning
from .directions import Direction
from .engine.heap import keep_heap
from .engine.jobs import JobEstimate, JobTooLarge
from .engine.landscape import Landscape
from .engine.sampling import Grid, Tile
from .results import Curve, Surface, load, load_directions
from .trajectory import Path, Recorder, Trajectory

__version__ = "0.1.0"

_WIDGET_NAMES = ("explore", "Explorer", "LandscapeWidget", "Compare")


def __getattr__(name: str) -> object:
    """The widget layer loads on first use, so the engine runs without Jupyter packages."""
    if name in _WIDGET_NAMES:
        try:
            from . import widget
        except ImportError as exc:
            raise ImportError(
                f"lw.{name} needs the widget packages ({exc.name or exc}); install them with "
                "pip install 'ls-widget[widget]'"
            ) from exc
        return getattr(widget, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Compare",
    "Curve",
    "Direction",
    "Explorer",
    "Grid",
    "JobEstimate",
    "JobTooLarge",
    "Landscape",
    "LandscapeWidget",
    "NonSmoothWarning",
    "Path",
    "Recorder",
    "Surface",
    "Tile",
    "Trajectory",
    "__version__",
    "compare",
    "compare_surfaces",
    "directions",
    "distributed",
    "explore",
    "keep_heap",
    "load",
    "load_directions",
    "metrics",
    "shapes",
]
