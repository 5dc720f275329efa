"""The colour scale shared by the panels of a comparison.

Every panel streams its own surface; one scale must hold them all, so that the same colour
means the same loss in every panel. `SharedScale` keeps, per panel, the range of the values of
the metric drawn that are known so far (as float32, the precision that travels), and publishes
their union, a `protocol.ColorRange`, whenever it changes: panels report from their worker
threads as their tiles are sent, the view when the metric, the scale or the plane changes.
Which values are known when depends on timing; the scale is display only, and once every
panel is complete it is the range of the complete surfaces.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import protocol

Range = tuple[float, float]


def value_range(values: np.ndarray, log: bool) -> Range | None:
    """(min, max) of the finite values (the positive ones on a log scale) after rounding to
    float32 as the frontend receives them; None when there are none."""
    v = np.asarray(values, dtype=np.float32)
    keep = np.isfinite(v) & (v > 0) if log else np.isfinite(v)
    if not keep.any():
        return None
    kept = v[keep]
    return float(kept.min()), float(kept.max())


def union(ranges: Sequence[Range | None]) -> Range | None:
    """The smallest range holding every given one (None when none is given)."""
    known = [r for r in ranges if r is not None]
    if not known:
        return None
    return min(lo for lo, _ in known), max(hi for _, hi in known)


class SharedScale:
    """The union of the panels' ranges of one metric, for one generation.

    Args:
        panels: how many panels share the scale.
        metrics: the metric names, in the order of the panels' value arrays.
        publish: receives the new `protocol.ColorRange` (or ``{}`` when nothing is known);
            called with the scale's lock held, so publications never overtake each other.
    """

    def __init__(
        self, panels: int, metrics: Sequence[str],
        publish: Callable[[protocol.ColorRange | dict[str, Any]], None],
    ) -> None:
        self._metrics = list(metrics)
        self._publish = publish
        self._lock = threading.Lock()
        self._ranges: list[Range | None] = [None] * panels
        self._key: tuple[int, str, bool] = (0, self._metrics[0], False)
        self._shown: Range | None = None

    def reset(self, gen: int, metric: str, log: bool) -> None:
        """Start over for generation `gen`, drawing `metric` (on a log scale if `log`)."""
        with self._lock:
            self._key = (int(gen), metric, bool(log))
            self._ranges = [None] * len(self._ranges)
            self._show(None)

    def update(self, panel: int, gen: int, values: np.ndarray | None) -> None:
        """Panel `panel` knows `values` ((metrics, ny, nx), NaN where unknown) of generation
        `gen`; ignored when `gen` is not the scale's generation (or `values` is None)."""
        with self._lock:
            want, metric, log = self._key
            if values is None or gen != want or metric not in self._metrics:
                return
            self._ranges[panel] = value_range(values[self._metrics.index(metric)], log)
            self._show(union(self._ranges))

    @property
    def current(self) -> Range | None:
        """The range published last (None: nothing known yet)."""
        with self._lock:
            return self._shown

    def _show(self, shown: Range | None) -> None:
        if shown == self._shown:
            return
        self._shown = shown
        gen, metric, log = self._key
        self._publish({} if shown is None else protocol.color_range(gen, metric, log, *shown))
