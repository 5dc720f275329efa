"""`Hessian`, the front door `land.hessian`: eigenpairs, trace and spectral density of H.

H is the Hessian of the sample-weighted mean loss over the whole data, in eval mode, with
respect to chosen parameters (the trainable ones by default), at θ₀ or at any point
θ₀ + Σ cₖ dₖ of a plane. Implements the Hessian directions and the trace from loss values of
Böttcher & Wheeler 2022, Hutchinson's trace (1989) and the spectral density by stochastic
Lanczos quadrature (Ubaru, Chen & Saad 2017; Ghorbani et al. 2019). The work is done by the
modules beside this one: `operator` (products), `lanczos` and `extremes` (eigenpairs),
`estimators` (trace), `smoothness` (kinks), `density` (SLQ); this one chooses, checks, caches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..directions.direction import Direction
from ..engine.progress import ProgressBar, check_progress
from ._trace import TraceMixin
from .density import slq
from .extremes import WHICH, lanczos_steps
from .operator import HessianOperator
from .protocols import LossEvaluator
from .records import Density, Eigen, Trace
from .smoothness import NonSmoothWarning

__all__ = ["Density", "Eigen", "Hessian", "HessianOperator", "NonSmoothWarning", "Trace"]


class Hessian(TraceMixin):
    """`land.hessian`: eigenpairs, trace and spectral density of H at the model.

    Results are cached per arguments (the same call returns the same record). The trace
    (`trace`, `nonsmooth_ops`) comes from `TraceMixin`.

    Args:
        ev: the engine's `Evaluator` (model, data, loss; see `LossEvaluator`).
        names: the parameters H is taken over (`ls_widget.curvature.maps.select_params`
            turns ``None``, ``"biasbn"``, a list or a Direction into names).
    """

    def __init__(self, ev: LossEvaluator, names: Sequence[str]) -> None:
        self.ev = ev
        self.names = list(names)
        unknown = [n for n in self.names if n not in ev.space.theta0]
        if unknown:
            raise ValueError(f"unknown parameter names {unknown[:5]}; see model.named_parameters()")
        if not self.names:
            raise ValueError("no parameter to take the Hessian over: pass at least one name")
        self._cache: dict[tuple, Any] = {}

    def operator(
        self, directions: Sequence[Direction] = (), coeffs: Sequence[float] = ()
    ) -> HessianOperator:
        """H at θ₀ + Σ coeffs[k]·directions[k] (at θ₀ by default)."""
        return HessianOperator(self.ev, self.names, directions=directions, coeffs=coeffs)

    def _counted(self, bar: ProgressBar) -> HessianOperator:
        """H at θ₀, its products counted on `bar`."""
        return _CountedOperator(self.ev, self.names, bar)

    @property
    def size(self) -> int:
        """N, the number of parameters H is taken over (H is N × N)."""
        return sum(self.ev.space.theta0[n].numel() for n in self.names)

    # ------------------------------------------------------------------ eigenpairs
    def eigen(
        self,
        k: int = 5,
        which: str = "both",
        *,
        tol: float = 1e-6,
        seed: int = 0,
        method: str = "lanczos",
        progress: bool = True,
    ) -> Eigen:
        """The k largest and/or k smallest (most negative) eigenpairs, by Lanczos.

        `which`: ``"top"``, ``"bottom"`` or ``"both"`` (k of each end). `tol` bounds each
        pair's residual ‖Hv − λv‖ relative to the spectral radius (eigenvalue errors are of
        the order of the squared residual over the gap). `method`: ``"lanczos"`` (ours, full
        reorthogonalization on the device) or ``"arpack"`` (SciPy's eigsh). The unit
        eigenvectors of λmax and λmin span the plane where a saddle shows as a saddle
        (Böttcher & Wheeler 2022). Cached.

        ``progress=True`` shows a bar (`tqdm.auto`) of the Hessian-vector products once the
        call has run for a second: Lanczos stops when the pairs converge, so its total is the
        step limit (plus one product per pair, for the residuals) until then, and the bar ends
        full at the count taken; ARPACK's count has no bound. ``False`` shows nothing. Display
        only: the pairs are the same bits either way.
        """
        check_progress(progress)
        if which not in WHICH:
            raise ValueError(f"which={which!r}; use 'top', 'bottom' or 'both'")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive int, got {k!r}")
        if k > self.size:
            raise ValueError(
                f"k={k} exceeds the number of parameters in the Hessian ({self.size}); "
                f"ask for at most {self.size} eigenpairs"
            )
        key = ("eigen", k, which, tol, seed, method)
        if key in self._cache:
            return self._cache[key]
        pairs = min(2 * k, self.size) if which == "both" else k
        bound = (lanczos_steps(self.size, k, self.ev.space.dtype) + pairs
                 if method == "lanczos" else None)
        with ProgressBar(progress, total=bound, unit="hvp", desc="Hessian eigenpairs") as bar:
            op = self._counted(bar)
            w, V = op.extremes(k, which, tol=tol, seed=seed, method=method)
            bar.set_total(bar.count + len(w))  # converged: only the residuals are left
            residuals = []
            vectors = []
            for i, lam in enumerate(w):
                v = torch.as_tensor(V[:, i], dtype=op.dtype, device=op.device)
                v = v / v.norm()
                hv = op.hvp(v)
                residuals.append(float((hv - float(lam) * v).norm()))
                vectors.append(self._direction(op, v, float(lam), i))
        out = Eigen(np.asarray(w, dtype=np.float64), tuple(vectors), np.asarray(residuals),
                    op.hvps, which)
        self._cache[key] = out
        return out

    def _direction(self, op: HessianOperator, v: Tensor, lam: float, i: int) -> Direction:
        parts = op.unflatten(v)
        tensors = {
            name: parts[name].clone() if name in parts else torch.zeros_like(t)
            for name, t in self.ev.space.theta0.items()
        }
        return Direction(
            tensors, kind="hessian", eigenvalue=lam, index=i, norm="unit", ignore=None,
            label=f"hessian λ={lam:.4g}",
        )

    # ------------------------------------------------------------------ spectrum
    def density(
        self,
        iterations: int = 80,
        vectors: int = 4,
        *,
        seed: int = 0,
        sigma: float | None = None,
        points: int = 1000,
        progress: bool = True,
    ) -> Density:
        """Spectral density by stochastic Lanczos quadrature (as PyHessian's `density`;
        Ubaru, Chen & Saad 2017, Ghorbani et al. 2019).

        For each of `vectors` Rademacher vectors, `iterations` Lanczos steps with full
        reorthogonalization give a tridiagonal T; its eigenvalues are the nodes and the
        squared first components of its eigenvectors the weights. The density is their
        Gaussian broadening (σ = 1% of the spectral range unless given) on `points` values.
        See `ls_widget.curvature.density.slq`. Cached.

        ``progress=True`` shows a bar (`tqdm.auto`) of the `vectors` × `iterations`
        Hessian-vector products once the call has run for a second (a run that breaks down
        early ends the bar at the count taken); ``False`` shows nothing. Display only: the
        density is the same bits either way.
        """
        check_progress(progress)
        for name, value in (("iterations", iterations), ("vectors", vectors),
                            ("points", points)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        key = ("density", iterations, vectors, seed, sigma, points)
        if key in self._cache:
            return self._cache[key]
        total = vectors * min(iterations, self.size)
        with ProgressBar(progress, total=total, unit="hvp", desc="Hessian density (SLQ)") as bar:
            op = self._counted(bar)
            out = slq(op.hvp, op.n, iterations, vectors, seed=seed, device=op.device,
                      sigma=sigma, points=points)
            bar.set_total(bar.count)  # breakdown ends a run early: nothing is missing
        self._cache[key] = out
        return out


class _CountedOperator(HessianOperator):
    """H at θ₀ whose every product (Lanczos, ARPACK, dense, residuals) advances a progress
    bar: display only, the products are the parent's."""

    def __init__(self, ev: LossEvaluator, names: Sequence[str], bar: ProgressBar) -> None:
        super().__init__(ev, names)
        self._bar = bar

    def hvp(self, v: Tensor) -> Tensor:
        """H v, counted on the bar."""
        out = super().hvp(v)
        self._bar.update()
        return out
