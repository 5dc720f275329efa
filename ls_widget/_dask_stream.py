"""The client side of a Dask run: ship once, submit the tiles, gather them, keep the bits.

`ship` scatters a Landscape's bytes to every worker once per (Landscape, client, data
function) and keeps the future for later streams (the widget's slider moves reuse it). A
`DaskRun` is one stream: its directions are scattered to every worker once, its tiles are
submitted coarse to fine (higher Dask priority first) and gathered as they complete. Each
result's fingerprint (the worker's values at a check point and its plan) must equal the
reference's, bit for bit. Completed futures are dropped at once, so a worker lost later
costs no recomputation.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from weakref import WeakKeyDictionary

import numpy as np
import torch

from ._dask_pack import landscape_bytes, to_bytes
from ._dask_worker import (
    CHECK_POINT,
    Plans,
    Prepared,
    fingerprint,
    plans_of,
    prepare,
    run_tile,
    torch_threads,
)
from .directions.direction import Direction
from .engine.landscape import Landscape
from .engine.landscape_slices import float32_mode

POLL = 0.5  # seconds between checks that some worker is left, while no tile completes
RECOVERIES = 3  # times a run ships its state again after every copy of it was lost


class WorkersLost(RuntimeError):
    """No Dask worker was left for the executor's timeout (or all copies of the shipped state
    were lost more often than a run recovers from).

    Attributes:
        partial: what was computed before: a `Surface` (plane) or `Curve` (line) with NaN
            where no tile came (``evaluated`` marks the points done); None if nothing was.
        surface: the same record (kept under this name too for planes and lines alike).
    """

    def __init__(self, message: str, partial: Any = None) -> None:
        super().__init__(message)
        self.partial = partial
        self.surface = partial


class WorkerMismatch(RuntimeError):
    """A worker computes other values than the reference at the check point (other data,
    library versions, device or thread settings), or with another plan: its tiles would not
    be the same bits."""


@dataclass
class Shipped:
    """A Landscape scattered to the workers of `client` (bytes under `token`)."""

    client: Any
    data: Callable[[], Any] | None
    future: Any
    token: str
    warned: set[int] = field(default_factory=set)  # thread counts warned about


_SHIPPED: WeakKeyDictionary[Landscape, list[Shipped]] = WeakKeyDictionary()
_SHIP_LOCK = threading.Lock()


def ship(land: Landscape, client: Any, data: Callable[[], Any] | None, timeout: float,
         renew: bool = False) -> Shipped:
    """`land` on every worker of `client`, scattered once and reused while it lasts."""
    with _SHIP_LOCK:
        kept = [s for s in _SHIPPED.get(land, []) if s.client is client and s.data is data
                and s.future.status == "finished" and not renew]
        if kept:
            return kept[0]
    blob = landscape_bytes(land, data)
    try:
        future = client.scatter(blob, broadcast=True, hash=False, timeout=timeout)
    except TimeoutError:
        raise WorkersLost(f"no Dask worker took the landscape within timeout={timeout} s; "
                          "start workers (cluster.scale(n)) and call again") from None
    shipped = Shipped(client, data, future, uuid.uuid4().hex)
    with _SHIP_LOCK:
        others = [s for s in _SHIPPED.get(land, []) if not (s.client is client and s.data is data)]
        _SHIPPED[land] = [*others, shipped]
    return shipped


def warn_oversubscribed(shipped: Shipped, threads: int) -> None:
    """Warn (once per thread count) where the workers of a host run more torch threads in
    all than the host has cores: every point then runs slower than on fewer workers."""
    if threads in shipped.warned:
        return
    shipped.warned.add(threads)
    client = shipped.client
    workers = client.scheduler_info(n_workers=-1)["workers"]
    cores = client.run(os.cpu_count, on_error="return")
    hosts: dict[str, list[str]] = {}
    for addr, w in workers.items():
        hosts.setdefault(str(w.get("host")), []).append(addr)
    for host, addrs in hosts.items():
        have = min((c for a in addrs if isinstance(c := cores.get(a), int)), default=None)
        busy = sum(int(workers[a].get("nthreads", 1)) for a in addrs) * threads
        if have is not None and busy > have:
            warnings.warn(
                f"{len(addrs)} Dask worker(s) on {host} run up to {busy} torch threads on "
                f"{have} cores (threads={threads} per task): points run "
                "slower than they could. Pass DaskExecutor(client, threads=1) and compute "
                "local references under torch.set_num_threads(1) for the same bits",
                RuntimeWarning, stacklevel=4,
            )


class DaskRun:
    """One stream on Dask: the reference, the directions shipped, the tiles gathered.

    Args:
        land: the Landscape (its metric names, its local binding where it is the reference).
        dirs: the directions.
        client: the ``distributed.Client``.
        data: the function that builds the data on each worker (None: ship the data).
        threads: torch threads per task.
        device: the workers' device ("cpu", "cuda"); `remote`: calibrated on a worker and
            checked against the workers (else the local binding is the reference).
        timeout: seconds without any worker before `WorkersLost`.
        retries: Dask's retries of a task that raised.
    """

    def __init__(self, land: Landscape, dirs: Sequence[Direction], client: Any, *,
                 data: Callable[[], Any] | None, threads: int, device: str, remote: bool,
                 timeout: float, retries: int) -> None:
        self.land, self.dirs, self.client = land, list(dirs), client
        self.data, self.threads, self.device = data, threads, device
        self.timeout, self.retries = timeout, retries
        self.shipped = ship(land, client, data, timeout)
        warn_oversubscribed(self.shipped, threads)
        self.job_token = uuid.uuid4().hex
        self._job_bytes = to_bytes(self.dirs)
        self.job = self._scatter(self._job_bytes)
        self.pending: dict[Any, int] = {}  # future → index of its coefficients
        self._coeffs: dict[int, np.ndarray] = {}
        self._recovered = 0
        self.done_points = 0
        if remote:
            ref = self._prepare()
            self.plans: Plans | None = ref.plans
            self.tile_size, self.reference = ref.tile_size, ref.fingerprint
        else:
            with torch_threads(threads), float32_mode(land.tf32):
                self.reference = fingerprint(land, self.dirs)
                self.tile_size = land._bind(self.dirs).tile_size
            self.plans = plans_of(land)

    def _scatter(self, blob: bytes) -> Any:
        try:
            return self.client.scatter(blob, broadcast=True, hash=False, timeout=self.timeout)
        except TimeoutError:
            raise WorkersLost(f"no Dask worker took the directions within timeout="
                              f"{self.timeout} s; start workers and call again") from None

    def _prepare(self) -> Prepared:
        future = self.client.submit(
            prepare, self.shipped.future, self.shipped.token, self.job, self.job_token,
            self.threads, self.device, pure=False, retries=self.retries,
            key=f"ls-widget-prepare-{self.job_token}",
        )
        self.pending[future] = -1
        for _, result in self.completed():
            return result
        raise AssertionError("unreachable: completed() yields every pending future")

    def submit(self, index: int, coeffs: np.ndarray, priority: int) -> None:
        """Submit the points `coeffs` as task `index` (higher `priority` runs first)."""
        self._coeffs[index] = coeffs
        future = self.client.submit(
            run_tile, self.shipped.future, self.shipped.token, self.job, self.job_token,
            self.plans, coeffs, self.threads, self.device, pure=False, priority=priority,
            retries=self.retries,
            key=f"ls-widget-tile-{self.job_token}-{index}-{uuid.uuid4().hex[:6]}",
        )
        self.pending[future] = index

    def completed(self) -> Iterator[tuple[int, Any]]:
        """(index, result) of the pending tasks as they complete, each exactly once."""
        from distributed import wait
        from distributed.client import FuturesCancelledError

        lost_since: float | None = None
        while self.pending:
            try:
                done, _ = wait(list(self.pending), timeout=POLL, return_when="FIRST_COMPLETED")
            except TimeoutError:
                lost_since = self._check_workers(lost_since)
                continue
            except FuturesCancelledError:  # some lost their shipped state: `_take` resubmits
                done = {f for f in self.pending if f.status != "pending"}
            lost_since = None
            results = self._take(done)
            del done  # dropped before yielding: a worker lost later has nothing to recompute
            for index, result in results:
                yield index, self._checked(index, result)

    def _take(self, done: set[Any]) -> list[tuple[int, Any]]:
        """The results of the futures `done`, in submission order; cancelled ones (their
        shipped state was lost) are submitted again. A task's error is raised here, as the
        model raised it."""
        cancelled = [f for f in done if f.status == "cancelled"]
        if cancelled:
            self._recover(cancelled)
        finished = sorted((f for f in done if f.status != "cancelled"),
                          key=self.pending.__getitem__)
        return [(self.pending.pop(f), f.result()) for f in finished]

    def _checked(self, index: int, result: Any) -> Any:
        if index < 0:
            return result
        values, got = result
        ref = self.reference
        if got.values.tobytes() != ref.values.tobytes() or got.chosen != ref.chosen:
            names = self.land.metric_names
            theirs = dict(zip(names, got.values.tolist(), strict=True))
            ours = dict(zip(names, ref.values.tolist(), strict=True))
            raise WorkerMismatch(
                f"a Dask worker computes {theirs} at the check point θ₀ + {CHECK_POINT}·Σd "
                f"with plan {got.chosen}, where the reference computes {ours} with plan "
                f"{ref.chosen}: "
                "its tiles would not be the same bits. Check that data= builds the Landscape's "
                "data, that the workers run the client's torch version (and GPU model), or "
                "pass DaskExecutor(device=...) to check the workers against each other")
        self.done_points += len(values)
        return values

    def _check_workers(self, since: float | None) -> float | None:
        if self.client.scheduler_info(n_workers=-1)["workers"]:
            return None
        now = time.monotonic()  # decides only when the error is raised, never a value
        if since is None:
            return now
        if now - since > self.timeout:
            self.cancel()
            raise WorkersLost(
                f"every Dask worker was gone for more than timeout={self.timeout} s; "
                f"{self.done_points} points were done (kept on this error's .partial, NaN "
                "elsewhere). Start workers and call again")
        return since

    def _recover(self, cancelled: list[Any]) -> None:
        """Every copy of the shipped state was lost (all workers died at once): ship it
        again and resubmit the cancelled tasks."""
        self._recovered += 1
        if self._recovered > RECOVERIES:
            self.cancel()
            raise WorkersLost(f"the workers lost the shipped landscape {RECOVERIES} times; "
                              f"{self.done_points} points were done (on .partial)")
        self.shipped = ship(self.land, self.client, self.data, self.timeout, renew=True)
        self.job = self._scatter(self._job_bytes)
        for future in cancelled:
            index = self.pending.pop(future)
            if index < 0:
                raise WorkersLost("the workers were lost while preparing the job")
            self.submit(index, self._coeffs[index], priority=0)

    def cancel(self) -> None:
        """Cancel every pending task (the stream was closed, failed or was abandoned)."""
        if self.pending:
            futures, self.pending = list(self.pending), {}
            self.client.cancel(futures, reason="ls-widget stream closed")


def threads_default(threads: int | None) -> int:
    """The torch threads of a job: `threads`, else this process's count."""
    return torch.get_num_threads() if threads is None else threads
