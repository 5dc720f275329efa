"""How a binding runs its points: fixed rules, checked numerically, never timed.

The plan follows rules of the inputs alone (device, data size, the model's layers, the memory
budget), so the same inputs give bit-identical results on every run: the paths differ in float
rounding, and which points share a vectorized call or a tile is a pure function of the inputs.
The speed measured here only feeds time estimates shown to the user.

- channels_last for conv nets on CPUs (oneDNN's NHWC convolutions beat NCHW there);
- the first layer precomputed where its fan-in is ≥ 16 (first_layer.py);
- the loop's speed-ups (speedups.py) and the first layer, kept only where they agree with the
  plain loop on a few points;
- vmap on GPUs and for small data, in chunks bounded by the memory budget.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..batch import Batch
from . import speedups
from .binding import Binding
from .first_layer import fan_in
from .run import loop, vmapped

VMAP_SMALL_DATA = 512  # samples: below this, one point underfills even a CPU
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

PlanKey = tuple[tuple[str, ...], tuple[str, ...], int]  # moving params, moving buffers, k


@dataclass(frozen=True)
class Plan:
    """What calibration decided for a binding; reused by bindings that move the same tensors.

    Attributes:
        channels_last: 4D weights and image inputs in NHWC.
        inject: the first layer precomputed.
        fast: the loop's speed-ups on.
        mode: "loop" or "vmap".
        vmap_chunk: points per vmap call.
        chosen: the same, as recorded in results' provenance (with the shortcuts kept).
    """

    channels_last: bool
    inject: bool
    fast: bool
    mode: str
    vmap_chunk: int
    chosen: dict[str, object]


def plan_key(b: Binding) -> PlanKey:
    """Bindings that move the same tensors along as many directions share a plan."""
    return (tuple(b.moving), tuple(b.buffer_names), b.k)


def calibrate(b: Binding, strategy: str) -> tuple[Plan, float]:
    """Pick the fastest correct way to run `b`'s points and set it up.

    Returns the plan and the points per second measured on a few points (for estimates).
    """
    chosen: dict[str, object] = {}
    device = b.space.device
    rng = np.random.default_rng(0)
    probe = rng.uniform(-0.5, 0.5, size=(2, b.k))
    loop(b, probe[:1])  # runs the model once: user errors surface here, clearly
    if b.private.has_conv and device.type == "cpu" and strategy != "vmap":
        b.relayout(channels_last=True)
        chosen["memory_format"] = "channels_last"
    first = b.private.first
    if first is not None and fan_in(first.module) >= INJECT_MIN_FAN_IN:
        b.prepare_injection()
    chosen.update(verify(b, probe))
    # vmap pays where one point does not fill the device (GPUs, or little data); with
    # enough data each point is already one large matmul on a CPU and the loop wins.
    small = b.n_samples <= VMAP_SMALL_DATA
    want_vmap = strategy == "vmap" or (strategy == "auto" and (device.type != "cpu" or small))
    b.mode = "loop"
    if want_vmap and b.moves:
        b.vmap_chunk = vmap_chunk_size(b.batches, b.memory_budget)
        was = b.injected
        b.set_injected(False)
        try:
            vmapped(b, probe)
            b.mode = "vmap"
        except Exception as exc:  # models whose ops lack batching rules
            if strategy == "vmap":
                raise RuntimeError(f"vmap evaluation failed: {exc}") from exc
            chosen["vmap"] = f"unavailable ({type(exc).__name__})"
            if was:
                b.set_injected(True)
    run = vmapped if b.mode == "vmap" else loop
    # vmap runs whole chunks: time one full chunk (the speed feeds estimates only).
    timed = probe if b.mode == "loop" else np.resize(probe, (b.vmap_chunk, b.k))
    t0 = time.perf_counter()
    run(b, timed)
    points_per_second = len(timed) / max(time.perf_counter() - t0, 1e-9)
    chosen["mode"] = b.mode
    chosen["vmap_chunk"] = b.vmap_chunk
    made = Plan(b.channels_last, b.injected, b.fast, b.mode, b.vmap_chunk, chosen)
    return made, points_per_second


def apply(b: Binding, plan: Plan) -> None:
    """Set `b` up as an earlier calibration decided (the first layer is still precomputed
    for these directions)."""
    if plan.channels_last:
        b.relayout(channels_last=True)
    if plan.inject and b.prepare_injection():
        b.set_injected(True)
    b.fast = plan.fast
    b.mode = plan.mode
    b.vmap_chunk = plan.vmap_chunk


def verify(b: Binding, probe: np.ndarray) -> dict[str, object]:
    """Check the loop's shortcuts (precomputed first layer, speed-ups) against the plain
    loop on a few points; drop whichever disagrees. Returns what was kept, for `chosen`."""
    inject = b.injection is not None
    found: dict[str, object] = {
        "flattened": speedups.flatten(b.private.module, {}) is not None,
        "padded_linears": len(b.padded),
    }
    verdict: dict[str, object] = {}
    if not inject and not any(found.values()):
        return verdict
    b.set_injected(False)
    b.fast = False
    ref = loop(b, probe)
    for fast in (True, False):  # a failure with both on: try the first layer alone
        b.fast = fast
        b.set_injected(inject)
        if agree(ref, loop(b, probe)):
            break
    else:
        b.fast = False
        b.set_injected(False)
        b.injection = None
    if inject:
        verdict["first_layer"] = (
            "precomputed" if b.injection is not None
            else "rejected (numerical check failed)"
        )
    if b.fast:
        verdict.update(found)
    return verdict


def agree(ref: np.ndarray, got: np.ndarray) -> bool:
    """Same non-finite pattern, and the finite values equal to float rounding."""
    finite = np.isfinite(ref) & np.isfinite(got)
    return bool(np.all(np.isfinite(ref) == np.isfinite(got))) and np.allclose(
        got[finite], ref[finite], rtol=1e-4, atol=1e-5
    )


def vmap_chunk_size(batches: list[Batch], memory_budget: float) -> int:
    """Points per vmap call: bounded by the memory budget (never by timings)."""
    act = max(
        t.numel() * t.element_size() for b in batches for t in b.inputs()
    ) * 8  # activations of a few layers per point, a rough upper estimate
    return int(max(1, min(VMAP_MAX_CHUNK, memory_budget // max(1, act))))


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
