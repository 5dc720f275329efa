"""Curvature of the loss: Hessian-vector products, extreme eigenpairs, trace and spectrum.

All of it concerns H, the Hessian of the sample-weighted mean loss over the whole data, in
eval mode, with respect to a chosen set of parameters (the trainable ones by default), at θ₀
or at any point θ₀ + Σ cₖ dₖ of a plane. Implements Li et al. 2018 (|λmin/λmax| maps) and
Böttcher & Wheeler 2022 (Hessian directions; the trace from loss values only).

Hessian-vector products are forward-over-reverse (`torch.func.jvp` of `torch.func.grad`),
falling back to double backward where an op lacks forward-mode support. SciPy's `eigsh`
(ARPACK's implicitly restarted Lanczos) finds the extreme eigenpairs of a `LinearOperator`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator, eigsh
from torch import Tensor
from torch.func import functional_call, grad, jvp

from .directions import Direction

if TYPE_CHECKING:
    from .landscape import Landscape


# ----------------------------------------------------------------------------- records
@dataclass(frozen=True)
class Eigen:
    """Extreme eigenpairs of H.

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
    """An estimate of tr H with its standard error and cost.

    Attributes:
        mean: the estimate of tr H.
        stderr: standard error of the mean over the samples.
        evaluations: Hessian-vector products (Hutchinson) or loss evaluations (projection).
        method: "hutchinson" or "projection".
        samples: the per-sample estimates (vᵀHv or the second differences).
    """

    mean: float
    stderr: float
    evaluations: int
    method: str
    samples: np.ndarray = field(repr=False)


@dataclass(frozen=True)
class Density:
    """Spectral density of H by stochastic Lanczos quadrature.

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


# ----------------------------------------------------------------------------- operator
class HessianOperator:
    """H (w.r.t. the parameters `names`) at θ₀ + Σ cₖ dₖ, as products with vectors.

    Vectors are flat, in the order of `names`, in the parameters' dtype on their device
    (`hvp`), or float64 NumPy arrays (`matvec`, and the SciPy `LinearOperator`).
    """

    def __init__(
        self,
        land: Landscape,
        names: Sequence[str],
        *,
        directions: Sequence[Direction] = (),
        coeffs: Sequence[float] = (),
    ) -> None:
        ev = land.evaluator
        self.ev = ev
        self.names = list(names)
        space = ev.space
        params = {n: t.clone() for n, t in space.theta0.items()}
        buffers = {n: t.clone() for n, t in space.buffers0.items()}
        for c, d in zip(coeffs, directions, strict=True):
            for n in params:
                params[n].add_(d[n].to(params[n].dtype), alpha=float(c))
            for n, b in d.buffers.items():
                buffers[n].add_(b.to(buffers[n].dtype), alpha=float(c))
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
        out, off = {}, 0
        for name, shape, size in zip(self.names, self.shapes, self.sizes, strict=True):
            out[name] = v[off : off + size].view(shape)
            off += size
        return out

    def flatten(self, tensors: Mapping[str, Tensor]) -> Tensor:
        return torch.cat([tensors[n].reshape(-1) for n in self.names])

    # ------------------------------------------------------------------ products
    def _batch_loss(self, module: torch.nn.Module, batch: Any) -> Any:
        ev = self.ev
        weight = batch.n / ev.n_samples

        def f(sel: dict[str, Tensor]) -> Tensor:
            out = functional_call(module, ({**self._fixed, **sel}, self._buffers), batch.x)
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
        device; both ends of the spectrum converge in the same Krylov space (a shift changes
        nothing there), and it stops when every wanted Ritz pair has a residual below
        `tol` × the spectral radius. ``method="arpack"``: SciPy's `eigsh` (implicitly restarted
        Lanczos), the top end with ``which="LA"``, then the bottom end on H − λmax·I, whose
        spectrum is ≤ 0 so the wanted end is its largest magnitude (robust whether or not H is
        positive definite, unlike a fixed fraction of λmax as the shift).
        """
        n = self.n
        if k >= n - 1:  # too few dimensions for an iterative method: solve densely
            w, V = np.linalg.eigh(self.dense())
            w, V = w[::-1], V[:, ::-1]
            return _pick(w, V, k, which)
        if method == "lanczos":
            w, V = self._lanczos_extremes(k, which, tol=tol, seed=seed, max_steps=max_steps)
        elif method == "arpack":
            w, V = self._arpack_extremes(k, which, tol=tol, seed=seed)
        else:
            raise ValueError(f"method={method!r}; use 'lanczos' or 'arpack'")
        return w, V

    def _lanczos_extremes(
        self, k: int, which: str, *, tol: float, seed: int, max_steps: int
    ) -> tuple[np.ndarray, np.ndarray]:
        n = self.n
        itemsize = torch.empty((), dtype=self.dtype).element_size()
        steps = int(min(max_steps, n, max(4 * k + 8, (1 << 30) // max(1, n * itemsize))))
        gen = torch.Generator(device="cpu").manual_seed(seed)
        q = torch.randn(n, generator=gen, dtype=torch.float64).to(self.device, self.dtype)
        Q = torch.empty((steps, n), dtype=self.dtype, device=self.device)
        Q[0] = q / q.norm()
        alphas: list[float] = []
        betas: list[float] = []
        min_steps = (2 * k if which == "both" else k) + 2
        theta = S = None
        for j in range(steps):
            w = self.hvp(Q[j])
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
            breakdown = beta <= 1e-12 * scale  # an invariant subspace: the Ritz pairs are exact
            if m >= min_steps or m == steps or breakdown:
                T = np.diag(alphas) + np.diag(betas, 1) + np.diag(betas, -1)
                theta, S = np.linalg.eigh(T)
                idx = _wanted(len(theta), k, which)
                radius = max(abs(theta[0]), abs(theta[-1]), 1e-300)
                converged = np.all(beta * np.abs(S[-1, idx]) <= tol * radius)
                if converged or breakdown or m == steps:
                    break
            betas.append(beta)
            Q[j + 1] = w / beta
        assert theta is not None and S is not None
        idx = _wanted(len(theta), k, which)[::-1]  # descending
        coeffs = torch.as_tensor(S[:, idx], dtype=self.dtype, device=self.device)
        V = (Q[: len(theta)].T @ coeffs).to("cpu", torch.float64).numpy()
        V /= np.linalg.norm(V, axis=0, keepdims=True)
        return theta[idx], V

    def _arpack_extremes(
        self, k: int, which: str, *, tol: float, seed: int
    ) -> tuple[np.ndarray, np.ndarray]:
        from scipy.sparse.linalg import ArpackError

        v0 = np.random.default_rng(seed).standard_normal(self.n)
        vals, vecs = [], []
        top_k = k if which in ("top", "both") else 1
        try:
            w_top, V_top = eigsh(self.linear_operator(), k=top_k, which="LA", tol=tol, v0=v0)
        except ArpackError:  # H v0 = 0: H vanishes on the Krylov space, eigenvalue 0
            V = np.linalg.qr(np.random.default_rng(seed).standard_normal((self.n, k)))[0]
            return _pick(np.zeros(k), V, k, which)
        lam_max = float(np.max(w_top))
        if which in ("top", "both"):
            vals.append(w_top)
            vecs.append(V_top)
        if which in ("bottom", "both"):
            w_b, V_b = eigsh(self.linear_operator(lam_max), k=k, which="LM", tol=tol, v0=v0)
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


def _wanted(m: int, k: int, which: str) -> np.ndarray:
    """Indices (ascending) of the wanted Ritz values among m sorted ascending."""
    if which == "top":
        return np.arange(max(0, m - k), m)
    if which == "bottom":
        return np.arange(0, min(k, m))
    return np.array(sorted(set(range(min(k, m))) | set(range(max(0, m - k), m))))


def _pick(w: np.ndarray, V: np.ndarray, k: int, which: str) -> tuple[np.ndarray, np.ndarray]:
    """From pairs sorted descending, the k top and/or bottom ones (no repeats)."""
    n = len(w)
    if which == "top":
        idx = list(range(min(k, n)))
    elif which == "bottom":
        idx = list(range(max(0, n - k), n))
    else:
        idx = sorted(set(range(min(k, n))) | set(range(max(0, n - k), n)))
    return w[idx], V[:, idx]


# ----------------------------------------------------------------------------- front door
ParamSelection = str | Iterable[str] | Direction | None


class Hessian:
    """`land.hessian`: eigenpairs, trace and spectral density of H at the model.

    Args:
        land: the Landscape.
        params: which parameters H is taken over: ``None`` (those that require grad in the
            model), ``"biasbn"`` (those, without tensors of dim ≤ 1, as Li et al.), a list of
            names, or a Direction (the tensors it moves).
    """

    def __init__(self, land: Landscape, params: ParamSelection = None) -> None:
        self.land = land
        self.names = select_params(land, params)
        self._cache: dict[tuple, Any] = {}

    def operator(
        self, directions: Sequence[Direction] = (), coeffs: Sequence[float] = ()
    ) -> HessianOperator:
        """H at θ₀ + Σ coeffs[k]·directions[k] (at θ₀ by default)."""
        return HessianOperator(self.land, self.names, directions=directions, coeffs=coeffs)

    @property
    def size(self) -> int:
        return sum(self.land.space.theta0[n].numel() for n in self.names)

    def eigen(
        self,
        k: int = 5,
        which: str = "both",
        *,
        tol: float = 1e-6,
        seed: int = 0,
        method: str = "lanczos",
    ) -> Eigen:
        """The k largest and/or k smallest (most negative) eigenpairs, by Lanczos.

        `which`: ``"top"``, ``"bottom"`` or ``"both"`` (k of each end). `tol` bounds each
        pair's residual ‖Hv − λv‖ relative to the spectral radius (eigenvalue errors are of
        the order of the squared residual over the gap). `method`: ``"lanczos"`` (ours, full
        reorthogonalization on the device) or ``"arpack"`` (SciPy's eigsh). Cached.
        """
        if which not in ("top", "bottom", "both"):
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
        op = self.operator()
        w, V = op.extremes(k, which, tol=tol, seed=seed, method=method)
        residuals = []
        vectors = []
        for i, lam in enumerate(w):
            v = torch.as_tensor(V[:, i], dtype=op.dtype, device=op.device)
            v = v / v.norm()
            hv = op.hvp(v)
            residuals.append(float((hv - float(lam) * v).norm()))
            vectors.append(self._direction(op, v, float(lam), i, len(w)))
        out = Eigen(np.asarray(w, dtype=np.float64), tuple(vectors), np.asarray(residuals),
                    op.hvps, which)
        self._cache[key] = out
        return out

    def _direction(self, op: HessianOperator, v: Tensor, lam: float, i: int, n: int) -> Direction:
        parts = op.unflatten(v)
        tensors = {
            name: parts[name].clone() if name in parts else torch.zeros_like(t)
            for name, t in self.land.space.theta0.items()
        }
        return Direction(
            tensors, kind="hessian", eigenvalue=lam, index=i, norm="unit", ignore=None,
            label=f"hessian λ={lam:.4g}",
        )

    def trace(
        self,
        method: str = "hutchinson",
        samples: int = 100,
        *,
        seed: int = 0,
        h: float | None = None,
    ) -> Trace:
        """tr H by Hutchinson (Rademacher v, mean of vᵀHv) or from loss values only.

        ``method="projection"`` is Böttcher & Wheeler's estimate: for Gaussian δ ~ N(0, I),
        E[δᵀHδ] = tr H, and δᵀHδ ≈ (L(θ+hδ) − 2L(θ) + L(θ−hδ))/h²; no Hessian-vector
        products. `h` defaults to 1% of ‖θ‖ per unit of ‖δ‖ (≈ √N).
        """
        if samples < 2:
            raise ValueError("samples must be at least 2 (the standard error needs two)")
        gen = torch.Generator(device="cpu").manual_seed(seed)
        if method == "hutchinson":
            op = self.operator()
            vals = []
            for _ in range(samples):
                v = torch.randint(0, 2, (op.n,), generator=gen).to(op.dtype) * 2 - 1
                v = v.to(op.device)
                vals.append(float(v @ op.hvp(v)))
            arr = np.asarray(vals)
            return Trace(float(arr.mean()), float(arr.std(ddof=1) / math.sqrt(samples)),
                         op.hvps, method, arr)
        if method == "projection":
            return self._projection_trace(samples, gen, h)
        raise ValueError(f"method={method!r}; use 'hutchinson' or 'projection'")

    def _projection_trace(self, samples: int, gen: torch.Generator, h: float | None) -> Trace:
        space = self.land.space
        n = self.size
        if h is None:
            theta_norm = math.sqrt(sum(float(space.theta0[k].double().pow(2).sum())
                                       for k in self.names))
            h = 1e-2 * (theta_norm if theta_norm > 0 else 1.0) / math.sqrt(n)
        center = self.land.center()["loss"]
        vals = []
        for _ in range(samples):
            tensors = {
                name: (torch.randn(t.shape, generator=gen, dtype=torch.float64)
                       .to(t.device, t.dtype) if name in self.names else torch.zeros_like(t))
                for name, t in space.theta0.items()
            }
            d = Direction(tensors, kind="gaussian")
            both = self.land.evaluator.bind([d]).evaluate([[-h], [h]])[:, 0]
            vals.append((both[0] - 2.0 * center + both[1]) / h**2)
        arr = np.asarray(vals)
        return Trace(float(arr.mean()), float(arr.std(ddof=1) / math.sqrt(samples)),
                     2 * samples + 1, "projection", arr)

    def density(
        self,
        iterations: int = 80,
        vectors: int = 4,
        *,
        seed: int = 0,
        sigma: float | None = None,
        points: int = 1000,
    ) -> Density:
        """Spectral density by stochastic Lanczos quadrature (as PyHessian's `density`).

        For each of `vectors` Rademacher vectors, `iterations` Lanczos steps with full
        reorthogonalization give a tridiagonal T; its eigenvalues are the nodes and the
        squared first components of its eigenvectors the weights. The density is their
        Gaussian broadening (σ = 1% of the spectral range unless given) on `points` values.
        """
        for name, value in (("iterations", iterations), ("vectors", vectors),
                            ("points", points)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        key = ("density", iterations, vectors, seed, sigma, points)
        if key in self._cache:
            return self._cache[key]
        op = self.operator()
        m = min(iterations, op.n)
        rng = np.random.default_rng(seed)
        all_nodes, all_weights = [], []
        for _ in range(vectors):
            v = rng.integers(0, 2, op.n).astype(np.float64) * 2 - 1
            alphas, betas = _lanczos(op.matvec, v / np.linalg.norm(v), m)
            T = np.diag(alphas) + np.diag(betas, 1) + np.diag(betas, -1)
            nodes, U = np.linalg.eigh(T)
            weights = U[0] ** 2
            pad = m - len(nodes)  # early breakdown: pad with zero weights
            all_nodes.append(np.pad(nodes, (0, pad), constant_values=nodes[-1]))
            all_weights.append(np.pad(weights, (0, pad)))
        nodes, weights = np.asarray(all_nodes), np.asarray(all_weights)
        lo, hi = float(nodes.min()), float(nodes.max())
        width = sigma if sigma is not None else max(1e-2 * (hi - lo), 1e-6 * max(1.0, abs(hi)))
        grid = np.linspace(lo - 6 * width, hi + 6 * width, points)
        gauss = np.exp(-0.5 * ((grid[None, None, :] - nodes[..., None]) / width) ** 2)
        gauss /= width * math.sqrt(2 * math.pi)
        dens = np.mean(np.sum(weights[..., None] * gauss, axis=1), axis=0)
        out = Density(grid, dens, nodes, weights, op.hvps)
        self._cache[key] = out
        return out


def _lanczos(matvec: Any, v: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """m steps of Lanczos with full reorthogonalization; stops early on breakdown."""
    Q = np.zeros((m, len(v)))
    alphas, betas = [], []
    q, beta, q_prev = v, 0.0, np.zeros_like(v)
    for j in range(m):
        Q[j] = q
        w = matvec(q) - beta * q_prev
        alpha = float(q @ w)
        w -= alpha * q
        w -= Q[: j + 1].T @ (Q[: j + 1] @ w)  # twice is enough (Kahan–Parlett)
        w -= Q[: j + 1].T @ (Q[: j + 1] @ w)
        alphas.append(alpha)
        beta = float(np.linalg.norm(w))
        if j == m - 1 or beta < 1e-10 * max(1.0, abs(alpha)):
            break
        betas.append(beta)
        q_prev, q = q, w / beta
    return np.asarray(alphas), np.asarray(betas[: len(alphas) - 1])


def select_params(land: Landscape, params: ParamSelection) -> list[str]:
    """Names of the parameters the Hessian is taken over (see `Hessian`)."""
    space = land.space
    trainable = [n for n, p in land.model.named_parameters() if p.requires_grad]
    if params is None or params == "biasbn":
        names = trainable
        if params == "biasbn":
            names = [n for n in names if space.theta0[n].dim() > 1]
    elif isinstance(params, Direction):
        space.check_compatible(params)
        names = [n for n in space.names if bool(params[n].any())]
    elif isinstance(params, str):
        raise ValueError(f"params={params!r}; use None, 'biasbn', a list of names or a Direction")
    else:
        names = list(params)
        unknown = [n for n in names if n not in space.theta0]
        if unknown:
            raise ValueError(f"unknown parameter names {unknown[:5]}; see model.named_parameters()")
    if not names:
        raise ValueError(
            "no parameter to take the Hessian over: none requires grad. Set requires_grad=True "
            "on the parameters to analyse, or pass params=[names]"
        )
    return names


def curvature_values(
    land: Landscape, names: list[str], dirs: Sequence[Direction], coeffs: np.ndarray,
    tol: float,
) -> np.ndarray:
    """λmax, λmin, |λmin/λmax| and λmin/λmax at each row of `coeffs` (P, k)."""
    out = np.empty((len(coeffs), 4))
    for i, c in enumerate(coeffs):
        op = HessianOperator(land, names, directions=dirs, coeffs=list(c))
        w, _ = op.extremes(1, "both", tol=tol)
        lam_max, lam_min = float(w[0]), float(w[-1])
        ratio = lam_min / lam_max if lam_max != 0 else math.nan
        out[i] = (lam_max, lam_min, abs(ratio), ratio)
    return out


CURVATURE_METRICS = ("lambda_max", "lambda_min", "ratio", "signed_ratio")
