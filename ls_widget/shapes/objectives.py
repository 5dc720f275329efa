"""Shape objectives of a direction and their gradients over the whole data (Xu et al. 2024).

An objective is a weighted sum of the loss at points θ + βₖ·e + αₖ·d, J(d) = Σₖ wₖ·L(θ + βₖ·e +
αₖ·d), with e a fixed direction (or none: βₖ = 0, and J(d) = Σₖ wₖ·f(αₖ) with f(α) = L(θ + α·d)),
that is negative when d shows the target shape at the landscape's scale. Its gradient is
∇_d J = Σₖ wₖ·αₖ·∇L(θ + βₖ·e + αₖ·d), which autograd gives directly when the points are built
from d as a leaf. Xu et al. 2024 mine directions by descending such objectives; their exact
objectives are not public, these are ours (../shared/METHODS.md):

- **w-peak**: ½[f(a) + f(−a)] − f(0) with a = span/2: the model above two dips halfway to the
  ends, so that the walls at ±span can rise again beyond them;
- **vvv-basin**: ½[f(2a/3) + f(−2a/3)] − ½[f(a/3) + f(−a/3)] with a = span: dips at two
  thirds of the span below barriers at one third, the model in the middle basin;
- **ring** (for a wine bottle across a w-peak direction e): the mean over 8 angles φ of
  L(θ + a·cos φ·e + a·sin φ·d) − L(θ), a = span/2: a trough all around the model in the
  plane, not only along the two axes (two w-peak axes alone made a wine bottle on 1 of 3
  digits MLPs, the ring on 3 of 3).

The loss is the landscape's: the sample-weighted mean over its batches, in eval mode, on its
private copy of the model (`Evaluator.plain`), with `torch.func.functional_call`; the user's
model is never touched.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from ..curvature.protocols import LossEvaluator
from ..directions.direction import Direction
from ..engine.batch import forward

__all__ = ["MINED", "Objective", "is_finite", "objective", "ring", "value_and_grad"]

MINED = ("w-peak", "vvv-basin")
"""The shapes of a curve that mining looks for; the others have a construction."""

RING_ANGLES = 8
"""Points on the ring objective's circle (at odd multiples of π/8, none on the e axis)."""


@dataclass(frozen=True)
class Objective:
    """J(d) = Σₖ wₖ·L(θ + βₖ·e + αₖ·d), negative when d shows `target`.

    Attributes:
        target: the shape it is built for.
        alphas: the coefficients αₖ of d (α = 0 terms do not depend on d).
        weights: the weights wₖ.
        text: the formula, for provenance (e.g. "½[f(0.5) + f(−0.5)] − f(0)").
        betas: the coefficients βₖ of `across` (empty when there is none).
        across: the fixed direction e, or None.
    """

    target: str
    alphas: tuple[float, ...]
    weights: tuple[float, ...]
    text: str
    betas: tuple[float, ...] = ()
    across: Direction | None = None

    def part(self, moving: bool) -> Objective:
        """The terms that depend on d (αₖ ≠ 0), or the constant ones."""
        keep = [k for k, a in enumerate(self.alphas) if (a != 0.0) == moving]
        return Objective(
            self.target, tuple(self.alphas[k] for k in keep),
            tuple(self.weights[k] for k in keep), self.text,
            tuple(self.betas[k] for k in keep) if self.betas else (), self.across,
        )


def objective(target: str, span: float) -> Objective:
    """The objective mining `target` descends on [−span, span] (see the module docstring)."""
    if target == "w-peak":
        a = span / 2
        return Objective(target, (a, -a, 0.0), (0.5, 0.5, -1.0),
                         f"½[f({a:g}) + f(−{a:g})] − f(0)")
    if target == "vvv-basin":
        far, near = 2 * span / 3, span / 3
        return Objective(target, (far, -far, near, -near), (0.5, 0.5, -0.5, -0.5),
                         f"½[f({far:.4g}) + f(−{far:.4g})] − ½[f({near:.4g}) + f(−{near:.4g})]")
    raise ValueError(f"no mining objective for {target!r}; mining looks for {list(MINED)}")


def ring(span: float, across: Direction) -> Objective:
    """The ring objective of a wine bottle across the w-peak direction `across`."""
    a = span / 2
    angles = [math.pi * (2 * k + 1) / RING_ANGLES for k in range(RING_ANGLES)]
    w = 1.0 / RING_ANGLES
    return Objective(
        "wine-bottle",
        (*(a * math.sin(p) for p in angles), 0.0), (*(w for _ in angles), -1.0),
        f"mean over {RING_ANGLES} angles φ of L(θ + {a:g}·cos φ·e + {a:g}·sin φ·d) − L(θ), "
        f"e = {across.label}",
        (*(a * math.cos(p) for p in angles), 0.0), across,
    )


def value_and_grad(
    ev: LossEvaluator, names: Sequence[str], d: Mapping[str, Tensor], obj: Objective
) -> tuple[float, dict[str, Tensor]]:
    """J(d) of the objective `obj` and its gradient with respect to d's tensors `names`.

    One pass over the data; per batch, one forward per point and one backward for them all
    (one batch's graphs alive at a time). Buffers (BatchNorm statistics) stay at the model's.
    With d = 0 and a single point α = 1 the gradient is ∇L(θ) itself.

    Raises:
        ValueError: the loss is not a scalar batch mean.
    """
    space = ev.space
    theta, buffers = space.theta0, dict(space.buffers0)
    leaves = {n: d[n].detach().clone().requires_grad_(True) for n in names}
    grads = {n: torch.zeros_like(t) for n, t in leaves.items()}
    betas = obj.betas or (0.0,) * len(obj.alphas)
    points = []
    for a, b in zip(obj.alphas, betas, strict=True):
        e = obj.across
        fixed = {n: t + b * e[n] for n, t in theta.items()} if b and e is not None else theta
        points.append((a, fixed))
    total = 0.0
    with ev.plain() as module, torch.enable_grad():  # callers may hold no_grad
        for batch in ev.batches:
            share = batch.n / ev.n_samples
            value: Tensor | None = None
            for (a, fixed), w in zip(points, obj.weights, strict=True):
                params = {n: t + a * leaves[n] if n in leaves and a else t
                          for n, t in fixed.items()}
                loss = ev.loss_fn(forward(module, batch, (params, buffers)), batch.y)
                if loss.numel() != 1:
                    raise ValueError("the loss must return the batch mean as a scalar")
                term = (w * share) * loss
                value = term if value is None else value + term
            if value is None:
                continue
            total += float(value.detach())
            if value.requires_grad:  # else the loss does not depend on the moving tensors
                parts = torch.autograd.grad(value, list(leaves.values()), allow_unused=True)
                for n, g in zip(leaves, parts, strict=True):
                    if g is not None:
                        grads[n].add_(g)
    return total, grads


def is_finite(value: float, grads: Mapping[str, Tensor]) -> bool:
    """Whether an objective's value and gradient are finite (a point along d may diverge)."""
    return math.isfinite(value) and all(bool(torch.isfinite(g).all()) for g in grads.values())
