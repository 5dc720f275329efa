"""The message protocol between the kernel and the frontend, Python side, declared once.

The same shapes as `js/src/protocol.ts` (tests/test_protocol.py compares the two files key by
key and type by type):

- trait payloads: `Status` (the `status` trait) and `SurfaceInfo` (the `surface_info` trait);
- kernel → frontend custom messages: `LevelMsg`, `TileMsg`, `DoneMsg`, `ErrorMsg`, `CrossMsg`,
  `PathMsg`, each the JSON part of a message (TypeScript calls those of tiles, cross-sections
  and paths `TileHeader`, `CrossHeader` and `PathHeader`); the binary buffers that travel
  with them are listed in `KERNEL_BUFFERS` and their byte lengths in `buffer_sizes`;
- the comparison view's shared colour scale: `ColorRange` (its `scale` trait);
- frontend → kernel custom messages: `ReadyMsg`, `PickMsg`, `SnapshotMsg`.

The shapes are declared in messages.py and re-exported here.

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
from typing import Any, cast, get_type_hints

import numpy as np

from .messages import (
    FRONTEND_BUFFERS,
    FRONTEND_MESSAGES,
    KERNEL_BUFFERS,
    KERNEL_MESSAGES,
    ColorRange,
    CrossMsg,
    DoneMsg,
    ErrorMsg,
    FrontendMsg,
    KernelMsg,
    LevelMsg,
    PathMsg,
    PickMsg,
    ReadyMsg,
    SnapshotMsg,
    State,
    Status,
    SurfaceInfo,
    TileMsg,
)
from .typecheck import problems

log = logging.getLogger(__name__)

__all__ = [
    "FRONTEND_BUFFERS",
    "FRONTEND_MESSAGES",
    "KERNEL_BUFFERS",
    "KERNEL_MESSAGES",
    "ColorRange",
    "CrossMsg",
    "DoneMsg",
    "ErrorMsg",
    "FrontendMsg",
    "KernelMsg",
    "LevelMsg",
    "PathMsg",
    "PickMsg",
    "ReadyMsg",
    "SnapshotMsg",
    "State",
    "Status",
    "SurfaceInfo",
    "TileMsg",
    "buffer_sizes",
    "check_kernel",
    "color_range",
    "cross_msg",
    "done_msg",
    "error_msg",
    "f32",
    "i32",
    "level_msg",
    "parse_frontend",
    "path_msg",
    "status",
    "surface_info",
    "tile_msg",
]


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


def path_msg(
    gen: int, alpha: Any, beta: Any, steps: Any, loss: Any, labels: Sequence[str]
) -> tuple[PathMsg, list[bytes]]:
    """A projected trajectory (one entry per snapshot) as a message and its buffers."""
    a, b = np.asarray(alpha, dtype=np.float64), np.asarray(beta, dtype=np.float64)
    msg: PathMsg = {"type": "path", "gen": int(gen), "count": len(a),
                    "labels": [str(t) for t in labels]}
    return msg, [f32(a), f32(b), i32(steps), f32(loss)]


def color_range(gen: int, metric: str, log: bool, lo: float, hi: float) -> ColorRange:
    """A `ColorRange` of plain JSON types."""
    return {"gen": int(gen), "metric": str(metric), "log": bool(log), "lo": float(lo),
            "hi": float(hi)}


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
    if kind == "path":
        return [4 * msg["count"]] * 4
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
    if kind == "path" and len(content["labels"]) != content["count"]:
        return [f"path: {len(content['labels'])} labels for {content['count']} snapshots"]
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
