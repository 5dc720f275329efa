"""Spectral density of H by stochastic Lanczos quadrature (SLQ).

Ubaru, Chen & Saad 2017 ("Fast estimation of tr f(A) via stochastic Lanczos quadrature");
Ghorbani, Krishnan & Xiao 2019 (the Hessian spectra of deep networks; PyHessian's `density`
follows them). For a random unit vector q, the spectral measure Σᵢ (uᵢᵀq)² δ(λ − λᵢ) of H is
approximated by the Gauss quadrature that m Lanczos steps from q give: nodes the eigenvalues
of the tridiagonal T, weights the squared first components of its eigenvectors. Its first
moment is qᵀHq exactly, so with Rademacher q/‖q‖ it estimates tr H / N without bias. Averaged
over a few vectors and broadened by a Gaussian, it is the density.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from .lanczos import lanczos
from .records import Density

__all__ = ["broaden", "slq"]


def broaden(
    nodes: np.ndarray, weights: np.ndarray, *, sigma: float | None = None, points: int = 1000
) -> tuple[np.ndarray, np.ndarray]:
    """(grid, density): the quadratures (rows of `nodes`, `weights`) averaged and broadened by
    a Gaussian of width `sigma` (1% of the spectral range unless given) on `points` values
    spanning the nodes ± 6σ. The density integrates to 1 when each row of weights sums to 1."""
    lo, hi = float(nodes.min()), float(nodes.max())
    width = sigma if sigma is not None else max(1e-2 * (hi - lo), 1e-6 * max(1.0, abs(hi)))
    grid = np.linspace(lo - 6 * width, hi + 6 * width, points)
    gauss = np.exp(-0.5 * ((grid[None, None, :] - nodes[..., None]) / width) ** 2)
    gauss /= width * math.sqrt(2 * math.pi)
    return grid, np.mean(np.sum(weights[..., None] * gauss, axis=1), axis=0)


def slq(
    matvec: Callable[[Tensor], Tensor],
    n: int,
    iterations: int = 80,
    vectors: int = 4,
    *,
    seed: int = 0,
    device: torch.device | str = "cpu",
    sigma: float | None = None,
    points: int = 1000,
) -> Density:
    """The spectral density of a symmetric n × n operator by stochastic Lanczos quadrature.

    For each of `vectors` Rademacher vectors (drawn from ``numpy.random.default_rng(seed)``),
    min(`iterations`, n) steps of `lanczos` with full reorthogonalization, in float64 on
    `device` (`matvec` may compute in another dtype: its result is cast). A run that breaks
    down early (an invariant subspace: its quadrature is exact) is padded with zero weights.

    Args:
        matvec: v ↦ H v for a flat tensor v.
        n: the dimension.
        iterations: Lanczos steps per vector (nodes per quadrature).
        vectors: the number of random start vectors.
        seed: seeds the start vectors.
        device: where the Lanczos basis lives.
        sigma: the Gaussian broadening's width (default 1% of the spectral range).
        points: the number of values on the grid.

    Returns:
        A Density: `nodes` and `weights` of shape (vectors, steps), the broadened density,
        and `hvps` the products used.
    """
    for name, value in (("iterations", iterations), ("vectors", vectors), ("points", points)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    m = min(iterations, n)
    rng = np.random.default_rng(seed)
    all_nodes, all_weights = [], []
    products = 0
    for _ in range(vectors):
        v = rng.integers(0, 2, n).astype(np.float64) * 2 - 1
        start = torch.as_tensor(v / np.linalg.norm(v), device=device)
        run = lanczos(matvec, start, m)
        products += run.steps
        nodes, U = run.ritz()
        weights = U[0] ** 2
        pad = m - len(nodes)  # early breakdown: pad with zero weights
        all_nodes.append(np.pad(nodes, (0, pad), constant_values=nodes[-1]))
        all_weights.append(np.pad(weights, (0, pad)))
    node_arr, weight_arr = np.asarray(all_nodes), np.asarray(all_weights)
    grid, dens = broaden(node_arr, weight_arr, sigma=sigma, points=points)
    return Density(grid, dens, node_arr, weight_arr, products)
