"""Estimators of tr H, as plain functions: Hutchinson's over Hessian-vector products, and
Böttcher & Wheeler's over loss values only.

- `hutchinson` (Hutchinson 1989): for Rademacher v, E[vᵀHv] = tr H, with variance
  2(‖H‖_F² − Σ Hᵢᵢ²) per sample. One product per sample.
- `projection_trace` (Böttcher & Wheeler 2022): for Gaussian δ ~ N(0, I), E[δᵀHδ] = tr H, and
  δᵀHδ ≈ (L(θ + hδ) − 2L(θ) + L(θ − hδ))/h², with error O(h²) on a smooth loss plus round-off
  ~ ε·L/h². Taken at two steps, h and h/4, along the same directions.

Both return a `Trace`; what the loss's kinks do to the second estimate, and how to tell, is in
`Trace` and `ls_widget.curvature.smoothness`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from .records import Trace

__all__ = ["STEP_REFINE", "default_step", "hutchinson", "projection_trace"]

STEP_REFINE = 4
"""The projection trace's second step is h / STEP_REFINE: a smooth loss's O(h²) error is then
16× smaller there, so the change between the steps measures almost all of the error at h."""


def _check_samples(samples: int) -> None:
    if samples < 2:
        raise ValueError("samples must be at least 2 (the standard error needs two)")


def hutchinson(
    hvp: Callable[[Tensor], Tensor],
    n: int,
    samples: int = 100,
    *,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
) -> Trace:
    """Hutchinson's estimate of tr H: the mean of vᵀHv over Rademacher vectors v.

    Args:
        hvp: v ↦ H v for a flat tensor v of length `n` (`dtype`, on `device`).
        n: the dimension.
        samples: the number of vectors (at least 2, for the standard error).
        seed: seeds a CPU generator; the vectors are drawn there, so results do not depend
            on the device.
        dtype: the vectors' dtype (that of the products).
        device: where the vectors go.

    Returns:
        A Trace with method "hutchinson", the per-vector samples vᵀHv, and `evaluations`
        the number of products (= samples).
    """
    _check_samples(samples)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    vals = []
    for _ in range(samples):
        v = torch.randint(0, 2, (n,), generator=gen).to(dtype) * 2 - 1
        v = v.to(device)
        vals.append(float(v @ hvp(v)))
    arr = np.asarray(vals)
    return Trace(float(arr.mean()), float(arr.std(ddof=1) / math.sqrt(samples)), samples,
                 "hutchinson", arr)


def default_step(theta0: Mapping[str, Tensor], names: Sequence[str]) -> float:
    """The projection trace's default h: 1% of ‖θ‖ (over `names`) per unit of ‖δ‖ ≈ √N, so
    the parameters move by about 1% of their norm (by 1/√N when θ = 0)."""
    n = sum(theta0[k].numel() for k in names)
    theta_norm = math.sqrt(sum(float(theta0[k].double().pow(2).sum()) for k in names))
    return 1e-2 * (theta_norm if theta_norm > 0 else 1.0) / math.sqrt(n)


def projection_trace(
    loss_along: Callable[[Mapping[str, Tensor], Sequence[float]], np.ndarray],
    shapes: Mapping[str, torch.Size],
    samples: int = 100,
    *,
    h: float,
    seed: int = 0,
) -> Trace:
    """Böttcher & Wheeler's (2022) estimate of tr H from loss values only, at steps h and h/4.

    For each of `samples` Gaussian directions δ (float64 normals from a CPU generator seeded
    with `seed`, one tensor per entry of `shapes`, in its order), the second differences
    (L(θ + tδ) − 2L(θ) + L(θ − tδ))/t² at t = h and t = h/4 (`STEP_REFINE`); L(θ) once.

    Args:
        loss_along: ``loss_along(delta, ts)`` → L(θ + t·delta) for each t in `ts`, as an
            array; `delta` maps the parameters of `shapes` to float64 CPU tensors (the others
            stay at θ). The first call's `ts` begin with 0 (the centre, evaluated by the same
            plan as the displaced points).
        shapes: the parameters the trace is over, and their shapes.
        samples: the number of directions (at least 2, for the standard error).
        h: the step (multiplies δ, so the parameters move by about h·√N).
        seed: seeds the directions.

    Returns:
        A Trace with method "projection": `mean`, `stderr` and `samples` at h, both steps in
        `at_steps`, the paired `step_change` and `converged` (``|step_change| <= stderr``);
        `evaluations` = 4·samples + 1. `smooth` and `nonsmooth_ops` are left for the caller.
    """
    _check_samples(samples)
    if not (math.isfinite(h) and h > 0):
        raise ValueError(f"h must be a positive finite step, got {h!r}")
    gen = torch.Generator(device="cpu").manual_seed(seed)
    small = h / STEP_REFINE
    steps = [-h, h, -small, small]
    center = math.nan
    vals = np.empty((samples, 2))
    for i in range(samples):
        delta = {name: torch.randn(shape, generator=gen, dtype=torch.float64)
                 for name, shape in shapes.items()}
        if i == 0:  # L(θ) by the same evaluation plan as the displaced points
            first = loss_along(delta, [0.0, *steps])
            center, loss = float(first[0]), first[1:]
        else:
            loss = loss_along(delta, steps)
        vals[i, 0] = (loss[0] - 2.0 * center + loss[1]) / h**2
        vals[i, 1] = (loss[2] - 2.0 * center + loss[3]) / small**2
    root = math.sqrt(samples)
    means = vals.mean(axis=0)
    errs = vals.std(axis=0, ddof=1) / root
    diff = vals[:, 1] - vals[:, 0]
    change = float(diff.mean())
    return Trace(
        float(means[0]), float(errs[0]), 4 * samples + 1, "projection", vals[:, 0].copy(),
        h=float(h),
        at_steps={float(h): (float(means[0]), float(errs[0])),
                  float(small): (float(means[1]), float(errs[1]))},
        step_change=change,
        step_change_stderr=float(diff.std(ddof=1) / root),
        converged=bool(abs(change) <= errs[0]),
        samples_small_h=vals[:, 1].copy(),
    )
