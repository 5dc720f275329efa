"""Comparisons in the engine (issue 12): the plane through three models, named data sets,
the loss barrier along an interpolation, and train/test curves drawn solid and dashed."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import (
    assert_unchanged,
    cnn_bn,
    eval_loss,
    lw,
    mlp,
    naive_eval,
    snapshot,
    train,
)
from torch import nn
from torch.utils.data import DataLoader

ACC = {"accuracy": lw.metrics.accuracy}


def full_dot(a: lw.Direction, b: lw.Direction) -> float:
    """⟨a, b⟩ over parameters and buffer deltas, float64 (the inner product `through` uses)."""
    keys = [*a, *a.buffers]
    ta, tb = {**a, **a.buffers}, {**b, **b.buffers}
    return float(sum((ta[k].double() * tb[k].double()).sum() for k in keys))


# --------------------------------------------------------------------------------- through
@pytest.fixture(scope="module")
def three_mlps(digits_small):
    X, y = digits_small
    return [train(mlp(s), X, y, steps=40, seed=s) for s in range(3)]


@pytest.fixture(scope="module")
def three_cnns(digits_images):
    """Three BatchNorm CNNs from different seeds: their running statistics differ."""
    X, y = digits_images
    models = [train(cnn_bn(s), X, y, steps=8, seed=s, batch=64) for s in range(3)]
    assert not torch.allclose(models[0][1].running_var, models[1][1].running_var)
    assert not torch.allclose(models[0][1].running_var, models[2][1].running_var)
    return models


def _check_plane(models, X, y) -> tuple[lw.Direction, lw.Direction, dict]:
    """through() on `models`: each model's loss at its coordinates, d1 ⟂ d2, coordinates as
    Garipov et al. define them; the models untouched."""
    snaps = [snapshot(m) for m in models]
    d1, d2, coords = lw.directions.through(*models)
    assert coords["m0"] == (0.0, 0.0) and coords["m1"] == (1.0, 0.0) and coords["m2"][1] == 1.0
    # a = ⟨θ2 − θ0, θ1 − θ0⟩ / ‖θ1 − θ0‖², from the models directly.
    e1 = lw.directions.towards(models[0], models[1], buffers=bool(d1.buffers))
    e2 = lw.directions.towards(models[0], models[2], buffers=bool(d1.buffers))
    assert coords["m2"][0] == pytest.approx(full_dot(e2, e1) / full_dot(e1, e1), rel=1e-12)
    assert abs(full_dot(d1, d2)) <= 1e-6 * (full_dot(d1, d1) * full_dot(d2, d2)) ** 0.5
    for d in (d1, d2):
        assert d.provenance["kind"] == "through" and d.provenance["markers"] == coords
    land = lw.Landscape(models[0], (X, y))
    names = ("m0", "m1", "m2")
    got = land.evaluate([d1, d2], [coords[k] for k in names])["loss"]
    own = [eval_loss(m, X, y) for m in models]
    assert len({round(v, 4) for v in own}) == 3  # three different losses: the check has teeth
    np.testing.assert_allclose(got, own, rtol=1e-5, atol=1e-6)
    for m, s in zip(models, snaps, strict=True):
        assert_unchanged(m, s)
    return d1, d2, coords


def test_through_mlps_puts_each_model_at_its_coordinates(three_mlps, digits_small):
    d1, d2, _ = _check_plane(three_mlps, *digits_small)
    assert not d1.buffers and not d2.buffers
    assert abs(d1.dot(d2)) <= 1e-6 * d1.norm() * d2.norm()


def test_through_batchnorm_cnns_moves_running_statistics(three_cnns, digits_images):
    X, y = digits_images
    d1, d2, coords = _check_plane(three_cnns, X, y)
    assert set(d1.buffers) == set(d2.buffers) == {"1.running_mean", "1.running_var"}
    assert d1.provenance["buffers_moved"] is True
    # A plane over the unit square: m1 at grid point (x=1, y=0); the record carries the markers.
    land = lw.Landscape(three_cnns[0], (X, y))
    surf = land.plane(d1, d2, span=((0, 1), (0, 1)), n=2, progress=False)
    assert surf["loss"][0, 1] == pytest.approx(eval_loss(three_cnns[1], X, y), rel=1e-5)
    assert surf.directions[0]["markers"] == coords
    # Weights only: the running statistics stay m0's, so m2's point is not m2.
    w1, w2, c2 = lw.directions.through(*three_cnns, buffers=False)
    assert not w1.buffers and not w2.buffers
    at_m2 = land.evaluate([w1, w2], [c2["m2"]])["loss"][0]
    assert abs(at_m2 - eval_loss(three_cnns[2], X, y)) > 1e-3
    ref = naive_eval(three_cnns[0], (X, y), F.cross_entropy, [w1, w2], [c2["m2"]])
    assert at_m2 == pytest.approx(ref["loss"][0], rel=1e-5)


def test_through_takes_state_dicts(three_mlps):
    a, b, c = three_mlps
    d1, d2, coords = lw.directions.through(a, b.state_dict(), c.state_dict())
    r1, r2, ref = lw.directions.through(a, b, c)
    assert coords == ref
    for k in d1:
        assert torch.equal(d1[k], r1[k]) and torch.equal(d2[k], r2[k])


def test_through_errors_name_the_key(three_mlps, three_cnns):
    a, b, c = three_mlps
    other = mlp(3, sizes=(64, 16, 10))
    with pytest.raises(ValueError, match=r"m2 does not have m0's architecture: parameter "
                       r"'0.weight' has shape \(32, 64\) in m0 and shape \(16, 64\) in m2"):
        lw.directions.through(a, b, other)
    with pytest.raises(ValueError, match=r"state dict m1 does not fit m0's architecture: entry "
                       r"'0.weight' has shape \(32, 64\) in m0 and shape \(16, 64\)"):
        lw.directions.through(a, other.state_dict(), c)
    missing = {k: v for k, v in b.state_dict().items() if k != "2.bias"}
    with pytest.raises(ValueError, match=r"entry '2.bias' is missing from the state dict m1"):
        lw.directions.through(a, missing, c)
    with pytest.raises(ValueError, match=r"checkpoint\['model'\]"):
        lw.directions.through(a, {"model": b.state_dict()}, c)
    # BatchNorm without running statistics: the parameters match, the buffers do not.
    x, y, z = three_cnns
    no_stats = copy.deepcopy(y)
    no_stats[1] = nn.BatchNorm2d(4, track_running_stats=False)
    with pytest.raises(ValueError, match=r"m0's buffer '1.running_mean' is missing from m1"):
        lw.directions.through(x, no_stats, z)
    with pytest.raises(TypeError, match="m2 is a str"):
        lw.directions.through(a, b, "model.pt")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="buffers"):
        lw.directions.through(a, b, c, buffers="yes")  # type: ignore[arg-type]


def test_through_degenerate_planes(three_mlps):
    a, b, _ = three_mlps
    with pytest.raises(ValueError, match="m1 equals m0"):
        lw.directions.through(a, copy.deepcopy(a), b)
    beyond = copy.deepcopy(a)  # θ0 + 2(θ1 − θ0): on the line through m0 and m1
    with torch.no_grad():
        for p, p0, p1 in zip(beyond.parameters(), a.parameters(), b.parameters(), strict=True):
            p.copy_(p0 + 2 * (p1 - p0))
    with pytest.raises(ValueError, match="on the line through m0 and m1"):
        lw.directions.through(a, b, beyond)


# --------------------------------------------------------------------------------- named sets
@pytest.fixture(scope="module")
def split(digits):
    X, y = digits
    return (X[:240], y[:240]), (X[1500:1620], y[1500:1620])


@pytest.fixture(scope="module")
def named(trained_mlp, split):
    train_set, test_set = split
    land = lw.Landscape(trained_mlp, {"train": train_set, "test": test_set}, metrics=ACC)
    alone = [lw.Landscape(trained_mlp, s, metrics=ACC) for s in split]
    return land, alone


def _joined(alone, values_of) -> dict[str, np.ndarray]:
    out = {}
    for name, land in zip(("train", "test"), alone, strict=True):
        out.update({f"{name}/{k}": v for k, v in values_of(land).items()})
    return out


def test_named_sets_names_and_centre(named, trained_mlp, split):
    land, alone = named
    assert land.metric_names == ("train/loss", "train/accuracy", "test/loss", "test/accuracy")
    assert land.data_sets == ("train", "test")
    assert alone[0].data_sets == ()
    centre = land.center()
    assert centre == _joined(alone, lambda la: la.center())
    assert centre["test/loss"] == pytest.approx(eval_loss(trained_mlp, *split[1]), rel=1e-5)
    assert centre["train/loss"] != centre["test/loss"]
    meta = land.describe()
    assert meta["data_sets"] == {"train": 240, "test": 120} and meta["n_samples"] == 360
    # Curvature uses the first set: H v is the train-only Landscape's, bit for bit.
    v = torch.randn(land.hessian.size, generator=torch.Generator().manual_seed(0))
    assert torch.equal(land.hessian.operator().hvp(v), alone[0].hessian.operator().hvp(v))
    assert land.hessian.ev is land.evaluator


def test_named_sets_values_equal_single_sets_bit_for_bit(named, trained_mlp):
    land, alone = named
    d1 = lw.directions.random(trained_mlp, seed=0)
    d2 = lw.directions.random(trained_mlp, seed=1)
    curve = land.line(d1, span=0.5, n=5, progress=False)
    ref = _joined(alone, lambda la: la.line(d1, span=0.5, n=5, progress=False).values)
    assert list(curve.values) == list(ref)
    for k, v in ref.items():
        np.testing.assert_array_equal(curve[k], v, err_msg=k)
    surf = land.plane(d1, d2, span=0.5, n=3, progress=False)
    ref = _joined(alone, lambda la: la.plane(d1, d2, span=0.5, n=3, progress=False).values)
    for k, v in ref.items():
        np.testing.assert_array_equal(surf[k], v, err_msg=k)
    pts = [(0.1, -0.2), (0.3, 0.05)]
    got = land.evaluate([d1, d2], pts)
    ref = _joined(alone, lambda la: la.evaluate([d1, d2], pts))
    assert list(got) == list(ref)
    for k, v in ref.items():
        np.testing.assert_array_equal(got[k], v, err_msg=k)
    tiles = list(land.stream(d1, d2, span=0.5, n=3))
    assert all(tuple(t.values) == land.metric_names for t in tiles)
    assert sum(len(t.values["test/loss"]) for t in tiles) == 9
    assert land.describe([d1, d2])["evaluation"].keys() == {"train", "test"}


def test_named_sets_of_any_kind_with_subset_and_memory_per_set(trained_mlp, split):
    (Xa, ya), (Xb, yb) = split
    # One layout for all sets (the model takes x=...): whole arrays, and a loader of dicts.
    loader = DataLoader([{"x": u, "labels": v} for u, v in zip(Xb, yb, strict=True)],
                        batch_size=32)
    sets = {"fit": {"x": Xa, "labels": ya}, "held_out": loader}

    class Keyword(nn.Module):  # dict batches call model(**inputs)
        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.inner(x)

    model = Keyword(trained_mlp)
    land = lw.Landscape(model, sets, F.cross_entropy, subset=100, memory="64MB",
                        target="labels")
    alone = [lw.Landscape(model, s, F.cross_entropy, subset=100, memory="64MB",
                          target="labels") for s in sets.values()]
    assert land.metric_names == ("fit/loss", "held_out/loss")
    assert land.describe()["data_sets"] == {"fit": 100, "held_out": 100}
    assert [ev.memory_budget for ev in land._points.evaluators.values()] == [
        la.evaluator.memory_budget for la in alone]
    d = lw.directions.random(model, seed=2)
    got = land.line(d, span=0.4, n=3, progress=False)
    for name, la in zip(sets, alone, strict=True):
        np.testing.assert_array_equal(got[f"{name}/loss"],
                                      la.line(d, span=0.4, n=3, progress=False)["loss"])


def test_dict_of_arrays_is_still_one_data_set(trained_mlp, split):
    (X, y), _ = split

    class Keyword(nn.Module):
        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.inner(x)

    land = lw.Landscape(Keyword(trained_mlp), {"x": X, "labels": y}, F.cross_entropy)
    assert land.metric_names == ("loss",) and land.data_sets == ()
    assert land.center()["loss"] == pytest.approx(eval_loss(trained_mlp, X, y), rel=1e-5)
    land_np = lw.Landscape(Keyword(trained_mlp), {"x": X.numpy(), "labels": y.numpy()},
                           F.cross_entropy)
    assert land_np.metric_names == ("loss",)


def test_named_sets_errors(trained_mlp, split):
    train_set, test_set = split
    with pytest.raises(ValueError, match="empty dict"):
        lw.Landscape(trained_mlp, {})
    with pytest.raises(ValueError, match=r"'train/a' contains '/'.*'train_a'"):
        lw.Landscape(trained_mlp, {"train/a": train_set})
    with pytest.raises(TypeError, match="names must be non-empty strings, got 1"):
        lw.Landscape(trained_mlp, {1: train_set})
    X, y = test_set
    with pytest.raises(ValueError, match=r"data set 'test': X has 120 samples but y has 7"):
        lw.Landscape(trained_mlp, {"train": train_set, "test": (X, y[:7])})


# --------------------------------------------------------------------------------- barrier
def test_barrier_of_a_known_bump():
    x = np.linspace(0.0, 1.0, 21)
    line = 2.0 - 1.5 * x
    curve = lw.Curve(x=x, values={"loss": line + 0.3 * np.sin(np.pi * x), "flat": line})
    assert curve.barrier() == pytest.approx(0.3, rel=1e-12)
    assert curve.barrier("flat") == pytest.approx(0.0, abs=1e-12)
    convex = lw.Curve(x=x, values={"loss": (x - 0.5) ** 2})
    assert convex.barrier() == 0.0  # zero at the ends: never negative
    # A longer curve (Li et al.'s span −0.5..1.5): the ends are the curve's, or `between`.
    xs = np.linspace(-0.5, 1.5, 41)
    bump = np.where((xs >= 0) & (xs <= 1), 0.3 * np.sin(np.pi * xs), 0.0)
    walls = 2.0 * (np.maximum(0.0, -xs) ** 2 + np.maximum(0.0, xs - 1.0) ** 2)
    long = lw.Curve(x=xs, values={"train/loss": 1.0 + bump + walls})
    assert long.barrier("train/loss", between=(0, 1)) == pytest.approx(0.3, rel=1e-9)
    # Between the curve's own ends (both at 1.5) the bump stays under the chord.
    assert long.barrier("train/loss") == 0.0
    with pytest.raises(ValueError, match=r"no metric 'loss'.*pass metric='train/loss'"):
        long.barrier()
    with pytest.raises(ValueError, match=r"0.33 is not a point of this curve"):
        long.barrier("train/loss", between=(0.0, 0.33))
    with pytest.raises(ValueError, match="one point twice"):
        long.barrier("train/loss", between=(1.0, 1.0))
    nan = lw.Curve(x=x, values={"loss": np.where(x == 0.5, np.nan, line)})
    assert np.isnan(nan.barrier())


def test_barrier_between_two_trained_mlps(digits, split):
    """Two digits MLPs trained from different seeds: a loss barrier between them, equal to
    the one computed from interpolated models by hand."""
    X, y = digits
    a = train(mlp(0), X, y, steps=100, seed=0)
    b = train(mlp(1), X, y, steps=100, seed=1)
    train_set, test_set = split
    land = lw.Landscape(a, {"train": train_set, "test": test_set})
    curve = land.line(lw.directions.towards(a, b), span=(0, 1), n=11, progress=False)
    ref = []
    for alpha in curve.x:
        m = copy.deepcopy(a)
        with torch.no_grad():
            for p, pa, pb in zip(m.parameters(), a.parameters(), b.parameters(), strict=True):
                p.copy_((1 - alpha) * pa + alpha * pb)
        ref.append(eval_loss(m, *test_set))
    ref = np.array(ref)
    by_hand = np.max(ref - ((1 - curve.x) * ref[0] + curve.x * ref[-1]))
    assert curve.barrier("test/loss") == pytest.approx(by_hand, rel=1e-4, abs=1e-6)
    assert curve.barrier("test/loss") > 0.05
    assert curve.barrier("train/loss") > 0.05


# --------------------------------------------------------------------------------- figures
def test_curve_figure_draws_train_solid_and_test_dashed():
    x = np.linspace(0, 1, 5)
    curve = lw.Curve(x=x, values={"train/loss": 1 + x, "train/accuracy": 0.9 - 0.1 * x,
                                  "test/loss": 1.2 + x, "test/accuracy": 0.8 - 0.1 * x})
    fig = curve.plot()
    lines = {ln.get_label(): ln for ax in fig.axes for ln in ax.get_lines()
             if not ln.get_label().startswith("_")}
    assert set(lines) == set(curve.metrics)
    for metric in ("loss", "accuracy"):
        train_line, test_line = lines[f"train/{metric}"], lines[f"test/{metric}"]
        assert train_line.get_linestyle() == "-" and test_line.get_linestyle() == "--"
        assert train_line.get_color() == test_line.get_color()
    assert lines["train/loss"].get_color() != lines["train/accuracy"].get_color()
    assert lines["train/loss"].axes is not lines["train/accuracy"].axes  # twin axis
    legend = [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().texts]
    assert sorted(legend) == sorted(curve.metrics)
    # One data set: as before, the loss solid and the other metrics dashed.
    single = lw.Curve(x=x, values={"loss": 1 + x, "accuracy": 0.9 - 0.1 * x})
    styles = {ln.get_label(): ln.get_linestyle() for ax in single.plot().axes
              for ln in ax.get_lines()}
    assert styles["loss"] == "-" and styles["accuracy"] == "--"


def test_curve_figure_with_named_sets_from_a_landscape(named, trained_mlp):
    land, _ = named
    curve = land.line(lw.directions.random(trained_mlp, seed=0), span=0.3, n=3, progress=False)
    fig = curve.plot()
    styles = {ln.get_label(): ln.get_linestyle() for ax in fig.axes for ln in ax.get_lines()}
    assert styles["train/loss"] == "-" and styles["test/loss"] == "--"
