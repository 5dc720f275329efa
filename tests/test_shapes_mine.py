"""Constructions, mining and surveys of shapes (issue 13, Xu et al. 2024) on a trained digits
MLP: the constructed and mined directions show their shapes, the model is never touched, the
limits (steps, seconds, cancel) stop mining where asked, the same call gives the same bits,
and a v-basin × mined w-peak plane is a saddle."""

from __future__ import annotations

import copy
import math
import re
import threading

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import assert_unchanged, mlp, snapshot, train
from torch import nn

import ls_widget as lw
from ls_widget.engine.params import filter_norms
from ls_widget.shapes.classify import KINDS, classify
from ls_widget.shapes.mine import Mined
from ls_widget.shapes.mine_plane import MinedPlane
from ls_widget.shapes.survey import Survey, survey


@pytest.fixture(scope="module")
def land(trained_mlp, digits) -> lw.Landscape:
    return lw.Landscape(trained_mlp, digits)


@pytest.fixture(scope="module")
def peak(land) -> Mined:
    return land.mine("w-peak", progress=False)


def assert_filter_normalized(d: lw.Direction, model: nn.Module, moving: set[str]) -> None:
    """Each moving filter has the model's filter norm; everything else is zero."""
    for name, p in model.named_parameters():
        if name in moving:
            torch.testing.assert_close(filter_norms(d[name]), filter_norms(p.detach()))
        else:
            assert not d[name].any(), name


# ------------------------------------------------------------------ constructions
def test_v_side_is_the_normalized_gradient(land, trained_mlp, digits):
    X, y = digits
    ref = copy.deepcopy(trained_mlp)
    F.cross_entropy(ref(X), y).backward()
    grads = {n: p.grad for n, p in ref.named_parameters()}
    weights = [n for n, p in ref.named_parameters() if p.dim() > 1]
    d = land.construct("v-side")
    assert d.provenance["target"] == "v-side"
    g = torch.cat([grads[n].reshape(-1) for n in weights]).double()
    v = torch.cat([d[n].reshape(-1) for n in weights]).double()
    theta = torch.cat([dict(ref.named_parameters())[n].detach().reshape(-1) for n in weights])
    assert float(v @ g / (v.norm() * g.norm())) == pytest.approx(1.0, abs=1e-6)
    assert float(v.norm()) == pytest.approx(float(theta.double().norm()), rel=1e-6)
    assert not d["0.bias"].any() and not d["2.bias"].any()
    # The loss's minimum along ∇L lies at α ≈ −0.005 at this scale: a span of 0.01 sees the
    # model on its wall.
    curve = land.line(d, span=0.01, n=41, progress=False)
    shape = classify(curve)
    assert shape.kind == "v-side", shape
    f = curve["loss"]
    assert f[-1] > f[21] > f[20] > f[19]  # rising through the model along +∇L


def test_w_basin_towards_a_second_solution(land, trained_mlp, digits):
    X, y = digits
    other = train(mlp(2), X, y, steps=100, seed=2)
    d = land.construct("w-basin", other=other)
    theirs = dict(other.named_parameters())
    for n, p in trained_mlp.named_parameters():
        torch.testing.assert_close(d[n], theirs[n].detach() - p.detach())
    shape = classify(land.line(d, span=(-0.5, 1.5), n=41, progress=False))
    assert shape.kind == "w-basin", shape
    assert [round(m.alpha) for m in shape.minima] == [0, 1]
    mined = land.mine("w-basin", other=other, span=1.5, progress=False)
    assert mined.reached and mined.history == ()


def test_v_basin_is_the_seeded_gaussian(land, trained_mlp):
    d = land.construct("v-basin", seed=3)
    ref = lw.directions.random(trained_mlp, 3)
    assert all(torch.equal(d[n], ref[n]) for n in ref)
    assert classify(land.line(d, n=41, progress=False)).kind == "v-basin"


# ------------------------------------------------------------------ mining
def test_mining_w_peak_reaches_it_and_leaves_the_model(trained_mlp, digits, peak):
    snap = snapshot(trained_mlp)
    land = lw.Landscape(trained_mlp, digits)
    mined = land.mine("vvv-basin", progress=False)
    assert_unchanged(trained_mlp, snap)
    for m, target in ((peak, "w-peak"), (mined, "vvv-basin")):
        p = m.direction.provenance
        assert m.reached and m.shape.kind == target, m
        assert (p["kind"], p["target"], p["stopped"]) == ("mined", target, "reached")
        assert p["start"].startswith("hessian (eigenvalue -")
        assert p["steps"] % 10 == 0 and p["steps"] < 200
        assert len(m.history) == p["steps"] + 1 and m.history[-1] < 0
        assert p["margin"] == m.shape.margin >= 0.5
        assert classify(m.curve).kind == target
        np.testing.assert_allclose(m.curve.x, np.linspace(-1, 1, 41), atol=1e-12)
        assert m.curve.directions[0]["target"] == target
        assert_filter_normalized(m.direction, trained_mlp,
                                 {n for n, t in trained_mlp.named_parameters() if t.dim() > 1})
    # The w-peak's dips lie below the model, halfway to the ends.
    f = peak.curve["loss"]
    assert f[10] < f[20] and f[30] < f[20]


def test_steps_budget_and_cancel_stop_mining(land):
    seven = land.mine("w-peak", steps=7, start="random", progress=False)
    p = seven.direction.provenance
    assert (p["steps"], p["stopped"], len(seven.history)) == (7, "steps", 8)
    assert not seven.reached
    assert classify(seven.curve).kind == seven.shape.kind

    timed = land.mine("w-peak", budget=1e-9, start="random", progress=False)
    assert (timed.direction.provenance["steps"], timed.direction.provenance["stopped"]) == (
        0, "budget")

    cancel = threading.Event()
    seen: list[tuple[int, float]] = []

    def callback(step: int, objective: float, d: lw.Direction) -> None:
        seen.append((step, objective))
        assert isinstance(d, lw.Direction)
        if step == 3:
            cancel.set()

    stopped = land.mine("w-peak", start="random", cancel=cancel, callback=callback,
                        progress=False)
    p = stopped.direction.provenance
    assert (p["steps"], p["stopped"]) == (3, "cancelled")
    assert [s for s, _ in seen] == [0, 1, 2, 3]
    assert [j for _, j in seen] == list(stopped.history)
    # The first steps are those of the uncancelled run: the limits never change a step.
    assert stopped.history == seven.history[:4]


def test_mining_is_deterministic(trained_mlp, digits, peak):
    again = lw.Landscape(trained_mlp, digits).mine("w-peak", progress=False)
    assert again.history == peak.history
    for n in peak.direction:
        assert torch.equal(again.direction[n], peak.direction[n]), n
    np.testing.assert_array_equal(again.curve["loss"], peak.curve["loss"])


def test_frozen_parameters_stay_zero(digits):
    model = train(mlp(0), *digits, steps=100)
    model[0].weight.requires_grad_(False)
    land = lw.Landscape(model, digits)
    mined = land.mine("w-peak", steps=5, start="random", progress=False)
    assert_filter_normalized(mined.direction, model, {"2.weight"})
    assert model[0].weight.requires_grad is False


def test_a_model_without_negative_curvature_starts_from_the_gaussian():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 2))  # least squares: H is positive semi-definite
    X = torch.randn(64, 3)
    land = lw.Landscape(model, (X, X @ torch.randn(3, 2)), loss=F.mse_loss)
    mined = land.mine("w-peak", steps=3, progress=False)
    assert mined.direction.provenance["start"].startswith("random #0 (the smallest Hessian")


# ------------------------------------------------------------------ planes
def test_mine_plane_saddle(land, trained_mlp, peak):
    snap = snapshot(trained_mlp)
    plane = land.mine_plane("saddle", n=41, progress=False)
    assert_unchanged(trained_mlp, snap)
    assert isinstance(plane, MinedPlane)
    assert plane.shape.kind == "saddle", plane.shape
    # d2 is the w-peak mined with the same arguments; d1 the Gaussian made orthogonal to it.
    assert all(torch.equal(plane.d2[n], peak.direction[n]) for n in peak.direction)
    assert abs(plane.d1.dot(plane.d2)) < 1e-6 * plane.d1.norm() * plane.d2.norm()
    assert classify(plane.surface, along="x").kind == "v-basin"
    assert classify(plane.surface, along="y").kind == "w-peak"
    assert plane.surface.directions[1]["target"] == "w-peak"


def test_mine_plane_wine_bottle(land):
    plane = land.mine_plane("wine-bottle", progress=False)
    assert plane.shape.kind == "wine-bottle", plane.shape
    p = plane.d2.provenance
    assert (p["target"], p["stopped"], p["reached"]) == ("wine-bottle", "reached", True)
    assert abs(plane.d1.dot(plane.d2)) < 1e-6 * plane.d1.norm() * plane.d2.norm()


# ------------------------------------------------------------------ survey
def test_named_data_sets_classify_their_first_set_loss(trained_mlp, digits):
    """With named data sets the loss is "train/loss": the survey and the miner's judge read it."""
    X, y = digits
    named = lw.Landscape(trained_mlp, {"train": (X[:600], y[:600]), "test": (X[600:], y[600:])})
    s = survey(named, 3, points=21, progress=False)
    assert all(shape.metric == "train/loss" for shape in s.shapes)
    mined = named.mine("w-peak", n=21, steps=3, progress=False)
    assert mined.shape.metric == "train/loss" and len(mined.history) == 4


def test_survey(land, trained_mlp):
    s = survey(land, 6, seed=10, points=21, progress=False)
    assert isinstance(s, Survey)
    assert s.seeds == tuple(range(10, 16)) and len(s.kinds) == len(s.shapes) == 6
    counts = s.counts()
    assert tuple(counts) == KINDS and sum(counts.values()) == 6
    curve = land.line(lw.directions.random(trained_mlp, 12), n=21, progress=False)
    assert s.kinds[2] == classify(curve).kind == s.shapes[2].kind
    assert counts["v-basin"] >= 5  # Xu et al.'s first finding
    table = s.table()
    assert "6 random directions" in table and "seeds 10..15" in table
    assert f"{'v-basin':<10} {counts['v-basin']:>6}" in table
    assert set(s.seeds_of("v-basin")) <= set(s.seeds)
    assert "<table>" in s._repr_html_()
    ax = s.plot()
    assert isinstance(ax, plt.Axes)
    assert [t.get_text() for t in ax.get_xticklabels()] == list(KINDS)
    plt.close(ax.figure)


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize(("call", "message"), [
    (lambda L: L.mine("w-pek"), "did you mean 'w-peak'"),
    (lambda L: L.construct("w-peak"), "'w-peak' is mined"),
    (lambda L: L.mine("saddle"), "'saddle' is a plane: land.mine_plane('saddle')"),
    (lambda L: L.mine_plane("w-peak"), "'w-peak' is mined"),
    (lambda L: L.mine("w-peak", span=-1.0), "span=-1.0 must be a positive number"),
    (lambda L: L.mine("w-peak", span=math.nan), "span=nan"),
    (lambda L: L.mine("w-peak", n=3), "n=3 must be an int of at least 5"),
    (lambda L: L.mine("w-peak", steps=-1), "steps=-1"),
    (lambda L: L.mine("w-peak", steps=2.5), "steps=2.5"),
    (lambda L: L.mine("w-peak", budget=0), "budget=0"),
    (lambda L: L.mine("w-peak", lr=0.0), "lr=0.0"),
    (lambda L: L.mine("w-peak", margin=1.5), "margin=1.5"),
    (lambda L: L.mine("w-peak", start="eigen"), "start='eigen' is not supported"),
    (lambda L: L.construct("w-basin"), "needs other="),
    (lambda L: L.construct("v-side", other=nn.Linear(2, 2)), "other= applies to"),
    (lambda L: L.mine("w-peak", other=nn.Linear(2, 2)), "other= applies to"),
    (lambda L: L.mine_plane("saddle", n=2), "n=2"),
    (lambda L: survey(L, 0), "n=0 must be a positive int"),
    (lambda L: survey(L, 3, points=1), "points=1"),
])
def test_bad_input(land, call, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        call(land)


@pytest.mark.parametrize(("call", "message"), [
    (lambda L: L.mine("w-peak", progress="no"), "progress must be True or False"),
    (lambda L: L.mine("w-peak", seed=1.5), "seed must be an int"),
    (lambda L: L.mine("w-peak", cancel=True), "cancel must be a threading.Event"),
    (lambda L: L.mine("w-peak", callback=3), "callback must be fn"),
    (lambda L: L.mine_plane("wine-bottle", stride=2, steps=0), "unexpected arguments"),
])
def test_bad_types(land, call, message):
    with pytest.raises(TypeError, match=message):
        call(land)


def test_start_direction_of_another_model(land):
    other = lw.directions.random(nn.Sequential(nn.Linear(64, 10)), 0)
    with pytest.raises(ValueError, match="does not match this model's parameters"):
        land.mine("w-peak", start=other, progress=False)
