"""Comparisons (lw.compare, lw.compare_surfaces) and the trajectory drawn in the explorer.

- `compare_surfaces` and the widget's surfaces are, bit for bit, each model's own
  `Landscape.plane` on its own random directions of the same seeds;
- the compare widget publishes one colour scale for all panels (its `scale` trait, a
  `protocol.ColorRange`), its sliders re-slice every panel, a click asks every panel for the
  cross-sections through the same point; its figure has one colorbar; errors name the fix;
  no worker thread outlives it;
- `explore(..., trajectory=traj)` shows the plane of the trajectory's principal directions,
  sends the projected path with that plane's generations only, and spans it with a margin.

Runs without a kernel (ipywidgets' dummy comm), like tests/test_widget.py. Hovering is the
frontend's alone (the same (α, β) on every panel): js/test/compare.test.ts and
tests/test_browser_compare.py check it.
"""

from __future__ import annotations

import itertools
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, get_type_hints

import anywidget
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import assert_unchanged, snapshot
from torch import nn

import ls_widget as lw
from ls_widget.widget import protocol
from ls_widget.widget.compare_view import CompareWidget
from ls_widget.widget.paths import path_span
from ls_widget.widget.typecheck import problems
from ls_widget.widget.view import LandscapeWidget

TIMEOUT = 60
TS = (Path(__file__).resolve().parents[1] / "js" / "src" / "protocol.ts").read_text()


def net(seed: int, hidden: int = 16) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, hidden), nn.Tanh(), nn.Linear(hidden, 3))


def trained(seed: int, steps: int, lr: float, data: tuple[torch.Tensor, torch.Tensor]) -> nn.Module:
    X, y = data
    model = net(seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(model(X), y).backward()
        opt.step()
    for p in model.parameters():
        p.grad = None
    return model.eval()


@pytest.fixture(scope="module")
def data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    X = torch.randn(240, 8, generator=g)
    y = (X[:, 0] > 0).long() + (X[:, 1] > 0.5).long()
    return X, y


@pytest.fixture(scope="module")
def models(data) -> dict[str, nn.Module]:
    """Two models of one architecture, trained differently (different loss ranges)."""
    return {"sharp": trained(0, 60, 0.5, data), "flat": trained(1, 5, 0.1, data)}


def workers() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "ls-widget-worker" and t.is_alive()}


def until(condition, timeout: float = TIMEOUT) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


class Wire:
    """The custom messages each panel of a comparison sends."""

    def __init__(self, views: dict[str, LandscapeWidget]) -> None:
        self.msgs: dict[str, list[tuple[dict, list[bytes]]]] = {name: [] for name in views}
        self.lock = threading.Lock()
        for name, view in views.items():
            original = view.send

            def send(content: dict, buffers: Any = None, name=name, original=original) -> None:
                with self.lock:
                    self.msgs[name].append((content, [bytes(b) for b in buffers or []]))
                original(content, buffers)

            view.send = send  # type: ignore[method-assign]

    def of(self, name: str, kind: str) -> list[tuple[dict, list[bytes]]]:
        with self.lock:
            return [(c, b) for c, b in self.msgs[name] if c["type"] == kind]


# ------------------------------------------------------------------------------ headless
def test_compare_surfaces_are_each_models_own_plane_bit_for_bit(models, data):
    snaps = {name: snapshot(m) for name, m in models.items()}
    surfaces = lw.compare_surfaces(models, data, span=0.8, n=9, seeds=(3, 5), progress=False)
    assert list(surfaces) == ["sharp", "flat"]
    for name, model in models.items():
        land = lw.Landscape(model, data, metrics={"accuracy": lw.metrics.accuracy})
        d1, d2 = lw.directions.random(model, 3), lw.directions.random(model, 5)
        want = land.plane(d1, d2, span=0.8, n=9, progress=False)
        for metric in ("loss", "accuracy"):
            np.testing.assert_array_equal(surfaces[name][metric], want[metric])
        assert surfaces[name].directions == want.directions
        assert surfaces[name].directions[0]["seed"] == 3
        assert_unchanged(model, snaps[name])
    # each model's own filter-normalized directions: the pictures differ
    assert not np.array_equal(surfaces["sharp"]["loss"], surfaces["flat"]["loss"])


def test_compare_surfaces_metrics_default_and_override(models, data):
    loss_only = lw.compare_surfaces(models, data, None, n=3, metrics={}, progress=False)
    assert all(s.metrics == ("loss",) for s in loss_only.values())

    def nll(out, y):
        return F.nll_loss(F.log_softmax(out, 1), y)

    other = lw.compare_surfaces(models, data, nll, n=3, progress=False)
    assert all(s.metrics == ("loss",) for s in other.values()), "no accuracy beside another loss"


BAD_MODELS = [
    ([net(0), net(1)], TypeError, r"dict name → model.*got a list"),
    ({"a": net(0)}, ValueError, r"2 to 4 models.*got 1"),
    ({str(k): net(k) for k in range(5)}, ValueError, r"2 to 4 models.*got 5"),
    ({"a": net(0), 2: net(1)}, TypeError, r"non-empty strings.*got 2"),
    ({"a": net(0), "b": "model.pt"}, TypeError, r"models\['b'\] is a str"),
    ({"a": net(0), "b": net(1, hidden=12)}, ValueError,
     r"'a' and 'b' have different architectures \(parameter '0.weight' is \(16, 8\) in 'a' "
     r"and \(12, 8\) in 'b'\)"),
    ({"a": net(0), "b": nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 3),
                                      nn.Linear(3, 3))},
     ValueError, r"'b' has \['3.weight', '3.bias'\] that 'a' lacks"),
]


@pytest.mark.parametrize(("models_arg", "kind", "message"), BAD_MODELS)
def test_bad_models_are_refused_with_the_fix(models_arg, kind, message, data):
    with pytest.raises(kind, match=message):
        lw.compare_surfaces(models_arg, data, n=3, progress=False)
    before = workers()
    with pytest.raises(kind, match=message):
        lw.compare(models_arg, data, n=3)
    assert workers() == before


@pytest.mark.parametrize(("seeds", "kind", "message"), [
    ((0, 0), ValueError, r"same direction on both axes.*\(0, 1\)"),
    ((0,), ValueError, r"two ints"),
    ("01", ValueError, r"two ints"),
    ((0, 1.5), TypeError, r"must be ints"),
])
def test_bad_seeds_are_refused(seeds, kind, message, models, data):
    with pytest.raises(kind, match=message):
        lw.compare_surfaces(models, data, seeds=seeds, n=3, progress=False)


def test_bad_view_settings_are_refused_and_leave_nothing_running(models, data):
    before = workers()
    for kwargs, kind, message in [
        ({"metric": "f1"}, ValueError, r"metric 'f1' is not computed"),
        ({"span": -1.0}, ValueError, r"positive, finite half-width"),
        ({"n": (5, 7)}, TypeError, r"lw.compare_surfaces\(\.\.\., n=\(nx, ny\)\)"),
        ({"colormap": "jet"}, ValueError, r"colormap 'jet'"),
        ({"n": 101, "max_points": 100}, lw.JobTooLarge, r"max_points=100"),
    ]:
        with pytest.raises(kind, match=message):
            lw.compare(models, data, **kwargs)
        assert workers() == before


def test_a_loss_that_fails_in_the_stream_fails_at_construction(models, data):
    def streamed_loss(out, y):
        if threading.current_thread().name == "ls-widget-worker":
            raise ValueError("labels out of range: fix the targets")
        return F.cross_entropy(out, y)

    before = workers()
    with pytest.raises(ValueError, match="labels out of range"):
        lw.compare(models, data, streamed_loss, n=5)
    assert workers() == before


# ------------------------------------------------------------------------------ the widget
@pytest.fixture
def cmp(models, data):
    c = lw.compare(models, data, span=0.8, n=9, seeds=(3, 5))
    try:
        yield c
    finally:
        c.close()


def test_widget_surfaces_equal_compare_surfaces_and_leave_the_models_unchanged(cmp, models,
                                                                               data):
    snaps = {name: snapshot(m) for name, m in models.items()}
    got = cmp.compute(TIMEOUT)
    want = lw.compare_surfaces(models, data, span=0.8, n=9, seeds=(3, 5), progress=False)
    assert list(got) == list(want) == cmp.names
    for name in want:
        for metric in ("loss", "accuracy"):
            np.testing.assert_array_equal(got[name][metric], want[name][metric])
    for name, model in models.items():
        assert_unchanged(model, snaps[name])
    # the panels are widget references on the compare widget, one worker each
    assert len(cmp.view.panels) == 2
    assert all(isinstance(v, LandscapeWidget) for v in cmp.view.panels)
    assert cmp.view.names == ["sharp", "flat"]


def expected_scale(surfaces: dict[str, Any], metric: str, log: bool) -> tuple[float, float]:
    vals = np.concatenate([np.asarray(s[metric], np.float32).ravel() for s in surfaces.values()])
    vals = vals[np.isfinite(vals) & ((vals > 0) if log else True)]
    return float(vals.min()), float(vals.max())


def test_one_colour_scale_for_every_panel_in_the_protocol(cmp):
    surfaces = cmp.compute(TIMEOUT)
    scale = cmp.view.scale
    assert problems(protocol.ColorRange, scale) == []
    lo, hi = expected_scale(surfaces, "loss", False)
    assert scale == {"gen": cmp.view.generation, "metric": "loss", "log": False, "lo": lo,
                     "hi": hi}
    own = [expected_scale({k: s}, "loss", False) for k, s in surfaces.items()]
    assert own[0] != own[1] and (lo, hi) != own[0] and (lo, hi) != own[1], (
        "the models' ranges differ: the shared scale is neither one's own")
    cmp.metric_select.value = "accuracy"
    assert cmp.view.scale["metric"] == "accuracy"
    assert (cmp.view.scale["lo"], cmp.view.scale["hi"]) == expected_scale(surfaces, "accuracy",
                                                                          False)
    cmp.metric_select.value = "loss"
    cmp.log_checkbox.value = True
    assert cmp.view.scale["log"] is True
    assert (cmp.view.scale["lo"], cmp.view.scale["hi"]) == expected_scale(surfaces, "loss", True)
    # every panel draws as the compare view says
    assert {v.log_scale for v in cmp.view.panels} == {True}


def test_the_scale_follows_the_tiles_as_they_arrive(models, data):
    seen: list[dict] = []
    c = lw.compare(models, data, span=0.8, n=21)
    try:
        assert c.wait(TIMEOUT)  # a scale is shown: the next generation starts from {}
        c.view.observe(lambda ch: seen.append(dict(ch["new"])), names="scale")
        gen = c.view.set_view(span=1.5, n=21)
        assert c.wait(TIMEOUT)
        ranges = [(s["lo"], s["hi"]) for s in seen if s and s["gen"] == gen]
        assert len(ranges) >= 2, "published as the tiles arrived, not only at the end"
        assert all(a[0] >= b[0] and a[1] <= b[1] for a, b in itertools.pairwise(ranges)), (
            "a generation's range only widens")
        assert ranges[-1] == expected_scale(c.compute(), "loss", False)
        assert seen[0] == {}, "a new generation starts from nothing known"
    finally:
        c.close()


def test_one_set_of_sliders_reslices_every_panel(cmp, models, data):
    cmp.compute(TIMEOUT)
    gen = cmp.view.generation
    cmp.span_slider.value = 0.5
    assert cmp.view.generation == gen + 1
    assert {v.generation for v in cmp.view.panels} == {gen + 1}
    cmp.points_slider.value = 7
    assert {len(v.grid_x) for v in cmp.view.panels} == {7}
    surfaces = cmp.compute(TIMEOUT)
    for name, model in models.items():
        land = lw.Landscape(model, data, metrics={"accuracy": lw.metrics.accuracy})
        want = land.plane(lw.directions.random(model, 3), lw.directions.random(model, 5),
                          span=cmp.span_slider.value, n=7, progress=False)
        np.testing.assert_array_equal(surfaces[name]["loss"], want["loss"])


def test_a_refused_grid_changes_no_panel_and_puts_the_slider_back(models, data):
    c = lw.compare(models, data, n=9, max_points=200)
    try:
        gen = c.view.generation
        c.points_slider.max = 31  # past the limit, as a user could not
        with pytest.raises(lw.JobTooLarge, match="max_points=200"):
            c.points_slider.value = 31
        assert c.points_slider.value == 9
        assert {v.generation for v in c.view.panels} == {gen}
    finally:
        c.close()


def test_a_click_asks_every_panel_for_the_sections_through_the_point(cmp, models, data):
    cmp.compute(TIMEOUT)
    wire = Wire(cmp.view.views)
    cmp.view._handle_custom_msg({"type": "pick", "x": 0.25, "y": -0.5}, [])
    assert until(lambda: all(wire.of(name, "cross") for name in models))
    for name, model in models.items():
        (content, bufs), = wire.of(name, "cross")
        assert protocol.check_kernel(content, bufs) == []
        assert (content["x0"], content["y0"]) == (0.25, -0.5)
        xs = np.frombuffer(bufs[0], "<f4").astype(float)
        along_x = np.frombuffer(bufs[1], "<f4").reshape(len(content["metrics"]), -1)
        land = cmp.view.landscapes[name]
        dirs = [lw.directions.random(model, 3), lw.directions.random(model, 5)]
        want = land.evaluate(dirs, np.stack([xs, np.full_like(xs, -0.5)], 1))["loss"]
        np.testing.assert_allclose(along_x[0], want, rtol=1e-6)
    # a malformed pick is ignored (logged), never raised in the comm thread
    cmp.view._handle_custom_msg({"type": "pick", "x": "left"}, [])


def test_figure_draws_the_panels_with_one_colorbar(cmp, tmp_path):
    fig = cmp.figure()
    try:
        panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
        bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
        assert len(panels) == 2 and len(bars) == 1
        assert [ax.get_title().split(" (")[0] for ax in panels] == ["sharp", "flat"]
        filled = [ax.collections[0] for ax in panels]
        assert np.array_equal(filled[0].levels, filled[1].levels), "the same levels"
        assert filled[0].norm.vmin == filled[1].norm.vmin
        assert filled[0].norm.vmax == filled[1].norm.vmax
        surfaces = cmp.surfaces
        every = np.concatenate([s["loss"].ravel() for s in surfaces.values()])
        assert filled[0].levels[0] <= every.min() and filled[0].levels[-1] >= every.max()
        fig.savefig(tmp_path / "compare.png", dpi=60)
        assert (tmp_path / "compare.png").read_bytes()[:4] == b"\x89PNG"
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)


def test_close_leaves_no_thread_after_a_slider_storm(models, data):
    before = workers()
    c = lw.compare(models, data, n=21)
    assert len(workers() - before) == 2, "one worker per model"
    for k in range(30):
        c.span_slider.value = 0.3 + 0.02 * k
    c.close()
    assert workers() == before
    assert all(v.comm is None for v in c.view.panels), "the panels' comms are closed"


def test_compare_view_traits_match_the_typescript_declaration():
    m = re.search(r"^export interface CompareTraits \{\n(.*?)^\}", TS, re.M | re.S)
    assert m
    declared = set(re.findall(r"^  (\w+)\??: [^;]+;$", m.group(1), re.M))
    base = set(anywidget.AnyWidget.class_trait_names(sync=True))
    own = {n for n in CompareWidget.class_trait_names(sync=True) if n not in base}
    assert declared == own
    m = re.search(r"^export interface ColorRange \{\n(.*?)^\}", TS, re.M | re.S)
    assert m
    fields = dict(re.findall(r"^  (\w+): ([^;]+);$", m.group(1), re.M))
    ts = {int: "number", float: "number", str: "string", bool: "boolean"}
    assert fields == {k: ts[v] for k, v in get_type_hints(protocol.ColorRange).items()}


# ------------------------------------------------------------------------------ trajectories
@pytest.fixture(scope="module")
def run(data):
    """A model trained for 12 recorded steps: the model, its trajectory."""
    X, y = data
    model = net(7)
    rec = lw.Recorder(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    for step in range(12):
        opt.zero_grad()
        loss = F.cross_entropy(model(X), y)
        loss.backward()
        opt.step()
        rec.step(step=10 * step, train_loss=float(loss.detach()))
    for p in model.parameters():
        p.grad = None
    return model.eval(), rec.trajectory


def paths_of(msgs: list[tuple[dict, list[bytes]]], gen: int) -> list[tuple[dict, list[bytes]]]:
    return [(c, b) for c, b in msgs if c["type"] == "path" and c["gen"] == gen]


def test_explore_a_trajectory_draws_its_path_on_the_pca_plane(run, data):
    model, traj = run
    snap = snapshot(model)
    pc1, pc2 = lw.directions.pca(traj, k=2)
    want = traj.project(pc1, pc2, origin=model)
    e = lw.explore(model, data, trajectory=traj, n=9)
    try:
        wire = Wire({"view": e.view})
        assert (e.axes["x"].direction.value, e.axes["y"].direction.value) == (pc1.label,
                                                                              pc2.label)
        assert e.view.x_label == pc1.label and "PC1" in pc1.label
        # the span covers the path with a 25 % margin
        reach = max(np.abs(want.alpha).max(), np.abs(want.beta).max())
        assert e.span_slider.value == pytest.approx(1.25 * reach, rel=1e-9)
        assert e.span_slider.value == pytest.approx(path_span(want), rel=1e-9)
        e.view._handle_custom_msg({"type": "ready"}, [])  # a view mounts: replayed
        assert e.wait(TIMEOUT)
        (content, bufs), = paths_of(wire.msgs["view"], e.view.generation)
        assert protocol.check_kernel(content, bufs) == []
        assert content["labels"] == list(want.labels) and content["count"] == len(traj)
        assert "step 110 · loss" in content["labels"][-1]
        np.testing.assert_array_equal(np.frombuffer(bufs[0], "<f4"), want.alpha.astype("<f4"))
        np.testing.assert_array_equal(np.frombuffer(bufs[1], "<f4"), want.beta.astype("<f4"))
        np.testing.assert_array_equal(np.frombuffer(bufs[2], "<i4"), want.steps)
        np.testing.assert_array_equal(np.frombuffer(bufs[3], "<f4"), want.loss.astype("<f4"))
        kinds = [c["type"] for c, _ in wire.msgs["view"] if c["gen"] == e.view.generation]
        assert kinds.index("path") < kinds.index("tile"), "the path comes before the tiles"
        assert_unchanged(model, snap)
    finally:
        e.close()


def test_the_path_shows_on_its_plane_only(run, data):
    model, traj = run
    pc1, pc2 = lw.directions.pca(traj, k=2)
    want = traj.project(pc1, pc2, origin=model)
    e = lw.explore(model, data, trajectory=traj, n=5, span=0.5)
    try:
        assert e.span_slider.value == pytest.approx(0.5), "span= overrides the path's"
        wire = Wire({"view": e.view})
        x_row, y_row = e.axes["x"], e.axes["y"]
        x_row.direction.value = "random #0"  # another plane: no path
        assert e.wait(TIMEOUT)
        assert paths_of(wire.msgs["view"], e.view.generation) == []
        with e._controls.quiet():  # both axes swapped at once
            x_row.direction.value, y_row.direction.value = pc2.label, pc1.label
        e._controls.restart()
        assert e.wait(TIMEOUT)
        (_, bufs), = paths_of(wire.msgs["view"], e.view.generation)
        np.testing.assert_array_equal(np.frombuffer(bufs[0], "<f4"), want.beta.astype("<f4"))
        np.testing.assert_array_equal(np.frombuffer(bufs[1], "<f4"), want.alpha.astype("<f4"))
        y_row.mix.value = 0.5  # a blend of PC1: not the plane either
        assert e.wait(TIMEOUT)
        assert paths_of(wire.msgs["view"], e.view.generation) == []
    finally:
        e.close()


def test_a_bad_trajectory_fails_before_anything_runs(data):
    before = workers()
    with pytest.raises(TypeError, match=r"lw\.Trajectory"):
        lw.explore(net(0), data, trajectory=[{"0.weight": torch.zeros(16, 8)}])
    assert workers() == before


def test_save_png_without_a_screen_draws_the_path_too(run, data, tmp_path, monkeypatch):
    model, traj = run
    drawn: list[Any] = []
    plot = lw.Surface.plot

    def spy(self, *args, **kwargs):
        drawn.append(kwargs.get("path"))
        return plot(self, *args, **kwargs)

    monkeypatch.setattr(lw.Surface, "plot", spy)
    e = lw.explore(model, data, trajectory=traj, n=5)
    try:
        assert e.wait(TIMEOUT)
        out = e.save_png(tmp_path / "trajectory.png")
        assert out.read_bytes()[:4] == b"\x89PNG"
        (path,) = drawn
        pc1, pc2 = lw.directions.pca(traj, k=2)
        want = traj.project(pc1, pc2, origin=model)
        np.testing.assert_array_equal(path.alpha, want.alpha)
        assert tuple(path.labels) == tuple(want.labels)
    finally:
        e.close()


def test_compare_surfaces_runs_without_the_widget_packages():
    code = """
import sys, importlib.abc
class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("anywidget", "ipywidgets", "bqplot", "traitlets"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Hide())
import torch, ls_widget as lw
ms = {"a": torch.nn.Linear(4, 3), "b": torch.nn.Linear(4, 3)}
X, y = torch.randn(20, 4), torch.randint(0, 3, (20,))
surfaces = lw.compare_surfaces(ms, (X, y), n=5, progress=False)
assert [s["loss"].shape for s in surfaces.values()] == [(5, 5), (5, 5)]
try:
    lw.compare(ms, (X, y))
except ImportError as exc:
    assert "ls-widget[widget]" in str(exc) and "compare_surfaces" in str(exc), exc
else:
    raise AssertionError("compare() worked without the widget packages")
assert not any(k.split(".")[0] in ("anywidget", "ipywidgets", "bqplot") for k in sys.modules)
"""
    subprocess.run([sys.executable, "-c", code], check=True)
