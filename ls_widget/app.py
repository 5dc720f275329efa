"""explore(): the landscape widget with ipywidgets controls that re-slice it live."""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import ipywidgets as W
import torch.nn.functional as F
import traitlets
from torch import nn

from .engine import metrics as _metrics
from .engine.directions import Direction, mix, random, towards
from .engine.landscape import Landscape
from .engine.results import Surface
from .widget import _STATIC, LandscapeWidget

COLORMAPS = ("viridis", "magma", "inferno", "plasma", "cividis", "turbo")


class Explorer(W.VBox):
    """A LandscapeWidget and the controls that drive it.

    Attributes:
        landscape: the `lw.Landscape` being explored.
        view: the `LandscapeWidget` (contour + cross-sections).
        bank: label → `lw.Direction` that the axes can be built from.
    """

    def __init__(
        self,
        landscape: Landscape,
        bank: Mapping[str, Direction],
        *,
        x: str,
        y: str,
        span: float = 1.0,
        n: int = 41,
        metric: str = "loss",
        log: bool = False,
        colormap: str = "viridis",
        n_levels: int = 12,
        adaptive: bool = False,
    ) -> None:
        self.landscape = landscape
        self.bank: dict[str, Direction] = dict(bank)
        names = list(self.bank)
        for label in (x, y):
            if label not in self.bank:
                raise ValueError(f"no direction {label!r} in the bank; choose from {names}")
        if metric not in landscape.metric_names:
            raise ValueError(
                f"metric {metric!r} is not computed; choose from {list(landscape.metric_names)}"
            )
        self._adaptive = adaptive
        style = {"description_width": "70px"}
        layout = W.Layout(width="260px")
        self._axis: dict[str, tuple[W.Dropdown, W.Dropdown, W.FloatSlider]] = {}
        rows = []
        for ax, first in (("x", x), ("y", y)):
            other = next((k for k in names if k not in (x, y)), first)
            a = W.Dropdown(options=names, value=first, description=f"{ax} axis", style=style,
                           layout=layout)
            b = W.Dropdown(options=names, value=other, description="blend with",
                           style=style, layout=layout)
            t = W.FloatSlider(0.0, min=0.0, max=1.0, step=0.01, description="mix",
                              style=style, layout=layout, readout_format=".2f")
            t.add_class(f"lsw-mix-{ax}")
            self._axis[ax] = (a, b, t)
            rows.append(W.HBox([a, b, t]))
        self.span_slider = W.FloatLogSlider(span, base=10, min=-2, max=1, step=0.05,
                                     description="span ±", style=style, layout=layout,
                                     readout_format=".3g")
        self.points_slider = W.IntSlider(n, min=5, max=101, step=2, description="points",
                             style=style, layout=layout)
        self.metric_select = W.Dropdown(options=list(landscape.metric_names), value=metric,
                                 description="metric", style=style, layout=layout)
        self.log_checkbox = W.Checkbox(log, description="log scale", indent=False,
                              layout=W.Layout(width="110px"))
        self.colormap_select = W.Dropdown(options=COLORMAPS, value=colormap,
                                          description="colours", style=style, layout=layout)
        self.levels_slider = W.IntSlider(n_levels, min=2, max=40, description="isolines",
                                  style=style, layout=layout)
        self.new_random = W.Button(description="new random directions", icon="refresh",
                                   layout=W.Layout(width="200px"))
        self.new_random.on_click(lambda _: self.add_random_pair())
        d1, d2 = self._directions()
        self.view = LandscapeWidget(
            landscape, d1, d2, span=span, n=n, adaptive=adaptive, metric=metric,
            log_scale=log, colormap=colormap, n_levels=n_levels,
        )
        for src, trait in ((self.metric_select, "metric"), (self.log_checkbox, "log_scale"),
                           (self.colormap_select, "colormap"), (self.levels_slider, "n_levels")):
            traitlets.link((src, "value"), (self.view, trait))  # drawing only: no recompute
        for a, b, t in self._axis.values():
            for w in (a, b, t):
                w.observe(self._restart, names="value")
        self.span_slider.observe(self._restart, names="value")
        self.points_slider.observe(self._restart, names="value")
        controls = W.VBox([
            *rows,
            W.HBox([self.span_slider, self.points_slider, self.new_random]),
            W.HBox([self.metric_select, self.colormap_select, self.levels_slider,
                    self.log_checkbox]),
        ])
        super().__init__([self.view, controls])
        self.add_class("lsw-explorer")

    # ----------------------------------------------------------------- state
    def _direction(self, ax: str) -> Direction:
        a, b, t = self._axis[ax]
        da, db = self.bank[a.value], self.bank[b.value]
        if a.value == b.value or t.value == 0.0:
            return da
        if t.value == 1.0:
            return db
        return mix(da, db, t.value)

    def _directions(self) -> tuple[Direction, Direction]:
        return self._direction("x"), self._direction("y")

    def _restart(self, _: Any = None) -> None:
        d1, d2 = self._directions()
        self.view.set_view(d1, d2, span=self.span_slider.value, n=self.points_slider.value,
                           adaptive=self._adaptive)

    def add_direction(self, label: str, d: Direction) -> None:
        """Put a direction in the bank (e.g. a Hessian eigenvector), selectable per axis."""
        if not isinstance(d, Direction):
            raise TypeError(f"expected an lw.Direction, got {type(d).__name__}")
        self.landscape.space.check_compatible(d)
        self.bank[label] = d
        options = list(self.bank)
        for a, b, _ in self._axis.values():
            with self.hold_trait_notifications():
                a.options, b.options = options, options

    def add_random_pair(self) -> tuple[str, str]:
        """Two fresh seeds become the x and y axes (mix reset to 0)."""
        seeds = [
            int(d.provenance["seed"]) for d in self.bank.values()
            if d.provenance.get("kind") == "random"
        ]
        nxt = max(seeds, default=-1) + 1
        labels = []
        for seed in (nxt, nxt + 1):
            label = f"random #{seed}"
            self.add_direction(label, random(self.landscape.model, seed=seed))
            labels.append(label)
        for ax, label in zip(("x", "y"), labels, strict=True):
            a, _, t = self._axis[ax]
            a.unobserve(self._restart, names="value")
            t.unobserve(self._restart, names="value")
            a.value, t.value = label, 0.0
            a.observe(self._restart, names="value")
            t.observe(self._restart, names="value")
        self._restart()
        return labels[0], labels[1]

    # ----------------------------------------------------------------- results
    @property
    def surface(self) -> Surface | None:
        """The `lw.Surface` on screen (the latest complete one)."""
        return self.view.surface_record

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the current picture is complete."""
        return self.view.wait(timeout)

    def save_png(self, path: str | Path, **kwargs: Any) -> Path:
        """PNG of the picture: the screen's own pixels when a frontend sent them, else
        matplotlib's rendering of the same surface."""
        return self.view.save_png(path, **kwargs)

    def to_html(self, path: str | Path, *, title: str = "ls-widget landscape") -> Path:
        """A standalone HTML page showing the last complete picture, without a kernel."""
        return write_html(self.view, path, title=title)

    def close(self) -> None:
        """Stop the worker and close the widget and its controls."""
        view = getattr(self, "view", None)  # absent if construction failed
        if view is not None:
            view.close()
        super().close()


def write_html(widget: LandscapeWidget, path: str | Path, *, title: str) -> Path:
    """Embed the widget's full state (ipywidgets' embed format) and our bundle in one file.

    The page renders offline: the bundle is inlined and a small model shim serves the saved
    state to it, so no widget manager has to be fetched from a CDN.
    """
    from ipywidgets.embed import embed_data

    data = embed_data(views=[widget])
    state = data["manager_state"]
    model_id = widget.model_id
    esm = (_STATIC / "widget.js").read_text()
    css = (_STATIC / "widget.css").read_text()
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


def explore(
    model: nn.Module,
    data: Any,
    loss: Callable[..., Any] = F.cross_entropy,
    *,
    metrics: Mapping[str, Callable[..., Any]] | None = None,
    other: nn.Module | None = None,
    directions: Mapping[str, Direction] | None = None,
    x: str | None = None,
    y: str | None = None,
    span: float = 1.0,
    n: int = 41,
    metric: str = "loss",
    log: bool = False,
    colormap: str = "viridis",
    n_levels: int = 12,
    adaptive: bool = False,
    seeds: tuple[int, ...] = (0, 1, 2, 3),
    **landscape_kwargs: Any,
) -> Explorer:
    """Explore the loss landscape of `model` on `data` in a live widget.

    Args:
        model: a trained ``torch.nn.Module`` (never modified).
        data: ``(X, y)``, a Dataset, a DataLoader or an iterable of ``(x, y)`` batches.
        loss: ``loss(output, target)`` → batch mean; cross-entropy by default (then accuracy
            is computed too unless `metrics` says otherwise).
        other: a second model of the same architecture: adds "towards other" (with BN
            buffers) to the direction bank.
        directions: more labelled directions for the bank.
        x, y: bank labels of the initial axes (default: the first two random seeds).
        span, n, metric, log, colormap, n_levels, adaptive: the initial view.
        seeds: seeds of the filter-normalized random directions in the bank.
    """
    if metrics is None:
        metrics = {"accuracy": _metrics.accuracy} if loss is F.cross_entropy else {}
    land = Landscape(model, data, loss, metrics, **landscape_kwargs)
    bank: dict[str, Direction] = {f"random #{s}": random(model, seed=s) for s in seeds}
    if other is not None:
        bank["towards other"] = towards(model, other, buffers=True)
    bank.update(directions or {})
    labels = list(bank)
    if len(labels) < 2:
        raise ValueError("the direction bank needs at least two directions (give two seeds)")
    return Explorer(
        land, bank, x=x or labels[0], y=y or labels[1], span=span, n=n, metric=metric,
        log=log, colormap=colormap, n_levels=n_levels, adaptive=adaptive,
    )
