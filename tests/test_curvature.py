"""Curvature: Hessian-vector products, eigenpairs, trace, spectral density, restriction, maps.

Analytic first: a quadratic loss ½(θ − θ*)ᵀH(θ − θ*) + c (= ½θᵀHθ + gᵀθ + const) with a known
symmetric H of chosen spectrum, where every quantity has a closed form; then tiny float64 MLPs
whose dense Hessian `torch.func.hessian` gives exactly. Every call must leave the model
bit-identical; bad inputs must fail with messages that say what to do.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import Quadratic, assert_unchanged, lw, make_quadratic_loss, snapshot
from scipy.sparse.linalg import eigsh
from torch import nn
from torch.func import functional_call

from ls_widget.curvature import HessianOperator

# A spectrum with gaps at both ends (so eigenvectors are well defined) and negative values.
SPECTRUM = np.concatenate([[6.0, 4.5, 3.2], np.linspace(-1.0, 2.0, 24), [-1.8, -2.7, -4.0]])


# --------------------------------------------------------------------------------- builders
def quadratic(lam: np.ndarray, seed: int = 0):
    """(model, data, loss, H) for the loss ½(θ − θ*)ᵀH(θ − θ*) + 0.5 with spec(H) = lam."""
    n = len(lam)
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    H = Q @ np.diag(lam) @ Q.T
    H = (H + H.T) / 2
    theta_star = torch.tensor(rng.standard_normal(n))
    model = Quadratic(theta_star + 0.3 * torch.tensor(rng.standard_normal(n)))
    X = torch.zeros(4, 1, dtype=torch.float64)
    Y = theta_star.expand(4, n).clone()
    return model, (X, Y), make_quadratic_loss(torch.tensor(H), 0.5), H


def quad_land(lam: np.ndarray = SPECTRUM, seed: int = 0):
    model, data, loss, H = quadratic(lam, seed)
    return lw.Landscape(model, data, loss), model, H


def tiny_mlp(seed: int = 0, sizes=(3, 4, 2)) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(sizes[0], sizes[1]), nn.Tanh(), nn.Linear(sizes[1], sizes[2])
    ).double()


def tiny_data(seed: int = 0, n: int = 7, d: int = 3, classes: int = 2):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = torch.randint(0, classes, (n,), generator=g)
    return X, y


def dense_hessian(model, X, y, names=None, shift=None, loss_fn=F.cross_entropy) -> np.ndarray:
    """Reference: torch.func.hessian of the eval-mode mean loss w.r.t. the flattened `names`
    (all parameters by default) at θ₀ (+ `shift`, a {name: tensor} displacement)."""
    m = copy.deepcopy(model).eval()
    params = {n: p.detach().clone() for n, p in m.named_parameters()}
    if shift is not None:
        params = {n: t + shift[n] for n, t in params.items()}
    buffers = {n: b.detach().clone() for n, b in m.named_buffers()}
    names = list(params) if names is None else list(names)
    shapes = [params[n].shape for n in names]
    sizes = [params[n].numel() for n in names]

    def f(flat: torch.Tensor) -> torch.Tensor:
        p, off = dict(params), 0
        for n, shape, size in zip(names, shapes, sizes, strict=True):
            p[n] = flat[off : off + size].view(shape)
            off += size
        return loss_fn(functional_call(m, (p, buffers), (X,)), y)

    flat0 = torch.cat([params[n].reshape(-1) for n in names])
    return torch.func.hessian(f)(flat0).detach().numpy()


def flat(d, names=None) -> np.ndarray:
    names = list(d) if names is None else names
    return torch.cat([d[n].reshape(-1) for n in names]).double().numpy()


@pytest.fixture
def hvp_calls(monkeypatch) -> list[int]:
    """Counts every real HessianOperator.hvp call (to check the reported counts)."""
    calls: list[int] = []
    original = HessianOperator.hvp

    def counting(self, v):
        calls.append(1)
        return original(self, v)

    monkeypatch.setattr(HessianOperator, "hvp", counting)
    return calls


def fd_hessian_2d(surface) -> np.ndarray:
    """Second differences of a plane's loss grid at its centre (odd n, symmetric span)."""
    Z = surface.values["loss"]
    hx, hy = surface.x[1] - surface.x[0], surface.y[1] - surface.y[0]
    i, j = len(surface.y) // 2, len(surface.x) // 2
    fxx = (Z[i, j + 1] - 2 * Z[i, j] + Z[i, j - 1]) / hx**2
    fyy = (Z[i + 1, j] - 2 * Z[i, j] + Z[i - 1, j]) / hy**2
    fxy = (Z[i + 1, j + 1] - Z[i + 1, j - 1] - Z[i - 1, j + 1] + Z[i - 1, j - 1]) / (4 * hx * hy)
    return np.array([[fxx, fxy], [fxy, fyy]])


# --------------------------------------------------------------------------------- quadratic
def test_quadratic_hvp_is_H_v():
    land, _, H = quad_land()
    op = land.hessian.operator()
    assert op.n == len(SPECTRUM) and op.names == ["theta"]
    rng = np.random.default_rng(1)
    scale = np.abs(SPECTRUM).max()
    for _ in range(3):
        v = rng.standard_normal(op.n)
        hv = op.hvp(torch.tensor(v)).numpy()
        np.testing.assert_allclose(hv, H @ v, rtol=0, atol=1e-12 * scale * np.linalg.norm(v))
        np.testing.assert_allclose(op.matvec(v), H @ v, rtol=0, atol=1e-12 * scale * 10)
    np.testing.assert_allclose(op.dense(), H, rtol=0, atol=1e-12 * scale)
    assert op.hvps == 6 + op.n
    # Displaced along a direction, a quadratic's Hessian is the same H.
    d = lw.directions.random(land.model, 3, norm=None, ignore=None)
    moved = land.hessian.operator([d], [0.7])
    np.testing.assert_allclose(moved.dense(), H, rtol=0, atol=1e-12 * scale)


@pytest.mark.parametrize("which", ["top", "bottom", "both"])
def test_quadratic_eigenpairs_match_eigh(which, hvp_calls):
    land, _, H = quad_land()
    w, V = np.linalg.eigh(H)  # ascending
    w, V = w[::-1], V[:, ::-1]  # descending
    idx = {"top": [0, 1, 2], "bottom": [-3, -2, -1], "both": [0, 1, 2, -3, -2, -1]}[which]
    eig = land.hessian.eigen(k=3, which=which)
    assert eig.which == which and len(eig) == len(idx) == len(eig.vectors)
    np.testing.assert_allclose(eig.values, w[idx], rtol=1e-6, atol=0)
    assert np.all(np.diff(eig.values) < 0), "values must come back descending"
    for lam, vec, ref in zip(eig.values, eig.vectors, V[:, idx].T, strict=True):
        assert isinstance(vec, lw.Direction)
        assert set(vec) == {"theta"}
        assert vec.norm() == pytest.approx(1.0, abs=1e-10)
        v = flat(vec)
        assert abs(v @ ref) > 1 - 1e-6, "eigenvector does not match eigh (up to sign)"
        prov = vec.provenance
        assert prov["kind"] == "hessian"
        assert "λ" in vec.label
        assert prov["eigenvalue"] == pytest.approx(lam, rel=1e-12)
    # Residuals: reported ‖Hv − λv‖, small, and what they claim to be.
    true_res = [np.linalg.norm(H @ flat(d) - lam * flat(d)) for lam, d in
                zip(eig.values, eig.vectors, strict=True)]
    np.testing.assert_allclose(eig.residuals, true_res, rtol=0, atol=1e-10)
    assert np.all(eig.residuals < 1e-6 * np.abs(SPECTRUM).max())
    # HVPs: the count is real (every call counted), includes one residual check per pair,
    # and is plausible for Lanczos on 30 dimensions (far fewer than, say, 10 per dimension).
    assert eig.hvps == len(hvp_calls)
    assert len(eig) < eig.hvps < 10 * len(SPECTRUM)
    # Cached per arguments: asking again costs nothing and returns the same record.
    n_before = len(hvp_calls)
    assert land.hessian.eigen(k=3, which=which) is eig
    assert len(hvp_calls) == n_before


def test_residuals_are_true_and_bound_the_error_at_a_loose_tolerance():
    """With a loose tol the Ritz pairs are inexact: the reported residual is ‖Hv − λv‖ of the
    returned (unit) vector, and each value lies within its residual of a true eigenvalue."""
    lam = np.concatenate([[6.0, 5.9], np.linspace(-1.0, 5.5, 60), [-1.2]])
    land, _, H = quad_land(lam)
    w = np.linalg.eigvalsh(H)
    eig = land.hessian.eigen(k=1, which="both", tol=1e-2)
    true_res = [np.linalg.norm(H @ flat(d) - lam_ * flat(d)) for lam_, d in
                zip(eig.values, eig.vectors, strict=True)]
    assert max(true_res) > 1e-8, "the case should leave visible residuals"
    np.testing.assert_allclose(eig.residuals, true_res, rtol=1e-6, atol=1e-14)
    for lam_, r in zip(eig.values, eig.residuals, strict=True):
        assert np.min(np.abs(w - lam_)) <= r * (1 + 1e-9)


def test_eigen_k_near_or_beyond_half_the_dimension():
    """The dense branch (k ≥ N − 1) and overlapping ends (2k > N) give every pair once."""
    land, _, H = quad_land()
    n = len(SPECTRUM)
    w = np.sort(np.linalg.eigvalsh(H))[::-1]
    for k, which, expect in [
        (n, "top", w),
        (n - 1, "top", w[: n - 1]),
        (n - 1, "bottom", w[1:]),
        (n, "both", w),
        (20, "both", w),  # 20 + 20 > 30: both ends overlap, duplicates dropped
        (15, "both", w),  # exactly meeting in the middle
    ]:
        eig = land.hessian.eigen(k=k, which=which)
        np.testing.assert_allclose(eig.values, expect, rtol=1e-6, atol=1e-9,
                                   err_msg=f"k={k}, which={which}")
        vecs = np.stack([flat(d) for d in eig.vectors], axis=1)
        np.testing.assert_allclose(vecs.T @ vecs, np.eye(len(expect)), atol=1e-6)


def test_smallest_eigenvalue_of_a_positive_definite_H():
    """spec(H) in [1, 10]: the reference code's shift by 0.51·λmax finds λmax again (the
    largest-magnitude eigenvalue of H − 5.1 I is 10 − 5.1 = 4.9 > |1 − 5.1| = 4.1); ours
    (shift by λmax: spec(H − 10 I) ⊂ [−9, 0]) finds λmin = 1."""
    rng = np.random.default_rng(5)
    lam = np.concatenate([[10.0, 1.0], rng.uniform(3.0, 9.0, 28)])
    land, _, H = quad_land(lam, seed=2)
    # The case discriminates: the 0.51·λmax shift returns something other than λmin.
    sigma = 0.51 * 10.0
    mu = eigsh(H - sigma * np.eye(len(lam)), k=1, which="LM")[0][0]
    assert abs(mu + sigma - 1.0) > 1.0
    bottom = land.hessian.eigen(k=1, which="bottom")
    assert bottom.values[0] == pytest.approx(1.0, rel=1e-6)
    both = land.hessian.eigen(k=2, which="both")
    np.testing.assert_allclose(both.values, np.sort(lam)[::-1][[0, 1, -2, -1]], rtol=1e-6)
    # Negative definite: λmax < 0, the shifted operator still has the right end.
    land_neg, _, _ = quad_land(-lam, seed=2)
    np.testing.assert_allclose(land_neg.hessian.eigen(k=1, which="both").values,
                               [-1.0, -10.0], rtol=1e-6)


def test_zero_hessian():
    """A loss flat in the selected parameters (H = 0: dead ReLUs, parameters the loss does not
    use) has eigenvalues 0, not an ARPACK error."""
    land, _, _ = quad_land(np.zeros(12))
    eig = land.hessian.eigen(k=1, which="both")
    assert np.all(eig.values == 0) and np.all(eig.residuals == 0)
    for vec in eig.vectors:
        assert vec.norm() == pytest.approx(1.0)
    assert land.hessian.trace("hutchinson", samples=3).mean == 0


def test_trace_estimators_on_the_quadratic(hvp_calls):
    land, _, H = quad_land()
    tr = float(np.trace(H))
    fro2 = float((H**2).sum())
    s = 200
    hut = land.hessian.trace("hutchinson", samples=s, seed=0)
    assert hut.method == "hutchinson" and len(hut.samples) == s
    assert abs(hut.mean - tr) < 3 * hut.stderr, (hut.mean, tr, hut.stderr)
    assert hut.evaluations == s == len(hvp_calls), "Hutchinson uses one HVP per sample"
    # Its spread is the theoretical one: Var vᵀHv = 2(‖H‖_F² − Σ Hᵢᵢ²) for Rademacher v.
    theory = np.sqrt(2 * (fro2 - (np.diag(H) ** 2).sum()) / s)
    assert 0.7 < hut.stderr / theory < 1.3
    assert hut.stderr == pytest.approx(np.std(hut.samples, ddof=1) / np.sqrt(s), rel=1e-12)
    assert hut.mean == pytest.approx(np.mean(hut.samples), rel=1e-12)

    hvp_calls.clear()
    proj = land.hessian.trace("projection", samples=s, seed=0)
    assert proj.method == "projection" and len(proj.samples) == s
    assert abs(proj.mean - tr) < 3 * proj.stderr, (proj.mean, tr, proj.stderr)
    assert proj.evaluations == 4 * s + 1  # ±h and ±h/4 per direction, the centre once
    assert not hvp_calls, "the projection estimate must use loss values only"
    # Gaussian δ: Var δᵀHδ = 2‖H‖_F².
    assert 0.7 < proj.stderr / np.sqrt(2 * fro2 / s) < 1.3
    # A trace large against ‖H‖_F pins the estimators down to a few per cent.
    near_identity = np.random.default_rng(7).uniform(0.8, 1.2, len(SPECTRUM))
    land_i, _, H_i = quad_land(near_identity, seed=3)
    tr_i = float(np.trace(H_i))
    for method in ("hutchinson", "projection"):
        est = land_i.hessian.trace(method, samples=400, seed=1)
        assert abs(est.mean - tr_i) < 3 * est.stderr < 0.05 * tr_i, (method, est, tr_i)
    # Seeded: the same seed gives the same estimate, another seed another one.
    assert land.hessian.trace("hutchinson", samples=s, seed=0).mean == hut.mean
    assert land.hessian.trace("projection", samples=5, seed=1).mean != proj.mean


def test_slq_density_on_the_quadratic(hvp_calls):
    land, _, H = quad_land()
    n = len(SPECTRUM)
    lam = np.sort(SPECTRUM)
    vectors, seed = 12, 3
    dens = land.hessian.density(iterations=n, vectors=vectors, seed=seed)
    assert dens.hvps == vectors * n == len(hvp_calls)
    assert np.trapezoid(dens.density, dens.grid) == pytest.approx(1.0, abs=1e-6)
    assert np.all(dens.density >= 0)
    np.testing.assert_allclose(dens.weights.sum(axis=1), 1.0, atol=1e-10)
    # N steps with full reorthogonalization: the nodes are the whole spectrum.
    for row in dens.nodes:
        np.testing.assert_allclose(np.sort(row), lam, atol=1e-8)
    # The first moment is the average over the Rademacher v of vᵀHv/‖v‖² = vᵀHv/N, exactly.
    rng = np.random.default_rng(seed)
    vs = [rng.integers(0, 2, n).astype(np.float64) * 2 - 1 for _ in range(vectors)]
    per_vector = np.array([v @ H @ v / n for v in vs])
    np.testing.assert_allclose((dens.nodes * dens.weights).sum(axis=1), per_vector, atol=1e-10)
    assert dens.mean == pytest.approx(per_vector.mean(), abs=1e-10)
    # ... hence an unbiased estimate of tr H / N, within 3 standard errors of its spread.
    stderr = per_vector.std(ddof=1) / np.sqrt(vectors)
    assert abs(dens.mean - np.trace(H) / n) < 3 * stderr
    # Fewer steps than N: still a probability density, the first moment still exact.
    short = land.hessian.density(iterations=6, vectors=vectors, seed=seed)
    assert short.nodes.shape == (vectors, 6)
    assert np.trapezoid(short.density, short.grid) == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose((short.nodes * short.weights).sum(axis=1), per_vector,
                               atol=1e-10)
    assert short.nodes.min() >= lam[0] - 1e-8 and short.nodes.max() <= lam[-1] + 1e-8


# --------------------------------------------------------------------------------- tiny MLP
def test_tiny_mlp_hvp_matches_torch_func_hessian():
    model = tiny_mlp()
    X, y = tiny_data()
    Href = dense_hessian(model, X, y)
    # Several batches (3 + 3 + 1 samples): the batch-size-weighted sum is the mean loss's H.
    land = lw.Landscape(model, (X, y), batch_size=3)
    op = land.hessian.operator()
    assert op.n == Href.shape[0] == 26
    rng = np.random.default_rng(0)
    for _ in range(3):
        v = rng.standard_normal(op.n)
        np.testing.assert_allclose(op.hvp(torch.tensor(v)).numpy(), Href @ v, rtol=0,
                                   atol=1e-10)
    np.testing.assert_allclose(op.dense(), Href, rtol=0, atol=1e-10)
    # And the eigenpairs of this H are those of the dense matrix.
    w = np.sort(np.linalg.eigvalsh(Href))[::-1]
    eig = land.hessian.eigen(k=2, which="both")
    np.testing.assert_allclose(eig.values, w[[0, 1, -2, -1]], rtol=1e-6, atol=1e-9)


class _CustomTanh(torch.autograd.Function):
    """tanh with a hand-written backward and no forward-mode rule."""

    @staticmethod
    def forward(ctx, x):
        out = torch.tanh(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_tensors
        return g * (1 - out * out)


class _TinyCustom(nn.Module):
    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.a = nn.Linear(3, 4)
        self.b = nn.Linear(4, 2)

    def forward(self, x):
        return self.b(_CustomTanh.apply(self.a(x)))


def test_an_op_without_a_forward_mode_rule():
    model = _TinyCustom().double()
    X, y = tiny_data()
    twin = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    twin.load_state_dict({"0.weight": model.a.weight, "0.bias": model.a.bias,
                          "2.weight": model.b.weight, "2.bias": model.b.bias})
    Href = dense_hessian(twin, X, y)
    op = lw.Landscape(model, (X, y)).hessian.operator()
    np.testing.assert_allclose(op.dense(), Href, rtol=0, atol=1e-10)


def test_double_backward_with_an_unused_parameter():
    """A parameter the loss does not depend on has zero rows in H, in both HVP modes."""

    class WithSpare(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = tiny_mlp()
            self.spare = nn.Linear(2, 2).double()  # defined, never used in forward

        def forward(self, x):
            return self.net(x)

    model = WithSpare()
    X, y = tiny_data()
    Href = dense_hessian(model, X, y)
    land = lw.Landscape(model, (X, y))
    np.testing.assert_allclose(land.hessian.operator().dense(), Href, rtol=0, atol=1e-10)


# --------------------------------------------------------------------------------- restriction
def test_restriction_biasbn_direction_and_frozen():
    model = tiny_mlp(1, sizes=(3, 5, 3))
    X, y = tiny_data(1, classes=3)
    model[0].bias.requires_grad_(False)  # frozen: excluded by default
    land = lw.Landscape(model, (X, y))
    all_names = [n for n, _ in model.named_parameters()]
    Hall = dense_hessian(model, X, y)  # over every parameter, frozen included
    offsets = np.cumsum([0] + [p.numel() for p in model.parameters()])
    index = {n: np.arange(offsets[i], offsets[i + 1]) for i, n in enumerate(all_names)}

    def sub(names):
        idx = np.concatenate([index[n] for n in names])
        return Hall[np.ix_(idx, idx)]

    default = land.hessian
    assert default.names == ["0.weight", "2.weight", "2.bias"]
    assert default.size == 15 + 15 + 3
    np.testing.assert_allclose(default.operator().dense(), sub(default.names), atol=1e-10)

    biasbn = land.hessian_over("biasbn")
    assert biasbn.names == ["0.weight", "2.weight"]
    assert biasbn.size == sum(p.numel() for p in model.parameters() if p.dim() > 1)
    np.testing.assert_allclose(biasbn.operator().dense(), sub(biasbn.names), atol=1e-10)

    # A direction: the tensors it moves (here one weight and the frozen bias).
    tensors = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    tensors["2.weight"] = torch.randn_like(tensors["2.weight"])
    tensors["0.bias"] = torch.randn_like(tensors["0.bias"])
    d = lw.Direction(tensors)
    over_d = land.hessian_over(d)
    assert over_d.names == ["0.bias", "2.weight"]
    np.testing.assert_allclose(over_d.operator().dense(), sub(over_d.names), atol=1e-10)
    # Eigenvectors live in the selected tensors; the others are zero.
    eig = over_d.eigen(k=1, which="both")
    for vec in eig.vectors:
        assert set(vec) == set(all_names)
        for n in ("0.weight", "2.bias"):
            assert not vec[n].any()
    w = np.sort(np.linalg.eigvalsh(sub(over_d.names)))[::-1]
    np.testing.assert_allclose(eig.values, w[[0, -1]], rtol=1e-6, atol=1e-9)

    # Li et al.'s filter-normalized directions ignore biases: hessian_over(d) matches "biasbn"
    # (over the parameters that require grad; the frozen bias is ignored anyway).
    rnd = lw.directions.random(model, 0)
    assert land.hessian_over(rnd).names == ["0.weight", "2.weight"]
    # A list of names.
    assert land.hessian_over(["2.bias", "0.weight"]).names == ["2.bias", "0.weight"]


# --------------------------------------------------------------------------------- B & W 2022
def test_random_plane_shows_a_minimum_hessian_plane_shows_the_saddle():
    """Böttcher & Wheeler: a saddle with tr H > 0 looks like a minimum along random Gaussian
    directions (E H₂ = tr H · I), and like the saddle it is along (v_max, v_min)."""
    rng = np.random.default_rng(1)
    lam = np.concatenate([[5.0, 4.0, 3.0, 2.0, 1.0, -1.0, -2.0], rng.uniform(0.3, 0.8, 43)])
    land, model, H = quad_land(lam, seed=4)
    tr = float(np.trace(H))
    assert tr > 0 and lam.min() < 0
    minima, diag = 0, []
    seeds = range(12)
    for s in seeds:
        d1 = lw.directions.random(model, 2 * s, norm=None, ignore=None)
        d2 = lw.directions.random(model, 2 * s + 1, norm=None, ignore=None)
        H2 = fd_hessian_2d(land.plane(d1, d2, span=0.5, n=5))
        a, b = flat(d1), flat(d2)
        exact = np.array([[a @ H @ a, a @ H @ b], [b @ H @ a, b @ H @ b]])
        np.testing.assert_allclose(H2, exact, rtol=1e-6, atol=1e-6 * tr)
        minima += bool(np.linalg.eigvalsh(H2).min() > 0)
        diag += [H2[0, 0], H2[1, 1]]
    assert minima >= 10, f"only {minima}/12 random planes show a minimum"
    # The projected curvature is tr H on average (σ = 1): within 3 standard errors.
    assert abs(np.mean(diag) - tr) < 3 * np.std(diag, ddof=1) / np.sqrt(len(diag))

    eig = land.hessian.eigen(k=1, which="both")
    np.testing.assert_allclose(eig.values, [5.0, -2.0], rtol=1e-6)
    v_max, v_min = eig.vectors
    H2 = fd_hessian_2d(land.plane(v_max, v_min, span=1.0, n=5))
    np.testing.assert_allclose(H2, np.diag([5.0, -2.0]), atol=1e-6)
    e = np.linalg.eigvalsh(H2)
    assert e[0] < 0 < e[1], "the Hessian plane must show a saddle"


# --------------------------------------------------------------------------------- maps
def _grid_points(surface):
    return [(i, j) for i in range(len(surface.y)) for j in range(len(surface.x))]


def test_curvature_map_on_the_quadratic_is_constant():
    land, model, _ = quad_land()
    lmax, lmin = SPECTRUM.max(), SPECTRUM.min()
    d1 = lw.directions.random(model, 0, norm=None, ignore=None)
    d2 = lw.directions.random(model, 1, norm=None, ignore=None)
    surf = land.curvature_map(d1, d2, span=1.0, n=3)
    assert set(surf.values) >= {"ratio", "signed_ratio", "lambda_max", "lambda_min"}
    for m in surf.values:
        assert surf.values[m].shape == (3, 3)
    np.testing.assert_allclose(surf.values["lambda_max"], lmax, rtol=1e-6)
    np.testing.assert_allclose(surf.values["lambda_min"], lmin, rtol=1e-6)
    np.testing.assert_allclose(surf.values["ratio"], abs(lmin / lmax), rtol=1e-6)
    np.testing.assert_allclose(surf.values["signed_ratio"], lmin / lmax, rtol=1e-6)
    np.testing.assert_allclose(surf.x, [-1, 0, 1])


def test_curvature_stream_covers_every_point_once():
    # A 2-parameter saddle keeps each point cheap; a 9×7 grid has several levels.
    land, model, _ = quad_land(np.array([3.0, -1.5]))
    d1 = lw.directions.random(model, 0, norm=None, ignore=None)
    d2 = lw.directions.random(model, 1, norm=None, ignore=None)
    tiles = list(land.curvature_stream(d1, d2, span=1.0, n=(9, 7)))
    assert len({t.level for t in tiles}) > 1
    seen = [(int(r), int(c)) for t in tiles for r, c in zip(t.rows, t.cols, strict=True)]
    assert len(seen) == len(set(seen)) == 63
    assert set(seen) == {(i, j) for i in range(7) for j in range(9)}
    for t in tiles:
        assert t.exact
        np.testing.assert_allclose(t.values["lambda_max"], 3.0, rtol=1e-9)
        np.testing.assert_allclose(t.values["signed_ratio"], -0.5, rtol=1e-9)
    assert [t.done for t in tiles] == sorted(t.done for t in tiles)
    assert tiles[-1].done == pytest.approx(1.0)


def test_curvature_map_on_a_tiny_mlp_matches_dense_hessians():
    model = tiny_mlp(2)
    X, y = tiny_data(2)
    land = lw.Landscape(model, (X, y))
    d1 = lw.directions.random(model, 0)
    d2 = lw.directions.random(model, 1)
    span = 0.5
    surf = land.curvature_map(d1, d2, span=span, n=3)
    for m in ("ratio", "signed_ratio", "lambda_max", "lambda_min"):
        assert surf.values[m].shape == (3, 3)
        assert np.all(np.isfinite(surf.values[m])), m
    for i, j in _grid_points(surf):
        a, b = surf.x[j], surf.y[i]
        shift = {n: a * d1[n] + b * d2[n] for n in d1}
        w = np.linalg.eigvalsh(dense_hessian(model, X, y, shift=shift))
        assert surf.values["lambda_max"][i, j] == pytest.approx(w[-1], rel=1e-6)
        assert abs(surf.values["lambda_min"][i, j] - w[0]) < 1e-6 * abs(w[-1])
        assert surf.values["signed_ratio"][i, j] == pytest.approx(w[0] / w[-1], abs=1e-6)
        assert surf.values["ratio"][i, j] == pytest.approx(abs(w[0] / w[-1]), abs=1e-6)


# --------------------------------------------------------------------------------- safety
class _BNDropout(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(
            nn.Linear(5, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Dropout(0.3), nn.Linear(6, 3)
        )

    def forward(self, x):
        return self.body(x)


def test_model_bit_identical_after_every_call():
    model = _BNDropout().double()
    g = torch.Generator().manual_seed(0)
    X = torch.randn(16, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (16,), generator=g)
    with torch.no_grad():
        model.train()
        for _ in range(3):
            model(X)  # non-trivial BN running statistics
    model.body[0].bias.requires_grad_(False)  # a frozen parameter
    model.body[4].weight.grad = torch.full_like(model.body[4].weight, 0.25)
    assert model.training
    snap = snapshot(model)

    land = lw.Landscape(model, (X, y))
    assert_unchanged(model, snap)
    hess = land.hessian
    assert "body.0.bias" not in hess.names
    d1 = lw.directions.random(model, 0)
    d2 = lw.directions.random(model, 1)
    calls = [
        lambda: hess.eigen(k=1, which="both"),
        lambda: hess.eigen(k=1, which="top"),
        lambda: hess.trace("hutchinson", samples=3),
        lambda: hess.trace("projection", samples=3),
        lambda: hess.density(iterations=8, vectors=2),
        lambda: land.curvature_map(d1, d2, span=0.5, n=2),
        lambda: list(land.curvature_stream(d1, d2, span=0.5, n=2, params="biasbn")),
        lambda: land.hessian_over("biasbn").eigen(k=1, which="both"),
        lambda: land.hessian_over(d1).trace("hutchinson", samples=2),
        lambda: hess.operator([d1], [0.3]).dense(),
    ]
    for call in calls:
        call()
        assert_unchanged(model, snap)
    assert model.body[4].weight.grad is snap["grads"]["body.4.weight"]

    # H is that of the eval-mode loss (running statistics, no dropout): deterministic.
    Href = dense_hessian(model, X, y, names=hess.names)
    D1, D2 = hess.operator().dense(), hess.operator().dense()
    np.testing.assert_array_equal(D1, D2)
    np.testing.assert_allclose(D1, Href, rtol=0, atol=1e-10)
    assert_unchanged(model, snap)


# --------------------------------------------------------------------------------- errors
def test_bad_inputs_give_clear_errors():
    land, _, _ = quad_land()
    n = len(SPECTRUM)
    with pytest.raises(ValueError, match=rf"k={n + 1}.*\b{n}\b"):
        land.hessian.eigen(k=n + 1)
    for k in (0, -2, 2.5, True):
        with pytest.raises(ValueError, match="positive int"):
            land.hessian.eigen(k=k)
    with pytest.raises(ValueError, match="'top', 'bottom' or 'both'"):
        land.hessian.eigen(k=1, which="middle")
    with pytest.raises(ValueError, match=r"hutchinson.*projection"):
        land.hessian.trace(method="exact")
    for method in ("hutchinson", "projection"):
        with pytest.raises(ValueError, match="at least 2"):
            land.hessian.trace(method=method, samples=1)
    with pytest.raises(ValueError, match=r"unknown parameter names.*nope"):
        land.hessian_over(["theta", "nope"])
    with pytest.raises(ValueError, match="biasbn"):
        land.hessian_over("weights")
    with pytest.raises(ValueError, match="does not match"):
        land.hessian_over(lw.Direction({"other": torch.zeros(3)}))


def test_a_model_with_nothing_trainable_uses_every_parameter():
    # As the directions do (`lw.directions.random`): a fully frozen copy moves every tensor,
    # so the default Hessian is over all of them rather than over nothing.
    model = tiny_mlp()
    X, y = tiny_data()
    for p in model.parameters():
        p.requires_grad_(False)
    land = lw.Landscape(model, (X, y))
    n = sum(p.numel() for p in model.parameters())
    assert land.hessian.size == n
    d = lw.directions.random(model, 0)
    assert all(bool(d[name].any()) for name, _ in model.named_parameters() if _.dim() > 1)
    eig = land.hessian.eigen(k=1)
    assert np.isfinite(eig.values).all()
    # Naming the parameters explicitly still works.
    assert land.hessian_over(["0.weight"]).size == 12


def test_density_rejects_empty_requests():
    land, _, _ = quad_land()
    with pytest.raises(ValueError, match="vectors"):
        land.hessian.density(vectors=0)
    with pytest.raises(ValueError, match="iterations"):
        land.hessian.density(iterations=0)
