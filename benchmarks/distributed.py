"""Scaling on Dask: one plane on LocalClusters of 1, 2 and 4 workers, and its efficiency.

Run: ``.venv/bin/python benchmarks/distributed.py [--n 15] [--workers 1 2 4] [--repeats 2]``.

The model is a 64-1024-1024-10 MLP on all 1,797 digits: about 4 GFLOP a point (50-100 ms on
one core). Every worker has one Dask thread and one torch thread (``DaskExecutor(client,
threads=1)``); the local reference runs in this process under ``torch.set_num_threads(1)``,
so all runs give the same bits (checked). Both this process and the workers call
`lw.keep_heap()` (Dask's nannies start workers with ``MALLOC_TRIM_THRESHOLD_=65536``, which
makes every large buffer a fresh mmap; measured here, a worker's plane took 1.15× as long).

Scaling needs cores that are really free: the script first measures what the machine itself
gives, k processes of plain arithmetic side by side (the same efficiency formula), so that a
shared or throttled VM is seen for what it is. "vs machine" divides the Dask efficiency by
the machine's own at the same k.

For each cluster it prints the first call (shipping the landscape, building it on each worker,
the first binding) and the median of `--repeats` later calls (a new stream each: its
directions shipped and bound again, one check point per worker), points/s, and the scaling
efficiency T(1 worker) / (n · T(n workers)) of the later calls. A cluster with more workers
than the machine has cores cannot scale: it is printed anyway, marked.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

# This file's name shadows the `distributed` package from its own folder: import the package
# from site-packages, and common.py by its path.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
_spec = importlib.util.spec_from_file_location("common", HERE / "common.py")
assert _spec is not None and _spec.loader is not None
common = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(common)

import ls_widget as lw  # noqa: E402
from ls_widget.distributed import DaskExecutor  # noqa: E402


def model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(),
                         nn.Linear(1024, 10)).eval()


def _spin(_: int) -> float:
    t0 = time.perf_counter()
    x = 0
    for i in range(10_000_000):
        x += i
    return time.perf_counter() - t0


def machine_efficiency(k: int) -> float:
    """T(1 process) / T(k processes side by side) of plain arithmetic: the share of k cores
    this machine gives k processes now."""
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(k) as pool:
        pool.map(_spin, range(k))  # start-up
        one = pool.apply(_spin, (0,))
        t0 = time.perf_counter()
        pool.map(_spin, range(k), chunksize=1)
        return one / (time.perf_counter() - t0)


def timed_plane(land: lw.Landscape, d1: lw.Direction, d2: lw.Direction, n: int,
                client: object) -> tuple[float, lw.Surface]:
    t0 = time.perf_counter()
    surface = land.plane(d1, d2, n=n, progress=False, client=client)
    return time.perf_counter() - t0, surface


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=15, help="points per axis of the plane")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    from distributed import Client, LocalCluster

    torch.set_num_threads(1)
    lw.keep_heap()
    machine = {w: machine_efficiency(w) for w in args.workers}
    X, y = common.digits()
    net = model()
    land = lw.Landscape(net, (X, y))
    d1, d2 = (lw.directions.random(net, seed=s) for s in (1, 2))
    points = args.n * args.n
    timed_plane(land, d1, d2, 5, False)  # calibration, imports: not part of the local time
    local_s, local = timed_plane(land, d1, d2, args.n, False)
    cores = os.cpu_count() or 1
    print(f"{args.n}×{args.n} plane ({points} points), 64-1024-1024-10 MLP on 1,797 digits, "
          f"{cores} cores, one torch thread per worker")
    print(f"local (this process, 1 thread): {local_s:.1f} s, {1e3 * local_s / points:.0f} ms "
          f"a point, {points / local_s:.2f} points/s")
    print("machine: k processes of arithmetic side by side get " + ", ".join(
        f"{100 * e:.0f} % (k={k})" for k, e in machine.items()) + " of k cores")
    print(f"{'workers':>7} {'first call':>10} {'later':>8} {'points/s':>9} {'efficiency':>10} "
          f"{'vs machine':>10}")
    base: float | None = None
    for w in args.workers:
        with LocalCluster(n_workers=w, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            client.wait_for_workers(w)
            client.run(lw.keep_heap)
            ex = DaskExecutor(client, threads=1)
            first, surface = timed_plane(land, d1, d2, args.n, ex)
            later = []
            for _ in range(args.repeats):
                seconds, again = timed_plane(land, d1, d2, args.n, ex)
                later.append(seconds)
                assert np.array_equal(again["loss"], local["loss"]), "not the local bits"
            assert np.array_equal(surface["loss"], local["loss"]), "not the local bits"
        t = statistics.median(later)
        base = t if w == 1 else base
        eff = base / (w * t) if base is not None else float("nan")
        note = f"  (more workers than {cores} cores: cannot scale)" if w > cores else ""
        print(f"{w:>7} {first:>9.1f}s {t:>7.1f}s {points / t:>9.2f} {100 * eff:>9.0f}% "
              f"{100 * eff / machine[w]:>9.0f}%{note}")


if __name__ == "__main__":
    main()
