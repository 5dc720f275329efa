"""BatchNorm: evaluation in eval mode (running statistics) and `towards` with buffers."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import cnn_bn, eval_loss, lw, mlp_bn, naive_eval, train


@pytest.fixture(scope="module")
def bn_pair(digits_small):
    """Two BatchNorm1d MLPs trained from different seeds: their running stats differ."""
    X, y = digits_small
    a = train(mlp_bn(0), X, y, steps=15, seed=0, batch=64)
    b = train(mlp_bn(1), X, y, steps=15, seed=1, batch=64)
    assert not torch.allclose(a[1].running_mean, b[1].running_mean)
    return a, b


@pytest.fixture(scope="module")
def cnn_pair(digits_images):
    X, y = digits_images
    a = train(cnn_bn(0), X, y, steps=8, seed=0, batch=64)
    b = train(cnn_bn(1), X, y, steps=8, seed=1, batch=64)
    return a, b


def _train_mode_loss(model, X, y):
    m = copy.deepcopy(model).train()
    with torch.no_grad():
        return float(F.cross_entropy(m(X), y))


def test_center_is_eval_mode_loss(trained_cnn, digits_images):
    X, y = digits_images
    land = lw.Landscape(trained_cnn, (X, y), metrics={"accuracy": lw.metrics.accuracy})
    own = eval_loss(trained_cnn, X, y)
    centre = land.center()
    assert centre["loss"] == pytest.approx(own, rel=2e-6)
    # Batch statistics (train mode) give a clearly different number: the check has teeth.
    assert abs(_train_mode_loss(trained_cnn, X, y) - own) > 1e-3
    m = copy.deepcopy(trained_cnn).eval()
    with torch.no_grad():
        acc = float(lw.metrics.accuracy(m(X), y))
    assert centre["accuracy"] == pytest.approx(acc, abs=1e-6)


@pytest.mark.parametrize("n", [5, 7])
def test_centre_grid_point_is_the_model(trained_cnn, digits_images, n):
    X, y = digits_images
    land = lw.Landscape(trained_cnn, (X, y))
    d1 = lw.directions.random(trained_cnn, seed=0)
    d2 = lw.directions.random(trained_cnn, seed=1)
    surf = land.plane(d1, d2, span=0.7, n=n)
    assert surf.x[n // 2] == 0.0 and surf.y[n // 2] == 0.0
    own = eval_loss(trained_cnn, X, y)
    assert surf["loss"][n // 2, n // 2] == pytest.approx(own, rel=2e-6)
    curve = land.line(d1, span=0.7, n=n)
    assert curve["loss"][n // 2] == pytest.approx(own, rel=2e-6)


def test_bn_mlp_center_in_batches(bn_pair, digits_small):
    """Eval-mode BN does not depend on how the data is batched (train mode would)."""
    a, _ = bn_pair
    X, y = digits_small
    own = eval_loss(a, X, y)
    for bs in (None, 7, 64):
        land = lw.Landscape(a, (X, y), batch_size=bs)
        assert land.center()["loss"] == pytest.approx(own, rel=2e-6), bs


@pytest.mark.parametrize("which", ["mlp", "cnn"])
def test_towards_with_buffers_reaches_the_other_model(which, bn_pair, cnn_pair, digits_small,
                                                      digits_images):
    (a, b), (X, y) = (bn_pair, digits_small) if which == "mlp" else (cnn_pair, digits_images)
    la, lb = eval_loss(a, X, y), eval_loss(b, X, y)
    assert abs(la - lb) > 1e-4
    land = lw.Landscape(a, (X, y))
    d = lw.directions.towards(a, b, buffers=True)
    curve = land.line(d, span=(0, 1), n=3)
    np.testing.assert_array_equal(curve.x, [0.0, 0.5, 1.0])
    assert curve["loss"][0] == pytest.approx(la, rel=1e-5, abs=1e-5)
    assert curve["loss"][2] == pytest.approx(lb, rel=1e-5, abs=1e-5)
    # Half way: weights and running statistics both interpolated.
    ref = naive_eval(a, (X, y), F.cross_entropy, [d], [(0.5,)], buffers=True)
    assert curve["loss"][1] == pytest.approx(ref["loss"][0], rel=1e-5, abs=1e-5)
    # Weights only: at x = 1 the running statistics are still a's, so the loss is not b's.
    w_only = lw.directions.towards(a, b, buffers=False)
    c2 = land.line(w_only, span=(0, 1), n=3)
    assert c2["loss"][0] == pytest.approx(la, rel=1e-5, abs=1e-5)
    assert abs(c2["loss"][2] - lb) > 1e-3
    ref2 = naive_eval(a, (X, y), F.cross_entropy, [w_only], [(1.0,)], buffers=False)
    assert c2["loss"][2] == pytest.approx(ref2["loss"][0], rel=1e-5, abs=1e-5)


def test_towards_with_buffers_in_a_plane(bn_pair, digits_small):
    a, b = bn_pair
    X, y = digits_small
    d1 = lw.directions.towards(a, b, buffers=True)
    d2 = lw.directions.random(a, seed=0)
    land = lw.Landscape(a, (X, y))
    surf = land.plane(d1, d2, span=((0, 1), (-0.5, 0.5)), n=3)
    assert surf["loss"][1, 2] == pytest.approx(eval_loss(b, X, y), rel=1e-5, abs=1e-5)
    ref = naive_eval(a, (X, y), F.cross_entropy, [d1, d2],
                     [(float(u), float(v)) for v in surf.y for u in surf.x], buffers=True)
    np.testing.assert_allclose(surf["loss"].reshape(-1), ref["loss"], rtol=1e-5, atol=1e-5)
