"""Which parameters the explorer moves: `explore(params=...)`, the "parameters" control, the
labels that say so, and the Hessian over the same tensors.

Runs without a kernel (ipywidgets' dummy comm), like tests/test_widget.py: a choice in the
control is played by setting the widget's value, as the frontend does.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from helpers import assert_unchanged, snapshot
from torch import nn

import ls_widget as lw
from ls_widget.widget.scope import count

TIMEOUT = 60  # seconds: generous, for a busy machine
N, SPAN = 5, 0.5
NAMES = ["0.weight", "0.bias", "2.weight", "2.bias"]
SCOPE = "trainable (39 of 147 params)"  # the head: 12·3 + 3 of 8·12 + 12 + 12·3 + 3


def frozen_backbone() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """An 8-12-3 tanh MLP whose first layer is frozen: only the head trains."""
    torch.manual_seed(0)
    X, y = torch.randn(120, 8), torch.randint(0, 3, (120,))
    model = nn.Sequential(nn.Linear(8, 12), nn.Tanh(), nn.Linear(12, 3))
    model[0].requires_grad_(False)
    return model, X, y


def moved(d: lw.Direction) -> list[str]:
    return [n for n in d if bool(d[n].any())]


def same(d: lw.Direction, ref: lw.Direction) -> bool:
    return list(d) == list(ref) and all(torch.equal(d[n], ref[n]) for n in d)


def finished(e: lw.Explorer) -> lw.Surface:
    assert e.wait(TIMEOUT)
    assert e.view.status["state"] == "done"
    assert e.view.surface_info["gen"] == e.view.generation
    return e.surface


def randoms(e: lw.Explorer) -> list[str]:
    return [label for label in e.bank if label.startswith("random #")]


def test_count_and_scope_text():
    assert [count(n) for n in (0, 999, 1000, 1234, 9950, 123_456, 999_500, 11_000_000)] == [
        "0", "999", "1.0 k", "1.2 k", "10 k", "123 k", "1.0 M", "11 M"]


def test_default_moves_the_trainable_parameters_only():
    model, X, y = frozen_backbone()
    snap = snapshot(model)
    e = lw.explore(model, (X, y), n=N, span=SPAN)
    try:
        assert e.params == "trainable"
        for label in randoms(e):
            d = e.bank[label]
            seed = int(label.removeprefix("random #"))
            # Zero on the frozen layer; bit for bit the engine's default direction.
            assert moved(d) == ["2.weight"]  # the head's bias stays still (ignore="biasbn")
            assert same(d, lw.directions.random(model, seed=seed))
            assert d.label == f"random #{seed}, filter-norm · {SCOPE}"
            prov = d.provenance
            assert prov["params"] == "trainable" and prov["selected"] == ["2.weight", "2.bias"]
        surf = finished(e)
        assert e.view.x_label == f"random #0, filter-norm · {SCOPE}"
        assert e.view.y_label == f"random #1, filter-norm · {SCOPE}"
        want = e.landscape.plane(e.bank["random #0"], e.bank["random #1"], span=SPAN, n=N)
        np.testing.assert_array_equal(surf["loss"], want["loss"])
        # The control says what moves; the long form in its tooltip.
        pc = e.params_control
        assert pc.select.value == "trainable"
        assert dict(pc.select.options)["trainable (2 of 4 tensors)"] == "trainable"
        assert "moves 2 of 4 tensors (39 of 147 values)" in pc.status.value
        assert "2.weight, 2.bias" in pc.select.tooltip
        assert pc.globs.layout.display == "none"
        # A blend of two directions over the same scope names it once.
        e.axes["x"].mix.value = 0.5
        assert e.view.x_label == (
            f"mix(random #0, filter-norm → random #2, filter-norm, t=0.50) · {SCOPE}")
        # New random directions move the same tensors.
        e.add_random_pair()
        assert moved(e.bank["random #4"]) == ["2.weight"]
        finished(e)
    finally:
        e.close()
    assert_unchanged(model, snap)


def test_all_globs_and_predicates():
    model, X, y = frozen_backbone()
    e = lw.explore(model, (X, y), n=N, span=SPAN, params="all", seeds=(0, 1))
    try:
        d = e.bank["random #0"]
        assert moved(d) == ["0.weight", "2.weight"]
        assert same(d, lw.directions.random(model, seed=0, params="all"))
        assert d.label == "random #0, filter-norm"  # everything moves: nothing to say
        assert e.params_control.select.value == "all"
        finished(e)
    finally:
        e.close()

    e = lw.explore(model, (X, y), n=N, span=SPAN, params=("0.*",), seeds=(0, 1))
    try:
        d = e.bank["random #1"]
        assert moved(d) == ["0.weight"]
        assert same(d, lw.directions.random(model, seed=1, params=["0.*"]))
        assert d.label == "random #1, filter-norm · 0.* (108 of 147 params)"
        assert e.params == ["0.*"]
        pc = e.params_control
        assert pc.select.value == "custom" and pc.globs.value == "0.*"
        assert pc.globs.layout.display is None
        finished(e)
    finally:
        e.close()

    def head_weight(name: str, p: torch.Tensor) -> bool:
        return name == "2.weight"

    e = lw.explore(model, (X, y), n=N, span=SPAN, params=head_weight, seeds=(0, 1))
    try:
        assert moved(e.bank["random #0"]) == ["2.weight"]
        assert e.bank["random #0"].label.endswith("· predicate head_weight (36 of 147 params)")
        assert "test_all_globs_and_predicates.<locals>.head_weight" in (
            e.bank["random #0"].provenance["params"])
        pc = e.params_control
        assert pc.select.value == "predicate"
        pc.select.value = "all"
        assert moved(e.bank["random #0"]) == ["0.weight", "2.weight"]
        pc.select.value = "predicate"  # the predicate stays offered
        assert e.params is head_weight and moved(e.bank["random #0"]) == ["2.weight"]
        finished(e)
    finally:
        e.close()


class Sent:
    """Records every custom message a widget sends, in order."""

    def __init__(self, widget) -> None:
        self.msgs: list[dict] = []
        original = widget.send

        def send(content: dict, buffers: list[bytes] | None = None) -> None:
            self.msgs.append(content)
            original(content, buffers)

        widget.send = send


def test_the_control_redraws_and_restarts():
    model, X, y = frozen_backbone()
    e = lw.explore(model, (X, y), n=31, span=SPAN)  # returns after the first tile: streaming
    try:
        sent = Sent(e.view)
        pc = e.params_control
        labels = list(e.bank)
        gen = e.view.generation
        pc.select.value = "all"
        mark = len(sent.msgs)
        assert e.view.generation == gen + 1, "one restart"
        e.points_slider.value = N
        finished(e)
        # Stale tiles dropped: nothing of the old generation is sent after the change.
        assert all(m["gen"] > gen for m in sent.msgs[mark:] if "gen" in m)
        assert list(e.bank) == labels, "the same seeds, the same entries"
        for label in randoms(e):
            seed = int(label.removeprefix("random #"))
            assert same(e.bank[label], lw.directions.random(model, seed=seed, params="all"))
        assert e.view.x_label == "random #0, filter-norm"
        surf = finished(e)
        want = e.landscape.plane(e.bank["random #0"], e.bank["random #1"], span=SPAN, n=N)
        np.testing.assert_array_equal(surf["loss"], want["loss"])
        assert "all 4 tensors (147 of 147 values)" in pc.status.value

        # custom…: nothing applies before patterns are typed.
        gen = e.view.generation
        pc.select.value = "custom"
        assert e.view.generation == gen and e.params == "all"
        assert pc.globs.layout.display is None and "comma-separated" in pc.status.value
        pc.globs.value = "0.weight, 2.*"
        assert e.view.generation == gen + 1 and e.params == ["0.weight", "2.*"]
        d = e.bank["random #1"]
        assert same(d, lw.directions.random(model, seed=1, params=["0.weight", "2.*"]))
        assert d.label == "random #1, filter-norm · 0.weight, 2.* (135 of 147 params)"
        finished(e)

        # From Python: the same, and the control follows.
        e.set_params("trainable")
        assert pc.select.value == "trainable" and pc.globs.layout.display == "none"
        assert moved(e.bank["random #0"]) == ["2.weight"]
        assert e.view.generation == gen + 2
        finished(e)
    finally:
        e.close()


def test_a_bad_glob_is_shown_and_the_old_choice_kept():
    model, X, y = frozen_backbone()
    e = lw.explore(model, (X, y), n=N, span=SPAN, seeds=(0, 1))
    try:
        finished(e)
        worker = e.view._worker.thread
        pc = e.params_control
        before = dict(e.bank)
        gen = e.view.generation
        pc.select.value = "custom"
        pc.globs.value = "layer4.*, 2.*"  # a typo: no exception reaches the kernel
        status = pc.status.value
        assert "ValueError" in status and "layer4.*" in status
        assert "match no parameter" in status and "&#x27;0.weight&#x27;" in status
        assert f"still moving: {SCOPE}" in status
        # Nothing changed: the scope, the directions, the picture; the worker still serves.
        assert e.params == "trainable"
        assert all(e.bank[k] is d for k, d in before.items())
        assert e.view.generation == gen and worker.is_alive()
        assert pc.globs.value == "layer4.*, 2.*", "kept, to be fixed"
        # Fixed: applied.
        pc.globs.value = "2.*"
        assert e.params == ["2.*"] and e.view.generation == gen + 1
        assert "moves 2 of 4 tensors" in pc.status.value
        finished(e)
        # From Python, the same refusal raises, and changes nothing.
        with pytest.raises(ValueError, match=r"\['layer4\.\*'\].*match no parameter.*0\.weight"):
            e.set_params(["layer4.*"])
        with pytest.raises(ValueError, match="ignore=None"):  # biases only: nothing would move
            e.set_params(["*.bias"])
        assert e.params == ["2.*"] and e.view.generation == gen + 1
    finally:
        e.close()


class Unread:
    """Data that must not be read: `explore` refuses a bad `params` before touching it."""

    def __iter__(self):
        raise AssertionError("the data was read before params was checked")


def test_explore_refuses_a_bad_choice_before_reading_the_data():
    model, _, _ = frozen_backbone()
    threads = set(threading.enumerate())
    with pytest.raises(ValueError, match=r"\['layer4\.\*'\].*'0\.weight'"):
        lw.explore(model, Unread(), params=["layer4.*"])
    with pytest.raises(ValueError, match=r"params='head' is not supported"):
        lw.explore(model, Unread(), params="head")
    with pytest.raises(TypeError, match="glob patterns"):
        lw.explore(model, Unread(), params=[3])
    assert set(threading.enumerate()) <= threads


def test_the_hessian_moves_the_same_parameters():
    model, X, y = frozen_backbone()
    snap = snapshot(model)
    e = lw.explore(model, (X, y), n=N, span=SPAN, seeds=(0, 1))
    try:
        assert e.bank.hessian().names == ["2.weight", "2.bias"]
        assert e.bank.hessian() is e.landscape.hessian  # the engine's cached default
        e.add_hessian(1)
        assert e.wait_hessian(120) and e.hessian_error is None
        assert e.eigen is not None
        top, bottom = e.hessian_labels
        for label in (top, bottom):
            d = e.bank[label]
            assert moved(d) and set(moved(d)) <= {"2.weight", "2.bias"}
            assert d.label.endswith(f" · {SCOPE}") and d.provenance["scope"] == SCOPE
        assert f"over {SCOPE}" in e.hessian_panel.status.value
        head = e.eigen

        # Another scope: the eigenpairs are computed again over it, by rank on the bank.
        e.set_params("all")
        assert e.wait_hessian(120) and e.hessian_error is None
        assert e.eigen is not head
        assert e.bank.hessian().names == NAMES
        d = e.bank[e.hessian_labels[0]]
        assert "0.weight" in moved(d) and " · " not in d.label
        np.testing.assert_allclose(
            e.eigen.values, e.landscape.hessian_over("all").eigen(1, tol=1e-6).values,
            rtol=1e-6)
        # Back: from the cache.
        e.set_params("trainable")
        assert e.wait_hessian(120)
        assert e.eigen is head and "(cached)" in e.hessian_panel.status.value
    finally:
        e.close()
    assert_unchanged(model, snap)


def test_a_fully_frozen_model_moves_everything():
    model, X, y = frozen_backbone()
    model.requires_grad_(False)  # frozen for evaluation: nothing is singled out
    e = lw.explore(model, (X, y), n=N, span=SPAN, seeds=(0, 1))
    try:
        assert moved(e.bank["random #0"]) == ["0.weight", "2.weight"]
        assert e.view.x_label == "random #0, filter-norm"
        assert dict(e.params_control.select.options)["trainable (all 4 tensors)"] == "trainable"
        # The engine's default H refuses a model without trainable parameters; the explorer
        # takes H over the tensors its directions move.
        assert e.bank.hessian().names == NAMES
        finished(e)
    finally:
        e.close()
