"""Data at scale: the memory budget, subsets, streaming past the budget, random pipelines."""

from __future__ import annotations

import gc
import warnings
import weakref

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import cnn_bn, mlp
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

import ls_widget as lw
from ls_widget.engine.memory import fit_batch_size, parse_memory, peak_bytes
from ls_widget.engine.subset import choose


def blobs(n: int = 300, classes: int = 3, seed: int = 0):
    """Unbalanced classes (1 : 2 : 3) in 64 features."""
    g = torch.Generator().manual_seed(seed)
    y = torch.cat([torch.full((n * (k + 1) // 6,), k) for k in range(classes)])
    X = torch.randn(len(y), 64, generator=g) + y[:, None].float()
    return X, y


def no_warnings():
    ctx = warnings.catch_warnings()
    ctx.__enter__()
    warnings.simplefilter("error")
    return ctx


# ------------------------------------------------------------------ memory= and the probe
@pytest.mark.parametrize(("value", "expected"), [
    (2**20, 2**20), ("512MB", 512 * 10**6), ("2GiB", 2 * 2**30), (" 1.5 kb ", 1500),
    ("64KiB", 65536), (1e6, 10**6),
])
def test_parse_memory(value, expected):
    assert parse_memory(value) == expected


@pytest.mark.parametrize(("value", "error", "match"), [
    ("lots", ValueError, r"memory='lots' is not a size.*'512MB'"),
    ("5 parsecs", ValueError, r"not a size"),
    (0, ValueError, r"memory must be positive"),
    (-5, ValueError, r"memory must be positive"),
    (True, TypeError, r"memory is a number of bytes"),
    ([1], TypeError, r"memory is a number of bytes"),
])
def test_parse_memory_errors(value, error, match):
    with pytest.raises(error, match=match):
        parse_memory(value)
    X, y = blobs(30)
    with pytest.raises(error, match=match):
        lw.Landscape(mlp(sizes=(64, 3)), (X, y), memory=value)


def test_peak_bytes_counts_live_tensors_only():
    def run():
        a = torch.ones(1000)  # 4,000 bytes
        b = a * 2  # 4,000 more, alive with a
        del a
        c = b + 1  # a is gone: the peak stays 8,000
        return c.sum()

    assert peak_bytes(run) == 8000 + 4  # and the 0-d sum
    assert peak_bytes(lambda: torch.zeros(10).view(2, 5)) == 40  # a view costs nothing


def test_fit_batch_size_is_a_power_of_two_within_budget():
    assert fit_batch_size(1000.0, 10**9, 2048) == 2048  # fits: unchanged
    assert fit_batch_size(1000.0, 300_000, 2048) == 256  # 300 fit → 256
    assert fit_batch_size(1e9, 10, 2048) == 1


def test_whole_tensors_are_used_in_place():
    X, y = blobs()
    land = lw.Landscape(mlp(sizes=(64, 3)), (X, y))
    assert land.data.cached and land.data.cache_bytes == 0
    first = land.data.first
    assert first.x[0].untyped_storage().data_ptr() == X.untyped_storage().data_ptr()


def test_batches_shrink_to_fit_the_forward_pass():
    torch.manual_seed(0)
    X, y = torch.randn(512, 1, 8, 8), torch.randint(0, 10, (512,))
    model = cnn_bn()
    big = lw.Landscape(model, (X, y))
    small = lw.Landscape(model, (X, y), memory="1MB")
    assert len(big.data) == 1  # 512 samples in one batch under the default budget
    sizes = [b.n for b in small.data]
    assert len(sizes) > 1 and sum(sizes) == 512
    assert sizes[0] & (sizes[0] - 1) == 0  # a power of two
    d = lw.directions.random(model, 0)
    a = big.line(d, n=5)
    b = small.line(d, n=5)
    np.testing.assert_allclose(a.values["loss"], b.values["loss"], rtol=1e-5)
    # A fixed batch size is the user's choice: kept.
    assert [b.n for b in lw.Landscape(model, (X, y), memory="1MB", batch_size=512).data] == [512]


# ------------------------------------------------------------------ subset=
def test_choose_is_stratified_and_seeded():
    y = torch.tensor([0] * 100 + [1] * 200 + [2] * 300)
    idx = choose(y, 600, 60, seed=0)
    assert np.all(np.diff(idx) > 0)  # sorted, unique
    assert np.bincount(y[idx].numpy()).tolist() == [10, 20, 30]
    assert np.array_equal(idx, choose(y, 600, 60, seed=0))
    assert not np.array_equal(idx, choose(y, 600, 60, seed=1))
    # Remainders go to the largest shares: 7 of (1/6, 2/6, 3/6) → 1.17, 2.33, 3.5 → 1, 2, 4.
    assert np.bincount(y[choose(y, 600, 7, seed=0)].numpy()).tolist() == [1, 2, 4]


def test_choose_uniform_for_regression_targets():
    y = torch.randn(500)
    idx = choose(y, 500, 50, seed=3)
    assert len(np.unique(idx)) == 50 and idx.max() < 500


def subset_of(land):
    xs = torch.cat([b.x[0] for b in land.data])
    ys = torch.cat([b.y for b in land.data])
    return xs, ys


class Pairs(Dataset):
    def __init__(self, X, y, targets: bool):
        self.X, self.y = X, y
        if targets:
            self.targets = y.tolist()  # as torchvision's datasets list them

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.X[i], self.y[i]


@pytest.mark.parametrize("kind", ["tensors", "numpy", "dataset", "dataset-targets", "loader",
                                  "list", "generator"])
def test_subset_picks_the_same_samples_from_every_kind_of_data(kind):
    X, y = blobs()
    data = {
        "tensors": lambda: (X, y),
        "numpy": lambda: (X.numpy(), y.numpy()),
        "dataset": lambda: Pairs(X, y, targets=False),
        "dataset-targets": lambda: Pairs(X, y, targets=True),
        "loader": lambda: DataLoader(TensorDataset(X, y), batch_size=32),
        "list": lambda: [(X[i : i + 32], y[i : i + 32]) for i in range(0, len(y), 32)],
        "generator": lambda: ((X[i : i + 32], y[i : i + 32]) for i in range(0, len(y), 32)),
    }[kind]()
    land = lw.Landscape(mlp(sizes=(64, 3)), data, subset=60)
    xs, ys = subset_of(land)
    idx = choose(y, len(y), 60, seed=0)
    assert land.n_samples == 60
    assert torch.equal(ys, y[idx]) and torch.equal(xs, X[idx])
    assert np.bincount(ys.numpy()).tolist() == [10, 20, 30]


def test_subset_seed_and_size():
    X, y = blobs()
    a = subset_of(lw.Landscape(mlp(sizes=(64, 3)), (X, y), subset=30, subset_seed=1))[0]
    b = subset_of(lw.Landscape(mlp(sizes=(64, 3)), (X, y), subset=30, subset_seed=2))[0]
    assert not torch.equal(a, b)
    assert lw.Landscape(mlp(sizes=(64, 3)), (X, y), subset=10**6).n_samples == len(y)
    for bad in (0, -3, 2.5, "10", True):
        with pytest.raises(ValueError, match=r"subset must be a positive number of samples"):
            lw.Landscape(mlp(sizes=(64, 3)), (X, y), subset=bad)


def test_subset_of_dict_batches_without_class_targets():
    g = torch.Generator().manual_seed(0)
    ids, t = torch.randint(0, 9, (80, 5), generator=g), torch.randn(80, 1, generator=g)

    class Reg(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(9, 4)
            self.fc = torch.nn.Linear(4, 1)

        def forward(self, input_ids):
            return self.fc(self.emb(input_ids).mean(1))

    batches = [{"input_ids": ids[i : i + 16], "labels": t[i : i + 16]} for i in range(0, 80, 16)]
    land = lw.Landscape(Reg(), batches, F.mse_loss, subset=20)
    assert land.n_samples == 20
    got = torch.cat([b.y for b in land.data])
    idx = choose(t, 80, 20, seed=0)
    assert torch.equal(got, t[idx])


# ------------------------------------------------------------------ streaming past the budget
def test_data_over_the_budget_streams_with_the_same_values():
    X, y = blobs(600)
    model = mlp(sizes=(64, 3))
    loader = DataLoader(TensorDataset(X, y), batch_size=50)
    cached = lw.Landscape(model, loader)
    assert cached.data.cached
    with pytest.warns(UserWarning, match=r"read again for every point; one pass took"):
        streamed = lw.Landscape(model, loader, memory="100KB")
    assert not streamed.data.cached and streamed.data.cache_bytes == 0
    assert streamed.n_samples == 600 and len(streamed.data) == 12
    d1, d2 = lw.directions.random(model, 0), lw.directions.random(model, 1)
    for strategy in ("loop", "vmap"):
        a = lw.Landscape(model, loader, strategy=strategy).plane(d1, d2, n=5)
        with pytest.warns(UserWarning, match=r"read again"):
            b = lw.Landscape(model, loader, memory="100KB", strategy=strategy).plane(d1, d2, n=5)
        with pytest.warns(UserWarning, match=r"read again"):
            c = lw.Landscape(model, loader, memory="100KB", strategy=strategy).plane(d1, d2, n=5)
        # The small budget leaves no room for precomputed activations: other kernels, so
        # float tolerance against the cached run; the same bits from one streamed run to the next.
        np.testing.assert_allclose(a.values["loss"], b.values["loss"], rtol=1e-6)
        assert np.array_equal(b.values["loss"], c.values["loss"])


class _Tracked:
    """A collate function that keeps a weak reference to every image batch it makes."""

    def __init__(self) -> None:
        self.refs: list[weakref.ref] = []

    def __call__(self, items):
        X = torch.stack([x for x, _ in items])
        self.refs.append(weakref.ref(X))
        return X, torch.stack([y for _, y in items])

    def alive(self) -> int:
        gc.collect()
        return sum(r() is not None for r in self.refs)


def test_streamed_images_are_not_kept_between_passes():
    """A streamed conv net's batches (laid out in channels_last and split into micro-batches
    on the CPU) are made again in every pass: the binding holds the first batch, no more."""
    torch.manual_seed(0)
    X, y = torch.randn(256, 1, 8, 8), torch.randint(0, 10, (256,))
    model = cnn_bn().eval()
    tracked = _Tracked()
    loader = DataLoader(TensorDataset(X, y), batch_size=32, collate_fn=tracked)
    with pytest.warns(UserWarning, match=r"read again"):
        land = lw.Landscape(model, loader, memory="20KB")
    d1, d2 = lw.directions.random(model, 0), lw.directions.random(model, 1)
    surf = land.plane(d1, d2, n=3)
    assert land.evaluator.chosen.get("memory_format") == "channels_last"
    reads = len(tracked.refs)
    assert reads >= 9 * 8  # every point read the 8 batches again
    assert tracked.alive() <= 2, tracked.alive()  # the first batch (and its re-read check)
    cached = lw.Landscape(model, (X, y), batch_size=32).plane(d1, d2, n=3)
    np.testing.assert_allclose(surf.values["loss"], cached.values["loss"], rtol=1e-6)


def test_channels_last_batches_are_made_per_pass_not_kept():
    """Cached images laid out in channels_last: the copies live for one forward each."""
    torch.manual_seed(0)
    X, y = torch.randn(512, 3, 8, 8), torch.randint(0, 10, (512,))  # 3 channels: a copy
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * 6 * 6, 10)).eval()
    land = lw.Landscape(model, (X, y), batch_size=64)
    d = lw.directions.random(model, 0)
    land.line(d, n=3)
    binding = land.evaluator.bind([d]).binding
    assert binding.channels_last
    refs = [weakref.ref(piece.x[0]) for piece in binding.laid_out]
    assert len(refs) == 8 and all(r().is_contiguous(memory_format=torch.channels_last)
                                  for r in refs if r() is not None)
    gc.collect()
    assert sum(r() is not None for r in refs) == 1  # the first batch, kept for probes


def test_numpy_data_converted_past_the_budget_is_converted_every_pass():
    X, y = blobs(600)
    model = mlp(sizes=(64, 3))
    Xd = X.double().numpy()  # float64 arrays for a float32 model: converting copies
    kept = lw.Landscape(model, (Xd, y.numpy()))
    assert kept.data.cached and kept.data.cache_bytes > 0
    with pytest.warns(UserWarning, match=r"read again"):
        streamed = lw.Landscape(model, (Xd, y.numpy()), memory="200KB", batch_size=100)
    assert not streamed.data.cached
    d = lw.directions.random(model, 0)
    np.testing.assert_allclose(
        lw.Landscape(model, (Xd, y.numpy()), batch_size=100).line(d, n=7).values["loss"],
        streamed.line(d, n=7).values["loss"], rtol=1e-6,
    )


def test_a_loader_that_changes_length_between_passes_is_an_error():
    X, y = blobs(100)

    class Shrinking:
        def __init__(self):
            self.passes = 0

        def __iter__(self):
            self.passes += 1
            stop = 100 if self.passes <= 2 else 50
            return iter([(X[i : i + 10], y[i : i + 10]) for i in range(0, stop, 10)])

    with (pytest.warns(UserWarning, match=r"read again"),
          pytest.raises(RuntimeError, match=r"gave 50 samples on this pass but 99 on the first")):
        lw.Landscape(mlp(sizes=(64, 3)), Shrinking(), memory="10KB").center()


def test_a_one_shot_iterator_over_the_budget_is_kept_with_a_warning():
    X, y = blobs(300)
    gen = ((X[i : i + 30], y[i : i + 30]) for i in range(0, 300, 30))
    with pytest.warns(UserWarning, match=r"one-shot iterator.*cannot be read twice"):
        land = lw.Landscape(mlp(sizes=(64, 3)), gen, memory="20KB")
    assert land.data.cached and land.n_samples == 300


# ------------------------------------------------------------------ random pipelines
class Augmented(Dataset):
    """Adds fresh noise on every read, as a random transform does."""

    def __init__(self, X, y):
        self.X, self.y = X, y

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.X[i] + 0.1 * torch.randn_like(self.X[i]), self.y[i]


def test_augmentation_is_detected_and_said_frozen():
    X, y = blobs(100)
    with pytest.warns(UserWarning, match=r"random transforms.*one frozen copy") as rec:
        land = lw.Landscape(mlp(sizes=(64, 3)), Augmented(X, y))
    assert sum("different values" in str(w.message) for w in rec) == 1  # once
    d = lw.directions.random(land.model, 0)
    assert np.array_equal(land.line(d, n=5).values["loss"], land.line(d, n=5).values["loss"])


def test_augmentation_while_streaming_is_said_redrawn():
    X, y = blobs(100)
    with pytest.warns(UserWarning) as rec:
        lw.Landscape(mlp(sizes=(64, 3)), DataLoader(Augmented(X, y), batch_size=10),
                     memory="5KB")
    said = [str(w.message) for w in rec]
    assert any("read again for every point" in m for m in said)
    assert any("random transforms" in m and "different draw" in m for m in said)


def test_a_shuffling_loader_is_detected():
    X, y = blobs(200)
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match=r"its sampler shuffles \(shuffle=True\)"):
        lw.Landscape(mlp(sizes=(64, 3)), DataLoader(TensorDataset(X, y), batch_size=20,
                                                   shuffle=True))


def test_a_fixed_pipeline_gives_no_warning():
    X, y = blobs(100)
    ctx = no_warnings()
    try:
        lw.Landscape(mlp(sizes=(64, 3)), DataLoader(TensorDataset(X, y), batch_size=10))
        lw.Landscape(mlp(sizes=(64, 3)), (X, y))
        lw.Landscape(mlp(sizes=(64, 3)), Pairs(X, y, targets=False))
    finally:
        ctx.__exit__(None, None, None)
