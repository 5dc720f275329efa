"""One generation of a LandscapeWidget: what to compute, what arrived, what was sent.

- `Request`: the plane asked for (directions, `Grid`, adaptive refinement, the trajectory
  drawn over it) and its generation;
- `Job`: turns the tiles into the messages due (`Outgoing`): each level announced once, tiles
  batched (`Batch`: one message per level, at most one per `MIN_INTERVAL`); keeps the values
  known so far and every message sent (replayed to a view that mounts later);
- `cross_section`: the answer to a pick, the metrics along x and y through the point.

All of it is plain logic, no threads: the worker (worker.py) decides when and whether to send.
Every message is built by protocol.py.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from ..directions import Direction
from ..engine.landscape import Landscape
from ..engine.sampling import Grid, Tile
from ..results.records import Surface
from . import protocol
from .paths import PlanePath

MIN_INTERVAL = 0.025
"""Seconds between tile messages: at most 40 messages/s."""

CROSS_POINTS = 101
"""Points of each cross-section through a picked point."""


class Outgoing(NamedTuple):
    """A message to send, its buffers, and the status to show once it is sent (if any)."""

    msg: protocol.KernelMsg
    buffers: Sequence[bytes] = ()
    status: protocol.Status | None = None


@dataclass
class Request:
    """The plane one generation shows.

    Attributes:
        gen: the generation (the `generation` trait while it is current).
        d1: direction of the x axis.
        d2: direction of the y axis.
        grid: the plane's grid, the one value behind the traits, messages and stream.
        adaptive: evaluate finer levels only where interpolation misses.
        tol: tolerance of the adaptive refinement.
        path: the training trajectory drawn over the plane (None: none).
        started: the first tile arrived, or the stream ended (see `error`).
        error: what ended the stream before its first tile.
    """

    gen: int
    d1: Direction
    d2: Direction
    grid: Grid
    adaptive: bool
    tol: float
    path: PlanePath | None = None
    started: bool = False
    error: BaseException | None = None

    def path_msg(self) -> tuple[protocol.PathMsg, list[bytes]] | None:
        """The message drawing this plane's trajectory, if it has one."""
        p = self.path
        if p is None:
            return None
        return protocol.path_msg(self.gen, p.alpha, p.beta, p.steps, p.loss, p.labels)

    def surface_info(self, metrics: Sequence[str]) -> protocol.SurfaceInfo:
        """The `surface_info` trait of this generation's surface."""
        return protocol.surface_info(self.gen, self.grid.x, self.grid.y, metrics,
                                     self.d1.label, self.d2.label)


class Job:
    """One generation being streamed: turns its tiles into messages (`take`, `flush`), and
    keeps the values known so far and every message sent."""

    def __init__(self, request: Request, metrics: Sequence[str]) -> None:
        self.request = request
        self.metrics = tuple(metrics)
        shape = request.grid.shape
        self.values = np.full((len(self.metrics), *shape), np.nan)
        """(metrics, ny, nx), NaN where not known yet."""
        self.evaluated = np.zeros(shape, bool)
        """True where the model was evaluated (not interpolated)."""
        self.sent: list[tuple[protocol.KernelMsg, list[bytes]]] = []
        """Every message sent for this generation, in order (replayed on "ready")."""
        self._levels: set[int] = set()
        self._batch = Batch(request, self.metrics)

    def take(self, tile: Tile, *, flush: bool = False) -> list[Outgoing]:
        """Keep a tile; returns the messages due now: the plane's trajectory (if any) before
        anything else, a level's announcement before its first tile, and the batched tiles
        when the level changes, when the last message is `MIN_INTERVAL` old, or when
        `flush`."""
        out = self.flush() if self._batch.level not in (None, tile.level) else []
        if not self._levels:  # the first tile of the generation
            path = self.request.path_msg()
            out += [Outgoing(*path)] if path is not None else []
        announcement = self.announce(tile.level)
        if announcement is not None:
            out.append(Outgoing(announcement))
        self.record(tile)
        self._batch.add(tile)
        if flush or self._batch.due():
            out += self.flush()
        return out

    def flush(self) -> list[Outgoing]:
        """The tiles waiting, as one message (none if none wait)."""
        return [self._batch.take()] if self._batch.tiles else []

    def announce(self, level: int) -> protocol.LevelMsg | None:
        """The message announcing `level`, once: before the first tile of the level."""
        if level in self._levels:
            return None
        self._levels.add(level)
        rows, cols = self.request.grid.level_grid(level)
        return protocol.level_msg(self.request.gen, level, rows, cols)

    def record(self, tile: Tile) -> None:
        """Keep the values of a tile."""
        for i, m in enumerate(self.metrics):
            self.values[i, tile.rows, tile.cols] = tile.values[m]
        self.evaluated[tile.rows, tile.cols] = tile.exact

    def finished(self) -> dict[str, Any]:
        """The widget's traits once the generation is complete: `surface` (float32,
        metrics × ny × nx), `surface_info` and `status`."""
        req, levels = self.request, self.request.grid.levels
        return {
            "surface": protocol.f32(self.values),
            "surface_info": req.surface_info(self.metrics),
            "status": protocol.status("done", req.gen, level=levels - 1, levels=levels,
                                      fraction=1.0),
        }

    def surface(self, landscape: Landscape) -> Surface:
        """The complete surface as an `lw.Surface` record."""
        req = self.request
        return landscape.surface(
            req.grid, (req.d1, req.d2),
            {m: self.values[i] for i, m in enumerate(self.metrics)},
            self.evaluated, adaptive=req.adaptive,
        )


class Batch:
    """Tiles waiting to leave as one message: all of one level, flushed when `due`."""

    def __init__(self, request: Request, metrics: Sequence[str]) -> None:
        self.request = request
        self.metrics = tuple(metrics)
        self.tiles: list[Tile] = []
        self._last = 0.0

    @property
    def level(self) -> int | None:
        """The level of the tiles waiting (None when there are none)."""
        return self.tiles[0].level if self.tiles else None

    def add(self, tile: Tile) -> None:
        """Queue a tile (of the batch's level)."""
        self.tiles.append(tile)

    def due(self) -> bool:
        """Whether the last message left at least `MIN_INTERVAL` seconds ago."""
        return time.perf_counter() - self._last >= MIN_INTERVAL

    def take(self) -> Outgoing:
        """The waiting tiles as one message with its buffers and the status once it is
        sent; the batch is empty afterwards."""
        tiles, self.tiles = self.tiles, []
        self._last = time.perf_counter()
        rows = np.concatenate([t.rows for t in tiles])
        cols = np.concatenate([t.cols for t in tiles])
        vals = np.stack([np.concatenate([t.values[m] for t in tiles]) for m in self.metrics])
        gen, last = self.request.gen, tiles[-1]
        msg, buffers = protocol.tile_msg(gen, tiles[0].level, rows, cols, vals, self.metrics,
                                         exact=all(t.exact for t in tiles))
        status = protocol.status("computing", gen, level=last.level,
                                 levels=self.request.grid.levels, fraction=last.done)
        return Outgoing(msg, buffers, status)


def cross_section(
    landscape: Landscape, request: Request, x0: float, y0: float
) -> tuple[protocol.CrossMsg, list[bytes]]:
    """The metrics along x through β = y0 and along y through α = x0, over the request's
    span at `CROSS_POINTS` points, as a message and its buffers."""
    (xspan, yspan), dirs = request.grid.span, [request.d1, request.d2]
    xs = Grid.line(xspan, CROSS_POINTS).x
    ys = Grid.line(yspan, CROSS_POINTS).x
    along_x = landscape.evaluate(dirs, np.stack([xs, np.full_like(xs, y0)], 1))
    along_y = landscape.evaluate(dirs, np.stack([np.full_like(ys, x0), ys], 1))
    return protocol.cross_msg(request.gen, x0, y0, xs, along_x, ys, along_y)
