"""The Jupyter layer: the live landscape view, its controls and panels (anywidget, ipywidgets)."""

from .explorer import Explorer, explore
from .view import LandscapeWidget

__all__ = ["Explorer", "LandscapeWidget", "explore"]
