"""The message shapes between the kernel and the frontend, declared once (as TypedDicts).

`protocol.py` re-exports every name here and builds and validates the messages; see its
docstring for the whole protocol. `js/src/protocol.ts` declares the same shapes.
"""

from __future__ import annotations

from typing import Literal, TypedDict

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


class PathMsg(TypedDict):
    """A training trajectory projected on the plane of generation `gen`, drawn over its
    contours; travels with 4 buffers: alpha (float32 × count), beta (float32 × count), steps
    (int32 × count) and loss (float32 × count, NaN where no loss was recorded).
    TypeScript: `PathHeader`.

    Attributes:
        type: "path".
        gen: generation (the plane the snapshots were projected on).
        count: number of snapshots, in training order.
        labels: one hover text per snapshot ("step 120 · loss 0.41").
    """

    type: Literal["path"]
    gen: int
    count: int
    labels: list[str]


KernelMsg = LevelMsg | TileMsg | DoneMsg | ErrorMsg | CrossMsg | PathMsg
"""A custom message from the kernel (its JSON part)."""

KERNEL_MESSAGES: dict[str, type] = {
    "level": LevelMsg, "tile": TileMsg, "done": DoneMsg, "error": ErrorMsg, "cross": CrossMsg,
    "path": PathMsg,
}
"""Message type → its TypedDict, kernel → frontend."""

KERNEL_BUFFERS: dict[str, int] = {
    "level": 0, "tile": 3, "done": 0, "error": 0, "cross": 4, "path": 4,
}
"""How many binary buffers each kernel message carries."""


# ---- the comparison view ---------------------------------------------------------------
class ColorRange(TypedDict):
    """The colour scale shared by every panel of a comparison, synced as its `scale` trait
    (`{}` while no finite value is known): the range of the values of `metric` known so far
    over all panels (float32, as sent), positive ones only on a log scale.

    Attributes:
        gen: the generation of the panels it covers.
        metric: the metric drawn.
        log: whether the scale is logarithmic.
        lo: the smallest value.
        hi: the largest value.
    """

    gen: int
    metric: str
    log: bool
    lo: float
    hi: float


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
