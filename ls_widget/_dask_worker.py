"""The worker side of a Dask run: one Landscape per worker and job, built once, and the tiles.

A task receives the shipped Landscape and directions (bytes that Dask placed on the worker
once) with tokens naming them. The first task of a worker builds the Landscape from the bytes
and binds the directions with the client's plans (so no worker calibrates on its own: the plan
is the client's, the same everywhere); later tasks find both in this process's cache, keyed by
the worker's address and the tokens. Each task evaluates under the job's torch thread count
and float32 mode, and returns its values with the worker's fingerprint (its values at a check
point, `CHECK_POINT`, and its plan), which the client checks against the reference's.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ._dask_pack import build_landscape, from_bytes
from .directions.direction import Direction
from .engine.evaluate import Evaluator
from .engine.evaluate.plan import Plan, PlanKey
from .engine.landscape import Landscape
from .engine.landscape_slices import float32_mode
from .engine.named import NamedSets

KEEP_LANDSCAPES = 2  # per worker: the widget's landscape and one more
KEEP_JOBS = 4  # directions bound per landscape (a Landscape keeps 4 bindings too)

Plans = dict[str, dict[PlanKey, Plan]]  # data set name ("" for one set) → its plans
# The fingerprint's point, θ₀ + 0.25·Σₖ dₖ: not θ₀, whose value a binding may keep from an
# evaluation under other settings (another thread count) and return again.
CHECK_POINT = 0.25


@dataclass
class Fingerprint:
    """What a worker's evaluation is checked by: its values at `CHECK_POINT` and its plan."""

    values: np.ndarray
    chosen: dict[str, object]


@dataclass
class Prepared:
    """A binding made on a worker, for clients whose device differs from the workers'."""

    plans: Plans
    tile_size: int
    fingerprint: Fingerprint


@dataclass
class _Built:
    land: Landscape
    lock: threading.Lock = field(default_factory=threading.Lock)
    jobs: OrderedDict[str, list[Direction]] = field(default_factory=OrderedDict)
    prints: dict[str, Fingerprint] = field(default_factory=dict)


_LOCK = threading.Lock()
_BUILT: OrderedDict[tuple[str, str], _Built] = OrderedDict()
_THREADS_LOCK = threading.Lock()


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """PyTorch's intra-op threads set to `n` in this thread while inside (restored after).

    CPU kernels (MKL's GEMM among them) may round differently with another thread count, so
    the count is part of a job's inputs: workers use the client's.
    """
    with _THREADS_LOCK:
        old = torch.get_num_threads()
        torch.set_num_threads(n)
    try:
        yield
    finally:
        with _THREADS_LOCK:
            torch.set_num_threads(old)


def evaluators(land: Landscape) -> dict[str, Evaluator]:
    """The Evaluator of each data set of `land` ("" for one unnamed set)."""
    points = land._points
    return dict(points.evaluators) if isinstance(points, NamedSets) else {"": land.evaluator}


def plans_of(land: Landscape) -> Plans:
    """The plans `land` has calibrated, by data set."""
    return {name: dict(ev.plans) for name, ev in evaluators(land).items()}


def _worker_key() -> str:
    from distributed import get_worker

    try:
        return str(get_worker().address)
    except ValueError:  # not in a worker (a test calling the task function directly)
        return "local"


def _device(name: str) -> torch.device:
    device = torch.device(name)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())  # this worker's GPU
    return device


def _built(shipped: bytes, token: str, device: str) -> _Built:
    key = (_worker_key(), token)
    with _LOCK:
        hit = _BUILT.get(key)
        if hit is not None:
            _BUILT.move_to_end(key)
            return hit
    built = _Built(build_landscape(shipped, _device(device)))
    with _LOCK:
        built = _BUILT.setdefault(key, built)  # another thread may have built it meanwhile
        while len(_BUILT) > KEEP_LANDSCAPES:
            _BUILT.popitem(last=False)
    return built


def _directions(built: _Built, job: bytes, token: str) -> list[Direction]:
    dirs = built.jobs.get(token)
    if dirs is None:
        dirs = from_bytes(job, built.land.space.device)
        built.jobs[token] = dirs
        while len(built.jobs) > KEEP_JOBS:
            old, _ = built.jobs.popitem(last=False)
            built.prints.pop(old, None)
    built.jobs.move_to_end(token)
    return dirs


def _seed(land: Landscape, plans: Plans | None) -> None:
    """Give `land` the client's plans, so that binding applies them rather than calibrating."""
    for name, ev in evaluators(land).items():
        for key, plan in (plans or {}).get(name, {}).items():
            ev.plans.setdefault(key, plan)


def fingerprint(land: Landscape, dirs: list[Direction]) -> Fingerprint:
    """`land`'s values at `CHECK_POINT` along `dirs` and its plan for them (run inside the
    job's thread count and float32 mode)."""
    bound = land._bind(dirs)
    return Fingerprint(bound.evaluate(np.full((1, len(dirs)), CHECK_POINT))[0], bound.chosen)


def _fingerprint(built: _Built, token: str, dirs: list[Direction]) -> Fingerprint:
    hit = built.prints.get(token)
    if hit is None:
        hit = built.prints[token] = fingerprint(built.land, dirs)
    return hit


def run_tile(
    shipped: bytes, land_token: str, job: bytes, job_token: str, plans: Plans | None,
    coeffs: np.ndarray, threads: int, device: str,
) -> tuple[np.ndarray, Fingerprint]:
    """The values (P, metrics) at `coeffs` along the job's directions, and the worker's
    fingerprint (the Dask task of one tile)."""
    built = _built(shipped, land_token, device)
    with built.lock, torch_threads(threads), float32_mode(built.land.tf32):
        dirs = _directions(built, job, job_token)
        _seed(built.land, plans)
        values = built.land._bind(dirs).evaluate(coeffs)
        return values, _fingerprint(built, job_token, dirs)


def prepare(
    shipped: bytes, land_token: str, job: bytes, job_token: str, threads: int, device: str,
) -> Prepared:
    """Bind the job's directions on this worker, calibrating its own plan (the Dask task that
    runs first where the workers evaluate on another device than the client's model)."""
    built = _built(shipped, land_token, device)
    with built.lock, torch_threads(threads), float32_mode(built.land.tf32):
        dirs = _directions(built, job, job_token)
        bound = built.land._bind(dirs)
        return Prepared(plans_of(built.land), bound.tile_size,
                        _fingerprint(built, job_token, dirs))


def forget(tokens: Mapping[str, Any] | None = None) -> int:
    """Drop this process's built Landscapes (all, or those of `tokens`); returns how many."""
    with _LOCK:
        keys = [k for k in _BUILT if tokens is None or k[1] in tokens]
        for k in keys:
            del _BUILT[k]
    return len(keys)
