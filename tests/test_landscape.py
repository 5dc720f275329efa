"""Surfaces and curves: closed forms, a naive reference, strategies, dtype, grids, streams."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import (
    cnn_bn,
    flatten_mlp,
    grid_coeffs,
    lw,
    make_quadratic_loss,
    mlp,
    naive_eval,
    quad_setup,
    train,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


# --------------------------------------------------------------------------------- closed form
def quad_closed_form(theta0, A, theta_star, c, dirs, coeffs):
    out = []
    for cs in coeffs:
        th = theta0.clone()
        for ck, d in zip(cs, dirs, strict=True):
            th = th + ck * d
        r = th - theta_star
        out.append(float(0.5 * r @ A @ r + c))
    return np.array(out)


def quad_dirs(n, seed=10):
    g = torch.Generator().manual_seed(seed)
    v1 = torch.randn(n, generator=g, dtype=torch.float64)
    v2 = 0.4 * v1 + torch.randn(n, generator=g, dtype=torch.float64)  # not orthogonal
    return v1, v2


@pytest.mark.parametrize("strategy", ["loop", "vmap"])
def test_quadratic_line_matches_closed_form(strategy, device):
    model, data, loss, A, ts, c = quad_setup(device=device)
    v1, _ = quad_dirs(6)
    land = lw.Landscape(model, data, loss=loss, strategy=strategy)
    d = lw.Direction({"theta": v1})
    curve = land.line(d, span=(-1.5, 2.0), n=11)
    assert curve.x.shape == (11,)
    assert curve.x[0] == -1.5 and curve.x[-1] == 2.0
    want = quad_closed_form(model.theta.detach().cpu(), A, ts, c, [v1], grid_coeffs(curve.x))
    np.testing.assert_allclose(curve["loss"], want, rtol=1e-10, atol=0)


@pytest.mark.parametrize("strategy", ["loop", "vmap"])
def test_quadratic_plane_matches_closed_form(strategy, device):
    model, data, loss, A, ts, c = quad_setup(device=device)
    v1, v2 = quad_dirs(6)
    land = lw.Landscape(model, data, loss=loss, strategy=strategy)
    d1, d2 = lw.Direction({"theta": v1}), lw.Direction({"theta": v2})
    # Non-square grid, different ranges per axis: checks Z[i, j] is at (x[j], y[i]).
    surf = land.plane(d1, d2, span=((-1.0, 2.0), (-0.5, 0.25)), n=(7, 5))
    assert surf.x.shape == (7,) and surf.y.shape == (5,)
    assert surf["loss"].shape == (5, 7)
    want = quad_closed_form(
        model.theta.detach().cpu(), A, ts, c, [v1, v2], grid_coeffs(surf.x, surf.y)
    ).reshape(5, 7)
    np.testing.assert_allclose(surf["loss"], want, rtol=1e-10, atol=0)


def test_quadratic_with_normless_random_directions():
    model, data, loss, A, ts, c = quad_setup()
    land = lw.Landscape(model, data, loss=loss)
    d1 = lw.directions.random(model, seed=3, norm=None, ignore=None)
    d2 = lw.directions.random(model, seed=4, norm=None, ignore=None)
    surf = land.plane(d1, d2, span=0.5, n=5)
    want = quad_closed_form(
        model.theta.detach(), A, ts, c, [d1["theta"], d2["theta"]],
        grid_coeffs(surf.x, surf.y),
    ).reshape(5, 5)
    np.testing.assert_allclose(surf["loss"], want, rtol=1e-10, atol=0)


def test_quadratic_evaluate_arbitrary_points():
    model, data, loss, A, ts, c = quad_setup()
    v1, v2 = quad_dirs(6)
    land = lw.Landscape(model, data, loss=loss)
    dirs = [lw.Direction({"theta": v1}), lw.Direction({"theta": v2})]
    pts = np.array([[0.0, 0.0], [0.3, -2.0], [-1e-3, 5.0]])
    got = land.evaluate(dirs, pts)["loss"]
    want = quad_closed_form(model.theta.detach(), A, ts, c, [v1, v2], pts.tolist())
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=0)


def test_quadratic_adaptive_within_tolerance():
    """A smooth quadratic: adaptive skips points and stays within tol × the value range."""
    model, data, loss, A, ts, c = quad_setup()
    v1, v2 = quad_dirs(6)
    land = lw.Landscape(model, data, loss=loss)
    d1, d2 = lw.Direction({"theta": v1}), lw.Direction({"theta": v2})
    surf = land.plane(d1, d2, span=1, n=17, adaptive=True, tol=0.01)
    want = quad_closed_form(
        model.theta.detach(), A, ts, c, [v1, v2], grid_coeffs(surf.x, surf.y)
    ).reshape(17, 17)
    assert surf.evaluated.sum() < surf.evaluated.size
    vrange = np.ptp(want)
    assert np.max(np.abs(surf["loss"] - want)) <= 0.01 * vrange
    # Evaluated points are exact.
    np.testing.assert_allclose(surf["loss"][surf.evaluated], want[surf.evaluated], rtol=1e-10)


# --------------------------------------------------------------------------------- reference
def _check_against_reference(model, data, d1, d2, span=1.0, n=5, strategy="auto", metrics=None,
                             rtol=1e-5, atol=1e-5):
    land = lw.Landscape(model, data, metrics=metrics, strategy=strategy)
    surf = land.plane(d1, d2, span=span, n=n)
    ref = naive_eval(model, data, F.cross_entropy, [d1, d2], grid_coeffs(surf.x, surf.y),
                     metrics=metrics)
    for name, want in ref.items():
        np.testing.assert_allclose(surf[name].reshape(-1), want, rtol=rtol, atol=atol,
                                   err_msg=name)
    return land, surf


def test_mlp_matches_naive_reference(trained_mlp, digits):
    d1 = lw.directions.random(trained_mlp, seed=0)
    d2 = lw.directions.random(trained_mlp, seed=1)
    land, _ = _check_against_reference(
        trained_mlp, digits, d1, d2, n=7, metrics={"accuracy": lw.metrics.accuracy}
    )
    # The first layer is Linear: the precomputation path must be the one that was checked.
    assert land.evaluator.chosen.get("first_layer") == "precomputed"


def test_mlp_with_moving_biases_matches_naive_reference(trained_mlp, digits_small):
    """ignore=None moves the first layer's bias too (the precomputed path adds it)."""
    d1 = lw.directions.random(trained_mlp, seed=5, norm="filter", ignore=None)
    d2 = lw.directions.random(trained_mlp, seed=6, norm="layer", ignore=None)
    _check_against_reference(trained_mlp, digits_small, d1, d2, n=5)


def test_flatten_mlp_matches_naive_reference(digits_images):
    X, y = digits_images
    model = train(flatten_mlp(1), X, y, steps=20)
    d1 = lw.directions.random(model, seed=0)
    d2 = lw.directions.random(model, seed=1)
    _check_against_reference(model, (X, y), d1, d2, n=5,
                             metrics={"accuracy": lw.metrics.accuracy})


def test_cnn_bn_matches_naive_reference(trained_cnn, digits_images):
    d1 = lw.directions.random(trained_cnn, seed=0)
    d2 = lw.directions.random(trained_cnn, seed=1)
    _check_against_reference(trained_cnn, digits_images, d1, d2, n=5,
                             metrics={"accuracy": lw.metrics.accuracy})


@pytest.mark.parametrize("strategy", ["auto", "loop", "vmap"])
def test_uneven_dataloader_is_sample_weighted(digits, strategy):
    """37 samples in batches of 10 (10, 10, 10, 7): means are weighted by batch size."""
    X, y = digits
    X, y = X[:37], y[:37]
    model = mlp(3)
    loader = DataLoader(TensorDataset(X, y), batch_size=10, shuffle=False)
    d1 = lw.directions.random(model, seed=0)
    d2 = lw.directions.random(model, seed=1)
    metrics = {"accuracy": lw.metrics.accuracy}
    land = lw.Landscape(model, loader, metrics=metrics, strategy=strategy)
    assert land.n_samples == 37
    surf = land.plane(d1, d2, span=1, n=5)
    # The reference over the whole data in one batch: the true sample mean.
    ref = naive_eval(model, (X, y), F.cross_entropy, [d1, d2], grid_coeffs(surf.x, surf.y),
                     metrics=metrics)
    np.testing.assert_allclose(surf["loss"].reshape(-1), ref["loss"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(surf["accuracy"].reshape(-1), ref["accuracy"], atol=1e-6)
    # Same answer from the other data forms.
    for data in [(X, y), TensorDataset(X, y), [(X[:20], y[:20]), (X[20:], y[20:])]]:
        other = lw.Landscape(model, data, metrics=metrics, strategy=strategy)
        np.testing.assert_allclose(other.plane(d1, d2, span=1, n=5)["loss"], surf["loss"],
                                   rtol=1e-5, atol=1e-6)
    # And with batch_size splitting a tensor pair unevenly.
    other = lw.Landscape(model, (X, y), batch_size=8, strategy=strategy)
    other = other.plane(d1, d2, span=1, n=5)
    np.testing.assert_allclose(other["loss"], surf["loss"], rtol=1e-5, atol=1e-6)


def test_first_layer_shortcut_not_fooled_by_a_parameter_before_it():
    """The first Linear's input depends on a parameter used functionally (never called as a
    module): precomputing that layer's output once would be wrong when the parameter moves."""

    class Holder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = nn.Parameter(torch.ones(8))

    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.pre = Holder()
            self.fc = nn.Linear(8, 3)

        def forward(self, x):
            return self.fc(x * self.pre.scale)

    torch.manual_seed(0)
    model = Model()
    X, y = torch.randn(50, 8), torch.randint(0, 3, (50,))
    e = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    e["pre.scale"] = torch.ones(8)
    d_scale = lw.Direction(e)
    d_rand = lw.directions.random(model, seed=0, norm=None, ignore=None)
    land = lw.Landscape(model, (X, y), strategy="loop")
    surf = land.plane(d_scale, d_rand, span=2, n=5)
    ref = naive_eval(model, (X, y), F.cross_entropy, [d_scale, d_rand],
                     grid_coeffs(surf.x, surf.y))
    np.testing.assert_allclose(surf["loss"].reshape(-1), ref["loss"], rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------------- strategies
@pytest.mark.parametrize("which", ["mlp", "cnn"])
def test_vmap_equals_loop(which, trained_mlp, trained_cnn, digits_small, digits_images):
    model, data = (trained_mlp, digits_small) if which == "mlp" else (trained_cnn, digits_images)
    d1 = lw.directions.random(model, seed=0)
    d2 = lw.directions.random(model, seed=1)
    metrics = {"accuracy": lw.metrics.accuracy}
    loop = lw.Landscape(model, data, metrics=metrics, strategy="loop")
    vm = lw.Landscape(model, data, metrics=metrics, strategy="vmap")
    a = loop.plane(d1, d2, span=1, n=5)
    b = vm.plane(d1, d2, span=1, n=5)
    assert loop.evaluator.chosen["mode"] == "loop"
    assert vm.evaluator.chosen["mode"] == "vmap"
    np.testing.assert_allclose(b["loss"], a["loss"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(b["accuracy"], a["accuracy"], atol=1e-5)
    ca, cb = loop.line(d1, n=5), vm.line(d1, n=5)
    np.testing.assert_allclose(cb["loss"], ca["loss"], rtol=1e-5, atol=1e-5)


def test_vmap_center(trained_mlp, digits_small):
    """center() works under every strategy (its direction is all zeros)."""
    X, y = digits_small
    loop = lw.Landscape(trained_mlp, (X, y), strategy="loop").center()
    vm = lw.Landscape(trained_mlp, (X, y), strategy="vmap").center()
    assert vm["loss"] == pytest.approx(loop["loss"], rel=1e-6)


def test_vmap_with_bn_buffers(digits_images):
    """vmap moves BN running stats along a towards(..., buffers=True) direction too."""
    X, y = digits_images
    a = train(cnn_bn(0), X, y, steps=5, seed=0, batch=32)
    b = train(cnn_bn(1), X, y, steps=5, seed=1, batch=32)
    d = lw.directions.towards(a, b, buffers=True)
    loop = lw.Landscape(a, (X, y), strategy="loop").line(d, span=(0, 1), n=3)
    vm = lw.Landscape(a, (X, y), strategy="vmap").line(d, span=(0, 1), n=3)
    np.testing.assert_allclose(vm["loss"], loop["loss"], rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------------- dtype
@pytest.mark.parametrize("strategy", ["loop", "vmap"])
def test_float64_model_evaluates_in_float64(digits_small, strategy):
    X, y = digits_small
    model = mlp(2, dtype=torch.float64)
    d1 = lw.directions.random(model, seed=0)
    d2 = lw.directions.random(model, seed=1)
    assert d1["0.weight"].dtype == torch.float64
    # float32 data: cast to the model's dtype
    land = lw.Landscape(model, (X, y), strategy=strategy)
    surf = land.plane(d1, d2, span=1, n=5)
    ref = naive_eval(model, (X.double(), y), F.cross_entropy, [d1, d2],
                     grid_coeffs(surf.x, surf.y))
    np.testing.assert_allclose(surf["loss"].reshape(-1), ref["loss"], rtol=1e-12, atol=1e-12)
    assert surf.meta["dtype"] == "float64"
    # A float32 evaluation would differ by ~1e-7: make sure this tolerance means something.
    ref32 = naive_eval(mlp(2), (X, y), F.cross_entropy, [
        {k: v.float() for k, v in d1.items()}, {k: v.float() for k, v in d2.items()}
    ], grid_coeffs(surf.x, surf.y))
    assert np.max(np.abs(ref32["loss"] - ref["loss"])) > 1e-12


# --------------------------------------------------------------------------------- determinism
@pytest.mark.parametrize("strategy", ["auto", "loop", "vmap"])
def test_same_seeds_identical_surfaces(trained_mlp, digits_small, strategy):
    """Same model, data and seeds: bit-identical arrays from every new Landscape."""
    X, y = digits_small
    surfs = []
    for _ in range(4):
        land = lw.Landscape(trained_mlp, (X, y), metrics={"accuracy": lw.metrics.accuracy},
                            strategy=strategy)
        d1 = lw.directions.random(trained_mlp, seed=7)
        d2 = lw.directions.random(trained_mlp, seed=8)
        surfs.append(land.plane(d1, d2, span=1, n=7))
    for s in surfs[1:]:
        assert np.array_equal(surfs[0]["loss"], s["loss"])
        assert np.array_equal(surfs[0]["accuracy"], s["accuracy"])
    land = lw.Landscape(trained_mlp, (X, y), strategy=strategy)
    other = land.plane(lw.directions.random(trained_mlp, seed=9),
                       lw.directions.random(trained_mlp, seed=8), span=1, n=7)
    assert not np.array_equal(other["loss"], surfs[0]["loss"])


def test_same_seeds_identical_surfaces_cnn(trained_cnn, digits_images):
    surfs = []
    for _ in range(3):
        land = lw.Landscape(trained_cnn, digits_images)
        d1 = lw.directions.random(trained_cnn, seed=7)
        d2 = lw.directions.random(trained_cnn, seed=8)
        surfs.append(land.plane(d1, d2, span=1, n=5))
    for s in surfs[1:]:
        assert np.array_equal(surfs[0]["loss"], s["loss"])


def test_repeated_calls_identical(trained_cnn, digits_images):
    land = lw.Landscape(trained_cnn, digits_images)
    d1 = lw.directions.random(trained_cnn, seed=0)
    d2 = lw.directions.random(trained_cnn, seed=1)
    a = land.plane(d1, d2, span=1, n=5)
    land.line(d1, n=5)  # another binding in between
    land.center()
    b = land.plane(d1, d2, span=1, n=5)
    assert np.array_equal(a["loss"], b["loss"])


# --------------------------------------------------------------------------------- grid
@pytest.fixture(scope="module")
def quad_land():
    model, data, loss, *_ = quad_setup()
    return lw.Landscape(model, data, loss=loss)


@settings(max_examples=25, deadline=None)
@given(
    half=st.floats(min_value=1e-3, max_value=1e3, allow_nan=False),
    k=st.integers(min_value=1, max_value=10),
)
def test_odd_grid_hits_zero_exactly(quad_land, half, k):
    land = quad_land
    n = 2 * k + 1
    d = lw.Direction({"theta": torch.ones(6, dtype=torch.float64)})
    curve = land.line(d, span=half, n=n)
    assert curve.x[n // 2] == 0.0
    assert curve.x[0] == -half and curve.x[-1] == half
    assert np.all(np.diff(curve.x) > 0)
    np.testing.assert_allclose(np.diff(curve.x), 2 * half / (n - 1), rtol=1e-9)
    assert curve["loss"][n // 2] == pytest.approx(land.center()["loss"], rel=1e-15)


def test_span_number_means_symmetric(trained_mlp, digits_small):
    land = lw.Landscape(trained_mlp, digits_small)
    d1 = lw.directions.random(trained_mlp, seed=0)
    d2 = lw.directions.random(trained_mlp, seed=1)
    a = land.line(d1, span=0.5, n=5)
    b = land.line(d1, span=(-0.5, 0.5), n=5)
    np.testing.assert_array_equal(a.x, [-0.5, -0.25, 0.0, 0.25, 0.5])
    assert np.array_equal(a["loss"], b["loss"])
    s = land.plane(d1, d2, span=0.5, n=5)
    np.testing.assert_array_equal(s.x, a.x)
    np.testing.assert_array_equal(s.y, a.x)


def test_plane_span_pair_of_ranges_and_n_pair(trained_mlp, digits_small):
    land = lw.Landscape(trained_mlp, digits_small)
    d1 = lw.directions.random(trained_mlp, seed=0)
    d2 = lw.directions.random(trained_mlp, seed=1)
    s = land.plane(d1, d2, span=((-1, 1), (-2, 2)), n=(5, 7))
    assert s.x.shape == (5,) and s.y.shape == (7,)
    assert s["loss"].shape == (7, 5) and s.evaluated.shape == (7, 5)
    assert (s.x[0], s.x[-1], s.y[0], s.y[-1]) == (-1.0, 1.0, -2.0, 2.0)
    assert s.x[2] == 0.0 and s.y[3] == 0.0
    # One (lo, hi) pair means both axes.
    t = land.plane(d1, d2, span=(0, 1), n=3)
    np.testing.assert_array_equal(t.x, [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(t.y, [0.0, 0.5, 1.0])
    # Orientation on a real model: row i is y[i], column j is x[j].
    ref = naive_eval(trained_mlp, digits_small, F.cross_entropy, [d1, d2],
                     [(s.x[4], s.y[0]), (s.x[0], s.y[6])])
    np.testing.assert_allclose([s["loss"][0, 4], s["loss"][6, 0]], ref["loss"], rtol=1e-5)


# --------------------------------------------------------------------------------- non-finite
@pytest.mark.parametrize("strategy", ["auto", "loop", "vmap"])
def test_overflowing_region_gives_nonfinite_values_not_errors(trained_mlp, digits_small,
                                                              strategy):
    land = lw.Landscape(trained_mlp, digits_small, metrics={"accuracy": lw.metrics.accuracy},
                        strategy=strategy)
    d1 = lw.directions.random(trained_mlp, seed=0, norm=None)
    d2 = lw.directions.random(trained_mlp, seed=1, norm=None)
    surf = land.plane(d1, d2, span=1e30, n=5)
    loss = surf["loss"]
    assert loss.shape == (5, 5)
    assert not np.all(np.isfinite(loss[0])), "the far edge should overflow"
    assert np.isfinite(loss[2, 2])  # the centre is the model
    curve = land.line(d1, span=1e30, n=5)
    assert not np.isfinite(curve["loss"][0]) and np.isfinite(curve["loss"][2])
    tiles = list(land.stream(d1, d2, span=1e30, n=5))
    assert sum(len(t) for t in tiles) == 25


def test_loss_returning_inf_and_nan_is_recorded():
    model, data, _, A, _, c = quad_setup()
    base = make_quadratic_loss(A, c)

    def loss(out, target):
        v = base(out, target)
        if float(out[0, 0] - model.theta[0].detach()) > 0.9:
            return v + float("inf")
        if float(out[0, 0] - model.theta[0].detach()) < -0.9:
            return v * float("nan")
        return v

    land = lw.Landscape(model, data, loss=loss)
    e0 = torch.zeros(6, dtype=torch.float64)
    e0[0] = 1.0
    d1 = lw.Direction({"theta": e0})
    d2 = lw.Direction({"theta": torch.ones(6, dtype=torch.float64).roll(1) - e0})
    surf = land.plane(d1, d2, span=1, n=5)
    z = surf["loss"]
    assert np.all(np.isposinf(z[:, -1])) and np.all(np.isnan(z[:, 0]))
    assert np.all(np.isfinite(z[:, 1:-1]))
    ad = land.plane(d1, d2, span=1, n=17, adaptive=True, tol=0.01)
    assert np.all(np.isposinf(ad["loss"][:, -1])) and np.all(np.isnan(ad["loss"][:, 0]))
    assert np.all(np.isfinite(ad["loss"][:, 1:-1]))
    curve = land.line(d1, span=1, n=5)
    assert np.isnan(curve["loss"][0]) and np.isposinf(curve["loss"][-1])
    assert np.all(np.isfinite(curve["loss"][1:-1]))


# --------------------------------------------------------------------------------- streams
def _assemble(tiles, shape, name="loss"):
    z = np.full(shape, np.nan)
    count = np.zeros(shape, dtype=int)
    for t in tiles:
        np.add.at(count, (t.rows, t.cols), 1)
        z[t.rows, t.cols] = t.values[name]
    return z, count


@pytest.mark.parametrize("strategy", ["loop", "vmap"])
def test_plane_stream_covers_grid_progressively(trained_mlp, digits_small, strategy):
    land = lw.Landscape(trained_mlp, digits_small, strategy=strategy)
    d1 = lw.directions.random(trained_mlp, seed=0)
    d2 = lw.directions.random(trained_mlp, seed=1)
    tiles = list(land.stream(d1, d2, span=1, n=9, tile_size=4))
    assert all(isinstance(t, lw.Tile) for t in tiles)
    z, count = _assemble(tiles, (9, 9))
    assert np.all(count == 1), "every grid point exactly once"
    levels = [t.level for t in tiles]
    assert levels == sorted(levels) and levels[0] == 0 and levels[-1] > 0
    level0 = [(r, c) for t in tiles if t.level == 0 for r, c in zip(t.rows, t.cols, strict=True)]
    assert (4, 4) in level0
    assert (tiles[0].rows[0], tiles[0].cols[0]) == (4, 4), "the centre comes first"
    dones = [t.done for t in tiles]
    assert dones == sorted(dones) and dones[-1] == 1.0
    assert all(t.exact for t in tiles)
    surf = land.plane(d1, d2, span=1, n=9)
    np.testing.assert_array_equal(z, surf["loss"])
    # Finer levels refine coarser ones: level 0 alone is a proper subgrid with the corners.
    assert {(0, 0), (0, 8), (8, 0), (8, 8)} <= set(level0)
    assert len(level0) < 81


@pytest.mark.parametrize("strategy", ["loop", "vmap"])
def test_line_stream(trained_mlp, digits_small, strategy):
    land = lw.Landscape(trained_mlp, digits_small, strategy=strategy)
    d1 = lw.directions.random(trained_mlp, seed=0)
    tiles = list(land.stream(d1, span=1, n=17, tile_size=3))
    z, count = _assemble(tiles, (1, 17))
    assert np.all(count == 1)
    assert all(np.all(t.rows == 0) for t in tiles)
    levels = [t.level for t in tiles]
    assert levels == sorted(levels) and levels[-1] > 0
    assert 8 in [c for t in tiles if t.level == 0 for c in t.cols]
    assert tiles[-1].done == 1.0
    np.testing.assert_array_equal(z[0], land.line(d1, span=1, n=17)["loss"])


def test_stream_can_be_stopped_and_restarted(trained_mlp, digits_small):
    land = lw.Landscape(trained_mlp, digits_small)
    d1 = lw.directions.random(trained_mlp, seed=0)
    d2 = lw.directions.random(trained_mlp, seed=1)
    it = land.stream(d1, d2, span=1, n=9, tile_size=2)
    first = next(it)
    assert first.done < 1.0
    it.close()
    z, count = _assemble(land.stream(d1, d2, span=1, n=9, tile_size=5), (9, 9))
    assert np.all(count == 1)
    np.testing.assert_array_equal(z, land.plane(d1, d2, span=1, n=9)["loss"])


# --------------------------------------------------------------------------------- adaptive
def test_adaptive_plane_saves_work_within_tolerance(trained_mlp, digits):
    land = lw.Landscape(trained_mlp, digits)
    d1 = lw.directions.random(trained_mlp, seed=0)
    d2 = lw.directions.random(trained_mlp, seed=1)
    dense = land.plane(d1, d2, span=1, n=21)
    ad = land.plane(d1, d2, span=1, n=21, adaptive=True, tol=0.01)
    assert ad.evaluated.dtype == bool and ad.evaluated.shape == (21, 21)
    assert dense.evaluated.all()
    n_eval = int(ad.evaluated.sum())
    assert 0 < n_eval < ad.evaluated.size
    assert ad.meta["evaluations"] == n_eval
    assert ad.evaluated[10, 10] and ad.evaluated[0, 0] and ad.evaluated[20, 20]
    vrange = np.ptp(dense["loss"])
    assert np.max(np.abs(ad["loss"] - dense["loss"])) <= 0.01 * vrange
    # Evaluated points carry evaluated values.
    np.testing.assert_allclose(ad["loss"][ad.evaluated], dense["loss"][ad.evaluated],
                               rtol=1e-6, atol=1e-7)
    # Adaptive tiles: skipped points are marked inexact.
    tiles = list(land.stream(d1, d2, span=1, n=21, adaptive=True, tol=0.01))
    _, count = _assemble(tiles, (21, 21))
    assert np.all(count == 1)
    assert any(not t.exact for t in tiles)
    assert tiles[-1].done == 1.0


def test_adaptive_line(trained_mlp, digits_small):
    land = lw.Landscape(trained_mlp, digits_small)
    d1 = lw.directions.random(trained_mlp, seed=0)
    dense = land.line(d1, span=1, n=33)
    ad = land.line(d1, span=1, n=33, adaptive=True, tol=0.01)
    assert np.max(np.abs(ad["loss"] - dense["loss"])) <= 0.01 * np.ptp(dense["loss"])


def test_each_result_records_the_plan_its_own_points_ran_with(trained_mlp, digits_small):
    # center() binds a zero direction (nothing moves: the loop); the plane after it runs
    # vmap on this small data. Each record must say how its own points were evaluated.
    land = lw.Landscape(trained_mlp, digits_small, strategy="auto")
    d1 = lw.directions.random(trained_mlp, seed=0)
    d2 = lw.directions.random(trained_mlp, seed=1)
    surf = land.plane(d1, d2, span=1, n=5)
    land.center()
    again = land.plane(d1, d2, span=1, n=5)
    assert surf.meta["evaluation"]["mode"] == again.meta["evaluation"]["mode"] == "vmap"
    curve = land.line(d1, n=5)
    assert curve.meta["evaluation"]["mode"] == "vmap"


def test_float32_mode_is_restored_by_the_last_thread_only():
    """Threads evaluating at once share PyTorch's process-wide float32 setting: one leaving
    must not restore PyTorch's setting under another still inside."""
    import threading

    import torch

    from ls_widget.engine.landscape_slices import float32_mode

    before = (torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32)
    inside, leave = threading.Event(), threading.Event()
    seen: list[str] = []

    def other() -> None:
        with float32_mode(False):
            inside.set()
            leave.wait(10)

    t = threading.Thread(target=other)
    t.start()
    assert inside.wait(10)
    with float32_mode(False):
        leave.set()
        t.join(10)  # the other thread has left: ours is still in full precision
        seen.append(torch.get_float32_matmul_precision())
        assert torch.backends.cudnn.allow_tf32 is False
    assert seen == ["highest"]
    assert (torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32) == before
