"""Planes of mined directions: a saddle, a wine bottle (Xu et al. 2024).

Xu et al. 2024 combine mined 1D directions into 2D pictures: a v-basin direction across a
w-peak one shows a saddle (the model at a minimum along one axis, at a maximum along the
other); two w-peak directions show a ring-shaped trough around a central bump (a wine bottle's
base). Ours (../shared/METHODS.md):

- **saddle**: d₂ a mined w-peak (`mine`), d₁ a seeded filter-normalized Gaussian (a v-basin)
  made orthogonal to d₂ (Gram–Schmidt, `orthogonalize`);
- **wine bottle**: d₁ a mined w-peak; d₂ mined from a seeded Gaussian on the ring objective
  across d₁ (`objectives.ring`: the loss all around a circle in the plane below the model's),
  made orthogonal to d₁, until the plane is classified a wine bottle. Two w-peaks mined apart
  made one on 1 of 3 digits MLPs: their diagonals stayed basins.

The plane on [−span, span]² is classified by `classify_surface`.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from dataclasses import dataclass
from typing import Any

from ..directions.direction import Direction
from ..directions.gaussian import _seed
from ..directions.ops import orthogonalize
from ..engine.progress import ProgressBar, check_progress
from ..results.records import Surface
from .construct import construct
from .descent import LR, MARGIN, STEPS, Callback, Judge, Verdict, descend
from .filter_sphere import FilterSphere
from .kinds import PLANE_KINDS, check_kind
from .mine import check_descent, check_scale, mine
from .objectives import ring
from .protocols import LandscapeLike, loss_name
from .surface import SurfaceShape, classify_surface

__all__ = ["PLANE_KINDS", "MinedPlane", "mine_plane"]


@dataclass(frozen=True)
class MinedPlane:
    """A plane of mined (and constructed) directions, with its surface and shape.

    Attributes:
        d1: the x axis. Saddle: the v-basin direction, orthogonal to d2; wine bottle: the
            mined w-peak.
        d2: the y axis. Saddle: the mined w-peak; wine bottle: the ring-mined direction,
            orthogonal to d1 (provenance ``target="wine-bottle"``, ``reached``, ``steps``...).
        surface: the loss on [−span, span]² along d1 (x) and d2 (y).
        shape: ``classify_surface(surface)``.
    """

    d1: Direction
    d2: Direction
    surface: Surface
    shape: SurfaceShape

    def __repr__(self) -> str:
        return f"MinedPlane({self.d1.label!r} × {self.d2.label!r}: {self.shape})"


def mine_plane(
    land: LandscapeLike,
    kind: str,
    *,
    span: float = 1.0,
    n: int = 41,
    seed: int = 0,
    progress: bool = True,
    **mine_kw: Any,
) -> MinedPlane:
    """A plane that shows a saddle or a wine bottle, from mined directions (Xu et al. 2024).

    Args:
        land: the landscape (its model never changes).
        kind: ``"saddle"`` or ``"wine-bottle"`` (module docstring).
        span: the plane is [−span, span]²; the directions are mined at that scale.
        n: grid points per axis of the plane.
        seed: the seed of the Gaussian direction, and of the mining (see `mine`).
        progress: show bars for the mining and the plane.
        **mine_kw: more arguments of `mine` for the w-peak (``steps``, ``budget``, ``lr``,
            ``margin``, ``start``, ``cancel``, ``callback``); the wine bottle's ring mining
            takes the same ones but ``start`` (it starts from the Gaussian of `seed`).

    Returns:
        `MinedPlane`: the two directions, the surface and its shape. Whether each mined axis
        reached its shape is in its provenance (``reached``).
    """
    kind = check_kind(kind, PLANE_KINDS, "mine_plane()")
    span, n = check_scale(span, n)
    check_progress(progress)
    seed = _seed(seed)
    passed = {f.name for f in dataclasses.fields(_RingArgs)} | {"start"}
    unknown = sorted(set(mine_kw) - passed)
    if unknown:
        raise TypeError(f"mine_plane() got unexpected arguments {unknown}; its own are kind, "
                        f"span, n, seed and progress, and it passes {sorted(passed)} to mine()")
    peak = mine(land, "w-peak", span=span, seed=seed, progress=progress, **mine_kw).direction
    if kind == "saddle":
        d1, d2 = orthogonalize(construct(land, "v-basin", seed=seed), peak), peak
    else:
        d1, d2 = peak, _ring(land, peak, span, n, seed, progress, mine_kw)
    surface = land.plane(d1, d2, span=span, n=n, progress=progress)
    return MinedPlane(d1, d2, surface, classify_surface(surface, metric=loss_name(land)))


@dataclass(frozen=True)
class _RingArgs:
    """The arguments of `mine` that the ring mining takes too (see `mine`)."""

    steps: int = STEPS
    budget: float | None = None
    lr: float = LR
    margin: float = MARGIN
    cancel: threading.Event | None = None
    callback: Callback | None = None


def _ring(land: LandscapeLike, across: Direction, span: float, n: int, seed: int,
          progress: bool, mine_kw: dict[str, Any]) -> Direction:
    """A direction mined on the ring objective across `across`, orthogonal to it."""
    names = {f.name for f in dataclasses.fields(_RingArgs)}
    a = _RingArgs(**{k: v for k, v in mine_kw.items() if k in names})
    check_descent(a.steps, a.budget, a.lr, a.margin, progress, a.cancel, a.callback)
    sphere = FilterSphere(land.model, land.space)
    start = sphere.project(orthogonalize(construct(land, "v-basin", seed=seed), across))
    obj = ring(span, across)
    judge = _plane_judge(land, across, span, n, float(a.margin))
    with ProgressBar(progress, total=a.steps, unit="step", desc="mining wine-bottle") as bar:
        run = descend(land.evaluator, sphere, obj, start, judge, steps=a.steps,
                      budget=a.budget, lr=float(a.lr), cancel=a.cancel, callback=a.callback,
                      bar=bar)
    prov = run.provenance(obj, seed=seed, start=f"random #{seed} ⊥ {across.label}", span=span,
                          lr=float(a.lr))
    return orthogonalize(Direction(run.direction, **prov), across)


def _plane_judge(land: LandscapeLike, across: Direction, span: float, n: int,
                 margin: float) -> Judge:
    """A judge that classifies the plane of `across` and the direction (made orthogonal to
    it): done when it is a wine bottle with at least `margin` and the ring lies below the
    model (J < 0)."""

    def judge(d: Direction, value: float) -> Verdict:
        surf = land.plane(across, orthogonalize(d, across), span=span, n=n, progress=False)
        shape = classify_surface(surf, metric=loss_name(land))
        reached = shape.kind == "wine-bottle"
        done = reached and shape.margin >= margin and value < 0 and math.isfinite(value)
        return Verdict(shape, surf, reached, done)

    return judge
