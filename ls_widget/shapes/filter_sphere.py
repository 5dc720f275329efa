"""The filter-normalized directions of a model, as the set mining moves on.

A filter-normalized direction (Li et al. 2018; `lw.directions.random`'s default) has each
filter (a slice along dim 0 of a weight tensor: a Linear row, a conv output filter) of the
norm of the model's filter, and zeros on biases, BatchNorm parameters and tensors the
landscape does not move (frozen ones). That set is a product of spheres, one per filter, so
projected gradient descent on it (mining, Xu et al. 2024) takes the tangent part of a gradient
per filter and maps a stepped direction back by rescaling each filter (the retraction).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from ..directions.gaussian import normalize
from ..engine.params import ParamSpace, filter_norms, select_names

__all__ = ["FilterSphere"]


class FilterSphere:
    """The filter-normalized directions of a model over the tensors that move.

    Args:
        model: the user's model (its ``requires_grad`` flags say which tensors are trainable).
        space: its `ParamSpace` (θ₀).

    Attributes:
        moving: the names of the trainable weight tensors (dim > 1), in
            ``named_parameters()`` order; every other tensor of a direction is zero.
        radius: ‖d‖ of every direction on the set (the norm of θ₀ over `moving`).
        rms: per moving tensor, each filter's root-mean-square entry ‖θᵢ‖/√(its size),
            shaped to broadcast: the scale of a step in that filter.

    Raises:
        ValueError: no trainable parameter has dim > 1 (nothing a filter-normalized
            direction could move).
    """

    def __init__(self, model: nn.Module, space: ParamSpace) -> None:
        self.theta: Mapping[str, Tensor] = space.theta0
        trainable = select_names(list(model.named_parameters()), "trainable")
        self.moving: tuple[str, ...] = tuple(n for n in trainable if self.theta[n].dim() > 1)
        if not self.moving:
            raise ValueError(
                "no trainable weight tensor of dim > 1 to move: filter-normalized directions "
                f"leave biases and BatchNorm parameters still (trainable: {trainable[:4]}); "
                "set requires_grad=True on some weight tensors of the model"
            )
        self.radius = math.sqrt(sum(float(self.theta[n].double().pow(2).sum())
                                    for n in self.moving))
        # Each filter's root-mean-square entry: the size of one coordinate of a direction.
        self.rms: dict[str, Tensor] = {
            n: filter_norms(self.theta[n]) / math.sqrt(self.theta[n][0].numel())
            for n in self.moving
        }

    def project(self, d: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """`d` on the set: each moving filter rescaled to the model's filter norm, the other
        tensors zero (as `lw.directions.normalize`, filter-wise, biases ignored)."""
        moved = normalize({n: d[n] for n in self.moving}, self.theta, "filter", "biasbn")
        return {n: moved[n] if n in moved else torch.zeros_like(t)
                for n, t in self.theta.items()}

    def tangent(self, g: Mapping[str, Tensor], d: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """The part of the gradient `g` (over `moving`) that rescaling each filter of `d`
        would not undo: per filter, gᵢ − (⟨gᵢ, dᵢ⟩ / ‖dᵢ‖²) dᵢ."""
        out = {}
        for n in self.moving:
            rows_g, rows_d = g[n].flatten(1), d[n].flatten(1)
            # A zero filter of θ has a zero filter of d: its gradient has no radius to remove.
            denom = rows_d.pow(2).sum(1).clamp_min(torch.finfo(rows_d.dtype).tiny)
            radial = (rows_g * rows_d).sum(1) / denom
            out[n] = (rows_g - radial[:, None] * rows_d).view_as(g[n])
        return out

    def zeros(self) -> dict[str, Tensor]:
        """The zero direction (the point where an objective's gradient is ∇L itself)."""
        return {n: torch.zeros_like(t) for n, t in self.theta.items()}
