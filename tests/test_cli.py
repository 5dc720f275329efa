"""The command line: records equal to the API's, resume after a kill giving the same file
with no finished point computed again, and one clear line for every bad argument."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import ls_widget as lw
from ls_widget._cli_load import resolve
from ls_widget.cli import main

TINY = Path(__file__).parent / "cli_fixtures" / "tiny.py"
MODEL, DATA = f"{TINY}:build", f"{TINY}:data"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def tiny():
    """The fixture module as the command line loads it (the same module object)."""
    module = sys.modules[resolve(MODEL, "--model").__module__]
    module.STOP_AFTER, module.STOP_WITH = None, "interrupt"
    yield module
    module.STOP_AFTER, module.STOP_WITH = None, "interrupt"


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def cli(capsys, *args: str) -> tuple[int, str, str]:
    """Run the command line in this process: (status, stdout, stderr)."""
    status = main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


def landscape(tiny, **kw):
    model = tiny.build()
    return model, lw.Landscape(model, tiny.data(), **kw)


def plane_args(out: str = "p.npz", *extra: str) -> list[str]:
    return ["plane", "--model", MODEL, "--data", DATA, "--n", "9", "--out", out,
            "--no-progress", *extra]


# ----------------------------------------------------------------------- same as the API
def test_plane_is_the_apis_plane(here, tiny, capsys):
    status, out, _ = cli(capsys, *plane_args("p", "--metric", "accuracy", "--span", "0.5",
                                            "--seed", "3"))
    assert status == 0 and "wrote p.npz" in out
    surf = lw.load(here / "p.npz")
    model, land = landscape(tiny, metrics={"accuracy": lw.metrics.accuracy})
    d1, d2 = (lw.directions.random(model, seed=s) for s in (3, 4))
    ref = land.plane(d1, d2, span=0.5, n=9, progress=False)
    for m in ("loss", "accuracy"):
        assert np.array_equal(surf[m], ref[m])
    assert [d["seed"] for d in surf.directions] == [3, 4]
    assert surf.meta["job"]["samples"] == "600"
    assert not (here / "p.npz.partial.npz").exists()


def test_line_with_a_negative_range_and_weights(here, tiny, capsys):
    trained = tiny.build()
    with torch.no_grad():
        trained.fc3.weight.mul_(2.0)
    torch.save({"state_dict": trained.state_dict(), "epoch": 3}, here / "ckpt.pt")
    status, _, _ = cli(capsys, "line", "--model", MODEL, "--weights", "ckpt.pt", "--data", DATA,
                       "--n", "7", "--span", "-0.5,1.5", "--norm", "layer", "--out", "c.npz",
                       "--no-progress")
    assert status == 0
    curve = lw.load(here / "c.npz")
    land = lw.Landscape(trained, tiny.data())
    d = lw.directions.random(trained, seed=0, norm="layer")
    assert np.array_equal(curve["loss"], land.line(d, span=(-0.5, 1.5), n=7,
                                                   progress=False)["loss"])


def test_a_module_of_the_current_folder(here, capsys, monkeypatch):
    """``module:function`` imports from the current folder, as ``python -m`` does (a console
    script's sys.path lacks it)."""
    (here / "mymodels.py").write_text(TINY.read_text())
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(here))])
    monkeypatch.setitem(sys.modules, "mymodels", None)  # absent again after the test
    monkeypatch.delitem(sys.modules, "mymodels")
    status, out, _ = cli(capsys, "line", "--model", "mymodels:build", "--data", "mymodels:data",
                         "--n", "5", "--out", "c.npz", "--no-progress")
    assert status == 0 and "wrote c.npz (line, 5 points" in out


def test_hessian_to_json_and_npz(here, tiny, capsys):
    status, _, _ = cli(capsys, "hessian", "--model", MODEL, "--data", DATA, "--k", "2",
                       "--trace", "hutchinson", "--samples", "4", "--out", "h.json",
                       "--no-progress")
    assert status == 0
    got = json.loads((here / "h.json").read_text())
    _, land = landscape(tiny)
    eig = land.hessian.eigen(k=2, progress=False)
    assert got["eigen"]["values"] == eig.values.tolist()
    assert got["trace"]["mean"] == land.hessian.trace(samples=4, progress=False).mean
    status, _, _ = cli(capsys, "hessian", "--model", MODEL, "--data", DATA, "--k", "0",
                       "--density", "--iterations", "5", "--vectors", "1", "--out", "h.npz",
                       "--no-progress")
    assert status == 0
    with np.load(here / "h.npz") as f:
        assert f["density_grid"].shape == f["density_density"].shape == (1000,)
        assert "eigen" not in json.loads(str(f["header"]))


def test_pca_plane_with_the_path(here, tiny, capsys):
    model, (X, y) = tiny.build(), tiny.data()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    files = []
    for step in range(5):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(X), y).backward()
        opt.step()
        files.append(str(here / f"s{step}.pt"))
        torch.save({"model": model.state_dict(), "step": step}, files[-1])
    status, _, _ = cli(capsys, "pca", "--model", MODEL, "--data", DATA, "--checkpoints",
                       *files, "--n", "7", "--out", "pca.npz", "--no-progress")
    assert status == 0
    surf = lw.load(here / "pca.npz")
    traj = lw.Trajectory.from_checkpoints(files, tiny.build())
    d1, d2 = lw.directions.pca(traj)
    path = traj.project(d1, d2)
    assert surf.meta["path"]["alpha"] == path.alpha.tolist()
    assert [d["kind"] for d in surf.directions] == ["pca", "pca"]
    reach = 1.25 * max(np.abs(path.alpha).max(), np.abs(path.beta).max())
    ref = lw.Landscape(traj.model_at(-1), (X, y)).plane(d1, d2, span=reach, n=7,
                                                          progress=False)
    assert np.array_equal(surf["loss"], ref["loss"])


# ----------------------------------------------------------------------- resume
@pytest.mark.parametrize("samples", [600, 200])  # points one at a time; vmapped in chunks
def test_resume_stream_takes_known_points_and_evaluates_the_rest(tiny, samples):
    from ls_widget.engine.progressive import collect
    from ls_widget.engine.resume import resume

    model = tiny.build()
    X, y = tiny.data()
    land = lw.Landscape(model, (X[:samples], y[:samples]))
    dirs = [lw.directions.random(model, seed=s) for s in (0, 1)]
    grid = lw.Grid.plane(1.0, 13)
    rng = np.random.default_rng(0)
    for adaptive in (False, True):
        ref = land.plane(*dirs, n=13, adaptive=adaptive, progress=False)
        known = (rng.random(grid.shape) < 0.5) & ref.evaluated  # not aligned with tiles
        kept = {m: np.where(known, ref[m], -1.0) for m in land.metric_names}
        tiles = resume(land, dirs, grid, kept, known, adaptive=adaptive)
        values, evaluated = collect(tiles, land.metric_names, grid.shape)
        assert np.array_equal(values["loss"], ref["loss"])
        assert np.array_equal(evaluated, ref.evaluated)
    forwards = tiny.CALLS
    everything = resume(land, dirs, grid, {"loss": ref["loss"]}, ref.evaluated, adaptive=True)
    assert np.array_equal(collect(everything, land.metric_names, grid.shape)[0]["loss"],
                          ref["loss"])
    assert forwards == tiny.CALLS  # nothing was evaluated


@pytest.mark.parametrize(("adaptive", "suffix"), [(False, ".h5"), (True, ".npz")])
def test_interrupted_then_resumed_is_the_uninterrupted_file(here, tiny, capsys, monkeypatch,
                                                            adaptive, suffix):
    if suffix == ".h5":
        pytest.importorskip("h5py")
    ref_out, out = f"ref{suffix}", f"p{suffix}"
    extra = ["--n", "17", "--checkpoint-every", "0", *(["--adaptive"] if adaptive else [])]
    monkeypatch.setenv("LSW_CLI_FORWARD_LOG", str(here / "ref.log"))
    assert cli(capsys, *plane_args(ref_out, *extra))[0] == 0
    monkeypatch.setenv("LSW_CLI_FORWARD_LOG", str(here / "stopped.log"))
    tiny.STOP_AFTER = tiny.CALLS + 60  # Ctrl-C inside the third tile
    status, _, err = cli(capsys, *plane_args(out, *extra))
    assert status == 130
    assert "continue with the same command and --resume" in err.splitlines()[-1]
    with np.load(here / f"{out}.partial.npz") as f:
        known = int(f["known"].sum())
    assert 0 < known < 17 * 17 and not (here / out).exists()
    tiny.STOP_AFTER = None
    # Without --resume the stopped job is not overwritten by accident.
    status, _, err = cli(capsys, *plane_args(out, *extra))
    assert status == 2 and "pass --resume" in err
    monkeypatch.setenv("LSW_CLI_FORWARD_LOG", str(here / "resumed.log"))
    status, _, err = cli(capsys, *plane_args(out, *extra, "--resume"))
    assert status == 0 and f"{known} of 289 points done" in err
    ref = lw.load(here / ref_out)
    got = lw.load(here / out)
    assert isinstance(got, lw.Surface) and isinstance(ref, lw.Surface)
    assert np.array_equal(got["loss"], ref["loss"], equal_nan=True)
    assert np.array_equal(got.evaluated, ref.evaluated)
    assert (here / ref_out).read_bytes() == (here / out).read_bytes()
    _assert_nothing_recomputed(tiny, here / "ref.log", here / "stopped.log",
                               here / "resumed.log", known, int(ref.evaluated.sum()))
    # Resuming a finished job does nothing.
    status, _, err = cli(capsys, *plane_args(out, *extra, "--resume"))
    assert status == 0 and "already complete" in err


def _full_batch_points(log: Path) -> list[str]:
    """The points evaluated on all 600 samples, in order (one line per forward)."""
    lines = log.read_text().splitlines() if log.exists() else []
    return [line.split(None, 1)[1] for line in lines if line.startswith("600 ")]


def _assert_nothing_recomputed(tiny, ref: Path, stopped: Path, resumed: Path, known: int,
                               evaluations: int) -> None:
    """The checkpoint's points are the stopped job's first `known` evaluations; the resumed
    job evaluates each other point once, and none of those, except θ₀ (which the engine
    evaluates when it binds the directions, before any tile)."""
    model = tiny.build()
    theta0 = " ".join(repr(float(w.detach().double().sum()))
                      for w in (model.fc2.weight, model.fc3.weight))
    everything = _full_batch_points(ref)
    assert len(everything) == len(set(everything)) == evaluations
    finished = set(_full_batch_points(stopped)[:known])
    again = _full_batch_points(resumed)
    assert len(again) == len(set(again))
    assert set(again) & finished <= {theta0}
    assert set(again) | finished == set(everything)


def test_resume_refuses_another_jobs_checkpoint(here, tiny, capsys):
    handler = signal.getsignal(signal.SIGTERM)
    tiny.STOP_AFTER, tiny.STOP_WITH = tiny.CALLS + 30, "sigterm"  # a scheduler ends the job
    status, _, err = cli(capsys, *plane_args("p.npz", "--checkpoint-every", "0"))
    assert status == 143 and "points kept in p.npz.partial.npz" in err
    assert signal.getsignal(signal.SIGTERM) == handler  # put back
    tiny.STOP_AFTER = None
    status, _, err = cli(capsys, *plane_args("p.npz", "--resume", "--seed", "1"))
    last = err.strip().splitlines()[-1]
    assert status == 2 and "directions was 'random #0" in last and "--force" in last
    assert "Traceback" not in err
    status, _, err = cli(capsys, *plane_args("p.npz", "--resume", "--span", "2"))
    assert status == 2 and "grid was" in err
    status, _, err = cli(capsys, *plane_args("p.npz", "--resume", "--span", "2", "--force"))
    assert status == 0 and "starting over (--force)" in err
    assert lw.load(here / "p.npz").x[-1] == 2.0


def test_killed_job_resumed_gives_the_same_file(tmp_path, tiny):
    """SIGKILL after some tiles are checkpointed; --resume computes only the rest, and the file
    is byte for byte that of a job never stopped (three processes, one thread each)."""
    cmd = [sys.executable, "-m", "ls_widget", "plane", "--model", MODEL, "--data", DATA,
           "--n", "31", "--checkpoint-every", "0", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}

    def start(out: str, log: str, *extra: str, slow: str = "0") -> subprocess.Popen:
        return subprocess.Popen([*cmd, "--out", out, *extra], cwd=tmp_path, text=True,
                                stderr=subprocess.PIPE,
                                env={**env, "LSW_CLI_FORWARD_LOG": str(tmp_path / log),
                                     "LSW_CLI_SLOW": slow})

    reference = start("ref.npz", "ref.log")
    killed = start("run.npz", "killed.log", slow="0.003")  # ≥ 2.6 s of tiles after the first
    partial = tmp_path / "run.npz.partial.npz"
    deadline = time.monotonic() + 120
    while not partial.exists() and killed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    killed.send_signal(signal.SIGKILL)
    _, err = killed.communicate()
    assert killed.returncode == -signal.SIGKILL, err
    with np.load(partial) as f:
        known = int(f["known"].sum())
    assert 0 < known < 31 * 31 and not (tmp_path / "run.npz").exists()

    resumed = start("run.npz", "resumed.log", "--resume")
    for job in (reference, resumed):
        _, err = job.communicate()
        assert job.returncode == 0, err
    ref, got = np.load(tmp_path / "ref.npz"), np.load(tmp_path / "run.npz")
    assert sorted(ref.files) == sorted(got.files)
    for name in ref.files:
        assert np.array_equal(ref[name], got[name]), name
    assert (tmp_path / "ref.npz").read_bytes() == (tmp_path / "run.npz").read_bytes()
    assert not partial.exists()
    _assert_nothing_recomputed(tiny, tmp_path / "ref.log", tmp_path / "killed.log",
                               tmp_path / "resumed.log", known, 31 * 31)


# ----------------------------------------------------------------------- bad arguments
def _refused(capsys, args: list[str], status: int, *words: str) -> str:
    got, _, err = cli(capsys, *args)
    last = err.strip().splitlines()[-1]
    assert got == status, err
    assert "Traceback" not in err
    for w in words:
        assert w in last, last
    return last


@pytest.mark.parametrize(("change", "status", "words"), [
    ({"--model": "no_such_module_xyz:build"}, 2, ["'no_such_module_xyz'", "module.py:function"]),
    ({"--model": f"{TINY}:biuld"}, 2, ["'biuld'", "did you mean 'build'"]),
    ({"--model": f"{TINY}:NUMBER"}, 2, ["NUMBER is a int, not a function"]),
    ({"--model": str(TINY)}, 2, ["expected module:function"]),
    ({"--model": "missing/models.py:build"}, 2, ["no file 'missing/models.py'"]),
    ({"--model": f"{TINY}:not_a_model"}, 1, ["returned a dict, not a torch.nn.Module"]),
    ({"--data": f"{TINY}:failing_data"}, 1, ["failing_data() raised FileNotFoundError",
                                             "/datasets/train.npy"]),
    ({"--data": f"{TINY}:not_a_model"}, 1, ["cannot be evaluated on --data", "(a dict)"]),
    ({"--loss": f"{TINY}:data"}, 1, ["with --loss", "cannot be called as fn(output, target)"]),
    ({"--n": "1001"}, 2, ["1,002,001 points", "--max-points 1002001"]),
    ({"--weights": "nope.pt"}, 2, ["--weights 'nope.pt': no such file"]),
    ({"--device": "gpu"}, 2, ["--device 'gpu'", "cpu, cuda"]),
    ({"--device": "cuda:99"}, 2, ["--device 'cuda:99'"]),
    ({"--loss": "mse"}, 2, ["--loss 'mse'", "mse_loss"]),
    ({"--metric": "f1"}, 2, ["--metric 'f1'"]),
    ({"--out": "p.xyz"}, 2, ["--out 'p.xyz'", "'.xyz'"]),
    ({"--out": "no/such/dir/p.npz"}, 2, ["no folder"]),
    ({"--params": "nothing.*"}, 2, ["nothing.*"]),
])
def test_bad_arguments_end_with_one_clear_line(here, capsys, change, status, words):
    args = plane_args()
    for k, v in change.items():
        if k in args:
            args[args.index(k) + 1] = v
        else:
            args += [k, v]
    _refused(capsys, args, status, *words)


def test_weights_that_do_not_fit_name_the_key(here, tiny, capsys):
    wide = resolve(f"{TINY}:build_wide", "--model")()
    torch.save(wide.state_dict(), here / "wide.pt")
    _refused(capsys, plane_args("p.npz", "--weights", "wide.pt"), 1,
             "'fc1.weight' has shape (32, 8), the model's is (16, 8)")
    state = tiny.build().state_dict()
    state["extra.weight"] = torch.zeros(1)
    del state["fc3.bias"]
    torch.save(state, here / "keys.pt")
    _refused(capsys, plane_args("p.npz", "--weights", "keys.pt"), 1,
             "lacks the key 'fc3.bias'")
    torch.save({f"module.{k}": v for k, v in tiny.build().state_dict().items()},
               here / "ddp.pt")
    _refused(capsys, plane_args("p.npz", "--weights", "ddp.pt"), 1,
             "lacks the key 'fc1.weight'", "model.module.state_dict()")
    torch.save([1, 2], here / "list.pt")
    _refused(capsys, plane_args("p.npz", "--weights", "list.pt"), 1, "not a state dict")


@pytest.mark.parametrize(("args", "words"), [
    (["--n", "1"], ["argument --n", "'1'", "at least 2"]),
    (["--n", "x"], ["argument --n", "'x'"]),
    (["--span", "0"], ["argument --span", "'0'", "positive"]),
    (["--span", "1,-1"], ["argument --span", "'1,-1'", "lo < hi"]),
    (["--xrange", "-1"], ["argument --xrange", "'-1'"]),
    (["--memory", "lots"], ["argument --memory", "'lots'"]),
    (["--norm", "l2"], ["argument --norm", "'l2'", "filter, layer, model or none"]),
])
def test_bad_values_are_usage_errors(here, capsys, args, words):
    with pytest.raises(SystemExit) as exc:
        main([*plane_args(), *args])
    assert exc.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    for w in words:
        assert w in last, last


def test_an_existing_output_is_kept_unless_forced(here, capsys):
    (here / "p.npz").write_bytes(b"not mine to overwrite")
    _refused(capsys, plane_args(), 2, "--out 'p.npz' exists", "--force")
    assert (here / "p.npz").read_bytes() == b"not mine to overwrite"
    _refused(capsys, ["hessian", "--model", MODEL, "--data", DATA, "--out", "p.npz"], 2,
             "exists")
    assert cli(capsys, *plane_args("p.npz", "--force", "--n", "5"))[0] == 0
    assert lw.load(here / "p.npz").shape == (5, 5)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_a_gpu_is_a_usage_error(here, capsys):
    _refused(capsys, [*plane_args(), "--device", "cuda"], 2, "no CUDA device",
             "--device cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_plane_resumes_bit_identically(here, tiny, capsys):
    args = plane_args("ref.npz", "--device", "cuda", "--n", "17", "--checkpoint-every", "0")
    assert cli(capsys, *args)[0] == 0
    tiny.STOP_AFTER = tiny.CALLS + 60
    args[args.index("ref.npz")] = "p.npz"
    assert cli(capsys, *args)[0] == 130
    tiny.STOP_AFTER = None
    assert cli(capsys, *args, "--resume")[0] == 0
    ref, got = lw.load(here / "ref.npz"), lw.load(here / "p.npz")
    assert np.array_equal(ref["loss"], got["loss"]) and got.meta["device"].startswith("cuda")
