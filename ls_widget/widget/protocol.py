"""The message protocol between the kernel and the frontend, Python side, declared once.

The same shapes as `js/src/protocol.ts` (tests/test_protocol.py compares the two files key by
key and type by type):

- trait payloads: `Status` (the `status` trait) and `SurfaceInfo` (the `surface_info` trait);
- kernel → frontend custom messages: `LevelMsg`, `TileMsg`, `DoneMsg`, `ErrorMsg`, `CrossMsg`,
  each the JSON part of a message (TypeScript calls those of tiles and cross-sections
  `TileHeader` and `CrossHeader`); the binary buffers that travel with them are listed in
  `KERNEL_BUFFERS` and their byte lengths in `buffer_sizes`;
- frontend → kernel custom messages: `ReadyMsg`, `PickMsg`, `SnapshotMsg`.

The kernel builds every message with the constructor functions below (`status`, `tile_msg`,
...), so their shapes live here only, and reads every incoming message with `parse_frontend`,
which ignores a malformed one with a logged warning instead of raising in the comm thread.
`check_kernel` checks an outgoing message the way the frontend decodes it (the tests run every
message through it). Binary payloads are little-endian int32 / float32 buffers, never JSON
number lists.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypedDict, cast, get_type_hints

import numpy as np

from .typecheck import problems

log = logging.getLogger(__name__)

State = Literal["idle", "computing", "done", "error"]
"""What the worker is doing: `Status.state`."""


# ---- trait payloads ----------------------------------------------------------------------
class Status(TypedDict):
    """Progress of the kernel's worker, synced as the `status` trait (`{}` before it reports).

    Attributes:
        state: idle, computing, done or error.
        gen: the generation reported on.
        level: 0-based index of the level being computed (as in level and tile messages).
        levels: number of levels of the grid.
        fraction: fraction of the grid's points known.
        message: the error, for state "error" (else empty).
    """

    state: State
    gen: int
    level: int
    levels: int
    fraction: float
    message: str


class SurfaceInfo(TypedDict):
    """Geometry of the `surface` trait (float32, metrics × ny × nx), synced as `surface_info`
    (`{}` before the first complete surface).

    Attributes:
        gen: the generation of the surface.
        nx: columns (points along x).
        ny: rows (points along y).
        x: α coordinates of the columns.
        y: β coordinates of the rows.
        metrics: names of the metrics, in the order of the buffer.
        x_label: label of the x direction.
        y_label: label of the y direction.
    """

    gen: int
    nx: int
    ny: int
    x: list[float]
    y: list[float]
    metrics: list[str]
    x_label: str
    y_label: str


# ---- kernel → frontend -------------------------------------------------------------------
class LevelMsg(TypedDict):
    """Level `level` is the rectilinear subgrid rows × cols (finer levels contain coarser).

    Attributes:
        type: "level".
        gen: generation.
        level: 0-based level index.
        rows: row indices of the subgrid.
        cols: column indices of the subgrid.
    """

    type: Literal["level"]
    gen: int
    level: int
    rows: list[int]
    cols: list[int]


class _TileFields(TypedDict):
    type: Literal["tile"]
    gen: int
    level: int
    count: int
    metrics: list[str]


class TileMsg(_TileFields, total=False):
    """A batch of grid points; travels with 3 buffers: rows (int32 × count), cols (int32 ×
    count) and values (float32 × metrics × count, metric-major). TypeScript: `TileHeader`.

    Attributes:
        type: "tile".
        gen: generation.
        level: the level all its points belong to.
        count: number of points.
        metrics: names of the metrics, in the order of the values buffer.
        exact: False for interpolated values of an adaptive grid (optional; default True).
    """

    exact: bool


class DoneMsg(TypedDict):
    """Generation `gen` is complete (its surface is in the `surface` trait).

    Attributes:
        type: "done".
        gen: generation.
    """

    type: Literal["done"]
    gen: int


class ErrorMsg(TypedDict):
    """Generation `gen` failed; `message` says why ("ValueError: ...").

    Attributes:
        type: "error".
        gen: generation.
        message: the error, type and text.
    """

    type: Literal["error"]
    gen: int
    message: str


class CrossMsg(TypedDict):
    """Cross-sections through a picked point; travels with 4 buffers: xs (float32 × nx),
    along_x (float32 × metrics × nx), ys (float32 × ny), along_y (float32 × metrics × ny),
    metric-major. TypeScript: `CrossHeader`.

    Attributes:
        type: "cross".
        gen: generation.
        x0: α of the picked point (the section along y).
        y0: β of the picked point (the section along x).
        metrics: names of the metrics, in the order of the buffers.
        nx: points along x.
        ny: points along y.
    """

    type: Literal["cross"]
    gen: int
    x0: float
    y0: float
    metrics: list[str]
    nx: int
    ny: int


KernelMsg = LevelMsg | TileMsg | DoneMsg | ErrorMsg | CrossMsg
"""A custom message from the kernel (its JSON part)."""

KERNEL_MESSAGES: dict[str, type] = {
    "level": LevelMsg, "tile": TileMsg, "done": DoneMsg, "error": ErrorMsg, "cross": CrossMsg,
}
"""Message type → its TypedDict, kernel → frontend."""

KERNEL_BUFFERS: dict[str, int] = {"level": 0, "tile": 3, "done": 0, "error": 0, "cross": 4}
"""How many binary buffers each kernel message carries."""


# ---- frontend → kernel -------------------------------------------------------------------
class ReadyMsg(TypedDict):
    """A view mounted; the kernel replays the current generation's messages to it.

    Attributes:
        type: "ready".
    """

    type: Literal["ready"]


class PickMsg(TypedDict):
    """A click on the contour, in data coordinates (not snapped to the grid).

    Attributes:
        type: "pick".
        x: α of the click.
        y: β of the click.
    """

    type: Literal["pick"]
    x: float
    y: float


class SnapshotMsg(TypedDict):
    """The contour view as drawn after a "done"; travels with 1 buffer, the PNG bytes.

    Attributes:
        type: "snapshot".
        gen: the generation drawn.
    """

    type: Literal["snapshot"]
    gen: int


FrontendMsg = ReadyMsg | PickMsg | SnapshotMsg
"""A custom message from the frontend, validated by `parse_frontend`."""

FRONTEND_MESSAGES: dict[str, type] = {
    "ready": ReadyMsg, "pick": PickMsg, "snapshot": SnapshotMsg,
}
"""Message type → its TypedDict, frontend → kernel."""

FRONTEND_BUFFERS: dict[str, int] = {"ready": 0, "pick": 0, "snapshot": 1}
"""How many binary buffers each frontend message carries."""


# ---- constructors ------------------------------------------------------------------------
def f32(a: Any) -> bytes:
    """Little-endian float32 bytes of an array (the wire format of values)."""
    return np.ascontiguousarray(a, dtype="<f4").tobytes()


def i32(a: Any) -> bytes:
    """Little-endian int32 bytes of an array (the wire format of indices)."""
    return np.ascontiguousarray(a, dtype="<i4").tobytes()


def _floats(a: Any) -> list[float]:
    return [float(v) for v in np.asarray(a, dtype=np.float64).reshape(-1)]


def _ints(a: Any) -> list[int]:
    return [int(v) for v in np.asarray(a).reshape(-1)]


def status(
    state: State, gen: int, *, level: int = 0, levels: int = 0, fraction: float = 0.0,
    message: str = "",
) -> Status:
    """A `Status` of plain JSON types."""
    return {"state": state, "gen": int(gen), "level": int(level), "levels": int(levels),
            "fraction": float(fraction), "message": str(message)}


def surface_info(
    gen: int, x: Any, y: Any, metrics: Sequence[str], x_label: str, y_label: str
) -> SurfaceInfo:
    """The `SurfaceInfo` of a surface on the columns `x` and rows `y`."""
    xs, ys = _floats(x), _floats(y)
    return {"gen": int(gen), "nx": len(xs), "ny": len(ys), "x": xs, "y": ys,
            "metrics": list(metrics), "x_label": x_label, "y_label": y_label}


def level_msg(gen: int, level: int, rows: Any, cols: Any) -> LevelMsg:
    """Announces level `level` as the subgrid `rows` × `cols` (index arrays)."""
    return {"type": "level", "gen": int(gen), "level": int(level), "rows": _ints(rows),
            "cols": _ints(cols)}


def tile_msg(
    gen: int, level: int, rows: Any, cols: Any, values: Any, metrics: Sequence[str],
    *, exact: bool = True,
) -> tuple[TileMsg, list[bytes]]:
    """A tile message and its buffers; `values` is (metrics, count), metric-major."""
    rows, cols = np.asarray(rows), np.asarray(cols)
    vals = np.asarray(values, dtype=np.float64).reshape(len(metrics), len(rows))
    msg: TileMsg = {"type": "tile", "gen": int(gen), "level": int(level),
                    "count": len(rows), "metrics": list(metrics), "exact": bool(exact)}
    return msg, [i32(rows), i32(cols), f32(vals)]


def done_msg(gen: int) -> DoneMsg:
    """Generation `gen` is complete."""
    return {"type": "done", "gen": int(gen)}


def error_msg(gen: int, message: str) -> ErrorMsg:
    """Generation `gen` failed with `message`."""
    return {"type": "error", "gen": int(gen), "message": str(message)}


def cross_msg(
    gen: int, x0: float, y0: float, xs: Any, along_x: Mapping[str, Any], ys: Any,
    along_y: Mapping[str, Any],
) -> tuple[CrossMsg, list[bytes]]:
    """Cross-sections through (x0, y0): metric → values at `xs` (β = y0) and at `ys` (α = x0),
    as a message and its buffers."""
    metrics = list(along_x)
    xs, ys = np.asarray(xs), np.asarray(ys)
    msg: CrossMsg = {"type": "cross", "gen": int(gen), "x0": float(x0), "y0": float(y0),
                     "metrics": metrics, "nx": len(xs), "ny": len(ys)}
    buffers = [f32(xs), f32(np.stack([along_x[m] for m in metrics])), f32(ys),
               f32(np.stack([along_y[m] for m in metrics]))]
    return msg, buffers


# ---- validation --------------------------------------------------------------------------
def buffer_sizes(msg: Mapping[str, Any]) -> list[int]:
    """Byte lengths the buffers of a (well-formed) kernel message must have."""
    kind = msg["type"]
    if kind == "tile":
        n = msg["count"]
        return [4 * n, 4 * n, 4 * len(msg["metrics"]) * n]
    if kind == "cross":
        m, nx, ny = len(msg["metrics"]), msg["nx"], msg["ny"]
        return [4 * nx, 4 * m * nx, 4 * ny, 4 * m * ny]
    return [0] * KERNEL_BUFFERS[kind]


def check_kernel(content: Any, buffers: Sequence[Any] = ()) -> list[str]:
    """What is wrong with a kernel → frontend message and its buffers ([] when nothing):
    its fields, the number of buffers and their byte lengths (what the frontend checks)."""
    kind = content.get("type") if isinstance(content, dict) else None
    if not isinstance(kind, str) or kind not in KERNEL_MESSAGES:
        return [f"message: unknown type {kind!r}"]
    found = problems(KERNEL_MESSAGES[kind], content, kind)
    if found:
        return found
    sizes = [len(memoryview(b).cast("B")) for b in buffers]
    want = buffer_sizes(content)
    if sizes != want:
        return [f"{kind}: expected buffers of {want} bytes, got {sizes}"]
    return []


def parse_frontend(content: Any, buffers: Sequence[Any] | None = ()) -> FrontendMsg | None:
    """A frontend → kernel message, validated: its declared fields, or None (with a logged
    warning) when it is malformed (unknown type, missing or mistyped field, non-finite
    coordinates, wrong number of buffers). Never raises."""
    try:
        found = _frontend_problems(content, buffers)
    except Exception as exc:  # whatever arrives, the comm thread must not raise
        found = [f"{type(exc).__name__}: {exc}"]
    if found:
        log.warning("ignored a malformed message from the frontend (%s): %.200r",
                    "; ".join(found), content)
        return None
    declared = get_type_hints(FRONTEND_MESSAGES[content["type"]])
    return cast(FrontendMsg, {k: v for k, v in content.items() if k in declared})


def _frontend_problems(content: Any, buffers: Sequence[Any] | None) -> list[str]:
    kind = content.get("type") if isinstance(content, dict) else None
    if not isinstance(kind, str) or kind not in FRONTEND_MESSAGES:
        return [f"unknown type {kind!r}"]
    found = problems(FRONTEND_MESSAGES[kind], content, kind, extra=True)
    if kind == "pick" and not found:
        found += [f"pick.{k}: not finite" for k in ("x", "y") if not math.isfinite(content[k])]
    bufs = list(buffers or [])
    if len(bufs) != FRONTEND_BUFFERS[kind]:
        found.append(f"{kind}: expected {FRONTEND_BUFFERS[kind]} buffers, got {len(bufs)}")
    elif not all(isinstance(b, (bytes, bytearray, memoryview)) for b in bufs):
        found.append(f"{kind}: a buffer is not binary")
    return found
