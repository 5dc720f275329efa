"""VTK XML files of a landscape for ParaView: ``.vts`` (structured grid), ``.vtp`` (polygons).

Both hold every grid node once, at ``(α, β, z)``, with one point array per metric named after
it (the true values, NaN and inf included) and, when adaptive refinement interpolated some
points, an ``evaluated`` array (1 where the model was evaluated). Node ``k = i·nx + j`` is at
``(x[j], y[i])``: the flat order of ``meshgrid(x, y)``, as the reference code's h52vtp.py
writes it. The cells join grid neighbours: quads ``(k, k+1, k+nx+1, k+nx)`` (for a curve,
segments ``(k, k+1)``); in the .vts they are implied by the grid, in the .vtp they are
listed as h52vtp's ``Polys``.

Heights: z is a metric (the first, the loss, by default), as h52vtp's points are; ``zmax``
clips it and ``log`` takes ``log(z + 0.1)``, both as h52vtp does (clip first). A non-finite
height is NaN (the point array keeps the true value), so one diverged point does not stretch
the scene to infinity.

The writer is pyevtk (the ``files`` extra): a 20 kB pure-Python package whose binary
"appended" XML VTK's readers and ParaView open. The ``vtk`` package itself writes the same
files but is a 140 MB download (565 MB installed), too heavy to ask of every user; the tests
use it, as the reader. pyevtk writes .vts with ``gridToVTK``; PolyData has no helper there, so
the .vtp goes through its ``VtkFile`` element writer (points, connectivity and offsets are
still its binary arrays, never text we format).
"""

from __future__ import annotations

import os
from typing import Any
from xml.sax.saxutils import escape

import numpy as np

from .contents import Contents, optional

_LOG_SHIFT = 0.1  # h52vtp: np.log(z_array + 0.1)


def write(
    path: str,
    contents: Contents,
    *,
    structured: bool,
    z: str | None = None,
    log: bool = False,
    zmax: float | None = None,
) -> str:
    """Write a .vts (`structured`) or .vtp of `contents`; returns the file written.

    Args:
        path: the file, ending in .vts or .vtp.
        contents: the grid and its values.
        structured: a StructuredGrid (.vts) rather than PolyData (.vtp).
        z: the metric whose values are the heights (default: the first, the loss).
        log: heights ``log(z + 0.1)`` (h52vtp's ``--log``).
        zmax: clip heights above this value first (h52vtp's ``--zmax``).
    """
    hl, vtk = optional("pyevtk.hl"), optional("pyevtk.vtk")
    x = np.asarray(contents.x, np.float64)
    y = np.zeros(1) if contents.y is None else np.asarray(contents.y, np.float64)
    heights = _heights(contents, z, log, zmax).reshape(len(y), len(x))
    points: dict[str, np.ndarray] = {
        _name(m): np.ascontiguousarray(v, np.float64).reshape(-1)
        for m, v in contents.values.items()}
    if (contents.evaluated is not None and not np.all(contents.evaluated)
            and "evaluated" not in points):
        points["evaluated"] = np.asarray(contents.evaluated, np.uint8).reshape(-1)
    base = os.path.splitext(path)[0]
    if structured:
        # Arrays indexed [x, y, z] in Fortran order (x fastest), as pyevtk writes and VTK
        # reads them: node j + nx·i for (x[j], y[i]), the same k as above.
        grid = [np.asfortranarray(a.T[:, :, None]) for a in np.meshgrid(x, y)]
        grid.append(np.asfortranarray(heights.T[:, :, None]))
        hl.gridToVTK(base, *grid, pointData=points)
        return f"{base}.vts"
    return _polydata(vtk, base, x, y, heights, points)


def _heights(contents: Contents, z: str | None, log: bool, zmax: float | None) -> np.ndarray:
    if not contents.values:
        raise ValueError("this record has no metric to draw as heights")
    metric = next(iter(contents.values)) if z is None else z
    if metric not in contents.values:
        raise ValueError(f"z={z!r} is not a metric of this record; it has {list(contents.values)}")
    h = np.array(contents.values[metric], np.float64)
    if zmax is not None:
        h = np.minimum(h, float(zmax))
    if log:
        with np.errstate(invalid="ignore", divide="ignore"):
            h = np.log(h + _LOG_SHIFT)
    h[~np.isfinite(h)] = np.nan
    return h


def _name(metric: str) -> str:
    # pyevtk writes attribute values verbatim; VTK's XML parser decodes the entities back.
    return escape(metric, {'"': "&quot;"})


def _polydata(
    vtk: Any, base: str, x: np.ndarray, y: np.ndarray, heights: np.ndarray,
    points: dict[str, np.ndarray],
) -> str:
    nx, ny = len(x), len(y)
    k = np.arange(nx * ny, dtype=np.int64).reshape(ny, nx)
    if ny > 1:  # quads between grid neighbours, as h52vtp's Polys
        corners = [k[:-1, :-1], k[:-1, 1:], k[1:, 1:], k[1:, :-1]]
        element, count = "Polys", {"npolys": (nx - 1) * (ny - 1)}
    else:  # a curve: segments between neighbours
        corners = [k[0, :-1], k[0, 1:]]
        element, count = "Lines", {"nlines": nx - 1}
    connectivity = np.stack([c.reshape(-1) for c in corners], axis=1).reshape(-1)
    offsets = np.arange(1, connectivity.size // len(corners) + 1, dtype=np.int64) * len(corners)
    xs, ys = (np.ascontiguousarray(a.reshape(-1)) for a in np.meshgrid(x, y))
    zs = np.ascontiguousarray(heights.reshape(-1))

    w = vtk.VtkFile(base, vtk.VtkPolyData)
    try:
        w.openGrid()
        w.openPiece(npoints=nx * ny, **count)
        w.openData("Point", scalars=next(iter(points), None))
        for name, values in points.items():
            w.addData(name, values)
        w.closeData("Point")
        w.openElement("Points")
        w.addData("points", (xs, ys, zs))
        w.closeElement("Points")
        w.openElement(element)
        w.addData("connectivity", connectivity)
        w.addData("offsets", offsets)
        w.closeElement(element)
        w.closePiece()
        w.closeGrid()
        # The binary blocks, in the order their headers were added above.
        for values in points.values():
            w.appendData(values)
        w.appendData((xs, ys, zs)).appendData(connectivity).appendData(offsets)
        w.save()
    except BaseException:
        w.xml.stream.close()
        os.unlink(w.filename)
        raise
    return str(w.filename)
