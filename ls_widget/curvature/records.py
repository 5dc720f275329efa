"""Records of curvature results: `Eigen` (extreme eigenpairs), `Trace` (tr H estimates) and
`Density` (the spectral density by stochastic Lanczos quadrature).

Immutable values (DESIGN.md, principle 4): the estimators and solvers produce them; the widget
and the figures read them and never recompute.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..directions.direction import Direction

__all__ = ["Density", "Eigen", "Trace"]


@dataclass(frozen=True)
class Eigen:
    """Extreme eigenpairs of H (`Hessian.eigen`), e.g. for the Hessian directions of Böttcher
    & Wheeler 2022.

    Attributes:
        values: eigenvalues, descending.
        vectors: unit eigenvectors as `lw.Direction`s (provenance "hessian λ=…"), same order.
        residuals: ‖Hv − λv‖ for each pair.
        hvps: Hessian-vector products used (residual checks included).
        which: "top", "bottom" or "both".
    """

    values: np.ndarray
    vectors: tuple[Direction, ...]
    residuals: np.ndarray
    hvps: int
    which: str

    def __len__(self) -> int:
        return len(self.values)


@dataclass(frozen=True)
class Trace:
    """An estimate of tr H with its standard error and cost, and what it is an estimate of.

    Two estimators (see `Hessian.trace` and `ls_widget.curvature.estimators`):

    - ``"hutchinson"`` (Hutchinson 1989): the mean of vᵀHv over Rademacher v, with H
      autograd's Hessian. On a piecewise-linear network (ReLU, max-pooling, ...) that is the
      *almost-everywhere* Hessian: the curvature inside the linear region θ sits in, kinks
      ignored.
    - ``"projection"`` (Böttcher & Wheeler 2022): the mean over Gaussian δ ~ N(0, I) of the
      second difference (L(θ + hδ) − 2L(θ) + L(θ − hδ)) / h², from loss values only. It is
      the curvature of the loss *as seen at the scale h*. On a smooth loss it equals tr H up
      to O(h²); where the loss has kinks, each kink crossed within [−h, h] adds its slope jump
      to it, an amount that does not vanish as h → 0: the estimate does not converge to
      autograd's tr H; it may even grow as h shrinks (kinks that sit at θ itself, as after
      full-batch training, add ∝ 1/h each). Both numbers are meaningful; they answer
      different questions.

    To show which case applies, the projection estimate is taken at two steps, h and h/4,
    along the same directions (so their difference is the effect of the step, not noise),
    and the ops of the loss are inspected for kinks (`smooth`, `nonsmooth_ops`).

    Attributes:
        mean: the estimate of tr H (projection: at the step `h`).
        stderr: standard error of `mean` over the samples.
        evaluations: Hessian-vector products (Hutchinson) or loss evaluations (projection:
            4 per direction, at ±h and ±h/4, plus L(θ) once).
        method: "hutchinson" or "projection".
        samples: the per-sample estimates (vᵀHv, or the second differences at `h`).
        h: the step of `mean` (projection; None for Hutchinson). It multiplies δ ~ N(0, I),
            so the parameters move by about h·√N.
        at_steps: step → (mean, stderr) for each step taken, coarse first: ``{h: …, h/4: …}``
            (empty for Hutchinson).
        step_change: mean at h/4 minus mean at h, over the same directions (NaN for
            Hutchinson). On a smooth loss the O(h²) error shrinks 16× from h to h/4, so this
            is −15/16 of the error at h.
        step_change_stderr: standard error of `step_change` (from the paired differences).
        converged: projection: whether the step no longer matters at this precision,
            ``|step_change| <= stderr``. On a smooth model that means `mean` estimates
            autograd's tr H. On a non-smooth model (``smooth`` False) it means only that the
            curvature at scales h/4 … h is stable; it still includes the kinks, so compare it
            with Hutchinson. None for Hutchinson (no step).
        smooth: whether the loss, as a function of the parameters H is taken over, ran no op
            with a kink or a jump at θ (see `nonsmooth_ops`); None when not inspected.
        nonsmooth_ops: the aten ops with kinks that the loss ran on values depending on those
            parameters, e.g. ``("max_pool2d_with_indices", "relu")``; ops whose inputs all lie
            strictly on one side of their kinks (a clamp that never clamps) are left out.
        samples_small_h: the per-direction second differences at h/4 (projection; else
            empty), in the order of `samples`.
    """

    mean: float
    stderr: float
    evaluations: int
    method: str
    samples: np.ndarray = field(repr=False)
    h: float | None = None
    at_steps: dict[float, tuple[float, float]] = field(default_factory=dict)
    step_change: float = math.nan
    step_change_stderr: float = math.nan
    converged: bool | None = None
    smooth: bool | None = None
    nonsmooth_ops: tuple[str, ...] = ()
    samples_small_h: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)

    @property
    def relative_change(self) -> float:
        """`step_change` relative to `mean` (NaN for Hutchinson or a zero mean)."""
        if self.mean == 0 or math.isnan(self.step_change):
            return math.nan
        return self.step_change / abs(self.mean)


@dataclass(frozen=True)
class Density:
    """Spectral density of H by stochastic Lanczos quadrature (Ubaru, Chen & Saad 2017;
    Ghorbani, Krishnan & Xiao 2019; see `ls_widget.curvature.density`).

    Attributes:
        grid: eigenvalue axis.
        density: Gaussian-broadened density on `grid` (integrates to 1).
        nodes: Ritz values of each Lanczos run, shape (vectors, steps).
        weights: quadrature weights (squared first components), same shape; each row sums
            to 1.
        hvps: Hessian-vector products used.
    """

    grid: np.ndarray
    density: np.ndarray
    nodes: np.ndarray = field(repr=False)
    weights: np.ndarray = field(repr=False)
    hvps: int = 0

    @property
    def mean(self) -> float:
        """First moment of the spectral measure: an estimate of tr H / N."""
        return float(np.mean(np.sum(self.nodes * self.weights, axis=1)))

