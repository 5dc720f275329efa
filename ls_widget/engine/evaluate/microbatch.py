"""Micro-batches: the per-point loop's forwards on a few MiB of activations at a time (CPU).

A forward over a large batch allocates activations of hundreds of MB. glibc serves blocks
above its mmap threshold (at most 32 MiB) with fresh mappings, so each such tensor costs a
page fault per 4 KiB, every point, and every elementwise pass (BatchNorm, ReLU, the residual
add, LayerNorm) streams it through memory. Measured on a 2-core CPU (best of three): ResNet-20
(channels_last, BatchNorm folded) on 1,024 images took 1.32 s in one forward, with 434,000
page faults, and 0.58 s in micro-batches of 32, with none; a 4-layer transformer encoder on
256 sequences of 64 tokens (one thread) 0.71 s in one forward and 0.43 s in micro-batches of
32.

The loss and each batch-mean metric of a batch are sample means, which the loop combines
weighted by sample counts, and stateful metrics see the same samples in the same order: a
batch split into micro-batches gives the same values to float rounding. (Models or losses
that mix samples, such as BatchNorm on batch statistics, would not: the plan checks the
split against the whole batch before keeping it, like every shortcut.)

The size is a fixed rule of counted quantities (the peak bytes of activations per sample,
counted once in one forward), never of timings: a power of two, so that it rarely moves.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace

import torch
from torch import Tensor

from ..batch import Batch, Batches
from ..convert import slice_samples

# Activations per micro-batch: the peak bytes of one forward's live tensors. 16 MiB gives
# ResNet-20 and the transformer encoder above micro-batches of 32 (2 MiB activation tensors),
# where the loop ran fastest: 64 MiB (micro-batches of 128) was 10–20 % slower, with page
# faults again; 4 MiB no faster, with 4× the calls.
MICRO_BYTES = 16 * 2**20


def micro_size(per_sample_bytes: float, budget: int | None = None) -> int | None:
    """Samples per micro-batch: the largest power of two whose peak activations fit
    `budget` (default `MICRO_BYTES`; at least 1); None when nothing was counted."""
    if not per_sample_bytes > 0:
        return None
    fit = max(1, int((MICRO_BYTES if budget is None else budget) // per_sample_bytes))
    return 1 << (fit.bit_length() - 1)


def splittable(batch: Batch) -> bool:
    """Every tensor of the batch (inputs, keyword inputs, targets) has the samples along
    dim 0, so slicing them all along dim 0 gives smaller batches of the same samples.

    Plain values beside them (a flag, a number, a mode name as a keyword argument) are
    shared by every sample; inside a list or tuple anything but a tensor may be one value
    per sample (labels as strings), which slicing would not split: not splittable.
    """
    found: list[Tensor] = []
    args = (*batch.x, batch.y, *batch.kw.values())  # each passed as it is: may be a flag
    ok = all(_per_sample(a, batch.n, found) for a in args)
    return ok and bool(found)


def split(batch: Batch, size: int | None) -> list[Batch]:
    """`batch` as consecutive micro-batches of `size` samples (views, no copies), or as it
    is when it is no larger or cannot be split (see `splittable`)."""
    if size is None or batch.n <= size or not splittable(batch):
        return [batch]
    return [head(batch, i, min(i + size, batch.n)) for i in range(0, batch.n, size)]


class LaidOut:
    """The batches as the loop runs them, made on the fly in every pass: the first input of
    4D images in channels_last (if asked), batches larger than `micro` samples split into
    micro-batches (views). Nothing is kept but the first batch in this layout, so a cached
    source costs no second copy of the data and a streamed one stays streamed.

    Attributes:
        first: the first batch in this layout, whole (probes and checks run on it).
        splits: some batch is split into micro-batches (judged on the first batch when the
            source is streamed).
    """

    def __init__(self, batches: Batches, channels_last: bool, micro: int | None) -> None:
        self.batches, self.channels_last, self.micro = batches, channels_last, micro
        self.first = to_layout(batches[0], channels_last)
        known = batches if kept(batches) else [batches[0]]
        self.splits = micro is not None and splittable(self.first) and any(
            b.n > micro for b in known
        )

    def __iter__(self) -> Iterator[Batch]:
        for i, batch in enumerate(self.batches):
            laid = self.first if i == 0 else to_layout(batch, self.channels_last)
            yield from split(laid, self.micro)


def kept(batches: Batches) -> bool:
    """The batches are held in memory (a list, or a cached source), not re-read every pass."""
    return isinstance(batches, list) or bool(getattr(batches, "cached", False))


def to_layout(batch: Batch, channels_last: bool) -> Batch:
    """`batch` with 4D image inputs in channels_last (the first input only)."""
    if channels_last and batch.x and batch.x[0].dim() == 4:
        x0 = batch.x[0].contiguous(memory_format=torch.channels_last)
        return replace(batch, x=(x0, *batch.x[1:]))
    return batch


def total(batches: Iterable[Batch]) -> int:
    """Samples in `batches`."""
    return sum(b.n for b in batches)


def head(batch: Batch, start: int, stop: int) -> Batch:
    """Samples `start`..`stop` of a splittable batch (views)."""
    return replace(
        batch,
        x=slice_samples(batch.x, start, stop),
        y=slice_samples(batch.y, start, stop),
        n=stop - start,
        kw=slice_samples(dict(batch.kw), start, stop) if batch.kw else batch.kw,
    )


def _per_sample(obj: object, n: int, found: list[Tensor], in_sequence: bool = False) -> bool:
    """`obj` splits along its samples: its tensors have `n` rows (collected in `found`)."""
    if isinstance(obj, Tensor):
        found.append(obj)
        return obj.dim() > 0 and obj.shape[0] == n
    if isinstance(obj, Mapping):
        return all(_per_sample(v, n, found) for v in obj.values())
    if isinstance(obj, (tuple, list)):
        return all(_per_sample(v, n, found, in_sequence=True) for v in obj)
    return not in_sequence and (obj is None or isinstance(obj, (bool, int, float, str)))
