"""Curve and Surface: immutable records of computed landscapes, with plotting and files.

Plotters and exporters take these records and never recompute. Arrays are read-only numpy
arrays; provenance of the directions travels with the values into saved files, and the
direction tensors themselves into .h5 files on request (``save(..., directions=True)``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..figures.contour import plot_surface
from ..figures.curves import plot_curve
from ..figures.explorer import explorer_figure
from . import io

if TYPE_CHECKING:
    from ..directions.direction import Direction


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
    # The Direction objects themselves (not copies: the record keeps them alive), for
    # save(..., directions=True); not part of the record's value (equality, repr).
    direction_tensors: tuple[Direction, ...] = field(default=(), compare=False, repr=False)

    _AXES: ClassVar[int] = 1

    def _check_tensors(self) -> None:
        tensors = tuple(self.direction_tensors)
        if tensors and (len(tensors) != self._AXES
                        or not all(isinstance(d, Mapping) for d in tensors)):
            raise ValueError(
                f"direction_tensors: a {type(self).__name__} has {self._AXES} direction(s), "
                f"given {len(tensors)} ({', '.join(type(d).__name__ for d in tensors)}); pass "
                "the Directions it was computed along, or none"
            )
        object.__setattr__(self, "direction_tensors", tensors)

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

    def _contents(self) -> io.Contents:
        raise NotImplementedError

    def save(
        self,
        path: str | os.PathLike[str],
        *,
        directions: bool | Sequence[Direction] = False,
        z: str | None = None,
        log: bool = False,
        zmax: float | None = None,
    ) -> str:
        """Write the record to a file whose suffix names the format; returns the file written.

        - ``.npz`` (the default; a path without a suffix gets it): the arrays and a JSON
          header of the provenance. Read back with `lw.load`.
        - ``.h5``: the layout of the reference code (tomgoldstein/loss-landscape):
          ``xcoordinates``, ``ycoordinates``, ``train_loss``, ``train_acc`` (in percent), ...
          in its flat meshgrid order, plus our provenance; its scripts (plot_2D, plot_1D,
          h52vtp) read it, and so does `lw.load` (ours and the reference's files). Needs
          ``pip install 'ls-widget[files]'``.
        - ``.vts`` / ``.vtp``: VTK XML for ParaView, a structured grid or a surface of quads
          (as the reference's h52vtp), every metric a point array, z the loss. Needs
          ``pip install 'ls-widget[files]'``.

        Any other suffix is an error.

        Args:
            path: the file.
            directions: .h5 only: also write the direction tensors, in the reference's
                ``xdirection``/``ydirection`` layout (one dataset per parameter, in
                ``named_parameters()`` order) with their names; True: those this record was
                computed along (`direction_tensors`), or a list of `Direction`s. Read them
                back with ``lw.load(path).direction_tensors``.
            z: .vts/.vtp only: the metric drawn as the height (default: the first).
            log: .vts/.vtp only: heights ``log(z + 0.1)``, as h52vtp's ``--log``.
            zmax: .vts/.vtp only: clip heights above this value, as h52vtp's ``--zmax``.
        """
        io.check_options(path, directions=directions is not False, z=z, log=log, zmax=zmax)
        return io.save(path, self._contents(), directions=self._tensors_to_save(directions),
                       z=z, log=log, zmax=zmax)

    def _tensors_to_save(self, directions: bool | Sequence[Direction]) -> tuple[Direction, ...]:
        if directions is False:
            return ()
        if directions is True:
            if not self.direction_tensors:
                raise ValueError(
                    f"this {type(self).__name__} holds no direction tensors (it was loaded "
                    "from a file without them, or built by hand); pass them: "
                    "save(path, directions=[d1, d2])"
                )
            return self.direction_tensors
        given = tuple(directions)
        if len(given) != self._AXES or not all(isinstance(d, Mapping) for d in given):
            raise ValueError(
                f"directions: a {type(self).__name__} has {self._AXES} direction(s); pass "
                f"True or a list of {self._AXES} Direction(s), got {directions!r}"
            )
        return given


@dataclass(frozen=True)
class Curve(_Record):
    """A 1D landscape f(α) = L(θ + α·d): coordinates `x` and one array per metric.

    Attributes:
        x: the α values, shape (n,).
        values: metric name → array of shape (n,), NaN/inf where the loss is non-finite.
        directions: provenance of the direction (one dict).
        meta: model, data and evaluation details (e.g. the centre loss, dtype, device).
        direction_tensors: the `Direction` itself, ``(d,)``, when known (a `line` fills it;
            a file saved with ``directions=True`` restores it); else ``()``.
    """

    x: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __post_init__(self) -> None:
        object.__setattr__(self, "x", _frozen(self.x))
        object.__setattr__(self, "values", _frozen_values(self.values))
        self._check_tensors()
        for k, v in self.values.items():
            if v.shape != self.x.shape:
                raise ValueError(f"metric {k!r} has shape {v.shape}, expected {self.x.shape}")

    def __repr__(self) -> str:
        return (f"Curve({len(self.x)} points, x={self._range(self.x)}, "
                f"metrics={self.metrics}, direction={self._labels()})")

    def plot(
        self, ax: Any = None, *, metrics: tuple[str, ...] | None = None, log: bool = False
    ) -> Any:
        """Loss on the left axis, the other metrics (e.g. accuracy) dashed on a twin axis;
        with named data sets, train solid and test dashed, one colour per metric."""
        return plot_curve(self, ax=ax, metrics=metrics, log=log)

    def barrier(
        self, metric: str = "loss", *, between: tuple[float, float] | None = None
    ) -> float:
        """The loss barrier (Frankle et al. 2020): linear mode connectivity in one number.

        With a and b the ends, ``max over the points α in [a, b] of
        f(α) − [(1 − t)·f(a) + t·f(b)]``, t = (α − a)/(b − a): how far `metric` rises above
        the straight line between its values at the two ends. The ends are the curve's own
        two ends (its first and last x): along ``land.line(lw.directions.towards(m0, m1),
        span=(0, 1))`` those are the two models. ``between=(a, b)`` takes them at two points
        of a longer curve instead (e.g. ``(0, 1)`` on a span of (−0.5, 1.5)).

        Zero at the ends, so never negative; about zero when the models are linearly
        connected. Over the computed points only (a finer `n` finds a sharper peak). NaN
        when a value in the range is NaN, inf when one is inf.

        Args:
            metric: which values, e.g. ``"loss"`` or, with named data sets, ``"test/loss"``.
            between: the two ends, points of `x`; None: ``(x[0], x[-1])``.
        """
        if metric not in self.values:
            suffix = [m for m in self.values if m.endswith("/" + metric)]
            hint = f"; pass metric={suffix[0]!r}" if suffix else ""
            raise ValueError(
                f"barrier(): this curve has no metric {metric!r}; it has {list(self.values)}"
                f"{hint}"
            )
        if len(self.x) < 2:
            raise ValueError(f"barrier() needs a curve of 2 points or more; it has {len(self.x)}")
        lo, hi = (0, len(self.x) - 1) if between is None else self._ends(between)
        x, f = self.x[lo:hi + 1], self.values[metric][lo:hi + 1]
        t = (x - x[0]) / (x[-1] - x[0])
        return float(np.max(f - ((1.0 - t) * f[0] + t * f[-1])))

    def _ends(self, between: tuple[float, float]) -> tuple[int, int]:
        """The indices of the points at `between` (a pair of distinct points of `x`)."""
        if (not isinstance(between, (tuple, list)) or len(between) != 2
                or not all(isinstance(v, (int, float, np.number)) for v in between)):
            raise TypeError(f"between must be a pair of numbers (a, b), got {between!r}")
        tol = 1e-9 * max(1.0, float(np.abs(self.x).max()))
        idx = []
        for v in between:
            i = int(np.argmin(np.abs(self.x - float(v))))
            if not abs(float(self.x[i]) - float(v)) <= tol:
                raise ValueError(
                    f"between={tuple(between)!r}: {v!r} is not a point of this curve (its x runs "
                    f"from {self.x[0]:.6g} to {self.x[-1]:.6g} over {len(self.x)} points); pass "
                    "two of its points, or compute the curve with a span and n that include them"
                )
            idx.append(i)
        if idx[0] == idx[1]:
            raise ValueError(f"between={tuple(between)!r} names one point twice; pass two ends")
        return min(idx), max(idx)

    def _contents(self) -> io.Contents:
        return io.Contents(self._header("curve"), self.x, self.values)


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
        direction_tensors: the `Direction`s themselves, ``(d₁, d₂)``, when known (`plane`
            fills them; a file saved with ``directions=True`` restores them); else ``()``.
    """

    x: np.ndarray = field(default_factory=lambda: np.zeros(0))
    y: np.ndarray = field(default_factory=lambda: np.zeros(0))
    evaluated: np.ndarray | None = None

    _AXES: ClassVar[int] = 2

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
        self._check_tensors()

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
        metric: str | None = None,
        *,
        ax: Any = None,
        log: bool | str = "auto",
        levels: int | np.ndarray | None = None,
        vmin: float | None = None,
        vmax: float | None = None,
        filled: bool = True,
        cmap: str = "viridis",
        path: Any = None,
        markers: Mapping[str, tuple[float, float]] | None = None,
        cross: tuple[float, float] | None = None,
    ) -> Any:
        """Contour plot with labelled isolines and a colorbar, as the widget draws it; the
        model marked at (0, 0).

        Args:
            metric: which values to draw (default: the first, "loss" or "train/loss").
            ax: matplotlib axes to draw into (default: a new figure).
            log: "auto" (a log colour scale when the finite values are all positive and
                max / min > 100), True or False.
            levels: how many isolines (default 12, as the widget), or their values.
            vmin: the bottom of the colour scale (lower values take its colour).
            vmax: the top of the colour scale.
            filled: fill between the isolines.
            cmap: the colour map (the widget's default, viridis).
            path: a training path drawn over the surface (start ○, end ●): a `lw.Path`
                (``traj.project(d1, d2)``), or a `lw.Trajectory` when this surface was
                computed along ``lw.directions.pca(traj)``.
            markers: named points ``{"m0": (0, 0), "m1": (1, 0)}`` drawn with their names
                (default: those the directions carry, e.g. from ``lw.directions.through``).
            cross: a point (α, β): draw the explorer's layout instead, the contour with the
                two cross-sections through that point on its right (`explorer_figure`).
        """
        if markers is None and self.directions:
            markers = self.directions[0].get("markers")
        style = dict(log=log, levels=levels, vmin=vmin, vmax=vmax, filled=filled, cmap=cmap,
                     path=path, markers=markers)
        if cross is not None:
            if ax is not None:
                raise ValueError("cross= draws a figure of its own; pass ax=None with cross=")
            return explorer_figure(self, metric or self.metrics[0], cross=cross, **style)
        return plot_surface(self, metric or self.metrics[0], ax=ax, **style)

    def _contents(self) -> io.Contents:
        return io.Contents(self._header("surface"), self.x, self.values, y=self.y,
                           evaluated=self.evaluated)


def load(path: str | os.PathLike[str]) -> Curve | Surface:
    """Read a Curve or Surface from an ``.npz`` or ``.h5`` file.

    Reads the files `.save()` writes and the surface files of the reference code
    (tomgoldstein/loss-landscape: 1D, and 2D square or not, in its flat meshgrid order),
    whose ``<set>_loss``/``<set>_acc`` become ``"<set>/loss"``/``"<set>/accuracy"`` (as a
    fraction) and whose points still at crunch's -1 (not computed) become NaN, marked not
    `evaluated`. A file saved with ``directions=True`` gives back its `direction_tensors`.
    """
    c = io.load(path)
    common = {
        "values": dict(c.values),
        "directions": tuple(c.header["directions"]),
        "meta": c.header["meta"],
        "direction_tensors": c.tensors,
    }
    if c.y is None:
        return Curve(x=c.x, **common)
    return Surface(x=c.x, y=c.y, evaluated=c.evaluated, **common)
