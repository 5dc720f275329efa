"""The shapes panel's background work: labels and gallery curves in one thread, mining in
another.

- `Background`: named tasks run one at a time in a daemon thread that starts when a task is
  queued and ends when none is left; a task queued again replaces the one still waiting (the
  latest request wins). Every fault (a KeyboardInterrupt raised in the loss included) goes to
  an error handler, never into the kernel, and the next task runs as usual.
- `ShapeWork` ("ls-widget-shapes"): classifies each finished surface and cross-section pair
  (`classify_surface`, `classify`) and computes the gallery's curves, ``land.line(d, span,
  n=21)``: the same call, so the same bits, as computing them directly. A curve is computed
  again only when its direction or the span changed.
- `MiningJob` ("ls-widget-mining"): one ``land.mine`` at a time, reporting its steps to the
  panel and stopping at the next step when cancelled.

Threads only ever take their own lock briefly and the axis controls' lock for bank reads: the
view's worker calls in here (a surface finished, a cross-section sent) while holding its own
lock, so nothing here may wait on the view.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from ..directions import Direction
from ..engine.landscape import Landscape
from ..results.records import Curve, Surface
from ..shapes.classify import CurveShape, classify
from ..shapes.surface import SurfaceShape, classify_surface
from .bank import DirectionBank
from .faults import describe, fatal
from .panels import fmt
from .scope import draw
from .shapes_panel import MINE_KINDS, ShapesPanel

GALLERY_POINTS = 21
"""Points of each gallery curve."""

_PROGRESS_INTERVAL = 0.1  # seconds between progress updates shown (display only)


class Background:
    """Named tasks, one at a time, in a daemon thread `name` (see the module)."""

    def __init__(self, name: str, on_error: Callable[[str, BaseException], Any]) -> None:
        self._name, self._on_error = name, on_error
        self._lock = threading.Lock()
        self._queue: dict[str, Callable[[], Any]] = {}  # in the order queued
        self._thread: threading.Thread | None = None
        self._idle = threading.Event()
        self._idle.set()
        self.closed = False

    def submit(self, task: str, fn: Callable[[], Any]) -> None:
        """Queue `fn` as `task` (replacing a `task` still waiting); starts the thread."""
        with self._lock:
            if self.closed:
                return
            self._queue.pop(task, None)
            self._queue[task] = fn
            self._idle.clear()
            if self._thread is None:
                thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                try:
                    thread.start()
                except BaseException:  # e.g. "can't start new thread": nothing pending
                    self._queue.clear()
                    self._idle.set()
                    raise
                self._thread = thread

    def waiting(self, task: str) -> bool:
        """Whether `task` is queued (a newer request than the one running)."""
        with self._lock:
            return task in self._queue

    @property
    def busy(self) -> bool:
        """Whether a task runs or waits."""
        return not self._idle.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no task runs or waits. True if within `timeout` seconds."""
        return self._idle.wait(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Drop the waiting tasks and join the thread (the running task ends first)."""
        with self._lock:
            self.closed = True
            self._queue.clear()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._lock:
                if self.closed or not self._queue:
                    self._thread = None
                    self._idle.set()
                    return
                task = next(iter(self._queue))
                fn = self._queue.pop(task)
            try:
                fn()
            except BaseException as exc:  # never into the kernel: a thread has no caller
                if fatal(exc):
                    raise
                self._on_error(task, exc)


class Cross(NamedTuple):
    """A pair of cross-sections through (x0, y0) of generation `gen`: the loss along x
    (β = y0) at `xs` and along y (α = x0) at `ys`."""

    gen: int
    x0: float
    y0: float
    xs: np.ndarray
    along_x: np.ndarray
    ys: np.ndarray
    along_y: np.ndarray


class ShapeLabels(NamedTuple):
    """The kinds shown on the label line (None: not known yet)."""

    surface: SurfaceShape | None
    x: CurveShape | None
    y: CurveShape | None
    where: str


@dataclass
class GalleryEntry:
    """A gallery curve: the direction it follows, the curve and its shape once computed.

    `seed` is set for the bank's random directions (the bank's own entry of `label`, or one
    drawn over its scope); the others keep their `direction`, made by `build` in the thread
    when it has none (a constructed direction: built again after a fault)."""

    label: str
    seed: int | None = None
    direction: Direction | None = None
    build: Callable[[], Direction] | None = None
    span: float | None = None
    curve: Curve | None = None
    shape: CurveShape | None = None
    error: str | None = None


class ShapeWork:
    """The label line and the gallery curves, computed in "ls-widget-shapes".

    Attributes:
        entries: bank label → `GalleryEntry`, in gallery order.
        labels: the kinds on the label line (None before the first).
        error: the last fault of the label line, or None.
    """

    def __init__(self, landscape: Landscape, bank: DirectionBank, lock: Any,
                 panel: ShapesPanel) -> None:
        self._land, self._bank, self._bank_lock, self._panel = landscape, bank, lock, panel
        self.metric = landscape.metric_names[0]  # the loss ("train/loss" for named sets)
        self._jobs = Background("ls-widget-shapes", self._failed)
        self._lock = threading.Lock()
        self._surface: tuple[int, Surface] | None = None
        self._cross: Cross | None = None
        self._span = 1.0
        self._drawn: dict[tuple[int, tuple[str, ...]], Direction] = {}
        self.entries: dict[str, GalleryEntry] = {}
        self.labels: ShapeLabels | None = None
        self.error: str | None = None

    # ----------------------------------------------------------------- events
    def surface_done(self, gen: int, surface: Surface) -> None:
        """A surface finished: label it, and bring the gallery to its span."""
        with self._lock:
            self._surface = (gen, surface)
            cross = self._cross if self._cross is not None and self._cross.gen == gen else None
            self._span = float(max(abs(surface.x[0]), abs(surface.x[-1])))
        self._jobs.submit("labels", lambda: self._label(surface, cross))
        self.refresh()

    def cross_done(self, cross: Cross) -> None:
        """A pair of cross-sections was sent: label it (with its surface once complete)."""
        with self._lock:
            self._cross = cross
            surface = self._surface[1] if self._surface and self._surface[0] == cross.gen else None
        self._jobs.submit("labels", lambda: self._label(surface, cross))

    def add(self, entry: GalleryEntry, span: float | None = None) -> None:
        """Put `entry` in the gallery (its curve computed unless given); `span` sets the
        gallery's span before any surface did."""
        card = self._panel.card(entry.label)  # before the thread can see the entry
        if entry.curve is not None and entry.shape is not None:
            card.set_curve(entry.curve.x, entry.curve.values[self.metric], entry.shape)
        with self._lock:
            self.entries[entry.label] = entry
            if span is not None and self._surface is None:
                self._span = span
        self.refresh()

    def refresh(self) -> None:
        """Compute the gallery curves whose direction or span changed."""
        self._jobs.submit("gallery", self._refresh)

    # ----------------------------------------------------------------- state
    def direction(self, entry: GalleryEntry, *, build: bool = True) -> Direction | None:
        """The direction of a gallery entry now: a random seed's is the bank's entry of its
        label, or one drawn over the bank's scope (kept per scope); another's is its own,
        built first if it has none and `build` (None if it has none)."""
        if entry.seed is None:
            if entry.direction is None and entry.build is not None and build:
                entry.direction = entry.build()
            return entry.direction
        with self._bank_lock:
            d, scope = self._bank.get(entry.label), self._bank.scope
        if d is not None:
            return d
        key = (entry.seed, scope.names)
        if key not in self._drawn:
            self._drawn[key] = draw(self._land.model, entry.seed, scope)
        return self._drawn[key]

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the labels and the gallery are up to date. True if within `timeout`."""
        return self._jobs.wait(timeout)

    @property
    def busy(self) -> bool:
        """Whether labels or curves are being computed."""
        return self._jobs.busy

    def close(self) -> None:
        """Drop what waits; join the thread (after the curve or label under way)."""
        self._jobs.close()

    # ----------------------------------------------------------------- thread
    def _label(self, surface: Surface | None, cross: Cross | None) -> None:
        m = self.metric
        shape = classify_surface(surface, metric=m) if surface is not None else None
        if cross is not None:
            # A pick made from Python may lie off the grid: the nearest end stands for it.
            x = classify((cross.xs, cross.along_x), metric=m,
                         center=float(np.clip(cross.x0, cross.xs[0], cross.xs[-1])))
            y = classify((cross.ys, cross.along_y), metric=m,
                         center=float(np.clip(cross.y0, cross.ys[0], cross.ys[-1])))
            where = f"cross-sections through α = {fmt(cross.x0)}, β = {fmt(cross.y0)}"
        elif surface is not None:
            x = classify(surface, metric=m, along="x", at=0.0)
            y = classify(surface, metric=m, along="y", at=0.0)
            where = "cross-sections through the model"
        else:
            return
        self.labels, self.error = ShapeLabels(shape, x, y, where), None
        self._panel.show_labels(shape, x, y, where)

    def _refresh(self) -> None:
        with self._lock:
            span, labels = self._span, list(self.entries)
        for label in labels:
            if self._jobs.closed or self._jobs.waiting("gallery"):
                return  # the newer refresh computes what is still stale
            entry = self.entries[label]
            try:
                d = self.direction(entry)
                if d is None or (entry.curve is not None and entry.direction is d
                                 and entry.span == span):
                    continue
                curve = self._land.line(d, span=span, n=GALLERY_POINTS, progress=False)
                shape = classify(curve, metric=self.metric)
            except BaseException as exc:  # one curve's fault, shown on its card
                if fatal(exc):
                    raise
                if self._jobs.closed:
                    return
                entry.error = describe(exc)
                self._panel.card(label).set_error(entry.error)
                continue
            if self._jobs.closed:
                return
            entry.direction, entry.span, entry.curve, entry.shape = d, span, curve, shape
            entry.error = None
            self._panel.card(label).set_curve(curve.x, curve.values[self.metric], shape)

    def _failed(self, task: str, exc: BaseException) -> None:
        self.error = describe(exc)
        if task == "labels":
            self._panel.show_labels_error(self.error)


class MiningJob:
    """One `Landscape.mine` at a time, in "ls-widget-mining", cancellable.

    Attributes:
        result: the last `Mined` that ran to its end (not cancelled), or None.
        error: the fault of the last run, or None.
        cancelled: whether the last run was cancelled.
    """

    def __init__(self, landscape: Landscape, panel: ShapesPanel,
                 on_mined: Callable[[str, int, Any], str]) -> None:
        self._land, self._panel, self._on_mined = landscape, panel, on_mined
        self._jobs = Background("ls-widget-mining", self._failed)
        self._cancel = threading.Event()
        self.result: Any = None
        self.error: str | None = None
        self.cancelled = False

    @property
    def running(self) -> bool:
        """Whether a run is under way."""
        return self._jobs.busy

    def start(self, kind: str, *, steps: int, budget: float | None, seed: int, span: float
              ) -> None:
        """Mine a direction of `kind` (see `ShapesControl.mine`) in the background."""
        if kind not in MINE_KINDS:
            raise ValueError(f"cannot mine kind={kind!r}; choose from {MINE_KINDS}")
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps={steps!r}: give a positive int, e.g. steps=200")
        if self.running:
            raise RuntimeError(
                "a direction is being mined; wait for it (wait_mining()) or cancel it (the "
                "panel's cancel button, or cancel_mining()) before mining another"
            )
        cancel = self._cancel = threading.Event()
        self.error, self.cancelled = None, False
        self._panel.mining_started(kind, steps)
        try:
            self._jobs.submit("mine", lambda: self._mine(kind, steps, budget, seed, span,
                                                         cancel))
        except BaseException:
            self._panel.mining_ended("mining could not start", error=True, done=False)
            raise

    def cancel(self) -> None:
        """Stop the run at its next step (nothing is added)."""
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no run is under way. True if within `timeout` seconds."""
        return self._jobs.wait(timeout)

    def close(self) -> None:
        """Cancel the run and join its thread (it stops at its next step)."""
        self._cancel.set()
        self._jobs.close()

    def _mine(self, kind: str, steps: int, budget: float | None, seed: int, span: float,
              cancel: threading.Event) -> None:
        t0 = last = time.perf_counter()

        def report(step: int, objective: float, _: Any) -> None:
            nonlocal last
            now = time.perf_counter()
            if now - last >= _PROGRESS_INTERVAL:  # timing decides only what is shown
                last = now
                self._panel.mining_progress(step, float(objective),
                                            f" · {now - t0:.1f} s")

        mined = self._land.mine(kind, span=span, n=GALLERY_POINTS, steps=steps, budget=budget,
                                seed=seed, progress=False, cancel=cancel, callback=report)
        if self._jobs.closed:
            return  # the explorer closed meanwhile: nothing to show it on
        done = int(mined.direction.provenance.get("steps", 0))
        if mined.direction.provenance.get("stopped") == "cancelled":
            self.cancelled = True
            self._panel.mining_ended(f"cancelled at step {done}; nothing was added",
                                     done=False)
            return
        self.result = mined
        label = self._on_mined(kind, seed, mined)
        shape = mined.shape
        verdict = (f"{kind} reached" if mined.reached else
                   f"{kind} not reached (the curve is a {shape.kind})")
        self._panel.mining_ended(
            f"{verdict} in {done} steps, {time.perf_counter() - t0:.1f} s (margin "
            f"{shape.margin:.2f}); added to the bank as “{label}”"
        )

    def _failed(self, _: str, exc: BaseException) -> None:
        self.error = describe(exc)
        self._panel.mining_ended(f"mining failed: {self.error}", error=True, done=False)
