"""The loop's exact speed-ups (engine/evaluate/speedups.py, fold_bn.py, microbatch.py):
flattened Sequentials, in-place ReLUs, padded narrow Linears, BatchNorm folded into its layer,
micro-batches, the row-ordered combination, PyTorch's fused transformer layers kept — same
values, nothing of ours or the user's overwritten — and calibration on a few samples."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import lw, mlp, naive_eval
from torch import nn

from ls_widget.engine.batch import Batch
from ls_widget.engine.evaluate import microbatch, plan, speedups
from ls_widget.engine.evaluate.binding import Binding
from ls_widget.engine.evaluate.flat import pad_rows
from ls_widget.engine.evaluate.fold_bn import Fold, PairWatch


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
        m: speedups.padded_linear(
            pad_rows(m.weight, speedups.PAD_TO), pad_rows(m.bias, speedups.PAD_TO), m.out_features
        )
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


# ------------------------------------------------------------------ BatchNorm folded
class FoldNet(nn.Module):
    """Conv-BN pairs to fold (with and without conv bias), a conv whose output feeds its BN
    and a sum (not foldable), and a Linear-BN1d pair before a narrow head."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(8)
        self.side = nn.Conv2d(8, 8, 1)
        self.bn3 = nn.BatchNorm2d(8)
        self.fc1 = nn.Linear(8, 16)
        self.bn4 = nn.BatchNorm1d(16)
        self.head = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn1(self.conv1(x)))
        s = self.side(h)
        h = F.relu(self.bn2(self.conv2(h)) + self.bn3(s) + s)
        h = F.adaptive_avg_pool2d(h, 1).flatten(1)
        return self.head(F.relu(self.bn4(self.fc1(h))))


def with_statistics(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BatchNorm γ, β and running statistics, in eval mode."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
                m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.num_features, generator=g) - 0.5)
    return model.eval()


def images(n: int = 96, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g)


def test_pairs_to_fold_are_found_in_one_forward():
    torch.manual_seed(0)
    model = with_statistics(FoldNet())
    x, _ = images(4)
    watch = PairWatch(model)
    with torch.no_grad(), watch:
        model(x)
    names = {m: n for n, m in model.named_modules()}
    assert sorted((names[a], names[b]) for a, b in watch.pairs()) == [
        ("conv1", "bn1"), ("conv2", "bn2"), ("fc1", "bn4")
    ]  # side's output also feeds the sum: bn3 stays


def test_pairs_need_plain_modules_on_running_statistics():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, track_running_stats=False),
        nn.Conv2d(4, 4, 3), nn.BatchNorm2d(4),
        nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4),
    ).eval()
    model[3].register_forward_hook(lambda m, i, o: None)
    watch = PairWatch(model)
    with torch.no_grad(), watch:
        model(torch.randn(2, 3, 9, 9))
    assert watch.pairs() == [(model[4], model[5])]


@pytest.mark.parametrize("channels_last", [False, True])
def test_fold_equals_conv_then_batchnorm_as_the_point_moves(channels_last):
    torch.manual_seed(0)
    conv, bn = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8)
    with_statistics(nn.Sequential(conv, bn))
    if channels_last:
        conv.weight.data = conv.weight.data.contiguous(memory_format=torch.channels_last)
    fold = Fold(conv, bn)
    folded = fold.forward()
    x = torch.randn(5, 3, 8, 8)
    with torch.no_grad():
        for _ in range(2):  # the weights and the statistics move in place: refresh folds anew
            fold.refresh()
            torch.testing.assert_close(folded(x), bn(conv(x)), rtol=1e-5, atol=1e-5)
            for t in (conv.weight, conv.bias, bn.weight, bn.bias, bn.running_mean):
                t.add_(0.1 * torch.randn_like(t))
            bn.running_var.mul_(1.3)
    if channels_last:
        assert fold.weight is not None
        assert fold.weight.is_contiguous(memory_format=torch.channels_last)


def test_folded_batchnorms_match_the_naive_loop_moving_weights_bn_and_statistics():
    """Every tensor moves: weights, BatchNorm γ/β (ignore=None) and, along the second axis
    (towards another model), the running statistics."""
    torch.manual_seed(0)
    model = with_statistics(FoldNet(), seed=0)
    other = with_statistics(FoldNet(), seed=1)
    data = images()
    d1 = lw.directions.random(model, seed=0, ignore=None)
    d2 = lw.directions.towards(model, other, buffers=True)
    land = lw.Landscape(model, data, strategy="loop")
    surf = land.plane(d1, d2, span=0.6, n=5)
    chosen = land.evaluator.chosen
    # conv1 (fan-in 27) is precomputed, and its stand-in keeps bn1: conv2 and fc1 are folded
    assert chosen["first_layer"] == "precomputed" and chosen["folded_batchnorms"] == 2
    assert chosen["memory_format"] == "channels_last"
    coeffs = [(float(a), float(b)) for b in surf.y for a in surf.x]
    ref = naive_eval(model, data, F.cross_entropy, [d1, d2], coeffs, buffers=True)
    np.testing.assert_allclose(surf["loss"].reshape(-1), ref["loss"], rtol=2e-5, atol=1e-6)
    # Nothing of the loop's stays installed, and the user's model is as it was.
    assert all("forward" not in m.__dict__ for m in land.evaluator.private.module.modules())


def test_folded_sequential_conv_net_flattens_and_matches():
    torch.manual_seed(0)
    model = with_statistics(nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1, bias=False), nn.BatchNorm2d(6), nn.ReLU(),
        nn.Conv2d(6, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
        nn.Flatten(), nn.Linear(6 * 8 * 8, 10),
    ))
    data = images()
    d1 = lw.directions.random(model, seed=0, ignore=None)
    d2 = lw.directions.random(model, seed=1)
    land = lw.Landscape(model, data, strategy="loop")
    surf = land.plane(d1, d2, span=1, n=3)
    chosen = land.evaluator.chosen
    assert chosen["flattened"] is True and chosen["first_layer"] == "precomputed"
    assert chosen["folded_batchnorms"] == 1  # the second pair; the first layer is precomputed
    coeffs = [(float(a), float(b)) for b in surf.y for a in surf.x]
    ref = naive_eval(model, data, F.cross_entropy, [d1, d2], coeffs)
    np.testing.assert_allclose(surf["loss"].reshape(-1), ref["loss"], rtol=2e-5, atol=1e-6)


# ------------------------------------------------------------------ micro-batches
def test_splittable_only_along_the_samples():
    x, y = torch.randn(10, 3), torch.arange(10)
    assert microbatch.splittable(Batch((x,), y, 10))
    assert microbatch.splittable(Batch((x, None), y, 10, {"flag": True, "mode": "fast"}))
    assert not microbatch.splittable(Batch((x,), y, 10, {"mask": torch.ones(3, 3)}))
    assert not microbatch.splittable(Batch((x,), ["a"] * 10, 10))  # one string per sample
    parts = microbatch.split(Batch((x,), y, 10, {"w": x}), 4)
    assert [p.n for p in parts] == [4, 4, 2]
    assert torch.equal(parts[2].x[0], x[8:]) and torch.equal(parts[2].kw["w"], x[8:])
    assert microbatch.micro_size(1000.0, budget=100_000) == 64  # the largest power of two
    assert microbatch.micro_size(0.0) is None


@pytest.fixture
def micro_16(monkeypatch):
    """Micro-batches of 16 samples for the conv nets below (a budget of 16 samples'
    activations, whatever they count)."""
    real = microbatch.micro_size
    monkeypatch.setattr(microbatch, "micro_size", lambda per_sample: real(per_sample,
                                                                          per_sample * 16))


class Correct:
    """A stateful metric: the share of correct predictions over everything fed."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.right = self.seen = 0

    def update(self, output: torch.Tensor, target: torch.Tensor) -> None:
        self.right += int((output.argmax(1) == target).sum())
        self.seen += len(target)

    def compute(self) -> float:
        return self.right / self.seen


def test_micro_batches_give_the_values_of_whole_batches(micro_16):
    torch.manual_seed(0)
    model = with_statistics(FoldNet())
    data = images(100)
    d1 = lw.directions.random(model, seed=0)
    d2 = lw.directions.random(model, seed=1)
    land = lw.Landscape(model, data, strategy="loop",
                        metrics={"accuracy": lw.metrics.accuracy, "correct": Correct()})
    surf = land.plane(d1, d2, span=1, n=3)
    assert land.evaluator.chosen["micro_batch"] == 16
    coeffs = [(float(a), float(b)) for b in surf.y for a in surf.x]
    ref = naive_eval(model, data, F.cross_entropy, [d1, d2], coeffs,
                     metrics={"accuracy": lw.metrics.accuracy})
    np.testing.assert_allclose(surf["loss"].reshape(-1), ref["loss"], rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(surf["accuracy"].reshape(-1), ref["accuracy"], atol=1e-9)
    # a stateful metric is fed every micro-batch, in order: the value over all the data
    np.testing.assert_allclose(surf["correct"].reshape(-1), ref["accuracy"], atol=1e-9)


def test_micro_batches_rejected_where_the_model_mixes_samples(micro_16):
    """BatchNorm on batch statistics: each micro-batch would normalize on its own."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6, track_running_stats=False),
        nn.ReLU(), nn.Flatten(), nn.Linear(6 * 8 * 8, 10),
    ).eval()
    data = images(100)
    d1 = lw.directions.random(model, seed=0)
    d2 = lw.directions.random(model, seed=1)
    land = lw.Landscape(model, data, strategy="loop")
    surf = land.plane(d1, d2, span=1, n=3)
    chosen = land.evaluator.chosen
    assert chosen["micro_batch"] == "rejected (numerical check failed)"
    assert chosen["first_layer"] == "precomputed"  # again, for the whole batches
    coeffs = [(float(a), float(b)) for b in surf.y for a in surf.x]
    ref = naive_eval(model, data, F.cross_entropy, [d1, d2], coeffs)
    np.testing.assert_allclose(surf["loss"].reshape(-1), ref["loss"], rtol=2e-5, atol=1e-6)


# ------------------------------------------------------------------ calibration's cost
class Counting(nn.Module):
    """Counts the samples of every forward that runs to its end."""

    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body
        self.seen = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        self.__dict__["seen"] += x.shape[0]
        return out


@pytest.mark.parametrize("kind", ["conv", "mlp"])
def test_calibration_runs_on_a_few_samples(kind, request):
    """Calibrating sees a few samples, not the data (4,096)."""
    torch.manual_seed(0)
    if kind == "conv":
        request.getfixturevalue("micro_16")
        body = with_statistics(FoldNet())
        data = images(4096)
    else:
        body = mlp(0, (64, 32, 10))
        data = (torch.randn(4096, 64), torch.randint(0, 10, (4096,)))
    model = Counting(body).eval()
    land = lw.Landscape(model, data, strategy="loop", batch_size=1024)
    ev = land.evaluator
    ev.private.module.__dict__["seen"] = 0
    d = [lw.directions.random(model, seed=0), lw.directions.random(model, seed=1)]
    b = Binding(ev.private, ev.scorer, ev.batches, ev.memory_budget, d)
    plan.calibrate(b, "loop")
    seen = ev.private.module.__dict__["seen"]
    # conv: two micro-batches of 16 and the same 32 samples whole, in the loop and for the
    # outputs; mlp (not split): its first batch twice, as the first layer is precomputed
    assert seen == (4 * 32 if kind == "conv" else 2 * 1024), seen


def test_the_centre_is_evaluated_once_and_reused(trained_mlp, digits_small):
    calls = []

    def loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        return F.cross_entropy(out, y)

    land = lw.Landscape(trained_mlp, digits_small, loss, strategy="loop")
    d1 = lw.directions.random(trained_mlp, seed=0)
    d2 = lw.directions.random(trained_mlp, seed=1)
    bound = land.evaluator.bind([d1, d2])
    centre = bound.center()
    pts = np.array([[0.5, 0.0], [0.0, 0.0], [0.0, -0.5]])
    calls.clear()
    got = bound.evaluate(pts)
    assert len(calls) == 2 * len(list(bound.binding.laid_out))  # θ₀ not again
    np.testing.assert_array_equal(got[1], centre)
    fresh = lw.Landscape(trained_mlp, digits_small, loss, strategy="loop").evaluator
    np.testing.assert_array_equal(fresh.bind([d1, d2]).evaluate(pts), got)  # computed anew


# ------------------------------------------------------------------ transformers
def test_transformer_encoder_keeps_its_fast_path(monkeypatch):
    """Our private copy (parameters that are views of our flat vectors) still runs
    PyTorch's fused encoder layer in the loop, and matches the naive loop."""
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(16, 2, 32, batch_first=True)
    model = nn.Sequential(
        nn.Embedding(50, 16), nn.TransformerEncoder(layer, 2, enable_nested_tensor=False),
        nn.Flatten(), nn.Linear(16 * 6, 10),
    ).eval()
    g = torch.Generator().manual_seed(0)
    data = (torch.randint(0, 50, (64, 6), generator=g), torch.randint(0, 10, (64,), generator=g))
    d1 = lw.directions.random(model, seed=0)
    d2 = lw.directions.random(model, seed=1)
    land = lw.Landscape(model, data, strategy="loop")
    fused = torch._transformer_encoder_layer_fwd
    calls = []

    def counted(*args, **kwargs):
        calls.append(1)
        return fused(*args, **kwargs)

    monkeypatch.setattr(torch, "_transformer_encoder_layer_fwd", counted)
    pts = np.array([[0.3, -0.2], [-0.1, 0.4]])
    got = land.evaluate([d1, d2], pts)["loss"]
    assert calls, "the fused encoder layer did not run"
    ref = naive_eval(model, data, F.cross_entropy, [d1, d2], pts.tolist())
    np.testing.assert_allclose(got, ref["loss"], rtol=1e-5, atol=1e-6)
