"""Dask executor: a Landscape's tiles as Dask tasks, its state shipped once, the same bits.

``land.plane(d1, d2, client=client)``, ``land.stream(..., client=)``, ``land.line(...,
client=)`` and ``lw.explore(..., client=)`` take a ``distributed.Client`` or a
`DaskExecutor` (for its settings). Needs ``pip install "ls-widget[dask]"`` on the client and
ls-widget on every worker; `distributed` is imported only when a client is passed.

How it runs:

- State once. The Landscape (its model at θ₀ as bytes, its settings and data, or a function
  ``data=`` that builds the data on each worker) is scattered to every worker once per
  Landscape and client and reused by later streams; a stream's directions are scattered once
  per stream. Each worker builds one Landscape and one binding per stream, cached by tokens,
  and binds with the reference's plans, so no worker calibrates on its own.
- Tiles. The tiles are the local stream's (the same points in each, from the same tile size),
  submitted coarse to fine as Dask tasks with decreasing priority, and gathered as they
  complete. Delivery keeps the levels in order (a level's tiles before the next level's);
  within a level tiles come as they complete (``ordered=True``: exactly the local stream's
  sequence). The order decides only when a tile is shown: each point is evaluated alone, so
  its value never depends on the order, the tile or the worker. Adaptive refinement runs a
  level at a time (which points a level needs depends on the coarser values) and delivers a
  level when it is complete.
- Same bits. Every worker evaluates with the job's torch thread count (default: the client's
  ``torch.get_num_threads()``: MKL's GEMM rounds differently with another count; measured
  here, a 64-512-512-10 MLP on digits changed 4 of 49 points by ~3e-10 from 1 to 2 threads)
  and the Landscape's float32 mode (``tf32``). Each result carries the worker's values at a
  check point (θ₀ + 0.25·Σdₖ) and its plan, which must equal the reference's bit for bit,
  else `WorkerMismatch`. The
  reference is the client's own binding; with ``device=`` (workers on another device than the
  client's model, e.g. a CPU client and GPU workers) it is a first task's binding on a worker.
- Faults. A worker that dies mid-stream: Dask reschedules its tasks on the others (its
  completed tiles were gathered already); the stream completes with the same bits, each point
  once. A task that raises is retried ``retries`` times, then its error is raised here. If
  every worker is gone for ``timeout`` seconds, `WorkersLost` is raised carrying the partial
  record (``.partial``, also ``.surface``). If all copies of the shipped state were lost (all
  workers died at once and restarted), it is shipped again and the tasks resubmitted.
- Cancelling. Closing the stream (the widget moving on) cancels every pending task.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from itertools import count
from typing import Any

import numpy as np

from ._dask_gpu import cuda_cluster
from ._dask_stream import DaskRun, WorkerMismatch, WorkersLost, threads_default
from .directions.direction import Direction
from .engine.landscape import Landscape
from .engine.landscape_slices import register_executor
from .engine.progressive import progressive
from .engine.sampling import Grid, Tile, chunks
from .results.records import Curve, Surface

__all__ = ["DaskExecutor", "WorkerMismatch", "WorkersLost", "cuda_cluster"]


def _client_type() -> type:
    try:
        from distributed import Client
    except ImportError as exc:
        raise ImportError(
            "client= needs Dask's distributed package; install it with "
            "pip install 'ls-widget[dask]'"
        ) from exc
    return Client


@dataclass
class DaskExecutor:
    """Run a Landscape's tiles on a Dask cluster (pass it as ``client=``).

    Args:
        client: a ``distributed.Client``.
        data: a function, called once on each worker, that returns the data (anything
            `lw.Landscape` takes) for data that must not travel: it must build the same data
            as the Landscape's (checked at a point). None: the Landscape's data is shipped.
        threads: torch threads per task (None: this process's ``torch.get_num_threads()``
            when a stream starts). Part of the inputs: with another count, compute local
            references under ``torch.set_num_threads(threads)``. One Dask thread per worker
            and ``threads × workers`` ≤ cores per host is fastest.
        device: None: the workers evaluate on the device type of the client's model and must
            reproduce its bits. "cuda" or "cpu": the workers' own device (each worker's GPU:
            one worker per GPU, see `cuda_cluster`), calibrated on a worker; the workers'
            bits are checked against each other.
        timeout: seconds with no worker left before `WorkersLost` (default 60).
        retries: Dask's retries of a task that raised (default 1).
        ordered: deliver the tiles in exactly the local stream's order (default: levels in
            order, within a level as they complete).
    """

    client: Any
    data: Callable[[], Any] | None = None
    threads: int | None = None
    device: str | None = None
    timeout: float = 60.0
    retries: int = 1
    ordered: bool = False
    _meta: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.client, _client_type()):
            raise TypeError(
                f"client must be a distributed.Client or an ls_widget.distributed.DaskExecutor,"
                f" got {type(self.client).__name__}; e.g. Client(LocalCluster(n_workers=2, "
                "threads_per_worker=1))"
            )
        if self.data is not None and not callable(self.data):
            raise TypeError(f"data must be a function that builds the data on a worker (e.g. "
                            f"data=lambda: build_loader()), got {type(self.data).__name__}")
        if self.threads is not None and (isinstance(self.threads, bool) or not isinstance(
                self.threads, int) or self.threads < 1):
            raise ValueError(f"threads must be a positive int or None, got {self.threads!r}")
        if self.device is not None and (not isinstance(self.device, str)
                                        or self.device not in ("cpu", "cuda")):
            raise ValueError(f"device must be None, 'cpu' or 'cuda', got {self.device!r}")
        if isinstance(self.timeout, bool) or not isinstance(self.timeout, (int, float)) or not (
                self.timeout > 0 and math.isfinite(self.timeout)):
            raise ValueError(f"timeout must be a positive number of seconds, got "
                             f"{self.timeout!r}")
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or (
                self.retries < 0):
            raise ValueError(f"retries must be an int ≥ 0, got {self.retries!r}")

    @classmethod
    def of(cls, client: Any) -> DaskExecutor:
        """A fresh executor for one call: a copy of `client` if it is an executor, else an
        executor with the default settings."""
        if isinstance(client, DaskExecutor):
            return replace(client, _meta={})
        return cls(client)

    def meta(self) -> dict[str, Any]:
        """What a result records of its run (after `tiles`)."""
        return dict(self._meta)

    def tiles(self, land: Landscape, grid: Grid, dirs: list[Direction], *, adaptive: bool,
              tol: float, tile_size: int | None) -> Iterator[Tile]:
        """The tiles of ``land.stream(*dirs, grid=grid, ...)`` computed on the cluster."""
        if not (isinstance(tol, (int, float)) and tol > 0):
            raise ValueError(f"tol must be a positive fraction of the value range, got {tol!r}")
        if tile_size is not None and (isinstance(tile_size, bool) or not isinstance(
                tile_size, (int, np.integer)) or tile_size < 1):
            raise ValueError(f"tile_size must be a positive int (points per tile), got "
                             f"{tile_size!r}")
        threads = threads_default(self.threads)
        device = self.device or land.space.device.type
        run = DaskRun(land, dirs, self.client, data=self.data, threads=threads, device=device,
                      remote=self.device is not None, timeout=self.timeout,
                      retries=self.retries)
        size = run.tile_size if tile_size is None else tile_size
        self._meta = {"executor": {"kind": "dask", "device": device, "threads": threads}}
        if self.device is not None:
            self._meta.update(device=device, evaluation=run.reference.chosen)
        return _deliver(run, land, grid, dirs, adaptive, tol, int(size), self.ordered)


def _deliver(run: DaskRun, land: Landscape, grid: Grid, dirs: Sequence[Direction],
             adaptive: bool, tol: float, size: int, ordered: bool) -> Iterator[Tile]:
    known = _Known(land.metric_names, grid.shape)
    try:
        if adaptive:
            yield from _adaptive(run, grid, land.metric_names, tol, size, known)
        else:
            yield from _fixed(run, grid, land.metric_names, size, ordered, known)
    except WorkersLost as exc:
        exc.partial = exc.surface = known.record(land, grid, dirs)
        raise
    finally:
        run.cancel()


class _Known:
    """The values of the tiles done so far, for the partial record of `WorkersLost`."""

    def __init__(self, names: Sequence[str], shape: tuple[int, int]) -> None:
        self.values = {m: np.full(shape, np.nan) for m in names}
        self.evaluated = np.zeros(shape, dtype=bool)

    def add(self, tile: Tile) -> None:
        for m, v in tile.values.items():
            self.values[m][tile.rows, tile.cols] = v
        self.evaluated[tile.rows, tile.cols] = tile.exact

    def record(self, land: Landscape, grid: Grid, dirs: Sequence[Direction]) -> Any:
        if not self.evaluated.any():
            return None
        if grid.k == 1:
            return Curve(x=grid.x, values={m: v[0] for m, v in self.values.items()},
                         directions=tuple(d.provenance for d in dirs),
                         meta=land.describe(dirs, partial=True), direction_tensors=tuple(dirs))
        surface: Surface = land.surface(grid, dirs, self.values, self.evaluated, partial=True)
        return surface


def _tile(level: int, rows: np.ndarray, cols: np.ndarray, values: np.ndarray,
          names: Sequence[str], exact: bool = True) -> Tile:
    return Tile(level, rows, cols, {m: values[:, i] for i, m in enumerate(names)}, exact)


def _fixed(run: DaskRun, grid: Grid, names: Sequence[str], size: int, ordered: bool,
           known: _Known) -> Iterator[Tile]:
    """Every tile submitted at once, coarse first; delivered level by level."""
    plan = [(level, r, c) for level, rows, cols in grid.order for r, c in chunks(rows, cols, size)]
    for i, (_, r, c) in enumerate(plan):
        run.submit(i, grid.coeffs(r, c), priority=len(plan) - i)
    order = _Order([level for level, _, _ in plan], ordered)
    delivered = 0
    for i, values in run.completed():
        level, r, c = plan[i]
        tile = _tile(level, r, c, values, names)
        known.add(tile)
        for ready in order.push(i, tile):
            delivered += len(ready)
            yield replace(ready, done=delivered / grid.size)


class _Order:
    """Which completed tiles may go out: all of a level before any of the next; within a
    level as they complete, or (`ordered`) exactly in the local order."""

    def __init__(self, levels: list[int], ordered: bool) -> None:
        self.levels, self.ordered = levels, ordered
        self.waiting: dict[int, Tile] = {}
        self.sent = [False] * len(levels)
        self.first = 0  # the first tile, in the local order, not sent yet

    def push(self, i: int, tile: Tile) -> list[Tile]:
        """Tile `i` completed: the tiles that may go out now, in order."""
        self.waiting[i] = tile
        out = []
        while self.first < len(self.levels):
            if self.ordered:
                due = [self.first] if self.first in self.waiting else []
            else:  # a level's tiles are consecutive in the local order
                level = self.levels[self.first]
                due = sorted(j for j in self.waiting if self.levels[j] == level)
            if not due:
                break
            for j in due:
                out.append(self.waiting.pop(j))
                self.sent[j] = True
            while self.first < len(self.levels) and self.sent[self.first]:
                self.first += 1
        return out


def _adaptive(run: DaskRun, grid: Grid, names: Sequence[str], tol: float, size: int,
              known: _Known) -> Iterator[Tile]:
    """A level at a time: the points a level needs (from the coarser values) are evaluated
    as tiles of `size` in parallel; the level's tiles are delivered when it is complete."""
    index = count()

    def evaluate(coeffs: np.ndarray) -> np.ndarray:
        parts = [coeffs[i : i + size] for i in range(0, len(coeffs), size)]
        ids = [next(index) for _ in parts]
        for k, (i, part) in enumerate(zip(ids, parts, strict=True)):
            run.submit(i, part, priority=len(parts) - k)
        got = dict(run.completed())
        return np.concatenate([got[i] for i in ids]) if ids else np.zeros((0, len(names)))

    done = 0
    for whole in progressive(grid, evaluate, names, adaptive=True, tol=tol, tile_size=grid.size):
        pieces = list(chunks(whole.rows, whole.cols, size)) if whole.exact else [
            (whole.rows, whole.cols)]
        start = 0
        for r, c in pieces:
            part = {m: v[start : start + len(r)] for m, v in whole.values.items()}
            start += len(r)
            done += len(r)
            tile = Tile(whole.level, r, c, part, whole.exact, done / grid.size)
            known.add(tile)
            yield tile


register_executor(DaskExecutor.of)  # `client=` of Landscape, explore and the CLI
