"""Exports of the view that need no kernel: a standalone HTML page of the last picture.

`write_html` embeds the widget's full state (ipywidgets' embed format) and the frontend
bundle in one file, with a small model shim that serves the saved state to the bundle, so the
page renders offline, without a widget manager fetched from a CDN. (PNGs: `save_png` of the
widget or the explorer.)
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

from .view import LandscapeWidget, bundle


def write_html(widget: LandscapeWidget, path: str | Path, *, title: str) -> Path:
    """Embed the widget's full state (ipywidgets' embed format) and our bundle in one file.

    The page renders offline: the bundle is inlined and a small model shim serves the saved
    state to it, so no widget manager has to be fetched from a CDN.
    """
    from ipywidgets.embed import embed_data

    data = embed_data(views=[widget])
    state = data["manager_state"]
    model_id = widget.model_id
    esm = bundle("widget.js").read_text()
    css = bundle("widget.css").read_text()
    page = _HTML.format(
        title=html.escape(title),
        css=css,
        state=json.dumps(state).replace("</", "<\\/"),
        model_id=json.dumps(model_id),
        esm=json.dumps(base64.b64encode(esm.encode()).decode()),
    )
    path = Path(path)
    path.write_text(page, encoding="utf-8")
    return path


_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>body {{ font-family: sans-serif; margin: 24px; }}
{css}</style></head>
<body>
<script type="application/vnd.jupyter.widget-state+json" id="lsw-state">{state}</script>
<div id="lsw-view"></div>
<script type="module">
const state = JSON.parse(document.getElementById("lsw-state").textContent);
const entry = state.state[{model_id}].state;
for (const b of state.state[{model_id}].buffers || []) {{
  const bytes = Uint8Array.from(atob(b.data), (c) => c.charCodeAt(0));
  let target = entry;
  const path = b.path;
  for (const k of path.slice(0, -1)) target = target[k];
  target[path[path.length - 1]] = new DataView(bytes.buffer);
}}
const model = {{
  get: (k) => entry[k],
  set: () => {{}}, save_changes: () => {{}}, send: () => {{}},
  on: () => {{}}, off: () => {{}},
}};
const src = atob({esm});
const url = URL.createObjectURL(new Blob([src], {{ type: "text/javascript" }}));
const mod = await import(url);
const widget = mod.default;
if (widget.initialize) await widget.initialize({{ model }});
await widget.render({{ model, el: document.getElementById("lsw-view") }});
</script>
</body></html>
"""
