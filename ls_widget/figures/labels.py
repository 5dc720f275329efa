"""Labels that are never cut, and the directions' provenance as tooltips.

A long direction label is wrapped at the width of its axes (in characters of its font), and
shrunk if it still needs more than three lines; never ellipsised. The directions' full
provenance goes to the saved file, not the label: as ``<title>`` tooltips on the axis labels
in SVG (`save_figure`), and in the metadata of PNG, SVG and PDF files.
"""

from __future__ import annotations

import json
import textwrap
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

_CHAR_EM = 0.6  # average glyph width in ems of the default sans-serif font
_MAX_LINES = 3
_TOOLTIPS: weakref.WeakKeyDictionary[Any, dict[str, str]] = weakref.WeakKeyDictionary()


def wrap(text: str, inches: float, fontsize: float) -> tuple[str, float]:
    """(`text` wrapped to lines of `inches`, the font size that fits it in three lines)."""
    size = fontsize
    while True:
        width = max(8, int(inches * 72 / (size * _CHAR_EM)))
        lines = textwrap.wrap(text, width, break_long_words=True, break_on_hyphens=True) or [""]
        if len(lines) <= _MAX_LINES or size <= 6:
            return "\n".join(lines), size
        size -= 1


def provenance(direction: Mapping[str, Any]) -> str:
    """A direction's full provenance as one line of JSON (sorted keys, so same bits)."""
    return json.dumps(dict(direction), sort_keys=True, default=str, ensure_ascii=False)


def set_axis_label(ax: Any, which: str, text: str, tooltip: str | None = None) -> None:
    """Sets the x or y label of `ax` wrapped to the axes' size; `tooltip` kept for saving."""
    fig = ax.figure.figure  # the root figure, also for axes of a subfigure
    box = ax.get_window_extent()
    inches = (box.width if which == "x" else box.height) / fig.dpi
    label = ax.xaxis.label if which == "x" else ax.yaxis.label
    wrapped, size = wrap(text, inches, float(label.get_fontsize()))
    (ax.set_xlabel if which == "x" else ax.set_ylabel)(wrapped, fontsize=size)
    if tooltip:
        gid = f"lw-{which}label-{len(_TOOLTIPS.get(fig, {}))}"
        label.set_gid(gid)
        _TOOLTIPS.setdefault(fig, {})[gid] = tooltip


def label_directions(ax: Any, directions: Sequence[Mapping[str, Any]], texts: Sequence[str],
                     axes_names: str = "xy") -> None:
    """Axis labels `texts` on `axes_names`, each with its direction's provenance as tooltip."""
    for i, (which, text) in enumerate(zip(axes_names, texts, strict=True)):
        tip = provenance(directions[i]) if i < len(directions) else None
        set_axis_label(ax, which, text, tip)


def tooltips(fig: Any) -> dict[str, str]:
    """The tooltips of `fig`'s labels, by gid: those that carry one."""
    return dict(_TOOLTIPS.get(fig, {}))


def save_figure(fig: Any, path: str | Path, *, dpi: float | None = None) -> Path:
    """Write `fig` (PNG, SVG or PDF by the suffix) with the provenance in its metadata, and,
    in SVG, as ``<title>`` tooltips of the axis labels."""
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in ("png", "svg", "pdf"):
        raise ValueError(f"cannot save {path.name!r}; name a .png, .svg or .pdf file")
    tips = tooltips(fig)
    about = "; ".join(tips.values())
    key = {"png": "Description", "svg": "Description", "pdf": "Subject"}[fmt]
    meta = {key: about} if about else {}
    if fmt == "svg":
        meta["Date"] = None  # type: ignore[assignment]  # no clock in the file: same bits
    elif fmt == "pdf":
        meta["CreationDate"] = None  # type: ignore[assignment]
    import matplotlib as mpl

    # SVG ids hash a random salt unless one is set: a fixed salt makes the file the same bits
    with mpl.rc_context({"svg.hashsalt": "ls-widget"}):
        fig.savefig(path, dpi=dpi, metadata=meta)
    if fmt == "svg" and tips:
        svg = path.read_text(encoding="utf-8")
        for gid, tip in tips.items():
            tag = f'<g id="{gid}">'
            svg = svg.replace(tag, f"{tag}\n   <title>{escape(tip)}</title>", 1)
        path.write_text(svg, encoding="utf-8")
    return path


def with_suffix(path: str | Path, suffix: str) -> Path:
    """`path` with `suffix` added when it has none; an error when it names another format."""
    path = Path(path)
    if not path.suffix:
        return path.with_suffix(suffix)
    if path.suffix.lower() != suffix:
        raise ValueError(f"{path.name!r} is not a {suffix} file; name it …{suffix}")
    return path
