"""Landscapes on Dask: the same bits as here, faults, cancelling, data built on the workers.

One 2-worker ``LocalCluster(processes=True)`` (one thread each) serves the module. Models: the
digits MLP (about 1 ms a point) where only the bits matter, a 64-512-512-10 MLP with hooks
(20-50 ms a point) where a stream must last long enough to kill a worker or cancel it.
"""

from __future__ import annotations

import os
import signal
import time
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import mlp, train
from torch import nn

import ls_widget as lw

distributed = pytest.importorskip("distributed")
from distributed import Client, LocalCluster  # noqa: E402

from ls_widget.distributed import (  # noqa: E402
    DaskExecutor,
    WorkerMismatch,
    WorkersLost,
)

CUDA = pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                     reason="no CUDA device"))


@pytest.fixture(scope="module")
def cluster():
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           dashboard_address=None)
    client = Client(cluster)
    try:
        yield client, cluster
    finally:
        client.close()
        cluster.close()


@pytest.fixture(scope="module")
def small(digits):
    """The digits MLP, its Landscape (with accuracy) and two directions."""
    X, y = digits
    model = train(mlp(0), X, y, steps=60)
    land = lw.Landscape(model, (X, y), metrics={"accuracy": lw.metrics.accuracy})
    return model, land, [lw.directions.random(model, seed=s) for s in (1, 2)]


def wide_with_hooks() -> nn.Module:
    """64-512-512-10 on digits: 20-50 ms a point here. Its hooks break `distributed`'s own
    serializer of modules (see ls_widget/_dask_pack.py)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                          nn.Linear(512, 10))
    model.register_forward_hook(lambda module, inputs, output: None)
    model[0].register_forward_pre_hook(lambda module, inputs: None)
    return model


@pytest.fixture(scope="module")
def wide(digits):
    X, y = digits
    model = wide_with_hooks()
    land = lw.Landscape(model, (X, y))
    return model, land, [lw.directions.random(model, seed=s) for s in (1, 2)]


def same_bits(a: lw.Surface | lw.Curve, b: lw.Surface | lw.Curve) -> None:
    assert a.metrics == b.metrics
    for m in a.metrics:
        assert np.asarray(a[m]).tobytes() == np.asarray(b[m]).tobytes(), m


def workers_idle(client: Client, seconds: float = 10.0) -> bool:
    """No task processing on the scheduler and none executing on any worker, within
    `seconds` (a tile already running finishes its points: a thread is never killed)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        processing = client.processing()
        executing = client.run(lambda dask_worker: dask_worker.state.executing_count)
        if not any(processing.values()) and not any(executing.values()):
            return True
        time.sleep(0.1)
    return False


# ----------------------------------------------------------------------- the same bits
def test_plane_line_and_stream_on_two_workers_equal_the_local_ones(cluster, small):
    client, _ = cluster
    model, land, (d1, d2) = small
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    local = land.plane(d1, d2, n=11, progress=False)
    remote = land.plane(d1, d2, n=11, progress=False, client=client)
    same_bits(local, remote)
    assert np.array_equal(local.evaluated, remote.evaluated)
    assert remote.meta["executor"] == {"kind": "dask", "device": "cpu", "threads": 1}
    assert remote.meta["evaluation"] == local.meta["evaluation"]
    same_bits(land.line(d1, n=15, progress=False),
              land.line(d1, n=15, progress=False, client=client))
    # The tiles themselves: exactly the local stream's sequence with ordered=True; by
    # default the same tiles, levels in order.
    want = list(land.stream(d1, d2, n=11))
    got = list(land.stream(d1, d2, n=11, client=DaskExecutor(client, ordered=True)))
    assert [(t.level, t.rows.tolist(), t.cols.tolist(), t.done) for t in got] == [
        (t.level, t.rows.tolist(), t.cols.tolist(), t.done) for t in want]
    for a, b in zip(want, got, strict=True):
        assert all(a.values[m].tobytes() == b.values[m].tobytes() for m in a.values)
    loose = list(land.stream(d1, d2, n=11, client=client))
    assert [t.level for t in loose] == sorted(t.level for t in loose)
    key = lambda t: (t.level, t.rows.tolist(), t.cols.tolist())  # noqa: E731
    assert sorted(map(key, loose)) == sorted(map(key, want))
    for n, p in model.named_parameters():  # the user's model is untouched
        assert torch.equal(p, before[n])

    def built():  # on each worker: its Landscapes, and what each calibrated itself
        from ls_widget import _dask_worker as w

        return [[ev.chosen for ev in w.evaluators(b.land).values()] for b in w._BUILT.values()]

    for landscapes in client.run(built).values():
        assert landscapes == [[{}]]  # one Landscape per worker; the client's plan, applied


def test_workers_on_their_own_device_calibrate_once_and_agree(cluster, small):
    """device= makes a worker calibrate (the reference), the others apply its plan; on the
    same CPUs, the fixed rules give the client's plan and bits."""
    client, _ = cluster
    _, land, (d1, d2) = small
    local = land.plane(d1, d2, n=9, progress=False)
    remote = land.plane(d1, d2, n=9, progress=False, client=DaskExecutor(client, device="cpu"))
    same_bits(local, remote)
    assert remote.meta["evaluation"] == local.meta["evaluation"]


def test_adaptive_plane_equals_the_local_one(cluster, small):
    client, _ = cluster
    _, land, (d1, d2) = small
    local = land.plane(d1, d2, n=17, adaptive=True, progress=False)
    remote = land.plane(d1, d2, n=17, adaptive=True, progress=False, client=client)
    same_bits(local, remote)
    assert np.array_equal(local.evaluated, remote.evaluated)
    assert not local.evaluated.all()  # some points were interpolated


def test_the_snapshot_travels_not_the_live_model(cluster, digits):
    """A Landscape is of its model at construction: changing the model later changes
    neither the local nor the Dask values."""
    client, _ = cluster
    X, y = digits
    model = mlp(3)
    land = lw.Landscape(model, (X, y))
    d1, d2 = (lw.directions.random(model, seed=s) for s in (4, 5))
    local = land.plane(d1, d2, n=7, progress=False)
    with torch.no_grad():
        model[0].weight.mul_(3.0)
    same_bits(local, land.plane(d1, d2, n=7, progress=False, client=client))


def test_threads_are_an_input_of_the_job(cluster, digits):
    """Workers evaluate with the job's torch thread count (the client's by default): a
    metric that reports it shows it, and the values equal a local run with that count."""
    client, _ = cluster
    X, y = digits
    model = wide_with_hooks()
    land = lw.Landscape(model, (X[:300], y[:300]), metrics={
        "threads": lambda out, target: torch.tensor(float(torch.get_num_threads()))})
    d1, d2 = (lw.directions.random(model, seed=s) for s in (1, 2))
    remote = land.plane(d1, d2, n=5, progress=False, client=DaskExecutor(client, threads=2))
    assert np.all(remote["threads"] == 2.0)
    was = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        local = land.plane(d1, d2, n=5, progress=False)
    finally:
        torch.set_num_threads(was)
    same_bits(local, remote)
    default = land.plane(d1, d2, n=5, progress=False, client=client)
    assert np.all(default["threads"] == float(was))  # the client's count (1 in the tests)


# ----------------------------------------------------------------------------- data
def test_data_built_on_the_workers_from_a_function(cluster, digits):
    client, _ = cluster
    X, y = digits
    model = train(mlp(1), X, y, steps=30)
    land = lw.Landscape(model, (X, y))
    d1, d2 = (lw.directions.random(model, seed=s) for s in (6, 7))

    def build():  # runs on each worker, once: the data never travels
        import sys
        import types

        from sklearn.datasets import load_digits

        calls = sys.modules.setdefault("ls_widget_test_calls", types.ModuleType("calls"))
        calls.n = getattr(calls, "n", 0) + 1
        data = load_digits()
        return (torch.tensor(data.data / 16.0, dtype=torch.float32),
                torch.tensor(data.target, dtype=torch.long))

    ex = DaskExecutor(client, data=build)
    local = land.plane(d1, d2, n=9, progress=False)
    same_bits(local, land.plane(d1, d2, n=9, progress=False, client=ex))
    same_bits(local, land.plane(d1, d2, n=9, progress=False, client=ex))  # reused
    calls = client.run(lambda: getattr(__import__("sys").modules.get("ls_widget_test_calls"),
                                       "n", 0))
    assert 1 <= sum(calls.values()) <= 2 and max(calls.values()) == 1

    def other():  # another subset: the workers' values at θ₀ differ from the client's
        Xo, yo = build()
        return Xo[:500], yo[:500]

    with pytest.raises(WorkerMismatch, match="data= builds the Landscape's data"):
        land.plane(d1, d2, n=5, progress=False, client=DaskExecutor(client, data=other))


# --------------------------------------------------------------------------- faults
def test_a_worker_killed_mid_surface_changes_nothing(cluster, wide):
    client, _ = cluster
    _, land, (d1, d2) = wide
    local = land.plane(d1, d2, n=13, progress=False)
    stream = land.stream(d1, d2, n=13, client=client)
    tiles = [next(stream)]
    busy = [w for w, keys in client.processing().items() if keys]
    victim = busy[0] if busy else next(iter(client.scheduler_info()["workers"]))
    os.kill(client.run(os.getpid, workers=[victim])[victim], signal.SIGKILL)
    tiles += list(stream)
    seen = np.zeros((13, 13), dtype=int)
    values = np.full((13, 13), np.nan)
    for t in tiles:
        np.add.at(seen, (t.rows, t.cols), 1)
        values[t.rows, t.cols] = t.values["loss"]
    assert (seen == 1).all()  # nothing lost, nothing twice
    assert values.tobytes() == np.asarray(local["loss"]).tobytes()
    assert tiles[-1].done == 1.0
    client.wait_for_workers(2, timeout=60)  # the nanny restarts it, for the tests below
    assert victim not in client.scheduler_info()["workers"]  # it did die (a new address)


def test_a_closed_stream_leaves_no_task_running(cluster, wide):
    client, _ = cluster
    _, land, (d1, d2) = wide
    stream = land.stream(d1, d2, n=21, client=client)
    next(stream)
    assert any(client.processing().values())
    stream.close()
    assert workers_idle(client)


def test_a_failing_model_raises_its_error_here(cluster, digits):
    client, _ = cluster
    X, y = digits
    model = mlp(0)
    pid = os.getpid()

    def loss(out, target):  # fine here (the client's binding), fails on the workers
        if os.getpid() != pid:
            raise FloatingPointError("the loss failed on a worker")
        return F.cross_entropy(out, target)

    land = lw.Landscape(model, (X, y), loss)
    d1, d2 = (lw.directions.random(model, seed=s) for s in (1, 2))
    with pytest.raises(FloatingPointError, match="failed on a worker"):
        land.plane(d1, d2, n=5, progress=False, client=DaskExecutor(client, retries=0))
    assert workers_idle(client)


# ------------------------------------------------------------------------- arguments
def test_bad_arguments_name_the_fix(cluster, small):
    client, _ = cluster
    _, land, (d1, d2) = small
    with pytest.raises(TypeError, match=r"distributed\.Client"):
        land.plane(d1, d2, n=5, client="tcp://127.0.0.1:8786")
    with pytest.raises(TypeError, match="data must be a function"):
        DaskExecutor(client, data=(1, 2))
    for bad in ({"timeout": 0}, {"threads": 0}, {"retries": -1}, {"device": "tpu"}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            DaskExecutor(client, **bad)


def test_explore_streams_from_the_cluster(cluster, small):
    pytest.importorskip("anywidget")
    client, _ = cluster
    model, _, _ = small
    X, y = torch.randn(200, 64), torch.randint(0, 10, (200,))
    e = lw.explore(model, (X, y), n=9, span=0.5, client=client)
    try:
        assert e.wait(120)
        local = lw.Landscape(model, (X, y), F.cross_entropy,
                             {"accuracy": lw.metrics.accuracy})
        x, y_ = (e.bank[e.axes[a].direction.value] for a in ("x", "y"))
        same_bits(e.surface, local.plane(x, y_, span=0.5, n=9, progress=False))
    finally:
        e.close()
    assert workers_idle(client)


# ----------------------------------------------------------------- GPU and precision
@pytest.mark.parametrize("device", ["cpu", CUDA])
def test_float32_mode_is_set_while_evaluating_and_restored(device, digits):
    X, y = digits
    model = mlp(0).to(device)
    seen = []

    def loss(out, target):
        seen.append((torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32))
        return F.cross_entropy(out, target)

    before = (torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32)
    for tf32, want in ((False, ("highest", False)), (True, ("high", True))):
        seen.clear()
        land = lw.Landscape(model, (X.to(device), y.to(device)), loss, tf32=tf32)
        land.plane(*(lw.directions.random(model, seed=s) for s in (1, 2)), n=3,
                   progress=False)
        assert seen and set(seen[-5:]) == {want}
        assert (torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32) == before
    with pytest.raises(TypeError, match="tf32"):
        lw.Landscape(model, (X.to(device), y.to(device)), tf32="no")


@pytest.mark.parametrize("device", ["cpu", CUDA])
def test_out_of_memory_halves_the_vmap_chunk_and_keeps_every_point(device, digits,
                                                                   monkeypatch):
    """A simulated CUDA OOM in chunks over 8 points: the same points run again in chunks of
    8, each once; the values are those of a run with chunks of 8 from the start (here also
    those of chunks of 16: measured on this CPU, chunks of 4 to 32 round alike)."""
    from ls_widget.engine.evaluate import run

    X, y = digits
    model = mlp(0).to(device)
    land = lw.Landscape(model, (X[:256].to(device), y[:256].to(device)), strategy="vmap")
    d1, d2 = (lw.directions.random(model, seed=s) for s in (1, 2))
    bound = land._bind([d1, d2])
    points = np.random.default_rng(0).uniform(-1, 1, (37, 2))
    bound.binding.vmap_chunk = 8
    want8 = bound.evaluate(points)
    bound.binding.vmap_chunk = 16
    want16 = bound.evaluate(points)
    calls = []
    real_vmap = run.vmap

    def vmap(fn):
        inner = real_vmap(fn)

        def call(fp, fb):
            calls.append(fp[0].shape[0])
            if fp[0].shape[0] > 8:
                raise torch.cuda.OutOfMemoryError("simulated: CUDA out of memory")
            return inner(fp, fb)
        return call

    monkeypatch.setattr(run, "vmap", vmap)
    with pytest.warns(RuntimeWarning, match="retrying with 8"):
        got = bound.evaluate(points)
    assert bound.binding.vmap_chunk == 8
    assert calls[0] == 16 and set(calls[1:]) == {8}
    assert got.tobytes() == want8.tobytes()
    if device == "cpu":
        assert got.tobytes() == want16.tobytes()


@pytest.mark.parametrize("device", [CUDA])
def test_gpu_workers_equal_the_local_gpu_plane(device, cluster, digits):
    client, _ = cluster
    X, y = digits
    model = train(mlp(0), X, y, steps=30).to(device)
    land = lw.Landscape(model, (X.to(device), y.to(device)))
    d1, d2 = (lw.directions.random(model, seed=s) for s in (1, 2))
    local = land.plane(d1, d2, n=9, progress=False)
    same_bits(local, land.plane(d1, d2, n=9, progress=False, client=client))
    # A CPU client's model on the workers' GPUs: calibrated on a worker, checked among them.
    cpu_model = train(mlp(0), X, y, steps=30)
    cpu_land = lw.Landscape(cpu_model, (X, y))
    c1, c2 = (lw.directions.random(cpu_model, seed=s) for s in (1, 2))
    on_gpu = cpu_land.plane(c1, c2, n=9, progress=False,
                            client=DaskExecutor(client, device="cuda"))
    assert on_gpu.meta["device"] == "cuda"
    np.testing.assert_allclose(on_gpu["loss"], cpu_land.plane(c1, c2, n=9, progress=False)[
        "loss"], rtol=1e-4)


@pytest.mark.parametrize("device", [CUDA])
def test_vmap_chunk_fits_the_free_gpu_memory(device, digits):
    from ls_widget.engine.evaluate.plan import vmap_chunk_size

    X, y = digits
    land = lw.Landscape(mlp(0).to(device), (X.to(device), y.to(device)), batch_size=256)
    batches = land.evaluator.batches
    act = 256 * 64 * 4 * 8  # the bytes per point the rule counts: 8 × the largest input
    assert vmap_chunk_size(batches, 3 * act) == 3  # the budget decides where it fits
    free, _ = torch.cuda.mem_get_info()
    huge = vmap_chunk_size(batches, 1 << 50)  # else half the free memory does
    assert huge >= 1 and (huge == 128 or huge * act <= free)


# --------------------------------------------------------------------- all workers gone
def test_all_workers_gone_raises_with_the_partial_surface(cluster, wide):
    """Last in the module: it scales the cluster to 0 workers (and back)."""
    client, cluster_ = cluster
    _, land, (d1, d2) = wide
    stream = land.stream(d1, d2, n=21, client=DaskExecutor(client, timeout=2.0))
    first = next(stream)
    try:
        cluster_.scale(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(WorkersLost, match=r"timeout=2\.0") as info:
                for _ in stream:
                    pass
        partial = info.value.partial
        assert isinstance(partial, lw.Surface) and info.value.surface is partial
        assert partial.evaluated[first.rows, first.cols].all()
        assert 0 < partial.evaluated.sum() < 21 * 21
        assert np.isnan(np.asarray(partial["loss"])[~partial.evaluated]).all()
    finally:
        cluster_.scale(2)  # for any test after this one (a scatter waits for the workers)
