"""The explorer's controls: the axes (bank dropdowns, mix sliders, span and points sliders)
and the drawing settings (metric, colours, isolines, log scale).

The axis controls build the directions from the bank and restart the view on every change.
Their slider ranges are widened to hold the requested view, so controls
and picture agree from the start. The drawing controls are linked to the view's traits: they
redraw without recomputing.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import ipywidgets as W
import traitlets

from ..directions import Direction
from .scope import mixed
from .view import LandscapeWidget

COLORMAPS = ("viridis", "magma", "inferno", "plasma", "cividis", "turbo")
"""The colormaps the frontend draws with."""

_SPAN_EXPONENTS = (-2.0, 1.0, 0.05)  # span slider: 10⁻² to 10¹ in steps of 10^0.05
_POINTS = (5, 101, 2)  # points slider: odd counts by default, so the centre is the model
_ISOLINES = (2, 40)
_STYLE = {"description_width": "70px"}


def _layout() -> W.Layout:
    return W.Layout(width="260px")


def span_exponents(span: float) -> tuple[float, float]:
    """Exponent bounds of the span slider: the default range, widened to include `span` and
    shifted so that log10(span) is one of its steps (a slider shows its value on a step)."""
    lo, hi, step = _SPAN_EXPONENTS
    e = math.log10(span)
    lo = e - math.ceil((e - min(lo, e)) / step - 1e-9) * step
    hi = e + math.ceil((max(hi, e) - e) / step - 1e-9) * step
    # ipywidgets clamps the value into [10**lo, 10**hi]; rounding must not move span.
    return (lo - step if 10**lo > span else lo), (hi + step if 10**hi < span else hi)


def points_bounds(n: int, max_points: Any) -> tuple[int, int]:
    """Bounds of the points slider: the default range, widened to include `n`, with `n` on
    its steps (an even n gives even steps), and within `max_points` (n² points) so that no
    position is refused."""
    lo, hi, step = _POINTS
    lo = min(lo, n)
    lo -= (n - lo) % step
    hi = max(hi, n)
    if isinstance(max_points, numbers.Integral) and not isinstance(max_points, bool) and (
        int(max_points) > 0
    ):  # else the engine's limit (far above the default range) or its clear error
        hi = max(n, min(hi, math.isqrt(int(max_points))))
    return lo, hi - (hi - lo) % step


def check_view_args(
    labels: Sequence[str], x: str, y: str, metrics: Sequence[str], metric: str, span: Any,
    n: Any, colormap: Any, n_levels: Any,
) -> None:
    """The explorer's controls hold two bank labels (of `labels`), a metric (of `metrics`),
    one span, one point count, a colormap name and a count of isolines: refuse what they
    cannot show, naming the value and what to give."""
    for label in (x, y):
        if label not in labels:
            raise ValueError(f"no direction {label!r} in the bank; choose from {list(labels)}")
    check_view_settings(metrics, metric, span, n, colormap, n_levels)


def check_view_settings(
    metrics: Sequence[str], metric: str, span: Any, n: Any, colormap: Any, n_levels: Any,
    *, widget: str = "lw.LandscapeWidget",
) -> None:
    """A metric (of `metrics`), one span, one point count, a colormap name and a count of
    isolines, as the span, points and drawing controls hold them; `widget` is named as the
    way to other spans and grids."""
    if metric not in metrics:
        raise ValueError(f"metric {metric!r} is not computed; choose from {list(metrics)}")
    if isinstance(span, bool) or not isinstance(span, numbers.Real):
        raise TypeError(
            f"span={span!r}: the span slider takes one positive number s (both axes show "
            f"(-s, s)); for other ranges use {widget}(..., span=((xmin, xmax), (ymin, ymax)))"
        )
    if not (math.isfinite(float(span)) and float(span) > 0):
        raise ValueError(
            f"span={span!r}: give a positive, finite half-width s (both axes show (-s, s)), "
            "e.g. span=1.0"
        )
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(
            f"n={n!r}: the points slider takes one int (points per axis, the same on both); "
            f"for an nx × ny grid use {widget}(..., n=(nx, ny))"
        )
    if n < 2:
        raise ValueError(f"n={n!r}: a grid needs at least 2 points per axis; give n ≥ 2")
    if colormap not in COLORMAPS:
        raise ValueError(f"colormap {colormap!r} is not available; choose from {COLORMAPS}")
    if isinstance(n_levels, bool) or not isinstance(n_levels, numbers.Integral) or (
        int(n_levels) < _ISOLINES[0]
    ):
        raise ValueError(f"n_levels={n_levels!r}: give an int ≥ {_ISOLINES[0]} (isolines)")


def span_slider(span: float) -> W.FloatLogSlider:
    """The log slider of the view's half-width, its range widened to hold `span`."""
    lo, hi = span_exponents(span)
    return W.FloatLogSlider(
        span, base=10, min=lo, max=hi, step=_SPAN_EXPONENTS[2], description="span ±",
        style=_STYLE, layout=_layout(), readout_format=".3g",
    )


def points_slider(n: int, max_points: Any) -> W.IntSlider:
    """The slider of the points per axis, its range widened to hold `n` (see
    `points_bounds`)."""
    lo, hi = points_bounds(n, max_points)
    return W.IntSlider(n, min=lo, max=hi, step=_POINTS[2], description="points",
                       style=_STYLE, layout=_layout())


class AxisRow(NamedTuple):
    """The controls of one axis: a bank direction, blended with another by `mix`."""

    direction: W.Dropdown
    blend: W.Dropdown
    mix: W.FloatSlider


Shown = list[tuple[Direction | None, Direction | None, float]]


class AxisControls:
    """The x and y axes as bank dropdowns and mix sliders, and the span and points sliders.

    Once they `drive` a view, every change restarts it, except those this thread makes inside
    `quiet()` (which holds `lock`: bank edits, possibly from another thread, and reads of the
    axes take turns).

    Attributes:
        axes: "x" / "y" → `AxisRow`.
        span: the half-width of the view (log slider).
        points: points per axis.
        lock: held while the bank and dropdowns change and while the axes are read.
    """

    def __init__(
        self, bank: Mapping[str, Direction], *, x: str, y: str, span: float, n: int,
        max_points: int | None,
    ) -> None:
        self.bank = bank
        self.lock = threading.RLock()
        self._muted: int | None = None
        self._view: LandscapeWidget | None = None
        self._adaptive = False
        names = list(bank)
        self.axes: dict[str, AxisRow] = {}
        for ax, first in (("x", x), ("y", y)):
            other = next((k for k in names if k not in (x, y)), first)
            row = AxisRow(
                W.Dropdown(options=names, value=first, description=f"{ax} axis",
                           style=_STYLE, layout=_layout()),
                W.Dropdown(options=names, value=other, description="blend with",
                           style=_STYLE, layout=_layout()),
                W.FloatSlider(0.0, min=0.0, max=1.0, step=0.01, description="mix",
                              style=_STYLE, layout=_layout(), readout_format=".2f"),
            )
            row.mix.add_class(f"lsw-mix-{ax}")
            self.axes[ax] = row
        # Ranges widened to hold the requested view, which is then read back from the
        # sliders: controls and picture agree from the start.
        self.span = span_slider(span)
        self.points = points_slider(n, max_points)

    def drive(self, view: LandscapeWidget, *, adaptive: bool = False) -> None:
        """From now on, show every change of an axis, the span or the points on `view`
        (changes made inside `quiet()` by the same thread excepted: that thread restarts
        once, with `restart`)."""
        self._view, self._adaptive = view, adaptive

        def changed(change: Mapping[str, Any]) -> None:
            if self._muted != threading.get_ident():
                self.restart(change)

        for row in self.axes.values():
            for w in row:
                w.observe(changed, names="value")
        self.span.observe(changed, names="value")
        self.points.observe(changed, names="value")

    def restart(self, change: Mapping[str, Any] | None = None) -> None:
        """Show the axes' directions on the view, at the span and points of the sliders (a
        new generation). A refused view (e.g. `lw.JobTooLarge`) puts the control that
        `change` reports back to what is shown, and raises."""
        if self._view is None:
            return
        with self.lock:
            d1, d2 = self.directions()
            try:
                self._view.set_view(d1, d2, span=self.span.value, n=self.points.value,
                                    adaptive=self._adaptive)
            except BaseException:
                if change is not None:
                    with self.quiet():
                        change["owner"].value = change["old"]
                raise

    @contextlib.contextmanager
    def quiet(self) -> Iterator[None]:
        """Hold `lock` and mute this thread's change reports (the caller restarts once)."""
        with self.lock:
            outer, self._muted = self._muted, threading.get_ident()
            try:
                yield
            finally:
                self._muted = outer

    # ----------------------------------------------------------------- reading
    def direction(self, ax: str) -> Direction:
        """The direction of axis `ax`: its bank entry, blended by the mix slider (`mix`;
        labelled once with the parameter scope when both move the same one)."""
        a, b, t = self.axes[ax]
        da, db = self.bank[a.value], self.bank[b.value]
        if a.value == b.value or t.value == 0.0:
            return da
        if t.value == 1.0:
            return db
        return mixed(da, db, t.value)

    def directions(self) -> tuple[Direction, Direction]:
        """The directions of the x and y axes."""
        return self.direction("x"), self.direction("y")

    def state(self) -> tuple[tuple[str, str, float], ...]:
        """The labels and mix of both axes (to tell whether the user changed them)."""
        return tuple((a.value, b.value, t.value) for a, b, t in self.axes.values())

    def shown(self) -> Shown:
        """What the axes are made of: (direction, blend partner, mix) per axis."""
        return [(self.bank.get(a.value), self.bank.get(b.value), t.value)
                for a, b, t in self.axes.values()]

    def uses(self, label: str) -> bool:
        """Whether a dropdown of an axis shows `label`."""
        return any(label in (a.value, b.value) for a, b, _ in self.axes.values())

    # ----------------------------------------------------------------- writing
    def set_options(self, remap: Mapping[str, str] | None = None) -> None:
        """Refresh every dropdown's options from the bank, keeping its value (or moving it
        as `remap` says, or to the first entry if its direction left the bank). Call inside
        `quiet()`."""
        options = list(self.bank)
        for a, b, _ in self.axes.values():
            for w in (a, b):
                keep = (remap or {}).get(w.value, w.value)
                if keep not in self.bank:
                    keep = options[0]
                w.options = options  # ipywidgets resets the value to the first option here
                w.value = keep

    def select(self, ax: str, label: str) -> None:
        """Put bank entry `label` on axis `ax`, unblended (mix 0)."""
        row = self.axes[ax]
        row.direction.value, row.mix.value = label, 0.0

    def choose(self, ax: str, label: str) -> None:
        """Set the dropdown of axis `ax` to `label` if it is in the bank (a panel's pick)."""
        if label in self.bank:
            self.axes[ax].direction.value = label


def same_shown(a: Shown, b: Shown) -> bool:
    """Whether two `AxisControls.shown()` hold the same direction objects and mixes (a label
    can stay while its direction is new)."""
    return all(p is r and q is s and t == u for (p, q, t), (r, s, u) in zip(a, b, strict=True))


class DrawControls:
    """Metric, colormap, isolines and log scale, linked to the view's traits (no recompute).

    Attributes:
        metric: the metric drawn.
        log: colour scale and isolines on a log scale.
        colormap: one of `COLORMAPS`.
        levels: number of isolines.
    """

    def __init__(
        self, metrics: list[str], *, metric: str, log: bool, colormap: str, n_levels: int
    ) -> None:
        self.metric = W.Dropdown(options=metrics, value=metric, description="metric",
                                 style=_STYLE, layout=_layout())
        self.log = W.Checkbox(log, description="log scale", indent=False,
                              layout=W.Layout(width="110px"))
        self.colormap = W.Dropdown(options=COLORMAPS, value=colormap, description="colours",
                                   style=_STYLE, layout=_layout())
        self.levels = W.IntSlider(n_levels, min=_ISOLINES[0], max=max(_ISOLINES[1], n_levels),
                                  description="isolines", style=_STYLE, layout=_layout())

    def link(self, view: W.Widget) -> None:
        """Link each control to its trait of `view` (both ways)."""
        for src, trait in ((self.metric, "metric"), (self.log, "log_scale"),
                           (self.colormap, "colormap"), (self.levels, "n_levels")):
            traitlets.link((src, "value"), (view, trait))
