"""LandscapeWidget: streams a Landscape's tiles to the browser and keeps the last picture.

The widget is the anywidget model: its synced traits (below, each with its docstring), the
view's settings (`set_view`) and the messages from the frontend. The computing happens in its
`Worker` (worker.py); the message shapes are declared in protocol.py. Every change of settings
bumps `generation`; tiles travel as custom messages with little-endian binary buffers, batched
to stay under ~40 messages/s. The last complete surface is also kept in the binary `surface`
trait, which an HTML export redraws without a kernel; a saved notebook keeps the frontend's PNG
of the picture in an output beside the view (`picture`, snapshot.py).

Faults never stop the worker: anything the user's model or loss raises in it, a
KeyboardInterrupt included, becomes the "error" status and an error message, and the next
view computes as usual. A widget that fails to construct stops its worker and closes its comm
before the error reaches the caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anywidget
import numpy as np
import traitlets as t

from ..directions import Direction
from ..engine.landscape import Landscape
from ..engine.sampling import Grid
from ..results.records import Surface
from . import protocol
from .paths import PathOverlay
from .snapshot import StaticPicture, describe, display_with_picture
from .view_export import ViewExports
from .worker import Worker

STATIC = Path(__file__).parent.parent / "static"
"""The built frontend: widget.js and widget.css (`make js`)."""


def bundle(name: str) -> Path:
    """The path of a built frontend file, or a FileNotFoundError saying how to build it."""
    path = STATIC / name
    if not path.exists():
        raise FileNotFoundError(
            f"the widget's frontend bundle {path} is missing; build it with `make js` "
            "(or reinstall ls-widget from a wheel)"
        )
    return path


class LandscapeWidget(ViewExports, anywidget.AnyWidget):
    """Contour view of a loss surface that sharpens tile by tile, with 1D cross-sections."""

    _esm = bundle("widget.js")
    _css = bundle("widget.css")

    generation = t.Int(0).tag(sync=True)
    """Bumped on every change of settings; the frontend drops tiles of older generations."""

    grid_x = t.List(t.Float()).tag(sync=True)
    """α coordinates (columns) of the current grid."""

    grid_y = t.List(t.Float()).tag(sync=True)
    """β coordinates (rows) of the current grid."""

    x_label = t.Unicode("").tag(sync=True)
    """Axis label of d₁, from its provenance (e.g. "random #0, filter-norm")."""

    y_label = t.Unicode("").tag(sync=True)
    """Axis label of d₂."""

    metric_names = t.List(t.Unicode()).tag(sync=True)
    """Metrics computed at every point, "loss" first."""

    metric = t.Unicode("loss").tag(sync=True)
    """The metric drawn in the contour view."""

    log_scale = t.Bool(False).tag(sync=True)
    """Colour scale and isolines on a log scale."""

    colormap = t.Unicode("viridis").tag(sync=True)
    """Name of the colormap (viridis, magma, inferno, plasma, cividis, turbo)."""

    n_levels = t.Int(12).tag(sync=True)
    """Number of isolines."""

    status = t.Dict().tag(sync=True)
    """Progress of the worker, a `protocol.Status` ({} before it first reports)."""

    surface = t.Bytes(b"").tag(sync=True)
    """The last complete surface: float32 little-endian, metrics × ny × nx."""

    surface_info = t.Dict().tag(sync=True)
    """Shape, coordinates, metrics and labels of `surface`, a `protocol.SurfaceInfo`."""

    def __init__(
        self,
        landscape: Landscape,
        d1: Direction,
        d2: Direction,
        *,
        span: Any = 1.0,
        n: int | Sequence[int] = 41,
        adaptive: bool = False,
        tol: float = 0.01,
        max_points: int | None = None,
        force: bool = False,
        path: PathOverlay | None = None,
        **traits: Any,
    ) -> None:
        self.landscape = landscape
        self.path = path
        """A training trajectory, drawn whenever the view shows the plane of its directions."""
        self.max_points = max_points
        """Grids of more points are refused (`Landscape.check_job`; None: its default)."""
        self.force = force
        """Compute grids of any size (no `check_job` refusal)."""
        # Set before the comm opens, so that close() (also run by __del__) works whatever
        # failed below.
        self._worker = Worker(landscape, self)
        self._snapshots: dict[int, bytes] = {}
        self._picked: tuple[float, float] | None = None  # the last click, for exports
        self.picture = StaticPicture()
        """The output below the view that keeps its last picture in a saved notebook."""
        self._own_layout = "layout" not in traits  # then close() closes it too
        # anywidget hooks every instance to the bundle's FileContents (hot reload) with a
        # closure over the widget, which keeps each widget and its landscape alive for good
        # (manzt/anywidget#929). The bundle's text, as an instance attribute, skips the hook.
        for key in ("_esm", "_css"):
            self.__dict__[key] = str(getattr(type(self), key))
        try:
            super().__init__(metric_names=list(landscape.metric_names), **traits)
            self.on_msg(self._on_frontend_msg)
            self.set_view(d1, d2, span=span, n=n, adaptive=adaptive, tol=tol)
            self._worker.thread.start()  # last: a refused view leaves no thread behind
        except BaseException:
            self.close()
            raise

    @property
    def surface_record(self) -> Surface | None:
        """The latest complete `lw.Surface` (None until one finished)."""
        return self._worker.surface

    def set_view(
        self,
        d1: Direction,
        d2: Direction,
        *,
        span: Any = 1.0,
        n: int | Sequence[int] = 41,
        adaptive: bool = False,
        tol: float = 0.01,
        max_points: int | None = None,
        force: bool | None = None,
    ) -> int:
        """Show the plane of d₁, d₂; restarts the stream. Returns the new generation.

        `span` and `n` as `lw.Grid.plane`. A grid over `max_points` points is refused with
        `lw.JobTooLarge` (stating the estimated time and memory) unless `force`; both default
        to the widget's settings. A refused or invalid view leaves the current one as it is.
        """
        for name, d in (("d1", d1), ("d2", d2)):
            if not isinstance(d, Direction):
                raise TypeError(
                    f"{name} must be an lw.Direction, got {type(d).__name__}; build one with "
                    "lw.directions.random(model)"
                )
        grid = Grid.plane(span, n)
        self.landscape.check_job(
            grid.size,
            max_points=self.max_points if max_points is None else max_points,
            force=self.force if force is None else force,
        )

        def publish(gen: int) -> None:
            with self.hold_sync():
                self.grid_x = grid.x.tolist()
                self.grid_y = grid.y.tolist()
                self.x_label = d1.label
                self.y_label = d2.label
                self.status = dict(protocol.status("computing", gen, levels=grid.levels))
                self.generation = gen

        path = self.path.on(d1, d2) if self.path is not None else None
        return self._worker.submit(d1, d2, grid, adaptive=adaptive, tol=tol, publish=publish,
                                   path=path)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the current generation is complete (or failed). True if it finished."""
        return self._worker.done.wait(timeout)

    def pick(self, x: float, y: float) -> None:
        """Compute the cross-sections through (x, y) and send them (as a click does)."""
        self._picked = (float(x), float(y))
        self._worker.pick(float(x), float(y))

    def known(self, gen: int) -> np.ndarray | None:
        """The values of generation `gen` known so far, (metrics, ny, nx) with NaN where not
        known yet; None unless `gen` is the generation streamed now (or last)."""
        job = self._worker.job  # read once: the thread replaces it with the next one
        return job.values.copy() if job is not None and job.request.gen == gen else None

    def close(self) -> None:
        """Stop the worker and close the widget."""
        self._worker.close()  # it stops at the next tile boundary
        super().close()
        # Our Layout is a widget of its own, open (and registered) until closed.
        layout = self._trait_values.get("layout") if self._own_layout else None
        if layout is not None:
            layout.close()

    def _first_tile(self) -> BaseException | None:
        """Block until the current view's first tile arrived (or its stream ended, or a newer
        view or close() replaced it). Returns the error that ended it before any tile."""
        return self._worker.first_tile()

    def _on_frontend_msg(self, _: Any, content: Any, buffers: list[bytes]) -> None:
        msg = protocol.parse_frontend(content, buffers)  # None (and a warning) if malformed
        if msg is None:
            return
        if msg["type"] == "ready":
            self._worker.replay()
        elif msg["type"] == "pick":
            self.pick(msg["x"], msg["y"])
        elif msg["type"] == "snapshot":
            self._snapshots = {msg["gen"]: bytes(buffers[0])}
            self.picture.update(msg["gen"], self._snapshots[msg["gen"]], describe(self))

    def _ipython_display_(self) -> None:
        """IPython shows the live view, then its last picture as a PNG output (snapshot.py)."""
        display_with_picture(self, self.picture)
