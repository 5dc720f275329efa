"""Files other tools read: HDF5 in the layout of tomgoldstein/loss-landscape, VTK for ParaView.

The reference code's reading and writing logic is re-implemented here from its sources (each
quoted with the file it comes from), and checked against ours on non-square grids of distinct
values, so that any transposition shows.
"""

from __future__ import annotations

import copy
import sys

import h5py
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
import torch.nn.functional as F
import vtk
from helpers import lw, mlp_bn
from vtk.util.numpy_support import vtk_to_numpy

from ls_widget.results import load_directions


def _surface(nx: int = 5, ny: int = 7, **kw) -> lw.Surface:
    """Distinct values everywhere: loss(x[j], y[i]) = 10 + 10 j + i/10 (+ a tiny offset)."""
    x = np.linspace(-1.0, 1.0, nx)
    y = np.linspace(-0.5, 1.5, ny)
    i, j = np.mgrid[0:ny, 0:nx]
    loss = 10.0 + 10.0 * j + i / 10.0 + 1e-7 * np.pi
    acc = (7 * i + 3 * j + 1) / (7 * ny + 3 * nx + 2)  # fractions in (0, 1), all distinct
    return lw.Surface(x=x, y=y, values={"loss": loss, "accuracy": acc},
                      directions=({"kind": "custom", "label": "a"},
                                  {"kind": "custom", "label": "b"}), meta={"note": 1}, **kw)


def _value_at(surf: lw.Surface, metric: str, xv: float, yv: float) -> float:
    j, i = int(np.argmin(np.abs(surf.x - xv))), int(np.argmin(np.abs(surf.y - yv)))
    assert surf.x[j] == xv and surf.y[i] == yv
    return float(surf[metric][i, j])


# ------------------------------------------------------------- the reference code, mirrored
def reference_read_2d(path, surf_name="train_loss"):
    """plot_2D.py, plot_2d_contour():

        f = h5py.File(surf_file, 'r')
        x = np.array(f['xcoordinates'][:])
        y = np.array(f['ycoordinates'][:])
        X, Y = np.meshgrid(x, y)
        if surf_name in f.keys():
            Z = np.array(f[surf_name][:])
        ...
        CS = plt.contour(X, Y, Z, ...)

    h52vtp.py pairs the values with the points in flat order:
        [xcoordinates, ycoordinates] = np.meshgrid(f['xcoordinates'][:], f['ycoordinates'][:][:])
        x_array = xcoordinates[:].ravel(); y_array = ycoordinates[:].ravel()
        z_array = vals[:].ravel()
    """
    with h5py.File(path, "r") as f:
        x = np.array(f["xcoordinates"][:])
        y = np.array(f["ycoordinates"][:])
        X, Y = np.meshgrid(x, y)
        Z = np.array(f[surf_name][:])
    return x, y, X, Y, Z


def reference_write(path, x, y, fn, n_done=None, dir_file="dirs.h5"):
    """plot_surface.py, setup_surface_file() and crunch(), with scheduler.py's indices:

        f['dir_file'] = dir_file
        xcoordinates = np.linspace(args.xmin, args.xmax, num=args.xnum)
        f['xcoordinates'] = xcoordinates
        if args.y: f['ycoordinates'] = ycoordinates
        ...
        shape = xcoordinates.shape if ycoordinates is None else \
                (len(xcoordinates),len(ycoordinates))
        losses = -np.ones(shape=shape); accuracies = -np.ones(shape=shape)
        f[loss_key] = losses; f[acc_key] = accuracies
        # scheduler.get_unplotted_indices:
        inds = np.array(range(vals.size)); inds = inds[vals.ravel() <= 0]
        xcoord_mesh, ycoord_mesh = np.meshgrid(xcoordinates, ycoordinates)
        s1 = xcoord_mesh.ravel()[inds]; s2 = ycoord_mesh.ravel()[inds]; coords = np.c_[s1,s2]
        for count, ind in enumerate(inds):
            coord = coords[count]
            loss, acc = evaluation.eval_loss(net, criterion, dataloader, args.cuda)
            losses.ravel()[ind] = loss
            accuracies.ravel()[ind] = acc          # evaluation.py: 100.*correct/total
            f[loss_key][:] = losses; f[acc_key][:] = accuracies

    `fn(coord)` returns (loss, accuracy in percent); `n_done` stops early (a partial file).
    """
    with h5py.File(path, "w") as f:
        f["dir_file"] = dir_file
        f["xcoordinates"] = x
        if y is not None:
            f["ycoordinates"] = y
        shape = x.shape if y is None else (len(x), len(y))
        losses, accuracies = -np.ones(shape=shape), -np.ones(shape=shape)
        f["train_loss"], f["train_acc"] = losses, accuracies
        inds = np.array(range(losses.size))
        inds = inds[losses.ravel() <= 0]
        if y is not None:
            xm, ym = np.meshgrid(x, y)
            coords = np.c_[xm.ravel()[inds], ym.ravel()[inds]]
        else:
            coords = x.ravel()[inds]
        for count, ind in enumerate(inds[:n_done]):
            loss, acc = fn(coords[count])
            losses.ravel()[ind] = loss
            accuracies.ravel()[ind] = acc
        f["train_loss"][:] = losses
        f["train_acc"][:] = accuracies


def reference_load_directions(dir_file):
    """net_plotter.py, load_directions(), with h5_util.read_list():

        f = h5py.File(dir_file, 'r')
        if 'ydirection' in f.keys():
            xdirection = h5_util.read_list(f, 'xdirection')
            ydirection = h5_util.read_list(f, 'ydirection')
        # read_list: grp = f[name]; return [grp[str(i)] for i in range(len(grp))]
    """
    with h5py.File(dir_file, "r") as f:
        names = ["xdirection", "ydirection"] if "ydirection" in f else ["xdirection"]
        return [[np.array(f[n][str(i)]) for i in range(len(f[n]))] for n in names]


def reference_set_weights(net, weights, directions, step):
    """net_plotter.py, set_weights():

        dx = directions[0]; dy = directions[1]
        changes = [d0*step[0] + d1*step[1] for (d0, d1) in zip(dx, dy)]
        for (p, w, d) in zip(net.parameters(), weights, changes):
            p.data = w + torch.Tensor(d).type(type(w))
    """
    dx, dy = directions
    changes = [d0 * step[0] + d1 * step[1] for (d0, d1) in zip(dx, dy, strict=True)]
    for p, w, d in zip(net.parameters(), weights, changes, strict=True):
        p.data = w + torch.Tensor(d).type(type(w))


# ------------------------------------------------------------------- ours, read the reference's way
@pytest.mark.parametrize("shape", [(5, 7), (7, 5), (6, 6)])
def test_our_h5_reads_with_the_reference_logic(tmp_path, shape):
    surf = _surface(*shape)
    path = surf.save(tmp_path / "plane.h5")
    x, y, X, Y, Z = reference_read_2d(path)
    np.testing.assert_array_equal(x, surf.x)
    np.testing.assert_array_equal(y, surf.y)
    assert Z.shape == (len(x), len(y)) and Z.dtype == np.float64  # crunch's shape
    # Flat order of meshgrid(x, y): the value at (X.ravel()[k], Y.ravel()[k]) is Z.ravel()[k].
    for k, (xv, yv) in enumerate(zip(X.ravel(), Y.ravel(), strict=True)):
        assert Z.ravel()[k] == _value_at(surf, "loss", xv, yv), k
    _, _, _, _, acc = reference_read_2d(path, "train_acc")
    np.testing.assert_allclose(acc.ravel(), 100 * surf["accuracy"].ravel(), rtol=1e-15)
    with h5py.File(path, "r") as f:
        assert {"xcoordinates", "ycoordinates", "train_loss", "train_acc", "dir_file"} <= set(f)
    if len(x) == len(y):  # plot_2D draws square grids: Z[i, j] is at (X[i, j], Y[i, j])
        for (i, j), z in np.ndenumerate(Z):
            assert z == _value_at(surf, "loss", X[i, j], Y[i, j])
        fig = plt.figure()
        plt.contour(X, Y, Z)
        plt.close(fig)


def test_our_1d_h5_has_the_reference_layout(tmp_path):
    """plot_1D.py: x = f['xcoordinates'][:]; train_loss = f['train_loss'][:];
    train_acc = f['train_acc'][:]; ax1.plot(x, train_loss); ax2.plot(x, train_acc)."""
    x = np.linspace(-0.5, 1.5, 9)
    curve = lw.Curve(x=x, values={"loss": 2 + x**2, "accuracy": 0.5 + x / 4})
    path = curve.save(tmp_path / "line.h5")
    with h5py.File(path, "r") as f:
        assert "ycoordinates" not in f
        np.testing.assert_array_equal(f["xcoordinates"][:], x)
        np.testing.assert_array_equal(f["train_loss"][:], curve["loss"])
        np.testing.assert_allclose(f["train_acc"][:], 100 * curve["accuracy"], rtol=1e-15)
    back = lw.load(path)
    assert isinstance(back, lw.Curve) and back.metrics == ("loss", "accuracy")
    np.testing.assert_array_equal(back["accuracy"], curve["accuracy"])


def test_named_sets_get_the_reference_keys(tmp_path):
    surf = _surface()
    named = lw.Surface(x=surf.x, y=surf.y, values={
        "train/loss": surf["loss"], "train/accuracy": surf["accuracy"],
        "test/loss": surf["loss"] + 1, "test/accuracy": surf["accuracy"] / 2,
        "test/f1": surf["accuracy"] / 3})
    path = named.save(tmp_path / "sets.h5")
    with h5py.File(path, "r") as f:
        assert {"train_loss", "train_acc", "test_loss", "test_acc", "test_f1"} <= set(f)
        np.testing.assert_allclose(f["test_acc"][:].ravel(), 50 * surf["accuracy"].ravel())
    back = lw.load(path)
    assert back.metrics == named.metrics
    for m in named.metrics:
        np.testing.assert_array_equal(back[m], named[m])


def test_h5_round_trip_is_exact(tmp_path):
    ev = np.ones((7, 5), bool)
    ev[1::2, 1::2] = False
    surf = _surface(evaluated=ev)
    nan = lw.Surface(x=surf.x, y=surf.y, values={"loss": np.where(ev, surf["loss"], np.inf),
                                                  "accuracy": np.full((7, 5), np.nan)})
    for rec in (surf, nan):
        back = lw.load(rec.save(tmp_path / "r.h5"))
        np.testing.assert_array_equal(back.x, rec.x)
        np.testing.assert_array_equal(back.y, rec.y)
        np.testing.assert_array_equal(back.evaluated, rec.evaluated)
        assert back.metrics == rec.metrics and back.directions == rec.directions
        assert back.meta == rec.meta
        for m in rec.metrics:
            assert np.array_equal(back[m], rec[m], equal_nan=True), m
        assert back.direction_tensors == ()


# ------------------------------------------------------------------- the reference's, read by us
@pytest.mark.parametrize("shape", [(5, 7), (7, 5), (6, 6), (9, None)])
def test_reference_files_load_with_the_right_axes(tmp_path, shape):
    nx, ny = shape
    x = np.linspace(-1, 1, nx)
    y = None if ny is None else np.linspace(-2, 0.5, ny)

    def fn(coord):
        cx, cy = (coord, 0.0) if y is None else coord
        return 3 + cx + 10 * cy, 50 + 20 * cx - cy

    reference_write(tmp_path / "ref.h5", x, y, fn)
    rec = lw.load(tmp_path / "ref.h5")
    assert rec.metrics == ("loss", "accuracy")
    assert rec.meta["dir_file"] == "dirs.h5" and rec.meta["uncomputed"] == 0
    if y is None:
        assert isinstance(rec, lw.Curve)
        np.testing.assert_allclose(rec["loss"], 3 + x, rtol=1e-15)
        np.testing.assert_allclose(rec["accuracy"], (50 + 20 * x) / 100, rtol=1e-15)
        return
    assert isinstance(rec, lw.Surface) and rec.shape == (ny, nx)
    np.testing.assert_array_equal(rec.x, x)
    np.testing.assert_array_equal(rec.y, y)
    for i, j in np.ndindex(ny, nx):
        assert rec["loss"][i, j] == fn((x[j], y[i]))[0]
        assert rec["accuracy"][i, j] == pytest.approx(fn((x[j], y[i]))[1] / 100, rel=1e-15)
    assert rec.evaluated.all()
    # Saved again, the file has the reference's keys and values.
    again = rec.save(tmp_path / "again.h5")
    with h5py.File(tmp_path / "ref.h5", "r") as a, h5py.File(again, "r") as b:
        for key in ("xcoordinates", "ycoordinates", "train_loss"):
            np.testing.assert_array_equal(a[key][:], b[key][:])
            assert a[key].shape == b[key].shape


def test_partial_reference_file_marks_uncomputed_points(tmp_path):
    x, y = np.linspace(-1, 1, 5), np.linspace(-1, 1, 4)
    reference_write(tmp_path / "part.h5", x, y, lambda c: (1 + c[0] ** 2, 90.0), n_done=7)
    rec = lw.load(tmp_path / "part.h5")
    assert rec.meta["uncomputed"] == 20 - 7
    assert rec.evaluated.ravel().tolist() == [True] * 7 + [False] * 13
    assert np.isnan(rec["loss"].ravel()[7:]).all() and np.isnan(rec["accuracy"].ravel()[7:]).all()
    np.testing.assert_array_equal(rec["loss"].ravel()[:7], 1 + np.tile(x, 4)[:7] ** 2)


def test_reference_file_with_two_data_sets_and_other_values(tmp_path):
    x, y = np.linspace(-1, 1, 3), np.linspace(0, 1, 2)
    with h5py.File(tmp_path / "two.h5", "w") as f:
        f["xcoordinates"], f["ycoordinates"] = x, y
        for key, v in {"test_acc": 80.0, "train_loss": 0.1, "test_loss": 0.4,
                       "train_acc": 99.0, "max_eig": 5.0}.items():
            f[key] = np.full((3, 2), v)
    rec = lw.load(tmp_path / "two.h5")
    assert rec.metrics == ("train/loss", "train/accuracy", "test/loss", "test/accuracy",
                           "max_eig")
    assert rec["test/accuracy"][0, 0] == 0.8 and rec["max_eig"][1, 2] == 5.0


# ------------------------------------------------------------------- directions
@pytest.fixture(scope="module")
def computed(trained_mlp, digits_small):
    land = lw.Landscape(trained_mlp, digits_small, metrics={"accuracy": lw.metrics.accuracy})
    d1 = lw.directions.random(trained_mlp, seed=0)
    d2 = lw.directions.random(trained_mlp, seed=1)
    surf = land.plane(d1, d2, span=((-1, 1), (-0.5, 0.5)), n=(5, 3), progress=False)
    curve = land.line(d1, span=1, n=5, progress=False)
    return land, d1, d2, surf, curve


def test_records_hold_their_directions(computed):
    _, d1, d2, surf, curve = computed
    assert surf.direction_tensors[0] is d1 and surf.direction_tensors[1] is d2
    assert curve.direction_tensors[0] is d1
    assert "direction_tensors" not in repr(surf)
    with pytest.raises(ValueError, match="2 direction"):
        lw.Surface(x=surf.x, y=surf.y, values=surf.values, direction_tensors=(d1,))


def test_directions_in_the_reference_layout_project_the_same_loss(computed, trained_mlp,
                                                                  digits_small, tmp_path):
    land, d1, d2, surf, _ = computed
    path = surf.save(tmp_path / "plane.h5", directions=True)
    with h5py.File(path, "r") as f:
        assert f["dir_file"][()].decode() == "plane.h5"  # its own direction file
        names = [f["xdirection"][str(i)].attrs["name"] for i in range(len(f["xdirection"]))]
    assert names == [n for n, _ in trained_mlp.named_parameters()]
    dirs = reference_load_directions(path)
    for d, arrays in zip((d1, d2), dirs, strict=True):
        for (_, t), a in zip(d.items(), arrays, strict=True):
            np.testing.assert_array_equal(a, t.numpy())
    # The reference moves the weights along them; the loss is ours at that grid point.
    net = copy.deepcopy(trained_mlp).eval()
    weights = [p.data for p in net.parameters()]
    X, y = digits_small
    for i, j in [(0, 0), (2, 4), (1, 3)]:
        reference_set_weights(net, weights, dirs, (surf.x[j], surf.y[i]))
        with torch.no_grad():
            loss = F.cross_entropy(net(X), y).item()
        assert loss == pytest.approx(surf["loss"][i, j], rel=2e-5)
    # Read back as Directions, they give the same plane, bit for bit.
    back = lw.load(path)
    assert [dict(d.provenance) for d in back.direction_tensors] == list(surf.directions)
    again = land.plane(*back.direction_tensors, span=((-1, 1), (-0.5, 0.5)), n=(5, 3),
                       progress=False)
    for m in surf.metrics:
        np.testing.assert_array_equal(again[m], surf[m])
    assert [d.provenance for d in load_directions(path)] == list(surf.directions)


def test_curve_directions_and_explicit_directions(computed, tmp_path):
    _, d1, d2, surf, curve = computed
    back = lw.load(curve.save(tmp_path / "line.h5", directions=True))
    (d,) = back.direction_tensors
    assert list(d) == list(d1) and all(torch.equal(d[k], d1[k]) for k in d1)
    loaded = lw.load(surf.save(tmp_path / "plain.h5"))
    with pytest.raises(ValueError, match="no direction tensors"):
        loaded.save(tmp_path / "x.h5", directions=True)
    back = lw.load(loaded.save(tmp_path / "given.h5", directions=[d2, d1]))
    assert torch.equal(back.direction_tensors[0]["0.weight"], d2["0.weight"])
    with pytest.raises(ValueError, match="2 Direction"):
        loaded.save(tmp_path / "x.h5", directions=[d1])


def test_buffers_and_dtypes_survive(tmp_path):
    tensors = {"w": torch.randn(3, 2, dtype=torch.bfloat16), "b": torch.randn(3).double()}
    d = lw.Direction(tensors, buffers={"bn.running_mean": torch.randn(3)}, kind="custom")
    surf = lw.Surface(x=np.arange(2.0), y=np.arange(1.0), values={"loss": np.ones((1, 2))},
                      direction_tensors=(d, d))
    back = lw.load(surf.save(tmp_path / "b.h5", directions=True)).direction_tensors[0]
    assert back["w"].dtype == torch.bfloat16 and torch.equal(back["w"], tensors["w"])
    assert back["b"].dtype == torch.float64 and torch.equal(back["b"], tensors["b"])
    assert torch.equal(back.buffers["bn.running_mean"], d.buffers["bn.running_mean"])


def test_reference_direction_files_need_the_model(tmp_path):
    """A direction file of the reference: net_plotter.setup_direction with h5_util.write_list,
    dir_type 'states' (one random tensor per state_dict entry, BN statistics included)."""
    model = mlp_bn(0)
    state = model.state_dict()
    with h5py.File(tmp_path / "dirs.h5", "w") as f:
        for name in ("xdirection", "ydirection"):
            grp = f.create_group(name)
            for i, (_, w) in enumerate(state.items()):
                grp.create_dataset(str(i), data=torch.randn(w.size()).numpy())
    with pytest.raises(ValueError, match="pass the model"):
        load_directions(tmp_path / "dirs.h5")
    dx, dy = load_directions(tmp_path / "dirs.h5", model)
    assert list(dx) == [n for n, _ in model.named_parameters()]
    assert sorted(dx.buffers) == ["1.running_mean", "1.running_var"]  # not num_batches_tracked
    with h5py.File(tmp_path / "dirs.h5", "r") as f:
        k = list(state).index("3.weight")
        np.testing.assert_array_equal(dy["3.weight"].numpy(), f["ydirection"][str(k)][:])
    with pytest.raises(ValueError, match="state_dict entries"):
        load_directions(tmp_path / "dirs.h5", torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match=r"no 'xcoordinates'.*load_directions"):
        lw.load(tmp_path / "dirs.h5")


# ------------------------------------------------------------------- VTK
def _read_vtk(path):
    reader = (vtk.vtkXMLStructuredGridReader() if str(path).endswith(".vts")
              else vtk.vtkXMLPolyDataReader())
    reader.SetFileName(str(path))
    reader.Update()
    out = reader.GetOutput()
    points = vtk_to_numpy(out.GetPoints().GetData())
    arrays = {out.GetPointData().GetArrayName(k): vtk_to_numpy(out.GetPointData().GetArray(k))
              for k in range(out.GetPointData().GetNumberOfArrays())}
    cells = [[out.GetCell(c).GetPointId(p) for p in range(out.GetCell(c).GetNumberOfPoints())]
             for c in range(out.GetNumberOfCells())]
    return points, arrays, cells


@pytest.mark.parametrize("suffix", [".vts", ".vtp"])
def test_vtk_files_hold_the_grid_loss_and_neighbour_cells(tmp_path, suffix):
    surf = _surface(5, 7)
    path = surf.save(tmp_path / f"plane{suffix}")
    points, arrays, cells = _read_vtk(path)
    nx, ny = len(surf.x), len(surf.y)
    assert points.shape == (nx * ny, 3)
    # Every grid node once, with its values and its loss as the height.
    node = {}
    for k, (px, py, pz) in enumerate(points):
        i, j = int(np.argmin(np.abs(surf.y - py))), int(np.argmin(np.abs(surf.x - px)))
        assert (px, py) == (surf.x[j], surf.y[i]) and (i, j) not in node
        node[k] = (i, j)
        assert pz == surf["loss"][i, j]
        assert arrays["loss"][k] == surf["loss"][i, j]
        assert arrays["accuracy"][k] == surf["accuracy"][i, j]
    assert len(node) == nx * ny and "evaluated" not in arrays
    # (nx-1)(ny-1) quads, each a unit square of the grid.
    assert len(cells) == (nx - 1) * (ny - 1)
    squares = set()
    for cell in cells:
        ij = [node[k] for k in cell]
        assert len(ij) == 4
        i0, j0 = min(i for i, _ in ij), min(j for _, j in ij)
        assert set(ij) == {(i0, j0), (i0, j0 + 1), (i0 + 1, j0), (i0 + 1, j0 + 1)}
        squares.add((i0, j0))
    assert len(squares) == len(cells)


def test_vtp_heights_log_zmax_and_nonfinite(tmp_path):
    surf = _surface(4, 3)
    loss = surf["loss"].copy()
    loss[0, 0], loss[2, 3] = np.inf, np.nan
    ev = np.ones((3, 4), bool)
    ev[1, 1] = False
    rec = lw.Surface(x=surf.x, y=surf.y, values={"loss": loss, "acc": surf["accuracy"]},
                     evaluated=ev)
    points, arrays, _ = _read_vtk(rec.save(tmp_path / "log.vtp", log=True, zmax=30.0))
    expected = np.log(np.minimum(loss, 30.0) + 0.1).ravel()  # h52vtp: clip, then log(z + 0.1)
    expected[np.isnan(loss.ravel())] = np.nan  # inf is clipped to zmax, NaN stays NaN
    np.testing.assert_array_equal(points[:, 2], expected)
    assert np.isinf(arrays["loss"][0]) and np.isnan(arrays["loss"][-1])  # true values kept
    np.testing.assert_array_equal(arrays["evaluated"], ev.ravel())
    points, _, _ = _read_vtk(rec.save(tmp_path / "acc.vts", z="acc"))
    np.testing.assert_array_equal(points[:, 2], surf["accuracy"].ravel())
    with pytest.raises(ValueError, match="not a metric"):
        rec.save(tmp_path / "x.vtp", z="accuracy")


def test_curve_vtk_is_a_line_of_segments(tmp_path):
    x = np.linspace(-1, 1, 6)
    curve = lw.Curve(x=x, values={"loss": 1 + x**2})
    for suffix in (".vts", ".vtp"):
        points, arrays, cells = _read_vtk(curve.save(tmp_path / f"line{suffix}"))
        np.testing.assert_array_equal(points[:, 0], x)
        np.testing.assert_array_equal(points[:, 2], 1 + x**2)
        np.testing.assert_array_equal(arrays["loss"], 1 + x**2)
        assert sorted(sorted(c) for c in cells) == [[k, k + 1] for k in range(5)]


# ------------------------------------------------------------------- errors
@pytest.mark.parametrize("name", ["x.csv", "x.vtk", "x.json"])
def test_unknown_extensions_are_errors(tmp_path, name):
    surf = _surface()
    with pytest.raises(ValueError, match=rf"unknown file type '\.{name[2:]}'.*\.npz, \.h5"):
        surf.save(tmp_path / name)
    (tmp_path / name).write_text("x")
    with pytest.raises(ValueError, match=rf"unknown file type '\.{name[2:]}'.*\.npz, \.h5"):
        lw.load(tmp_path / name)
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_options_a_format_cannot_hold_are_errors(tmp_path):
    surf = _surface()
    with pytest.raises(ValueError, match=r"\.h5 files only"):
        surf.save(tmp_path / "x.npz", directions=True)
    with pytest.raises(ValueError, match=r"log=True.*VTK"):
        surf.save(tmp_path / "x.h5", log=True)
    with pytest.raises(ValueError, match="exports for ParaView"):
        lw.load(surf.save(tmp_path / "x.vtp"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.vtp"]


def test_missing_optional_packages_say_how_to_install(tmp_path, monkeypatch):
    surf = _surface()
    monkeypatch.setitem(sys.modules, "h5py", None)
    monkeypatch.setitem(sys.modules, "pyevtk.hl", None)
    for name in ("x.h5", "x.vtp"):
        with pytest.raises(ImportError, match=r"pip install 'ls-widget\[files\]'"):
            surf.save(tmp_path / name)
    assert not list(tmp_path.iterdir())
