"""Curve and Surface: immutable records of computed landscapes, with plotting and files.

Plotters and exporters take these records and never recompute. Arrays are read-only numpy
arrays; provenance of the directions travels with the values into saved files.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from ..figures.contour import plot_surface
from ..figures.curves import plot_curve
from . import io


def _frozen(a: Any, dtype: Any = np.float64) -> np.ndarray:
    arr = np.array(a, dtype=dtype, copy=True)
    arr.setflags(write=False)
    return arr


def _frozen_values(values: Mapping[str, Any]) -> Mapping[str, np.ndarray]:
    return MappingProxyType({k: _frozen(v) for k, v in values.items()})


@dataclass(frozen=True)
class _Record:
    values: Mapping[str, np.ndarray]
    directions: tuple[dict[str, Any], ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, metric: str) -> np.ndarray:
        try:
            return self.values[metric]
        except KeyError:
            raise KeyError(
                f"no metric {metric!r}; this record has {sorted(self.values)}"
            ) from None

    def __contains__(self, metric: object) -> bool:
        return metric in self.values

    def __iter__(self) -> Iterator[str]:
        return iter(self.values)

    @property
    def metrics(self) -> tuple[str, ...]:
        """Names of the metrics, "loss" first."""
        return tuple(self.values)

    def _labels(self) -> str:
        return ", ".join(repr(str(d.get("label", d.get("kind", "?")))) for d in self.directions)

    @staticmethod
    def _range(a: np.ndarray) -> str:
        return f"[{a[0]:.3g}, {a[-1]:.3g}]" if len(a) else "[]"

    def _header(self, kind: str) -> dict[str, Any]:
        return {"kind": kind, "directions": list(self.directions), "meta": self.meta,
                "metrics": list(self.values)}


@dataclass(frozen=True)
class Curve(_Record):
    """A 1D landscape f(α) = L(θ + α·d): coordinates `x` and one array per metric.

    Attributes:
        x: the α values, shape (n,).
        values: metric name → array of shape (n,), NaN/inf where the loss is non-finite.
        directions: provenance of the direction (one dict).
        meta: model, data and evaluation details (e.g. the centre loss, dtype, device).
    """

    x: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __post_init__(self) -> None:
        object.__setattr__(self, "x", _frozen(self.x))
        object.__setattr__(self, "values", _frozen_values(self.values))
        for k, v in self.values.items():
            if v.shape != self.x.shape:
                raise ValueError(f"metric {k!r} has shape {v.shape}, expected {self.x.shape}")

    def __repr__(self) -> str:
        return (f"Curve({len(self.x)} points, x={self._range(self.x)}, "
                f"metrics={self.metrics}, direction={self._labels()})")

    def plot(
        self, ax: Any = None, *, metrics: tuple[str, ...] | None = None, log: bool = False
    ) -> Any:
        """Loss on the left axis, the other metrics (e.g. accuracy) dashed on a twin axis."""
        return plot_curve(self, ax=ax, metrics=metrics, log=log)

    def save(self, path: str | os.PathLike[str]) -> str:
        """Write an .npz with the arrays and a JSON header of the provenance; returns the
        path written (``.npz`` is added to a path without a suffix)."""
        arrays = {f"value_{k}": v for k, v in self.values.items()}
        return io.write_npz(path, self._header("curve"), x=self.x, **arrays)


@dataclass(frozen=True)
class Surface(_Record):
    """A 2D landscape f(α, β) = L(θ + α·d₁ + β·d₂) on a grid.

    Attributes:
        x: the α values (columns), shape (nx,).
        y: the β values (rows), shape (ny,).
        values: metric name → array of shape (ny, nx); ``Z[i, j]`` is at ``(x[j], y[i])``.
        evaluated: bool mask (ny, nx), True where the model was evaluated (False where
            adaptive refinement filled the value by interpolation).
        directions: provenance of d₁ and d₂.
        meta: model, data and evaluation details.
    """

    x: np.ndarray = field(default_factory=lambda: np.zeros(0))
    y: np.ndarray = field(default_factory=lambda: np.zeros(0))
    evaluated: np.ndarray | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "x", _frozen(self.x))
        object.__setattr__(self, "y", _frozen(self.y))
        object.__setattr__(self, "values", _frozen_values(self.values))
        shape = (len(self.y), len(self.x))
        for k, v in self.values.items():
            if v.shape != shape:
                raise ValueError(f"metric {k!r} has shape {v.shape}, expected {shape}")
        ev = np.ones(shape, bool) if self.evaluated is None else self.evaluated
        object.__setattr__(self, "evaluated", _frozen(ev, bool))

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns) = (len(y), len(x))."""
        return (len(self.y), len(self.x))

    def __repr__(self) -> str:
        assert self.evaluated is not None
        ev = "" if self.evaluated.all() else f", {int(self.evaluated.sum())} evaluated"
        return (f"Surface({self.shape[0]}×{self.shape[1]}, x={self._range(self.x)}, "
                f"y={self._range(self.y)}, metrics={self.metrics}, "
                f"directions=({self._labels()}){ev})")

    def plot(
        self,
        metric: str = "loss",
        *,
        ax: Any = None,
        log: bool = False,
        levels: int | np.ndarray = 20,
        filled: bool = True,
        cmap: str = "viridis",
    ) -> Any:
        """Contour plot with labelled isolines and a colorbar; the model marked at (0, 0)."""
        return plot_surface(
            self, metric, ax=ax, log=log, levels=levels, filled=filled, cmap=cmap
        )

    def save(self, path: str | os.PathLike[str]) -> str:
        """Write an .npz with the arrays and a JSON header of the provenance; returns the
        path written (``.npz`` is added to a path without a suffix)."""
        arrays = {f"value_{k}": v for k, v in self.values.items()}
        assert self.evaluated is not None
        return io.write_npz(path, self._header("surface"), x=self.x, y=self.y,
                            evaluated=self.evaluated, **arrays)


def load(path: str | os.PathLike[str]) -> Curve | Surface:
    """Read a Curve or Surface written by `.save()`."""
    header, arrays = io.read_npz(path)
    common = {
        "values": {k: arrays[f"value_{k}"] for k in header["metrics"]},
        "directions": tuple(header["directions"]),
        "meta": header["meta"],
    }
    if header["kind"] == "curve":
        return Curve(x=arrays["x"], **common)
    return Surface(x=arrays["x"], y=arrays["y"], evaluated=arrays["evaluated"], **common)
