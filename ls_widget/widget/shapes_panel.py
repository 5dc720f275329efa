"""The explorer's "shapes" panel (Xu et al. 2024): what the landscape looks like, in words.

`ShapesPanel` shows three things, and computes none of them (shapes_job.py does, in the
background; shapes_control.py wires it to the explorer):

- a label line: the kind of the surface on screen and of its x and y cross-sections through
  the picked point ("surface: saddle · x: v-basin · y: w-peak"), the margins in tooltips;
- a gallery of small 1D curves (`ShapeCard`), each titled with its kind: clicking a curve, or
  its "x" / "y" button, puts its direction on that axis; the cards of the directions on the
  axes are framed in the axis colours;
- a "mine" row: the kind to mine, the step budget, a button, a progress bar and a cancel
  button, and the miner's status (errors in red).

Like the Hessian panel, it only reports the user's requests (`on_pick(axis, label)`,
`on_mine(kind, steps)`, `on_cancel()`); its owner acts on them (`ShapesControl`, which
shapes_toggle.py builds when the explorer's "shapes" toggle is first opened).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import bqplot as bq
import ipywidgets as W
import numpy as np
from numpy.typing import ArrayLike

from .panels import IDLE_COLOR, X_COLOR, XY_COLOR, Y_COLOR, fmt

MINE_KINDS = ("w-peak", "vvv-basin")
"""The kinds the "mine" row offers (`Landscape.mine`)."""

KIND_COLORS = {
    "v-basin": "#1f77b4", "v-side": "#ff7f0e", "w-basin": "#2ca02c", "w-peak": "#d62728",
    "vvv-basin": "#9467bd", "flat": "#7f7f7f", "other": "#8c564b",
    "basin": "#1f77b4", "saddle": "#d62728", "wine-bottle": "#9467bd", "valley": "#2ca02c",
}
"""The colour of each curve and surface kind (its title and its curve)."""

CARD_WIDTH, CARD_HEIGHT = 120, 80  # px: the plot of a gallery card
ERROR_COLOR = "#c0392b"
_FRAME = "#e0e0e0"  # the frame of a card on no axis


def kind_html(kind: str, tooltip: str) -> str:
    """A kind in its colour, with `tooltip` (escaped) on hover."""
    color = KIND_COLORS.get(kind, IDLE_COLOR)
    return (f"<span title='{html.escape(tooltip, quote=True)}' style='color:{color};"
            f"font-weight:bold'>{html.escape(kind)}</span>")


def shape_tooltip(shape: Any) -> str:
    """The tooltip of a classified shape: its margin first, then its description."""
    return f"margin {shape.margin:.2f} · {shape}"


class ShapeCard(W.VBox):
    """One gallery entry: a bank label, its curve (a tiny bqplot figure) and its kind.

    The plot joins the card once a curve is set (a bqplot Figure drawn without data has no
    domain to scale). Clicking the plot calls `on_click()`; the "x" / "y" buttons call
    `on_axis(axis)`.

    Attributes:
        label: the bank label of the direction.
        title: the kind (in its colour; the margin and description in a tooltip).
        caption: the label, small.
        lines: the curve; `dot`: the point at α = 0 (the model).
        figure: the plot, a child once a curve is set.
        x_button: puts the direction on the x axis; `y_button` on the y axis.
        kind: the kind shown ("" until classified).
    """

    children: tuple[Any, ...]

    def __init__(self, label: str, *, on_click: Callable[[], Any],
                 on_axis: Callable[[str], Any]) -> None:
        self.label, self.kind = label, ""
        self.title = W.HTML(f"<span style='color:{IDLE_COLOR}'>computing…</span>")
        self.caption = W.HTML(
            f"<span title='{html.escape(label, quote=True)}' style='font-size:85%;"
            f"color:#555'>{html.escape(label)}</span>",
            layout=W.Layout(width=f"{CARD_WIDTH}px", overflow="hidden"),
        )
        self._sx, self._sy = bq.LinearScale(), bq.LinearScale()
        scales = {"x": self._sx, "y": self._sy}
        self.lines = bq.Lines(x=np.zeros(2), y=np.zeros(2), scales=scales,
                              colors=[IDLE_COLOR], stroke_width=2)
        self.dot = bq.Scatter(x=np.zeros(1), y=np.zeros(1), scales=scales,
                              colors=["black"], default_size=16)
        self.figure = bq.Figure(
            marks=[self.lines, self.dot], axes=[], display_toolbar=False,
            fig_margin={"top": 4, "bottom": 4, "left": 4, "right": 4},
            layout=W.Layout(width=f"{CARD_WIDTH}px", height=f"{CARD_HEIGHT}px"),
            min_aspect_ratio=0.1, max_aspect_ratio=10,
        )
        self.figure.add_class("lsw-shape-plot")
        # bqplot reports a click on the curve or the dot as an element click and one beside
        # them as a background click (sent by every mark: listen to one).
        for mark in (self.lines, self.dot):
            mark.on_element_click(lambda *_: on_click())
        self.lines.on_background_click(lambda *_: on_click())
        self._placeholder = W.Box(
            layout=W.Layout(width=f"{CARD_WIDTH}px", height=f"{CARD_HEIGHT}px"))
        self.x_button, self.y_button = (
            W.Button(description=ax, tooltip=f"put this direction on the {ax} axis",
                     layout=W.Layout(width="40px", height="24px"))
            for ax in ("x", "y")
        )
        self.x_button.on_click(lambda _: on_axis("x"))
        self.y_button.on_click(lambda _: on_axis("y"))
        super().__init__(
            [self.title, self.caption, self._placeholder,
             W.HBox([self.x_button, self.y_button])],
            layout=W.Layout(margin="2px", padding="3px", border=f"2px solid {_FRAME}"),
        )
        self.add_class("lsw-shape-card")

    def set_curve(self, alphas: ArrayLike, values: ArrayLike, shape: Any) -> None:
        """Draw the curve (non-finite values left out) titled with its `shape`'s kind."""
        a, v = np.asarray(alphas, dtype=float), np.asarray(values, dtype=float)
        ok = np.isfinite(v)
        a, v = (a[ok], v[ok]) if ok.sum() >= 2 else (np.zeros(2), np.zeros(2))
        self.kind = str(shape.kind)
        color = KIND_COLORS.get(self.kind, IDLE_COLOR)
        lo, hi = float(v.min()), float(v.max())
        pad = 0.08 * (hi - lo) if hi > lo else max(abs(hi), 1.0) * 0.05
        centre = int(np.argmin(np.abs(a)))
        with self.lines.hold_sync(), self.dot.hold_sync():
            self._sx.min, self._sx.max = float(a.min()), float(a.max())
            self._sy.min, self._sy.max = lo - pad, hi + pad
            self.lines.x, self.lines.y, self.lines.colors = a, v, [color]
            self.dot.x, self.dot.y = a[centre:centre + 1], v[centre:centre + 1]
        self.title.value = kind_html(self.kind, shape_tooltip(shape))
        if self.figure not in self.children:
            self.children = tuple(self.figure if c is self._placeholder else c
                                  for c in self.children)

    def set_error(self, message: str) -> None:
        """Say why the curve could not be computed (the message in a tooltip)."""
        self.title.value = (f"<span title='{html.escape(message, quote=True)}' "
                            f"style='color:{ERROR_COLOR}'>failed</span>")

    def frame(self, color: str) -> None:
        """Frame the card in `color` (an axis colour, or the idle frame)."""
        self.layout.border = f"2px solid {color}"


class ShapesPanel(W.VBox):
    """The label line, the gallery of shaped curves and the "mine" row (see the module).

    Args:
        on_pick: ``fn(axis, label)`` when a curve or its button is clicked.
        on_mine: ``fn(kind, steps)`` when "mine" is clicked.
        on_cancel: ``fn()`` when "cancel" is clicked.
        steps: the step budget shown at first.
        points: the points of each gallery curve (said in the gallery's title).

    Attributes:
        labels: the kinds of the surface and of its cross-sections (HTML).
        target: "click puts on": which axis a click on a curve sets.
        gallery: the cards, in a wrapping box.
        cards: bank label → `ShapeCard`, in gallery order.
        mine_kind: the kind to mine; `mine_steps`: its step budget.
        mine_button: starts mining; `cancel_button` stops it.
        progress: the miner's steps done (of `mine_steps`).
        mine_status: the miner's progress and result, errors in red.
    """

    def __init__(
        self, *,
        on_pick: Callable[[str, str], Any] | None = None,
        on_mine: Callable[[str, int], Any] | None = None,
        on_cancel: Callable[[], Any] | None = None,
        steps: int = 200,
        points: int = 21,
    ) -> None:
        self._on_pick = on_pick
        self.cards: dict[str, ShapeCard] = {}
        self.labels = W.HTML(f"<span style='color:{IDLE_COLOR}'>surface: computing…</span>")
        self.labels.add_class("lsw-shape-labels")
        self.target = W.ToggleButtons(
            options=[("x axis", "x"), ("y axis", "y")], value="x",
            style={"button_width": "60px"}, layout=W.Layout(width="auto"),
            tooltips=["a click on a curve sets the x axis", "a click on a curve sets the y axis"],
        )
        self.gallery = W.Box(layout=W.Layout(display="flex", flex_flow="row wrap"))
        self.gallery.add_class("lsw-shape-gallery")
        self.mine_kind = W.Dropdown(options=list(MINE_KINDS), value=MINE_KINDS[0],
                                    description="mine a", style={"description_width": "50px"},
                                    layout=W.Layout(width="170px"))
        self.mine_steps = W.BoundedIntText(steps, min=1, max=100_000, description="steps",
                                           style={"description_width": "40px"},
                                           layout=W.Layout(width="120px"))
        self.mine_button = W.Button(description="mine", icon="search",
                                    layout=W.Layout(width="90px"))
        self.progress = W.IntProgress(0, min=0, max=steps, layout=W.Layout(width="160px"))
        self.cancel_button = W.Button(description="cancel", icon="stop", disabled=True,
                                      layout=W.Layout(width="90px"))
        self.mine_status = W.HTML("")
        if on_mine is not None:
            self.mine_button.on_click(
                lambda _: on_mine(self.mine_kind.value, int(self.mine_steps.value)))
        if on_cancel is not None:
            self.cancel_button.on_click(lambda _: on_cancel())
        super().__init__([
            self.labels,
            W.HBox([W.HTML(f"<b>gallery</b> (n = {points} points each) · a click on a curve puts "
                           "its direction on the"), self.target],
                   layout=W.Layout(align_items="center")),
            self.gallery,
            W.HBox([self.mine_kind, self.mine_steps, self.mine_button, self.progress,
                    self.cancel_button]),
            self.mine_status,
        ])
        self.add_class("lsw-shapes-panel")

    # ----------------------------------------------------------------- labels
    def show_labels(self, surface: Any, x: Any, y: Any, where: str) -> None:
        """The kinds of the surface and of its x / y cross-sections (None: not known yet),
        and `where` the cross-sections run ("through the model")."""
        parts = []
        for name, shape in (("surface", surface), ("x", x), ("y", y)):
            text = (kind_html(shape.kind, shape_tooltip(shape)) if shape is not None else
                    f"<span style='color:{IDLE_COLOR}'>…</span>")
            parts.append(f"{name}: {text}")
        self.labels.value = (" · ".join(parts) + f" <span style='color:{IDLE_COLOR};"
                             f"font-size:90%'>({html.escape(where)})</span>")

    def show_labels_error(self, message: str) -> None:
        """The classification failed: say why, in red."""
        self.labels.value = (f"<span style='color:{ERROR_COLOR}'>shapes failed: "
                             f"{html.escape(message)}</span>")

    # ----------------------------------------------------------------- gallery
    def card(self, label: str) -> ShapeCard:
        """The card of bank label `label`, added at the end of the gallery if new."""
        card = self.cards.get(label)
        if card is None:
            card = ShapeCard(label, on_click=lambda: self._pick(self.target.value, label),
                             on_axis=lambda ax: self._pick(ax, label))
            self.cards[label] = card
            self.gallery.children = (*self.gallery.children, card)
        return card

    def set_selection(self, x: str | None, y: str | None) -> None:
        """Frame the cards of the directions on the x and y axes in the axis colours."""
        for label, card in self.cards.items():
            on_x, on_y = label == x, label == y
            card.frame(XY_COLOR if on_x and on_y else X_COLOR if on_x else
                       Y_COLOR if on_y else _FRAME)

    def _pick(self, axis: str, label: str) -> None:
        if self._on_pick is not None:
            self._on_pick(axis, label)

    # ----------------------------------------------------------------- mining
    def mining_started(self, kind: str, steps: int) -> None:
        """Mining runs: the button off, cancel on, the bar at 0 of `steps`."""
        self.mine_button.disabled, self.cancel_button.disabled = True, False
        self.progress.max, self.progress.value = max(1, steps), 0
        self.progress.bar_style = ""
        self.show_mine_status(f"mining a {kind}…")

    def mining_progress(self, step: int, objective: float, text: str = "") -> None:
        """The bar at `step`, the objective beside it."""
        self.progress.value = min(step, self.progress.max)
        self.show_mine_status(f"step {step}/{self.progress.max} · objective "
                              f"{fmt(objective, 4)}{text}")

    def mining_ended(self, text: str, *, error: bool = False, done: bool = True) -> None:
        """Mining stopped (`done`: finished, else cancelled or failed): say how."""
        self.mine_button.disabled, self.cancel_button.disabled = False, True
        if done:
            self.progress.value = self.progress.max
        self.progress.bar_style = "danger" if error else "success" if done else "warning"
        self.show_mine_status(text, error=error)

    def show_mine_status(self, text: str, *, error: bool = False) -> None:
        """The miner's line (escaped), red when it reports an error."""
        body = html.escape(text)
        self.mine_status.value = (f"<span style='color:{ERROR_COLOR}'>{body}</span>"
                                  if error else body)
