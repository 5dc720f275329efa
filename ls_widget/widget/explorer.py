"""explore(): the landscape widget with ipywidgets controls that re-slice it live."""

from __future__ import annotations

import base64
import contextlib
import html
import json
import math
import numbers
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import ipywidgets as W
import torch.nn.functional as F
import traitlets
from torch import nn

from .. import metrics as _metrics
from ..curvature.hessian import Density, Eigen
from ..directions import Direction, combine, mix, random, towards
from ..engine.landscape import Landscape
from ..results.records import Surface
from .panels import HessianPanel, fmt
from .view import _STATIC, LandscapeWidget, _describe, _fatal

COLORMAPS = ("viridis", "magma", "inferno", "plasma", "cividis", "turbo")
_SPAN_EXPONENTS = (-2.0, 1.0, 0.05)  # span slider: 10⁻² to 10¹ in steps of 10^0.05
_POINTS = (5, 101, 2)  # points slider: odd counts by default, so the centre is the model
_ISOLINES = (2, 40)


def _span_exponents(span: float) -> tuple[float, float]:
    """Exponent bounds of the span slider: the default range, widened to include `span` and
    shifted so that log10(span) is one of its steps (a slider shows its value on a step)."""
    lo, hi, step = _SPAN_EXPONENTS
    e = math.log10(span)
    lo = e - math.ceil((e - min(lo, e)) / step - 1e-9) * step
    hi = e + math.ceil((max(hi, e) - e) / step - 1e-9) * step
    # ipywidgets clamps the value into [10**lo, 10**hi]; rounding must not move span.
    return (lo - step if 10**lo > span else lo), (hi + step if 10**hi < span else hi)


def _points_bounds(n: int, max_points: Any) -> tuple[int, int]:
    """Bounds of the points slider: the default range, widened to include `n`, with `n` on
    its steps (an even n gives even steps), and within `max_points` (n² points) so that no
    position is refused."""
    lo, hi, step = _POINTS
    lo = min(lo, n)
    lo -= (n - lo) % step
    hi = max(hi, n)
    if isinstance(max_points, numbers.Integral) and not isinstance(max_points, bool) and (
        int(max_points) > 0
    ):  # else the engine's limit (far above the default range) or its clear error
        hi = max(n, min(hi, math.isqrt(int(max_points))))
    return lo, hi - (hi - lo) % step


def _widget_tree(root: W.Widget) -> list[W.Widget]:
    """`root` and every widget it holds, in traits or attributes (children, layouts, styles,
    bqplot marks and scales, a panel's plot before it is shown)."""
    found: dict[int, W.Widget] = {}
    seen: set[int] = set()
    todo: list[Any] = [root]
    while todo:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, W.Widget):
            found[id(obj)] = obj
            todo.extend(vars(obj).values())  # holds `_trait_values`
        elif type(obj) in (list, tuple, dict):
            todo.extend(obj.values() if isinstance(obj, dict) else obj)
    return list(found.values())


class Explorer(W.VBox):
    """A LandscapeWidget and the controls that drive it.

    Construction returns once the first tile is computed; a failure before (a bad argument,
    a model or loss that cannot be evaluated, a grid over `max_points`) raises there, with
    every thread stopped and every widget closed.

    Attributes:
        landscape: the `lw.Landscape` being explored.
        view: the `LandscapeWidget` (contour + cross-sections).
        bank: label → `lw.Direction` that the axes can be built from.
        hessian_panel: the bqplot panel of Hessian eigenvalues and spectral density (see
            `add_hessian`).
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
        hessian_k: int = 5,
        max_points: int | None = None,
        force: bool = False,
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
        _check_view_args(span, n, colormap, n_levels)
        self._adaptive = adaptive
        # Bank edits (possibly from the Hessian thread) and reads of the axes take turns; a
        # thread that rewrites dropdowns mutes its own restarts and restarts once at the end.
        self._bank_lock = threading.RLock()
        self._muted: int | None = None
        self._init_hessian_state()
        try:
            style = {"description_width": "70px"}
            layout = W.Layout(width="260px")
            self._axis: dict[str, tuple[W.Dropdown, W.Dropdown, W.FloatSlider]] = {}
            for ax, first in (("x", x), ("y", y)):
                other = next((k for k in names if k not in (x, y)), first)
                a = W.Dropdown(options=names, value=first, description=f"{ax} axis",
                               style=style, layout=layout)
                b = W.Dropdown(options=names, value=other, description="blend with",
                               style=style, layout=layout)
                t = W.FloatSlider(0.0, min=0.0, max=1.0, step=0.01, description="mix",
                                  style=style, layout=layout, readout_format=".2f")
                t.add_class(f"lsw-mix-{ax}")
                self._axis[ax] = (a, b, t)
            # Ranges widened to hold the requested view, which is then read back from the
            # sliders: controls and picture agree from the start.
            lo, hi = _span_exponents(span)
            self.span_slider = W.FloatLogSlider(
                span, base=10, min=lo, max=hi, step=_SPAN_EXPONENTS[2], description="span ±",
                style=style, layout=layout, readout_format=".3g",
            )
            lo, hi = _points_bounds(n, None if force else max_points)
            self.points_slider = W.IntSlider(n, min=lo, max=hi, step=_POINTS[2],
                                             description="points", style=style, layout=layout)
            self.metric_select = W.Dropdown(options=list(landscape.metric_names),
                                            value=metric, description="metric", style=style,
                                            layout=layout)
            self.log_checkbox = W.Checkbox(log, description="log scale", indent=False,
                                           layout=W.Layout(width="110px"))
            self.colormap_select = W.Dropdown(options=COLORMAPS, value=colormap,
                                              description="colours", style=style,
                                              layout=layout)
            self.levels_slider = W.IntSlider(n_levels, min=_ISOLINES[0],
                                             max=max(_ISOLINES[1], n_levels),
                                             description="isolines", style=style, layout=layout)
            self.new_random = W.Button(description="new random directions", icon="refresh",
                                       layout=W.Layout(width="200px"))
            self.new_random.on_click(lambda _: self.add_random_pair())
            d1, d2 = self._directions()
            self.view = LandscapeWidget(
                landscape, d1, d2, span=self.span_slider.value, n=self.points_slider.value,
                adaptive=self._adaptive, max_points=max_points, force=force, metric=metric,
                log_scale=log, colormap=colormap, n_levels=n_levels,
            )
            for src, trait in ((self.metric_select, "metric"),
                               (self.log_checkbox, "log_scale"),
                               (self.colormap_select, "colormap"),
                               (self.levels_slider, "n_levels")):
                traitlets.link((src, "value"), (self.view, trait))  # drawing only: no recompute
            for a, b, t in self._axis.values():
                for w in (a, b, t):
                    w.observe(self._restart, names="value")
                a.observe(self._highlight, names="value")
            self.span_slider.observe(self._restart, names="value")
            self.points_slider.observe(self._restart, names="value")
            self.hessian_panel = HessianPanel(
                k=hessian_k, on_compute=lambda: self.add_hessian(hessian_k),
                on_pick=self._pick,
            )
            self._controls = W.VBox([
                *(W.HBox(list(w)) for w in self._axis.values()),
                W.HBox([self.span_slider, self.points_slider, self.new_random]),
                W.HBox([self.metric_select, self.colormap_select, self.levels_slider,
                        self.log_checkbox]),
                self.hessian_panel,
            ])
            super().__init__([self.view, self._controls])
            self.add_class("lsw-explorer")
            # The first tile (or the error before it) arrives before we return: a model or
            # loss that cannot be evaluated fails here, leaving nothing running.
            error = self.view._first_tile()
            if error is not None:
                raise error
        except BaseException:
            self.close()  # whatever was built: threads stopped and joined, comms closed
            raise

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

    @contextlib.contextmanager
    def _quiet(self) -> Iterator[None]:
        """Hold the bank and mute this thread's restarts while dropdowns are rewritten."""
        with self._bank_lock:
            outer, self._muted = self._muted, threading.get_ident()
            try:
                yield
            finally:
                self._muted = outer

    def _restart(self, change: Mapping[str, Any] | None = None) -> None:
        if self._muted == threading.get_ident():
            return
        with self._bank_lock:
            d1, d2 = self._directions()
            try:
                self.view.set_view(d1, d2, span=self.span_slider.value,
                                   n=self.points_slider.value, adaptive=self._adaptive)
            except BaseException:
                # Refused (e.g. lw.JobTooLarge): the control goes back to what is shown.
                if change is not None:
                    with self._quiet():
                        change["owner"].value = change["old"]
                raise

    def _set_bank_options(self, remap: Mapping[str, str] | None = None) -> None:
        """Refresh every dropdown's options from the bank, keeping its value (or moving it
        as `remap` says, or to the first entry if its direction left the bank). Call inside
        `_quiet()`."""
        options = list(self.bank)
        for a, b, _ in self._axis.values():
            for w in (a, b):
                keep = (remap or {}).get(w.value, w.value)
                if keep not in self.bank:
                    keep = options[0]
                w.options = options  # ipywidgets resets the value to the first option here
                w.value = keep

    def add_direction(self, label: str, d: Direction) -> None:
        """Put a direction in the bank (e.g. a Hessian eigenvector), selectable per axis.

        The axes keep their directions (no restart), unless `label` replaces the direction
        of one of them."""
        if not isinstance(d, Direction):
            raise TypeError(f"expected an lw.Direction, got {type(d).__name__}")
        self.landscape.space.check_compatible(d)
        with self._quiet():
            replaced = label in self.bank and any(
                label in (a.value, b.value) for a, b, _ in self._axis.values()
            )
            self.bank[label] = d
            self._set_bank_options()
        if replaced:
            self._restart()

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
        with self._quiet():
            for ax, label in zip(("x", "y"), labels, strict=True):
                a, _, t = self._axis[ax]
                a.value, t.value = label, 0.0
        self._restart()
        return labels[0], labels[1]

    # ----------------------------------------------------------------- Hessian
    def _init_hessian_state(self) -> None:
        self._h_lock = threading.Lock()
        self._h_thread: threading.Thread | None = None
        self._h_next: tuple[int, float, bool] | None = None
        self._h_done = threading.Event()
        self._h_done.set()
        self._h_closed = False
        self._eigen_cache: dict[tuple[int, float], Eigen] = {}
        self._eigen: Eigen | None = None
        self._density: Density | None = None
        self._hessian_labels: dict[str, str] = {}  # bank label → rank ("λ1", "λmin", …)
        self.hessian_error: str | None = None
        """The error of the last Hessian computation, or None."""

    @property
    def eigen(self) -> Eigen | None:
        """The `lw.Eigen` record of the eigenvectors in the bank (unit vectors), or None
        before they are computed."""
        return self._eigen

    @property
    def density(self) -> Density | None:
        """The SLQ spectral density of H once computed (after the eigenpairs), else None."""
        return self._density

    @property
    def hessian_labels(self) -> list[str]:
        """Bank labels of the Hessian eigenvectors, by descending eigenvalue."""
        return list(self._hessian_labels)

    def add_hessian(self, k: int = 5, *, select: bool = False, tol: float = 1e-6) -> None:
        """Compute the k largest and k smallest eigenpairs of H in the background, then the
        spectral density, and put the 2k eigenvectors in the bank.

        Returns at once; progress and errors show in the panel's status line, the result in
        `eigen` and `density` (wait with `wait_hessian`). Results are cached: asking again for
        the same k computes nothing. The bank labels are "λ1 = …", "λ2 = …" (descending) and
        "λmin+1 = …", "λmin = …" (the most negative last). Each eigenvector is scaled to the
        norm of the bank's first random direction (≈ ‖θ‖ when filter-normalized), so the span
        slider means the same on every axis and the mix slider blends directions of one size;
        Böttcher & Wheeler's unit eigenvectors are `eigen.vectors`.

        Args:
            k: eigenpairs from each end of the spectrum.
            select: when done, put λ1 on the x axis and λmin on the y axis (Böttcher &
                Wheeler's saddle-revealing plane), unless the axes were changed meanwhile.
            tol: relative accuracy of the Lanczos eigenpairs (ARPACK's `tol`). The bottom of
                a network's spectrum is a dense cluster near 0 where tighter tolerances cost
                many more Hessian-vector products (digits MLP, k=3: 249 at 1e-4, 701 at 1e-6,
                about 2000 at 1e-8); 1e-6 is ample for choosing plot directions.
        """
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive int, got {k!r}")
        size = self.landscape.hessian.size
        if k > size:
            raise ValueError(
                f"k={k} exceeds the number of parameters in the Hessian ({size}); "
                f"ask for at most {size} eigenpairs"
            )
        with self._h_lock:
            key = (k, float(tol))
            if key in self._eigen_cache and self._density is not None and self._h_thread is None:
                cached = True
            else:
                cached = False
                self._h_next = (k, float(tol), select)
                self._h_done.clear()
                if self._h_thread is None:
                    thread = threading.Thread(
                        target=self._hessian_worker, name="ls-widget-hessian", daemon=True
                    )
                    try:
                        thread.start()
                    except BaseException:  # e.g. "can't start new thread": nothing pending
                        self._h_next = None
                        self._h_done.set()
                        raise
                    self._h_thread = thread
        if cached:
            eig = self._eigen_cache[key]
            self._install_hessian(eig, k, select, self._axes_state())
            self.hessian_panel.show_status(f"{self._summary(eig)} (cached)")

    def wait_hessian(self, timeout: float | None = None) -> bool:
        """Block until the Hessian computation has finished (or failed: see `hessian_error`).
        True if it finished within `timeout` seconds."""
        return self._h_done.wait(timeout)

    def _axes_state(self) -> tuple:
        return tuple((a.value, b.value, t.value) for a, b, t in self._axis.values())

    def _hessian_worker(self) -> None:
        while True:
            with self._h_lock:
                req, self._h_next = self._h_next, None
                if req is None or self._h_closed:
                    self._h_thread = None
                    self._h_done.set()
                    return
            try:
                self._compute_hessian(*req)
            except BaseException as exc:  # never into the kernel: a thread has no caller
                if _fatal(exc):
                    raise
                self._hessian_failed("update", exc)

    def _compute_hessian(self, k: int, tol: float, select: bool) -> None:
        panel = self.hessian_panel
        axes = self._axes_state()
        hess = self.landscape.hessian
        t0 = time.perf_counter()
        self.hessian_error = None
        eig = self._eigen_cache.get((k, tol))
        if eig is None:
            panel.show_status(f"computing Hessian eigenpairs (k={k} from each end)…")
            panel.compute_button.disabled = True
            try:
                eig = hess.eigen(k, which="both", tol=tol)
            except BaseException as exc:  # the user's model or loss failed (a
                if _fatal(exc):  # KeyboardInterrupt too): show it, keep going
                    raise
                self._hessian_failed("eigenpairs", exc)
                return
            self._eigen_cache[(k, tol)] = eig
        if self._h_closed:
            return
        self._install_hessian(eig, k, select, axes)
        summary = self._summary(eig)
        if self._density is None:
            panel.show_status(f"{summary}; computing the spectral density…")
            try:
                dens = hess.density()
            except BaseException as exc:
                if _fatal(exc):
                    raise
                self._hessian_failed("spectral density", exc, prefix=f"{summary}; ")
                return
            self._density = dens
            panel.set_density(dens.grid, dens.density)
            summary += f" (+ {dens.hvps} for the density)"
        panel.show_status(f"{summary} · {time.perf_counter() - t0:.1f} s")
        panel.compute_button.disabled = False

    @staticmethod
    def _summary(eig: Eigen) -> str:
        return (f"λmax = {fmt(eig.values[0], 4)}, λmin = {fmt(eig.values[-1], 4)}, "
                f"{eig.hvps} HVPs")

    def _hessian_failed(self, what: str, exc: BaseException, prefix: str = "") -> None:
        self.hessian_error = _describe(exc)
        self.hessian_panel.show_status(
            f"{prefix}Hessian {what} failed: {self.hessian_error}", error=True
        )
        self.hessian_panel.compute_button.disabled = False

    def _reference_norm(self) -> tuple[float, str]:
        """The scale of the eigenvectors in the bank and what it is: the norm of the first
        random direction, else ‖θ‖ over the parameters ("θ"), else 1 ("unit": θ = 0)."""
        for label, d in self.bank.items():
            if d.provenance.get("kind") == "random" and label not in self._hessian_labels:
                norm = d.norm()
                if norm > 0:
                    return norm, label
        theta = self.landscape.space.theta0
        norm = math.sqrt(sum(float(t.double().pow(2).sum()) for t in theta.values()))
        return (norm, "θ") if norm > 0 else (1.0, "unit")

    def hessian_entries(self, eig: Eigen, k: int) -> dict[str, Direction]:
        """Bank label → eigenvector scaled to the bank's random-direction norm (see
        `add_hessian`); its provenance adds "rank", "scale" and "scaled_to"."""
        scale, ref = self._reference_norm()
        suffix = "(unit)" if ref == "unit" else "(×‖θ‖)"
        n = len(eig.values)
        top = min(k, n) if eig.which in ("top", "both") else 0
        out: dict[str, Direction] = {}
        for i, (lam, v) in enumerate(zip(eig.values, eig.vectors, strict=True)):
            j = n - 1 - i
            rank = f"λ{i + 1}" if i < top else ("λmin" if j == 0 else f"λmin+{j}")
            prov = v.provenance
            prov.update(
                rank=rank, scale=scale, scaled_to=ref,
                label=f"hessian {rank}={fmt(float(lam))} {suffix}",
            )
            out[f"{rank} = {fmt(float(lam))}"] = combine([scale], [v], **prov)
        return out

    def _install_hessian(self, eig: Eigen, k: int, select: bool, axes: tuple) -> None:
        entries = self.hessian_entries(eig, k)
        ranks = {label: d.provenance["rank"] for label, d in entries.items()}
        by_rank = {r: label for label, r in ranks.items()}
        with self._quiet():
            shown = self._shown()
            old = self._hessian_labels
            remap = {label: by_rank.get(rank, "") for label, rank in old.items()}
            for label in old:
                self.bank.pop(label, None)
            self.bank.update(entries)
            self._hessian_labels = ranks
            self._eigen = eig
            self._set_bank_options(remap)
            if select and self._axes_state() == axes:
                labels = list(entries)
                for ax, label in (("x", labels[0]), ("y", labels[-1])):
                    a, _, t = self._axis[ax]
                    a.value, t.value = label, 0.0
            # A label can stay while its direction is new (k changed: same value printed,
            # but a recomputed vector, possibly of the other sign).
            changed = any(
                a is not c or b is not d or t != u
                for (a, b, t), (c, d, u) in zip(self._shown(), shown, strict=True)
            )
            self.hessian_panel.set_eigen(eig.values.tolist(), list(ranks.values()), list(entries))
            self._highlight()
        if changed:
            self._restart()

    def _shown(self) -> list[tuple[Direction | None, Direction | None, float]]:
        """What the axes are made of: (direction, blend partner, mix) per axis."""
        return [(self.bank.get(a.value), self.bank.get(b.value), t.value)
                for a, b, t in self._axis.values()]

    def _highlight(self, _: Any = None) -> None:
        """Mark the eigenvectors on the axes in the panel (follows the dropdowns)."""
        self.hessian_panel.set_selection(self._axis["x"][0].value, self._axis["y"][0].value)

    def _pick(self, ax: str, label: str) -> None:
        """A click on an eigenvalue: that eigenvector becomes the `ax` axis."""
        if label in self.bank:
            self._axis[ax][0].value = label  # observers restart the stream

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
        """Stop the worker and close the widget, its controls and panels (a Hessian
        computation under way finishes in the background but is not installed).

        Every widget is closed, not only this box: ipywidgets keeps an open widget (and
        through its observers, this explorer and its landscape) alive until it is closed.
        Also cleans up after a failed construction."""
        if hasattr(self, "_h_lock"):
            with self._h_lock:
                self._h_closed = True
                self._h_next = None
        view = getattr(self, "view", None)  # absent if construction failed before it
        if view is not None:
            view.close()  # first: stops and joins the worker
        for w in _widget_tree(self):
            if w is not self:
                w.close()
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


def _check_view_args(span: Any, n: Any, colormap: Any, n_levels: Any) -> None:
    """The explorer's controls hold one span, one point count, a colormap name and a count of
    isolines: refuse what they cannot show, naming the value and what to give."""
    if isinstance(span, bool) or not isinstance(span, numbers.Real):
        raise TypeError(
            f"span={span!r}: the explorer's span slider takes one positive number s (both "
            "axes show (-s, s)); for other ranges use lw.LandscapeWidget(..., "
            "span=((xmin, xmax), (ymin, ymax)))"
        )
    if not (math.isfinite(float(span)) and float(span) > 0):
        raise ValueError(
            f"span={span!r}: give a positive, finite half-width s (both axes show (-s, s)), "
            "e.g. span=1.0"
        )
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(
            f"n={n!r}: the explorer's points slider takes one int (points per axis, the "
            "same on both); for an nx × ny grid use lw.LandscapeWidget(..., n=(nx, ny))"
        )
    if n < 2:
        raise ValueError(f"n={n!r}: a grid needs at least 2 points per axis; give n ≥ 2")
    if colormap not in COLORMAPS:
        raise ValueError(f"colormap {colormap!r} is not available; choose from {COLORMAPS}")
    if isinstance(n_levels, bool) or not isinstance(n_levels, numbers.Integral) or (
        int(n_levels) < _ISOLINES[0]
    ):
        raise ValueError(f"n_levels={n_levels!r}: give an int ≥ {_ISOLINES[0]} (isolines)")


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
    hessian: int | None = None,
    max_points: int | None = None,
    force: bool = False,
    **landscape_kwargs: Any,
) -> Explorer:
    """Explore the loss landscape of `model` on `data` in a live widget.

    Returns once the first tile is computed; any failure before (a bad argument, a model or
    loss that cannot be evaluated, a refused grid) raises here and leaves nothing running.

    Args:
        model: a trained ``torch.nn.Module`` (never modified).
        data: ``(X, y)``, a Dataset, a DataLoader or an iterable of ``(x, y)`` batches.
        loss: ``loss(output, target)`` → batch mean; cross-entropy by default (then accuracy
            is computed too unless `metrics` says otherwise).
        metrics: more ``name → fn(output, target)`` batch means.
        other: a second model of the same architecture: adds "towards other" (with BN
            buffers) to the direction bank.
        directions: more labelled directions for the bank.
        x: bank label of the initial x axis (default: the first random seed).
        y: bank label of the initial y axis (default: the second random seed).
        span: half-width s of the initial view, (−s, s) on both axes (a positive number).
        n: points per axis of the initial view (an int ≥ 2).
        metric: the metric drawn.
        log: colour scale and isolines on a log scale.
        colormap: one of `COLORMAPS`.
        n_levels: number of isolines (≥ 2).
        adaptive: evaluate finer levels only where interpolation misses (see
            `Landscape.stream`).
        seeds: seeds of the filter-normalized random directions in the bank.
        hessian: compute the `hessian` largest and smallest Hessian eigenpairs in the
            background (`Explorer.add_hessian`) and add the eigenvectors to the bank; unless
            `x` or `y` is given, λ1 and λmin become the axes when they are ready (if the
            axes were not changed meanwhile). Without it, the panel's button computes them.
        max_points: grids of more points are refused with ``lw.JobTooLarge``, which states
            the estimated time and memory (None: the engine's default limit).
        force: compute grids of any size.
        **landscape_kwargs: passed to `lw.Landscape` (batch_size, memory_budget, strategy).
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
        raise ValueError(
            f"the direction bank holds {labels}: it needs at least two directions; give two "
            f"seeds (seeds={tuple(seeds)!r} now) or more `directions`"
        )
    explorer = Explorer(
        land, bank, x=x or labels[0], y=y or labels[1], span=span, n=n, metric=metric,
        log=log, colormap=colormap, n_levels=n_levels, adaptive=adaptive,
        hessian_k=hessian or 5, max_points=max_points, force=force,
    )
    if hessian is not None:
        try:
            explorer.add_hessian(hessian, select=x is None and y is None)
        except BaseException:
            explorer.close()
            raise
    return explorer
