"""The message protocol, Python side (ls_widget/widget/protocol.py).

- The recorded session tests/fixtures/session.json (format in the header of
  js/test/replay.test.ts) validates against protocol.py's TypedDicts: every kernel message
  (fields and buffer byte lengths), every trait sync, every frontend message.
- Its frontend messages ("ready", "pick"), played into a real LandscapeWidget on a small MLP,
  make the kernel send messages of the same types in the same order (values may differ),
  except the stale replay of generation 1 that the recording holds: a view that mounts during
  a generation change now gets the current generation's messages only.
- protocol.py and js/src/protocol.ts declare the same interfaces: same keys, optional keys,
  field types, message unions and buffer counts (a crude parse of the TypeScript, but it
  keeps both sides honest).
- Malformed frontend messages are ignored with a logged warning, never raised.

Runs without a kernel (ipywidgets' dummy comm), like tests/test_widget.py.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
import time
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

import anywidget
import numpy as np
import pytest
import torch
import traitlets
from torch import nn

import ls_widget as lw
from ls_widget.widget import protocol
from ls_widget.widget.typecheck import problems
from ls_widget.widget.view import LandscapeWidget

ROOT = Path(__file__).resolve().parents[1]
RECORDING = json.loads((ROOT / "tests" / "fixtures" / "session.json").read_text())
TS = (ROOT / "js" / "src" / "protocol.ts").read_text()
TIMEOUT = 60

# Python TypedDict → TypeScript interface (TypeScript names the JSON part of the messages
# with binary buffers "...Header"; its TileMsg / CrossMsg are the decoded forms).
TS_NAMES = {
    "Status": "Status", "SurfaceInfo": "SurfaceInfo", "LevelMsg": "LevelMsg",
    "TileMsg": "TileHeader", "DoneMsg": "DoneMsg", "ErrorMsg": "ErrorMsg", "PathMsg": "PathHeader",
    "CrossMsg": "CrossHeader", "ReadyMsg": "ReadyMsg", "PickMsg": "PickMsg",
    "SnapshotMsg": "SnapshotMsg",
}


def b64(text: str) -> bytes:
    return base64.b64decode(text)


def synced_traits() -> dict[str, traitlets.TraitType]:
    """LandscapeWidget's own synced traits (not those every anywidget has)."""
    base = set(anywidget.AnyWidget.class_trait_names(sync=True))
    return {name: trait for name, trait in LandscapeWidget.class_traits(sync=True).items()
            if name not in base}


def trait_problems(values: dict[str, Any]) -> list[str]:
    """What is wrong with trait values as they travel (the bytes trait as base64 text)."""
    traits, holder = synced_traits(), traitlets.HasTraits()
    found = [f"{name}: not a synced trait" for name in values if name not in traits]
    for name, value in values.items():
        if name == "status" and value != {}:
            found += problems(protocol.Status, value, name)
        elif name == "surface_info" and value != {}:
            found += problems(protocol.SurfaceInfo, value, name)
        elif name == "surface":
            info = values.get("surface_info") or {}
            size = len(b64(value))
            want = 4 * len(info.get("metrics", [])) * info.get("nx", 0) * info.get("ny", 0)
            if size != want:
                found.append(f"surface: {size} bytes, {want} expected from surface_info")
        elif name in traits and name not in ("status", "surface_info"):
            try:
                traits[name].validate(holder, value)
            except traitlets.TraitError as exc:
                found.append(f"{name}: {exc}")
    return found


def kernel_entries(messages: list[dict]) -> list[tuple[dict, list[bytes]]]:
    """The recorded kernel messages that are not stale (of a generation older than the
    `generation` trait when they crossed)."""
    gen = RECORDING["traits"]["generation"]
    out = []
    for e in messages:
        if e["dir"] == "sync":
            gen = e["content"].get("generation", gen)
        elif e["dir"] == "kernel" and e["content"]["gen"] >= gen:
            out.append((e["content"], [b64(b) for b in e["buffers"]]))
    return out


def shape_of(msgs: list[tuple[dict, list[bytes]]]) -> tuple[list[tuple], dict[tuple, int]]:
    """The types in order, consecutive tiles of one level as one entry, and the points sent
    per (generation, level): what must match whatever the batching."""
    order: list[tuple] = []
    points: dict[tuple, int] = {}
    for content, _ in msgs:
        key: tuple = (content["type"], content["gen"])
        if content["type"] in ("level", "tile"):
            key += (content["level"],)
        if content["type"] == "tile":
            points[key[1:]] = points.get(key[1:], 0) + content["count"]
        if not (order and order[-1] == key and key[0] == "tile"):
            order.append(key)
    return order, points


# ------------------------------------------------------------------------------ the recording
def test_recorded_kernel_messages_conform():
    kinds = set()
    for e in RECORDING["messages"]:
        if e["dir"] == "kernel":
            buffers = [b64(b) for b in e["buffers"]]
            assert protocol.check_kernel(e["content"], buffers) == [], e["content"]
            kinds.add(e["content"]["type"])
    assert kinds == {"level", "tile", "done", "cross"}


def test_recorded_traits_and_syncs_conform():
    assert set(RECORDING["traits"]) == set(synced_traits())
    assert trait_problems(RECORDING["traits"]) == []
    syncs = [e["content"] for e in RECORDING["messages"] if e["dir"] == "sync"]
    assert any("surface" in s for s in syncs) and any("generation" in s for s in syncs)
    for content in syncs:
        assert trait_problems(content) == [], content


def test_recorded_frontend_messages_parse():
    kinds = []
    for e in RECORDING["messages"]:
        if e["dir"] == "frontend":
            buffers = [b64(b) for b in e["buffers"]]
            assert protocol.parse_frontend(e["content"], buffers) == e["content"]
            kinds.append(e["content"]["type"])
    assert kinds == ["ready", "pick", "ready", "pick"]


def test_the_checks_catch_what_is_wrong():
    content, buffers = next(
        (e["content"], [b64(b) for b in e["buffers"]]) for e in RECORDING["messages"]
        if e["dir"] == "kernel" and e["content"]["type"] == "tile"
    )
    assert protocol.check_kernel(content, buffers) == []
    assert protocol.check_kernel({**content, "count": content["count"] + 1}, buffers)
    assert protocol.check_kernel(content, buffers[:2])
    assert protocol.check_kernel({**content, "gen": True}, buffers)
    assert protocol.check_kernel({**content, "exact": 1}, buffers)
    assert protocol.check_kernel({**content, "metrics": "loss"}, buffers)
    assert protocol.check_kernel({**content, "typo": 1}, buffers)
    assert protocol.check_kernel({k: v for k, v in content.items() if k != "level"}, buffers)
    no_exact = {k: v for k, v in content.items() if k != "exact"}
    assert protocol.check_kernel(no_exact, buffers) == [], "exact is optional"
    assert protocol.check_kernel({"type": "tiles"}, [])
    status = protocol.status("done", 3, level=1, levels=2, fraction=1.0)
    assert problems(protocol.Status, status) == []
    assert problems(protocol.Status, {**status, "state": "finished"})
    assert problems(protocol.Status, {**status, "fraction": "1"})
    assert problems(protocol.Status, {**status, "level": 1.5})


def test_constructors_build_conforming_messages():
    rows, cols = np.array([0, 2]), np.array([1, 3])
    vals = np.array([[1.0, 2.0], [0.5, 0.25]])
    made = [
        (protocol.level_msg(1, 0, np.array([0, 2]), np.array([0, 1, 2])), []),
        protocol.tile_msg(1, 0, rows, cols, vals, ["loss", "accuracy"], exact=False),
        (protocol.done_msg(1), []),
        (protocol.error_msg(1, "ValueError: no"), []),
        protocol.cross_msg(np.int64(1), 0.5, -0.25, np.linspace(0, 1, 5),
                           {"loss": np.ones(5)}, np.linspace(0, 1, 3), {"loss": np.ones(3)}),
    ]
    for content, buffers in made:
        assert protocol.check_kernel(content, buffers) == [], content
        json.dumps(content)  # plain JSON types only (no NumPy scalars)
    _, buffers = made[1]
    assert np.frombuffer(buffers[2], "<f4").tolist() == [1.0, 2.0, 0.5, 0.25]
    info = protocol.surface_info(2, np.zeros(3), np.zeros(2), ["loss"], "a", "b")
    assert problems(protocol.SurfaceInfo, info) == [] and (info["nx"], info["ny"]) == (3, 2)


# ------------------------------------------------------------------------------ TypeScript
def ts_interfaces(text: str) -> dict[str, dict[str, tuple[str, bool]]]:
    """interface name → field → (type as written, optional), with inherited fields."""
    found: dict[str, dict[str, tuple[str, bool]]] = {}
    pattern = r"^export interface (\w+)(?: extends (\w+))? \{\n(.*?)^\}"
    for m in re.finditer(pattern, text, re.M | re.S):
        fields = dict(found.get(m.group(2) or "", {}))
        for f in re.finditer(r"^  (\w+)(\??): ([^;]+);$", m.group(3), re.M):
            fields[f.group(1)] = (f.group(3).strip(), f.group(2) == "?")
        found[m.group(1)] = fields
    return found


def ts_type(hint: Any) -> str:
    """A Python field type written as TypeScript."""
    if get_origin(hint) is Literal:
        return " | ".join(json.dumps(a) for a in get_args(hint))
    if get_origin(hint) is list:
        return ts_type(get_args(hint)[0]) + "[]"
    return {int: "number", float: "number", str: "string", bool: "boolean"}[hint]


def ts_union(name: str) -> list[str]:
    m = re.search(rf"^export type {name} = ([^;]+);", TS, re.M)
    assert m, name
    return [s.strip() for s in m.group(1).split("|")]


def ts_counts(name: str) -> dict[str, int]:
    m = re.search(rf"^export const {name}\b.*?= \{{([^}}]*)\}};", TS, re.M)
    assert m, name
    return {k: int(v) for k, v in re.findall(r"(\w+): (\d+)", m.group(1))}


def test_python_and_typescript_declare_the_same_interfaces():
    ts = ts_interfaces(TS)
    for py_name, ts_name in TS_NAMES.items():
        kind = getattr(protocol, py_name)
        hints = get_type_hints(kind)
        fields = ts[ts_name]
        assert set(hints) == set(fields), (py_name, ts_name)
        assert {k for k, (_, opt) in fields.items() if opt} == set(kind.__optional_keys__)
        for key, hint in hints.items():
            assert ts_type(hint) == fields[key][0], (py_name, key)


def test_python_and_typescript_list_the_same_messages_and_traits():
    to_ts = {py.__name__: TS_NAMES[py.__name__] for py in protocol.KERNEL_MESSAGES.values()}
    assert sorted(to_ts.values()) == sorted(ts_union("KernelHeader"))
    for kind, cls in {**protocol.KERNEL_MESSAGES, **protocol.FRONTEND_MESSAGES}.items():
        assert get_type_hints(cls)["type"] == Literal[kind]
    assert sorted(c.__name__ for c in protocol.FRONTEND_MESSAGES.values()) == sorted(
        ts_union("FrontendMsg"))
    assert ts_counts("KERNEL_BUFFERS") == protocol.KERNEL_BUFFERS
    assert ts_counts("FRONTEND_BUFFERS") == protocol.FRONTEND_BUFFERS
    assert set(ts_interfaces(TS)["Traits"]) == set(synced_traits())


# ------------------------------------------------------------------------------ live replay
@pytest.fixture(scope="module")
def mlp_landscape():
    """A 2-layer MLP on random data, as recorded, and three random directions."""
    torch.manual_seed(0)
    X, y = torch.randn(200, 8), torch.randint(0, 3, (200,))
    model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 3))
    land = lw.Landscape(model, (X, y), metrics={"accuracy": lw.metrics.accuracy})
    return land, [lw.directions.random(model, seed=s) for s in range(3)]


class Wire:
    """What a widget puts on its comm: custom messages and trait changes, in order."""

    def __init__(self, widget: LandscapeWidget) -> None:
        self.msgs: list[tuple[dict, list[bytes]]] = []
        self.changes: list[tuple[str, Any]] = []
        self.lock = threading.Lock()
        original = widget.send

        def send(content: dict, buffers: list[bytes] | None = None) -> None:
            with self.lock:
                self.msgs.append((content, [bytes(b) for b in buffers or []]))
            original(content, buffers)

        def changed(change: dict) -> None:
            with self.lock:
                self.changes.append((change["name"], change["new"]))

        widget.send = send  # type: ignore[method-assign]
        widget.observe(changed, names=list(synced_traits()))

    def count(self, kind: str) -> int:
        with self.lock:
            return sum(1 for c, _ in self.msgs if c["type"] == kind)


def until(condition, timeout: float = TIMEOUT) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_recorded_frontend_messages_replayed_into_a_live_widget(mlp_landscape):
    land, (d0, d1, d2) = mlp_landscape
    gate = threading.Event()  # holds the stream back, as before a view mounted
    stream = land.stream

    def held(*args: Any, **kwargs: Any) -> Any:
        assert gate.wait(TIMEOUT)
        return stream(*args, **kwargs)

    land.stream = held  # type: ignore[method-assign]
    traits = RECORDING["traits"]
    x, y = traits["grid_x"], traits["grid_y"]
    w = LandscapeWidget(land, d0, d1, span=((x[0], x[-1]), (y[0], y[-1])), n=(len(x), len(y)))
    wire = Wire(w)
    try:
        assert {name: getattr(w, name) for name in ("grid_x", "grid_y", "generation")} == {
            "grid_x": x, "grid_y": y, "generation": traits["generation"]}
        for e in RECORDING["messages"]:
            content = e["content"]
            if e["dir"] == "sync" and content.get("generation", w.generation) != w.generation:
                # The recorded session changed the view here: the same change, held back.
                assert w.wait(TIMEOUT)
                gate.clear()
                before = len(wire.changes)
                gx, gy = content["grid_x"], content["grid_y"]
                w.set_view(d0, d2, span=((gx[0], gx[-1]), (gy[0], gy[-1])),
                           n=(len(gx), len(gy)))
                assert (w.grid_x, w.grid_y, w.generation) == (gx, gy, content["generation"])
                assert {name for name, _ in wire.changes[before:]} == set(content)
            elif e["dir"] == "frontend" and content["type"] == "ready":
                before = len(wire.msgs)
                w._handle_custom_msg(content, [])
                # Nothing of this generation was sent yet, and nothing older is replayed.
                assert wire.msgs[before:] == []
                gate.set()
                assert w.wait(TIMEOUT) and w.status["state"] == "done"
            elif e["dir"] == "frontend" and content["type"] == "pick":
                want = wire.count("cross") + 1
                w._handle_custom_msg(content, [])
                assert until(lambda n=want: wire.count("cross") == n)
                answer = wire.msgs[-1][0]
                assert (answer["x0"], answer["y0"]) == (content["x"], content["y"])
    finally:
        gate.set()
        w.close()
        del land.stream
    for content, buffers in wire.msgs:
        assert protocol.check_kernel(content, buffers) == [], content
    surfaces = 0
    for k, (name, value) in enumerate(wire.changes):
        if name == "surface":  # set with its surface_info (next), in one sync
            info = next(v for n, v in wire.changes[k:] if n == "surface_info")
            value = base64.b64encode(value).decode()
            assert trait_problems({name: value, "surface_info": info}) == []
            surfaces += 1
        else:
            assert trait_problems({name: value}) == [], (name, value)
    assert surfaces == 2
    assert shape_of(wire.msgs) == shape_of(kernel_entries(RECORDING["messages"]))
    assert len(kernel_entries(RECORDING["messages"])) < sum(
        e["dir"] == "kernel" for e in RECORDING["messages"]), "the recording holds stale ones"


# ------------------------------------------------------------------------------ malformed
MALFORMED = [
    (None, []),
    ([], []),
    ({"x": 1.0}, []),
    ({"type": 3}, []),
    ({"type": ["ready"]}, []),
    ({"type": "nope"}, []),
    ({"type": "ready"}, [b"unexpected"]),
    ({"type": "pick", "x": 0.5}, []),
    ({"type": "pick", "x": "0.5", "y": 0.0}, []),
    ({"type": "pick", "x": True, "y": 0.0}, []),
    ({"type": "pick", "x": float("nan"), "y": 0.0}, []),
    ({"type": "pick", "x": 0.5, "y": float("inf")}, []),
    ({"type": "snapshot", "gen": 1}, []),
    ({"type": "snapshot", "gen": "1"}, [b"\x89PNG"]),
    ({"type": "snapshot", "gen": 1}, ["not bytes"]),
    ({"type": "snapshot", "gen": 1}, None),
]


@pytest.mark.parametrize(("content", "buffers"), MALFORMED)
def test_malformed_frontend_messages_are_ignored_with_a_warning(content, buffers, caplog):
    with caplog.at_level(logging.WARNING, logger="ls_widget.widget.protocol"):
        assert protocol.parse_frontend(content, buffers) is None
    assert "malformed" in caplog.text


def test_frontend_fields_it_does_not_know_are_dropped():
    msg = protocol.parse_frontend({"type": "pick", "x": 1, "y": -0.5, "button": 0}, [])
    assert msg == {"type": "pick", "x": 1, "y": -0.5}
    snap = protocol.parse_frontend({"type": "snapshot", "gen": 2}, [memoryview(b"png")])
    assert snap == {"type": "snapshot", "gen": 2}


def test_a_widget_ignores_malformed_messages_and_keeps_serving(mlp_landscape, caplog):
    land, (d0, d1, _) = mlp_landscape
    w = LandscapeWidget(land, d0, d1, span=0.5, n=7)
    try:
        assert w.wait(TIMEOUT)
        wire = Wire(w)  # from here on: the malformed messages must not make it send
        with caplog.at_level(logging.WARNING, logger="ls_widget.widget.protocol"):
            for content, buffers in MALFORMED:
                w._handle_custom_msg(content, buffers)  # no exception in the comm thread
        assert caplog.text.count("malformed") == len(MALFORMED)
        time.sleep(0.1)
        assert wire.msgs == [] and w._worker.thread.is_alive()
        w._handle_custom_msg({"type": "pick", "x": 0.25, "y": -0.25}, [])
        assert until(lambda: wire.count("cross") == 1)
    finally:
        w.close()
