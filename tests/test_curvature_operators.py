"""Curvature operators against dense matrices on tiny models (in the style of curvlinops).

The reference Hessian is `torch.autograd.functional.hessian` of the eval-mode mean loss as a
function of the flattened parameters, on tiny float64 models (an MLP with tanh, one with
BatchNorm in eval mode), at θ₀ and at a point of a plane. Against it: the HVP operator and
its SciPy `LinearOperator`, also on a conv net with BatchNorm and on ops without forward-mode
AD rules, with its determinism and its errors; the Lanczos extremes against
`numpy.linalg.eigh` (values, vectors up to sign, residuals); SLQ's moments against the dense
spectrum; Hutchinson against tr H.
Then the building blocks (`lanczos`, `slq`, `hutchinson`, `projection_trace`) on explicit
matrices, and curvature driven by an evaluator that is not the engine's.
"""

from __future__ import annotations

import copy
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import lw
from scipy.sparse.linalg import LinearOperator
from torch import nn
from torch.func import functional_call

from ls_widget.curvature import (
    Hessian,
    hutchinson,
    projection_trace,
    select_params,
    slq,
)
from ls_widget.curvature.extremes import dense_extremes
from ls_widget.curvature.lanczos import lanczos
from ls_widget.engine.params import ParamSpace

ATOL = 1e-10  # float64 products against the dense reference


# --------------------------------------------------------------------------------- models
def tanh_mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3)).double()


def bn_mlp() -> nn.Module:
    """Linear → BatchNorm1d (eval mode, non-trivial running statistics) → tanh → Linear."""
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(4, 5), nn.BatchNorm1d(5), nn.Tanh(), nn.Linear(5, 3))
    model = model.double()
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        model.train()
        for _ in range(3):
            model(torch.randn(16, 4, generator=g, dtype=torch.float64) * 2 + 0.5)
        model[1].weight.uniform_(0.5, 1.5)
        model[1].bias.uniform_(-0.3, 0.3)
    return model.eval()


MODELS = {"tanh": tanh_mlp, "batchnorm": bn_mlp}


def data(n: int = 11):
    g = torch.Generator().manual_seed(3)
    X = torch.randn(n, 4, generator=g, dtype=torch.float64)
    return X, torch.randint(0, 3, (n,), generator=g)


def reference(model: nn.Module, X, y, point=None, buffers_shift=None, loss=F.cross_entropy):
    """Dense H by torch.autograd.functional.hessian of the eval-mode mean `loss` over the
    flattened parameters at `point` (default θ₀)."""
    m = copy.deepcopy(model).eval()
    params = {n: p.detach().clone() for n, p in m.named_parameters()}
    if point is not None:
        params = {n: params[n] + point[n] for n in params}
    buffers = {n: b.detach().clone() for n, b in m.named_buffers()}
    for n, d in (buffers_shift or {}).items():
        buffers[n] = buffers[n] + d
    names = list(params)
    shapes = [params[n].shape for n in names]
    sizes = [params[n].numel() for n in names]

    def f(flat: torch.Tensor) -> torch.Tensor:
        p, off = {}, 0
        for n, shape, size in zip(names, shapes, sizes, strict=True):
            p[n] = flat[off : off + size].view(shape)
            off += size
        return loss(functional_call(m, (p, buffers), (X,)), y)

    flat0 = torch.cat([params[n].reshape(-1) for n in names])
    H = torch.autograd.functional.hessian(f, flat0).detach().numpy()
    return (H + H.T) / 2  # symmetric to rounding already; make it exactly so for eigh


def plane(model: nn.Module):
    """Two directions (the second also moving BN's running statistics) and a point (a, b)."""
    d1 = lw.directions.random(model, 0)
    tensors = {n: torch.randn_like(p) * 0.1 for n, p in model.named_parameters()}
    buffers = {n: torch.rand_like(b) * 0.1 for n, b in model.named_buffers()
               if b.is_floating_point()}
    d2 = lw.Direction(tensors, buffers=buffers)
    return d1, d2, (-0.4, 0.7)  # b > 0: the running variances only grow


def setup(kind: str, at: str, device: torch.device | str = "cpu", batch_size: int = 4):
    """(operator, dense reference) for a model kind at θ₀ or at a point of a plane."""
    model = MODELS[kind]()
    X, y = data()
    if at == "theta0":
        H = reference(model, X, y)
        dirs, coeffs = [], []
    else:
        d1, d2, (a, b) = plane(model)
        point = {n: a * d1[n] + b * d2[n] for n in d1}
        H = reference(model, X, y, point, {n: b * t for n, t in d2.buffers.items()})
        dirs, coeffs = [d1, d2], [a, b]
    land = lw.Landscape(model.to(device), (X.to(device), y.to(device)), batch_size=batch_size)
    return land.hessian.operator(dirs, coeffs), H


def flat_direction(d) -> np.ndarray:
    return torch.cat([d[n].reshape(-1) for n in d]).double().cpu().numpy()


# --------------------------------------------------------------------------------- operator
@pytest.mark.parametrize("at", ["theta0", "plane"])
@pytest.mark.parametrize("kind", list(MODELS))
def test_hvp_and_linear_operator_match_the_dense_hessian(kind, at, device):
    op, H = setup(kind, at, device)
    n = H.shape[0]
    assert op.n == n and op.dtype == torch.float64 and op.device.type == device.type
    scale = np.abs(H).max()
    assert scale > 1e-3, "the case must have curvature"
    rng = np.random.default_rng(0)
    V = rng.standard_normal((n, 3))
    for v in V.T:
        hv = op.hvp(torch.tensor(v, device=device))
        assert hv.device.type == device.type and hv.dtype == torch.float64
        np.testing.assert_allclose(hv.cpu().numpy(), H @ v, rtol=0, atol=ATOL)
        np.testing.assert_allclose(op.matvec(v), H @ v, rtol=0, atol=ATOL)
    # The SciPy LinearOperator: products, products with matrices, and the shifted operator.
    A = op.linear_operator()
    assert isinstance(A, LinearOperator) and A.shape == (n, n) and A.dtype == np.float64
    np.testing.assert_allclose(A @ V[:, 0], H @ V[:, 0], rtol=0, atol=ATOL)
    np.testing.assert_allclose(A @ V, H @ V, rtol=0, atol=ATOL)
    shifted = op.linear_operator(2.5)
    np.testing.assert_allclose(shifted @ V, H @ V - 2.5 * V, rtol=0, atol=ATOL)
    # The dense matrix.
    np.testing.assert_allclose(op.dense(), H, rtol=0, atol=ATOL)


def test_flatten_and_unflatten_are_inverse():
    op, _ = setup("batchnorm", "theta0")
    v = torch.arange(op.n, dtype=torch.float64)
    parts = op.unflatten(v)
    assert list(parts) == op.names
    assert [tuple(t.shape) for t in parts.values()] == [tuple(s) for s in op.shapes]
    assert torch.equal(op.flatten(parts), v)
    assert parts[op.names[0]].data_ptr() == v.data_ptr(), "views, not copies"


# --------------------------------------------------------------------------------- more ops
class _CustomTanh(torch.autograd.Function):
    """tanh with a hand-written (differentiable) backward and no forward-mode rule."""

    @staticmethod
    def forward(ctx, x):
        out = torch.tanh(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_tensors
        return g * (1 - out * out)


class _CustomMLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(4, 5), nn.Linear(5, 3)

    def forward(self, x):
        return self.b(_CustomTanh.apply(self.a(x)))


class _Warp(nn.Module):
    """Samples a learned 3×3 image at four points a Linear layer predicts per sample
    (`grid_sample`: a double-backward rule, no forward-mode one)."""

    def __init__(self) -> None:
        super().__init__()
        self.loc = nn.Linear(4, 8)
        self.img = nn.Parameter(torch.randn(1, 1, 3, 3))
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        grid = torch.tanh(self.loc(x)).view(-1, 2, 2, 2)
        img = self.img.expand(len(x), -1, -1, -1)
        return self.head(F.grid_sample(img, grid, align_corners=False).reshape(len(x), 4))


def bn_cnn() -> nn.Module:
    """Conv → BatchNorm2d (eval mode, non-trivial running statistics) → ReLU → max-pool →
    Linear, for 1×4×4 inputs."""
    torch.manual_seed(5)
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8, 3)).double()
    g = torch.Generator().manual_seed(6)
    with torch.no_grad():
        model.train()
        for _ in range(3):
            model(torch.randn(8, 1, 4, 4, generator=g, dtype=torch.float64) * 1.5 + 0.3)
        model[1].weight.uniform_(0.5, 1.5)
        model[1].bias.uniform_(-0.3, 0.3)
    return model.eval()


def more_ops(kind: str):
    """(model, reference twin, X, y, loss) of a case: the twin computes the same function
    with stock ops, for an independent dense reference."""
    X, y = data()
    if kind == "bn_cnn":
        g = torch.Generator().manual_seed(7)
        model = bn_cnn()
        return model, model, torch.randn(len(y), 1, 4, 4, generator=g, dtype=torch.float64), \
            y, F.cross_entropy
    if kind == "custom_function":
        model = tanh_mlp()
        custom = _CustomMLP().double()
        custom.load_state_dict({"a.weight": model[0].weight, "a.bias": model[0].bias,
                                "b.weight": model[2].weight, "b.bias": model[2].bias})
        return custom, model, X, y, F.cross_entropy
    if kind == "grid_sample":
        torch.manual_seed(8)
        model = _Warp().double()
        return model, model, X, y, F.cross_entropy
    if kind == "huber_loss":  # huber_loss's backward has no forward-mode rule
        model = tanh_mlp()
        target = torch.randn(len(y), 3, generator=torch.Generator().manual_seed(9),
                             dtype=torch.float64)
        return model, model, X, target, F.huber_loss
    raise AssertionError(kind)


@pytest.mark.parametrize("at", ["theta0", "plane"])
@pytest.mark.parametrize("kind", ["bn_cnn", "custom_function", "grid_sample", "huber_loss"])
def test_hvp_matches_the_dense_hessian_on_convolutions_and_ops_without_forward_mode(kind, at):
    model, twin, X, y, loss = more_ops(kind)
    dirs, coeffs, point, shift = [], [], None, None
    if at == "plane":
        d1, d2, (a, b) = plane(model)
        dirs, coeffs = [d1, d2], [a, b]
        point = {n: a * d1[n] + b * d2[n] for n in d1}
        shift = {n: b * t for n, t in d2.buffers.items()}
    if twin is not model:  # the same parameters under the twin's names, in the same order
        rename = dict(zip([n for n, _ in model.named_parameters()],
                          [n for n, _ in twin.named_parameters()], strict=True))
        point = point and {rename[n]: t for n, t in point.items()}
    H = reference(twin, X, y, point, shift, loss=loss)
    assert np.abs(H).max() > 1e-3, "the case must have curvature"
    land = lw.Landscape(model, (X, y), loss=loss, batch_size=4)
    op = land.hessian.operator(dirs, coeffs)
    np.testing.assert_allclose(op.dense(), H, rtol=0, atol=ATOL)
    assert op.hvps == op.n


def test_products_are_deterministic_and_leave_no_trace():
    model = bn_mlp()
    X, y = data()
    d1, d2, (a, b) = plane(model)
    land = lw.Landscape(model, (X, y), batch_size=4)
    op = land.hessian.operator([d1, d2], [a, b])
    g = torch.Generator().manual_seed(0)
    v, w = (torch.randn(op.n, generator=g, dtype=torch.float64) for _ in range(2))
    first = op.hvp(v)
    for _ in range(3):
        op.hvp(w)
    # The same bits however many products came before, from a fresh operator, under
    # no_grad, and from a non-contiguous copy of v; v itself is left as it was.
    v_before = v.clone()
    assert torch.equal(op.hvp(v), first)
    assert torch.equal(land.hessian.operator([d1, d2], [a, b]).hvp(v), first)
    with torch.no_grad():
        assert torch.equal(op.hvp(v), first)
    assert torch.equal(op.hvp(torch.stack([w, v], dim=1)[:, 1]), first)
    assert torch.equal(v, v_before) and not first.requires_grad and first.grad_fn is None
    assert op.hvps == 7  # the fresh operator counts its own
    # Nothing of the user's model, or of the snapshot the engine holds, was touched.
    assert all(p.grad is None for p in model.parameters())
    assert not any(t.requires_grad for t in land.space.theta0.values())


def test_bad_vectors_and_ops_without_a_second_derivative_get_clear_errors():
    X, y = data()
    op = lw.Landscape(tanh_mlp(), (X, y)).hessian.operator()
    with pytest.raises(ValueError, match=f"v has {op.n + 1} values but H is {op.n} × {op.n}"):
        op.hvp(torch.zeros(op.n + 1, dtype=torch.float64))
    # multi_margin_loss has a first derivative but no second one in PyTorch.
    op = lw.Landscape(tanh_mlp(), (X, y), loss=F.multi_margin_loss).hessian.operator()
    with pytest.raises(RuntimeError, match="need the second derivative") as err:
        op.hvp(torch.ones(op.n, dtype=torch.float64))
    assert "multi_margin_loss_backward" in str(err.value)
    assert op.hvps == 0


# --------------------------------------------------------------------------------- extremes
@pytest.mark.parametrize("method", ["lanczos", "arpack"])
@pytest.mark.parametrize("at", ["theta0", "plane"])
@pytest.mark.parametrize("kind", list(MODELS))
def test_extremes_match_eigh(kind, at, method):
    op, H = setup(kind, at)
    w, U = np.linalg.eigh(H)
    w, U = w[::-1], U[:, ::-1]  # descending
    k = 2
    idx = [0, 1, -2, -1]
    assert w[1] - w[2] > 1e-3 * abs(w[0]) and w[-3] - w[-2] > 1e-3 * abs(w[0]), "gapped ends"
    vals, V = op.extremes(k, "both", tol=1e-10, method=method)
    np.testing.assert_allclose(vals, w[idx], rtol=1e-7, atol=1e-9 * abs(w[0]))
    for i, j in enumerate(idx):
        assert abs(V[:, i] @ U[:, j]) > 1 - 1e-6, f"eigenvector {j} differs (up to sign)"
        assert np.linalg.norm(V[:, i]) == pytest.approx(1.0, abs=1e-12)
        assert np.linalg.norm(H @ V[:, i] - vals[i] * V[:, i]) < 1e-7 * abs(w[0])


@pytest.mark.parametrize("kind", list(MODELS))
def test_eigen_records_residuals_and_directions(kind):
    model = MODELS[kind]()
    X, y = data()
    H = reference(model, X, y)
    w = np.sort(np.linalg.eigvalsh(H))[::-1]
    land = lw.Landscape(model, (X, y), batch_size=4)
    eig = land.hessian.eigen(k=1, which="both", tol=1e-8)
    np.testing.assert_allclose(eig.values, w[[0, -1]], rtol=1e-7, atol=1e-9 * abs(w[0]))
    for lam, d, res in zip(eig.values, eig.vectors, eig.residuals, strict=True):
        v = flat_direction(d)
        assert np.linalg.norm(v) == pytest.approx(1.0, abs=1e-12)
        true = np.linalg.norm(H @ v - lam * v)
        assert res == pytest.approx(true, rel=1e-6, abs=1e-13)
        assert res < 1e-6 * abs(w[0])
        assert set(d) == {n for n, _ in model.named_parameters()}


def test_dense_extremes_pick_the_ends():
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    lam = np.array([3.0, 2.0, 1.0, 0.5, -1.0, -2.0])
    H = Q @ np.diag(lam) @ Q.T
    for which, expect in [("top", lam[:2]), ("bottom", lam[-2:]), ("both", lam[[0, 1, 4, 5]])]:
        w, V = dense_extremes(H, 2, which)
        np.testing.assert_allclose(w, expect, atol=1e-12)
        np.testing.assert_allclose(H @ V, V * w, atol=1e-12)


# --------------------------------------------------------------------------------- lanczos
def spd_like(n: int = 40, seed: int = 0, negative: bool = True):
    rng = np.random.default_rng(seed)
    lam = np.sort(rng.uniform(-1.0 if negative else 0.1, 3.0, n))
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return torch.tensor(Q @ np.diag(lam) @ Q.T), lam


def test_lanczos_basis_is_orthonormal_and_tridiagonalizes():
    H, lam = spd_like()
    q = torch.randn(40, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    run = lanczos(lambda v: H @ v, q, 15)
    assert run.steps == 15 and not run.breakdown
    Q = run.basis
    assert Q.shape == (15, 40)
    np.testing.assert_allclose((Q @ Q.T).numpy(), np.eye(15), atol=1e-13)
    np.testing.assert_allclose((Q @ H @ Q.T).numpy(), run.matrix, atol=1e-12)
    np.testing.assert_allclose(Q[0].numpy(), (q / q.norm()).numpy(), atol=1e-15)
    # Ritz values lie inside the spectrum (Cauchy interlacing); the ends converge first.
    theta, _ = run.ritz()
    assert theta[0] >= lam[0] - 1e-12 and theta[-1] <= lam[-1] + 1e-12
    # n steps: the Ritz values are the spectrum, even with a matvec returning another dtype.
    full = lanczos(lambda v: (H @ v).float(), q, 40)
    np.testing.assert_allclose(np.sort(full.ritz()[0]), lam, atol=1e-5)
    exact = lanczos(lambda v: H @ v, q, 40)
    np.testing.assert_allclose(np.sort(exact.ritz()[0]), lam, atol=1e-10)


def test_lanczos_stops_on_an_invariant_subspace_and_on_request():
    # H with three distinct eigenvalues: the Krylov space has dimension 3, then breakdown.
    rng = np.random.default_rng(2)
    Q, _ = np.linalg.qr(rng.standard_normal((20, 20)))
    lam = np.repeat([2.0, -1.0, 0.5], [7, 6, 7])
    H = torch.tensor(Q @ np.diag(lam) @ Q.T)
    run = lanczos(lambda v: H @ v, torch.ones(20, dtype=torch.float64), 20)
    assert run.breakdown and run.steps == 3
    np.testing.assert_allclose(np.sort(run.ritz()[0]), [-1.0, 0.5, 2.0], atol=1e-12)
    asked = []

    def stop(alphas, betas, beta):
        asked.append((len(alphas), len(betas)))
        return True

    stopped = lanczos(lambda v: H @ v, torch.ones(20, dtype=torch.float64), 20, stop=stop,
                      check_from=2)
    assert asked == [(2, 1)] and stopped.steps == 2 and not stopped.breakdown
    assert stopped.residual > 0 and len(stopped.betas) == 1
    # A matvec that returns its input (H = I) must not corrupt the basis.
    ident = lanczos(lambda v: v, torch.ones(5, dtype=torch.float64), 5)
    assert ident.breakdown and ident.steps == 1 and ident.alphas[0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="steps"):
        lanczos(lambda v: v, torch.ones(5, dtype=torch.float64), 0)


# --------------------------------------------------------------------------------- SLQ
@pytest.mark.parametrize("kind", list(MODELS))
def test_slq_moments_match_the_dense_spectrum(kind):
    model = MODELS[kind]()
    X, y = data()
    H = reference(model, X, y)
    n = H.shape[0]
    land = lw.Landscape(model, (X, y), batch_size=4)
    m, vectors, seed = 6, 5, 4
    dens = land.hessian.density(iterations=m, vectors=vectors, seed=seed)
    assert dens.nodes.shape == dens.weights.shape == (vectors, m)
    assert dens.hvps == m * vectors
    np.testing.assert_allclose(dens.weights.sum(axis=1), 1.0, atol=1e-12)
    assert np.trapezoid(dens.density, dens.grid) == pytest.approx(1.0, abs=1e-6)
    # Gauss quadrature with m nodes is exact for polynomials of degree ≤ 2m − 1:
    # Σ w λᵖ = qᵀHᵖq for the unit start vector q of each run (the same Rademacher draws).
    rng = np.random.default_rng(seed)
    qs = [rng.integers(0, 2, n).astype(np.float64) * 2 - 1 for _ in range(vectors)]
    qs = [q / np.linalg.norm(q) for q in qs]
    scale = np.abs(np.linalg.eigvalsh(H)).max()
    for p in range(2 * m):
        quad = (dens.weights * dens.nodes**p).sum(axis=1)
        exact = np.array([q @ np.linalg.matrix_power(H, p) @ q for q in qs])
        np.testing.assert_allclose(quad, exact, rtol=0, atol=1e-9 * scale**p, err_msg=f"p={p}")
    # So the first moment is an unbiased estimate of tr H / n, within 3 standard errors.
    per_vector = (dens.weights * dens.nodes).sum(axis=1)
    assert dens.mean == pytest.approx(per_vector.mean(), rel=1e-12)
    stderr = per_vector.std(ddof=1) / np.sqrt(vectors)
    assert abs(dens.mean - np.trace(H) / n) < 3 * stderr + 1e-12
    # The second moment estimates ‖H‖_F² / n the same way.
    second = (dens.weights * dens.nodes**2).sum(axis=1)
    assert abs(second.mean() - (H**2).sum() / n) < 3 * second.std(ddof=1) / np.sqrt(vectors)


def test_slq_with_n_steps_recovers_the_spectrum_and_its_weights():
    H, lam = spd_like(24, seed=3)
    dens = slq(lambda v: H @ v, 24, iterations=24, vectors=2, seed=0, points=200)
    rng = np.random.default_rng(0)
    _, U = np.linalg.eigh(H.numpy())
    for row_nodes, row_weights in zip(dens.nodes, dens.weights, strict=True):
        q = rng.integers(0, 2, 24).astype(np.float64) * 2 - 1
        q /= np.linalg.norm(q)
        np.testing.assert_allclose(row_nodes, lam, atol=1e-10)
        np.testing.assert_allclose(row_weights, (U.T @ q) ** 2, atol=1e-10)
    assert len(dens.grid) == 200


def test_slq_pads_a_run_that_breaks_down():
    Q, _ = np.linalg.qr(np.random.default_rng(5).standard_normal((12, 12)))
    H = torch.tensor(Q @ np.diag(np.repeat([1.0, 3.0], 6)) @ Q.T)
    dens = slq(lambda v: H @ v, 12, iterations=8, vectors=2, seed=0)
    assert dens.nodes.shape == (2, 8) and dens.hvps == 4  # two steps per vector
    np.testing.assert_allclose(dens.weights[:, 2:], 0.0)
    np.testing.assert_allclose(dens.weights.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(np.sort(dens.nodes[:, :2], axis=1), [[1.0, 3.0]] * 2, atol=1e-12)


# --------------------------------------------------------------------------------- trace
def test_hutchinson_on_a_dense_matrix():
    H, _ = spd_like(30, seed=6)
    calls = []

    def hvp(v):
        calls.append(1)
        return H @ v

    s = 300
    tr = hutchinson(hvp, 30, s, seed=2)
    assert tr.method == "hutchinson" and tr.evaluations == s == len(calls)
    # The samples are vᵀHv of the seeded Rademacher draws.
    gen = torch.Generator().manual_seed(2)
    vs = [torch.randint(0, 2, (30,), generator=gen).double() * 2 - 1 for _ in range(s)]
    np.testing.assert_allclose(tr.samples, [float(v @ H @ v) for v in vs], rtol=1e-13)
    exact = float(torch.trace(H))
    assert abs(tr.mean - exact) < 3 * tr.stderr
    Hn = H.numpy()
    theory = np.sqrt(2 * ((Hn**2).sum() - (np.diag(Hn) ** 2).sum()) / s)
    assert 0.8 < tr.stderr / theory < 1.2
    # A diagonal matrix: every Rademacher sample is tr H exactly.
    D = torch.diag(torch.arange(1.0, 6.0, dtype=torch.float64))
    diag = hutchinson(lambda v: D @ v, 5, 4)
    np.testing.assert_allclose(diag.samples, 15.0)
    assert diag.mean == 15.0 and diag.stderr == 0
    with pytest.raises(ValueError, match="at least 2"):
        hutchinson(hvp, 30, 1)


@pytest.mark.parametrize("kind", list(MODELS))
def test_hutchinson_of_the_model_is_the_dense_trace(kind):
    model = MODELS[kind]()
    X, y = data()
    H = reference(model, X, y)
    land = lw.Landscape(model, (X, y), batch_size=4)
    s = 100
    tr = land.hessian.trace("hutchinson", samples=s, seed=1)
    assert tr.smooth is True and tr.nonsmooth_ops == ()
    # Each sample is vᵀHv of the dense H for the seeded Rademacher v.
    gen = torch.Generator().manual_seed(1)
    n = H.shape[0]
    vs = [(torch.randint(0, 2, (n,), generator=gen).double() * 2 - 1).numpy() for _ in range(s)]
    np.testing.assert_allclose(tr.samples, [v @ H @ v for v in vs], rtol=0, atol=ATOL)
    # Their mean is tr H within 4 of the theoretical standard errors.
    theory = np.sqrt(2 * ((H**2).sum() - (np.diag(H) ** 2).sum()) / s)
    assert abs(tr.mean - np.trace(H)) < 4 * theory


def test_projection_trace_over_a_loss_closure():
    """On a quadratic loss ½θᵀAθ the second differences are δᵀAδ at every step."""
    A = spd_like(8, seed=7)[0]
    theta = torch.randn(8, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    evaluated = []

    def loss_along(delta, ts):
        evaluated.append(len(ts))
        d = delta["w"].reshape(-1)
        return np.array([float(0.5 * (theta + t * d) @ A @ (theta + t * d)) for t in ts])

    tr = projection_trace(loss_along, {"w": torch.Size([2, 4])}, 50, h=0.1, seed=3)
    assert evaluated == [5] + [4] * 49 and tr.evaluations == 4 * 50 + 1
    gen = torch.Generator().manual_seed(3)
    ds = [torch.randn(2, 4, generator=gen, dtype=torch.float64).reshape(-1) for _ in range(50)]
    exact = [float(d @ A @ d) for d in ds]
    np.testing.assert_allclose(tr.samples, exact, rtol=1e-9)
    np.testing.assert_allclose(tr.samples_small_h, exact, rtol=1e-7)
    assert list(tr.at_steps) == [0.1, 0.025] and tr.h == 0.1 and tr.converged is True
    assert tr.smooth is None, "smoothness is the caller's to inspect"
    assert abs(tr.mean - float(torch.trace(A))) < 3 * tr.stderr
    for bad in (0.0, float("nan")):
        with pytest.raises(ValueError, match="positive finite"):
            projection_trace(loss_along, {"w": torch.Size([8])}, 3, h=bad)


# --------------------------------------------------------------------------------- no Landscape
@dataclass
class _Batch:
    x: tuple
    y: torch.Tensor
    n: int


class _MinimalEvaluator:
    """Just what curvature needs (see `ls_widget.curvature.protocols.LossEvaluator`)."""

    def __init__(self, model: nn.Module, X, y, batch: int) -> None:
        self.space = ParamSpace(model)
        self._model = copy.deepcopy(model).eval()
        self.batches = [_Batch((X[i : i + batch],), y[i : i + batch], len(y[i : i + batch]))
                        for i in range(0, len(y), batch)]
        self.loss_fn = F.cross_entropy
        self.n_samples = len(y)

    @contextmanager
    def plain(self):
        yield self._model

    def bind(self, directions):
        raise AssertionError("not needed by these calls")


def test_curvature_needs_only_an_evaluator_and_names():
    model = bn_mlp()
    X, y = data()
    H = reference(model, X, y)
    ev = _MinimalEvaluator(model, X, y, batch=5)
    names = select_params(ev.space, None)
    assert names == [n for n, _ in model.named_parameters()]
    hess = Hessian(ev, names)
    np.testing.assert_allclose(hess.operator().dense(), H, rtol=0, atol=ATOL)
    w = np.sort(np.linalg.eigvalsh(H))[::-1]
    np.testing.assert_allclose(hess.eigen(k=1).values, w[[0, -1]], rtol=1e-6)
    assert hess.trace("hutchinson", samples=3).smooth is True
    # Restriction by names: the sub-block of H.
    sub = select_params(ev.space, "biasbn", trainable=names)
    assert sub == ["0.weight", "3.weight"]
    idx = np.concatenate([np.arange(0, 20), np.arange(35, 50)])
    np.testing.assert_allclose(Hessian(ev, sub).operator().dense(), H[np.ix_(idx, idx)],
                               atol=ATOL)
    with pytest.raises(ValueError, match="unknown parameter names"):
        Hessian(ev, ["nope"])
