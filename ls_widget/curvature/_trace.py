"""The trace side of `Hessian`: tr H by Hutchinson or from loss values, and the kinks.

A mixin of `Hessian` (hessian.py), kept apart because it is another responsibility: it
checks the arguments and hands the estimate to `estimators` (Hutchinson 1989; Böttcher &
Wheeler 2022) and the kinks to `smoothness`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from ..directions.direction import Direction
from ..engine.progress import ProgressBar, check_progress
from .estimators import default_step, hutchinson, projection_trace
from .operator import HessianOperator
from .protocols import LossEvaluator
from .records import Trace
from .smoothness import nonsmooth_ops, warn_nonsmooth


class _Host(Protocol):
    """What the mixin uses of its Hessian."""

    ev: LossEvaluator
    names: list[str]
    _cache: dict[tuple, Any]

    def _counted(self, bar: ProgressBar) -> HessianOperator: ...

    def nonsmooth_ops(self) -> tuple[str, ...]: ...

    def _loss_along(self, delta: Mapping[str, Tensor], ts: Sequence[float]) -> np.ndarray: ...


class TraceMixin:
    """`trace` and `nonsmooth_ops`: a mixin of `Hessian`."""

    def trace(
        self: _Host,
        method: str = "hutchinson",
        samples: int = 100,
        *,
        seed: int = 0,
        h: float | None = None,
        progress: bool = True,
    ) -> Trace:
        """Estimate tr H by Hutchinson (Rademacher v, mean of vᵀHv) or from loss values only.

        ``method="hutchinson"`` (Hutchinson 1989; `estimators.hutchinson`): one
        Hessian-vector product per sample; H is autograd's Hessian (on ReLU networks the
        almost-everywhere Hessian, kinks ignored).

        ``method="projection"`` is Böttcher & Wheeler's (2022) estimate
        (`estimators.projection_trace`): for Gaussian δ ~ N(0, I), E[δᵀHδ] = tr H, and
        δᵀHδ ≈ (L(θ+hδ) − 2L(θ) + L(θ−hδ))/h²; no Hessian-vector products. It is taken at two
        steps along the same directions, h and h/4, in one evaluation per direction (±h,
        ±h/4; 4 loss evaluations per sample, plus L(θ) once): `mean` is the estimate at h,
        `at_steps` has both, `step_change` their difference and `converged` says whether it
        is within the estimate's standard error. A factor 4 makes a smooth loss's O(h²) error
        16× smaller at h/4, so `step_change` measures almost all of the error at h, while the
        round-off (∝ 1/h²) stays small at the default h. `h` defaults to 1% of ‖θ‖ per unit
        of ‖δ‖ (≈ √N).

        The projection estimate is the curvature of the loss at the scale h. Where the loss
        has kinks (ReLU, max-pooling, clamp, ...; see `nonsmooth_ops`), the kinks crossed
        within [−h, h] add to it, and it does not converge to autograd's tr H as h → 0: then
        ``Trace.smooth`` is False and a `NonSmoothWarning` says so. Hutchinson's estimate is
        the one to quote as tr H of such a model; the projection estimate (at each step) is
        the curvature that the landscape pictures at that scale show.

        Both kinds of Trace report `smooth` and `nonsmooth_ops` (one extra forward of the
        first batch, cached); `h`, `at_steps`, `step_change` and `converged` are the
        projection's (None, empty or NaN for Hutchinson).

        ``progress=True`` shows a bar (`tqdm.auto`) once the call has run for a second: of
        the `samples` Hessian-vector products (Hutchinson), or of the 4·`samples` + 1 loss
        evaluations, in points (projection); ``False`` shows nothing. Display only: the
        estimate is the same bits either way.
        """
        check_progress(progress)
        if samples < 2:
            raise ValueError("samples must be at least 2 (the standard error needs two)")
        if method not in ("hutchinson", "projection"):
            raise ValueError(f"method={method!r}; use 'hutchinson' or 'projection'")
        if h is not None and not (math.isfinite(h) and h > 0):
            raise ValueError(f"h must be a positive finite step, got {h!r}")
        kinked = self.nonsmooth_ops()
        if method == "hutchinson":
            with ProgressBar(progress, total=samples, unit="hvp",
                             desc="Hessian trace (Hutchinson)") as bar:
                op = self._counted(bar)
                out = hutchinson(op.hvp, op.n, samples, seed=seed, dtype=op.dtype,
                                 device=op.device)
            return replace(out, smooth=not kinked, nonsmooth_ops=kinked)
        theta0 = self.ev.space.theta0
        shapes = {name: t.shape for name, t in theta0.items() if name in self.names}
        step = default_step(theta0, self.names) if h is None else h
        # ±h and ±h/4 along each direction, and L(θ) once (`projection_trace`)
        with ProgressBar(progress, total=4 * samples + 1, unit="pt",
                         desc="Hessian trace (projection)") as bar:

            def loss_along(delta: Mapping[str, Tensor], ts: Sequence[float]) -> np.ndarray:
                values = self._loss_along(delta, ts)
                bar.update(len(ts))
                return values

            out = projection_trace(loss_along, shapes, samples, h=step, seed=seed)
        out = replace(out, smooth=not kinked, nonsmooth_ops=kinked)
        if kinked:
            warn_nonsmooth(out, stacklevel=2)
        return out

    def nonsmooth_ops(self: _Host) -> tuple[str, ...]:
        """The ops with kinks through which the loss depends on these parameters (cached; see
        `ls_widget.curvature.smoothness.nonsmooth_ops`)."""
        key = ("nonsmooth_ops",)
        if key not in self._cache:
            self._cache[key] = nonsmooth_ops(self.ev, self.names)
        kinked: tuple[str, ...] = self._cache[key]
        return kinked

    def _loss_along(self: _Host, delta: Mapping[str, Tensor], ts: Sequence[float]) -> np.ndarray:
        """L(θ₀ + t·delta) for each t, by the engine's evaluation plan (`Evaluator.bind`)."""
        tensors = {
            name: delta[name].to(t.device, t.dtype) if name in delta else torch.zeros_like(t)
            for name, t in self.ev.space.theta0.items()
        }
        bound = self.ev.bind([Direction(tensors, kind="gaussian")])
        return np.asarray(bound.evaluate([[t] for t in ts]))[:, 0]
