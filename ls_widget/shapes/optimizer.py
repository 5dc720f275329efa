"""Adam on the filter spheres: the optimizer that mines directions (`mine`).

Adam (Kingma & Ba 2015) on the tangent part of the gradient, each coordinate's step scaled by
its filter's root-mean-square entry, then mapped back onto the filter-normalized set
(`FilterSphere.project`). Adam's per-coordinate scaling matters here: the gradient of a shape
objective is orders of magnitude larger in the few filters that make the loss explode than in
the rest, and a normalized gradient step moved by 0.1 rad per step oscillated where Adam found
a w-peak on the digits MLP in 50 to 90 steps (a step of 0.03 rad needed 700). Deterministic:
the state is the moments and the step count, no clock, no randomness.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor

from .filter_sphere import FilterSphere

__all__ = ["SphereAdam"]


class SphereAdam:
    """Adam steps on the filter-normalized directions of `sphere`.

    Args:
        sphere: the set (its moving tensors, the retraction, each filter's RMS entry).
        lr: the step per coordinate, in units of its filter's RMS entry (0.1: a tenth).
        betas: the moments' decay rates (Adam's defaults).
        eps: added to √v̂; tiny, so that the step does not depend on the loss's scale.
    """

    def __init__(self, sphere: FilterSphere, lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-12) -> None:
        self.sphere, self.lr, self.betas, self.eps = sphere, lr, betas, eps
        self.m = {n: torch.zeros_like(sphere.theta[n]) for n in sphere.moving}
        self.v = {n: torch.zeros_like(sphere.theta[n]) for n in sphere.moving}
        self.t = 0

    def step(self, d: Mapping[str, Tensor],
             grad: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], float]:
        """The direction after one step from `d` down `grad`, and ‖tangent(grad)‖ (0: `d` is
        stationary and is returned unchanged, the moments untouched)."""
        tangent = self.sphere.tangent(grad, d)
        size = math.sqrt(sum(float(t.double().pow(2).sum()) for t in tangent.values()))
        if size == 0.0:
            return dict(d), size
        self.t += 1
        b1, b2 = self.betas
        out = dict(d)
        for n, g in tangent.items():
            self.m[n].mul_(b1).add_(g, alpha=1 - b1)
            self.v[n].mul_(b2).addcmul_(g, g, value=1 - b2)
            m_hat = self.m[n] / (1 - b1**self.t)
            v_hat = self.v[n] / (1 - b2**self.t)
            out[n] = d[n] - self.lr * self.sphere.rms[n] * m_hat / (v_hat.sqrt() + self.eps)
        return self.sphere.project(out), size
