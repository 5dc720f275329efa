"""Directions built to show a shape without mining (Xu et al. 2024; ../shared/METHODS.md).

- **v-basin**: a seeded, filter-normalized Gaussian direction (Li et al. 2018): almost every
  random direction through a trained model shows a single basin (Xu et al.'s first finding);
- **v-side**: the gradient ∇L/‖∇L‖ at the model, scaled to the norm of a filter-normalized
  direction: the loss falls on one side and rises on the other, the model on a wall. At that
  scale the wall is short: the loss's minimum along ∇L lies close to the model (at α ≈ −0.005
  on the digits MLP, whose curve is a v-side on spans up to 0.01 and a v-basin from 0.02);
- **w-basin**: towards a second solution, θ_other − θ (`lw.directions.towards`): two basins,
  the model at α = 0 and the other model at α = 1 (a span of 1.5 or more shows both walls).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..directions.direction import Direction
from ..directions.gaussian import random
from ..directions.towards import towards
from .filter_sphere import FilterSphere
from .kinds import CONSTRUCTED, check_kind
from .objectives import Objective, value_and_grad
from .protocols import LandscapeLike

__all__ = ["construct"]

def construct(
    land: LandscapeLike, kind: str, *, other: nn.Module | None = None, seed: int = 0
) -> Direction:
    """A direction that shows the shape `kind` along the landscape's model (Xu et al. 2024).

    Args:
        land: the landscape.
        kind: ``"v-basin"`` (a seeded filter-normalized Gaussian), ``"v-side"`` (the
            normalized gradient) or ``"w-basin"`` (towards `other`); see the module docstring.
        other: for ``"w-basin"``, a second trained model of the same architecture.
        seed: for ``"v-basin"``, the Gaussian's seed.

    Returns:
        The `Direction`, its provenance naming the shape it was built for (``target``).

    Raises:
        ValueError: an unknown kind, `other` missing for "w-basin" or given for another kind,
            or a zero gradient for "v-side".
    """
    kind = check_kind(kind, CONSTRUCTED, "construct()")
    if kind == "w-basin" and other is None:
        raise ValueError("construct('w-basin') needs other=, a second trained model of the same "
                         "architecture (the direction goes from the landscape's model to it)")
    if kind != "w-basin" and other is not None:
        raise ValueError(f"other= applies to construct('w-basin') only, not to {kind!r}")
    if kind == "v-basin":
        d = random(land.model, seed)
        return Direction(dict(d), target=kind, **d.provenance)
    if kind == "w-basin":
        assert other is not None
        d = towards(land.model, other)
        return Direction(dict(d), buffers=d.buffers, target=kind, **d.provenance)
    return _gradient(land)


def _gradient(land: LandscapeLike) -> Direction:
    """∇L/‖∇L‖ over the tensors a filter-normalized direction moves, times their norm ‖θ‖."""
    sphere = FilterSphere(land.model, land.space)
    at_model = Objective("v-side", (1.0,), (1.0,), "L(θ + d)")  # ∇ at d = 0 is ∇L(θ)
    _, g = value_and_grad(land.evaluator, sphere.moving, sphere.zeros(), at_model)
    size = math.sqrt(sum(float(t.double().pow(2).sum()) for t in g.values()))
    if not size > 0.0 or not math.isfinite(size):
        raise ValueError(
            f"the gradient of the loss at the model has norm {size:g} over the moving weights: "
            "there is no side to show; a v-side needs a model off a critical point"
        )
    scale = sphere.radius / size
    tensors = {n: g[n] * scale if n in g else torch.zeros_like(t)
               for n, t in land.space.theta0.items()}
    return Direction(tensors, kind="gradient", target="v-side", norm="model", ignore="biasbn",
                     gradient_norm=size, label="∇L/‖∇L‖")
