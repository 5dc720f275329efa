"""What the figures need of a record (a Protocol, so figures never import the records) and
shared matplotlib helpers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np


class CurveLike(Protocol):
    """A 1D record: coordinates `x`, one array per metric, the directions' provenance."""

    @property
    def x(self) -> np.ndarray: ...

    @property
    def directions(self) -> Sequence[Mapping[str, Any]]: ...

    @property
    def metrics(self) -> tuple[str, ...]: ...

    def __getitem__(self, metric: str) -> np.ndarray: ...


class SurfaceLike(CurveLike, Protocol):
    """A 2D record: also `y`; values of shape (len(y), len(x))."""

    @property
    def y(self) -> np.ndarray: ...


def axes(ax: Any, figsize: tuple[float, float]) -> tuple[Any, Any]:
    """(figure, axes): `ax` and its figure, or a new constrained-layout figure."""
    import matplotlib.pyplot as plt

    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    return fig, ax


def axis_label(record: CurveLike, i: int, fallback: str) -> str:
    """The label of direction `i` from its provenance, else `fallback`."""
    dirs = record.directions
    if i < len(dirs) and dirs[i].get("label"):
        return str(dirs[i]["label"])
    return fallback
