"""The loop's exact speed-ups (engine/speedups.py): flattened Sequentials, in-place ReLUs,
padded narrow Linears, and the row-ordered combination — same values, nothing of ours or
the user's overwritten."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import lw, mlp, naive_eval
from torch import nn

from ls_widget.engine.evaluate import speedups
from ls_widget.engine.evaluate.flat import pad_rows


class Scale(nn.Module):
    """A custom module inside a Sequential (runs as written)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * x


def chain_models() -> dict[str, nn.Module]:
    torch.manual_seed(0)
    return {
        "nested": nn.Sequential(
            nn.Flatten(),
            nn.Sequential(nn.Linear(64, 24), nn.Identity(), nn.ReLU()),
            nn.Dropout(0.3),
            nn.Sequential(nn.Linear(24, 24), nn.LeakyReLU(0.1), Scale(), nn.ReLU()),
            nn.Linear(24, 12),
        ),
        "bn": nn.Sequential(
            nn.Linear(64, 20), nn.BatchNorm1d(20), nn.ReLU(), nn.Linear(20, 10)
        ),
        "bn_batch_stats": nn.Sequential(  # eval BN without running stats: batch statistics
            nn.Linear(64, 20), nn.BatchNorm1d(20, track_running_stats=False), nn.ReLU(),
            nn.Linear(20, 3),
        ),
        "conv": nn.Sequential(
            nn.Unflatten(1, (1, 8, 8)), nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3),
            nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(48, 15),
        ),
    }


@pytest.mark.parametrize("name", list(chain_models()))
def test_flattened_sequential_equals_the_module(name):
    model = chain_models()[name].eval()
    with torch.no_grad():
        for m in model.modules():  # non-trivial BN statistics
            if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d) and m.running_mean is not None:
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    x = torch.randn(50, 64)
    padded = {
        m: (pad_rows(m.weight, speedups.PAD_TO), pad_rows(m.bias, speedups.PAD_TO))
        for _, m in speedups.narrow_linears(model)
    }
    steps = speedups.flatten(model, padded)
    assert steps is not None
    with torch.no_grad():
        want = model(x)
        x_before = x.clone()
        got = speedups.run(steps, x)
    assert torch.equal(x, x_before), "the input was overwritten"
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)


def test_narrow_linears_are_9_to_15_outputs():
    model = nn.Sequential(
        nn.Linear(4, 8), nn.Linear(8, 9), nn.Linear(9, 15), nn.Linear(15, 16), nn.Linear(16, 10)
    )
    assert [n for n, _ in speedups.narrow_linears(model)] == ["1", "2", "4"]


def test_relu_in_place_only_on_our_own_tensors():
    """A ReLU straight after the input, or after a layer whose output a hook keeps, must not
    overwrite that tensor."""
    torch.manual_seed(0)
    kept: list[torch.Tensor] = []
    lin = nn.Linear(6, 6)
    lin.register_forward_hook(lambda m, i, o: kept.append(o))
    model = nn.Sequential(nn.ReLU(), lin, nn.ReLU(), nn.Linear(6, 6), nn.ReLU())
    steps = speedups.flatten(model, {})
    assert steps is not None
    assert steps[0] is torch.relu  # the data: not ours
    assert steps[1] is lin  # hooks run: the module as is
    assert steps[2] is torch.relu  # the hook holds the Linear's output
    assert steps[4] is torch.relu_  # a plain Linear's fresh output: ours
    x = torch.randn(5, 6)
    x0 = x.clone()
    with torch.no_grad():
        out = speedups.run(steps, x)
    assert torch.equal(x, x0)
    assert (kept[0] < 0).any(), "the hooked output was clobbered by an in-place ReLU"
    with torch.no_grad():
        torch.testing.assert_close(out, model(x))


def test_not_flattened_when_not_a_plain_sequential():
    class Seq(nn.Sequential):
        def forward(self, x):
            return super().forward(x) * 2

    assert speedups.flatten(Seq(nn.Linear(3, 3)), {}) is None
    assert speedups.flatten(nn.Linear(3, 3), {}) is None


class TwoHeads(nn.Module):
    """Not a Sequential: padded forwards are installed on its narrow Linear for the loop."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Linear(64, 32)
        self.head = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.relu(self.body(x)))


@pytest.mark.parametrize("make", [lambda: mlp(0), TwoHeads], ids=["sequential", "custom"])
def test_speedups_used_and_match_reference(make, digits_small):
    torch.manual_seed(0)
    model = make().eval()
    d1 = lw.directions.random(model, seed=0, ignore=None)  # biases move too: padded in the flat
    d2 = lw.directions.random(model, seed=1)
    land = lw.Landscape(model, digits_small, metrics={"accuracy": lw.metrics.accuracy},
                        strategy="loop")
    surf = land.plane(d1, d2, span=1, n=5)
    chosen = land.evaluator.chosen
    assert chosen["mode"] == "loop" and chosen["first_layer"] == "precomputed"
    assert chosen["padded_linears"] == 1
    assert chosen["flattened"] == isinstance(model, nn.Sequential)
    coeffs = [(float(a), float(b)) for b in surf.y for a in surf.x]
    ref = naive_eval(model, digits_small, F.cross_entropy, [d1, d2], coeffs,
                     metrics={"accuracy": lw.metrics.accuracy})
    np.testing.assert_allclose(surf["loss"].reshape(-1), ref["loss"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(surf["accuracy"].reshape(-1), ref["accuracy"], atol=1e-6)
    # The private copy's modules are as written after the loop (no forward left installed).
    assert all("forward" not in m.__dict__ for m in land.evaluator.private.module.modules())
    # Its parameters are the real shapes (views of the padded blocks).
    for name, p in land.evaluator.private.module.named_parameters():
        assert p.shape == dict(model.named_parameters())[name].shape


def test_point_values_do_not_depend_on_order_or_company(trained_mlp, digits_small):
    """In the loop, points share per-row partial sums; each is always combined in the same
    order, so a point's value is bit-identical whatever else is evaluated with it. (vmap
    batches points into one matmul, whose rounding depends on the chunk.)"""
    d1 = lw.directions.random(trained_mlp, seed=0)
    d2 = lw.directions.random(trained_mlp, seed=1)
    land = lw.Landscape(trained_mlp, digits_small, strategy="loop")
    bound = land.evaluator.bind([d1, d2])
    assert land.evaluator.chosen["first_layer"] == "precomputed"
    rng = np.random.default_rng(0)
    rows = rng.uniform(-1, 1, 4)
    pts = np.array([(a, b) for b in rows for a in rng.uniform(-1, 1, 5)])
    together = bound.evaluate(pts)
    perm = rng.permutation(len(pts))
    shuffled = bound.evaluate(pts[perm])
    np.testing.assert_array_equal(shuffled, together[perm])
    alone = np.concatenate([bound.evaluate(p[None]) for p in pts[::3]])
    np.testing.assert_array_equal(alone, together[::3])


@pytest.mark.parametrize(("channels", "kernel", "precomputed"), [(3, 3, True), (1, 3, False)])
def test_conv_first_layer_precomputed_where_it_pays(channels, kernel, precomputed):
    """A conv stem with fan-in ≥ 16 (3×3×3 = 27) is precomputed, also in channels_last; a
    1-channel 3×3 (fan-in 9) runs as is. Both match the naive reference."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(channels, 8, kernel, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Flatten(), nn.Linear(8 * 6 * 6, 10),
    ).eval()
    X = torch.randn(40, channels, 6, 6)
    y = torch.randint(0, 10, (40,))
    d1 = lw.directions.random(model, seed=0)
    d2 = lw.directions.random(model, seed=1)
    land = lw.Landscape(model, (X, y), strategy="loop")
    surf = land.plane(d1, d2, span=1, n=3)
    chosen = land.evaluator.chosen
    assert chosen["memory_format"] == "channels_last"
    assert (chosen.get("first_layer") == "precomputed") == precomputed
    coeffs = [(float(a), float(b)) for b in surf.y for a in surf.x]
    ref = naive_eval(model, (X, y), F.cross_entropy, [d1, d2], coeffs)
    np.testing.assert_allclose(surf["loss"].reshape(-1), ref["loss"], rtol=1e-5, atol=1e-6)
