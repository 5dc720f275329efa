"""Lanczos with full reorthogonalization, in torch on the device: the one Krylov iteration that
the eigenpairs (`extremes`), the spectral density (`density`) and the curvature maps use.

From a unit vector q₀, m steps of the three-term recurrence β_{j+1} q_{j+1} = H q_j − α_j q_j −
β_j q_{j−1} build an orthonormal basis Q of the Krylov space span{q₀, Hq₀, …, H^{m−1}q₀} and the
tridiagonal T = QᵀHQ (α on the diagonal, β off it). Each new vector is orthogonalized against
the whole basis, twice ("twice is enough", Kahan–Parlett), so Q stays orthonormal to working
precision and no ghost copies of converged eigenvalues appear (Golub & Van Loan, §10.3). The
Ritz values (eigenvalues of T) approximate the extreme eigenvalues of H; the squared first
components of T's eigenvectors are the Gauss quadrature weights of the spectral measure of
q₀ (stochastic Lanczos quadrature).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

__all__ = ["BREAKDOWN", "LanczosRun", "lanczos", "tridiagonal"]

BREAKDOWN = 1e-12
"""A step whose remainder ‖w‖ is at most this × the largest |α|, |β| so far ends the run: the
Krylov space is invariant under H (breakdown) and its Ritz pairs are exact."""

Matvec = Callable[[Tensor], Tensor]
StopRule = Callable[[list[float], list[float], float], bool]


def tridiagonal(alphas: np.ndarray | list[float], betas: np.ndarray | list[float]) -> np.ndarray:
    """The symmetric tridiagonal matrix with `alphas` on the diagonal and `betas` beside it."""
    return np.diag(alphas) + np.diag(betas, 1) + np.diag(betas, -1)


@dataclass(frozen=True)
class LanczosRun:
    """The outcome of `lanczos`: m steps' recurrence coefficients and basis.

    Attributes:
        alphas: diagonal of T, shape (m,).
        betas: off-diagonal of T, shape (m − 1,).
        basis: the orthonormal Lanczos vectors as rows, shape (m, n), in the start vector's
            dtype on its device.
        residual: β_m, the norm of the part of H q_{m−1} outside the basis; the residual of a
            Ritz pair (θ, Q s) is β_m |s_{m−1}|.
        breakdown: whether the run stopped on an invariant subspace (its Ritz pairs are exact).
    """

    alphas: np.ndarray
    betas: np.ndarray
    basis: Tensor
    residual: float
    breakdown: bool

    @property
    def steps(self) -> int:
        """m, the number of steps (matrix-vector products) taken."""
        return len(self.alphas)

    @property
    def matrix(self) -> np.ndarray:
        """T = QᵀHQ, the (m, m) tridiagonal matrix."""
        return tridiagonal(self.alphas, self.betas)

    def ritz(self) -> tuple[np.ndarray, np.ndarray]:
        """(Ritz values ascending, eigenvectors of T as columns): ``numpy.linalg.eigh(T)``."""
        return np.linalg.eigh(self.matrix)


def lanczos(
    matvec: Matvec,
    start: Tensor,
    steps: int,
    *,
    stop: StopRule | None = None,
    check_from: int = 1,
) -> LanczosRun:
    """Run up to `steps` Lanczos steps with full reorthogonalization from `start`.

    Args:
        matvec: v ↦ H v for a flat tensor v (H symmetric); its result is copied in `start`'s
            dtype.
        start: the start vector (normalized here). Its dtype and device are the basis's: the
            recurrence and the reorthogonalization run there, in that precision.
        steps: the most steps (and matrix-vector products); at most the dimension.
        stop: ``stop(alphas, betas, beta)`` → True ends the run after the current step (e.g.
            once the wanted Ritz pairs have converged); `beta` is the current residual norm.
        check_from: the first step count at which `stop` is asked.

    Returns:
        The run; it ends early on breakdown (an invariant subspace) or when `stop` says so.
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    n = start.numel()
    Q = torch.empty((steps, n), dtype=start.dtype, device=start.device)
    q = start.reshape(-1)
    Q[0] = q / q.norm()
    alphas: list[float] = []
    betas: list[float] = []
    beta = 0.0
    breakdown = False
    for j in range(steps):
        w = matvec(Q[j]).to(Q.dtype, copy=True)  # a copy: a matvec may return its input
        if j > 0:
            w -= betas[-1] * Q[j - 1]
        alpha = float(Q[j] @ w)
        w -= alpha * Q[j]
        for _ in range(2):  # full reorthogonalization, twice is enough (Kahan–Parlett)
            w -= Q[: j + 1].T @ (Q[: j + 1] @ w)
        alphas.append(alpha)
        beta = float(w.norm())
        m = j + 1
        scale = max(max(map(abs, alphas)), max(betas, default=0.0), 1e-300)
        breakdown = beta <= BREAKDOWN * scale
        if breakdown or m == steps:
            break
        if stop is not None and m >= check_from and stop(alphas, betas, beta):
            break
        betas.append(beta)
        Q[j + 1] = w / beta
    m = len(alphas)
    return LanczosRun(np.asarray(alphas, dtype=np.float64), np.asarray(betas, dtype=np.float64),
                      Q[:m], beta, breakdown)
