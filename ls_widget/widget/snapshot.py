"""The picture a saved notebook keeps: a PNG output beside the live view, updated by display id.

A widget view lives only while a kernel and the widget JavaScript run; a notebook reopened
without them, its `nbconvert --to html` page (offline) or GitHub's viewer show what the cell's
outputs hold. So IPython displays the widget as two outputs (`display_with_picture`): the widget
view, and a `display_data` with a display id whose bundle is an ``image/png`` (every viewer
renders one) and a ``text/plain``. After each finished surface, restyle or new cross-section the
frontend sends the kernel a PNG of exactly what it shows (the "snapshot" message, js/src/
snapshot.ts); `StaticPicture.update` checks it and puts it in that output with
`IPython.display.update_display`, which also reaches the outputs of cells that have finished
(and every output of a widget displayed twice: they share the display id).

While the view is live, the frontend hides the output that follows it when its PNG carries our
marker, a ``tEXt`` chunk with the keyword ``ls-widget`` right after the header: no HTML is
needed to find it (JupyterLab sanitizes the HTML of untrusted notebooks, data URLs included,
and GitHub renders ``image/png`` more reliably than HTML). The frontend's PNG states its
density in a ``pHYs`` chunk (2 device pixels per CSS pixel at most), from which the output's
display size in CSS pixels is set, so the picture is as large as on screen and sharp.
"""

from __future__ import annotations

import base64
import logging
import struct
import uuid
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..results.records import Surface

log = logging.getLogger(__name__)

__all__ = [
    "MARKER_KEYWORD",
    "PngInfo",
    "StaticPicture",
    "describe",
    "display_with_picture",
    "read_png",
    "stamp",
]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MARKER_KEYWORD = b"ls-widget"
"""Keyword of the tEXt chunk that marks a PNG as a widget's static picture (snapshot.ts)."""
MARKER = b"tEXt", MARKER_KEYWORD + b"\x00static picture"
CSS_PX_PER_METRE = 96 / 0.0254
"""CSS pixels per metre (96 per inch): a pHYs of this density is 1 device px per CSS px."""
MAX_PNG_BYTES = 16 * 2**20
"""A bigger snapshot is refused (at 2 × the view is 1,644 × 800 px, about 0.2 MB)."""
MAX_SIDE = 8192
"""Widest and tallest PNG accepted, in pixels."""
PLACEHOLDER_TEXT = "ls-widget: the picture appears here once a surface is drawn in a browser"


@dataclass(frozen=True)
class PngInfo:
    """What the kernel needs of a PNG: its size and density.

    Attributes:
        width: width in pixels.
        height: height in pixels.
        scale: device pixels per CSS pixel, from the pHYs chunk (1.0 when it has none).
    """

    width: int
    height: int
    scale: float

    @property
    def css_size(self) -> tuple[int, int]:
        """Width and height in CSS pixels, as the picture was on screen."""
        return max(1, round(self.width / self.scale)), max(1, round(self.height / self.scale))


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, data) of every chunk, checked: lengths inside the file, CRCs, IEND last."""
    if data[:8] != PNG_SIGNATURE:
        raise ValueError("not a PNG (its first 8 bytes are not the PNG signature)")
    out: list[tuple[bytes, bytes]] = []
    at = 8
    while at < len(data):
        if at + 12 > len(data):
            raise ValueError(f"truncated PNG: a chunk header at byte {at} runs past the end")
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind = data[at + 4 : at + 8]
        end = at + 12 + length
        if end > len(data):
            raise ValueError(f"truncated PNG: chunk {kind!r} of {length} bytes runs past the end")
        body = data[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", data[at + 8 + length : end])
        if zlib.crc32(kind + body) != crc:
            raise ValueError(f"corrupt PNG: chunk {kind!r} at byte {at} fails its CRC")
        out.append((kind, body))
        at = end
        if kind == b"IEND":
            break
    if not out or out[-1][0] != b"IEND" or at != len(data):
        raise ValueError("truncated PNG: no IEND chunk at its end")
    return out


def read_png(data: bytes) -> PngInfo:
    """Size and density of a PNG, or a ValueError saying what is wrong with it.

    The whole structure is checked (signature, IHDR first, chunk lengths and CRCs, IDAT, IEND
    last), not the pixels: the kernel never decodes them.
    """
    if len(data) > MAX_PNG_BYTES:
        raise ValueError(f"PNG of {len(data)} bytes, over the limit of {MAX_PNG_BYTES}")
    chunks = _chunks(data)
    kind, ihdr = chunks[0]
    if kind != b"IHDR" or len(ihdr) != 13:
        raise ValueError("corrupt PNG: it does not start with a 13-byte IHDR chunk")
    width, height = struct.unpack(">II", ihdr[:8])
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        raise ValueError(f"PNG of {width} × {height} px: each side must be 1 to {MAX_SIDE}")
    if not any(k == b"IDAT" for k, _ in chunks):
        raise ValueError("corrupt PNG: no IDAT chunk (no pixels)")
    scale = 1.0
    for kind, body in chunks:
        if kind == b"pHYs" and len(body) == 9:
            ppm_x, _, unit = struct.unpack(">IIB", body)
            if unit == 1 and ppm_x > 0:  # pixels per metre
                scale = min(max(ppm_x / CSS_PX_PER_METRE, 0.25), 16.0)
    return PngInfo(width, height, scale)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def stamp(png: bytes) -> bytes:
    """`png` with our marker chunk right after its IHDR (where snapshot.ts looks for it)."""
    ihdr_end = 8 + 12 + 13
    return png[:ihdr_end] + _chunk(*MARKER) + png[ihdr_end:]


def _placeholder() -> bytes:
    """A 1 × 1 transparent PNG: the output's content until the first snapshot arrives."""
    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 6, 0, 0, 0)  # 8-bit RGBA
    pixels = zlib.compress(b"\x00" + bytes(4))  # filter byte, then one transparent pixel
    return PNG_SIGNATURE + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", pixels) + _chunk(b"IEND", b"")


def describe(widget: Any) -> str:
    """The static picture's text: what the view draws, e.g. "loss over random #0 × random #1,
    41×41 points"."""
    x = getattr(widget, "x_label", "") or "d₁"
    y = getattr(widget, "y_label", "") or "d₂"
    nx, ny = len(getattr(widget, "grid_x", [])), len(getattr(widget, "grid_y", []))
    metric = getattr(widget, "metric", "") or "loss"
    return f"ls-widget picture: {metric} over {x} × {y}, {nx}×{ny} points"


class StaticPicture:
    """The output that keeps a widget's last picture: shown below the view, updated by id.

    Attributes:
        display_id: the IPython display id of the output (one per widget: every output showing
            it is updated together).
    """

    def __init__(self) -> None:
        self.display_id = f"ls-widget-{uuid.uuid4().hex}"
        self._png = stamp(_placeholder())
        self._size: tuple[int, int] | None = None  # CSS size; None for the placeholder
        self._text = PLACEHOLDER_TEXT
        self._gen = -1
        self._shown = False

    @property
    def png(self) -> bytes | None:
        """The PNG the output holds (with our marker), None until a snapshot arrived."""
        return self._png if self._size is not None else None

    def bundle(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The output's data (image/png, text/plain) and metadata (its size in CSS px)."""
        data = {"image/png": base64.b64encode(self._png).decode("ascii"),
                "text/plain": self._text}
        metadata: dict[str, Any] = {}
        if self._size is not None:
            width, height = self._size
            metadata = {"image/png": {"width": width, "height": height}}
        return data, metadata

    def show(self) -> None:
        """Display the output in the current cell (in IPython; a no-op elsewhere)."""
        if not _in_ipython():
            return
        from IPython.display import display

        data, metadata = self.bundle()
        display(data, metadata=metadata, raw=True, display_id=self.display_id)
        self._shown = True

    def update(self, gen: int, png: bytes, text: str) -> bool:
        """Take the frontend's PNG of generation `gen` and update the outputs shown.

        A PNG that is not a valid one, or of an older generation than the picture held, is
        ignored with a logged warning; this never raises (it runs in the comm handler). Returns
        whether the picture changed.
        """
        try:
            info = read_png(png)
        except ValueError as exc:
            log.warning("ls-widget: ignored a snapshot from the frontend: %s", exc)
            return False
        if gen < self._gen:
            log.info("ls-widget: ignored a snapshot of generation %d (%d is shown)", gen,
                     self._gen)
            return False
        stamped = stamp(png)
        self._gen = gen
        if stamped == self._png and text == self._text:
            return False  # a second view of the same widget sent the same pixels
        self._png, self._size, self._text = stamped, info.css_size, text
        if self._shown and _in_ipython():
            from IPython.display import update_display

            data, metadata = self.bundle()
            try:
                update_display(data, metadata=metadata, raw=True, display_id=self.display_id)
            except Exception as exc:  # the comm handler must not raise
                log.warning("ls-widget: could not update the saved picture: %r", exc)
        return True


def _in_ipython() -> bool:
    """Whether an IPython shell runs (outside one, IPython's display() would print)."""
    from IPython.core.interactiveshell import InteractiveShell

    return bool(InteractiveShell.initialized())


def display_with_picture(widget: Any, picture: StaticPicture) -> None:
    """Display `widget` as IPython does for `_ipython_display_`: its ipywidgets view (with a
    short text for viewers that cannot show it), then `picture`. A closed widget (no view any
    more) shows its picture alone."""
    from IPython.display import display

    view = getattr(widget, "_repr_mimebundle_", None)  # ipywidgets sets it to None on close
    bundle = view() if callable(view) else None
    # ipywidgets returns the data, anywidget (data, metadata) (Colab's widget manager is there)
    data, metadata = bundle if isinstance(bundle, tuple) else (bundle, {})
    if data:
        name = type(widget).__name__
        data = {**data, "text/plain": f"{name} (ls-widget): the live view needs a running "
                                     "kernel; its last picture follows"}
        display(data, metadata=metadata or {}, raw=True)
    picture.show()


def drawn_png(surf: Surface, path: Path, *, dpi: int, trajectory: Any = None,
              width: int | None = None, height: int | None = None,
              cross: tuple[float, float] | None = None, **style: Any) -> Path:
    """`surf` drawn by matplotlib as the view styles it (metric, log, levels, colormap),
    with the trajectory drawn over it, written to `path` (when no frontend sent a picture,
    or when a size or a vector format is asked for). PNG of no given size: the contour
    figure; with `width`/`height` in pixels, or to .svg/.pdf: the explorer's layout, the
    contour with its cross-sections through `cross` (`lw.figures.explorer_figure`; None:
    through the model)."""
    import matplotlib.pyplot as plt

    from ..figures import save_explorer, save_figure

    metric = style.pop("metric")
    if width is not None or height is not None or Path(path).suffix.lower() in (".svg", ".pdf"):
        return save_explorer(surf, path, metric, width=width, height=height, dpi=dpi,
                             path=trajectory, cross=cross, **style)
    fig = surf.plot(metric, path=trajectory, **style)
    try:
        save_figure(fig, path, dpi=dpi)
    finally:
        plt.close(fig)
    return Path(path)
