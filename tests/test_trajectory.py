"""Training runs: Recorder (memory, folder, resume), Trajectory.from_checkpoints, PCA
directions against scikit-learn, projections onto planes, paths drawn on surfaces."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import lw, mlp_bn
from matplotlib.lines import Line2D
from sklearn.decomposition import PCA
from torch import nn

import ls_widget.trajectory._store as store


def small_net(seed: int = 0, hidden: int = 8) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
                         nn.Linear(hidden, 3))


def data(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(48, 6, generator=g), torch.randint(0, 3, (48,), generator=g)


def train(model: nn.Module, rec: lw.Recorder | None, steps: int, lr: float = 0.2) -> list:
    """SGD on fixed data; `rec.step` after the logs of each step; returns the states seen."""
    X, y = data()
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    seen = []
    for s in range(steps):
        model.train()
        loss = F.cross_entropy(model(X), y)
        if rec is not None:
            rec.step(epoch=s // 4, train_loss=loss.detach())
        seen.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        opt.zero_grad()
        loss.backward()
        opt.step()
    return seen


@pytest.fixture(scope="module")
def run():
    """A 14-snapshot trajectory of a small BN net (in memory) and the trained model."""
    model = small_net()
    rec = lw.Recorder(model)
    train(model, rec, 14)
    return rec.trajectory, model


def flat(state, names) -> np.ndarray:
    return torch.cat([state[n].reshape(-1).double() for n in names]).numpy()


def direction_flat(d, names) -> np.ndarray:
    return torch.cat([d[n].reshape(-1).double() for n in names]).numpy()


# ------------------------------------------------------------------------------ recorder
def test_recorder_memory_mode_snapshots_every_kth_call_and_never_aliases():
    model = small_net()
    rec = lw.Recorder(model, every=3)
    seen = train(model, rec, 10)
    traj = rec.trajectory
    assert len(traj) == len(rec) == 4  # calls 0, 3, 6, 9
    assert traj.steps == [0, 3, 6, 9]
    assert traj.logs[1]["epoch"] == 0 and set(traj.logs[1]) == {"epoch", "train_loss"}
    assert isinstance(traj.logs[1]["train_loss"], float)  # read out of the 0-d tensor
    assert traj.names == tuple(n for n, _ in model.named_parameters())
    assert traj.buffer_names == ("1.running_mean", "1.running_var")
    for i, call in enumerate([0, 3, 6, 9]):
        state = traj.state(i)
        assert set(state) == set(traj.names) | set(traj.buffer_names)
        for k, v in state.items():
            assert v.dtype == torch.float32 and v.device.type == "cpu"
            assert torch.equal(v, seen[call][k]), (i, k)
    # The stored tensors are copies: training on changed the model, not the snapshots.
    assert not torch.equal(traj.state(0)["0.weight"], model[0].weight.detach())
    # state() hands out copies: writing to them leaves the trajectory as it was.
    s0 = traj.state(0)
    s0["0.weight"].add_(1.0)
    assert torch.equal(traj.state(0)["0.weight"], seen[0]["0.weight"])
    assert rec.step() is None and rec.step() is None and rec.step() == 4  # calls 10, 11, 12
    assert len(traj) == 4 and len(rec.trajectory) == 5  # a trajectory is frozen
    assert rec.trajectory.steps[-1] == 12


def test_recorder_reads_the_model_without_changing_it():
    model = small_net()
    train(model, None, 3)
    before = copy.deepcopy(model.state_dict())
    mode = model.training
    rec = lw.Recorder(model)
    rec.step(step=7, loss=np.float32(0.5), note="warmup", flag=True)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert model.training == mode
    assert rec.trajectory.steps == [7]
    assert rec.trajectory.logs == [{"loss": 0.5, "note": "warmup", "flag": True}]


def test_recording_and_pca_on_the_models_device(device):
    model = small_net().to(device)
    rec = lw.Recorder(model)
    X, y = data()
    opt = torch.optim.SGD(model.parameters(), lr=0.2)
    for _ in range(5):
        loss = F.cross_entropy(model(X.to(device)), y.to(device))
        rec.step(train_loss=loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
    traj = rec.trajectory
    assert traj.state(0)["0.weight"].device.type == "cpu"
    d1, d2 = lw.directions.pca(traj)
    assert d1["0.weight"].device == model[0].weight.device
    assert traj.model_at(2)[0].weight.device == model[0].weight.device
    path = traj.project(d1, d2)
    assert (path.alpha[-1], path.beta[-1]) == (0.0, 0.0)
    cpu = lw.Trajectory.from_checkpoints([traj.state(i) for i in range(5)], small_net())
    assert cpu.fingerprint == traj.fingerprint
    np.testing.assert_allclose(lw.directions.pca(cpu)[0].provenance["coordinates"],
                               d1.provenance["coordinates"], atol=1e-9)


def test_recorder_float64_model_keeps_float64():
    model = small_net().double()
    rec = lw.Recorder(model)
    rec.step()
    assert rec.trajectory.state(0)["0.weight"].dtype == torch.float64


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"every": 0}, ValueError, "every must be >= 1"),
    ({"every": 1.5}, TypeError, "every must be an int"),
    ({"every": True}, TypeError, "every must be an int"),
])
def test_recorder_rejects_bad_every(kwargs, error, match):
    with pytest.raises(error, match=match):
        lw.Recorder(small_net(), **kwargs)


def test_recorder_rejects_bad_logs_naming_the_key():
    rec = lw.Recorder(small_net())
    with pytest.raises(TypeError, match="log 'hist' is a list"):
        rec.step(hist=[1, 2])
    with pytest.raises(TypeError, match="step must be an int"):
        rec.step(step=1.5)
    assert len(rec) == 0


def test_recorder_folder_mode_writes_files_and_resumes(tmp_path):
    model = small_net()
    rec = lw.Recorder(model, every=2, path=tmp_path / "run")
    seen = train(model, rec, 6)  # snapshots at calls 0, 2, 4
    files = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert files == ["index.json", "snapshot-000000.pt", "snapshot-000001.pt",
                     "snapshot-000002.pt"]
    index = json.loads((tmp_path / "run" / "index.json").read_text())
    assert [e["step"] for e in index["snapshots"]] == [0, 2, 4]
    traj = rec.trajectory
    assert not traj.in_memory
    for i, call in enumerate([0, 2, 4]):
        assert all(torch.equal(v, seen[call][k]) for k, v in traj.state(i).items())
    # A new recorder on the folder (a new process after an interruption) appends after it.
    rec2 = lw.Recorder(model, every=2, path=tmp_path / "run")
    assert len(rec2) == 3 and rec2.calls == 5
    assert rec2.step(train_loss=0.1) is None  # call 5
    assert rec2.step(train_loss=0.2) == 3  # call 6
    assert rec2.trajectory.steps == [0, 2, 4, 6]
    reopened = lw.Trajectory.from_checkpoints(tmp_path / "run", small_net())
    assert reopened.steps == [0, 2, 4, 6] and reopened.logs[3] == {"train_loss": 0.2}
    assert reopened.fingerprint == rec2.trajectory.fingerprint


def test_folder_and_memory_recordings_are_the_same_trajectory(tmp_path):
    m1, m2 = small_net(), small_net()
    r1, r2 = lw.Recorder(m1), lw.Recorder(m2, path=tmp_path / "r")
    train(m1, r1, 5)
    train(m2, r2, 5)
    t1, t2 = r1.trajectory, r2.trajectory
    assert t1.fingerprint == t2.fingerprint
    assert t1.logs == t2.logs and t1.steps == t2.steps


def test_interrupted_write_leaves_the_folder_resumable(tmp_path, monkeypatch):
    model = small_net()
    folder = tmp_path / "run"
    rec = lw.Recorder(model, path=folder)
    train(model, rec, 3)
    real_save = torch.save

    def interrupted(obj, f, *args, **kwargs):
        f.write(b"half a snapshot")
        raise KeyboardInterrupt

    monkeypatch.setattr(store.torch, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        rec.step()
    monkeypatch.setattr(store.torch, "save", real_save)
    assert sorted(p.name for p in folder.iterdir())[-1] == "snapshot-000002.pt"
    assert not list(folder.glob(".*.tmp"))
    # A killed process can leave its temporary file, or a file renamed into place before the
    # index was written; neither stops a resume, and the complete one is kept.
    (folder / ".snapshot-000004.pt.tmp").write_bytes(b"garbage")
    index_before = (folder / "index.json").read_text()
    rec.step(train_loss=1.5)
    (folder / "index.json").write_text(index_before)  # as if stopped before the index update
    rec2 = lw.Recorder(model, path=folder)
    assert len(rec2) == 4 and rec2.trajectory.logs[3] == {"train_loss": 1.5}
    assert not (folder / ".snapshot-000004.pt.tmp").exists()
    assert rec2.step() == 4
    assert len(lw.Trajectory.from_checkpoints(folder, small_net())) == 5


def test_a_truncated_file_ends_the_trajectory(tmp_path):
    model = small_net()
    folder = tmp_path / "run"
    rec = lw.Recorder(model, path=folder)
    train(model, rec, 4)
    last = folder / "snapshot-000003.pt"
    last.write_bytes(last.read_bytes()[:100])  # e.g. a copy cut short
    with pytest.warns(UserWarning, match="keeps its first 3 snapshots"):
        rec2 = lw.Recorder(model, path=folder)
    assert len(rec2) == 3
    assert rec2.step() == 3  # overwrites the broken file
    assert len(lw.Trajectory.from_checkpoints(folder, small_net())) == 4


def test_a_gap_in_the_folder_stops_appending(tmp_path):
    model = small_net()
    folder = tmp_path / "run"
    rec = lw.Recorder(model, path=folder)
    train(model, rec, 5)
    (folder / "snapshot-000002.pt").unlink()
    with pytest.warns(UserWarning, match="keeps its first 2 snapshots"):
        traj = lw.Trajectory.from_checkpoints(folder, small_net())
    assert len(traj) == 2
    with pytest.warns(UserWarning), pytest.raises(
            ValueError, match=r"snapshot-000002\.pt is missing or incomplete, but "
                              r"snapshot-000003\.pt and 1 more follow it"):
        lw.Recorder(model, path=folder)


def test_folder_of_another_architecture_is_refused_naming_the_tensor(tmp_path):
    rec = lw.Recorder(small_net(), path=tmp_path / "run")
    rec.step()
    with pytest.raises(ValueError, match=r"'0\.weight' has shape \(8, 6\) \(float32\) there "
                                         r"and \(16, 6\) \(float32\) in this model"):
        lw.Recorder(small_net(hidden=16), path=tmp_path / "run")
    with pytest.raises(ValueError, match="another architecture"):
        lw.Trajectory.from_checkpoints(tmp_path / "run", small_net(hidden=16))


# ------------------------------------------------------------------------ from_checkpoints
def test_from_checkpoints_all_dict_forms_files_and_models(tmp_path, run):
    traj, _ = run
    states = [traj.state(i) for i in range(4)]
    sd = [dict(s, **{"1.num_batches_tracked": torch.tensor(5)}) for s in states]
    forms = [sd[0], {"model": sd[1], "epoch": 1}, {"state_dict": sd[2], "step": 30},
             traj.model_at(3)]
    mem = lw.Trajectory.from_checkpoints(forms, small_net())
    assert mem.in_memory and len(mem) == 4
    assert mem.steps == [0, 1, 2, 3]  # not every checkpoint has a step
    assert mem.logs[1] == {"epoch": 1}
    paths = []
    for i, obj in enumerate(forms[:3]):
        paths.append(tmp_path / f"ck{i}.pt")
        torch.save(obj, paths[-1])
    paths.append(tmp_path / "ck3.pt")
    torch.save({"state_dict": forms[3].state_dict(), "step": 99, "loss": 0.25}, paths[-1])
    disk = lw.Trajectory.from_checkpoints([str(p) for p in paths], small_net())
    assert not disk.in_memory
    assert disk.logs[3] == {"loss": 0.25}
    for i in range(4):
        for name, v in states[i].items():
            assert torch.equal(mem.state(i)[name], v), (i, name)
            assert torch.equal(disk.state(i)[name], v), (i, name)
    assert mem.fingerprint == disk.fingerprint
    assert mem.fingerprint != traj.fingerprint  # 4 of its 14 snapshots
    stepped = lw.Trajectory.from_checkpoints(paths, small_net(), steps=[0, 10, 20, 30])
    assert stepped.steps == [0, 10, 20, 30]
    with pytest.raises(ValueError, match="steps has 2 entries for 4 snapshots"):
        lw.Trajectory.from_checkpoints(paths, small_net(), steps=[0, 1])
    all_stepped = [{"model": s, "step": 10 * i} for i, s in enumerate(sd)]
    assert lw.Trajectory.from_checkpoints(all_stepped, small_net()).steps == [0, 10, 20, 30]


def test_model_at_loads_a_snapshot_into_a_copy(run):
    traj, model = run
    before = copy.deepcopy(model.state_dict())
    m5 = traj.model_at(5)
    assert m5 is not model
    for k, v in traj.state(5).items():
        assert torch.equal(m5.state_dict()[k], v)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    with pytest.raises(IndexError, match="snapshot 14 of a trajectory of 14"):
        traj.model_at(14)
    assert torch.equal(traj.model_at(-1)[0].weight, traj.state(13)["0.weight"])


def test_checkpoints_of_another_architecture_name_the_key(run):
    traj, _ = run
    other = small_net(hidden=16).state_dict()
    with pytest.raises(ValueError, match=r"checkpoint 1: '0\.weight' has shape \(16, 6\) "
                                         r"where the model has \(8, 6\)"):
        lw.Trajectory.from_checkpoints([traj.state(0), other], small_net())
    mlp = mlp_bn(0).state_dict()
    with pytest.raises(ValueError, match=r"checkpoint 0 has no '0\.weight'|has shape"):
        lw.Trajectory.from_checkpoints([mlp], small_net())


def test_mismatched_state_dicts_name_the_key(run):
    traj, _ = run
    state = traj.state(0)
    missing = {k: v for k, v in state.items() if k != "3.bias"}
    with pytest.raises(ValueError, match=r"checkpoint 0 has no '3\.bias'"):
        lw.Trajectory.from_checkpoints([missing], small_net())
    extra = dict(state, **{"head.weight": torch.zeros(2)})
    with pytest.raises(ValueError, match=r"has 'head\.weight', which the model does not have"):
        lw.Trajectory.from_checkpoints([extra], small_net())
    wrapped = {f"module.{k}": v for k, v in state.items()}
    with pytest.raises(ValueError, match=r"strip the 'module\.' prefix"):
        lw.Trajectory.from_checkpoints([{"model": wrapped}], small_net())
    with pytest.raises(TypeError, match=r"'0\.weight' is a torch\.int64 tensor"):
        lw.Trajectory.from_checkpoints([dict(state, **{"0.weight": torch.zeros(8, 6).long()})],
                                       small_net())
    with pytest.raises(TypeError, match="checkpoint 0 is a int"):
        lw.Trajectory.from_checkpoints([3], small_net())
    with pytest.raises(ValueError, match="no checkpoints"):
        lw.Trajectory.from_checkpoints([], small_net())


# ------------------------------------------------------------------------------------ PCA
def sklearn_pca(traj, names, k, center=-1):
    c = flat(traj.state(center), names)
    rows = np.stack([flat(traj.state(i), names) - c for i in range(len(traj))])
    return PCA(n_components=k, svd_solver="full").fit(rows)


@pytest.mark.parametrize("ignore", ["biasbn", None])
def test_pca_matches_sklearn(run, ignore):
    traj, _ = run
    k = 3
    dirs = lw.directions.pca(traj, k=k, ignore=ignore)
    moving = [s.name for s in traj.specs if ignore is None or len(s.shape) > 1]
    ref = sklearn_pca(traj, moving, k)
    ratios = [d.provenance["explained_variance_ratio"] for d in dirs]
    np.testing.assert_allclose(ratios, ref.explained_variance_ratio_, atol=1e-5, rtol=0)
    variances = [d.provenance["explained_variance"] for d in dirs]
    np.testing.assert_allclose(variances, ref.explained_variance_, rtol=1e-5)
    assert ratios[0] > ratios[1] > ratios[2] > 0
    for j, d in enumerate(dirs):
        v = direction_flat(d, moving)
        comp = ref.components_[j] * np.sign(v @ ref.components_[j])
        np.testing.assert_allclose(v, comp, atol=1e-5, rtol=0)
        assert np.linalg.norm(v) == pytest.approx(1.0, abs=1e-6)
        prov = d.provenance
        assert prov["kind"] == "pca" and prov["component"] == j + 1
        assert prov["center"] == "last" and prov["center_index"] == len(traj) - 1
        assert prov["label"] == f"PC{j + 1} · {100 * ratios[j]:.1f} %"
        assert d.label == prov["label"] and not d.buffers
        assert d["0.weight"].dtype == torch.float32
        # The deterministic sign: the largest-magnitude entry is positive.
        assert v[np.argmax(np.abs(v))] > 0
    g = np.array([[a.dot(b) for b in dirs] for a in dirs])
    np.testing.assert_allclose(g, np.eye(k), atol=1e-6)
    for s in traj.specs:
        if ignore == "biasbn" and len(s.shape) <= 1:
            assert all(torch.equal(d[s.name], torch.zeros(s.shape)) for d in dirs), s.name
        else:
            assert any(d[s.name].abs().sum() > 0 for d in dirs), s.name


def test_pca_ignore_biasbn_differs_from_ignore_none(run):
    traj, _ = run
    a = lw.directions.pca(traj, ignore="biasbn")[0]
    b = lw.directions.pca(traj, ignore=None)[0]
    assert a.provenance["ignore"] == "biasbn" and b.provenance["ignore"] is None
    assert not torch.equal(a["0.weight"], b["0.weight"])
    assert torch.count_nonzero(b["1.weight"]) > 0 and torch.count_nonzero(a["1.weight"]) == 0


def test_pca_center_moves_only_the_origin_and_bits_repeat(run):
    traj, _ = run
    last = lw.directions.pca(traj, k=2)
    again = lw.directions.pca(traj, k=2)
    first = lw.directions.pca(traj, k=2, center="first")
    mid = lw.directions.pca(traj, k=2, center=5)
    for j in range(2):
        assert all(torch.equal(last[j][n], again[j][n]) for n in traj.names)  # same bits
        assert last[j].provenance == again[j].provenance
        for other in (first, mid):
            for n in traj.names:
                torch.testing.assert_close(other[j][n], last[j][n], atol=1e-6, rtol=0)
    assert first[0].provenance["center"] == "first" and first[0].provenance["center_index"] == 0
    assert mid[0].provenance["center"] == 5
    # Coordinates from the centre: the centre itself is at 0 on every component.
    assert mid[0].provenance["coordinates"][5] == pytest.approx(0.0, abs=1e-12)
    assert last[1].provenance["coordinates"][-1] == pytest.approx(0.0, abs=1e-12)


def test_pca_from_files_in_small_blocks_equals_pca_in_memory(tmp_path, run):
    traj, _ = run
    paths = []
    for i in range(len(traj)):
        paths.append(tmp_path / f"{i}.pt")
        torch.save(traj.state(i), paths[-1])
    disk = lw.Trajectory.from_checkpoints(paths, small_net())
    ref = lw.directions.pca(traj, k=2)
    one_block = lw.directions.pca(disk, k=2)
    # 4 KB: two snapshots per block, so blocks are read again for every earlier block.
    blocked = lw.directions.pca(disk, k=2, memory=4096)
    for j in range(2):
        for d in (one_block, blocked):
            for n in traj.names:
                torch.testing.assert_close(d[j][n], ref[j][n], atol=1e-6, rtol=0)
            np.testing.assert_allclose(d[j].provenance["coordinates"],
                                       ref[j].provenance["coordinates"], atol=1e-9)
            assert d[j].provenance["explained_variance_ratio"] == pytest.approx(
                ref[j].provenance["explained_variance_ratio"], abs=1e-12)


def test_pca_errors(run):
    traj, _ = run
    short = lw.Trajectory.from_checkpoints([traj.state(i) for i in range(2)], small_net())
    with pytest.raises(ValueError, match=r"pca\(k=2\) needs at least k \+ 1 = 3 snapshots"):
        lw.directions.pca(short, k=2)
    assert len(lw.directions.pca(short, k=1)) == 1
    with pytest.raises(ValueError, match="k must be >= 1"):
        lw.directions.pca(traj, k=0)
    with pytest.raises(TypeError, match="k must be an int"):
        lw.directions.pca(traj, k=2.0)
    with pytest.raises(ValueError, match="center=14 is not a snapshot of a trajectory of 14"):
        lw.directions.pca(traj, center=14)
    with pytest.raises(ValueError, match="center='middle' is not supported"):
        lw.directions.pca(traj, center="middle")
    with pytest.raises(ValueError, match="ignore='bias' is not supported"):
        lw.directions.pca(traj, ignore="bias")
    with pytest.raises(TypeError, match=r"pca\(\) takes a lw\.Trajectory"):
        lw.directions.pca([traj.state(0)] * 3)
    same = lw.Trajectory.from_checkpoints([traj.state(0)] * 3, small_net())
    with pytest.raises(ValueError, match="the snapshots are all the same"):
        lw.directions.pca(same, k=1)
    s0, s1 = traj.state(0), traj.state(1)
    line = [s0, s1, {k: 2 * s1[k] - s0[k] for k in s0}]  # three points on a line
    collinear = lw.Trajectory.from_checkpoints(line, small_net())
    with pytest.raises(ValueError, match=r"vary along only 1 direction\(s\).*ask for k=1"):
        lw.directions.pca(collinear, k=2)
    diverged = [traj.state(0), traj.state(1), dict(traj.state(2))]
    diverged[2]["3.weight"] = diverged[2]["3.weight"].clone()
    diverged[2]["3.weight"][0, 0] = math.nan
    bad = lw.Trajectory.from_checkpoints(diverged, small_net())
    with pytest.raises(ValueError, match=r"snapshot 2 \(step 2\) has non-finite values in "
                                         r"'3\.weight'"):
        lw.directions.pca(bad, k=1)


# ----------------------------------------------------------------------------- projection
def plane_run(d1: dict, d2: dict, coords: list[tuple[float, float]], off: dict | None = None):
    """A float64 trajectory θᵢ = θ_c + aᵢ·d₁ + bᵢ·d₂ (+ off, out of the plane)."""
    torch.manual_seed(3)
    model = nn.Linear(5, 4).double()
    theta = {k: v.detach().clone() for k, v in model.state_dict().items()}
    states = []
    for i, (a, b) in enumerate(coords):
        states.append({k: theta[k] + a * d1[k] + b * d2[k]
                       + (off[k] if off is not None and i % 2 else 0.0) for k in theta})
    return lw.Trajectory.from_checkpoints(states, model), theta


def random_direction(seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"weight": torch.randn(4, 5, generator=g, dtype=torch.float64),
            "bias": torch.randn(4, generator=g, dtype=torch.float64)}


def test_a_snapshot_in_the_plane_projects_to_its_exact_coordinates():
    d1, d2 = random_direction(0), random_direction(1)  # not orthogonal, not unit
    coords = [(0.3, -1.2), (1.5, 0.25), (-2.0, 0.75), (0.0, 0.0)]
    traj, theta = plane_run(d1, d2, coords)
    path = traj.project(lw.Direction(d1), lw.Direction(d2), origin=theta)
    np.testing.assert_allclose(path.alpha, [a for a, _ in coords], atol=1e-12)
    np.testing.assert_allclose(path.beta, [b for _, b in coords], atol=1e-12)
    assert path.origin == "state dict"
    by_index = traj.project(lw.Direction(d1), lw.Direction(d2))  # the last snapshot, θ_c here
    np.testing.assert_allclose(by_index.alpha, path.alpha, atol=1e-12)
    assert by_index.origin == "snapshot 3 (step 3)"


def test_projection_on_non_orthonormal_directions_is_least_squares():
    d1, d2 = random_direction(0), random_direction(1)
    off = random_direction(2)
    coords = [(0.3, -1.2), (1.5, 0.25), (-2.0, 0.75), (0.4, 0.1), (0.0, 0.0)]
    traj, theta = plane_run(d1, d2, coords, off=off)
    path = traj.project(lw.Direction(d1), lw.Direction(d2), origin=theta)
    basis = np.stack([flat(d1, ["weight", "bias"]), flat(d2, ["weight", "bias"])], axis=1)
    c = flat(theta, ["weight", "bias"])
    for i in range(len(traj)):
        r = flat(traj.state(i), ["weight", "bias"]) - c
        expected, *_ = np.linalg.lstsq(basis, r, rcond=None)
        np.testing.assert_allclose([path.alpha[i], path.beta[i]], expected, atol=1e-10)
    assert abs(path.alpha[1] - 1.5) > 1e-3  # the off-plane part does move the projection


def test_pca_path_ends_at_the_origin_and_recovers_a_planar_run():
    d1, d2 = random_direction(0), random_direction(1)
    coords = [(3.0, 1.0), (2.2, 1.4), (1.1, 0.2), (0.5, -0.3), (0.0, 0.0)]
    traj, _ = plane_run(d1, d2, coords)
    p1, p2 = lw.directions.pca(traj, k=2, ignore=None)
    assert p1.provenance["explained_variance_ratio"] + p2.provenance[
        "explained_variance_ratio"] == pytest.approx(1.0, abs=1e-12)
    path = traj.project(p1, p2)
    assert path.origin == "snapshot 4 (step 4)"
    assert (path.alpha[-1], path.beta[-1]) == (0.0, 0.0)
    # The snapshots lie in the PCA plane: origin + α·v₁ + β·v₂ gives them back.
    for i in range(len(traj)):
        rebuilt = {k: traj.state(-1)[k] + path.alpha[i] * p1[k] + path.beta[i] * p2[k]
                   for k in traj.names}
        for k in traj.names:
            torch.testing.assert_close(rebuilt[k], traj.state(i)[k], atol=1e-12, rtol=0)
    np.testing.assert_allclose(path.alpha, p1.provenance["coordinates"], atol=1e-12)
    np.testing.assert_allclose(path.beta, p2.provenance["coordinates"], atol=1e-12)


def test_path_record_steps_logs_labels_and_files(run, tmp_path):
    traj, _ = run
    d1, d2 = lw.directions.pca(traj)
    path = traj.project(d1, d2)
    assert (path.alpha[-1], path.beta[-1]) == (0.0, 0.0)
    assert path.steps.tolist() == traj.steps and len(path) == len(traj)
    assert path.loss[0] == pytest.approx(traj.logs[0]["train_loss"])
    assert path.labels[5] == f"epoch 1 · step 5 · loss {traj.logs[5]['train_loss']:.3g}"
    assert path.directions[0]["label"] == d1.label
    assert not path.alpha.flags.writeable
    json.dumps(path.to_dict())
    back = lw.Path.load(path.save(tmp_path / "p"))
    np.testing.assert_array_equal(back.alpha, path.alpha)
    np.testing.assert_array_equal(back.steps, path.steps)
    assert back.labels == path.labels and back.origin == path.origin


def test_projection_errors(run):
    traj, _ = run
    d1, d2 = lw.directions.pca(traj)
    other = lw.directions.random(small_net(hidden=16))
    with pytest.raises(ValueError, match=r"d2 has \(16, 6\) for '0\.weight' where the model "
                                         r"has \(8, 6\)"):
        traj.project(d1, other)
    with pytest.raises(ValueError, match="d1 and d2 are parallel"):
        traj.project(d1, d1)
    zero = lw.Direction({k: torch.zeros_like(v) for k, v in d1.items()})
    with pytest.raises(ValueError, match="d2 is zero"):
        traj.project(d1, zero)
    part = lw.Trajectory.from_checkpoints([traj.state(i) for i in range(5)], small_net())
    with pytest.raises(ValueError, match="origin=None means the centre of the PCA"):
        part.project(d1, d2)
    path = part.project(d1, d2, origin=traj.model_at(-1))  # another run on the same plane
    assert path.origin == "model" and len(path) == 5
    with pytest.raises(TypeError, match="origin must be None, a snapshot index"):
        traj.project(d1, d2, origin="last")


# -------------------------------------------------------------------------------- figures
def lines(fig) -> dict[str, Line2D]:
    return {ln.get_label(): ln for ln in fig.axes[0].get_lines()}


def pca_surface(traj, d1, d2, span=8.0):
    x = np.linspace(-span, span, 9)
    z = np.add.outer(x ** 2, x ** 2) + 0.1
    return lw.Surface(x=x, y=x, values={"loss": z}, directions=(d1.provenance, d2.provenance))


def test_surface_plot_draws_the_path_of_a_trajectory(run, tmp_path):
    import matplotlib.pyplot as plt

    traj, _ = run
    d1, d2 = lw.directions.pca(traj)
    path = traj.project(d1, d2)
    span = 1.2 * max(np.abs(path.alpha).max(), np.abs(path.beta).max())
    surf = pca_surface(traj, d1, d2, span)
    fig = surf.plot(path=traj, markers={"m1": (0.5 * span, 0.0)})
    drawn = lines(fig)
    line = drawn[f"path ({len(traj)} snapshots)"]
    np.testing.assert_allclose(line.get_xdata(), path.alpha, atol=1e-6)
    np.testing.assert_allclose(line.get_ydata(), path.beta, atol=1e-6)
    start, end = drawn[f"start: {path.labels[0]}"], drawn[f"end: {path.labels[-1]}"]
    assert (start.get_xdata()[0], start.get_ydata()[0]) == pytest.approx(
        (path.alpha[0], path.beta[0]), abs=1e-6)
    assert (end.get_xdata()[0], end.get_ydata()[0]) == pytest.approx((0.0, 0.0), abs=1e-12)
    assert start.get_marker() == "o" and start.get_markerfacecolor() == "white"
    assert end.get_marker() == "o" and end.get_markerfacecolor() != "white"
    diamonds = [ln for ln in fig.axes[0].get_lines() if ln.get_marker() == "D"]
    assert len(diamonds) == 1 and diamonds[0].get_xdata()[0] == 0.5 * span
    assert "m1" in [t.get_text() for t in fig.axes[0].texts]
    assert fig.axes[0].get_xlabel() == d1.label and "PC1 · " in d1.label
    assert fig.axes[0].get_legend() is not None
    plt.close(fig)
    # The coordinates travel in the directions' provenance, through files too.
    fig = lw.load(surf.save(tmp_path / "surf")).plot(path=traj)
    np.testing.assert_array_equal(lines(fig)[f"path ({len(traj)} snapshots)"].get_xdata(),
                                  line.get_xdata())
    plt.close(fig)
    fig = surf.plot(path=path)  # a Path draws the same
    np.testing.assert_array_equal(lines(fig)[f"path ({len(traj)} snapshots)"].get_xdata(),
                                  path.alpha)
    plt.close(fig)


def test_surface_plot_path_errors_and_warnings(run):
    import matplotlib.pyplot as plt

    traj, model = run
    d1, d2 = lw.directions.pca(traj)
    small = pca_surface(traj, d1, d2, span=1e-3)
    with pytest.warns(UserWarning,
                      match=r"13 of the path's 14 snapshots \(it spans .*\) lie outside"):
        fig = small.plot(path=traj)
    assert fig.axes[0].get_xlim() == (-1e-3, 1e-3)
    plt.close(fig)
    r1, r2 = lw.directions.random(model, 0), lw.directions.random(model, 1)
    random_surface = lw.Surface(x=np.arange(3.0), y=np.arange(3.0),
                                values={"loss": np.ones((3, 3))},
                                directions=(r1.provenance, r2.provenance))
    with pytest.raises(ValueError, match=r"not PCA directions of a trajectory.*"
                                         r"traj\.project\(d1, d2\)"):
        random_surface.plot(path=traj)
    part = lw.Trajectory.from_checkpoints([traj.state(i) for i in range(5)], small_net())
    with pytest.raises(ValueError, match="come from another trajectory"):
        pca_surface(traj, d1, d2).plot(path=part)
    with pytest.raises(ValueError, match=r"marker 'm1' is \(1, 'a'\)"):
        pca_surface(traj, d1, d2).plot(markers={"m1": (1, "a")})
    with pytest.raises(TypeError, match=r"path must be a lw\.Path"):
        pca_surface(traj, d1, d2).plot(path=[1, 2])
    plt.close("all")


def test_landscape_plane_on_pca_directions_with_the_path(run):
    import matplotlib.pyplot as plt

    traj, _ = run
    d1, d2 = lw.directions.pca(traj)
    final = traj.model_at(-1)
    land = lw.Landscape(final, data())
    path = traj.project(d1, d2)
    span = 1.1 * max(np.abs(path.alpha).max(), np.abs(path.beta).max())
    surf = land.plane(d1, d2, span=span, n=5, progress=False)
    assert surf.directions[0]["label"] == d1.label
    # The surface at (0, 0) is the final model, where the path ends.
    assert surf["loss"][2, 2] == pytest.approx(land.center()["loss"], rel=1e-6)
    fig = surf.plot(path=traj)
    np.testing.assert_allclose(lines(fig)[f"path ({len(traj)} snapshots)"].get_xdata(),
                               path.alpha, atol=1e-6)
    plt.close(fig)
