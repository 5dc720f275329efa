"""The user's model is never mutated: parameters, buffers, flags, after every public call.

Including when the loss raises mid-surface and when a KeyboardInterrupt arrives mid-stream.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import assert_unchanged, grid_coeffs, lw, naive_eval, snapshot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

N_IN, N_OUT = 6, 3


class Scaled(nn.Module):
    """A module with its own extra buffers (floating, integer, non-persistent)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.register_buffer("scale", torch.tensor(1.5))
        self.register_buffer("counter", torch.tensor(7, dtype=torch.long))
        self.register_buffer("cache", torch.randn(4), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x) * self.scale


def variant(*, bn: bool, dropout: bool, frozen: bool, buffers: bool, train_mode: bool,
            conv: bool, seed: int = 0) -> tuple[nn.Module, tuple[torch.Tensor, torch.Tensor]]:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    if conv:
        layers += [nn.Conv2d(1, 3, 3, padding=1)]
        if bn:
            layers.append(nn.BatchNorm2d(3))
        layers += [nn.ReLU(), nn.Flatten()]
        if dropout:
            layers.append(nn.Dropout(0.5))
        layers.append(nn.Linear(3 * 4 * 4, N_OUT))
        X = torch.randn(30, 1, 4, 4)
    else:
        layers.append(nn.Linear(N_IN, 12))
        if bn:
            layers.append(nn.BatchNorm1d(12))
        layers.append(nn.ReLU())
        if dropout:
            layers.append(nn.Dropout(0.5))
        layers.append(nn.Linear(12, N_OUT))
        X = torch.randn(30, N_IN)
    y = torch.randint(0, N_OUT, (30,))
    model: nn.Module = nn.Sequential(*layers)
    if bn:  # running statistics away from their initial values
        model.train()
        with torch.no_grad():
            for _ in range(3):
                model(X * 2 + 1)
    if buffers:
        model = Scaled(model)
    if frozen:
        params = list(model.parameters())
        params[0].requires_grad_(False)
        params[-1].requires_grad_(False)
    model.train(train_mode)
    return model, (X, y)


def exercise(model: nn.Module, data, *, vmap: bool = True) -> dict[str, np.ndarray]:
    """Every public call of the engine, once. Returns a few results for later checks."""
    d1 = lw.directions.random(model, seed=0)
    d2 = lw.directions.random(model, seed=1, norm="layer", ignore=None)
    d3 = lw.directions.random(model, seed=2, norm="model")
    d4 = lw.directions.random(model, seed=3, norm=None)
    other = copy.deepcopy(model)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(0.1)
        for b in other.buffers():
            if b.is_floating_point():
                b.add_(0.2)
    dt = lw.directions.towards(model, other, buffers=True)
    dm = lw.directions.mix(d1, d2, 0.3)
    do = lw.directions.orthogonalize(d4, d1, d2)
    land = lw.Landscape(model, data, metrics={"accuracy": lw.metrics.accuracy})
    out = {"center": np.array([land.center()["loss"]])}
    out["line"] = land.line(d1, span=1, n=5)["loss"]
    out["towards"] = land.line(dt, span=(0, 1), n=3)["loss"]
    out["plane"] = land.plane(d2, do, span=0.5, n=5)["loss"]
    out["adaptive"] = land.plane(dm, d3, span=1, n=9, adaptive=True, tol=0.05)["loss"]
    out["evaluate"] = land.evaluate([d1, dt], [[0.1, 0.2], [-0.3, 0.5]])["loss"]
    it = land.stream(d1, d2, span=1, n=9, tile_size=2)
    next(it)
    next(it)
    it.close()
    line_stream = land.stream(d4, span=1, n=9, tile_size=3)
    next(line_stream)
    del line_stream
    if vmap:
        out["vmap"] = lw.Landscape(model, data, strategy="vmap").line(d1, span=1, n=3)["loss"]
    return out


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    bn=st.booleans(),
    dropout=st.booleans(),
    frozen=st.booleans(),
    buffers=st.booleans(),
    train_mode=st.booleans(),
    conv=st.booleans(),
)
def test_model_never_mutated(bn, dropout, frozen, buffers, train_mode, conv):
    model, data = variant(bn=bn, dropout=dropout, frozen=frozen, buffers=buffers,
                          train_mode=train_mode, conv=conv)
    snap = snapshot(model)
    first = exercise(model, data)
    assert_unchanged(model, snap)
    assert all(m.training == train_mode for m in model.modules())
    # Evaluation is eval-mode whatever the model's mode: deterministic with dropout ...
    second = exercise(model, data, vmap=False)
    for k in second:
        assert np.array_equal(first[k], second[k], equal_nan=True), k
    assert_unchanged(model, snap)
    # ... and equal to the eval-mode reference.
    d1 = lw.directions.random(model, seed=0)
    ref = naive_eval(model, [data], F.cross_entropy, [d1], grid_coeffs(np.linspace(-1, 1, 5)))
    np.testing.assert_allclose(first["line"], ref["loss"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(first["vmap"], ref["loss"][::2], rtol=1e-5, atol=1e-6)
    assert_unchanged(model, snap)


def test_model_in_train_mode_with_dropout_is_evaluated_in_eval_mode():
    model, data = variant(bn=True, dropout=True, frozen=False, buffers=False, train_mode=True,
                          conv=False)
    snap = snapshot(model)
    land = lw.Landscape(model, data)
    d = lw.directions.random(model, seed=0)
    a = land.line(d, span=1, n=5)["loss"]
    b = lw.Landscape(model, data).line(d, span=1, n=5)["loss"]
    assert np.array_equal(a, b)
    ref = naive_eval(model, [data], F.cross_entropy, [d], grid_coeffs(np.linspace(-1, 1, 5)))
    np.testing.assert_allclose(a, ref["loss"], rtol=1e-5, atol=1e-6)
    assert model.training and all(m.training for m in model.modules())
    assert_unchanged(model, snap)


def _batched(data, k=3):
    X, y = data
    return [(X[i::k], y[i::k]) for i in range(k)]


class FailingLoss:
    """Cross-entropy that raises `exc` on its `fail_at`-th call after `arm()`."""

    def __init__(self, exc: BaseException, fail_at: int = 7, armed: bool = True) -> None:
        self.exc, self.fail_at, self.armed, self.calls = exc, fail_at, armed, 0

    def arm(self) -> None:
        self.armed, self.calls = True, 0

    def __call__(self, out, y):
        if self.armed:
            self.calls += 1
            if self.calls == self.fail_at:
                self.armed = False
                raise self.exc
        return F.cross_entropy(out, y)


@pytest.mark.parametrize("strategy", ["auto", "loop", "vmap"])
@pytest.mark.parametrize("k", [1, 3])  # batches: with loop, the 7th point or mid-point
@pytest.mark.parametrize("conv", [False, True])
def test_loss_raising_on_seventh_call(conv, k, strategy):
    model, data = variant(bn=True, dropout=True, frozen=True, buffers=True, train_mode=True,
                          conv=conv)
    snap = snapshot(model)
    loss = FailingLoss(RuntimeError("boom on call 7"))
    land = lw.Landscape(model, _batched(data, k), loss=loss, strategy=strategy)
    d1 = lw.directions.random(model, seed=0)
    d2 = lw.directions.random(model, seed=1)
    with pytest.raises(RuntimeError, match="boom on call 7"):
        # One point per tile: vmap then calls the loss once per point and batch, like the loop.
        list(land.stream(d1, d2, span=1, n=5, tile_size=1))
    assert loss.calls == 7
    assert_unchanged(model, snap)
    # The landscape is still usable and still right after the failure.
    surf = land.plane(d1, d2, span=1, n=5)
    fresh = lw.Landscape(model, _batched(data, k), strategy=strategy).plane(d1, d2, span=1, n=5)
    np.testing.assert_allclose(surf["loss"], fresh["loss"], rtol=1e-6, atol=1e-7)
    assert_unchanged(model, snap)


@pytest.mark.parametrize("strategy", ["loop", "vmap"])
@pytest.mark.parametrize("exc", [RuntimeError("mid-stream"), KeyboardInterrupt()])
def test_exception_mid_stream(exc, strategy):
    model, data = variant(bn=True, dropout=False, frozen=False, buffers=True, train_mode=False,
                          conv=False)
    snap = snapshot(model)
    loss = FailingLoss(exc, fail_at=2, armed=False)
    land = lw.Landscape(model, _batched(data), loss=loss, strategy=strategy)
    d1 = lw.directions.random(model, seed=0)
    d2 = lw.directions.random(model, seed=1)
    it = land.stream(d1, d2, span=1, n=9, tile_size=2)
    first = next(it)
    assert len(first) == 2
    loss.arm()  # 3 batches per point (or chunk of points): the 2nd call is mid-point
    with pytest.raises(type(exc)):
        for _ in it:
            pass
    assert_unchanged(model, snap)
    surf = land.plane(d1, d2, span=1, n=9)
    fresh = lw.Landscape(model, _batched(data), strategy=strategy).plane(d1, d2, span=1, n=9)
    np.testing.assert_allclose(surf["loss"], fresh["loss"], rtol=1e-6, atol=1e-7)
    assert_unchanged(model, snap)


def test_interrupt_during_adaptive_plane():
    model, data = variant(bn=True, dropout=True, frozen=False, buffers=False, train_mode=True,
                          conv=True)
    snap = snapshot(model)
    loss = FailingLoss(KeyboardInterrupt(), fail_at=40)
    land = lw.Landscape(model, data, loss=loss, strategy="loop")  # one call per point
    with pytest.raises(KeyboardInterrupt):
        land.plane(lw.directions.random(model, seed=0), lw.directions.random(model, seed=1),
                   span=1, n=9, adaptive=True)
    assert_unchanged(model, snap)


def test_landscape_is_a_snapshot_of_the_model():
    """Changing the model after building the Landscape does not change its results."""
    model, data = variant(bn=True, dropout=False, frozen=False, buffers=False, train_mode=False,
                          conv=False)
    land = lw.Landscape(model, data)
    d = lw.directions.random(model, seed=0)
    before = land.line(d, span=1, n=5)["loss"]
    centre = land.center()["loss"]
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3.0)
        model[1].running_mean.add_(5.0)
    assert land.center()["loss"] == centre
    assert np.array_equal(land.line(d, span=1, n=5)["loss"], before)


def test_tied_weights_stay_tied():
    torch.manual_seed(0)

    class Tied(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.enc = nn.Linear(6, 6)
            self.dec = nn.Linear(6, 6)
            self.dec.weight = self.enc.weight
            self.head = nn.Linear(6, N_OUT)

        def forward(self, x):
            return self.head(torch.relu(self.dec(torch.relu(self.enc(x)))))

    model = Tied()
    X, y = torch.randn(20, 6), torch.randint(0, N_OUT, (20,))
    snap = snapshot(model)
    d1 = lw.directions.random(model, seed=0)
    d2 = lw.directions.random(model, seed=1)
    assert "dec.weight" not in d1  # keyed exactly like named_parameters()
    surf = lw.Landscape(model, (X, y)).plane(d1, d2, span=1, n=5)
    ref = naive_eval(model, (X, y), F.cross_entropy, [d1, d2], grid_coeffs(surf.x, surf.y))
    np.testing.assert_allclose(surf["loss"].reshape(-1), ref["loss"], rtol=1e-5, atol=1e-6)
    assert_unchanged(model, snap)
    assert model.dec.weight is model.enc.weight
