"""How a binding runs its points: fixed rules, checked numerically, never timed.

The plan follows rules of the inputs alone (device, data size, the model's layers, counted
FLOPs and activation bytes, the memory budget), so the same inputs give bit-identical results
on every run: the paths differ in float rounding, and which points share a vectorized call or
a tile is a pure function of the inputs. The speed measured here only feeds time estimates.

- channels_last for conv nets on CPUs (oneDNN's NHWC convolutions beat NCHW there);
- micro-batches on CPUs, sized from the activations counted per sample (microbatch.py);
- the first layer precomputed where its fan-in is ≥ 16 (first_layer.py);
- the loop's speed-ups (speedups.py, fold_bn.py) and the first layer, kept only where they
  agree with the plain loop at a point;
- vmap on GPUs and for small data, in chunks bounded by the memory budget.

Calibration costs a small share of one point: its checks run on the first `CHECK_SAMPLES`
samples of the data (on its first batches while the first layer is precomputed), not on all
of it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..batch import Batch, Batches, forward
from . import microbatch, speedups
from .binding import Binding
from .first_layer import fan_in
from .run import loop, vmapped

VMAP_SMALL_DATA = 512  # samples: below this, one point underfills even a CPU...
VMAP_SMALL_FLOPS = 1e8  # ...unless it is this much arithmetic (~1 ms of large kernels)
# Points per vmap call, at most. Every call gets exactly its binding's chunk of points (the
# last one padded), because a batched kernel may round differently for another batch size:
# so a point's value never depends on how many points share its call.
VMAP_MAX_CHUNK = 128
# A tile is about this much arithmetic (counted, not timed): ~0.1–0.3 s on two CPU cores, so
# a consumer can stop between tiles; tiles hold 1 to 512 points.
TILE_FLOPS = 2e10
MAX_TILE = 512
# Precomputing the first layer trades its multiply-adds per output (its fan-in) for ~3 memory
# passes per output per point: it pays from about this fan-in (measured on CPU: the digits
# MLP's 64 and 3-channel image stems' 27–147 gain 1.2–1.7×, a 1-channel 3×3 conv's 9 loses).
INJECT_MIN_FAN_IN = 16
CHECK_SAMPLES = 32  # samples the shortcuts are checked on, where the first batch has more

PlanKey = tuple[tuple[str, ...], tuple[str, ...], int]  # moving params, moving buffers, k


@dataclass(frozen=True)
class Plan:
    """What calibration decided for a binding; reused by bindings that move the same tensors.

    Attributes:
        channels_last: 4D weights and image inputs in NHWC.
        micro: samples per micro-batch of the loop (None: the batches as they are).
        inject: the first layer precomputed.
        fast: the loop's speed-ups on.
        folding: BatchNorms folded into their layers (one of the speed-ups).
        mode: "loop" or "vmap".
        vmap_chunk: points per vmap call.
        chosen: the same, as recorded in results' provenance (with the shortcuts kept).
    """

    channels_last: bool
    micro: int | None
    inject: bool
    fast: bool
    folding: bool
    mode: str
    vmap_chunk: int
    chosen: dict[str, object]


def plan_key(b: Binding) -> PlanKey:
    """Bindings that move the same tensors along as many directions share a plan."""
    return (tuple(b.moving), tuple(b.buffer_names), b.k)


def calibrate(b: Binding, strategy: str) -> tuple[Plan, float]:
    """Pick the fastest correct way to run `b`'s points and set it up.

    Returns the plan and the points per second measured on its checks (for estimates).
    """
    chosen: dict[str, object] = {}
    device = b.space.device
    probe = np.random.default_rng(0).uniform(-0.5, 0.5, size=(1, b.k))
    cpu_loop = device.type == "cpu" and strategy != "vmap"
    channels_last = b.private.has_conv and cpu_loop
    micro = microbatch.micro_size(b.private.activation_bytes) if cpu_loop else None
    b.relayout(channels_last, micro)
    if channels_last:
        chosen["memory_format"] = "channels_last"
    first = b.private.first
    if first is not None and fan_in(first.module) >= INJECT_MIN_FAN_IN:
        b.prepare_injection()
    verdict, seconds = verify(b, probe)
    chosen.update(verdict)
    # vmap pays where one point does not fill the device (GPUs, or little data); with
    # enough data each point is already one large matmul on a CPU and the loop wins.
    small = (b.n_samples <= VMAP_SMALL_DATA
             and b.private.flops_per_point <= VMAP_SMALL_FLOPS)
    want_vmap = strategy == "vmap" or (strategy == "auto" and (device.type != "cpu" or small))
    b.mode = "loop"
    if want_vmap and b.moves:
        b.vmap_chunk = vmap_chunk_size(b.batches, b.memory_budget)
        was = b.injected
        b.set_injected(False)
        head = check_data(b)[0]
        try:
            with restricted(b, head):  # whether vmap works, and its speed: on a few samples
                t0 = time.perf_counter()
                vmapped(b, probe)  # a whole chunk of points (the probe, padded)
                took = (time.perf_counter() - t0) / b.vmap_chunk
            seconds = took * b.n_samples / microbatch.total(head)
            b.mode = "vmap"
        except Exception as exc:  # models whose ops lack batching rules
            if strategy == "vmap":
                raise RuntimeError(f"vmap evaluation failed: {exc}") from exc
            chosen["vmap"] = f"unavailable ({type(exc).__name__})"
            if was:
                b.set_injected(True)
    chosen["mode"] = b.mode
    chosen["vmap_chunk"] = b.vmap_chunk
    made = Plan(b.channels_last, b.micro, b.injected, b.fast, b.folding, b.mode, b.vmap_chunk,
                chosen)
    return made, 1.0 / max(seconds, 1e-9)


def apply(b: Binding, plan: Plan) -> None:
    """Set `b` up as an earlier calibration decided (the first layer is still precomputed
    for these directions)."""
    b.relayout(plan.channels_last, plan.micro)
    b.set_folding(plan.folding)
    if plan.inject and b.prepare_injection():
        b.set_injected(True)
    b.fast = plan.fast
    b.mode = plan.mode
    b.vmap_chunk = plan.vmap_chunk


def check_data(b: Binding) -> tuple[list[Batch], list[Batch]]:
    """The first samples of the data twice: as one batch (the reference) and as the binding
    runs them. While the first layer is precomputed for the binding's own batches, those are
    its first batches (two micro-batches, or one whole batch); else the first
    `CHECK_SAMPLES`, in two micro-batches if the binding splits (a split of any size shows
    whether the model or the loss mixes samples, and rounding does not depend on it)."""
    first = b.first_laid_out
    if b.injection is not None:
        pieces = microbatch.split(first, b.micro)[:2]  # the loop's first pieces
        if len(pieces) == 1:
            return [first], [first]
        return [microbatch.head(first, 0, microbatch.total(pieces))], pieces
    if not microbatch.splittable(first):
        return [first], [first]
    size = min(first.n, CHECK_SAMPLES)
    head = microbatch.head(first, 0, size) if size < first.n else first
    split = b.micro is not None and b.micro < first.n and size > 1
    return [head], microbatch.split(head, -(-size // 2) if split else None)


def verify(b: Binding, probe: np.ndarray) -> tuple[dict[str, object], float]:
    """Check the shortcuts (micro-batches, precomputed first layer, speed-ups, folded
    BatchNorms) against the plain loop at the point `probe`, on the first samples of the
    data; keep the first combination that agrees (usually all of them). Returns what was
    kept, for `chosen`, and the seconds per point it took, scaled to all the data.
    """
    inject = b.injection is not None
    split = b.splits
    while True:
        agreed, seconds = _first_agreeing(b, probe)
        if agreed:
            return _verdict(b, inject, split), seconds
        if not b.splits:  # not even the plain loop agrees with itself
            b.drop_injection()  # (a random forward): run it plainly
            b.fast = False
            return _verdict(b, inject, split), seconds
        # The model or the loss mixes samples (BatchNorm on batch statistics): whole batches.
        b.relayout(b.channels_last, None)
        if inject:
            b.prepare_injection()


def _first_agreeing(b: Binding, probe: np.ndarray) -> tuple[bool, float]:
    """Set `b` to the first combination of shortcuts (`_combinations`) whose values agree
    with the plain loop's; the seconds per point it (or the plain loop) took on all data."""
    ref_data, data = check_data(b)
    b.fast = False
    b.set_injected(False)
    try:
        with restricted(b, ref_data):
            t0 = time.perf_counter()
            ref = loop(b, probe)  # errors in the model or the loss surface here
            seconds = (time.perf_counter() - t0) * b.n_samples / microbatch.total(ref_data)
    except Exception:
        if ref_data[0] is not b.first_laid_out:  # say it of the user's batch, not our slice
            with restricted(b, [b.first_laid_out]):
                loop(b, probe)
        raise
    if len(data) > len(ref_data) and mixes_samples(b, ref_data[0], data):
        return False, seconds
    shortcuts = (len(data) > len(ref_data) or b.injection is not None or b.folds
                 or b.private.narrow or speedups.flatten(b.private.module, {}) is not None)
    if not shortcuts:  # the plain loop is all there is
        return True, seconds
    for fast, folding, with_first in _combinations(b.injection is not None, bool(b.folds)):
        if not with_first:
            b.drop_injection()  # for good: the combinations with it come first
        b.fast = fast
        b.set_folding(folding)
        b.set_injected(with_first)
        with restricted(b, data):
            t0 = time.perf_counter()
            try:
                got = loop(b, probe)
            except Exception:  # a shortcut that fails where the plain loop did not
                continue
            took = (time.perf_counter() - t0) * b.n_samples / microbatch.total(data)
        if agree(ref, got):
            return True, took
    return False, seconds


@contextmanager
def restricted(b: Binding, batches: list[Batch]) -> Iterator[None]:
    """`b` runs on `batches` alone while inside, in the loop and in vmap: laid out like its
    `laid_out`, and its first batches while the first layer is precomputed."""
    was = b.laid_out, b.batches, b.n_samples
    b.laid_out, b.batches, b.n_samples = batches, batches, microbatch.total(batches)
    try:
        yield
    finally:
        b.laid_out, b.batches, b.n_samples = was


def mixes_samples(b: Binding, whole: Batch, parts: list[Batch]) -> bool:
    """The model's outputs (the tensors the loss sees) on `parts` differ from its outputs on
    them as one batch, `whole`, by more than float rounding: it mixes samples (BatchNorm on
    batch statistics), which the mean loss alone may hide. Run on the plain copy, at the
    point the copy is at."""
    module = b.private.module
    try:
        with torch.no_grad():
            one = b.scorer.pick(forward(module, whole))
            many = [b.scorer.pick(forward(module, p)) for p in parts]
        if not isinstance(one, Tensor) or one.dim() == 0 or one.shape[0] != whole.n:
            return False  # no output per sample to compare: the loss's check decides
        split = torch.cat(many).to(one.dtype)
    except Exception:  # outputs that do not concatenate: the loss's check decides
        return False
    finite = torch.isfinite(one)
    if split.shape != one.shape or not torch.equal(finite, torch.isfinite(split)):
        return True
    scale = float(one[finite].abs().max()) if bool(finite.any()) else 0.0
    return not torch.allclose(split[finite], one[finite], rtol=1e-4, atol=1e-5 * scale)


def _combinations(inject: bool, folds: bool) -> list[tuple[bool, bool, bool]]:
    """(speed-ups, folded BatchNorms, precomputed first layer), most preferred first."""
    loop_speedups = [(True, True), (True, False), (False, False)] if folds else [
        (True, False), (False, False)
    ]
    firsts = (True, False) if inject else (False,)
    return [(fast, folding, first) for first in firsts for fast, folding in loop_speedups]


def _verdict(b: Binding, inject: bool, split: bool) -> dict[str, object]:
    """What the check kept, for `chosen`."""
    verdict: dict[str, object] = {}
    if split:
        verdict["micro_batch"] = b.micro if b.splits else (
            "rejected (numerical check failed)"
        )
    if inject:
        verdict["first_layer"] = (
            "precomputed" if b.injection is not None else "rejected (numerical check failed)"
        )
    if b.fast:
        verdict["flattened"] = speedups.flatten(b.private.module, {}) is not None
        verdict["padded_linears"] = len(b.private.narrow)
        if b.folding and b.folds:
            verdict["folded_batchnorms"] = len(b.folds)
    return verdict


def agree(ref: np.ndarray, got: np.ndarray) -> bool:
    """Same non-finite pattern, and the finite values equal to float rounding."""
    finite = np.isfinite(ref) & np.isfinite(got)
    return bool(np.all(np.isfinite(ref) == np.isfinite(got))) and np.allclose(
        got[finite], ref[finite], rtol=1e-4, atol=1e-5
    )


def vmap_chunk_size(batches: Batches, memory_budget: float) -> int:
    """Points per vmap call: bounded by the memory budget (never by timings) and, on a GPU
    with less free memory than the budget, by half of what is free (else the first call
    would run out of memory). The budget decides wherever the GPU has room for it: then the
    chunk, and so every value, is a pure function of the inputs. (`run.vmapped` halves the
    chunk if the GPU runs out of memory all the same.)"""
    inputs = [t for b in batches for t in b.inputs()]
    # activations of a few layers per point, a rough upper estimate
    act = max(t.numel() * t.element_size() for t in inputs) * 8
    budget = memory_budget
    if inputs and inputs[0].device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(inputs[0].device)
        budget = min(budget, free // 2)
    return int(max(1, min(VMAP_MAX_CHUNK, budget // max(1, act))))


def tile_size(
    flops_per_point: float, n_samples: int, numel: int, mode: str, vmap_chunk: int
) -> int:
    """Points per tile of a stream: a pure function of the model, data and plan.

    About `TILE_FLOPS` of arithmetic per tile (FLOPs counted in one forward, at least
    one multiply-add per parameter and sample); in vmap mode a whole number of chunks.
    """
    per_point = max(flops_per_point, 2.0 * n_samples * numel)
    size = int(np.clip(TILE_FLOPS // per_point, 1, MAX_TILE))
    if mode == "vmap":
        size = max(1, round(size / vmap_chunk)) * vmap_chunk
    return size
