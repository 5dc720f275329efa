"""The background worker of a LandscapeWidget: one thread that streams each generation.

Every `submit` starts a new generation; the thread abandons the old stream at the next tile
boundary (a cancelled stream is a generation number, never a killed thread) and consumes
`Landscape.stream(d1, d2, grid=...)`, sending the tiles in batches (stream.py) and, when the
stream ends, the complete surface to the widget's traits. Between tiles it answers picks with
cross-sections. Messages of a generation that is no longer current are never sent; a view
that mounts ("ready") gets the current generation's messages again, and only those.

Faults never stop the thread: anything the user's model or loss raises in it, a
KeyboardInterrupt included, becomes the "error" status and an error message.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Generator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from ..directions import Direction
from ..engine.landscape import Landscape
from ..engine.sampling import Grid
from ..results.records import Surface
from . import protocol
from .faults import describe, fatal
from .paths import PlanePath
from .stream import Job, Outgoing, Request, cross_section


class Screen(Protocol):
    """What the worker shows its results on: the widget's traits and comm."""

    status: Any
    surface: Any
    surface_info: Any

    def send(self, content: Any, buffers: Any = None) -> None:
        """Send a custom message to the frontend."""

    def hold_sync(self) -> AbstractContextManager[Any]:
        """Sync the traits set inside as one update."""


class Worker:
    """Streams the surfaces a widget asks for, one generation at a time, in a thread.

    Attributes:
        landscape: the `lw.Landscape` computed.
        thread: the thread (named "ls-widget-worker"); the widget starts it once set up.
        done: set when the current generation is complete or failed.
        surface: the latest complete `lw.Surface` (None until one finished).
        job: the generation streamed now or last (replaced by the thread, never changed).
    """

    def __init__(self, landscape: Landscape, screen: Screen) -> None:
        self.landscape, self._screen = landscape, screen
        self._cond = threading.Condition()
        self._closed = False
        self._latest: Request | None = None  # the current generation
        self._pending: Request | None = None  # ...until the thread takes it up
        self.job: Job | None = None
        self._picks: deque[tuple[int, float, float]] = deque()
        self.surface: Surface | None = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="ls-widget-worker", daemon=True)

    # ----------------------------------------------------------------- requests
    @property
    def generation(self) -> int:
        """The current generation (0 before the first request)."""
        return self._latest.gen if self._latest is not None else 0

    def submit(self, d1: Direction, d2: Direction, grid: Grid, *, adaptive: bool, tol: float,
               publish: Callable[[int], None], path: PlanePath | None = None) -> int:
        """Make the plane of d1, d2 on `grid` the next generation and return its number;
        `path` is drawn over it (sent before its tiles).

        `publish(gen)` runs under the worker's lock, before the thread can send anything of
        the new generation: the widget sets its traits there."""
        with self._cond:
            request = Request(self.generation + 1, d1, d2, grid, adaptive, tol, path)
            self._pending = self._latest = request
            self.done.clear()
            publish(request.gen)
            self._cond.notify_all()
        return request.gen

    def pick(self, x: float, y: float) -> None:
        """Cross-sections through (x, y) of the current generation, sent when computed."""
        with self._cond:
            self._picks.append((self.generation, x, y))
            self._cond.notify_all()

    def replay(self) -> None:
        """A view mounted: resend what the current generation has sent so far."""
        with self._cond:
            job = self.job
            msgs = list(job.sent) if job and job.request.gen == self.generation else []
        for content, buffers in msgs:
            self._screen.send(content, buffers)

    def first_tile(self) -> BaseException | None:
        """Block until the current generation's first tile arrived (or its stream ended, or
        a newer generation or `close` replaced it). Returns the error that ended it first."""
        with self._cond:
            request = self._latest
            while request is not None and not (
                request.started or self._closed or request is not self._latest
            ):
                self._cond.wait()
            return request.error if request is not None else None

    def close(self) -> None:
        """Stop the thread at its next tile boundary and join it (unless called from it)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self.thread.is_alive() and threading.current_thread() is not self.thread:
            self.thread.join(timeout=10)

    # ----------------------------------------------------------------- thread
    def _loop(self) -> None:
        while True:
            with self._cond:
                while not (self._closed or self._pending is not None or self._picks):
                    self._cond.wait()
                if self._closed:
                    return
                request, self._pending = self._pending, None
            try:
                if request is not None:
                    self._run(request)
                self._serve_picks()
            except BaseException as exc:  # a fault of ours: show it, keep the worker alive
                if fatal(exc):
                    raise
                self._fail(self.generation, exc)

    def _run(self, request: Request) -> None:
        """Stream one generation; show its surface, or the fault that ended it."""
        job = Job(request, self.landscape.metric_names)
        with self._cond:
            self.job = job
        error = None
        try:
            if self._stream(job):
                self._finish(job)
        except BaseException as exc:  # the user's model or loss failed: show it, keep working
            if fatal(exc):
                raise
            error = exc
            self._fail(request.gen, exc)
        finally:
            self._started(request, error)

    def _stream(self, job: Job) -> bool:
        """Send the tiles of a generation; True if it is still current once they are all
        sent (False: abandoned for a newer one, or closed)."""
        req = job.request
        # set_view checked the grid's size: the caller got any refusal.
        stream = self.landscape.stream(req.d1, req.d2, grid=req.grid, adaptive=req.adaptive,
                                       tol=req.tol, force=True)
        try:
            for tile in stream:
                self._started(req)
                if self._stale(req.gen):
                    break
                self._send(job, job.take(tile, flush=bool(self._picks)))
                if self._picks:
                    self._serve_picks()
            else:
                self._send(job, job.flush())
        finally:
            if isinstance(stream, Generator):  # at once, not when collected: ends its work
                stream.close()
        return not self._stale(req.gen)

    def _send(self, job: Job, outgoing: list[Outgoing]) -> None:
        for msg, buffers, status in outgoing:
            if self._emit(job, msg, buffers) and status is not None:
                self._screen.status = status

    def _finish(self, job: Job) -> None:
        surf, traits = job.surface(self.landscape), job.finished()
        with self._cond:
            if job.request.gen != self.generation:
                return
            self.surface = surf
            with self._screen.hold_sync():
                for name, value in traits.items():
                    setattr(self._screen, name, value)
        self._emit(job, protocol.done_msg(job.request.gen))
        self.done.set()

    def _fail(self, gen: int, exc: BaseException) -> None:
        message = describe(exc)
        with self._cond:
            if gen != self.generation:
                return
            job = self.job
        self._screen.status = protocol.status("error", gen, message=message)
        if job is not None:
            self._emit(job, protocol.error_msg(gen, message))
        self.done.set()

    def _serve_picks(self) -> None:
        """Answer the latest pick (older ones are dropped) with its cross-sections."""
        while True:
            with self._cond:
                if not self._picks:
                    return
                gen, x0, y0 = self._picks.pop()
                self._picks.clear()  # only the latest click matters
                job = self.job
            if job is None or gen != job.request.gen:
                continue
            try:
                msg, buffers = cross_section(self.landscape, job.request, x0, y0)
            except BaseException as exc:  # as in _run: shown, and the worker goes on
                if fatal(exc):
                    raise
                self._fail(gen, exc)
                continue
            self._emit(job, msg, buffers)

    def _emit(self, job: Job, content: protocol.KernelMsg, buffers: Sequence[bytes] = ()) -> bool:
        """Send a message of `job`'s generation, unless it is no longer current (False)."""
        bufs = list(buffers)
        with self._cond:
            if job.request.gen != self.generation or self._closed:
                return False
            job.sent.append((content, bufs))
        self._screen.send(content, bufs)
        return True

    def _stale(self, gen: int) -> bool:
        return self._closed or self._pending is not None or gen != self.generation

    def _started(self, request: Request, error: BaseException | None = None) -> None:
        with self._cond:
            if not request.started:
                request.started, request.error = True, error
                self._cond.notify_all()
