"""Files of records: which format a path names, and the ls-widget `.npz` format.

- ``.npz`` (the default, and what a path without a suffix gets): arrays plus a JSON header of
  provenance, written and read here with NumPy alone.
- ``.h5`` / ``.hdf5``: the layout of the reference code (tomgoldstein/loss-landscape) plus our
  provenance, optionally the directions themselves (`hdf5`; needs h5py).
- ``.vts`` / ``.vtp``: VTK XML for ParaView, a structured grid or a polygonal surface
  (`vtk`; needs pyevtk). Exports: written, not read back.

Pure format code: the formats exchange `Contents` (arrays, header, direction tensors) and know
nothing of the record classes, so `records` builds on them and never the other way round. The
optional packages are imported only when a file of theirs is written or read.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .contents import FORMAT, Contents, header_text

if TYPE_CHECKING:
    from torch import Tensor


FORMATS: dict[str, str] = {
    ".npz": "npz", ".h5": "hdf5", ".hdf5": "hdf5", ".vts": "vts", ".vtp": "vtp",
}
"""File suffix → format, for `save`."""
SUFFIXES = tuple(FORMATS)
"""File types `save` writes."""
READABLE = (".npz", ".h5", ".hdf5")
"""File types `load` reads (VTK files are exports for ParaView)."""


def format_of(path: str | os.PathLike[str], *, reading: bool = False) -> tuple[str, str]:
    """``(file name, format)`` for `path`; a path without a suffix is an ``.npz``.

    Raises:
        ValueError: an unknown suffix (or, when `reading`, a VTK export), naming it and the
            supported ones.
    """
    p = Path(os.fspath(path))
    if not p.suffix:
        return str(p.with_suffix(".npz")), "npz"
    suffix = p.suffix.lower()
    supported = READABLE if reading else SUFFIXES
    if suffix not in supported:
        verb = "read" if reading else "save to"
        why = (f"{suffix!r} files are exports for ParaView, not read back" if suffix in FORMATS
               else f"unknown file type {suffix!r}")
        raise ValueError(
            f"cannot {verb} {str(p)!r}: {why}; supported: {', '.join(supported)} "
            f"(e.g. {p.with_suffix('.npz').name!r})"
        )
    return str(p), FORMATS[suffix]


def check_options(
    path: str | os.PathLike[str], *, directions: bool, z: str | None = None,
    log: bool = False, zmax: float | None = None,
) -> tuple[str, str]:
    """``(file name, format)`` of `path`, after checking that the format has a place for the
    options given: direction tensors in ``.h5`` only; `z`, `log`, `zmax` in VTK files only.
    Options that a format cannot hold are errors, never silently dropped."""
    out, fmt = format_of(path)
    if directions and fmt != "hdf5":
        raise ValueError(
            f"directions= is saved in .h5 files only, not in {fmt} ({out!r}); save to an .h5 "
            "(e.g. surf.save('plane.h5', directions=True))"
        )
    vtk_options = {"z": z, "log": log, "zmax": zmax}
    if fmt not in ("vts", "vtp") and (z is not None or log or zmax is not None):
        given = ", ".join(f"{k}={v!r}" for k, v in vtk_options.items() if v not in (None, False))
        raise ValueError(
            f"{given}: these shape the heights of VTK files (.vts, .vtp), not of {fmt} "
            f"({out!r}); drop them or save to a .vtp"
        )
    return out, fmt


def save(
    path: str | os.PathLike[str],
    contents: Contents,
    *,
    directions: Sequence[Mapping[str, Tensor]] = (),
    z: str | None = None,
    log: bool = False,
    zmax: float | None = None,
) -> str:
    """Write `contents` in the format `path` names; returns the file written.

    `directions` (tensors) go into ``.h5`` files only; `z`, `log` and `zmax` shape the
    heights of ``.vts``/``.vtp`` files only (see `vtk.write`); see `check_options`.
    """
    out, fmt = check_options(path, directions=bool(directions), z=z, log=log, zmax=zmax)
    if fmt == "npz":
        return write_npz(out, contents.header, **_npz_arrays(contents))
    if fmt == "hdf5":
        from . import hdf5

        return hdf5.write(out, contents, directions)
    from . import vtk

    return vtk.write(out, contents, structured=fmt == "vts", z=z, log=log, zmax=zmax)


def load(path: str | os.PathLike[str]) -> Contents:
    """The contents of an ``.npz`` or ``.h5`` file (ours, or the reference code's)."""
    name, fmt = format_of(path, reading=True)
    if not Path(os.fspath(path)).suffix and os.path.exists(path):
        name = os.fspath(path)  # a file without a suffix, read as an .npz as it always was
    if fmt == "hdf5":
        from . import hdf5

        return hdf5.read(name)
    header, arrays = read_npz(name)
    if header.get("kind") == "path":
        raise ValueError(f"{name!r} holds a training path; read it with lw.Path.load")
    values = {k: arrays[f"value_{k}"] for k in header["metrics"]}
    if header["kind"] == "curve":
        return Contents(header, arrays["x"], values)
    return Contents(header, arrays["x"], values, y=arrays["y"], evaluated=arrays["evaluated"])


def _npz_arrays(contents: Contents) -> dict[str, np.ndarray]:
    arrays = {"x": contents.x, **{f"value_{k}": v for k, v in contents.values.items()}}
    if contents.y is not None:
        assert contents.evaluated is not None
        arrays.update(y=contents.y, evaluated=contents.evaluated)
    return arrays


def target(path: str | os.PathLike[str]) -> str:
    """The ``.npz`` file `write_npz` writes: `path`, with ``.npz`` added when it has no suffix.

    Any other suffix is an error rather than an .npz under that name.
    """
    p = Path(os.fspath(path))
    if not p.suffix:
        return str(p.with_suffix(".npz"))
    if p.suffix.lower() != ".npz":
        raise ValueError(
            f"cannot save to {str(p)!r}: unknown file type {p.suffix!r}; supported: .npz "
            f"(e.g. {p.with_suffix('.npz').name!r})"
        )
    return str(p)


def write_npz(path: str | os.PathLike[str], header: dict[str, Any], **arrays: np.ndarray) -> str:
    """Write `arrays` and the JSON `header` (format name and version added) to an .npz."""
    out = target(path)
    payload: dict[str, Any] = {"header": np.array(header_text(header)), **arrays}
    np.savez_compressed(out, **payload)
    return out


def read_npz(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The header and arrays of a file written by `write_npz`."""
    with np.load(os.fspath(path), allow_pickle=False) as f:
        try:
            header = json.loads(str(f["header"]))
        except KeyError:
            raise ValueError(f"{path} is not an ls-widget file (no header)") from None
        if header.get("format") != FORMAT:
            raise ValueError(f"{path} is not an ls-widget file")
        return header, {k: f[k] for k in f.files if k != "header"}
