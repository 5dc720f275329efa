"""`HessianOperator`: H of the loss at a point of parameter space, as products with vectors.

H is the Hessian of the sample-weighted mean loss over the whole data, in eval mode (fixed
batches, BatchNorm running statistics, no dropout: else Lanczos breaks down), with respect to
chosen parameters, at θ₀ + Σ cₖ dₖ. A product is a double backward per batch, as the textbook
writes it: g = ∇(w_b·L_b) with its graph kept, then the gradient of g·v, added into views of
one output vector (one batch's graph alive at a time). There is one path, for every device and
op. Forward-over-reverse (``jvp(grad(L))``, the earlier path) measured slower on CPU (1.0 to
1.5× a plain double backward on the benchmark's models, 2× over batches of 64) and covers
fewer ops: those we found without a double-backward rule lack a forward-mode rule too, while
grid_sample and huber_loss, among others, have only the double-backward one
(benchmarks/hvp.py, tests/test_curvature_operators.py).

The operator is also a SciPy `LinearOperator` (as in curvlinops) and, for tiny problems and
tests, a dense matrix.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator
from torch import Tensor, nn
from torch.func import functional_call

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
        # Built once, used by every product: the leaves H is taken over (our own clones, so
        # they may require grad), and every parameter and buffer, named as `_Lent` sees them.
        self._leaves = [params[n].requires_grad_(True) for n in self.names]
        self._state = ({f"model.{n}": t for n, t in params.items()},
                       {f"model.{n}": b for n, b in buffers.items()})
        self.shapes = [space.theta0[n].shape for n in self.names]
        self.sizes = [space.theta0[n].numel() for n in self.names]
        self.n = sum(self.sizes)
        self.dtype = space.dtype
        self.device = space.device
        self.hvps = 0

    # ------------------------------------------------------------------ flat ↔ structured
    def unflatten(self, v: Tensor) -> dict[str, Tensor]:
        """Views of the flat vector `v` shaped like the parameters, by name."""
        return dict(zip(self.names, self._views(v), strict=True))

    def _views(self, v: Tensor) -> list[Tensor]:
        """Views of the flat vector `v` shaped like the parameters, in the order of `names`."""
        return [t.view(shape) for t, shape in zip(v.split(self.sizes), self.shapes, strict=True)]

    def flatten(self, tensors: Mapping[str, Tensor]) -> Tensor:
        """The tensors of `names`, concatenated into one flat vector."""
        return torch.cat([tensors[n].reshape(-1) for n in self.names])

    # ------------------------------------------------------------------ products
    def hvp(self, v: Tensor) -> Tensor:
        """H v for a flat tensor v (the parameters' dtype and device)."""
        if v.numel() != self.n:
            raise ValueError(
                f"v has {v.numel()} values but H is {self.n} × {self.n} (over "
                f"{len(self.names)} parameter tensors); pass a flat vector of {self.n} values "
                "in the order of `names`"
            )
        tangent = self._views(v.detach().to(self.device, self.dtype).reshape(-1).contiguous())
        total = torch.zeros(self.n, dtype=self.dtype, device=self.device)
        parts = self._views(total)

        def add_batches(model: nn.Module) -> None:
            for batch in self.ev.batches:
                self._add_batch(model, batch, tangent, parts)

        with self.ev.plain() as module, torch.enable_grad():  # callers may hold no_grad
            functional_call(_Lent(module), self._state, (add_batches,))
        self.hvps += 1
        return total

    def _add_batch(
        self, module: nn.Module, batch: BatchLike, tangent: list[Tensor], parts: list[Tensor]
    ) -> None:
        """Add this batch's H_b v (weighted by its share of the samples) into `parts`."""
        out = forward(module, batch)  # our parameters and buffers: `_Lent` put them in place
        value = self.ev.loss_fn(out, batch.y)
        if value.numel() != 1:
            raise ValueError("the loss must return the batch mean as a scalar")
        if not value.requires_grad:
            return  # the loss does not depend on these parameters here: no curvature
        # The batch's weight enters as the first backward's seed, not as a product with the
        # loss: the same numbers without a node in both graphs, which cost 6% of a product
        # over the digits in batches of 64 (measured side by side with the product).
        weight = torch.full_like(value, batch.n / self.ev.n_samples)
        g = torch.autograd.grad(value, self._leaves, weight, create_graph=True,
                                allow_unused=True)
        # Parameters the loss does not use (or uses linearly) have no second derivative.
        used = [i for i, gi in enumerate(g) if gi is not None and gi.requires_grad]
        if not used:
            return
        try:
            hv = torch.autograd.grad([g[i] for i in used], self._leaves,
                                     grad_outputs=[tangent[i] for i in used],
                                     allow_unused=True)
        except (RuntimeError, NotImplementedError) as e:
            if not _lacks_second_derivative(e):
                raise
            raise RuntimeError(
                f"Hessian-vector products need the second derivative of every op of the model "
                f"and loss, and PyTorch has none for one of them: {e}. Replace that op by a "
                "twice-differentiable one (for scaled_dot_product_attention on CPU, run under "
                "torch.nn.attention.sdpa_kernel(SDPBackend.MATH)), or take H over the "
                "parameters after that op only (land.hessian_over(...))"
            ) from e
        for part, h in zip(parts, hv, strict=True):
            if h is not None:
                part.add_(h)

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


class _Lent(nn.Module):
    """The lent model inside a module whose forward runs ``fn(model)``.

    One `functional_call` of it puts our parameters and buffers in place for all the batches
    of a product: a call per batch cost about a tenth of a product over the digits in batches
    of 64 (measured side by side; "mlp64" of benchmarks/hvp.py is that case).
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, fn: Callable[[nn.Module], None]) -> None:
        """Run `fn` on the model."""
        fn(self.model)


def _lacks_second_derivative(e: BaseException) -> bool:
    """Whether autograd's error says an op has no (twice-)differentiable backward."""
    text = str(e)
    return (isinstance(e, NotImplementedError) or "not implemented" in text
            or "differentiate twice" in text)
