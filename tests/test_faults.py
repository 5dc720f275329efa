"""Faulty inputs a new user hits (issue 9, §2): each is a clear error that names the offending
value and the fix, or it works; the user's model and data survive either way."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import assert_unchanged, cnn_bn, grid_coeffs, lw, mlp, naive_eval, snapshot, train
from torch import nn
from torch.utils.data import DataLoader

N_IN, N_OUT, N = 8, 3, 40


@pytest.fixture
def small():
    model = mlp(0, sizes=(N_IN, 6, N_OUT))
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(N, N_IN, generator=g), torch.randint(0, N_OUT, (N,), generator=g)
    return model, X, y


class CountingLoss:
    """Cross-entropy that counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, out, y):
        self.calls += 1
        return F.cross_entropy(out, y)


def _with(d: lw.Direction, name: str, value: float) -> lw.Direction:
    tensors = {n: t.clone() for n, t in d.items()}
    tensors[name].view(-1)[1] = value
    return lw.Direction(tensors, buffers=d.buffers, **d.provenance)


# ------------------------------------------------------------------ 1. non-finite values
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_direction_with_nan_or_inf_fails_before_any_evaluation(small, bad):
    model, X, y = small
    loss = CountingLoss()
    land = lw.Landscape(model, (X, y), loss=loss)
    snap = snapshot(model)
    good = lw.directions.random(model, seed=1)
    d = _with(lw.directions.random(model, seed=0), "2.weight", bad)
    pattern = r"direction 'random #0, filter-norm': its tensor '2\.weight' has non-finite"
    for call in (
        lambda: land.line(d, n=5),
        lambda: land.plane(good, d, n=5),
        lambda: land.stream(d, good, n=5),
        lambda: land.evaluate([d], [[0.0]]),
        lambda: land.curvature_map(good, d, n=3),
    ):
        with pytest.raises(ValueError, match=pattern):
            call()
    assert loss.calls == 0, "nothing may be evaluated along a non-finite direction"
    assert_unchanged(model, snap)


def test_direction_with_nan_buffer_delta():
    model = cnn_bn(0)
    other = copy.deepcopy(model)
    with torch.no_grad():
        other[1].running_var[0] = float("nan")
    d = lw.directions.towards(model, other, buffers=True)
    X, y = torch.randn(10, 1, 8, 8), torch.randint(0, 10, (10,))
    with pytest.raises(ValueError, match=r"buffer delta '1\.running_var' has non-finite values "
                                         r"\(1 NaN, 0 inf, of 4\)"):
        lw.Landscape(model, (X, y)).line(d, n=3)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_model_with_non_finite_parameters(small, bad):
    model, X, y = small
    with torch.no_grad():
        model[2].bias[1] = bad
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    with pytest.raises(ValueError, match=r"model's parameter '2\.bias' has non-finite values.*"
                                         r"checkpoint"):
        lw.Landscape(model, (X, y))
    with pytest.raises(ValueError, match=r"parameter '2\.bias' has non-finite"):
        lw.directions.random(model, seed=0)
    with pytest.raises(ValueError, match=r"other model's parameter '2\.bias'"):
        lw.directions.towards(mlp(0, sizes=(N_IN, 6, N_OUT)), model)
    for n, p in model.named_parameters():  # bit for bit (NaN != NaN for torch.equal)
        assert torch.equal(p.detach().view(torch.int32), before[n].view(torch.int32)), n


def test_nan_in_the_data_is_an_error_at_the_centre(small):
    model, X, y = small
    X = X.clone()
    X[3, 2] = float("nan")
    land = lw.Landscape(model, (X, y), metrics={"accuracy": lw.metrics.accuracy})
    d = lw.directions.random(model, seed=0)
    with pytest.raises(ValueError, match=r"own loss at θ₀ is nan.*inputs contain 1 NaN"):
        land.plane(d, d, n=5)
    with pytest.raises(ValueError, match=r"own loss at θ₀"):
        land.center()


def test_model_producing_nan_at_its_centre():
    class LogNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(N_IN, N_OUT)

        def forward(self, x):
            return torch.log(self.fc(x))  # negative logits: NaN, with finite parameters

    torch.manual_seed(0)
    model = LogNet()
    snap = snapshot(model)
    X, y = torch.randn(N, N_IN), torch.randint(0, N_OUT, (N,))
    land = lw.Landscape(model, [(X[:20], y[:20]), (X[20:], y[20:])])
    with pytest.raises(ValueError, match=r"loss at θ₀ is nan on batch 1 of 2.*output contains"):
        land.line(lw.directions.random(model, seed=0), n=5)
    assert_unchanged(model, snap)


def test_loss_diverging_only_far_from_the_centre_is_a_result(small):
    model, X, y = small
    land = lw.Landscape(model, (X, y), metrics={"accuracy": lw.metrics.accuracy})
    d1, d2 = lw.directions.random(model, seed=0), lw.directions.random(model, seed=1)
    surf = land.plane(d1, d2, span=1e30, n=3)
    loss = surf["loss"]
    assert np.isfinite(loss[1, 1]), "the centre is the model itself"
    assert not np.isfinite(np.delete(loss.ravel(), 4)).any()


# ------------------------------------------------------------------ 2. curvature far away
@pytest.fixture(scope="module")
def trained_small_mlp(digits_small):
    X, y = digits_small
    X, y = X[:200], y[:200]
    return train(mlp(0, sizes=(64, 16, 10)), X, y, steps=60), (X, y)


def test_curvature_map_at_a_huge_span_is_nan_not_an_error(trained_small_mlp):
    model, data = trained_small_mlp
    land = lw.Landscape(model, data)
    d1, d2 = lw.directions.random(model, seed=0), lw.directions.random(model, seed=1)
    snap = snapshot(model)
    surf = land.curvature_map(d1, d2, span=1e6, n=3)  # must not raise
    for name in ("lambda_max", "lambda_min"):
        v = surf[name]
        assert not np.isinf(v).any()
        assert np.isfinite(v[1, 1])
    # Further out the Hessian-vector products overflow and the eigensolver fails (NaN in the
    # Lanczos tridiagonal): those cells are NaN, like the loss there, the centre is not.
    far = land.curvature_map(d1, d2, span=1e20, n=3)
    plane = land.plane(d1, d2, span=1e20, n=3)
    for name in ("lambda_max", "lambda_min", "ratio", "signed_ratio"):
        assert np.isfinite(far[name][1, 1])
        assert np.isnan(np.delete(far[name].ravel(), 4)).all()
    assert np.isnan(np.delete(plane["loss"].ravel(), 4)).all()
    np.testing.assert_allclose(far["lambda_max"][1, 1], surf["lambda_max"][1, 1], rtol=1e-6)
    tiles = list(land.curvature_stream(d1, d2, span=1e20, n=3))
    assert len(tiles) == 9
    assert_unchanged(model, snap)


# ------------------------------------------------------------------ 3. NumPy data
def test_numpy_data_is_accepted_like_tensors(small):
    model, X, y = small
    d1, d2 = lw.directions.random(model, seed=0), lw.directions.random(model, seed=1)
    ref = lw.Landscape(model, (X, y), metrics={"accuracy": lw.metrics.accuracy})
    want = ref.plane(d1, d2, span=1, n=5)
    Xn, yn = X.double().numpy(), y.numpy().astype(np.int32)  # float64 features, int32 labels
    Xn.flags.writeable = False  # read-only arrays too (memmaps, np.broadcast_to)
    cases = {
        "pair": (Xn, yn),
        "list": [Xn, yn],
        "batches": [(Xn[:25], yn[:25]), (Xn[25:], yn[25:])],
        "generator": ((Xn[i : i + 16], yn[i : i + 16]) for i in range(0, N, 16)),
        "loader": DataLoader(list(zip(Xn, yn, strict=True)), batch_size=16,
                             collate_fn=lambda b: (np.stack([x for x, _ in b]),
                                                   np.array([t for _, t in b]))),
    }
    for name, data in cases.items():
        land = lw.Landscape(model, data, metrics={"accuracy": lw.metrics.accuracy})
        b = land.evaluator.batches[0]
        assert b.x[0].dtype == torch.float32 and b.y.dtype == torch.int64, name
        got = land.plane(d1, d2, span=1, n=5)
        for m in ("loss", "accuracy"):
            np.testing.assert_allclose(got[m], want[m], rtol=1e-5, atol=1e-6, err_msg=name)


def test_numpy_regression_targets_stay_float(small):
    model, X, _ = small
    torch.manual_seed(0)
    y = torch.randn(N, N_OUT, dtype=torch.float64)
    land = lw.Landscape(model, (X.numpy(), y.numpy()), loss=F.mse_loss)
    assert land.evaluator.batches[0].y.dtype == torch.float32  # the model's dtype
    d = lw.directions.random(model, seed=0)
    ref = naive_eval(model, (X, y.float()), F.mse_loss, [d], grid_coeffs(np.linspace(-1, 1, 5)))
    np.testing.assert_allclose(land.line(d, n=5)["loss"], ref["loss"], rtol=1e-5)


def test_pandas_data(small):
    pd = pytest.importorskip("pandas")
    model, X, y = small
    df, s = pd.DataFrame(X.numpy()), pd.Series(y.numpy())
    d = lw.directions.random(model, seed=0)
    a = lw.Landscape(model, (df, s)).line(d, n=5)["loss"]
    np.testing.assert_allclose(a, lw.Landscape(model, (X, y)).line(d, n=5)["loss"], rtol=1e-6)


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        ((np.array([[1] * N_IN] * N, dtype=object), np.zeros(N, dtype=np.int64)),
         r"X is a NumPy array of dtype object.*X\.astype\(np\.float32\)"),
        ((np.zeros((N, N_IN), dtype=np.float32), np.array(["cat", "dog"] * (N // 2))),
         r"y is a NumPy array of dtype <U3 \(strings\).*return_inverse"),
        ([(np.zeros((4, N_IN)), np.array(["a"] * 4))], r"targets is a NumPy array.*strings"),
        (np.zeros((N, N_IN), dtype=np.float32),
         r"single ndarray of shape \(40, 8\).*tuple \(X, y\)"),
    ],
    ids=["object-X", "string-y", "string-y-batches", "X-alone"],
)
def test_numpy_arrays_that_cannot_be_used(small, data, pattern):
    model, _, _ = small
    with pytest.raises(TypeError, match=pattern):
        lw.Landscape(model, data)


# ------------------------------------------------------------------ 4. clear errors
def test_direction_from_another_architecture_names_tensor_and_shapes(small):
    model, X, y = small
    land = lw.Landscape(model, (X, y))
    other = lw.directions.random(mlp(0, sizes=(N_IN, 7, N_OUT)), seed=0)
    with pytest.raises(ValueError, match=r"shape \(7, 8\) for '0\.weight' where the model has "
                                         r"\(6, 8\); build it from the same architecture"):
        land.line(other, n=5)


@pytest.mark.parametrize(
    ("target", "pattern"),
    [
        (lambda y: y.float(), r"target \(shape \(40,\), float32\).*pass y\.long\(\)"),
        (lambda y: F.one_hot(y, N_OUT), r"\(shape \(40, 3\), int64\).*one-hot.*y\.argmax\(1\)"),
        (lambda y: y.int(), r"int32.*pass y\.long\(\)"),
        (lambda y: y + N_OUT, r"targets range over 3\.\.5 but the model has 3 outputs"),
    ],
    ids=["float-indices", "long-one-hot", "int32", "out-of-range"],
)
def test_targets_of_the_wrong_dtype_for_the_loss(small, target, pattern):
    model, X, y = small
    snap = snapshot(model)
    land = lw.Landscape(model, (X, target(y)))
    with pytest.raises((RuntimeError, IndexError), match=r"the loss cross_entropy failed on the "
                       r"model's output \(shape \(40, 3\), float32\) and the target"):
        land.line(lw.directions.random(model, seed=0), n=5)
    with pytest.raises((RuntimeError, IndexError), match=pattern):
        land.line(lw.directions.random(model, seed=0), n=5)
    assert_unchanged(model, snap)


def test_batches_with_fewer_targets_than_samples(small):
    model, X, y = small
    land = lw.Landscape(model, [(X[:20], y[:20]), (X[20:], y[20:39])])
    with pytest.raises(ValueError, match=r"output has 20 samples and the target 19"):
        land.line(lw.directions.random(model, seed=0), n=5)


@pytest.mark.parametrize(
    ("batch_size", "exc"), [(True, TypeError), (2.5, TypeError), ("8", TypeError),
                            (0, ValueError), (-1, ValueError)],
)
def test_bad_batch_size(small, batch_size, exc):
    model, X, y = small
    with pytest.raises(exc, match=rf"batch_size must be a positive int, got {batch_size!r}"):
        lw.Landscape(model, (X, y), batch_size=batch_size)


def test_numpy_int_batch_size_and_seed(small):
    model, X, y = small
    land = lw.Landscape(model, (X, y), batch_size=np.int64(16))
    assert [b.n for b in land.evaluator.batches] == [16, 16, 8]
    d = lw.directions.random(model, seed=np.int64(3))
    assert d.provenance["seed"] == 3 and type(d.provenance["seed"]) is int
    assert torch.equal(d["0.weight"], lw.directions.random(model, seed=3)["0.weight"])


class WritesInput(nn.Module):
    """Scales its input in place, as `x.mul_(2)` or a leading ReLU(inplace=True) does."""

    def __init__(self, inplace_relu: bool) -> None:
        super().__init__()
        self.inplace_relu = inplace_relu
        self.net = mlp(0, sizes=(N_IN, 6, N_OUT))

    def forward(self, x):
        x = x.relu_() if self.inplace_relu else x.mul_(2)
        return self.net(x)


@pytest.mark.parametrize("strategy", ["loop", "vmap"])
@pytest.mark.parametrize("inplace_relu", [False, True])
def test_forward_writing_to_its_input(small, strategy, inplace_relu):
    _, X, y = small
    model = WritesInput(inplace_relu)
    X_before, snap = X.clone(), snapshot(model)
    land = lw.Landscape(model, (X, y), strategy=strategy)
    d1, d2 = lw.directions.random(model, seed=0), lw.directions.random(model, seed=1)
    a = land.plane(d1, d2, span=1, n=5)["loss"]
    b = land.plane(d1, d2, span=1, n=5)["loss"]
    assert torch.equal(X, X_before), "the user's X was written"
    assert np.array_equal(a, b)
    # Right, too: the same as the plain network on the transformed data.
    Xt = X.relu() if inplace_relu else X * 2
    ref = naive_eval(model.net, (Xt, y), F.cross_entropy,
                     [{k[4:]: v for k, v in d.items()} for d in (d1, d2)],
                     grid_coeffs(np.linspace(-1, 1, 5), np.linspace(-1, 1, 5)))
    np.testing.assert_allclose(a.ravel(), ref["loss"], rtol=1e-5, atol=1e-6)
    assert_unchanged(model, snap)


def test_leading_inplace_relu_sequential(small):
    _, X, y = small
    torch.manual_seed(0)
    model = nn.Sequential(nn.ReLU(inplace=True), nn.Linear(N_IN, 12), nn.ReLU(),
                          nn.Linear(12, N_OUT))
    X_before = X.clone()
    d = lw.directions.random(model, seed=0)
    land = lw.Landscape(model, (X, y))
    a = land.line(d, n=5)["loss"]
    assert torch.equal(X, X_before)
    assert np.array_equal(a, land.line(d, n=5)["loss"])
    ref = naive_eval(model, (X.relu(), y), F.cross_entropy, [d],
                     grid_coeffs(np.linspace(-1, 1, 5)))
    np.testing.assert_allclose(a, ref["loss"], rtol=1e-5, atol=1e-6)


class WritesWeight(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(N_IN, N_OUT)

    def forward(self, x):
        self.fc.weight.data.mul_(1.01)
        return self.fc(x)


class CountsCalls(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(N_IN, N_OUT)
        self.register_buffer("calls", torch.zeros(()))

    def forward(self, x):
        self.calls += 1
        return self.fc(x)


@pytest.mark.parametrize(
    ("cls", "pattern"),
    [(WritesWeight, r"writes to its parameter 'fc\.weight'.*if self\.training:"),
     (CountsCalls, r"writes to its buffer 'calls'.*run the model once")],
)
def test_forward_writing_to_parameters_or_buffers(small, cls, pattern):
    _, X, y = small
    torch.manual_seed(0)
    model = cls()
    snap = snapshot(model)
    with pytest.raises(ValueError, match=pattern):
        lw.Landscape(model, (X, y))
    assert_unchanged(model, snap)


def test_forward_reassigning_a_buffer_to_itself_is_fine(small):
    class Masked(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(N_IN, N_OUT)
            self.register_buffer("mask", torch.tensor([0.0, -float("inf"), 0.0]))

        def forward(self, x):
            self.mask = self.mask.to(x.device)  # a common idiom: no change
            return self.fc(x) + self.mask.nan_to_num(neginf=-5.0)

    _, X, y = small
    torch.manual_seed(0)
    model = Masked()
    land = lw.Landscape(model, (X, y))
    d = lw.directions.random(model, seed=0)
    assert np.array_equal(land.line(d, n=5)["loss"], land.line(d, n=5)["loss"])


def test_snapshot_never_drifts_over_repeated_planes(small):
    model, X, y = small
    land = lw.Landscape(model, (X, y), metrics={"accuracy": lw.metrics.accuracy})
    theta0 = {n: t.clone() for n, t in land.space.theta0.items()}
    d1, d2 = lw.directions.random(model, seed=0), lw.directions.random(model, seed=1)
    a = land.plane(d1, d2, n=5)
    b = land.plane(d1, d2, n=5)
    for m in a.values:
        assert np.array_equal(a[m], b[m])
    assert all(torch.equal(theta0[n], t) for n, t in land.space.theta0.items())


def test_metric_returning_non_scalar_names_the_metric(small):
    model, X, y = small
    land = lw.Landscape(model, (X, y), metrics={"per_sample": lambda o, t: o.argmax(1) == t})
    with pytest.raises(ValueError, match=r"metric 'per_sample' returned a tensor of shape "
                                         r"\(40,\).*scalar.*\.float\(\)\.mean\(\)"):
        land.line(lw.directions.random(model, seed=0), n=5)


@pytest.mark.parametrize("strategy", ["loop", "vmap"])
def test_metrics_are_nan_where_the_loss_is_not_finite(small, strategy):
    model, X, y = small
    land = lw.Landscape(model, (X, y), metrics={"accuracy": lw.metrics.accuracy,
                                                 "error": lw.metrics.error},
                        strategy=strategy)
    d1, d2 = lw.directions.random(model, seed=0), lw.directions.random(model, seed=1)
    surf = land.plane(d1, d2, span=1e30, n=3)
    diverged = ~np.isfinite(surf["loss"])
    assert diverged.sum() == 8
    for m in ("accuracy", "error"):
        assert np.isnan(surf[m][diverged]).all(), m
        assert np.isfinite(surf[m][~diverged]).all(), m
    line = land.line(d1, span=1, n=5)  # finite everywhere: metrics untouched
    assert np.isfinite(line["accuracy"]).all()


# ------------------------------------------------------------------ 5. other first-day errors
@pytest.mark.parametrize(
    ("kwargs", "exc", "pattern"),
    [
        ({"loss": nn.CrossEntropyLoss}, TypeError, r"class CrossEntropyLoss; pass an instance, "
                                                   r"CrossEntropyLoss\(\)"),
        ({"loss": lambda out: out.sum()}, TypeError, r"loss <lambda>\(out\) cannot be called as "
                                                     r"fn\(output, target\)"),
        ({"loss": "cross_entropy"}, TypeError, r"callable.*got str"),
        ({"metrics": [lw.metrics.accuracy]}, TypeError,
         r"metrics must be a dict.*got list.*metrics=\{'accuracy'"),
        ({"metrics": {"acc": 0.5}}, TypeError, r"metric 'acc' must be a callable.*got float"),
        ({"metrics": {"acc": nn.L1Loss}}, TypeError, r"metric 'acc' is the class L1Loss"),
        ({"metrics": {3: lw.metrics.accuracy}}, TypeError, r"metric names must be strings"),
        ({"memory": "1 bucket"}, ValueError, r"memory='1 bucket' is not a size"),
        ({"memory": 0}, ValueError, r"memory must be positive"),
    ],
    ids=["loss-class", "loss-one-arg", "loss-str", "metrics-list", "metric-number",
         "metric-class", "metric-name", "budget-str", "budget-zero"],
)
def test_bad_loss_and_metrics(small, kwargs, exc, pattern):
    model, X, y = small
    with pytest.raises(exc, match=pattern):
        lw.Landscape(model, (X, y), **kwargs)


def test_loss_module_instance_and_partial_are_fine(small):
    import functools

    model, X, y = small
    d = lw.directions.random(model, seed=0)
    a = lw.Landscape(model, (X, y), loss=nn.CrossEntropyLoss()).line(d, n=5)["loss"]
    b = lw.Landscape(model, (X, y),
                     loss=functools.partial(F.cross_entropy, reduction="mean")).line(d, n=5)
    np.testing.assert_array_equal(a, b["loss"])


@pytest.mark.parametrize(
    ("loss", "exc", "pattern"),
    [
        (lambda out, y: None, TypeError, r"the loss returned a NoneType.*scalar"),
        (lambda out, y: "0.5", TypeError, r"the loss returned a str"),
    ],
)
def test_loss_returning_no_number(small, loss, exc, pattern):
    model, X, y = small
    with pytest.raises(exc, match=pattern):
        lw.Landscape(model, (X, y), loss=loss).line(lw.directions.random(model, seed=0), n=5)


def test_target_dict_is_passed_to_the_loss(small):
    model, X, y = small
    d = lw.directions.random(model, seed=0)
    with pytest.raises(TypeError, match=r"target \(a dict with keys \['labels'\]\).*y\['labels'\]"):
        lw.Landscape(model, (X, {"labels": y})).line(d, n=5)
    # ... which a loss that takes the dict uses, moved to the device like any target.
    land = lw.Landscape(model, [(X, {"labels": y})],
                        loss=lambda out, t: F.cross_entropy(out, t["labels"]))
    np.testing.assert_allclose(land.line(d, n=5)["loss"],
                               lw.Landscape(model, (X, y)).line(d, n=5)["loss"], rtol=1e-6)


class ReturnsTuple(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(N_IN, N_OUT)

    def forward(self, x):
        return self.fc(x), x.sum()


class ReturnsNothing(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(N_IN, N_OUT)

    def forward(self, x):
        self.fc(x)


class ReturnsEmpty(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(N_IN, N_OUT)

    def forward(self, x):
        return self.fc(x)[:, :0]


@pytest.mark.parametrize(
    ("cls", "exc", "pattern", "when"),
    [
        (ReturnsTuple, TypeError, r"model returns a tuple.*F\.cross_entropy\(out\[0\], y\)",
         "line"),
        (ReturnsNothing, TypeError, r"forward returned None.*`return`", "build"),
        (ReturnsEmpty, ValueError, r"empty output of shape \(40, 0\)", "build"),
    ],
)
def test_unusable_model_outputs(small, cls, exc, pattern, when):
    _, X, y = small
    torch.manual_seed(0)
    model = cls()
    snap = snapshot(model)
    with pytest.raises(exc, match=pattern):
        land = lw.Landscape(model, (X, y))
        assert when == "line", "should have failed when the Landscape was built"
        land.line(lw.directions.random(model, seed=0), n=5)
    assert_unchanged(model, snap)


def test_integer_inputs_to_a_float_model(small):
    model, X, y = small
    Xi = (X.abs() * 10).to(torch.uint8)
    with pytest.raises(RuntimeError, match=r"model failed at θ₀ on the data, called as "
                                           r"model\(\*x\) with x = \(shape \(40, 8\), uint8\).*"
                                           r"X\.float\(\)"):
        lw.Landscape(model, (Xi, y))


def test_loss_broadcasting_output_against_target(small):
    torch.manual_seed(0)
    model = nn.Linear(N_IN, 1)
    _, X, _ = small
    y = torch.randn(N)
    land = lw.Landscape(model, (X, y), loss=F.mse_loss)
    with pytest.warns(UserWarning), pytest.raises(
        ValueError, match=r"broadcasts the model's output \(shape \(40, 1\), float32\) against "
                          r"the target \(shape \(40,\), float32\).*y\.reshape\(-1, 1\)"
    ):
        land.line(lw.directions.random(model, seed=0), n=5)
    # The fix works.
    fixed = lw.Landscape(model, (X, y.reshape(-1, 1)), loss=F.mse_loss)
    assert np.isfinite(fixed.line(lw.directions.random(model, seed=0), n=5)["loss"]).all()


@pytest.mark.parametrize(
    ("value", "pattern"),
    [
        (lambda t: t.long(), r"direction's tensor '0\.weight' has dtype torch\.int64.*floating"),
        (lambda t: t.bool(), r"has dtype torch\.bool"),
        (lambda t: t.numpy(), r"'0\.weight' is a ndarray, not a torch\.Tensor.*torch\.as_tensor"),
        (lambda t: t.tolist(), r"is a list, not a torch\.Tensor"),
    ],
    ids=["int64", "bool", "numpy", "list"],
)
def test_direction_with_non_floating_entries(small, value, pattern):
    model, _, _ = small
    d = lw.directions.random(model, seed=0)
    with pytest.raises(TypeError, match=pattern):
        lw.Direction({n: value(t) for n, t in d.items()})
    with pytest.raises(TypeError, match="mapping name → tensor"):
        lw.Direction(list(d.values()))


@pytest.mark.parametrize("seed", [1.0, 2.5, "3", True, None])
def test_seed_not_an_int(small, seed):
    model, _, _ = small
    with pytest.raises(TypeError, match=r"seed must be an int, got .*; pass e\.g\. seed="):
        lw.directions.random(model, seed=seed)


def test_seed_float_suggests_the_int(small):
    model, _, _ = small
    with pytest.raises(TypeError, match=r"got 1\.0 \(float\); pass e\.g\. seed=1$"):
        lw.directions.random(model, seed=1.0)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"norm": "filters"}, r"norm='filters' is not supported \(did you mean norm='filter'\?\)"),
        ({"norm": "Layer"}, r"did you mean norm='layer'"),
        ({"ignore": "biasBN"}, r"ignore='biasBN' is not supported \(did you mean "
                               r"ignore='biasbn'\?\)"),
        ({"ignore": "bias_bn"}, r"did you mean ignore='biasbn'"),
        ({"norm": True}, r"norm=True is not supported; use one of"),
        ({"norm": "none"}, r"norm='none'.*use one of \['filter', 'layer', 'model', None\]"),
    ],
)
def test_norm_and_ignore_typos(small, kwargs, pattern):
    model, _, _ = small
    with pytest.raises(ValueError, match=pattern):
        lw.directions.random(model, seed=0, **kwargs)


def test_bind_needs_a_list_of_directions(small):
    model, X, y = small
    land = lw.Landscape(model, (X, y))
    d = lw.directions.random(model, seed=0)
    with pytest.raises(TypeError, match=r"got str.*a single Direction.*\[d\]"):
        land.evaluate(d, [[0.0]])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_model_data_and_directions_on_different_devices(small):
    model, X, y = small
    d_cpu = lw.directions.random(model, seed=0)
    ref = lw.Landscape(model, (X, y)).line(d_cpu, n=5)["loss"]
    gpu = copy.deepcopy(model).cuda()
    land = lw.Landscape(gpu, (X, y))  # data on the CPU: moved to the model's device
    got = land.line(d_cpu, n=5)["loss"]  # a direction built on the CPU model
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)
    land.curvature_map(d_cpu, lw.directions.random(model, seed=1), n=3)
    Xn, yn = X.numpy(), y.numpy()
    np.testing.assert_allclose(lw.Landscape(gpu, (Xn, yn)).line(d_cpu, n=5)["loss"], ref,
                               rtol=1e-4, atol=1e-5)


def test_integer_numpy_inputs_stay_integers_for_token_models():
    class Bag(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.EmbeddingBag(50, 8)
            self.fc = nn.Linear(8, N_OUT)

        def forward(self, ids):
            return self.fc(self.emb(ids))

    torch.manual_seed(0)
    model = Bag()
    ids = np.random.default_rng(0).integers(0, 50, size=(N, 6), dtype=np.int32)
    labels = np.random.default_rng(1).integers(0, N_OUT, size=N)
    land = lw.Landscape(model, (ids, labels), strategy="loop")
    assert land.evaluator.batches[0].x[0].dtype == torch.int32
    d = lw.directions.random(model, seed=0)
    ref = lw.Landscape(model, (torch.from_numpy(ids), torch.from_numpy(labels)),
                       strategy="loop").line(d, n=5)
    np.testing.assert_array_equal(land.line(d, n=5)["loss"], ref["loss"])


def test_labels_as_a_python_list(small):
    model, X, y = small
    d = lw.directions.random(model, seed=0)
    got = lw.Landscape(model, (X, y.tolist()), batch_size=16).line(d, n=5)["loss"]
    np.testing.assert_allclose(got, lw.Landscape(model, (X, y)).line(d, n=5)["loss"], rtol=1e-6)
    with pytest.raises(TypeError, match=r"y is a list that is not an array of numbers"):
        lw.Landscape(model, (X, [[0], [1, 2]] * (N // 2)))


@pytest.mark.parametrize(
    ("y", "pattern"),
    [
        (lambda y: (y > 0).float(), r"output is shaped \(40, 1\) and the target \(40,\).*"
                                    r"y\.reshape\(-1, 1\)"),
        (lambda y: (y > 0).long().reshape(-1, 1), r"one output per sample.*y\.float\(\)"),
    ],
    ids=["float-shape", "int-targets"],
)
def test_binary_targets(small, y, pattern):
    _, X, labels = small
    torch.manual_seed(0)
    model = nn.Linear(N_IN, 1)
    land = lw.Landscape(model, (X, y(labels)), loss=F.binary_cross_entropy_with_logits)
    with pytest.raises((ValueError, RuntimeError), match=pattern):
        land.line(lw.directions.random(model, seed=0), n=5)


def test_loss_raising_its_own_exception_type_keeps_it(small):
    class MyLossError(Exception):
        pass

    def loss(out, y):
        raise MyLossError("custom failure")

    model, X, y = small
    with pytest.raises(MyLossError, match="custom failure") as info:
        lw.Landscape(model, (X, y), loss=loss).line(lw.directions.random(model, seed=0), n=5)
    assert any("the loss loss failed on the model's output (shape (40, 3), float32)" in n
               for n in info.value.__notes__)


def test_metric_failing_names_the_metric(small):
    model, X, y = small
    land = lw.Landscape(model, (X, y), metrics={"top2": lambda o, t: o.topk(5).indices})
    with pytest.raises(RuntimeError, match=r"^the metric 'top2' failed on the model's output"):
        land.line(lw.directions.random(model, seed=0), n=5)


@pytest.mark.filterwarnings("ignore::FutureWarning")  # weight_norm is deprecated, still used
@pytest.mark.parametrize("wrap", ["weight_norm", "spectral_norm"])
def test_old_style_weight_norm_hooks(small, wrap):
    """Their forward leaves a non-leaf `weight` attribute that refuses deepcopy."""
    _, X, y = small
    torch.manual_seed(0)
    fn = getattr(nn.utils, wrap)
    model = nn.Sequential(fn(nn.Linear(N_IN, 6)), nn.ReLU(), nn.Linear(6, N_OUT))
    model.train()
    model(X)
    model.eval()
    snap = snapshot(model)
    d = lw.directions.random(model, seed=0)
    got = lw.Landscape(model, (X, y)).line(d, span=(0.0, 0.5), n=2)["loss"]
    ref = []
    for c in (0.0, 0.5):
        m = nn.Sequential(fn(nn.Linear(N_IN, 6)), nn.ReLU(), nn.Linear(6, N_OUT)).eval()
        m.load_state_dict(model.state_dict())
        with torch.no_grad():
            for n, p in m.named_parameters():
                p.add_(c * d[n])
            ref.append(float(F.cross_entropy(m(X), y)))
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)
    assert_unchanged(model, snap)


def test_accuracy_of_a_single_logit_model(small):
    _, X, y = small
    torch.manual_seed(0)
    model = nn.Linear(N_IN, 1)
    yb = (y > 0).float().reshape(-1, 1)
    land = lw.Landscape(model, (X, yb), loss=F.binary_cross_entropy_with_logits,
                        metrics={"accuracy": lw.metrics.accuracy})
    with pytest.raises(ValueError, match=r"metric 'accuracy' failed.*one output per class; the "
                                         r"model returned \(40, 1\)\. For one binary logit"):
        land.line(lw.directions.random(model, seed=0), n=5)


@pytest.mark.parametrize("where", ["loss", "metric"])
def test_loss_or_metric_writing_to_the_target(small, where):
    model, X, y = small

    def writes(out, t):
        t[t == 2] = 0  # e.g. mapping an ignore label, in place
        return F.cross_entropy(out, t)

    kwargs = {"loss": writes} if where == "loss" else {"metrics": {"w": writes}}
    land = lw.Landscape(model, (X, y.clone()), **kwargs)
    name = "loss" if where == "loss" else "metric 'w'"
    with pytest.raises(ValueError, match=rf"the {name} writes to its target in place.*"
                                         r"y = y\.clone\(\)"):
        land.line(lw.directions.random(model, seed=0), n=5)
