"""A training trajectory drawn over the explorer's plane (Li et al. 2018, §7).

`explore(model, data, trajectory=traj)` takes the plane of the trajectory's first two
principal directions and projects the snapshots on it (`traj.project(d1, d2, origin=model)`,
an `lw.Path`). `PathOverlay` keeps that projection with the two directions it belongs to: the
view sends it (a "path" message, protocol.py) whenever its axes are those directions, in
either order, and never over another plane, where the coordinates would mean nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ..directions import Direction
from ..figures import contour as figures

MARGIN = 0.25
"""The default span leaves this fraction of the path's extent around it."""


class PathLike(figures.PathLike, Protocol):
    """What the view needs of an `lw.Path`: the figures' points and labels (labels are the
    hover texts, "step 120 · loss 0.41"), with the step and loss of each snapshot."""

    @property
    def steps(self) -> np.ndarray:
        """Training step of each snapshot."""

    @property
    def loss(self) -> np.ndarray:
        """Recorded loss of each snapshot (NaN where none was recorded)."""


@dataclass(frozen=True)
class PlanePath:
    """A path in the coordinates of one view: α along its x axis, β along its y axis."""

    alpha: np.ndarray
    beta: np.ndarray
    steps: np.ndarray
    loss: np.ndarray
    labels: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class PathOverlay:
    """A projected trajectory and the directions it was projected on.

    Attributes:
        path: the projection (an `lw.Path`).
        d1: the direction of its α coordinates.
        d2: the direction of its β coordinates.
    """

    path: PathLike
    d1: Direction
    d2: Direction

    def __post_init__(self) -> None:
        p = self.path
        n = len(np.asarray(p.alpha))
        sizes = [len(np.asarray(a)) for a in (p.beta, p.steps, p.loss)] + [len(p.labels)]
        if any(s != n for s in sizes):
            raise ValueError(
                f"the path's alpha, beta, steps, loss and labels differ in length ({[n, *sizes]}); "
                "project the trajectory again with traj.project(d1, d2)"
            )

    def on(self, d1: Direction, d2: Direction) -> PlanePath | None:
        """The path on the plane of (d1, d2): as projected when those are its directions,
        with α and β exchanged when they are swapped, None on any other plane."""
        p = self.path
        if d1 is self.d1 and d2 is self.d2:
            a, b = p.alpha, p.beta
        elif d1 is self.d2 and d2 is self.d1:
            a, b = p.beta, p.alpha
        else:
            return None
        return PlanePath(np.asarray(a, dtype=float), np.asarray(b, dtype=float),
                         np.asarray(p.steps, dtype=np.int64), np.asarray(p.loss, dtype=float),
                         tuple(str(t) for t in p.labels))


def path_span(path: PathLike, margin: float = MARGIN) -> float:
    """The half-width s of a square view (−s, s)² around the model that holds every snapshot
    with `margin` of the path's reach to spare: (1 + margin) · max |α|, |β|. 1.0 when the path
    sits on the model (no reach)."""
    coords = np.concatenate([np.asarray(path.alpha, dtype=float).ravel(),
                             np.asarray(path.beta, dtype=float).ravel()])
    finite = coords[np.isfinite(coords)]
    reach = float(np.abs(finite).max()) if finite.size else 0.0
    return (1.0 + margin) * reach if reach > 0 and math.isfinite(reach) else 1.0


def trajectory_plane(model: Any, trajectory: Any) -> tuple[Direction, Direction, PathLike]:
    """The trajectory's first two principal directions (`lw.directions.pca(traj, k=2)`) and
    the snapshots projected on them around `model` (`traj.project(d1, d2, origin=model)`)."""
    from ..directions import pca

    if not hasattr(trajectory, "project"):
        raise TypeError(
            f"trajectory must be an lw.Trajectory (from lw.Recorder(model).trajectory or "
            f"lw.Trajectory.from_checkpoints), got {type(trajectory).__name__}"
        )
    d1, d2 = pca(trajectory, k=2)
    return d1, d2, trajectory.project(d1, d2, origin=model)
