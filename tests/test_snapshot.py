"""The picture a saved notebook keeps (widget/snapshot.py): the PNG checks, the two outputs IPython
shows for a view or an explorer, and their update by display id when the frontend sends a PNG.

IPython runs in-process with a capturing display publisher: what would go to the notebook is
recorded as (data, metadata, transient, update). The frontend is played by calling the widget's
message handler, as tests/test_widget.py does.
"""

from __future__ import annotations

import base64
import builtins
import io
import logging
import struct
import types
import zlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import ls_widget as lw
from ls_widget.widget import snapshot
from ls_widget.widget.view import LandscapeWidget

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def png_bytes(width: int = 40, height: int = 20, dpi: float | None = 192.0) -> bytes:
    """A PNG with a gradient (not uniform), with a pHYs chunk when `dpi` is given."""
    ramp = np.linspace(0, 255, width * height * 3).reshape(height, width, 3).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(ramp).save(buf, "PNG", **({"dpi": (dpi, dpi)} if dpi else {}))
    return buf.getvalue()


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def frontend(widget: LandscapeWidget, content: dict, buffers: list[bytes]) -> None:
    """Deliver a message as if the browser sent it."""
    widget._handle_custom_msg(content, buffers)


@pytest.fixture
def ipython() -> Iterator[Any]:
    """An IPython shell in this process whose display publisher records every output."""
    from IPython.core.displaypub import CapturingDisplayPublisher
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    assert not InteractiveShell.initialized()
    had = {k for k in ("__IPYTHON__", "display") if k in vars(builtins)}
    config = Config()
    config.HistoryManager.enabled = False  # no history database written
    shell = InteractiveShell.instance(config=config,
                                      user_module=types.ModuleType("lsw_snapshot_test"))
    shell.display_pub = CapturingDisplayPublisher()
    try:
        yield shell
    finally:
        InteractiveShell.clear_instance()
        for key in {"__IPYTHON__", "display"} - had:  # what the shell put in builtins
            vars(builtins).pop(key, None)


def outputs(shell: Any) -> list[dict[str, Any]]:
    return list(shell.display_pub.outputs)


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    X, y = torch.randn(200, 6), torch.randint(0, 3, (200,))
    model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))
    land = lw.Landscape(model, (X, y))
    d1, d2 = (lw.directions.random(model, seed=s) for s in (0, 1))
    return model, X, y, land, d1, d2


@pytest.fixture
def view(setup) -> Iterator[LandscapeWidget]:
    _, _, _, land, d1, d2 = setup
    w = LandscapeWidget(land, d1, d2, n=5)
    try:
        assert w.wait(60)
        yield w
    finally:
        w.close()


# ------------------------------------------------------------------------------ PNG checks
def test_read_png_gives_size_and_density_from_phys():
    info = snapshot.read_png(png_bytes(40, 20, dpi=192))
    assert (info.width, info.height) == (40, 20)
    assert info.scale == pytest.approx(2.0, abs=1e-3)
    assert info.css_size == (20, 10)
    plain = snapshot.read_png(png_bytes(40, 20, dpi=None))
    assert plain.scale == 1.0 and plain.css_size == (40, 20)


def _malformed() -> list[tuple[bytes, str]]:
    good = png_bytes()
    ihdr = good[8:33]
    iend = chunk(b"IEND", b"")
    return [
        (b"GIF89a" + good[6:], "not a PNG"),
        (good[:-5], "truncated PNG"),
        (good[:40] + bytes([good[40] ^ 0xFF]) + good[41:], "fails its CRC"),
        (good + b"trailing", "no IEND chunk at its end"),
        (snapshot.PNG_SIGNATURE + ihdr + iend, "no IDAT"),
        (snapshot.PNG_SIGNATURE + iend, "does not start with a 13-byte IHDR"),
        (snapshot.PNG_SIGNATURE + chunk(b"IHDR", struct.pack(">II5B", 0, 4, 8, 2, 0, 0, 0))
         + good[33:], r"0 × 4 px"),
        (b"\x89PNG\r\n\x1a\n" + bytes(snapshot.MAX_PNG_BYTES), "over the limit"),
    ]


@pytest.mark.parametrize(("data", "problem"), _malformed(),
                         ids=["signature", "truncated", "crc", "trailing", "no-idat", "no-ihdr",
                              "zero-width", "too-big"])
def test_read_png_names_what_is_wrong(data, problem):
    with pytest.raises(ValueError, match=problem):
        snapshot.read_png(data)


def test_stamp_puts_the_marker_after_ihdr_and_keeps_the_pixels():
    png = png_bytes()
    stamped = snapshot.stamp(png)
    assert stamped[37:41] == b"tEXt" and stamped[41:51] == b"ls-widget\x00"
    snapshot.read_png(stamped)  # still a valid PNG, CRCs included
    assert np.array_equal(pixels(stamped), pixels(png))
    assert Image.open(io.BytesIO(stamped)).info["ls-widget"] == "static picture"


# ------------------------------------------------------------------------------ display
def test_view_displays_itself_then_its_picture(ipython, view):
    from IPython.display import display

    display(view)
    first, second = outputs(ipython)
    assert first["data"][WIDGET_VIEW]["model_id"] == view.model_id
    assert "last picture follows" in first["data"]["text/plain"]
    assert first["transient"] in (None, {})  # the view itself is not updated by id
    # the picture: a placeholder with the marker until the frontend sends one
    assert second["transient"] == {"display_id": view.picture.display_id}
    assert not second["update"]
    placeholder = base64.b64decode(second["data"]["image/png"])
    assert snapshot.read_png(placeholder).width == 1 and placeholder[41:50] == b"ls-widget"
    assert second["data"]["text/plain"] == snapshot.PLACEHOLDER_TEXT
    assert view.picture.png is None


def test_a_snapshot_updates_the_picture_by_display_id(ipython, view):
    from IPython.display import display

    display(view)
    sent = png_bytes(40, 20, dpi=192)
    frontend(view, {"type": "snapshot", "gen": view.generation}, [sent])
    update = outputs(ipython)[-1]
    assert update["update"] and update["transient"] == {"display_id": view.picture.display_id}
    shown = base64.b64decode(update["data"]["image/png"])
    assert np.array_equal(pixels(shown), pixels(sent))
    assert shown == snapshot.stamp(sent) == view.picture.png
    assert update["metadata"] == {"image/png": {"width": 20, "height": 10}}  # CSS px at 2×
    assert update["data"]["text/plain"] == (
        f"ls-widget picture: loss over {view.x_label} × {view.y_label}, 5×5 points")
    # the same pixels again (a second view of the widget): nothing more is sent
    n = len(outputs(ipython))
    frontend(view, {"type": "snapshot", "gen": view.generation}, [sent])
    assert len(outputs(ipython)) == n
    # displayed again (`w` in another cell): the same display id, the current picture
    display(view)
    again = outputs(ipython)[-1]
    assert again["transient"] == {"display_id": view.picture.display_id}
    assert not again["update"]
    assert base64.b64decode(again["data"]["image/png"]) == view.picture.png


def test_a_malformed_or_stale_snapshot_is_ignored_with_a_log(ipython, view, caplog):
    from IPython.display import display

    display(view)
    n = len(outputs(ipython))
    fake = b"\x89PNG\r\n\x1a\nfrom-the-screen"
    with caplog.at_level(logging.WARNING, logger="ls_widget.widget.snapshot"):
        frontend(view, {"type": "snapshot", "gen": view.generation}, [fake])
    assert "ignored a snapshot from the frontend: truncated PNG" in caplog.text
    assert len(outputs(ipython)) == n and view.picture.png is None
    # the older generation's PNG arrives after the newer one's: the newer stays
    newer = png_bytes(40, 20)
    frontend(view, {"type": "snapshot", "gen": view.generation}, [newer])
    frontend(view, {"type": "snapshot", "gen": view.generation - 1}, [png_bytes(8, 8)])
    assert view.picture.png == snapshot.stamp(newer)
    assert len(outputs(ipython)) == n + 1
    # a message that does not even parse: the protocol drops it, the picture is untouched
    frontend(view, {"type": "snapshot", "gen": "1"}, [newer])
    assert len(outputs(ipython)) == n + 1


def test_a_failing_publisher_never_raises_in_the_comm_handler(ipython, view, caplog):
    from IPython.display import display

    display(view)

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("iopub is gone")

    ipython.display_pub.publish = broken
    with caplog.at_level(logging.WARNING, logger="ls_widget.widget.snapshot"):
        frontend(view, {"type": "snapshot", "gen": view.generation}, [png_bytes()])
    assert "could not update the saved picture" in caplog.text
    assert view.picture.png is not None


def test_without_ipython_a_snapshot_is_kept_and_nothing_printed(view, capsys):
    sent = png_bytes()
    frontend(view, {"type": "snapshot", "gen": view.generation}, [sent])
    assert view.picture.png == snapshot.stamp(sent)
    assert capsys.readouterr() == ("", "")


def test_explorer_displays_its_box_then_the_views_picture(ipython, setup):
    from IPython.display import display

    model, X, y, *_ = setup
    e = lw.explore(model, (X, y), n=5)
    try:
        assert e.wait(60)
        display(e)
        box, picture = outputs(ipython)
        assert box["data"][WIDGET_VIEW]["model_id"] == e.model_id  # the VBox, controls and all
        assert box["data"]["text/plain"].startswith("Explorer (ls-widget)")
        assert picture["transient"] == {"display_id": e.view.picture.display_id}
        frontend(e.view, {"type": "snapshot", "gen": e.view.generation}, [png_bytes()])
        assert outputs(ipython)[-1]["update"]
    finally:
        e.close()
    # closed: no view any more, the last picture alone
    display(e)
    closed = outputs(ipython)[3:]
    assert [o["transient"] for o in closed] == [{"display_id": e.view.picture.display_id}]
    assert base64.b64decode(closed[0]["data"]["image/png"]) == e.view.picture.png
