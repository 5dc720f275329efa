"""The widget's kernel side: message protocol, generations, worker lifecycle, exports.

Runs without a kernel: ipywidgets falls back to a dummy comm, and we record what the widget
sends by wrapping `send`, and play the frontend by calling its message handler.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import ls_widget as lw
from ls_widget.widget.view import LandscapeWidget


class Recorder:
    """Collects (content, buffers) of every custom message a widget sends."""

    def __init__(self, widget: LandscapeWidget) -> None:
        self.msgs: list[tuple[dict, list[bytes]]] = []
        self.lock = threading.Lock()
        original = widget.send

        def send(content: dict, buffers: list[bytes] | None = None) -> None:
            with self.lock:
                self.msgs.append((content, list(buffers or [])))
            original(content, buffers)

        widget.send = send  # type: ignore[method-assign]

    def of(self, kind: str, gen: int | None = None) -> list[tuple[dict, list[bytes]]]:
        with self.lock:
            return [
                (c, b) for c, b in self.msgs
                if c["type"] == kind and (gen is None or c["gen"] == gen)
            ]


def frontend(widget: LandscapeWidget, content: dict, buffers: list[bytes] | None = None):
    """Deliver a message as if the browser sent it."""
    widget._handle_custom_msg(content, buffers or [])


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    X, y = torch.randn(300, 8), torch.randint(0, 3, (300,))
    model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 3))
    land = lw.Landscape(model, (X, y), metrics={"accuracy": lw.metrics.accuracy})
    dirs = [lw.directions.random(model, seed=s) for s in range(3)]
    return model, X, y, land, dirs


def make(land, d1, d2, **kw) -> tuple[LandscapeWidget, Recorder]:
    # The worker starts at once; record from the first message by patching before the view
    # is set: build, patch, then restart with the wanted view.
    w = LandscapeWidget(land, d1, d2, **kw)
    rec = Recorder(w)
    w.set_view(d1, d2, span=kw.get("span", 1.0), n=kw.get("n", 41))
    return w, rec


def decode_tiles(rec: Recorder, gen: int, names: list[str], shape: tuple[int, int]):
    values = np.full((len(names), *shape), np.nan, dtype=np.float32)
    seen = np.zeros(shape, dtype=int)
    for content, (rows_b, cols_b, vals_b) in rec.of("tile", gen):
        n = content["count"]
        rows = np.frombuffer(rows_b, dtype="<i4")
        cols = np.frombuffer(cols_b, dtype="<i4")
        vals = np.frombuffer(vals_b, dtype="<f4").reshape(len(content["metrics"]), n)
        assert len(rows) == len(cols) == n
        values[:, rows, cols] = vals
        np.add.at(seen, (rows, cols), 1)
    return values, seen


def test_ready_tiles_done_and_replay(setup):
    _, _, _, land, (d1, d2, _) = setup
    w, rec = make(land, d1, d2, span=1.0, n=9)
    try:
        assert w.wait(30)
        gen = w.generation
        names = list(land.metric_names)
        values, seen = decode_tiles(rec, gen, names, (9, 9))
        assert (seen == 1).all(), "every grid point arrives exactly once"
        want = land.plane(d1, d2, span=1.0, n=9)
        for i, m in enumerate(names):
            np.testing.assert_allclose(values[i], want[m].astype(np.float32), rtol=1e-6)
        levels = rec.of("level", gen)
        assert [c["level"] for c, _ in levels] == sorted({c["level"] for c, _ in levels})
        assert rec.of("done", gen) and w.status["state"] == "done"
        # Buffers are binary little-endian arrays, never JSON number lists.
        for content, buffers in rec.of("tile", gen):
            assert all(isinstance(b, (bytes, memoryview)) for b in buffers)
            assert not any(isinstance(v, list) for v in content.values() if v != names)
        # The finished surface is also in the binary trait, for saved notebooks.
        info = w.surface_info
        assert info["gen"] == gen and (info["ny"], info["nx"]) == (9, 9)
        stored = np.frombuffer(w.surface, dtype="<f4").reshape(len(names), 9, 9)
        np.testing.assert_array_equal(stored, values)
        # A view that mounts later gets everything of this generation again.
        before = len(rec.msgs)
        frontend(w, {"type": "ready"})
        replay = rec.msgs[before:]
        assert [c["type"] for c, _ in replay].count("tile") == len(rec.of("tile", gen)) // 2
        assert replay[-1][0]["type"] == "done"
    finally:
        w.close()


def test_ready_during_a_generation_change_replays_only_the_new_generation(setup):
    _, _, _, land, (d1, d2, d3) = setup
    w, rec = make(land, d1, d2, n=9)
    gate = threading.Event()  # holds the next stream back: the worker between generations
    stream = land.stream

    def held(*args, **kwargs):
        assert gate.wait(30)
        return stream(*args, **kwargs)

    try:
        assert w.wait(30)
        old = w.generation
        land.stream = held
        new = w.set_view(d1, d3, n=9)
        before = len(rec.msgs)
        frontend(w, {"type": "ready"})
        assert rec.msgs[before:] == [], "nothing of the old generation is replayed"
        gate.set()
        assert w.wait(30) and w.surface_info["gen"] == new
        before = len(rec.msgs)
        frontend(w, {"type": "ready"})
        replay = rec.msgs[before:]
        assert {c["gen"] for c, _ in replay} == {new} and replay[-1][0]["type"] == "done"
        assert [c for c, _ in replay] == [c for c, _ in rec.msgs[:before] if c["gen"] == new]
        assert rec.of("done", old)
    finally:
        gate.set()
        vars(land).pop("stream", None)
        w.close()


def test_tile_messages_are_rate_limited(setup):
    _, _, _, land, (d1, d2, _) = setup
    w, rec = make(land, d1, d2, n=41)
    try:
        t0 = time.perf_counter()
        assert w.wait(60)
        elapsed = time.perf_counter() - t0
        tiles = len(rec.of("tile", w.generation))
        levels = len(rec.of("level", w.generation))
        # At most one message per 25 ms, plus one flush at each level change and the end.
        assert tiles <= elapsed / 0.025 + levels + 1
        assert tiles / max(elapsed, 0.025) < 50 or tiles <= levels + 1
    finally:
        w.close()


def test_stale_generations_are_abandoned(setup):
    _, _, _, land, (d1, d2, d3) = setup
    w, rec = make(land, d1, d2, n=41)
    try:
        first = w.generation
        last = w.set_view(d1, d3, span=0.5, n=11)
        assert last == first + 1
        assert w.wait(60)
        assert w.surface_info["gen"] == last
        assert not rec.of("done", first), "the abandoned stream never completes"
        want = land.plane(d1, d3, span=0.5, n=11)
        np.testing.assert_allclose(w.surface_record["loss"], want["loss"], rtol=1e-6)
    finally:
        w.close()


def test_slider_storm_leaves_one_worker_and_the_last_picture(setup):
    _, _, _, land, (d1, d2, d3) = setup
    before = {t for t in threading.enumerate() if t.name == "ls-widget-worker"}
    w, _ = make(land, d1, d2, n=21)
    try:
        for i in range(200):
            t = (i + 1) / 200
            w.set_view(d1, lw.directions.mix(d2, d3, t), span=1.0, n=21)
        assert w.wait(60)
        workers = {t for t in threading.enumerate() if t.name == "ls-widget-worker"} - before
        assert len(workers) == 1
        want = land.plane(d1, lw.directions.mix(d2, d3, 1.0), span=1.0, n=21)
        np.testing.assert_allclose(w.surface_record["loss"], want["loss"], rtol=1e-5)
        assert w.surface_info["gen"] == w.generation
    finally:
        w.close()


def test_close_stops_the_worker(setup):
    _, _, _, land, (d1, d2, _) = setup
    w, _ = make(land, d1, d2, n=41)
    thread = w._worker.thread
    w.close()
    assert not thread.is_alive()


class SwitchableLoss:
    def __init__(self) -> None:
        self.broken = False

    def __call__(self, out, y):
        if self.broken:
            raise ValueError("labels out of range: fix the targets")
        return F.cross_entropy(out, y)


def test_errors_are_shown_and_the_widget_recovers(setup):
    model, X, y, _, (d1, d2, _) = setup
    loss = SwitchableLoss()
    land = lw.Landscape(model, (X, y), loss=loss)
    w, rec = make(land, d1, d2, n=9)
    try:
        assert w.wait(30)
        loss.broken = True
        gen = w.set_view(d2, d1, n=9)
        assert w.wait(30)
        assert w.status["state"] == "error"
        assert "labels out of range" in w.status["message"]
        errors = rec.of("error", gen)
        assert errors and "ValueError" in errors[0][0]["message"]
        loss.broken = False
        gen = w.set_view(d2, d1, n=9)
        assert w.wait(30)
        assert w.status["state"] == "done" and w.surface_info["gen"] == gen
        np.testing.assert_allclose(
            w.surface_record["loss"], land.plane(d2, d1, n=9)["loss"], rtol=1e-6
        )
    finally:
        w.close()


def test_pick_sends_cross_sections(setup):
    _, _, _, land, (d1, d2, _) = setup
    w, rec = make(land, d1, d2, n=9)
    try:
        assert w.wait(30)
        frontend(w, {"type": "pick", "x": 0.25, "y": -0.5})
        deadline = time.time() + 30
        while not rec.of("cross") and time.time() < deadline:
            time.sleep(0.02)
        (content, bufs), = rec.of("cross")
        assert (content["x0"], content["y0"]) == (0.25, -0.5)
        xs = np.frombuffer(bufs[0], "<f4")
        along_x = np.frombuffer(bufs[1], "<f4").reshape(len(content["metrics"]), -1)
        ys = np.frombuffer(bufs[2], "<f4")
        along_y = np.frombuffer(bufs[3], "<f4").reshape(len(content["metrics"]), -1)
        coeffs = np.stack([xs.astype(float), np.full(len(xs), -0.5)], 1)
        want = land.evaluate([d1, d2], coeffs)["loss"]
        np.testing.assert_allclose(along_x[0], want, rtol=1e-5)
        coeffs = np.stack([np.full(len(ys), 0.25), ys.astype(float)], 1)
        np.testing.assert_allclose(along_y[0], land.evaluate([d1, d2], coeffs)["loss"],
                                   rtol=1e-5)
    finally:
        w.close()


class GatedLoss:
    """Cross-entropy that waits until the test opens the gate."""

    def __init__(self) -> None:
        self.gate = threading.Event()

    def __call__(self, out, y):
        self.gate.wait(30)
        return F.cross_entropy(out, y)


def test_save_png_before_any_surface_says_to_wait(setup, tmp_path):
    model, X, y, _, (d1, d2, _) = setup
    loss = GatedLoss()
    loss.gate.set()
    land = lw.Landscape(model, (X, y), loss=loss)  # calibrates with the gate open
    loss.gate.clear()
    w = LandscapeWidget(land, d1, d2, n=5)
    try:
        with pytest.raises(RuntimeError, match=r"w\.wait\(\)"):
            w.save_png(tmp_path / "early.png")
    finally:
        loss.gate.set()
        w.close()


def test_save_png_headless_and_from_snapshot(setup, tmp_path):
    _, _, _, land, (d1, d2, _) = setup
    w, _ = make(land, d1, d2, n=9)
    try:
        assert w.wait(30)
        out = w.save_png(tmp_path / "mpl.png")
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        fake = b"\x89PNG\r\n\x1a\nfrom-the-screen"
        frontend(w, {"type": "snapshot", "gen": w.generation}, [fake])
        assert w.save_png(tmp_path / "screen.png").read_bytes() == fake
        # A snapshot of an older picture is not used for a newer one.
        w.set_view(d2, d1, n=9)
        assert w.wait(30)
        assert w.save_png(tmp_path / "new.png").read_bytes() != fake
    finally:
        w.close()


def test_kernel_stays_responsive_while_computing(setup):
    _, _, _, land, (d1, d2, _) = setup
    w, _ = make(land, d1, d2, n=61)
    try:
        gaps = []
        t_prev = time.perf_counter()
        while not w.wait(0):
            time.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - t_prev)
            t_prev = now
        assert max(gaps) < 0.25, f"main thread stalled {max(gaps):.3f}s"
    finally:
        w.close()


def test_explore_mix_slider_updates_the_plane(setup):
    model, X, y, _, _ = setup
    e = lw.explore(model, (X, y), n=11, span=0.5)
    try:
        assert e.wait(30)
        assert isinstance(e.surface, lw.Surface)
        assert e.surface.metrics == ("loss", "accuracy")
        a, b, t = e.axes["x"]
        gen = e.view.generation
        t.value = 0.5
        assert e.view.generation == gen + 1
        assert e.wait(30)
        d = lw.directions.mix(e.bank[a.value], e.bank[b.value], 0.5)
        want = e.landscape.plane(d, e.bank[e.axes["y"].direction.value], span=0.5, n=11)
        np.testing.assert_allclose(e.surface["loss"], want["loss"], rtol=1e-5)
        x_label, y_label = e.view.x_label, e.view.y_label
        assert "mix(" in x_label and "random" in y_label
        e.add_random_pair()
        assert e.wait(30)
        assert e.view.x_label.startswith("random #4")
    finally:
        e.close()


def test_explore_errors_name_the_fix(setup):
    model, X, y, _, _ = setup
    with pytest.raises(ValueError, match="choose from"):
        lw.explore(model, (X, y), x="nope")
    with pytest.raises(ValueError, match="metric"):
        lw.explore(model, (X, y), metric="f1")


def test_to_html_embeds_state_and_bundle(setup, tmp_path):
    model, X, y, _, _ = setup
    e = lw.explore(model, (X, y), n=9)
    try:
        assert e.wait(30)
        page = e.to_html(tmp_path / "fig.html").read_text()
        assert "application/vnd.jupyter.widget-state+json" in page
        assert '"surface_info"' in page and "import(url)" in page
    finally:
        e.close()


def test_engine_runs_without_the_widget_packages():
    # The widget packages are an extra: hide them, then the engine must import and compute,
    # and lw.explore must say which extra to install.
    code = """
import sys, importlib.abc
class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("anywidget", "ipywidgets", "bqplot", "traitlets"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Hide())
import torch, ls_widget as lw
m = torch.nn.Linear(4, 3)
X, y = torch.randn(20, 4), torch.randint(0, 3, (20,))
surf = lw.Landscape(m, (X, y)).plane(lw.directions.random(m, 0), lw.directions.random(m, 1), n=5)
assert surf["loss"].shape == (5, 5)
try:
    lw.explore(m, (X, y))
except ImportError as exc:
    assert "ls-widget[widget]" in str(exc), exc
else:
    raise AssertionError("explore() worked without the widget packages")
assert not any(k.split(".")[0] in ("anywidget", "ipywidgets", "bqplot") for k in sys.modules)
"""
    subprocess.run([sys.executable, "-c", code], check=True)
