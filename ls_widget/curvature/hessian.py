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

from ..directions.direction import Direction

if TYPE_CHECKING:
    from ..engine.landscape import Landscape


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
    """An estimate of tr H with its standard error and cost, and what it is an estimate of.

    Two estimators (see `Hessian.trace`):

    - ``"hutchinson"``: the mean of vᵀHv over Rademacher v, with H autograd's Hessian. On a
      piecewise-linear network (ReLU, max-pooling, ...) that is the *almost-everywhere*
      Hessian: the curvature inside the linear region θ sits in, kinks ignored.
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


# ----------------------------------------------------------------------------- smoothness
_STEP_REFINE = 4  # the projection trace's second step is h / _STEP_REFINE (see Hessian.trace)


class NonSmoothWarning(UserWarning):
    """`trace("projection")` on a loss with kinks (ReLU, max-pooling, clamp, ...).

    There the second differences measure the curvature at the step's scale, kinks included,
    which does not converge to autograd's tr H (the almost-everywhere Hessian) as h → 0
    (Böttcher & Wheeler 2022). `trace("hutchinson")` gives the latter.
    """


# Ops whose output has a kink or a jump wherever their input is: always reported when run on
# values that depend on the parameters (max-type reductions and pooling, rounding, ranking).
_ALWAYS_KINKED = frozenset({
    "max", "min", "amax", "amin", "argmax", "argmin", "sort", "topk", "kthvalue", "median",
    "nanmedian", "mode", "cummax", "cummin", "floor", "ceil", "round", "trunc", "frac",
    "multi_margin_loss", "multilabel_margin_loss", "multilabel_margin_loss_forward",
})
# ... and families of them (pooling by max, fake quantization: piecewise constant).
_KINKED_PREFIXES = ("max_pool", "adaptive_max_pool", "fractional_max_pool", "mkldnn_max_pool",
                    "quantized_max_pool", "fake_quantize")
# Elementwise ops with kinks at 0.
_KINK_AT_ZERO = frozenset({"relu", "leaky_relu", "_prelu_kernel", "prelu", "rrelu",
                           "rrelu_with_noise", "abs", "absolute", "sign", "sgn", "heaviside"})
# Ops comparing two operands: a kink (or a jump) where they are equal.
_BINARY_KINKED = frozenset({"maximum", "minimum", "fmax", "fmin", "gt", "ge", "lt", "le",
                            "greater", "greater_equal", "less", "less_equal"})
_NONSMOOTH_MODULES = (
    "ReLU", "ReLU6", "LeakyReLU", "PReLU", "RReLU", "Hardtanh", "Hardswish", "Hardsigmoid",
    "Hardshrink", "Softshrink", "Threshold", "SELU", "MaxPool1d", "MaxPool2d", "MaxPool3d",
    "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d", "FractionalMaxPool2d",
    "FractionalMaxPool3d",
)


def _arg(args: Sequence[Any], kwargs: Mapping[str, Any], i: int, name: str, default: Any) -> Any:
    if len(args) > i:
        return args[i]
    return kwargs.get(name, default)


def _kinks(name: str, overload: str, args: Sequence[Any],
           kwargs: Mapping[str, Any]) -> list[tuple[Any, Any]] | None:
    """Where the aten op `name.overload` is not continuously differentiable in its input.

    Returns None for an op with kinks wherever it runs (pooling, max-reductions, rounding),
    a list of (value, breakpoint) pairs (the op has a kink where value = breakpoint), or []
    for an op that is C¹ (smooth enough for second differences: their error stays O(h)).
    """
    x = args[0] if args else None
    if name in _ALWAYS_KINKED and not (name in ("max", "min") and overload == "other"):
        return None
    if name.startswith(_KINKED_PREFIXES):
        return None
    if name in _KINK_AT_ZERO:
        if name == "leaky_relu" and _arg(args, kwargs, 1, "negative_slope", 0.01) == 1:
            return []
        return [(x, 0.0)]
    if name in _BINARY_KINKED or name in ("max", "min"):
        return [(x, _arg(args, kwargs, 1, "other", 0.0))]
    if name == "elu":  # slopes α·scale·input_scale (left) and scale (right) at 0
        alpha = _arg(args, kwargs, 1, "alpha", 1.0)
        input_scale = _arg(args, kwargs, 3, "input_scale", 1.0)
        return [] if float(alpha) * float(input_scale) == 1.0 else [(x, 0.0)]  # SELU: kink
    if name == "hardtanh":
        return [(x, _arg(args, kwargs, 1, "min_val", -1.0)),
                (x, _arg(args, kwargs, 2, "max_val", 1.0))]
    if name in ("hardswish", "hardsigmoid"):
        return [(x, -3.0), (x, 3.0)]
    if name in ("hardshrink", "softshrink"):
        lambd = float(_arg(args, kwargs, 1, "lambd", 0.5))
        return [(x, -lambd), (x, lambd)]
    if name == "threshold":
        return [(x, _arg(args, kwargs, 1, "threshold", 0.0))]
    if name in ("clamp", "clip"):
        bounds = (_arg(args, kwargs, 1, "min", None), _arg(args, kwargs, 2, "max", None))
        return [(x, b) for b in bounds if b is not None]
    if name in ("clamp_min", "clamp_max"):
        return [(x, _arg(args, kwargs, 1, name[-3:], 0.0))]
    return []


def _reaches(value: Any, breakpoint: Any) -> bool:
    """Whether the values lie on a breakpoint or on both sides of it (else, near θ, the op
    acts as one smooth piece: a clamp that never clamps, a ReLU that is always on)."""
    if not isinstance(value, Tensor) or not (value.is_floating_point() or value.is_complex()):
        return False
    if isinstance(breakpoint, Tensor):
        breakpoint = breakpoint.to(value.device)
    d = torch.as_tensor(value - breakpoint).real
    d = d[~torch.isnan(d)]
    return bool((d == 0).any()) or bool((d < 0).any() and (d > 0).any())


def _module_kinks(model: torch.nn.Module) -> tuple[str, ...]:
    """The fallback when the ops cannot be recorded: non-smooth module types in the model."""
    found = set()
    for mod in model.modules():
        cls = type(mod)
        is_kinked = any(
            c.__module__.startswith("torch.nn") and c.__name__ in _NONSMOOTH_MODULES
            for c in cls.__mro__
        )
        alpha = getattr(mod, "alpha", 1.0)
        if is_kinked or (cls.__name__ == "ELU" and float(alpha) != 1.0):
            found.add(f"nn.{cls.__name__}")
    return tuple(sorted(found))


def nonsmooth_ops(land: Landscape, names: Sequence[str]) -> tuple[str, ...]:
    """The ops with kinks or jumps through which the loss depends on the parameters `names`.

    Runs the model and the loss once on the first batch at θ₀ (eval mode, on the private
    copy) under a `TorchDispatchMode` that records every aten op, so functional calls
    (``F.relu``, ``x.clamp(...)``, ``torch.maximum``) count as much as modules. Values are
    followed from the parameters: ops that see only the inputs (a clamp of the data) do not
    count, nor do elementwise ops whose inputs all lie strictly on one side of their kinks.
    Returns aten names, sorted (in-place variants under their plain name). If the forward
    cannot run under the recorder, falls back to the non-smooth module types in the model
    (``"nn.ReLU"``, ...).

    Smooth means C¹ here: a jump in the second derivative only (ELU with α = 1, the Huber
    loss) biases second differences by O(h), which vanishes with h. Over-reported: kinks that
    cancel in the whole, as in a hand-written stable softmax ``x - x.max()`` or softsign's
    ``abs``.
    """
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten
    from torch.utils.weak import WeakIdKeyDictionary

    ev = land.evaluator
    space = ev.space
    tainted: Any = WeakIdKeyDictionary()
    for n in names:
        tainted[space.theta0[n]] = True
    found: set[str] = set()

    class _Recorder(TorchDispatchMode):
        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (),
                               kwargs: Any = None) -> Any:
            kwargs = kwargs or {}
            leaves = tree_flatten((args, kwargs))[0]
            depends = any(isinstance(t, Tensor) and t in tainted for t in leaves)
            if depends:  # before running it: in-place ops overwrite their input
                name = str(getattr(getattr(func, "_overloadpacket", func), "__name__", func))
                if name.endswith("_") and not name.endswith("__"):
                    name = name[:-1]
                kinks = _kinks(name, getattr(func, "_overloadname", "default"), args, kwargs)
                try:
                    hit = kinks is None or any(_reaches(v, b) for v, b in kinks)
                except Exception:  # values we cannot compare (sparse, quantized...): a kink
                    hit = True
                if hit:
                    found.add(name)
            out = func(*args, **kwargs)
            if depends:
                for t in tree_flatten(out)[0]:
                    if isinstance(t, Tensor):
                        tainted[t] = True
            return out

    batch = ev.batches[0]
    try:
        with ev.plain() as module, torch.no_grad(), _Recorder():
            out = functional_call(module, (dict(space.theta0), dict(space.buffers0)), batch.x)
            ev.loss_fn(out, batch.y)
    except Exception:  # an op or a model the recorder cannot run: look at the modules
        return _module_kinks(land.model)
    return tuple(sorted(found))


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
        """Estimate tr H by Hutchinson (Rademacher v, mean of vᵀHv) or from loss values only.

        ``method="hutchinson"``: one Hessian-vector product per sample; H is autograd's
        Hessian (on ReLU networks the almost-everywhere Hessian, kinks ignored).

        ``method="projection"`` is Böttcher & Wheeler's (2022) estimate: for Gaussian
        δ ~ N(0, I), E[δᵀHδ] = tr H, and δᵀHδ ≈ (L(θ+hδ) − 2L(θ) + L(θ−hδ))/h²; no
        Hessian-vector products. It is taken at two steps along the same directions, h and
        h/4, in one evaluation per direction (±h, ±h/4; 4 loss evaluations per sample, plus
        L(θ) once): `mean` is the estimate at h, `at_steps` has both, `step_change` their
        difference and `converged` says whether it is within the estimate's standard error.
        A factor 4 makes a smooth loss's O(h²) error 16× smaller at h/4, so `step_change`
        measures almost all of the error at h, while the round-off (∝ 1/h²) stays small at
        the default h. `h` defaults to 1% of ‖θ‖ per unit of ‖δ‖ (≈ √N).

        The projection estimate is the curvature of the loss at the scale h. Where the loss
        has kinks (ReLU, max-pooling, clamp, ...; see `nonsmooth_ops`), the kinks crossed
        within [−h, h] add to it, and it does not converge to autograd's tr H as h → 0: then
        ``Trace.smooth`` is False and a `NonSmoothWarning` says so. Hutchinson's estimate is
        the one to quote as tr H of such a model; the projection estimate (at each step) is
        the curvature that the landscape pictures at that scale show.

        Both kinds of Trace report `smooth` and `nonsmooth_ops` (one extra forward of the
        first batch, cached); `h`, `at_steps`, `step_change` and `converged` are the
        projection's (None, empty or NaN for Hutchinson).
        """
        if samples < 2:
            raise ValueError("samples must be at least 2 (the standard error needs two)")
        if method not in ("hutchinson", "projection"):
            raise ValueError(f"method={method!r}; use 'hutchinson' or 'projection'")
        if h is not None and not (math.isfinite(h) and h > 0):
            raise ValueError(f"h must be a positive finite step, got {h!r}")
        key = ("nonsmooth_ops",)
        if key not in self._cache:
            self._cache[key] = nonsmooth_ops(self.land, self.names)
        kinked: tuple[str, ...] = self._cache[key]
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
                         op.hvps, method, arr, smooth=not kinked, nonsmooth_ops=kinked)
        out = self._projection_trace(samples, gen, h, kinked)
        if kinked:
            import warnings

            (m_h, s_h), (m_4, s_4) = out.at_steps.values()
            warnings.warn(
                f"trace('projection'): the loss has kinks ({', '.join(kinked)}), so its "
                f"second differences measure the curvature at the step's scale, kinks "
                f"included, not autograd's tr H, and do not converge to it as h → 0 "
                f"(Böttcher & Wheeler 2022). Here {m_h:.4g} ± {s_h:.2g} at h = {out.h:.3g} and "
                f"{m_4:.4g} ± {s_4:.2g} at h/4; trace('hutchinson') estimates tr H of the "
                "almost-everywhere Hessian",
                NonSmoothWarning,
                stacklevel=2,
            )
        return out

    def _projection_trace(
        self, samples: int, gen: torch.Generator, h: float | None, kinked: tuple[str, ...]
    ) -> Trace:
        space = self.land.space
        n = self.size
        if h is None:
            theta_norm = math.sqrt(sum(float(space.theta0[k].double().pow(2).sum())
                                       for k in self.names))
            h = 1e-2 * (theta_norm if theta_norm > 0 else 1.0) / math.sqrt(n)
        small = h / _STEP_REFINE
        steps = [[-h], [h], [-small], [small]]
        center = math.nan
        vals = np.empty((samples, 2))
        for i in range(samples):
            tensors = {
                name: (torch.randn(t.shape, generator=gen, dtype=torch.float64)
                       .to(t.device, t.dtype) if name in self.names else torch.zeros_like(t))
                for name, t in space.theta0.items()
            }
            d = Direction(tensors, kind="gaussian")
            bound = self.land.evaluator.bind([d])
            if i == 0:  # L(θ) by the same evaluation plan as the displaced points
                first = bound.evaluate([[0.0], *steps])[:, 0]
                center, loss = float(first[0]), first[1:]
            else:
                loss = bound.evaluate(steps)[:, 0]
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
            smooth=not kinked,
            nonsmooth_ops=kinked,
            samples_small_h=vals[:, 1].copy(),
        )

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
    """M steps of Lanczos with full reorthogonalization; stops early on breakdown."""
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
    """λmax, λmin, |λmin/λmax| and λmin/λmax at each row of `coeffs` (P, k).

    Far from the model the loss may diverge: where the Hessian-vector products overflow,
    the eigensolver fails (LinAlgError) or gives non-finite values, that point is NaN, as
    `plane` draws divergent points, rather than an error that ends the whole map.
    """
    space = land.space
    for d in dirs:
        space.check_compatible(d)  # architecture and finite values, before any HVP
    dirs = [d.to(space.device) for d in dirs]
    out = np.full((len(coeffs), 4), np.nan)
    for i, c in enumerate(coeffs):
        op = HessianOperator(land, names, directions=dirs, coeffs=list(c))
        try:
            with np.errstate(all="ignore"):
                w, _ = op.extremes(1, "both", tol=tol)
        except np.linalg.LinAlgError:  # NaN/inf in the Lanczos tridiagonal: diverged
            continue
        lam_max, lam_min = float(w[0]), float(w[-1])
        if not (math.isfinite(lam_max) and math.isfinite(lam_min)):
            continue
        ratio = lam_min / lam_max if lam_max != 0 else math.nan
        out[i] = (lam_max, lam_min, abs(ratio), ratio)
    return out


CURVATURE_METRICS = ("lambda_max", "lambda_min", "ratio", "signed_ratio")
