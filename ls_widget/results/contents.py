"""What every file format of records exchanges: `Contents`, the JSON header, optional imports.

The base of the format modules (`io`, the dispatcher and `.npz`; `hdf5`; `vtk`): they import
this module and never each other, except `io` dispatching to the others.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ..directions.direction import Direction

FORMAT = "ls-widget"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Contents:
    """What a file of a Curve or Surface holds, whatever its format.

    Attributes:
        header: ``kind`` ("curve" or "surface"), ``metrics`` (names, in order),
            ``directions`` (provenance dicts) and ``meta``.
        x: the α values, shape (nx,).
        values: metric name → (nx,) for a curve, (ny, nx) for a surface (``Z[i, j]`` at
            ``(x[j], y[i])``).
        y: the β values (ny,), None for a curve.
        evaluated: (ny, nx) bool mask of the evaluated points, None for a curve.
        tensors: the directions themselves (`Direction` objects), when the file holds them.
    """

    header: dict[str, Any]
    x: np.ndarray
    values: Mapping[str, np.ndarray]
    y: np.ndarray | None = None
    evaluated: np.ndarray | None = None
    tensors: tuple[Direction, ...] = field(default=())

    @property
    def kind(self) -> str:
        """"curve" or "surface"."""
        return "curve" if self.y is None else "surface"


def optional(module: str) -> ModuleType:
    """Import an optional package of the ``files`` extra, or say how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"this file type needs the package {module!r}, which is not installed; install the "
            "optional file formats with pip install 'ls-widget[files]'"
        ) from exc


def header_text(header: dict[str, Any]) -> str:
    """`header` as JSON, with the format name and version (NumPy scalars as numbers)."""
    return json.dumps({"format": FORMAT, "version": FORMAT_VERSION, **header},
                      default=json_default)


def json_default(o: Any) -> Any:
    """`json.dumps`'s fallback: NumPy scalars and arrays as numbers, anything else as text."""
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)
