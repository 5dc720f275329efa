"""The explorer's "shapes" panel wired to its bank, axes and view (Xu et al. 2024).

`ShapesControl` (what `Explorer.shapes` returns) owns the `ShapesPanel` and its background
work (shapes_job.py): the labels follow every finished surface and every cross-section the
view sends; the gallery holds the curves of random directions (seeds 0–3), the constructed
v-side and every mined direction; a pick puts a direction on an axis through the bank and the
axis dropdown, as the Hessian panel's does. Constructed and mined directions join the bank
as soon as they exist, under labels of their own.

The explorer builds it on first use (`shapes_panel.ShapesMethods`), so that `explore()`
neither imports the classifiers nor computes anything of it until then.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..directions import Direction
from ..engine.landscape import Landscape
from ..results.records import Curve
from ..shapes.classify import CurveShape
from .bank import DirectionBank
from .controls import AxisControls
from .shapes_job import GALLERY_POINTS, Cross, GalleryEntry, MiningJob, ShapeLabels, ShapeWork
from .shapes_panel import MINE_KINDS, ShapesPanel

GALLERY_SEEDS = (0, 1, 2, 3)
"""Seeds of the gallery's random directions (the bank's "random #<seed>")."""

CONSTRUCTED = "v-side"
"""The constructed kind in the gallery: the normalized gradient (`Landscape.construct`)."""


def decode_cross(content: Mapping[str, Any], buffers: list[Any], metric: str) -> Cross | None:
    """The cross-sections of `metric` in a "cross" message (`protocol.cross_msg`: float32
    buffers), or None when it has no such metric."""
    metrics = list(content["metrics"])
    if metric not in metrics:
        return None
    i, nx, ny = metrics.index(metric), int(content["nx"]), int(content["ny"])
    xs, vx, ys, vy = (np.frombuffer(bytes(b), dtype="<f4").astype(np.float64) for b in buffers)
    return Cross(int(content["gen"]), float(content["x0"]), float(content["y0"]), xs,
                 vx.reshape(len(metrics), nx)[i], ys, vy.reshape(len(metrics), ny)[i])


class ShapesControl:
    """The shapes panel of an explorer and the work behind it.

    Attributes:
        panel: the `ShapesPanel` (labels, gallery, "mine" row).
        mined: every `Mined` record added to the bank, in order.
    """

    def __init__(self, landscape: Landscape, bank: DirectionBank, controls: AxisControls,
                 view: Any) -> None:
        self._land, self._bank, self._controls, self._view = landscape, bank, controls, view
        self.panel = ShapesPanel(on_pick=self.pick, on_cancel=self.cancel_mining,
                                 on_mine=lambda kind, steps: self.mine(kind, steps=steps),
                                 points=GALLERY_POINTS)
        self._work = ShapeWork(landscape, bank, controls.lock, self.panel)
        self._mining = MiningJob(landscape, self.panel, self._mined)
        self._seeds: dict[str, int] = {}  # kind → seed of its next mining run
        self._lock = threading.Lock()
        self._closed = False
        self.mined: list[Any] = []
        try:
            self._follow(float(controls.span.value))
        except BaseException:
            self.close()  # the threads started so far stop and are joined
            raise

    def _follow(self, span: float) -> None:
        """Fill the gallery, follow the view and the axes, and label what is shown now."""
        for seed in GALLERY_SEEDS:
            self._work.add(GalleryEntry(f"random #{seed}", seed=seed), span)
        label = self._bank.unique_label(f"constructed {CONSTRUCTED}")
        self._work.add(GalleryEntry(label, build=lambda: self._construct(label)), span)
        view = self._view
        view.observe(self._surface_done, names="surface_info")
        view.cross_listeners.append(self._cross_sent)
        for row in self._controls.axes.values():
            row.direction.observe(self._highlight, names="value")
        self._highlight()
        if view.last_cross is not None:  # a click before the panel opened
            self._cross_sent(*view.last_cross)
        if view.surface_record is not None:
            self._work.surface_done(int(view.surface_info["gen"]), view.surface_record)

    # ----------------------------------------------------------------- results
    @property
    def labels(self) -> ShapeLabels | None:
        """The kinds on the label line: the surface's and its x / y cross-sections'."""
        return self._work.labels

    @property
    def gallery(self) -> dict[str, tuple[Curve, CurveShape]]:
        """Bank label → (curve, shape) of each gallery curve computed so far."""
        return {label: (e.curve, e.shape) for label, e in list(self._work.entries.items())
                if e.curve is not None and e.shape is not None}

    @property
    def error(self) -> str | None:
        """The last fault of the label line, or None."""
        return self._work.error

    @property
    def mining_error(self) -> str | None:
        """The fault of the last mining run, or None."""
        return self._mining.error

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the labels and the gallery curves are up to date (or failed). True if
        within `timeout` seconds."""
        return self._work.wait(timeout)

    # ----------------------------------------------------------------- requests
    def pick(self, axis: str, label: str) -> None:
        """Put the direction of gallery curve `label` on `axis` ("x" or "y"): added to the
        bank if it is not there, then chosen in the axis dropdown (the view restarts)."""
        if axis not in ("x", "y"):
            raise ValueError(f"axis={axis!r}: give 'x' or 'y'")
        entry = self._work.entries.get(label)
        if entry is None:
            raise ValueError(f"no gallery curve {label!r}; choose from "
                             f"{list(self._work.entries)}")
        if label not in self._bank:
            d = self._work.direction(entry, build=False)
            if d is None:
                self.panel.show_mine_status(f"{label} is still being computed")
                return
            with self._controls.quiet():
                if entry.seed is not None:
                    self._bank.put_drawn(label, d)  # drawn again when the scope changes
                else:
                    self._bank.put(label, d)
                self._controls.set_options()
        self._controls.choose(axis, label)

    def mine(self, kind: str = "w-peak", *, steps: int = 200, budget: float | None = None
             ) -> None:
        """Mine a direction whose curve is of `kind` (``"w-peak"`` or ``"vvv-basin"``) in the
        background, ``land.mine(kind, span=<the view's span>, n=21, steps=steps,
        budget=budget, seed=...)``; progress shows in the panel, and the direction joins the
        bank and the gallery as "mined <kind> #<seed>" when done. The n-th run of a kind
        uses seed n − 1 (a run that failed or was cancelled does not count).

        Raises:
            ValueError: a kind that cannot be mined, or steps that are not a positive int.
            RuntimeError: a run is under way (wait for it or cancel it first).
        """
        if kind not in MINE_KINDS:
            raise ValueError(f"cannot mine kind={kind!r}; choose from {MINE_KINDS}")
        with self._lock:
            seed = self._seeds.get(kind, 0)
        self._mining.start(kind, steps=steps, budget=budget, seed=seed,
                           span=float(self._controls.span.value))

    def cancel_mining(self) -> None:
        """Stop the mining run at its next step; nothing is added."""
        self._mining.cancel()

    def wait_mining(self, timeout: float | None = None) -> bool:
        """Block until no mining run is under way. True if within `timeout` seconds."""
        return self._mining.wait(timeout)

    @property
    def mining(self) -> bool:
        """Whether a mining run is under way."""
        return self._mining.running

    def close(self) -> None:
        """Cancel mining, drop pending work and join both threads; stop following the view.
        Closing again does nothing."""
        if self._closed:
            return
        self._closed = True
        self._view.cross_listeners[:] = [f for f in self._view.cross_listeners
                                         if f != self._cross_sent]
        with contextlib.suppress(ValueError):  # not observed yet: a failed construction
            self._view.unobserve(self._surface_done, names="surface_info")
            for row in self._controls.axes.values():
                row.direction.unobserve(self._highlight, names="value")
        self._mining.close()
        self._work.close()

    # ----------------------------------------------------------------- callbacks
    def _surface_done(self, change: Mapping[str, Any]) -> None:
        # In the view's worker, under its lock: hand over and return.
        surface, gen = self._view.surface_record, change["new"].get("gen")
        if surface is not None and gen is not None:
            self._work.surface_done(int(gen), surface)

    def _cross_sent(self, content: Any, buffers: list[Any]) -> None:
        cross = decode_cross(content, buffers, self._work.metric)
        if cross is not None:
            self._work.cross_done(cross)

    def _highlight(self, _: Any = None) -> None:
        axes = self._controls.axes
        self.panel.set_selection(axes["x"].direction.value, axes["y"].direction.value)

    def _put(self, label: str, d: Direction) -> None:
        if self._closed:  # a thread finished after the explorer closed
            return
        with self._controls.quiet():  # from a thread too: as the Hessian's eigenvectors
            self._bank.put(label, d)
            self._controls.set_options()
        self._highlight()

    def _construct(self, label: str) -> Direction:
        d = self._land.construct(CONSTRUCTED)
        self._put(label, d)
        return d

    def _mined(self, kind: str, seed: int, mined: Any) -> str:
        label = self._bank.unique_label(f"mined {kind} #{seed}")
        self._put(label, mined.direction)
        with self._lock:
            self._seeds[kind] = seed + 1
            self.mined.append(mined)
        x = mined.curve.x
        self._work.add(GalleryEntry(label, direction=mined.direction, curve=mined.curve,
                                    shape=mined.shape,
                                    span=float(max(abs(x[0]), abs(x[-1])))))
        return label
