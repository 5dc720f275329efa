"""Faults in the widget layer: each is a clear error, and nothing is left behind.

A failed `explore()` stops and joins every thread it started and closes every widget it
made (the LandscapeWidget and its landscape become garbage); anything the user's loss raises
in a background thread, a KeyboardInterrupt included, shows as an error and the thread keeps
serving; the explorer's sliders always hold the view's values; oversized grids are refused
with the engine's `lw.JobTooLarge`.

Runs without a kernel (ipywidgets' dummy comm), like tests/test_widget.py.
"""

from __future__ import annotations

import gc
import math
import threading
import time
import weakref

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from ipywidgets.widgets import widget as ipyw
from torch import nn

import ls_widget as lw
from ls_widget.widget import explorer as app
from ls_widget.widget.view import LandscapeWidget

TIMEOUT = 60  # seconds: generous, for a busy machine


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    X, y = torch.randn(120, 8), torch.randint(0, 3, (120,))
    model = nn.Sequential(nn.Linear(8, 12), nn.Tanh(), nn.Linear(12, 3))
    return model, X, y


class Breakable:
    """Cross-entropy that raises `error(message)` once `armed` (on every call, or only under
    autograd with `grad_only`: then the surfaces work and the Hessian-vector products fail).

    A fresh exception each time, as a real loss raises: a kept one would hold its traceback,
    and with it the frames of our threads, alive."""

    def __init__(
        self, error: type[BaseException], message: str, *, grad_only: bool = False
    ) -> None:
        self.error, self.message = error, message
        self.grad_only = grad_only
        self.armed = False

    def __call__(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.armed and (torch.is_grad_enabled() or not self.grad_only):
            raise self.error(self.message)
        return F.cross_entropy(out, y)


class Sent:
    """Records every custom message a widget sends; `on_tile` runs in the worker as a tile
    message leaves, before the stream goes on."""

    def __init__(self, widget: LandscapeWidget) -> None:
        self.msgs: list[dict] = []
        self.on_tile = lambda content: None
        original = widget.send

        def send(content: dict, buffers: list[bytes] | None = None) -> None:
            self.msgs.append(content)
            if content["type"] == "tile":
                self.on_tile(content)
            original(content, buffers)

        widget.send = send  # type: ignore[method-assign]

    def of(self, kind: str, gen: int) -> list[dict]:
        return [c for c in list(self.msgs) if c["type"] == kind and c["gen"] == gen]


def ours() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("ls-widget-")}


def live(cls: type) -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if issubclass(type(o), cls))


def until(condition, timeout: float = TIMEOUT) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_failed_explore_leaves_no_thread_and_no_widget(tiny, monkeypatch):
    model, X, y = tiny
    made: list[weakref.ref] = []
    init = LandscapeWidget.__init__

    def recording(self, *args, **kwargs):
        made.append(weakref.ref(self))
        init(self, *args, **kwargs)

    monkeypatch.setattr(LandscapeWidget, "__init__", recording)
    raising = Breakable(ValueError, "labels out of range: fix the targets")
    raising.armed = True
    interrupting = Breakable(KeyboardInterrupt, "stopped inside the loss")
    interrupting.armed = True

    def panel_fails(**_):
        raise RuntimeError("the panel could not be built")

    first_tile = LandscapeWidget._first_tile

    def interrupted(self):  # Ctrl-C while explore() waits, the worker streaming
        first_tile(self)
        raise KeyboardInterrupt("Ctrl-C while waiting")

    kinds = [
        # (exception, match, explore kwargs, (object, name, replacement) to patch)
        (ValueError, "labels out of range", {"loss": raising}, None),
        (KeyboardInterrupt, "stopped inside the loss", {"loss": interrupting}, None),
        (lw.JobTooLarge, r"max_points=.*force=True", {"n": 5001}, None),
        (TypeError, r"d1 must be an lw\.Direction.*lw\.directions\.random",
         {"directions": {"oops": {"0.weight": 1}}, "x": "oops"}, None),
        (ValueError, "positive int", {"hessian": 0}, None),
        (ValueError, "exceeds the number of parameters", {"hessian": 10**6}, None),
        (RuntimeError, "panel could not be built", {}, (app, "HessianPanel", panel_fails)),
        (KeyboardInterrupt, "Ctrl-C", {"n": 41},
         (LandscapeWidget, "_first_tile", interrupted)),
        (ValueError, r"span=-1.*positive", {"span": -1}, None),
        (ValueError, r"n=1.*n ≥ 2", {"n": 1}, None),
        (ValueError, r"colormap 'jet'.*choose from", {"colormap": "jet"}, None),
    ]
    threads = ours()
    widgets = len(ipyw._instances)
    landscapes = live(lw.Landscape)
    explorers = live(lw.Explorer)
    for i in range(20):
        exc, match, kwargs, patch = kinds[i % len(kinds)]
        kwargs = {"n": 7, "span": 0.5, **kwargs}
        with monkeypatch.context() as m:
            if patch is not None:
                m.setattr(*patch)
            with pytest.raises(exc, match=match):
                lw.explore(model, (X, y), **kwargs)
        # Stopped and joined before the error reached us: no waiting here.
        assert ours() <= threads, f"{kwargs}: left {ours() - threads}"
    assert len(made) >= 14, "most kinds fail after the LandscapeWidget was built"
    assert ours() <= threads
    gc.collect()
    assert [r for r in made if r() is not None] == [], "a failed LandscapeWidget is alive"
    assert len(ipyw._instances) == widgets, "a widget of a failed explore() is still open"
    assert live(lw.Landscape) == landscapes
    assert live(lw.Explorer) == explorers


def test_closed_explorer_leaves_nothing(tiny):
    model, X, y = tiny
    widgets = len(ipyw._instances)
    threads = ours()
    e = lw.explore(model, (X, y), n=7, span=0.5)
    assert e.wait(TIMEOUT)
    view = weakref.ref(e.view)
    e.close()
    del e
    gc.collect()
    assert view() is None and ours() <= threads
    assert len(ipyw._instances) == widgets


def assert_interrupt_shown(w: LandscapeWidget, sent: Sent, gen: int) -> None:
    assert w.wait(TIMEOUT), "the status did not freeze at 'computing'"
    status = w.status
    assert status["state"] == "error" and status["gen"] == gen
    assert status["message"] == "KeyboardInterrupt: stopped inside the loss"
    (error,) = sent.of("error", gen)
    assert error["message"] == status["message"]
    assert not sent.of("done", gen)
    assert w._worker.thread.is_alive(), "the worker survived"


def test_interrupt_in_the_stream_is_shown_and_the_worker_survives(tiny):
    model, X, y = tiny
    loss = Breakable(KeyboardInterrupt, "stopped inside the loss")
    land = lw.Landscape(model, (X, y), loss=loss)
    d1, d2 = (lw.directions.random(model, seed=s) for s in range(2))
    w = LandscapeWidget(land, d1, d2, n=9)
    sent = Sent(w)
    try:
        assert w.wait(TIMEOUT) and w.status["state"] == "done"
        # Before the first tile (new directions: the loss fails while they are bound).
        loss.armed = True
        gen = w.set_view(d2, d1, n=9)
        assert_interrupt_shown(w, sent, gen)
        assert not sent.of("tile", gen)
        # In the middle of the stream: armed as the first tile leaves, so the next fails.
        loss.armed = False
        sent.on_tile = lambda content: setattr(loss, "armed", True)
        gen = w.set_view(d1, d2, n=21)
        assert_interrupt_shown(w, sent, gen)
        assert len(sent.of("tile", gen)) == 1
        # The next view computes as usual.
        sent.on_tile = lambda content: None
        loss.armed = False
        gen = w.set_view(d2, d1, n=9)
        assert w.wait(TIMEOUT)
        assert w.status["state"] == "done" and w.surface_info["gen"] == gen
        np.testing.assert_allclose(
            w.surface_record["loss"], land.plane(d2, d1, n=9)["loss"], rtol=1e-6
        )
    finally:
        w.close()
    assert not w._worker.thread.is_alive()


def test_interrupt_in_a_cross_section_is_shown_and_the_worker_survives(tiny):
    model, X, y = tiny
    loss = Breakable(KeyboardInterrupt, "stopped inside the loss")
    land = lw.Landscape(model, (X, y), loss=loss)
    d1, d2 = (lw.directions.random(model, seed=s) for s in range(2))
    w = LandscapeWidget(land, d1, d2, n=9)
    sent = Sent(w)
    try:
        assert w.wait(TIMEOUT)
        gen = w.generation
        loss.armed = True
        w._handle_custom_msg({"type": "pick", "x": 0.25, "y": -0.5}, [])
        assert until(lambda: w.status["state"] == "error")
        assert "KeyboardInterrupt: stopped inside the loss" in w.status["message"]
        assert until(lambda: sent.of("error", gen))
        assert "KeyboardInterrupt" in sent.of("error", gen)[0]["message"]
        assert w._worker.thread.is_alive()
        loss.armed = False
        gen = w.set_view(d1, d2, span=0.5, n=7)
        assert w.wait(TIMEOUT)
        assert w.status["state"] == "done" and w.surface_info["gen"] == gen
        w._handle_custom_msg({"type": "pick", "x": 0.25, "y": -0.25}, [])
        assert until(lambda: sent.of("cross", gen))
        assert w.status["state"] == "done"
    finally:
        w.close()


def test_interrupt_in_the_hessian_thread_is_shown_and_it_recovers(tiny):
    model, X, y = tiny
    loss = Breakable(KeyboardInterrupt, "stopped inside the loss", grad_only=True)
    e = lw.explore(model, (X, y), loss, n=7, span=0.5)
    try:
        assert e.wait(TIMEOUT)
        loss.armed = True
        e.add_hessian(2)
        assert e.wait_hessian(TIMEOUT), "the Hessian thread ended its request"
        assert e.eigen is None
        assert e.hessian_error == "KeyboardInterrupt: stopped inside the loss"
        status = e.hessian_panel.status.value
        assert "failed" in status and "KeyboardInterrupt" in status
        assert not e.hessian_panel.compute_button.disabled
        loss.armed = False
        e.add_hessian(2)
        assert e.wait_hessian(120)
        assert e.hessian_error is None and e.eigen is not None
        assert len(e.hessian_labels) == 4
        # The surfaces were not disturbed.
        e.axes["x"].mix.value = 0.5
        assert e.wait(TIMEOUT) and e.view.status["state"] == "done"
    finally:
        e.close()


def assert_controls_match_the_view(e: lw.Explorer) -> None:
    gx, gy = np.asarray(e.view.grid_x), np.asarray(e.view.grid_y)
    n, span = e.points_slider.value, e.span_slider.value
    assert len(gx) == len(gy) == n
    assert gx[0] == gy[0] == -span and gx[-1] == gy[-1] == span
    # Both values lie on their slider's steps (a slider shows its value on a step).
    assert (n - e.points_slider.min) % e.points_slider.step == 0
    k = (math.log10(span) - e.span_slider.min) / e.span_slider.step
    assert abs(k - round(k)) < 1e-6


@pytest.mark.parametrize(("span", "n"), [(100.0, 151), (0.5, 40), (0.003, 3)])
def test_sliders_hold_the_requested_view(tiny, span, n):
    model, X, y = tiny
    e = lw.explore(model, (X, y), span=span, n=n)
    try:
        assert e.span_slider.value == span and e.points_slider.value == n
        assert_controls_match_the_view(e)
        # The default range stays reachable.
        assert e.points_slider.min <= 5 and e.points_slider.max >= 100
        assert 10**e.span_slider.min <= 0.01 and 10**e.span_slider.max >= 10
        # Moves: one step up, down to the minimum, past the maximum (clamped).
        e.points_slider.value = n + e.points_slider.step
        assert_controls_match_the_view(e)
        e.points_slider.value = e.points_slider.min
        assert_controls_match_the_view(e)
        e.points_slider.value = 10**6
        assert e.points_slider.value == e.points_slider.max
        assert_controls_match_the_view(e)
        e.points_slider.value = e.points_slider.min + 2 * e.points_slider.step
        e.span_slider.value = 10 ** (e.span_slider.min + 7 * e.span_slider.step)
        assert_controls_match_the_view(e)
        e.span_slider.value = 1e9
        assert_controls_match_the_view(e)
        assert e.wait(TIMEOUT) and e.view.status["state"] == "done"
        assert e.surface.x[-1] == e.span_slider.value
        assert len(e.surface.y) == e.points_slider.value
    finally:
        e.close()


def test_explorer_arguments_name_the_fix(tiny):
    model, X, y = tiny
    with pytest.raises(TypeError, match=r"n=\(41, 21\).*LandscapeWidget"):
        lw.explore(model, (X, y), n=(41, 21))
    with pytest.raises(TypeError, match=r"span=\(-1, 2\).*LandscapeWidget"):
        lw.explore(model, (X, y), span=(-1, 2))
    with pytest.raises(ValueError, match=r"n_levels=1.*≥ 2"):
        lw.explore(model, (X, y), n_levels=1)
    with pytest.raises(ValueError, match=r"seeds=\(0,\)"):
        lw.explore(model, (X, y), seeds=(0,))


def test_oversized_grids_are_refused_with_the_engines_message(tiny):
    model, X, y = tiny
    land = lw.Landscape(model, (X, y))
    d1, d2 = (lw.directions.random(model, seed=s) for s in range(2))
    w = LandscapeWidget(land, d1, d2, n=7, max_points=50)
    try:
        assert w.wait(TIMEOUT)
        gen, grid, status = w.generation, list(w.grid_x), dict(w.status)
        with pytest.raises(lw.JobTooLarge, match=r"81 points.*max_points=81.*force=True"):
            w.set_view(d1, d2, n=9)
        # Refused before anything changed.
        assert (w.generation, list(w.grid_x), w.status) == (gen, grid, status)
        assert w.set_view(d1, d2, n=9, force=True) == gen + 1
        assert w.wait(TIMEOUT) and w.surface_info["nx"] == 9
        assert w.set_view(d1, d2, n=9, max_points=81) == gen + 2
        assert w.wait(TIMEOUT) and w.status["state"] == "done"
    finally:
        w.close()
    with pytest.raises(lw.JobTooLarge, match="max_points"):
        LandscapeWidget(land, d1, d2, n=9, max_points=50)

    threads = ours()
    with pytest.raises(lw.JobTooLarge, match=r"25,010,001 points.*force=True"):
        lw.explore(model, (X, y), n=5001)
    assert ours() <= threads
    with pytest.raises(lw.JobTooLarge, match="max_points"):
        lw.explore(model, (X, y), n=9, max_points=50)
    e = lw.explore(model, (X, y), n=7, max_points=50)
    try:
        # The points slider offers no refused grid; a refused move puts the control back.
        assert e.points_slider.max == 7
        e.view.max_points = 40
        e.points_slider.value = 5
        with pytest.raises(lw.JobTooLarge):
            e.points_slider.value = 7
        assert e.points_slider.value == 5 == len(e.view.grid_x)
    finally:
        e.close()
    e = lw.explore(model, (X, y), n=9, max_points=50, force=True)
    try:
        assert e.wait(TIMEOUT)
        assert len(e.view.grid_x) == 9 and e.points_slider.max >= 101
    finally:
        e.close()
