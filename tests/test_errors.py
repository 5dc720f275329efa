"""Bad inputs: each raises a clear error of the right type that names the fix."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from helpers import cnn_bn, lw, mlp
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


@pytest.fixture(scope="module")
def small():
    torch.manual_seed(0)
    model = mlp(0, sizes=(8, 6, 3))
    X, y = torch.randn(20, 8), torch.randint(0, 3, (20,))
    return model, (X, y), lw.Landscape(model, (X, y))


def test_direction_from_another_architecture(small):
    model, _, land = small
    other_names = lw.directions.random(cnn_bn(0), seed=0)
    with pytest.raises(ValueError, match="same architecture"):
        land.line(other_names, n=5)
    with pytest.raises(ValueError, match="same architecture"):
        land.plane(lw.directions.random(model, seed=0), other_names, n=5)
    other_shapes = lw.directions.random(mlp(0, sizes=(8, 7, 3)), seed=0)  # same names
    assert set(other_shapes) == set(lw.directions.random(model, seed=0))
    with pytest.raises(ValueError, match=r"shape .*same architecture"):
        land.line(other_shapes, n=5)
    with pytest.raises(ValueError, match="same architecture"):
        list(land.stream(other_shapes, n=5))
    missing = lw.Direction({"0.weight": torch.zeros(6, 8)})
    with pytest.raises(ValueError, match=r"missing .*lw\.directions\.random\(model\)"):
        land.line(missing, n=5)


def test_not_a_direction(small):
    model, _, land = small
    with pytest.raises(TypeError, match=r"lw\.directions\.random"):
        land.line({n: torch.zeros_like(p) for n, p in model.named_parameters()}, n=5)


def test_loss_returning_non_scalar(small):
    model, data, _ = small

    def per_sample(out, y):
        return F.cross_entropy(out, y, reduction="none")

    with pytest.raises(ValueError, match="reduction='mean'"):
        land = lw.Landscape(model, data, loss=per_sample)
        land.line(lw.directions.random(model, seed=0), n=5)
    with pytest.raises(ValueError, match=r"metric 'bad'.*scalar"):
        land = lw.Landscape(model, data, metrics={"bad": per_sample})
        land.line(lw.directions.random(model, seed=0), n=5)


def test_loss_not_callable(small):
    model, data, _ = small
    with pytest.raises(TypeError, match="callable"):
        lw.Landscape(model, data, loss="cross_entropy")


def test_metric_named_loss(small):
    model, data, _ = small
    with pytest.raises(ValueError, match="another name"):
        lw.Landscape(model, data, metrics={"loss": lw.metrics.accuracy})


@pytest.mark.parametrize(
    "data",
    [
        (torch.empty(0, 8), torch.empty(0, dtype=torch.long)),
        [],
        TensorDataset(torch.empty(0, 8), torch.empty(0, dtype=torch.long)),
        DataLoader(TensorDataset(torch.empty(0, 8), torch.empty(0, dtype=torch.long))),
    ],
    ids=["tensors", "list", "dataset", "loader"],
)
def test_empty_data(small, data):
    model, _, _ = small
    with pytest.raises(ValueError, match=r"no samples.*non-empty"):
        lw.Landscape(model, data)


@pytest.mark.parametrize("data", ["digits.csv", 3.0, torch.randn(20, 8), {"x": 1}],
                         ids=["str", "float", "tensor", "dict"])
def test_wrong_data_type(small, data):
    model, _, _ = small
    with pytest.raises(TypeError, match=r"\(x, y\)|\(X, y\)"):
        lw.Landscape(model, data)


def test_mismatched_lengths(small):
    model, _, _ = small
    with pytest.raises(ValueError, match="must match"):
        lw.Landscape(model, (torch.randn(20, 8), torch.randint(0, 3, (19,))))


def test_non_floating_parameters():
    model = mlp(0, sizes=(8, 6, 3))
    model.register_parameter("steps", nn.Parameter(torch.tensor([3]), requires_grad=False))
    assert model.steps.dtype == torch.long
    data = (torch.randn(20, 8), torch.randint(0, 3, (20,)))
    with pytest.raises(TypeError, match=r"steps.*floating.*model\.float\(\)"):
        lw.Landscape(model, data)
    with pytest.raises(TypeError, match=r"floating.*model\.float\(\)"):
        lw.directions.random(model, seed=0)


def test_not_a_module():
    with pytest.raises(TypeError, match=r"nn\.Module"):
        lw.Landscape(lambda x: x, (torch.randn(4, 2), torch.zeros(4)))
    with pytest.raises(TypeError, match=r"nn\.Module"):
        lw.directions.random("model", seed=0)


def test_model_without_parameters():
    with pytest.raises(ValueError, match="no parameters"):
        lw.Landscape(nn.ReLU(), (torch.randn(4, 2), torch.zeros(4)))


@pytest.mark.parametrize("n", [1, 0, -3])
def test_n_below_two(small, n):
    model, _, land = small
    d = lw.directions.random(model, seed=0)
    with pytest.raises(ValueError, match="n ≥ 2"):
        land.line(d, n=n)
    with pytest.raises(ValueError, match="n ≥ 2"):
        land.plane(d, d, n=n)
    with pytest.raises(ValueError, match="n ≥ 2"):
        land.plane(d, d, n=(5, n))
    with pytest.raises(ValueError, match="n ≥ 2"):
        next(iter(land.stream(d, d, n=n)))


def test_n_wrong_type(small):
    model, _, land = small
    d = lw.directions.random(model, seed=0)
    with pytest.raises(TypeError, match="n must be"):
        land.line(d, n=5.0)
    with pytest.raises(TypeError, match="n must be"):
        land.plane(d, d, n=(5, 5, 5))


@pytest.mark.parametrize("span", [(1, -1), (0, 0), (0.5, 0.5), 0, -1.0])
def test_span_min_not_below_max(small, span):
    model, _, land = small
    d = lw.directions.random(model, seed=0)
    with pytest.raises(ValueError, match="min < max"):
        land.line(d, span=span, n=5)
    with pytest.raises(ValueError, match="min < max"):
        land.plane(d, d, span=span, n=5)


def test_plane_span_bad_axis(small):
    model, _, land = small
    d = lw.directions.random(model, seed=0)
    with pytest.raises(ValueError, match=r"y span.*min < max"):
        land.plane(d, d, span=((-1, 1), (2, 2)), n=5)
    with pytest.raises(ValueError, match="finite"):
        land.line(d, span=(0, float("inf")), n=5)
    with pytest.raises(TypeError, match=r"number s|pair \(min, max\)"):
        land.line(d, span="wide", n=5)


def test_bad_options(small):
    model, data, land = small
    with pytest.raises(ValueError, match="strategy"):
        lw.Landscape(model, data, strategy="fast")
    with pytest.raises(ValueError, match="norm"):
        lw.directions.random(model, seed=0, norm="weights")
    with pytest.raises(ValueError, match="ignore"):
        lw.directions.random(model, seed=0, ignore="bias")
    with pytest.raises(TypeError, match="seed"):
        lw.directions.random(model, seed=1.5)
    with pytest.raises(ValueError, match="batch_size"):
        lw.Landscape(model, data, batch_size=0)
    d = lw.directions.random(model, seed=0)
    with pytest.raises(ValueError, match="tol"):
        land.plane(d, d, n=5, adaptive=True, tol=0)
