"""HDF5 files in the layout of the reference code, tomgoldstein/loss-landscape (Li et al. 2018).

What the reference writes and reads (plot_surface.py: ``setup_surface_file``, ``crunch``;
scheduler.py; plot_1D.py, plot_2D.py, h52vtp.py; directions: net_plotter.py, h5_util.py):

- ``xcoordinates`` (nx,) float64, and ``ycoordinates`` (ny,) for a surface (none for a curve);
- ``train_loss``, ``train_acc`` (accuracy in percent), ``test_loss``, ``test_acc``: float64,
  shape (nx,) for a curve and ``(len(xcoordinates), len(ycoordinates))`` for a surface, filled
  in the flat order of ``np.meshgrid(xcoordinates, ycoordinates)``: crunch stores the value at
  ``(X.ravel()[k], Y.ravel()[k])`` in ``losses.ravel()[k]``, so flat index ``k = i·nx + j``
  holds f(x[j], y[i]). The dataset is thus our (ny, nx) array *reshaped* (not transposed) to
  (nx, ny); h52vtp reads it back the same way (``vals.ravel()`` beside the meshgrid's), and
  plot_2D's ``contour(X, Y, Z)`` draws it right on square grids (on non-square ones its
  contour call refuses the shapes, for the reference's own files as for ours);
- ``dir_file`` (a string): the direction file; there, groups ``xdirection``/``ydirection``
  hold one dataset per parameter, named "0", "1", ... in ``model.parameters()`` order;
- a point not computed yet holds -1 in both the loss and the accuracy (crunch's start value).

We add a group ``ls_widget`` that the reference never opens: ``header`` (the JSON provenance of
our .npz files, and which dataset holds which metric), ``evaluated`` (the (ny, nx) mask),
``exact/<dataset>`` (accuracies as fractions: percentages divided by 100 may differ in the
last bit, and a round trip is bit-exact) and ``<axis>_buffers`` (BatchNorm deltas). With
directions, the file is its own direction file: ``dir_file`` names it, the ``xdirection``
(``ydirection``) datasets are the reference's, each with a ``name`` attribute (the parameter's
name) and a ``dtype`` one (the tensor's torch dtype), and the group has the direction's
provenance (JSON) in its ``ls_widget_provenance`` attribute.

Metric names: "loss"/"accuracy" (one data set) → ``train_loss``/``train_acc``; "<set>/loss" →
``<set>_loss``, "<set>/accuracy" → ``<set>_acc``; another metric m → ``train_m`` or
``<set>_m``. In a file of the reference, ``train_loss``/``train_acc`` alone → "loss"/
"accuracy" (÷ 100); with other sets, ``<set>_loss`` → "<set>/loss", ``<set>_acc`` →
"<set>/accuracy"; any other dataset of the grid's size keeps its name (e.g. ``min_eig``).
So a reference file loaded and saved again keeps its dataset names.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..directions.direction import Direction
from .contents import FORMAT, Contents, header_text, json_default, optional

OURS = "ls_widget"
"""Our group in the file: header, mask, exact accuracies, buffer deltas."""
AXES = ("xdirection", "ydirection")
_RESERVED = frozenset({"xcoordinates", "ycoordinates", "dir_file", OURS, *AXES})
_SET_ORDER = {"train": 0, "test": 1}
_PLACEHOLDER = -1.0  # crunch's value for a point not computed yet
_PROVENANCE = "ls_widget_provenance"  # attribute of a direction group: its JSON provenance


def _h5py() -> Any:
    return optional("h5py")


def dataset_keys(metrics: Sequence[str]) -> dict[str, tuple[str, float]]:
    """The dataset name and scale of each metric in the reference layout (accuracy in %)."""
    keys: dict[str, tuple[str, float]] = {}
    owner: dict[str, str] = {}
    for m in metrics:
        data_set, _, name = m.rpartition("/")
        short, scale = ("acc", 100.0) if name == "accuracy" else (name, 1.0)
        key = f"{data_set or 'train'}_{short}".replace("/", "_")
        if key in owner or key in _RESERVED:
            clash = f"metric {owner[key]!r}" if key in owner else "the layout's own dataset"
            raise ValueError(
                f"metric {m!r} would be saved as {key!r}, which {clash} uses; rename the "
                "metric (e.g. metrics={'top1': ...}) or save to .npz"
            )
        owner[key], keys[m] = m, (key, scale)
    return keys


def write(
    path: str, contents: Contents, directions: Sequence[Mapping[str, Tensor]] = ()
) -> str:
    """Write `contents` (and the `directions` tensors) in the reference layout; returns `path`.

    Written to a temporary file beside `path` and renamed, so a failure leaves no half file.
    """
    h5py = _h5py()
    keys = dataset_keys(list(contents.values))
    header = {**contents.header, "datasets": {m: list(k) for m, k in keys.items()}}
    folder, name = os.path.split(os.path.abspath(path))
    partial = os.path.join(folder, f".{name}.{os.getpid()}.partial")
    try:
        with h5py.File(partial, "w") as f:
            f["dir_file"] = name if directions else ""
            f["xcoordinates"] = np.asarray(contents.x, np.float64)
            if contents.y is not None:
                f["ycoordinates"] = np.asarray(contents.y, np.float64)
            ours = f.create_group(OURS)
            ours["header"] = header_text(header)
            if contents.evaluated is not None:
                ours["evaluated"] = np.asarray(contents.evaluated, bool)
            for m, v in contents.values.items():
                key, scale = keys[m]
                f[key] = _reference_array(v, scale, contents)
                if scale != 1.0:
                    ours[f"exact/{key}"] = np.asarray(v, np.float64)
            for axis, d in zip(AXES, directions, strict=False):
                group = f.create_group(axis)
                _write_tensors(group, d)
                group.attrs[_PROVENANCE] = json.dumps(getattr(d, "provenance", {}),
                                                      default=json_default)
                buffers = getattr(d, "buffers", {})
                if buffers:
                    _write_tensors(ours.create_group(f"{axis}_buffers"), buffers)
        os.replace(partial, path)
    except BaseException:
        if os.path.exists(partial):
            os.unlink(partial)
        raise
    return path


def _reference_array(v: np.ndarray, scale: float, contents: Contents) -> np.ndarray:
    a = np.asarray(v, np.float64)
    if scale != 1.0:
        a = a * scale
    if contents.y is None:
        return a
    # (ny, nx) in C order is the flat order of meshgrid(x, y): reshape, never transpose.
    return a.reshape(len(contents.x), len(contents.y))


def _write_tensors(group: Any, tensors: Mapping[str, Tensor]) -> None:
    """One dataset per tensor, "0", "1", ... in the mapping's order (h5_util.write_list)."""
    for i, (name, t) in enumerate(tensors.items()):
        t = t.detach().cpu()
        dtype = str(t.dtype).removeprefix("torch.")
        if t.dtype == torch.bfloat16:  # NumPy has no bfloat16; the attribute restores it
            t = t.float()
        ds = group.create_dataset(str(i), data=t.numpy())
        ds.attrs["name"] = name
        ds.attrs["dtype"] = dtype


def read(path: str) -> Contents:
    """The contents of an .h5 written by `write`, or of a surface file of the reference code."""
    h5py = _h5py()
    with h5py.File(path, "r") as f:
        if "xcoordinates" not in f:
            hint = ("; it holds directions: read them with ls_widget.results.load_directions"
                    if "xdirection" in f else "")
            raise ValueError(
                f"{path!r} is not a loss-landscape file: it has no 'xcoordinates' dataset "
                f"(it holds {sorted(f.keys())}){hint}"
            )
        x = np.asarray(f["xcoordinates"][()], np.float64).reshape(-1)
        y = (np.asarray(f["ycoordinates"][()], np.float64).reshape(-1)
             if "ycoordinates" in f else None)
        header = _our_header(f)
        if header is None:
            return _read_reference(h5py, f, path, x, y)
        ours = f[OURS]
        values = {}
        for m in header["metrics"]:
            key, scale = header["datasets"][m]
            exact = f"exact/{key}"
            values[m] = (np.asarray(ours[exact][()], np.float64) if exact in ours
                         else _grid_values(f, key, x, y) / scale)
        evaluated = ours["evaluated"][()] if y is not None and "evaluated" in ours else None
        if y is not None and evaluated is None:
            evaluated = np.ones((len(y), len(x)), bool)
        tensors = tuple(_read_direction(f, axis) for axis in AXES if axis in f)
        return Contents(header, x, values, y=y, evaluated=evaluated, tensors=tensors)


def _our_header(f: Any) -> dict[str, Any] | None:
    if OURS not in f or "header" not in f[OURS]:
        return None
    header = json.loads(_text(f[OURS]["header"][()]))
    return header if header.get("format") == FORMAT else None


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _grid_values(f: Any, key: str, x: np.ndarray, y: np.ndarray | None) -> np.ndarray:
    """A dataset as our array: (nx,), or (ny, nx) from the meshgrid flat order."""
    data = np.asarray(f[key][()], np.float64)
    shape = (len(x),) if y is None else (len(y), len(x))
    if data.size != int(np.prod(shape)):
        raise ValueError(
            f"dataset {key!r} has shape {data.shape}; a grid of {len(x)} x-coordinates"
            + ("" if y is None else f" and {len(y)} y-coordinates")
            + f" needs {int(np.prod(shape))} values"
        )
    return data.reshape(shape)


def _reference_names(keys: Sequence[str]) -> dict[str, tuple[str, float]]:
    """Dataset → (metric, scale), data set by data set (train, test, others), loss first."""

    def order(key: str) -> tuple[int, int, str, int]:
        data_set, _, name = key.rpartition("_")
        if data_set and name in ("loss", "acc"):
            return (0, _SET_ORDER.get(data_set, 2), data_set, name == "acc")
        return (1, 0, key, 0)

    names: dict[str, tuple[str, float]] = {}
    for key in sorted(keys, key=order):
        data_set, _, name = key.rpartition("_")
        if data_set and name == "loss":
            names[key] = (f"{data_set}/loss", 1.0)
        elif data_set and name == "acc":
            names[key] = (f"{data_set}/accuracy", 100.0)
        else:
            names[key] = (key, 1.0)
    # One data set, "train" (crunch's default): "loss" and "accuracy", as a Landscape on one
    # data set names them (and as our own files of one data set are saved).
    sets = {m.split("/")[0] for m, _ in names.values() if "/" in m}
    if sets == {"train"}:
        plain = {k: (m.removeprefix("train/"), scale) for k, (m, scale) in names.items()}
        if len({m for m, _ in plain.values()}) == len(plain):  # unless a dataset is "loss"
            names = plain
    return names


def _read_reference(
    h5py: Any, f: Any, path: str, x: np.ndarray, y: np.ndarray | None
) -> Contents:
    size = len(x) * (1 if y is None else len(y))
    keys = [k for k in f if k not in _RESERVED and isinstance(f[k], h5py.Dataset)
            and f[k].size == size and f[k].dtype.kind in "fiu"]
    if not keys:
        raise ValueError(
            f"{path!r} has coordinates but no values of the grid's size ({size}): a surface "
            f"file before its values were computed? It holds {sorted(f.keys())}"
        )
    names = _reference_names(keys)
    raw = {key: _grid_values(f, key, x, y) for key in names}
    # crunch starts every point at -1 (loss and accuracy): those were never computed.
    pending = np.zeros(raw[keys[0]].shape, bool)
    for key in names:
        acc = key.removesuffix("_loss") + "_acc"
        if key.endswith("_loss") and acc in raw:
            todo = (raw[key] == _PLACEHOLDER) & (raw[acc] == _PLACEHOLDER)
            raw[key][todo] = raw[acc][todo] = np.nan
            pending |= todo
    values = {m: raw[key] / scale for key, (m, scale) in names.items()}
    dir_file = _text(f["dir_file"][()]) if "dir_file" in f else ""
    n_axes = 1 if y is None else 2
    header = {
        "kind": "curve" if y is None else "surface",
        "metrics": list(values),
        "directions": [{"kind": "loss-landscape", "label": axis, "dir_file": dir_file}
                       for axis in AXES[:n_axes]],
        "meta": {"source": "loss-landscape (reference layout)",
                 "file": os.path.basename(path), "dir_file": dir_file,
                 "uncomputed": int(pending.sum())},
    }
    evaluated = None if y is None else ~pending
    return Contents(header, x, values, y=y, evaluated=evaluated)


def load_directions(path: str | os.PathLike[str], model: nn.Module | None = None,
                    ) -> list[Direction]:
    """The directions of an .h5: one saved with ``directions=True``, or the reference's.

    A file of ours names its tensors (and restores their dtype, BatchNorm deltas and
    provenance). A direction file of the reference code (``xdirection``/``ydirection``
    groups of unnamed datasets) needs the `model` to name them: its parameters in order
    (``dir_type='weights'``) or its whole ``state_dict()`` in order (``'states'``; floating
    buffers become the direction's buffer deltas, integer entries are skipped).

    Args:
        path: the .h5 file.
        model: the model the directions belong to; needed for the reference's files only.

    Returns:
        ``[d1]`` or ``[d1, d2]``, CPU tensors.
    """
    h5py = _h5py()
    path = os.fspath(path)
    with h5py.File(path, "r") as f:
        if AXES[0] not in f:
            raise ValueError(
                f"{path!r} holds no directions (no 'xdirection' group; it holds "
                f"{sorted(f.keys())}); save them with surf.save('plane.h5', directions=True)"
            )
        return [_read_direction(f, a, model) for a in AXES if a in f]


def _read_direction(f: Any, axis: str, model: nn.Module | None = None) -> Direction:
    group = f[axis]
    provenance = (json.loads(_text(group.attrs[_PROVENANCE])) if _PROVENANCE in group.attrs
                  else {"kind": "loss-landscape", "label": axis,
                        "file": os.path.basename(f.filename)})
    datasets = _datasets(group, axis)
    names = [_text(ds.attrs["name"]) if "name" in ds.attrs else None for ds in datasets]
    buffers: dict[str, Tensor] = {}
    if all(n is not None for n in names):
        tensors = {str(n): _tensor(ds) for n, ds in zip(names, datasets, strict=True)}
        extra = f.get(f"{OURS}/{axis}_buffers")
        if extra is not None:
            buffers = {_text(ds.attrs["name"]): _tensor(ds) for ds in _datasets(extra, axis)}
    elif model is None:
        raise ValueError(
            f"the {axis!r} of this file has no parameter names (a direction file of the "
            "reference code); pass the model they belong to: load_directions(path, model)"
        )
    else:
        tensors, buffers = _named_by(model, datasets, axis)
    return Direction(tensors, buffers=buffers, **dict(provenance))


def _datasets(group: Any, axis: str) -> list[Any]:
    try:  # h5_util.read_list: the datasets "0" ... "n-1", in order
        return [group[str(i)] for i in range(len(group))]
    except KeyError:
        raise ValueError(
            f"{axis!r} should hold datasets named 0 ... {len(group) - 1}, one per tensor; "
            f"it holds {sorted(group.keys())}"
        ) from None


def _tensor(ds: Any) -> Tensor:
    t = torch.from_numpy(np.array(ds[()]))
    dtype = getattr(torch, _text(ds.attrs["dtype"]), None) if "dtype" in ds.attrs else None
    return t.to(dtype) if isinstance(dtype, torch.dtype) else t


def _named_by(
    model: nn.Module, datasets: Sequence[Any], axis: str
) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Name a reference direction by the model: its parameters, or its whole state dict."""
    params = dict(model.named_parameters())
    state = model.state_dict()
    if len(datasets) == len(params):
        entries = list(params.items())
    elif len(datasets) == len(state):
        entries = list(state.items())
    else:
        raise ValueError(
            f"{axis!r} holds {len(datasets)} tensors, but the model has {len(params)} "
            f"parameters and {len(state)} state_dict entries; pass the model the file was "
            "made for"
        )
    tensors: dict[str, Tensor] = {}
    buffers: dict[str, Tensor] = {}
    for (name, ref), ds in zip(entries, datasets, strict=True):
        if tuple(ds.shape) != tuple(ref.shape):
            raise ValueError(
                f"{axis!r} tensor {ds.name.rsplit('/', 1)[-1]} has shape {tuple(ds.shape)}, "
                f"but the model's {name!r} has {tuple(ref.shape)}; pass the model the file "
                "was made for"
            )
        if name in params:
            tensors[name] = _tensor(ds)
        elif ref.is_floating_point():
            buffers[name] = _tensor(ds)
    return tensors, buffers
