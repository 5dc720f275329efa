"""tr H from loss values (Böttcher & Wheeler 2022) at two steps, and the kinks that bias it.

The projection estimate averages second differences (L(θ+hδ) − 2L(θ) + L(θ−hδ))/h² over
Gaussian δ. On a quadratic they are δᵀHδ exactly; on a smooth network they approach it as
O(h²); on a piecewise-linear one (ReLU, max-pooling) the kinks crossed within [−h, h] add to
them, by an amount that does not vanish with h. So each projection Trace reports both steps
(h and h/4, same directions) and whether the loss ran ops with kinks, and warns when it did.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import assert_unchanged, lw, quad_setup, snapshot, train
from torch import nn

from ls_widget.curvature import NonSmoothWarning, Trace, nonsmooth_ops, smoothness


# --------------------------------------------------------------------------------- models
def two_layer(act: nn.Module, width: int = 16, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, width), act, nn.Linear(width, 10))


class FunctionalReLU(nn.Module):
    """F.relu called in forward: no nn.ReLU module anywhere."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc1 = nn.Linear(64, 12)
        self.fc2 = nn.Linear(12, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.relu(self.fc1(x)))


class WhereLeaky(nn.Module):
    """A hand-written leaky ReLU: torch.where on a comparison."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc1 = nn.Linear(64, 12)
        self.fc2 = nn.Linear(12, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.fc1(x)
        return self.fc2(torch.where(z > 0, z, 0.1 * z))


class ClampedInput(nn.Module):
    """Clamps the data (no parameter involved) and normalizes (a clamp that never clamps)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc1 = nn.Linear(64, 12)
        self.fc2 = nn.Linear(12, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.normalize(torch.tanh(self.fc1(x.clamp(0.0, 0.5)))))


def pooled_cnn(act: nn.Module) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)), nn.Conv2d(1, 3, 3, padding=1), act, nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(48, 10),
    )


def ops_of(model: nn.Module, data, names=None) -> tuple[str, ...]:
    land = lw.Landscape(model, data)
    return nonsmooth_ops(land.evaluator, land.hessian.names if names is None else names)


def no_warning(fn):
    """Runs fn() with every warning turned into an error (but torch's own, as pyproject)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # torch.func's first use imports torch.jit, which warns about itself
        warnings.filterwarnings("ignore", "`torch.jit.script` is deprecated", DeprecationWarning)
        return fn()


# --------------------------------------------------------------------------------- quadratic
def test_projection_on_a_quadratic_is_exact_at_both_steps():
    """On ½(θ − θ*)ᵀA(θ − θ*) + c the second difference is δᵀAδ for every step: the samples
    are exactly those of the seeded δ, both steps agree, and the mean is tr A within its
    standard error."""
    model, data, loss, A, _, _ = quad_setup(n=6, seed=0)
    land = lw.Landscape(model, data, loss)
    s, seed = 100, 4
    tr = no_warning(lambda: land.hessian.trace("projection", samples=s, seed=seed))
    assert isinstance(tr, Trace) and tr.method == "projection"
    assert tr.smooth is True and tr.nonsmooth_ops == ()
    assert tr.evaluations == 4 * s + 1

    gen = torch.Generator().manual_seed(seed)
    deltas = [torch.randn(6, generator=gen, dtype=torch.float64) for _ in range(s)]
    exact = np.array([float(d @ A @ d) for d in deltas])
    np.testing.assert_allclose(tr.samples, exact, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(tr.samples_small_h, exact, rtol=1e-5, atol=1e-6)

    trace_a = float(torch.trace(A))
    assert abs(tr.mean - trace_a) < 3 * tr.stderr, (tr.mean, trace_a, tr.stderr)
    assert tr.stderr == pytest.approx(exact.std(ddof=1) / math.sqrt(s), rel=1e-5)
    h, small = list(tr.at_steps)
    assert h == tr.h and small == pytest.approx(h / 4, rel=1e-15)
    assert tr.at_steps[h] == (tr.mean, tr.stderr)
    assert tr.at_steps[small][0] == pytest.approx(tr.mean, rel=1e-6)
    assert abs(tr.step_change) < 1e-6 * abs(tr.mean) and tr.converged is True
    assert abs(tr.relative_change) < 1e-6

    # Hutchinson's Trace has the same fields where they mean something.
    hut = no_warning(lambda: land.hessian.trace("hutchinson", samples=20, seed=seed))
    assert hut.smooth is True and hut.nonsmooth_ops == ()
    assert hut.h is None and hut.at_steps == {} and hut.converged is None
    assert math.isnan(hut.step_change) and math.isnan(hut.relative_change)
    assert len(hut.samples_small_h) == 0

    # Deterministic: the same call gives the same bits; a given h is used as given.
    again = land.hessian.trace("projection", samples=s, seed=seed)
    assert again.at_steps == tr.at_steps
    np.testing.assert_array_equal(again.samples_small_h, tr.samples_small_h)
    other = land.hessian.trace("projection", samples=5, seed=seed, h=0.2)
    assert list(other.at_steps) == [0.2, 0.05] and other.h == 0.2
    for bad in (0.0, -1e-3, math.nan, math.inf):
        with pytest.raises(ValueError, match="positive finite step"):
            land.hessian.trace("projection", samples=5, h=bad)


# --------------------------------------------------------------------------------- networks
def test_smooth_mlp_projection_agrees_with_hutchinson(digits_small):
    X, y = digits_small
    model = train(two_layer(nn.Tanh()), X, y, steps=200)
    snap = snapshot(model)
    land = lw.Landscape(model, (X, y))
    hut = no_warning(lambda: land.hessian.trace("hutchinson", samples=40, seed=0))
    proj = no_warning(lambda: land.hessian.trace("projection", samples=40, seed=0))
    assert hut.smooth is True and proj.smooth is True and proj.nonsmooth_ops == ()
    both = math.hypot(hut.stderr, proj.stderr)
    assert abs(proj.mean - hut.mean) < 3 * both, (proj, hut)
    # The step barely matters: h → h/4 moves the estimate by well under its standard error
    # (the O(h²) error, measured: +0.4%).
    (m_h, _), (m_small, s_small) = proj.at_steps.values()
    assert abs(m_small - hut.mean) < 3 * math.hypot(hut.stderr, s_small)
    assert proj.converged is True
    assert abs(proj.step_change) < 0.2 * proj.stderr
    assert abs(proj.relative_change) < 0.01
    assert proj.step_change == pytest.approx(m_small - m_h, rel=1e-9)
    assert_unchanged(model, snap)


def test_relu_mlp_is_flagged_and_warns(digits_small):
    X, y = digits_small
    model = train(two_layer(nn.ReLU()), X, y, steps=200)
    snap = snapshot(model)
    land = lw.Landscape(model, (X, y))
    with pytest.warns(NonSmoothWarning, match=r"relu.*hutchinson") as record:
        proj = land.hessian.trace("projection", samples=30, seed=0)
    assert len(record) == 1 and issubclass(NonSmoothWarning, UserWarning)
    assert proj.smooth is False and proj.nonsmooth_ops == ("relu",)
    assert proj.evaluations == 4 * 30 + 1
    h, small = list(proj.at_steps)
    assert h == proj.h and small == pytest.approx(h / 4)
    assert len(proj.samples) == len(proj.samples_small_h) == 30
    for mean, err in proj.at_steps.values():
        assert math.isfinite(mean) and err > 0
    diff = proj.samples_small_h - proj.samples
    assert proj.step_change_stderr == pytest.approx(diff.std(ddof=1) / math.sqrt(30))
    # Kinks make the two steps differ direction by direction (a tanh net's differ by 0.3%).
    assert proj.step_change_stderr > 1e-3 * abs(proj.mean)

    # Hutchinson reports the same finding but never warns: it is autograd's Hessian.
    hut = no_warning(lambda: land.hessian.trace("hutchinson", samples=10, seed=0))
    assert hut.smooth is False and hut.nonsmooth_ops == ("relu",)
    assert_unchanged(model, snap)


@pytest.mark.parametrize(
    "act", [nn.Tanh(), nn.GELU(), nn.GELU("tanh"), nn.SiLU(), nn.Softplus(), nn.Sigmoid(),
            nn.ELU(), nn.CELU(2.0), nn.Mish()],
    ids=lambda a: repr(a),
)
def test_smooth_models_never_warn(act, digits_small):
    X, y = digits_small
    model = two_layer(act, width=8)
    land = lw.Landscape(model, (X[:64], y[:64]))
    tr = no_warning(lambda: land.hessian.trace("projection", samples=2, seed=0))
    assert tr.smooth is True and tr.nonsmooth_ops == ()


# --------------------------------------------------------------------------------- detection
def test_detection_of_functional_and_pooling_ops(digits_small):
    X, y = digits_small
    data = (X[:64], y[:64])
    assert ops_of(FunctionalReLU(), data) == ("relu",)
    assert ops_of(pooled_cnn(nn.Tanh()), data) == ("max_pool2d_with_indices",)
    assert ops_of(pooled_cnn(nn.ReLU(inplace=True)), data) == ("max_pool2d_with_indices", "relu")
    assert ops_of(WhereLeaky(), data) == ("gt",)
    assert ops_of(two_layer(nn.SELU()), data) == ("elu",)  # slopes 1.76 and 1.05 at 0
    assert ops_of(two_layer(nn.ReLU6()), data) == ("hardtanh",)
    assert ops_of(two_layer(nn.LeakyReLU()), data) == ("leaky_relu",)
    torch.manual_seed(0)
    pooled = nn.Sequential(nn.Linear(64, 16), nn.AdaptiveMaxPool1d(4), nn.Linear(4, 10))
    assert ops_of(pooled, data) == ("adaptive_max_pool2d",)  # 1-d pooling runs as 2-d
    for act in (nn.Tanh(), nn.GELU()):
        assert ops_of(two_layer(act), data) == ()
    # Data clamped before any parameter, F.normalize's eps floor never reached: smooth in θ.
    assert ops_of(ClampedInput(), data) == ()
    # Only the parameters H is taken over count: after the ReLU the loss is smooth in them.
    relu = FunctionalReLU()
    assert ops_of(relu, data, ["fc2.weight", "fc2.bias"]) == ()
    assert ops_of(relu, data, ["fc1.weight"]) == ("relu",)


def test_kinks_count_where_the_values_reach_them(digits_small):
    """Hardswish is x(x+3)/6 on (−3, 3): smooth there, kinked at ±3 once values reach them."""
    X, y = digits_small
    data = (X[:64], y[:64])
    model = two_layer(nn.Hardswish())
    with torch.no_grad():
        assert model[0](data[0]).abs().max() < 3
    assert ops_of(model, data) == ()
    with torch.no_grad():
        model[0].weight.mul_(20.0)
        z = model[0](data[0])
        assert (z < -3).any() and (z > 3).any()
    assert ops_of(model, data) == ("hardswish",)


def test_module_fallback_when_ops_cannot_be_recorded(digits_small, monkeypatch):
    X, y = digits_small

    def fail(*args, **kwargs):
        raise RuntimeError("no dispatch mode here")

    monkeypatch.setattr(smoothness, "forward", fail)
    data = (X[:32], y[:32])
    assert ops_of(pooled_cnn(nn.ReLU()), data) == ("nn.MaxPool2d", "nn.ReLU")
    assert ops_of(two_layer(nn.ReLU6()), data) == ("nn.ReLU6",)
    assert ops_of(two_layer(nn.ELU(alpha=0.5)), data) == ("nn.ELU",)
    assert ops_of(two_layer(nn.Tanh()), data) == ()
