"""Metrics over all the data (issue item 4): stateful metrics (update / compute / reset, e.g.
torchmetrics) are computed at every point exactly as on all the data at once, whatever the
batch size and the run mode; batch-mean metrics keep working next to them; bad ones are clear
errors."""

from __future__ import annotations

import copy
import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import lw, mlp
from torch import nn
from torch.func import functional_call
from torchmetrics.classification import MulticlassAUROC, MulticlassF1Score
from torchmetrics.functional.classification import multiclass_auroc, multiclass_f1_score

N_IN, N_OUT, N = 8, 3, 60
BATCH_SIZES = [7, 16, None]  # None: all the data in one batch
STRATEGIES = ["loop", "vmap"]


@pytest.fixture(scope="module")
def classifier():
    model = mlp(0, sizes=(N_IN, 6, N_OUT))
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(N, N_IN, generator=g), torch.randint(0, N_OUT, (N,), generator=g)
    return model, X, y


@pytest.fixture(scope="module")
def regressor():
    model = mlp(1, sizes=(N_IN, 6, 1))
    g = torch.Generator().manual_seed(1)
    X = torch.randn(N, N_IN, generator=g)
    y = (X[:, :1] * 0.5 + 0.1 * torch.randn(N, 1, generator=g)).float()
    return model, X, y


class R2:
    """R² = 1 − SS_res / SS_tot over everything fed since the last reset (float64 sums)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.n = 0
        self.sum_y = self.sum_y2 = self.ss_res = 0.0

    def update(self, output: torch.Tensor, target: torch.Tensor) -> None:
        if not torch.isfinite(output).all():  # the engine must not feed a diverged output
            raise AssertionError("fed a non-finite output")
        o, t = output.double().reshape(-1), target.double().reshape(-1)
        self.n += t.numel()
        self.sum_y += float(t.sum())
        self.sum_y2 += float((t * t).sum())
        self.ss_res += float(((o - t) ** 2).sum())

    def compute(self) -> float:
        ss_tot = self.sum_y2 - self.sum_y**2 / self.n
        return 1.0 - self.ss_res / ss_tot


def r2_all(output: torch.Tensor, target: torch.Tensor) -> float:
    o, t = output.double().reshape(-1), target.double().reshape(-1)
    return float(1 - ((o - t) ** 2).sum() / ((t - t.mean()) ** 2).sum())


def directions(model):
    return lw.directions.random(model, seed=0), lw.directions.random(model, seed=1)


def outputs_at(model, d1, d2, a, b, X):
    """The model's output on all the data at once at θ₀ + a·d₁ + b·d₂ (independent of the
    engine: functional_call on the model's own parameters)."""
    params = {n: p.detach() + a * d1[n] + b * d2[n] for n, p in model.named_parameters()}
    with torch.no_grad():
        return functional_call(model, params, (X,))


def reference(model, X, d1, d2, surf, fn):
    """fn(output on all data, at each point of `surf`), shaped like the surface."""
    return np.array([[fn(outputs_at(model, d1, d2, a, b, X)) for a in surf.x] for b in surf.y])


# ------------------------------------------------------------------- exact over all the data
@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("batch_size", BATCH_SIZES)
def test_user_r2_equals_r2_on_all_data(regressor, strategy, batch_size):
    model, X, y = regressor
    land = lw.Landscape(model, (X, y), F.mse_loss, {"r2": R2()}, batch_size=batch_size,
                        strategy=strategy)
    d1, d2 = directions(model)
    surf = land.plane(d1, d2, n=3)
    assert land.evaluator.chosen["mode"] == strategy
    ref = reference(model, X, d1, d2, surf, lambda out: r2_all(out, y))
    np.testing.assert_allclose(surf["r2"], ref, rtol=1e-5, atol=1e-6)


def test_batch_means_of_r2_would_differ(regressor):
    """What the stateful path fixes: R² averaged over batches of 7 is not R² of the data (so
    the test above can tell them apart)."""
    model, X, y = regressor
    with torch.no_grad():
        out = model(X)
    by_batch = [(r2_all(out[i:i + 7], y[i:i + 7]), len(y[i:i + 7])) for i in range(0, N, 7)]
    mean = sum(v * n for v, n in by_batch) / N
    assert abs(mean - r2_all(out, y)) > 1e-2


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("batch_size", BATCH_SIZES)
def test_torchmetrics_f1_and_auroc_equal_them_on_all_data(classifier, strategy, batch_size):
    model, X, y = classifier
    f1 = MulticlassF1Score(num_classes=N_OUT, average="macro")
    auroc = MulticlassAUROC(num_classes=N_OUT)
    land = lw.Landscape(model, (X, y), metrics={"f1": f1, "auroc": auroc},
                        batch_size=batch_size, strategy=strategy)
    d1, d2 = directions(model)
    surf = land.plane(d1, d2, n=3)
    assert land.evaluator.chosen["mode"] == strategy
    # torchmetrics' functional forms on the logits of all the data at once (softmax inside).
    ref_f1 = reference(model, X, d1, d2, surf, lambda out: float(
        multiclass_f1_score(out, y, num_classes=N_OUT, average="macro")))
    ref_auroc = reference(model, X, d1, d2, surf, lambda out: float(
        multiclass_auroc(out, y, num_classes=N_OUT)))
    np.testing.assert_allclose(surf["f1"], ref_f1, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(surf["auroc"], ref_auroc, rtol=1e-6, atol=1e-6)
    assert len(np.unique(surf["f1"])) > 1  # the points differ: not one value everywhere


def test_same_values_in_both_modes_and_every_batch_size(classifier):
    model, X, y = classifier
    d1 = directions(model)[0]
    got = []
    for strategy in STRATEGIES:
        for batch_size in BATCH_SIZES:
            land = lw.Landscape(
                model, (X, y), batch_size=batch_size, strategy=strategy,
                metrics={"f1": MulticlassF1Score(num_classes=N_OUT, average="macro")},
            )
            got.append(land.line(d1, n=5)["f1"])
    for g in got[1:]:
        np.testing.assert_allclose(g, got[0], rtol=1e-6, atol=1e-6)


# --------------------------------------------------------------------- the user's object
def test_user_metric_objects_are_never_changed(classifier, regressor):
    model, X, y = classifier
    f1 = MulticlassF1Score(num_classes=N_OUT, average="macro")
    f1.update(torch.tensor([[5.0, 0.0, 0.0]]), torch.tensor([0]))  # the user's own state
    before = {k: v.clone() for k, v in f1.metric_state.items()}
    count = f1._update_count
    land = lw.Landscape(model, (X, y), metrics={"f1": f1}, batch_size=16, strategy="vmap")
    values = land.line(directions(model)[0], n=5)["f1"]
    assert f1._update_count == count
    assert all(torch.equal(before[k], v) for k, v in f1.metric_state.items())
    # The user's state is not carried into the landscape: θ₀ scores as on fresh data.
    with torch.no_grad():
        at0 = float(multiclass_f1_score(model(X), y, num_classes=N_OUT, average="macro"))
    assert values[2] == pytest.approx(at0, abs=1e-6)

    model, X, y = regressor
    r2 = R2()
    r2.update(torch.ones(3, 1), torch.zeros(3, 1))
    state = dict(vars(r2))
    lw.Landscape(model, (X, y), F.mse_loss, {"r2": r2}, batch_size=16).line(
        directions(model)[0], n=3)
    assert vars(r2) == state


def test_later_changes_to_the_users_object_change_nothing(regressor):
    model, X, y = regressor
    r2 = R2()
    land = lw.Landscape(model, (X, y), F.mse_loss, {"r2": r2}, batch_size=16)
    d = directions(model)[0]
    first = land.line(d, n=3)["r2"]
    r2.update(torch.ones(3, 1), torch.zeros(3, 1))  # after the Landscape was built
    r2.n = -1
    assert np.array_equal(land.line(d, n=3)["r2"], first)


# ------------------------------------------------------------- NaN, mixing, output forms
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_stateful_metrics_are_nan_where_the_loss_is_not_finite(regressor, strategy):
    model, X, y = regressor
    land = lw.Landscape(model, (X, y), F.mse_loss, {"r2": R2()}, batch_size=16,
                        strategy=strategy)
    d1, d2 = directions(model)
    surf = land.plane(d1, d2, span=1e30, n=3)  # R2.update raises if fed a diverged output
    diverged = ~np.isfinite(surf["loss"])
    assert diverged.sum() == 8
    assert np.isnan(surf["r2"][diverged]).all()
    assert np.isfinite(surf["r2"][~diverged]).all()


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_batch_mean_and_stateful_metrics_mix(classifier, strategy):
    model, X, y = classifier
    d1, d2 = directions(model)
    mixed = lw.Landscape(
        model, (X, y), batch_size=16, strategy=strategy,
        metrics={"accuracy": lw.metrics.accuracy,
                 "f1": MulticlassF1Score(num_classes=N_OUT, average="macro"),
                 "error": lw.metrics.error},
    )
    plain = lw.Landscape(model, (X, y), batch_size=16, strategy=strategy,
                         metrics={"accuracy": lw.metrics.accuracy, "error": lw.metrics.error})
    assert mixed.metric_names == ("loss", "accuracy", "f1", "error")
    a, b = mixed.plane(d1, d2, n=3), plain.plane(d1, d2, n=3)
    for m in ("loss", "accuracy", "error"):  # the batch means are untouched, bit for bit
        assert np.array_equal(a[m], b[m]), m
    ref = reference(model, X, d1, d2, a, lambda out: float(
        multiclass_f1_score(out, y, num_classes=N_OUT, average="macro")))
    np.testing.assert_allclose(a["f1"], ref, rtol=1e-6, atol=1e-6)


class DictOutput(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"logits": self.inner(x), "hidden": x}


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_stateful_metrics_get_the_picked_output(classifier, strategy):
    model, X, y = classifier
    wrapped = DictOutput(model)
    land = lw.Landscape(wrapped, (X, y), batch_size=16, strategy=strategy,
                        metrics={"auroc": MulticlassAUROC(num_classes=N_OUT)})
    at0 = land.center()["auroc"]
    with torch.no_grad():
        assert at0 == pytest.approx(float(multiclass_auroc(model(X), y, num_classes=N_OUT)),
                                    abs=1e-6)


# ---------------------------------------------------------------------------- errors
class NoReset:
    def update(self, output, target):
        pass

    def compute(self):
        return 0.0


class OneArgUpdate(R2):
    def update(self, output):  # type: ignore[override]
        pass


class DictCompute(R2):
    def compute(self):  # type: ignore[override]
        return {"r2": super().compute()}


class Locked(R2):
    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()


@pytest.mark.parametrize(
    ("metric", "exc", "pattern"),
    [
        (NoReset(), TypeError, r"metric 'm' \(NoReset\) has update\(\) and compute\(\) but no "
                               r"callable reset\(\).*add reset\(\)"),
        (OneArgUpdate(), TypeError, r"metric 'm' \(OneArgUpdate\) has update\(output\), which "
                                    r"cannot be called as update\(output, target\)"),
        (MulticlassF1Score, TypeError, r"metric 'm' is the class MulticlassF1Score; pass an "
                                       r"instance"),
        (Locked(), TypeError, r"metric 'm' \(Locked\) cannot be copied.*deep-copyable"),
    ],
    ids=["partial", "update-signature", "class", "not-copyable"],
)
def test_bad_stateful_metrics_are_refused_when_built(regressor, metric, exc, pattern):
    model, X, y = regressor
    with pytest.raises(exc, match=pattern):
        lw.Landscape(model, (X, y), F.mse_loss, {"m": metric})


def test_compute_returning_a_vector_names_the_metric_and_the_fix(classifier):
    model, X, y = classifier
    land = lw.Landscape(model, (X, y), metrics={
        "f1": MulticlassF1Score(num_classes=N_OUT, average=None)})
    with pytest.raises(ValueError, match=r"metric 'f1' returned a tensor of shape \(3,\) from "
                                         r"compute\(\).*average='macro'"):
        land.line(directions(model)[0], n=3)


def test_compute_returning_a_dict_is_refused(regressor):
    model, X, y = regressor
    land = lw.Landscape(model, (X, y), F.mse_loss, {"r2": DictCompute()})
    with pytest.raises(TypeError, match=r"metric 'r2' returned a dict with keys \['r2'\] from "
                                        r"compute\(\); it must return one number"):
        land.line(directions(model)[0], n=3)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_update_failing_names_the_metric_and_the_shapes(classifier, strategy):
    model, X, y = classifier
    land = lw.Landscape(model, (X, y), batch_size=16, strategy=strategy,
                        metrics={"f1": MulticlassF1Score(num_classes=2, average="macro")})
    with pytest.raises(ValueError, match=r"^the metric 'f1' failed in update\(\) on the "
                                         r"model's output \(shape \(16, 3\), float32\) and "
                                         r"the target \(shape \(16,\), int64\): .*classes"):
        land.line(directions(model)[0], n=3)


class EmptyData(R2):
    def compute(self) -> float:
        return 1 / (self.n - self.n)


def test_compute_failing_names_the_metric(regressor):
    model, X, y = regressor
    land = lw.Landscape(model, (X, y), F.mse_loss, {"r2": EmptyData()})
    with pytest.raises(ZeroDivisionError) as info:
        land.line(directions(model)[0], n=3)
    assert "the metric 'r2' failed in compute(), after update() on every batch of the data" \
        in info.value.__notes__


def test_metric_copies_follow_the_models_dtype_and_data(classifier):
    """A model in float64: our copies of a torchmetrics metric take its outputs as they are."""
    model, X, y = classifier
    model64 = copy.deepcopy(model).double()
    land = lw.Landscape(model64, (X.double(), y), batch_size=16,
                        metrics={"f1": MulticlassF1Score(num_classes=N_OUT, average="macro")})
    with torch.no_grad():
        ref = float(multiclass_f1_score(model64(X.double()), y, num_classes=N_OUT,
                                        average="macro"))
    assert land.center()["f1"] == pytest.approx(ref, abs=1e-9)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_torchmetrics_copies_run_on_the_models_device(classifier, device, strategy):
    model, X, y = classifier
    model, X, y = copy.deepcopy(model).to(device), X.to(device), y.to(device)
    f1 = MulticlassF1Score(num_classes=N_OUT, average="macro")  # built on the CPU
    land = lw.Landscape(model, (X, y), metrics={"f1": f1}, batch_size=16, strategy=strategy)
    d1, d2 = directions(model)
    surf = land.plane(d1, d2, n=3)
    ref = reference(model, X, d1, d2, surf, lambda out: float(
        multiclass_f1_score(out, y, num_classes=N_OUT, average="macro")))
    np.testing.assert_allclose(surf["f1"], ref, rtol=1e-6, atol=1e-6)
    assert f1.device == torch.device("cpu")  # the user's object stays where it was
