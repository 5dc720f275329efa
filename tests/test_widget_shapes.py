"""The explorer's "shapes" panel (Xu et al. 2024): labels, gallery, picks and mining.

Runs without a kernel (ipywidgets' dummy comm), like tests/test_widget.py, on the trained
digits MLP. A click on a gallery curve is played by the message bqplot's frontend sends.
Every value shown is checked against the same engine call made directly: the panel's work
runs in background threads, and must not change a bit.
"""

from __future__ import annotations

import gc
import threading
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import assert_unchanged, snapshot
from ipywidgets.widgets import widget as ipyw

import ls_widget as lw
from ls_widget.engine.sampling import Grid
from ls_widget.shapes.classify import KINDS, classify
from ls_widget.shapes.surface import SURFACE_KINDS, classify_surface
from ls_widget.widget.panels import X_COLOR, Y_COLOR
from ls_widget.widget.shapes_job import GALLERY_POINTS

SPAN, N = 1.0, 15
TIMEOUT = 120  # seconds: generous, for a busy 2-core machine
STEPS = 4  # mining steps: enough to run the whole path, small enough for a test
RANDOM = [f"random #{s}" for s in range(4)]
VSIDE = "constructed v-side"


def ours() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("ls-widget-")}


def until(condition, timeout: float = TIMEOUT) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def click(card) -> None:
    """What bqplot's frontend sends when the curve of a card is clicked."""
    card.lines._handle_custom_msgs(None, {"event": "element_click", "data": {"index": 0}})


def finished(e: lw.Explorer) -> lw.Surface:
    assert e.wait(TIMEOUT) and e.view.status["state"] == "done"
    return e.surface


class GradBreakingLoss:
    """Cross-entropy that raises under autograd while `armed` (mining and the gradient
    fail; the surfaces and the gallery's curves work). A fresh exception per call."""

    def __init__(self) -> None:
        self.armed = False

    def __call__(self, out, y):
        if self.armed and torch.is_grad_enabled():
            raise ValueError("this loss cannot be differentiated <here>")
        return F.cross_entropy(out, y)


@pytest.fixture(scope="module")
def opened(trained_mlp, digits):
    """An explorer of the trained digits MLP with its shapes panel open and up to date."""
    snap = snapshot(trained_mlp)
    e = lw.explore(trained_mlp, digits, n=N, span=SPAN)
    assert e.wait(TIMEOUT)
    shapes = e.shapes
    assert shapes.wait(TIMEOUT), "the labels and the gallery did not finish"
    yield e, shapes
    e.close()
    assert_unchanged(trained_mlp, snap)


def reset(e: lw.Explorer) -> None:
    for ax, label in (("x", "random #0"), ("y", "random #1")):
        e.axes[ax].direction.value = label
    assert e.wait(TIMEOUT) and e.shapes.wait(TIMEOUT)


def test_nothing_is_built_until_the_panel_opens(trained_mlp, digits_small):
    e = lw.explore(trained_mlp, digits_small, n=7, span=0.5)
    try:
        assert e.wait(TIMEOUT)
        assert e._shapes is None and e._shapes_box.children == ()
        assert not any(t.name == "ls-widget-shapes" for t in threading.enumerate())
        assert e.shapes_toggle.description == "shapes" and not e.shapes_toggle.value
        t0 = time.perf_counter()
        e.shapes_toggle.value = True  # the user opens it
        opened = time.perf_counter() - t0
        assert opened < 1.0, f"opening the panel blocked for {opened:.2f} s"
        panel = e.shapes.panel
        assert e._shapes_box.children == (panel,)
        e.shapes_toggle.value = False
        assert e._shapes_box.children == ()
        e.shapes_toggle.value = True
        assert e._shapes_box.children == (panel,), "opened again, not built again"
        assert e.shapes.wait(TIMEOUT)
    finally:
        e.close()


def test_labels_name_the_surface_and_its_cross_sections(opened):
    e, shapes = opened
    reset(e)
    surf = e.surface
    labels = shapes.labels
    assert labels is not None and shapes.error is None
    want = classify_surface(surf)
    assert labels.surface == want and labels.surface.kind in SURFACE_KINDS
    assert labels.x == classify(surf, along="x", at=0.0)
    assert labels.y == classify(surf, along="y", at=0.0)
    assert labels.where == "cross-sections through the model"
    html = shapes.panel.labels.value
    for name, shape in (("surface", labels.surface), ("x", labels.x), ("y", labels.y)):
        assert f"{name}: " in html and f">{shape.kind}</span>" in html
        assert f"margin {shape.margin:.2f}" in html, "the margin is in the tooltip"
    print(f"\nlabels: surface {want.kind} ({want.margin:.2f}), x {labels.x.kind}, "
          f"y {labels.y.kind}")

    # A pick: the cross-sections the view sends are classified (no evaluation of ours).
    x0, y0 = 0.3, -0.2
    e.view.pick(x0, y0)
    assert until(lambda: shapes.labels.where.startswith("cross-sections through α"))
    assert shapes.wait(TIMEOUT)
    dirs = (e.bank["random #0"], e.bank["random #1"])
    xs = Grid.line(SPAN, 101).x
    along = e.landscape.evaluate(dirs, np.stack([xs, np.full_like(xs, y0)], 1))["loss"]
    sent = along.astype("<f4").astype(np.float64)  # as the message carries it
    assert shapes.labels.x == classify((xs.astype("<f4").astype(np.float64), sent),
                                       center=x0)
    assert shapes.labels.surface == want, "the surface's label stays"
    assert "α = 0.3, β = −0.2" in shapes.panel.labels.value


def test_gallery_curves_have_kinds_and_the_engines_bits(opened):
    e, shapes = opened
    gallery = shapes.gallery
    assert list(gallery) == [*RANDOM, VSIDE]
    land = e.landscape
    for label, (curve, shape) in gallery.items():
        want = land.line(e.bank[label], span=SPAN, n=GALLERY_POINTS, progress=False)
        np.testing.assert_array_equal(curve.x, want.x)
        np.testing.assert_array_equal(curve["loss"], want["loss"])  # the same bits
        assert shape == classify(want) and shape.kind in KINDS
        card = shapes.panel.cards[label]
        assert card.kind == shape.kind and f">{shape.kind}</span>" in card.title.value
        assert card.figure in card.children
        np.testing.assert_allclose(card.lines.y, want["loss"])
    # The constructed direction is the normalized gradient, and it joined the bank.
    np.testing.assert_array_equal(
        gallery[VSIDE][0]["loss"],
        land.line(land.construct("v-side"), span=SPAN, n=GALLERY_POINTS, progress=False)["loss"],
    )
    assert VSIDE in e.axes["x"].direction.options
    print("\ngallery:", {label: shape.kind for label, (_, shape) in gallery.items()})


def test_a_new_span_recomputes_the_gallery(opened):
    e, shapes = opened
    reset(e)
    e.span_slider.value = 0.5
    try:
        # The view's stream and the gallery's curves ran side by side: neither changed a bit.
        surf = finished(e)
        assert shapes.wait(TIMEOUT)
        want = e.landscape.plane(e.bank["random #0"], e.bank["random #1"],
                                 span=e.span_slider.value, n=N, progress=False)
        np.testing.assert_array_equal(surf["loss"], want["loss"])
        curve, _ = shapes.gallery["random #2"]
        assert curve.x[-1] == pytest.approx(e.span_slider.value)
        want = e.landscape.line(e.bank["random #2"], span=e.span_slider.value,
                                n=GALLERY_POINTS, progress=False)
        np.testing.assert_array_equal(curve["loss"], want["loss"])
    finally:
        e.span_slider.value = SPAN
        assert e.wait(TIMEOUT) and shapes.wait(TIMEOUT)


def test_picking_a_curve_puts_its_direction_on_the_axis(opened):
    e, shapes = opened
    reset(e)
    panel = shapes.panel
    gen = e.view.generation
    panel.target.value = "y"
    click(panel.cards[VSIDE])
    assert e.axes["y"].direction.value == VSIDE
    assert e.view.generation == gen + 1, "one restart per click"
    surf = finished(e)
    want = e.landscape.plane(e.bank["random #0"], e.bank[VSIDE], span=SPAN, n=N,
                             progress=False)
    np.testing.assert_array_equal(surf["loss"], want["loss"])
    assert panel.cards[VSIDE].layout.border == f"2px solid {Y_COLOR}"
    assert panel.cards["random #0"].layout.border == f"2px solid {X_COLOR}"
    # The card's buttons choose the axis themselves.
    panel.cards["random #3"].x_button.click()
    assert e.axes["x"].direction.value == "random #3"
    assert panel.cards["random #3"].layout.border == f"2px solid {X_COLOR}"
    assert e.wait(TIMEOUT) and shapes.wait(TIMEOUT)
    assert shapes.labels.surface == classify_surface(e.surface), "labels follow the view"
    reset(e)


def test_a_random_direction_outside_the_bank_joins_it_when_picked(trained_mlp, digits_small):
    e = lw.explore(trained_mlp, digits_small, n=7, span=0.5, seeds=(0, 1))
    try:
        shapes = e.shapes
        assert shapes.wait(TIMEOUT)
        assert "random #3" in shapes.gallery and "random #3" not in e.bank
        shapes.pick("x", "random #3")
        assert e.axes["x"].direction.value == "random #3"
        d = e.bank["random #3"]
        assert d.provenance["seed"] == 3 and d.provenance["kind"] == "random"
        curve, _ = shapes.gallery["random #3"]
        want = e.landscape.line(d, span=0.5, n=GALLERY_POINTS, progress=False)
        np.testing.assert_array_equal(curve["loss"], want["loss"])
        with pytest.raises(ValueError, match=r"axis='z'.*'x' or 'y'"):
            shapes.pick("z", "random #3")
        with pytest.raises(ValueError, match=r"no gallery curve 'nope'.*random #0"):
            shapes.pick("x", "nope")
    finally:
        e.close()


def test_mining_runs_in_the_background_and_joins_bank_and_gallery(opened):
    e, shapes = opened
    panel = shapes.panel
    t0 = time.perf_counter()
    shapes.mine("w-peak", steps=STEPS)
    returned = time.perf_counter() - t0
    assert returned < 0.25, f"mine() blocked for {returned:.3f} s"
    assert shapes.mining and panel.mine_button.disabled and not panel.cancel_button.disabled
    with pytest.raises(RuntimeError, match="cancel it"):
        shapes.mine("w-peak", steps=STEPS)
    assert shapes.wait_mining(TIMEOUT) and shapes.mining_error is None
    seconds = time.perf_counter() - t0
    (mined,) = shapes.mined
    label = "mined w-peak #0"
    assert e.bank[label] is mined.direction
    assert label in e.axes["y"].direction.options
    curve, shape = shapes.gallery[label]
    assert curve is mined.curve and shape is mined.shape
    assert not panel.mine_button.disabled and panel.cancel_button.disabled
    assert panel.progress.value == panel.progress.max == STEPS
    assert "w-peak" in panel.mine_status.value and label in panel.mine_status.value
    assert panel.cards[label].kind == mined.shape.kind
    # The same bits as mining directly.
    direct = e.landscape.mine("w-peak", span=SPAN, n=GALLERY_POINTS, steps=STEPS, seed=0,
                              progress=False)
    for name in direct.direction:
        torch.testing.assert_close(mined.direction[name], direct.direction[name], rtol=0,
                                   atol=0)
    np.testing.assert_array_equal(mined.curve["loss"], direct.curve["loss"])
    assert mined.history == direct.history
    print(f"\nmined a w-peak in {STEPS} steps: {seconds:.1f} s, reached {mined.reached}, "
          f"kind {mined.shape.kind}")
    # The next run of a kind takes the next seed.
    shapes.mine("w-peak", steps=STEPS)
    assert shapes.wait_mining(TIMEOUT)
    assert len(shapes.mined) == 2 and "mined w-peak #1" in e.bank
    assert shapes.mined[1].direction.provenance["seed"] == 1
    with pytest.raises(ValueError, match=r"kind='saddle'.*w-peak"):
        shapes.mine("saddle")
    with pytest.raises(ValueError, match=r"steps=0.*positive int"):
        shapes.mine("w-peak", steps=0)


def test_the_mine_button_finds_a_w_peak_and_its_card_sets_the_axis(opened):
    e, shapes = opened
    reset(e)
    panel = shapes.panel
    before = len(shapes.mined)
    panel.mine_kind.value = "w-peak"
    panel.mine_steps.value = 200
    t0 = time.perf_counter()
    panel.mine_button.click()
    assert shapes.wait_mining(TIMEOUT) and shapes.mining_error is None
    seconds = time.perf_counter() - t0
    mined = shapes.mined[before]
    assert mined.reached and mined.shape.kind == "w-peak", mined
    label = next(k for k, v in e.bank.items() if v is mined.direction)
    assert panel.cards[label].kind == "w-peak"
    assert "w-peak reached in" in panel.mine_status.value
    assert panel.progress.bar_style == "success"
    print(f"\nmine button → {mined}: {seconds:.1f} s")
    panel.target.value = "x"
    click(panel.cards[label])
    assert e.axes["x"].direction.value == label
    surf = finished(e)
    want = e.landscape.plane(mined.direction, e.bank["random #1"], span=SPAN, n=N,
                             progress=False)
    np.testing.assert_array_equal(surf["loss"], want["loss"])
    reset(e)


def _cancel_then_close_while_mining(model, data) -> None:
    e = lw.explore(model, data, n=7, span=0.5)
    try:
        shapes = e.shapes
        assert shapes.wait(TIMEOUT)
        panel = shapes.panel
        panel.mine_steps.value = 100_000
        panel.mine_button.click()  # the user's way
        assert until(lambda: panel.progress.value > 0), "no progress shown"
        t0 = time.perf_counter()
        panel.cancel_button.click()
        assert shapes.wait_mining(TIMEOUT)
        print(f"\ncancel → stopped: {time.perf_counter() - t0:.2f} s")
        assert not any(t.name == "ls-widget-mining" for t in threading.enumerate())
        assert shapes.mined == [] and not any(k.startswith("mined") for k in e.bank)
        assert "cancelled at step" in panel.mine_status.value
        assert not panel.mine_button.disabled and panel.cancel_button.disabled
        # Closing while mining cancels and joins.
        shapes.mine("vvv-basin", steps=100_000)
        assert until(lambda: panel.progress.value > 0)
    finally:
        e.close()


def test_cancel_stops_mining_and_leaves_no_thread(trained_mlp, digits_small):
    threads, widgets = ours(), len(ipyw._instances)
    _cancel_then_close_while_mining(trained_mlp, digits_small)
    assert ours() <= threads, f"left {ours() - threads}"
    gc.collect()
    assert len(ipyw._instances) == widgets, "a widget of the shapes panel is still open"


def test_a_fault_in_mining_is_shown_and_the_next_run_works(trained_mlp, digits_small):
    loss = GradBreakingLoss()
    snap = snapshot(trained_mlp)
    e = lw.explore(trained_mlp, digits_small, loss, n=7, span=0.5)
    try:
        shapes = e.shapes
        assert shapes.wait(TIMEOUT)
        panel = shapes.panel
        loss.armed = True
        shapes.mine("w-peak", steps=STEPS)
        assert shapes.wait_mining(TIMEOUT)
        assert shapes.mining_error is not None
        assert "cannot be differentiated" in shapes.mining_error
        status = panel.mine_status.value
        assert "mining failed: ValueError" in status and "&lt;here&gt;" in status
        assert panel.progress.bar_style == "danger" and not panel.mine_button.disabled
        assert shapes.mined == []
        loss.armed = False
        shapes.mine("w-peak", steps=STEPS)
        assert shapes.wait_mining(TIMEOUT)
        assert shapes.mining_error is None and len(shapes.mined) == 1
        assert "mined w-peak #0" in e.bank, "a failed run does not use up its seed"
        assert "failed" not in panel.mine_status.value
    finally:
        e.close()
    assert_unchanged(trained_mlp, snap)
