"""A local Dask cluster with one worker per GPU."""

from __future__ import annotations

import importlib
import os
from typing import Any


def _visible_gpus() -> list[str]:
    """The GPUs this process may use, as CUDA_VISIBLE_DEVICES names them (or their indices)."""
    import torch

    count = torch.cuda.device_count()
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [d.strip() for d in listed.split(",") if d.strip()][:count]
    return [str(i) for i in range(count)]


def cuda_cluster(n_gpus: int | None = None, **kwargs: Any) -> Any:
    """A local Dask cluster with one single-threaded worker per GPU, each pinned to its GPU.

    ``dask_cuda.LocalCUDACluster`` where dask-cuda is installed; else plain workers (one
    ``Nanny`` each) started with ``CUDA_VISIBLE_DEVICES`` set to their GPU, so that each
    worker's ``cuda`` is its own device. Pass it to ``distributed.Client`` and use the client
    with ``DaskExecutor(client, device="cuda")`` (or a CUDA model and ``client=client``).

    Args:
        n_gpus: how many GPUs (default: all visible ones).
        **kwargs: passed to the cluster (e.g. ``dashboard_address``).

    Raises:
        RuntimeError: no GPU is visible, or fewer than `n_gpus`.
    """
    gpus = _visible_gpus()
    n = len(gpus) if n_gpus is None else n_gpus
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= len(gpus):
        raise RuntimeError(
            f"cuda_cluster(n_gpus={n_gpus!r}): this machine has {len(gpus)} visible GPU(s); "
            "ask for 1 to that many" if gpus else
            "cuda_cluster: no CUDA device is visible (torch.cuda.device_count() is 0); use "
            "distributed.LocalCluster for CPU workers"
        )
    try:
        dask_cuda = importlib.import_module("dask_cuda")
    except ImportError:
        pass
    else:
        return dask_cuda.LocalCUDACluster(CUDA_VISIBLE_DEVICES=",".join(gpus[:n]),
                                          threads_per_worker=1, **kwargs)
    from distributed import Nanny, Scheduler, SpecCluster

    scheduler = {"cls": Scheduler,
                 "options": {"dashboard_address": kwargs.pop("dashboard_address", ":0")}}
    workers = {
        f"gpu-{gpu}": {"cls": Nanny, "options": {
            "nthreads": 1, "env": {"CUDA_VISIBLE_DEVICES": gpu}}}
        for gpu in gpus[:n]
    }
    return SpecCluster(workers=workers, scheduler=scheduler, **kwargs)
