"""Which parameters a direction moves (`random(..., params=)`), the Hessian's matching default,
and `towards` moving BatchNorm statistics by default (issue 11, items 2 and 5)."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
from helpers import eval_loss, mlp, mlp_bn
from torch import nn

import ls_widget as lw
from ls_widget.curvature import select_params
from ls_widget.directions.gaussian import normalize


def frozen_backbone(seed: int = 0) -> nn.Module:
    """A 64-32-16-10 MLP with the first two Linear layers frozen: only the head trains."""
    model = mlp(seed, sizes=(64, 32, 16, 10))
    for name, p in model.named_parameters():
        if not name.startswith("4."):
            p.requires_grad_(False)
    return model


def todays_draw(model: nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """The draw as `random` made it before `params=` existed: every tensor, filter-normalized."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    theta = {n: p.detach() for n, p in model.named_parameters()}
    raw = {n: torch.randn(p.shape, generator=gen) for n, p in theta.items()}
    return normalize(raw, theta, "filter", None)


def nonzero(d) -> list[str]:
    return [n for n in d if bool(d[n].any())]


# --------------------------------------------------------------------------------- random
def test_frozen_backbone_moves_only_the_head():
    model = frozen_backbone()
    names = [n for n, _ in model.named_parameters()]
    assert names == ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"]
    d = lw.directions.random(model, seed=3, ignore=None)
    assert list(d) == names
    for n in names[:4]:
        assert torch.equal(d[n], torch.zeros_like(d[n]))
    ref = todays_draw(model, 3)
    for n in ("4.weight", "4.bias"):
        assert torch.equal(d[n], ref[n])  # bit for bit: the head draws as it always did
    assert d.label == "random #3, filter-norm, trainable (2 of 6 tensors)"
    prov = d.provenance
    assert prov["params"] == "trainable"
    assert prov["selected"] == ["4.weight", "4.bias"]
    # With the default ignore="biasbn" the head's bias is still, its weight moves.
    d2 = lw.directions.random(model, seed=3)
    assert nonzero(d2) == ["4.weight"]
    assert torch.equal(d2["4.weight"], ref["4.weight"])


def test_all_is_todays_behaviour():
    model = frozen_backbone()
    d = lw.directions.random(model, seed=5, params="all", ignore=None)
    ref = todays_draw(model, 5)
    assert list(d) == list(ref)
    for n in ref:
        assert torch.equal(d[n], ref[n])
    assert d.label == "random #5, filter-norm"
    # A fully trainable model: the default equals "all", the label as before.
    full = mlp(0)
    for norm in ("filter", "layer", "model", None):
        a = lw.directions.random(full, seed=1, norm=norm)
        b = lw.directions.random(full, seed=1, norm=norm, params="all")
        assert all(torch.equal(a[n], b[n]) for n in a)
        assert "tensors" not in a.label
        assert "selected" not in a.provenance


def test_globs_and_predicate():
    model = mlp(0, sizes=(64, 32, 16, 10))
    d = lw.directions.random(model, seed=2, params=["2.*", "4.weight"], ignore=None)
    assert nonzero(d) == ["2.weight", "2.bias", "4.weight"]
    assert d.provenance["params"] == ["2.*", "4.weight"]
    assert d.label == "random #2, filter-norm, 2.*, 4.weight (3 of 6 tensors)"
    ref = todays_draw(model, 2)
    assert all(torch.equal(d[n], ref[n]) for n in nonzero(d))

    def weights_only(name, p):
        return name.endswith("weight") and p.dim() == 2

    dp = lw.directions.random(model, seed=2, params=weights_only, ignore=None)
    assert nonzero(dp) == ["0.weight", "2.weight", "4.weight"]
    assert dp.provenance["params"].startswith("predicate ")
    assert "weights_only" in dp.label
    # The predicate sees the live parameters (requires_grad included).
    model[0].weight.requires_grad_(False)
    dt = lw.directions.random(model, seed=2, params=lambda n, p: p.requires_grad and p.dim() > 1)
    assert nonzero(dt) == ["2.weight", "4.weight"]


def test_model_norm_over_the_selected_tensors():
    model = frozen_backbone()
    d = lw.directions.random(model, seed=0, norm="model", ignore=None)
    head = [p.detach() for n, p in model.named_parameters() if n.startswith("4.")]
    theta_norm = float(torch.sqrt(sum(p.double().pow(2).sum() for p in head)))
    assert d.norm() == pytest.approx(theta_norm, rel=1e-5)


def test_bad_selections_are_clear_errors():
    model = mlp(0)
    with pytest.raises(ValueError, match=r"layer4\.\*.*match no parameter.*'0\.weight'"):
        lw.directions.random(model, params=["layer4.*", "0.*"])
    with pytest.raises(ValueError, match="selects no parameter"):
        lw.directions.random(model, params=lambda n, p: False)
    with pytest.raises(ValueError, match=r"params=\[\] selects no parameter"):
        lw.directions.random(model, params=[])
    with pytest.raises(ValueError, match=r"params='fc' is not supported.*\['fc\*'\]"):
        lw.directions.random(model, params="fc")
    with pytest.raises(TypeError, match="glob patterns"):
        lw.directions.random(model, params=[1, 2])  # type: ignore[list-item]
    # Biases only with ignore="biasbn": nothing would move.
    with pytest.raises(ValueError, match=r"ignore=None"):
        lw.directions.random(model, params=["*.bias"])
    assert nonzero(lw.directions.random(model, params=["*.bias"], ignore=None)) == [
        "0.bias", "2.bias"]


def test_fully_frozen_model_moves_everything():
    model = mlp(0)
    model.requires_grad_(False)  # frozen for evaluation: nothing is singled out
    d = lw.directions.random(model, seed=0)
    ref = lw.directions.random(mlp(0), seed=0)
    assert all(torch.equal(d[n], ref[n]) for n in d)
    assert d.label == ref.label


# --------------------------------------------------------------------------------- Hessian
def test_hessian_defaults_to_the_direction_tensors():
    model = frozen_backbone()
    X = torch.randn(20, 64, generator=torch.Generator().manual_seed(0))
    y = torch.arange(20) % 10
    land = lw.Landscape(model, (X, y))
    d = lw.directions.random(model, seed=0, ignore=None)
    assert land.hessian.names == nonzero(d) == d.provenance["selected"]
    assert land.hessian_over("trainable").names == nonzero(d)
    # ignore="biasbn" on both sides.
    db = lw.directions.random(model, seed=0)
    assert land.hessian_over("biasbn").names == nonzero(db)
    # The same globs and predicates as the directions.
    assert land.hessian_over(["2.*"]).names == ["2.weight", "2.bias"]
    assert land.hessian_over(lambda n, p: p.requires_grad and p.dim() == 1).names == ["4.bias"]
    assert land.hessian_over("all").names == [n for n, _ in model.named_parameters()]
    assert land.hessian_over(["4.bias", "0.weight"]).names == ["4.bias", "0.weight"]  # order kept
    with pytest.raises(ValueError, match="unknown parameter names or patterns"):
        land.hessian_over(["layer4.*"])
    with pytest.raises(ValueError, match="selects no parameter"):
        land.hessian_over(lambda n, p: False)
    # select_params on the snapshot alone, with the same forms.
    space = land.space
    assert select_params(space, ["0.*"]) == ["0.weight", "0.bias"]
    assert select_params(space, "trainable", ["4.weight"]) == ["4.weight"]


# --------------------------------------------------------------------------------- towards
@pytest.fixture
def bn_models(digits_small):
    X, _ = digits_small
    a, b = mlp_bn(0), mlp_bn(1)
    with torch.no_grad():  # different running statistics
        a.train()(X[:100])
        b.train()(X[100:] * 1.5 + 0.2)
    return a.eval(), b.eval()


def midpoint(a: nn.Module, b: nn.Module) -> nn.Module:
    mid = copy.deepcopy(a)
    with torch.no_grad():
        for (_, pm), (_, pb) in zip(mid.named_parameters(), b.named_parameters(), strict=True):
            pm.add_(pb).mul_(0.5)
        for (_, bm), (_, bb) in zip(mid.named_buffers(), b.named_buffers(), strict=True):
            if bm.is_floating_point():
                bm.add_(bb).mul_(0.5)
    return mid


def test_towards_moves_bn_statistics_by_default(bn_models, digits_small):
    a, b = bn_models
    X, y = digits_small
    d = lw.directions.towards(a, b)
    assert set(d.buffers) == {"1.running_mean", "1.running_var"}
    assert d.provenance["buffers_moved"] is True
    land = lw.Landscape(a, (X, y))
    curve = land.line(d, span=(0, 1), n=3)
    np.testing.assert_array_equal(curve.x, [0.0, 0.5, 1.0])
    mid = eval_loss(midpoint(a, b), X, y)
    assert curve["loss"][1] == pytest.approx(mid, rel=1e-5, abs=1e-5)
    assert curve["loss"][2] == pytest.approx(eval_loss(b, X, y), rel=1e-5, abs=1e-5)
    # Opting out: weights only, so the midpoint is not the midpoint model.
    w_only = lw.directions.towards(a, b, buffers=False)
    assert w_only.buffers == {}
    assert w_only.provenance["buffers_moved"] is False
    c2 = land.line(w_only, span=(0, 1), n=3)
    assert abs(c2["loss"][1] - mid) > 1e-4
    assert abs(c2["loss"][2] - eval_loss(b, X, y)) > 1e-4


def test_towards_equal_buffers_move_nothing(bn_models):
    a, b = bn_models
    b2 = copy.deepcopy(a)
    with torch.no_grad():
        for p, q in zip(b2.parameters(), b.parameters(), strict=True):
            p.copy_(q)  # other weights, a's running statistics
    d = lw.directions.towards(a, b2)
    assert d.buffers == {}
    assert d.provenance["buffers_moved"] is False
    forced = lw.directions.towards(a, b2, buffers=True)
    assert set(forced.buffers) == {"1.running_mean", "1.running_var"}
    assert all(not bool(t.any()) for t in forced.buffers.values())
    assert forced.provenance["buffers_moved"] is True
    assert lw.directions.towards(mlp(0), mlp(1)).buffers == {}  # no buffers at all
    with pytest.raises(TypeError, match="buffers"):
        lw.directions.towards(a, b, buffers="auto")  # type: ignore[arg-type]


class _Act(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x)


def test_towards_warns_when_module_classes_differ():
    a = mlp(0)
    b = mlp(1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lw.directions.towards(a, b)  # same classes: no warning
    b[1] = _Act()  # ReLU → another activation: same parameter names and shapes
    with pytest.warns(UserWarning, match=r"'1' is ReLU and _Act"):
        d = lw.directions.towards(a, b)
    assert list(d) == [n for n, _ in a.named_parameters()]

    class Wrapped(nn.Sequential):
        pass

    c = Wrapped(*[copy.deepcopy(m) for m in a])
    with pytest.warns(UserWarning, match="Sequential and Wrapped"):
        lw.directions.towards(a, c)
    with pytest.raises(ValueError, match="architecture"):  # names/shapes differ: an error
        lw.directions.towards(a, mlp(0, sizes=(64, 16, 10)))
