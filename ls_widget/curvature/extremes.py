"""Extreme eigenpairs of a symmetric operator given by its products: our Lanczos (default),
SciPy's ARPACK, or a dense eigendecomposition for tiny problems.

All three return ``(values descending, unit vectors as columns)`` of the k largest and/or k
smallest eigenvalues, as float64 NumPy arrays. Used by `HessianOperator.extremes` for the
Hessian directions (Böttcher & Wheeler 2022) and the |λmin/λmax| maps (Li et al. 2018).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator, eigsh
from torch import Tensor

from .lanczos import lanczos, tridiagonal

__all__ = [
    "MAX_STEPS", "WHICH", "arpack_extremes", "dense_extremes", "lanczos_extremes",
    "lanczos_steps", "pick",
]

WHICH = ("top", "bottom", "both")
"""The ends of the spectrum one can ask for: the k largest, the k smallest, or k of each."""

MAX_STEPS = 500
"""The default limit on the steps (Hessian-vector products) of one `lanczos_extremes` run."""

_BASIS_BYTES = 1 << 30  # the Lanczos basis may take this much memory, beyond 4k + 8 vectors


def _wanted(m: int, k: int, which: str) -> np.ndarray:
    """Indices (ascending) of the wanted Ritz values among m sorted ascending."""
    if which == "top":
        return np.arange(max(0, m - k), m)
    if which == "bottom":
        return np.arange(0, min(k, m))
    return np.array(sorted(set(range(min(k, m))) | set(range(max(0, m - k), m))))


def pick(w: np.ndarray, V: np.ndarray, k: int, which: str) -> tuple[np.ndarray, np.ndarray]:
    """From eigenpairs sorted descending, the k top and/or bottom ones (no repeats)."""
    n = len(w)
    if which == "top":
        idx = list(range(min(k, n)))
    elif which == "bottom":
        idx = list(range(max(0, n - k), n))
    else:
        idx = sorted(set(range(min(k, n))) | set(range(max(0, n - k), n)))
    return w[idx], V[:, idx]


def dense_extremes(H: np.ndarray, k: int, which: str) -> tuple[np.ndarray, np.ndarray]:
    """The wanted eigenpairs of a dense symmetric matrix, by ``numpy.linalg.eigh``."""
    w, V = np.linalg.eigh(H)
    return pick(w[::-1], V[:, ::-1], k, which)


def lanczos_steps(n: int, k: int, dtype: torch.dtype, max_steps: int = MAX_STEPS) -> int:
    """The most steps `lanczos_extremes` takes for k pairs of an n × n operator: `max_steps`,
    at most n, fewer if the basis would pass 1 GiB, never fewer than 4k + 8 (within n)."""
    itemsize = torch.empty((), dtype=dtype).element_size()
    return int(min(max_steps, n, max(4 * k + 8, _BASIS_BYTES // max(1, n * itemsize))))


def lanczos_extremes(
    matvec: Callable[[Tensor], Tensor],
    n: int,
    k: int,
    which: str,
    *,
    dtype: torch.dtype,
    device: torch.device | str,
    tol: float = 1e-6,
    seed: int = 0,
    max_steps: int = MAX_STEPS,
) -> tuple[np.ndarray, np.ndarray]:
    """The k largest and/or smallest eigenpairs by one Lanczos run (see `lanczos`).

    Both ends of the spectrum converge in the same Krylov space (a shift changes nothing
    there). The run stops when every wanted Ritz pair (θ, Qs) has a residual β|s_last| below
    `tol` × the spectral radius, on breakdown, or after `lanczos_steps` steps (`max_steps`,
    fewer if the basis would pass 1 GiB; never fewer than 4k + 8). The start vector is float64
    normals from a CPU generator seeded with `seed`, cast to `dtype`; the basis lives on
    `device` in `dtype`.
    """
    steps = lanczos_steps(n, k, dtype, max_steps)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    q = torch.randn(n, generator=gen, dtype=torch.float64).to(device, dtype)
    min_steps = (2 * k if which == "both" else k) + 2

    def converged(alphas: list[float], betas: list[float], beta: float) -> bool:
        theta, S = np.linalg.eigh(tridiagonal(alphas, betas))
        idx = _wanted(len(theta), k, which)
        radius = max(abs(theta[0]), abs(theta[-1]), 1e-300)
        return bool(np.all(beta * np.abs(S[-1, idx]) <= tol * radius))

    run = lanczos(matvec, q, steps, stop=converged, check_from=min_steps)
    theta, S = run.ritz()
    idx = _wanted(len(theta), k, which)[::-1]  # descending
    coeffs = torch.as_tensor(S[:, idx], dtype=dtype, device=device)
    V = (run.basis.T @ coeffs).to("cpu", torch.float64).numpy()
    V /= np.linalg.norm(V, axis=0, keepdims=True)
    return theta[idx], V


def arpack_extremes(
    linear_operator: Callable[[float], LinearOperator],
    n: int,
    k: int,
    which: str,
    *,
    tol: float = 1e-6,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """The k largest and/or smallest eigenpairs by SciPy's `eigsh` (ARPACK's implicitly
    restarted Lanczos).

    `linear_operator(shift)` is H − shift·I as a SciPy `LinearOperator`. The top end comes
    from ``which="LA"``; the bottom end from H − λmax·I, whose spectrum is ≤ 0 so the wanted
    end is its largest magnitude (robust whether or not H is positive definite, unlike the
    reference code's shift by 0.51·λmax). Where H v₀ = 0 (H vanishes on the Krylov space)
    the eigenvalues are 0, with random orthonormal vectors.
    """
    from scipy.sparse.linalg import ArpackError

    v0 = np.random.default_rng(seed).standard_normal(n)
    vals, vecs = [], []
    top_k = k if which in ("top", "both") else 1
    try:
        w_top, V_top = eigsh(linear_operator(0.0), k=top_k, which="LA", tol=tol, v0=v0)
    except ArpackError:  # H v0 = 0: H vanishes on the Krylov space, eigenvalue 0
        V = np.linalg.qr(np.random.default_rng(seed).standard_normal((n, k)))[0]
        return pick(np.zeros(k), V, k, which)
    lam_max = float(np.max(w_top))
    if which in ("top", "both"):
        vals.append(w_top)
        vecs.append(V_top)
    if which in ("bottom", "both"):
        w_b, V_b = eigsh(linear_operator(lam_max), k=k, which="LM", tol=tol, v0=v0)
        vals.append(w_b + lam_max)
        vecs.append(V_b)
    w = np.concatenate(vals)
    V = np.concatenate(vecs, axis=1)
    order = np.argsort(w)[::-1]
    w, V = w[order], V[:, order]
    keep = [0]  # both ends can overlap on small problems: drop repeated pairs
    for i in range(1, len(w)):
        same = abs(float(V[:, i] @ V[:, keep[-1]])) > 0.99
        if not same or abs(w[i] - w[keep[-1]]) > 1e-9 * (1 + abs(w[i])):
            keep.append(i)
    return w[keep], V[:, keep]
