"""The evaluation data as batches on the model's device: cached once, or re-read every pass.

`open_source` reads the user's data once. Batches that are views of the user's own tensors
cost nothing to keep; converted or loaded batches are kept while they fit the cache's share of
the memory budget. Past it, the data is re-read from its DataLoader (or re-sliced and
converted) on every pass over the data, so memory stays bounded whatever the data's size.

The first batch is read twice to detect a random pipeline (augmentation or a shuffling
sampler), which a cached copy freezes and a streamed one re-draws: either way the user is told.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor

from .batch import Batch
from .data import Reader, whole_reader
from .layout import Layout


def size_text(n: float) -> str:
    """Bytes as people read them: "812 KB", "1.4 GB"."""
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "bytes" or n >= 100 else f"{n:.3g} {unit}"
        n /= 1000
    raise AssertionError  # unreachable


def _nbytes(obj: Any, owned: set[int]) -> int:
    """Bytes of the tensors in `obj` that are not views of the user's own (`owned`) storage."""
    if isinstance(obj, Tensor):
        if obj.untyped_storage().data_ptr() in owned:
            return 0
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(_nbytes(v, owned) for v in obj.values())
    if isinstance(obj, (tuple, list)):
        return sum(_nbytes(v, owned) for v in obj)
    return 0


def batch_bytes(batch: Batch, owned: set[int] = frozenset()) -> int:  # type: ignore[assignment]
    """Bytes that keeping `batch` costs beyond the user's own tensors."""
    return _nbytes(batch.x, owned) + _nbytes(dict(batch.kw), owned) + _nbytes(batch.y, owned)


def _same(a: Batch, b: Batch) -> bool:
    """Two converted batches hold equal values (tensors compared exactly, NaN equal to NaN)."""

    def eq(u: Any, v: Any) -> bool:
        if isinstance(u, Tensor) and isinstance(v, Tensor):
            return u.shape == v.shape and u.dtype == v.dtype and bool(
                torch.equal(u, v) or (u.is_floating_point() and torch.allclose(
                    u, v, rtol=0, atol=0, equal_nan=True))
            )
        if isinstance(u, dict) and isinstance(v, dict):
            return u.keys() == v.keys() and all(eq(u[k], v[k]) for k in u)
        if isinstance(u, (tuple, list)) and isinstance(v, (tuple, list)):
            return len(u) == len(v) and all(eq(x, y) for x, y in zip(u, v, strict=True))
        return not isinstance(u, Tensor) and not isinstance(v, Tensor)  # not data: no check

    return eq(a.x, b.x) and eq(dict(a.kw), dict(b.kw)) and eq(a.y, b.y)


class DataSource:
    """The evaluation data: batches in a fixed order, on the model's device and dtype.

    Iterating gives one pass over the data. A cached source holds its batches; a streamed one
    reads them again from the user's data on every pass (its first batch is kept, for
    probes). Built by `open_source`.

    Attributes:
        cached: the batches are kept (else re-read every pass).
        n_samples: samples per pass.
        cache_bytes: bytes the kept batches cost beyond the user's own tensors.
        where: how messages name the data.
    """

    def __init__(
        self,
        reader: Reader,
        convert: Callable[[Any], Batch],
        batches: list[Batch] | None,
        first: Batch,
        n_samples: int,
        n_batches: int,
        cache_bytes: int,
    ) -> None:
        self._reader, self._convert = reader, convert
        self._batches = batches
        self._first = first
        self.n_samples = n_samples
        self._n_batches = n_batches
        self.cache_bytes = cache_bytes
        self.where = reader.where

    @property
    def cached(self) -> bool:
        """The batches are kept on the device (else re-read on every pass)."""
        return self._batches is not None

    @property
    def first(self) -> Batch:
        """The first batch (always kept: probes and checks run on it)."""
        return self._first

    def __len__(self) -> int:
        return self._n_batches

    def __iter__(self) -> Iterator[Batch]:
        if self._batches is not None:
            yield from self._batches
            return
        seen = 0
        for item in self._reader.items():
            batch = self._convert(item)
            if batch.n > 0:
                seen += batch.n
                yield batch
        if seen != self.n_samples:
            raise RuntimeError(
                f"{self.where} gave {seen} samples on this pass but {self.n_samples} on the "
                "first; every pass must read the same samples (drop_last with a shuffling "
                "sampler? a sampler that draws with replacement?)"
            )

    def __getitem__(self, i: int) -> Batch:
        if self._batches is not None:
            return self._batches[i]
        if i == 0:
            return self._first
        raise IndexError(
            "a streamed data source is read in order (iterate over it); only its first batch "
            "is kept"
        )

    @property
    def views(self) -> bool:
        """Whole data kept as views of the user's tensors (re-batching it is free)."""
        return self._reader.whole_data is not None and self.cached and not self.cache_bytes

    def rebatch(self, batch_size: int) -> None:
        """Re-slice whole data kept as views (`views`) into batches of `batch_size`."""
        r = self._reader
        if not self.views:
            raise ValueError("only whole data kept as views of the user's tensors is re-batched")
        pair = isinstance(r.whole_data, tuple)
        self._reader = whole_reader(r.whole_data, self.n_samples, batch_size, pair, r.where)
        self._batches = [b for b in map(self._convert, self._reader.items()) if b.n > 0]
        self._first = self._batches[0]
        self._n_batches = len(self._batches)

    def describe(self) -> str:
        """How the data is held, for messages and results."""
        how = "cached" if self.cached else "re-read from the data on every pass"
        return (f"{self.n_samples:,} samples in {len(self)} batches, {how}")


def _check_random(reader: Reader, convert: Callable[[Any], Batch], first: Batch) -> str | None:
    """Read the first batch again: None when it is the same, else why it differs."""
    if not reader.reiterable or reader.whole:
        return None
    with torch.no_grad():
        again = next((b for b in map(convert, reader.items()) if b.n > 0), None)
    if again is None or _same(first, again):
        return None
    return (
        "its sampler shuffles (shuffle=True)" if reader.shuffles
        else "it applies random transforms (data augmentation) or reads in a random order"
    )


def open_source(
    reader: Reader,
    layout: Layout,
    *,
    device: torch.device,
    dtype: torch.dtype,
    cache_limit: int,
) -> DataSource:
    """Read `reader` once: cache its batches while they fit `cache_limit` bytes (beyond the
    user's own tensors), else stream them on every pass. Warns once about a random pipeline."""
    from .convert import to_batch

    where = reader.where

    def convert(item: Any) -> Batch:
        return to_batch(*layout.split(item, where), device, dtype)

    owned = {t.untyped_storage().data_ptr() for t in reader.whole}
    batches: list[Batch] | None = []
    first: Batch | None = None
    n_samples = n_batches = cached_bytes = total_bytes = 0
    started = time.perf_counter()  # for the message only
    with torch.no_grad():
        for item in reader.items():
            batch = convert(item)
            if batch.n == 0:
                continue
            total_bytes += batch_bytes(batch, owned)
            if first is None:
                first = batch
                if reader.batches is not None and batches is not None and (
                    batch_bytes(batch, owned) * reader.batches > cache_limit
                ):
                    batches = None  # known too big from its first batch and length
            n_samples += batch.n
            n_batches += 1
            if batches is not None:
                cached_bytes += batch_bytes(batch, owned)
                if cached_bytes > cache_limit and reader.reiterable:
                    batches = None  # past the budget: stream (drops what was kept)
                else:
                    batches.append(batch)
    if first is None:
        raise ValueError("the data has no samples; pass a non-empty (X, y), Dataset or DataLoader")
    if batches is None:
        cached_bytes = 0
        warnings.warn(
            f"{where} holds about {size_text(total_bytes)}, more than the data cache's "
            f"{size_text(cache_limit)} (half of the memory budget), so it is read again "
            f"for every point; one pass took {time.perf_counter() - started:.1f} s. Pass a "
            "larger memory= to keep it, or subset=N for a fast first look",
            UserWarning, stacklevel=4,
        )
    elif cached_bytes > cache_limit:  # a one-shot iterator: it cannot be read again
        warnings.warn(
            f"{where} is a one-shot iterator (a generator), which cannot be read twice, so all "
            f"of it is kept in memory: {size_text(cached_bytes)}, over the data cache's "
            f"{size_text(cache_limit)}. Pass a DataLoader or a list of batches to have it "
            "re-read on every pass instead",
            UserWarning, stacklevel=4,
        )
    random = _check_random(reader, convert, first)
    if random is not None:
        fate = (
            "ls-widget read it once and evaluates every point on that one frozen copy"
            if batches is not None else
            "the data is larger than the cache's share of the memory budget, so it is read "
            "again for every point and each point sees a different draw: values carry that "
            "noise and are not reproducible"
        )
        warnings.warn(
            f"{where} gives different values when read twice: {random}. {fate}. For a "
            "deterministic landscape pass a loader without shuffling and without random "
            "augmentation (e.g. the test-time transforms)",
            UserWarning, stacklevel=4,
        )
    return DataSource(reader, convert, batches, first, n_samples, n_batches, cached_bytes)


def load(
    data: Any,
    layout: Layout,
    *,
    device: torch.device,
    dtype: torch.dtype,
    batch_size: int | None,
    subset: int | None,
    subset_seed: int,
    cache_limit: int,
) -> DataSource:
    """The user's data as a `DataSource`: read, subset (``subset=N``) and cached or streamed."""
    from .convert import batch_size_of
    from .data import reader
    from .subset import check_subset, subset_reader

    bs = batch_size_of(batch_size)
    n = check_subset(subset)
    read = reader(data, bs)
    if n is not None:
        read = subset_reader(read, layout, n, subset_seed, bs)
    return open_source(read, layout, device=device, dtype=dtype, cache_limit=cache_limit)
