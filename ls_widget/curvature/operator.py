"""`HessianOperator`: H of the loss at a point of parameter space, as products with vectors.

H is the Hessian of the sample-weighted mean loss over the whole data, in eval mode (fixed
batches, BatchNorm running statistics, no dropout: else Lanczos breaks down), with respect to
chosen parameters, at θ₀ + Σ cₖ dₖ. Products are forward-over-reverse, ``jvp(grad(L))``
(METHODS.md, "Curvature numerics"), falling back to double backward where an op has no
forward-mode rule. The operator is also a SciPy `LinearOperator` (as in curvlinops) and, for
tiny problems and tests, a dense matrix.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator
from torch import Tensor
from torch.func import grad, jvp

from ..directions.direction import Direction
from ..engine.batch import forward
from .extremes import arpack_extremes, dense_extremes, lanczos_extremes
from .protocols import BatchLike, LossEvaluator

__all__ = ["HessianOperator"]


class HessianOperator:
    """H (w.r.t. the parameters `names`) at θ₀ + Σ cₖ dₖ, as products with vectors.

    Vectors are flat, in the order of `names`, in the parameters' dtype on their device
    (`hvp`), or float64 NumPy arrays (`matvec`, and the SciPy `LinearOperator`).

    Args:
        ev: the engine's `Evaluator` (model, data, loss; see `LossEvaluator`).
        names: the parameters H is taken over; the others stay at the point.
        directions: directions dₖ of the point (with their buffer deltas, e.g. BN statistics).
        coeffs: the coefficients cₖ, one per direction.

    Attributes:
        names: the parameters, in the order of the flat vectors.
        shapes: their shapes; `sizes` their numbers of values, `n` the total (H is n × n).
        dtype: the parameters' dtype; `device` their device.
        hvps: the number of Hessian-vector products taken so far.
    """

    def __init__(
        self,
        ev: LossEvaluator,
        names: Sequence[str],
        *,
        directions: Sequence[Direction] = (),
        coeffs: Sequence[float] = (),
    ) -> None:
        self.ev = ev
        self.names = list(names)
        space = ev.space
        params = {n: t.clone() for n, t in space.theta0.items()}
        buffers = {n: t.clone() for n, t in space.buffers0.items()}
        for c, d in zip(coeffs, directions, strict=True):
            for n, t in params.items():
                t.add_(d[n].to(t.device, t.dtype), alpha=float(c))
            for n, b in d.buffers.items():
                buffers[n].add_(b.to(buffers[n].device, buffers[n].dtype), alpha=float(c))
        self._point = {n: params[n] for n in self.names}
        self._fixed = {n: t for n, t in params.items() if n not in self._point}
        self._buffers = buffers
        self.shapes = [space.theta0[n].shape for n in self.names]
        self.sizes = [space.theta0[n].numel() for n in self.names]
        self.n = sum(self.sizes)
        self.dtype = space.dtype
        self.device = space.device
        self.hvps = 0
        self._forward_mode = True

    # ------------------------------------------------------------------ flat ↔ structured
    def unflatten(self, v: Tensor) -> dict[str, Tensor]:
        """Views of the flat vector `v` shaped like the parameters, by name."""
        out, off = {}, 0
        for name, shape, size in zip(self.names, self.shapes, self.sizes, strict=True):
            out[name] = v[off : off + size].view(shape)
            off += size
        return out

    def flatten(self, tensors: Mapping[str, Tensor]) -> Tensor:
        """The tensors of `names`, concatenated into one flat vector."""
        return torch.cat([tensors[n].reshape(-1) for n in self.names])

    # ------------------------------------------------------------------ products
    def _batch_loss(self, module: torch.nn.Module, batch: BatchLike) -> Callable[..., Tensor]:
        ev = self.ev
        weight = batch.n / ev.n_samples

        def f(sel: dict[str, Tensor]) -> Tensor:
            out = forward(module, batch, ({**self._fixed, **sel}, self._buffers))
            value = ev.loss_fn(out, batch.y)
            if value.numel() != 1:
                raise ValueError("the loss must return the batch mean as a scalar")
            return value.reshape(()) * weight

        return f

    def hvp(self, v: Tensor) -> Tensor:
        """H v for a flat tensor v (the parameters' dtype and device)."""
        tangent = self.unflatten(v.to(self.device, self.dtype))
        total = torch.zeros(self.n, dtype=self.dtype, device=self.device)
        with self.ev.plain() as module:
            for batch in self.ev.batches:
                f = self._batch_loss(module, batch)
                total += self.flatten(self._hvp_one(f, tangent))
        self.hvps += 1
        return total

    def _hvp_one(self, f: Any, tangent: dict[str, Tensor]) -> dict[str, Tensor]:
        if self._forward_mode:
            try:
                return jvp(grad(f), (self._point,), (tangent,))[1]
            except (RuntimeError, NotImplementedError):
                self._forward_mode = False  # an op without forward-mode AD: reverse twice
        point = {n: t.detach().requires_grad_(True) for n, t in self._point.items()}
        params = list(point.values())
        with torch.enable_grad():
            g = torch.autograd.grad(f(point), params, create_graph=True, allow_unused=True)
            # Parameters the loss does not use (or uses linearly) have no second derivative.
            used = [(gi, tangent[n]) for gi, n in zip(g, point, strict=True)
                    if gi is not None and gi.requires_grad]
            hv = (
                torch.autograd.grad([gi for gi, _ in used], params,
                                    grad_outputs=[t for _, t in used], allow_unused=True)
                if used else [None] * len(params)
            )
        return {
            n: (h if h is not None else torch.zeros_like(point[n])).detach()
            for n, h in zip(point, hv, strict=True)
        }

    def matvec(self, v: np.ndarray) -> np.ndarray:
        """H v for a NumPy vector, as float64 NumPy (computed in the parameters' dtype)."""
        t = torch.as_tensor(np.ascontiguousarray(v).reshape(-1), device=self.device)
        return self.hvp(t).detach().to("cpu", torch.float64).numpy()

    def linear_operator(self, shift: float = 0.0) -> LinearOperator:
        """H − shift·I as a SciPy LinearOperator on float64 vectors."""
        if shift == 0.0:
            return LinearOperator((self.n, self.n), matvec=self.matvec, dtype=np.float64)
        return LinearOperator(
            (self.n, self.n),
            matvec=lambda v: self.matvec(v) - shift * np.asarray(v).reshape(-1),
            dtype=np.float64,
        )

    def dense(self) -> np.ndarray:
        """The full matrix, column by column (n products: for small problems and tests)."""
        eye = torch.eye(self.n, dtype=self.dtype, device=self.device)
        cols = [self.hvp(eye[i]).to("cpu", torch.float64).numpy() for i in range(self.n)]
        return np.stack(cols, axis=1)

    # ------------------------------------------------------------------ eigen
    def extremes(
        self,
        k: int,
        which: str,
        *,
        tol: float = 1e-6,
        seed: int = 0,
        method: str = "lanczos",
        max_steps: int = 500,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(values descending, unit vectors as columns) of the k largest and/or smallest.

        ``method="lanczos"`` (default): one Lanczos run with full reorthogonalization on the
        device (`extremes.lanczos_extremes`); it stops when every wanted Ritz pair has a
        residual below `tol` × the spectral radius. ``method="arpack"``: SciPy's `eigsh`
        (`extremes.arpack_extremes`), the bottom end on H − λmax·I. Where k ≥ n − 1 there are
        too few dimensions for an iterative method: the dense matrix is decomposed.
        """
        if k >= self.n - 1:
            return dense_extremes(self.dense(), k, which)
        if method == "lanczos":
            return lanczos_extremes(self.hvp, self.n, k, which, dtype=self.dtype,
                                    device=self.device, tol=tol, seed=seed, max_steps=max_steps)
        if method == "arpack":
            return arpack_extremes(self.linear_operator, self.n, k, which, tol=tol, seed=seed)
        raise ValueError(f"method={method!r}; use 'lanczos' or 'arpack'")
