"""bqplot side panels of the explorer: the Hessian spectrum with clickable eigenvalues.

`HessianPanel` shows the computed extreme eigenvalues of H and the spectral density from
stochastic Lanczos quadrature on one shared eigenvalue axis:

- the density is a grey line on a log scale (left axis);
- each eigenvalue is a point at its true position on the eigenvalue axis, stacked by rank
  (λ1 at the top, λmin at the bottom) so that clustered eigenvalues (the bottom group is often
  bunched near 0) stay apart and clickable; each point carries its rank label;
- the eigenvectors on the x and y axes of the view are drawn in the axis colours with an
  "x" / "y" mark beside them, and a legend line names them.

Clicking a point assigns its eigenvector to the axis chosen in "assign click to"; the panel
only reports the pick (`on_pick(axis, label)`): the explorer sets its bank dropdown.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from typing import Any

import bqplot as bq
import ipywidgets as W
import numpy as np

X_COLOR = "#e6550d"
"""Colour of the eigenvalue on the x axis (orange)."""
Y_COLOR = "#3182bd"
"""Colour of the eigenvalue on the y axis (blue)."""
XY_COLOR = "#8e44ad"
"""Colour of an eigenvalue on both axes (purple)."""
IDLE_COLOR = "#8c8c8c"
"""Colour of the other eigenvalues (grey)."""
DENSITY_COLOR = "#b0b0b0"

_FLOOR = 1e-5  # density drawn down to this fraction of its peak (log scale)


def fmt(value: float, digits: int = 3) -> str:
    """A number for labels: 3 significant digits, a real minus sign."""
    return f"{value:.{digits}g}".replace("-", "−")


class HessianPanel(W.VBox):
    """Eigenvalues and spectral density of H; click an eigenvalue to put it on an axis.

    Attributes:
        status: progress and errors of the background computation (HTML).
        compute_button: starts the computation (hidden once eigenpairs exist).
        target: "assign click to": which axis a click on an eigenvalue sets.
        figure: the bqplot Figure (density line, eigenvalue scatter, x/y marks).
        scatter: the eigenvalues, one point each, in the order of `labels`.
        density_line: the spectral density.
        legend: which eigenvector is on which axis, in the axis colours.
        plot_box: the figure with the toggle and legend; a child once eigenpairs exist.
        labels: bank labels of the eigenvectors, in scatter order (descending eigenvalues).
    """

    children: tuple[Any, ...]  # the VBox trait, typed for mypy (ipywidgets has no types)

    def __init__(
        self,
        *,
        k: int = 5,
        on_compute: Callable[[], Any] | None = None,
        on_pick: Callable[[str, str], Any] | None = None,
    ) -> None:
        self._on_pick = on_pick
        self.labels: list[str] = []
        self.ranks: list[str] = []
        self.values = np.zeros(0)
        self._selection: tuple[str | None, str | None] = (None, None)
        self._density: tuple[np.ndarray, np.ndarray] | None = None

        self.status = W.HTML("Hessian: not computed", layout=W.Layout(min_width="240px"))
        self.status.add_class("lsw-hessian-status")
        self.compute_button = W.Button(
            description=f"compute Hessian directions (k={k})", icon="calculator",
            layout=W.Layout(width="260px"),
        )
        if on_compute is not None:
            self.compute_button.on_click(lambda _: on_compute())
        self.target = W.ToggleButtons(
            options=[("x axis", "x"), ("y axis", "y")], value="x",
            description="assign click to:", style={"description_width": "100px",
                                                    "button_width": "60px"},
            tooltips=["a click on an eigenvalue sets the x axis",
                      "a click on an eigenvalue sets the y axis"],
        )
        self.legend = W.HTML("")

        self._sx = bq.LinearScale()
        self._sd = bq.LogScale()
        self._sr = bq.LinearScale(min=-0.7, max=0.7)
        self.density_line = bq.Lines(
            x=np.zeros(0), y=np.zeros(0), scales={"x": self._sx, "y": self._sd},
            colors=[DENSITY_COLOR], stroke_width=1.5, fill="bottom",
            fill_colors=[DENSITY_COLOR], fill_opacities=[0.25], labels=["SLQ density"],
        )
        self.scatter = bq.Scatter(
            x=np.zeros(0), y=np.zeros(0), scales={"x": self._sx, "y": self._sr},
            colors=[IDLE_COLOR], default_size=48, stroke="white",
            interactions={"click": "select"}, names=[], display_names=True,
            tooltip=bq.Tooltip(fields=["x"], formats=[".4g"], labels=["λ"]),
        )
        self.marks = bq.Label(
            x=np.zeros(0), y=np.zeros(0), text=[], scales={"x": self._sx, "y": self._sr},
            colors=[X_COLOR], default_size=13, font_weight="bold", x_offset=-18,
            y_offset=4, align="middle",
        )
        ax_x = bq.Axis(scale=self._sx, label="eigenvalue λ", tick_format=".3~g")
        self._ax_d = bq.Axis(scale=self._sd, side="left", label="density",
                             tick_format=".0e", tick_values=np.array([1.0]))
        self.figure = bq.Figure(
            marks=[self.density_line, self.scatter, self.marks], axes=[ax_x, self._ax_d],
            fig_margin={"top": 10, "bottom": 40, "left": 55, "right": 40},
            layout=W.Layout(width="460px", height="250px"), padding_y=0.0,
            display_toolbar=False,
        )
        self.scatter.observe(self._clicked, names="selected")
        self.plot_box = W.HBox(
            [self.figure, W.VBox([self.target, self.legend], layout=W.Layout(
                justify_content="center"))],
        )
        # The plot joins the children once eigenpairs exist: a bqplot Figure first rendered
        # inside a hidden box has no axes to rescale and throws on its first update.
        super().__init__([W.HBox([self.status, self.compute_button])])
        self.add_class("lsw-hessian-panel")

    # ----------------------------------------------------------------- updates
    def show_status(self, text: str, *, error: bool = False) -> None:
        """A progress line (escaped), red when it reports an error."""
        body = html.escape(text)
        self.status.value = (
            f"<span style='color:#c0392b'>{body}</span>" if error else body
        )

    def set_eigen(self, values: Sequence[float], ranks: Sequence[str],
                  labels: Sequence[str]) -> None:
        """Show the eigenvalues (descending), with their rank labels ("λ1", …, "λmin") and
        the bank labels the picks report."""
        vals = np.asarray(values, dtype=float)
        n = len(vals)
        self.values, self.ranks, self.labels = vals, list(ranks), list(labels)
        with self.scatter.hold_sync():
            self.scatter.selected = None
            self.scatter.x = vals
            self.scatter.y = np.arange(n - 1, -1, -1, dtype=float)  # λ1 on top
            self.scatter.names = list(ranks)
        self._sr.min, self._sr.max = -0.7, max(n - 1, 0) + 0.7
        self._rescale()
        self.compute_button.layout.display = "none"
        self._redraw()
        if self.plot_box not in self.children:
            self.children = (*self.children, self.plot_box)

    def set_density(self, grid: np.ndarray, density: np.ndarray) -> None:
        """Show the spectral density (clipped below at 1e-5 of its peak for the log scale)."""
        grid = np.asarray(grid, dtype=float)
        dens = np.asarray(density, dtype=float)
        peak = float(np.nanmax(dens)) if dens.size else 0.0
        if not np.isfinite(peak) or peak <= 0:
            return
        floor = peak * _FLOOR
        self._density = (grid, dens)
        with self.density_line.hold_sync():
            self.density_line.x = grid
            self.density_line.y = np.maximum(dens, floor)
        self._sd.min, self._sd.max = floor, peak * 2.0
        decades = np.arange(np.ceil(np.log10(floor)), np.floor(np.log10(peak * 2.0)) + 1)
        step = max(1, int(np.ceil(len(decades) / 4)))
        self._ax_d.tick_values = 10.0 ** decades[::-1][::step][::-1]
        self._rescale()

    def set_selection(self, x: str | None, y: str | None) -> None:
        """Highlight the eigenvectors on the x and y axes (bank labels; None or a label that
        is not an eigenvector highlights nothing for that axis)."""
        self._selection = (x, y)
        self._redraw()

    def _rescale(self) -> None:
        lo_hi = [self.values] if len(self.values) else []
        if self._density is not None:
            lo_hi.append(self._density[0])
        if not lo_hi:
            return
        allv = np.concatenate(lo_hi)
        lo, hi = float(allv.min()), float(allv.max())
        pad = 0.06 * (hi - lo) if hi > lo else max(abs(hi), 1.0) * 0.1
        self._sx.min, self._sx.max = lo - pad, hi + 2 * pad  # room for the rank labels

    def colors(self) -> list[str]:
        """The colour of every eigenvalue point, in scatter order."""
        x, y = self._selection
        out = []
        for label in self.labels:
            on_x, on_y = label == x, label == y
            out.append(XY_COLOR if on_x and on_y else X_COLOR if on_x else Y_COLOR if on_y
                       else IDLE_COLOR)
        return out

    def _redraw(self) -> None:
        n = len(self.labels)
        if not n:
            return
        colors = self.colors()
        x, y = self._selection
        mx, my, text, mcol = [], [], [], []
        for i, label in enumerate(self.labels):
            tags = [ax for ax, sel in (("x", x), ("y", y)) if sel == label]
            if tags:
                mx.append(float(self.values[i]))
                my.append(float(n - 1 - i))
                text.append(",".join(tags))
                mcol.append(colors[i])
        with self.scatter.hold_sync():
            self.scatter.colors = colors
        with self.marks.hold_sync():
            self.marks.x = np.asarray(mx, dtype=float)
            self.marks.y = np.asarray(my, dtype=float)
            self.marks.text = text
            self.marks.colors = mcol or [X_COLOR]
        parts = []
        for ax, sel, col in (("x", x, X_COLOR), ("y", y, Y_COLOR)):
            if sel in self.labels:
                parts.append(f"<span style='color:{col}'>●</span> {ax}: {html.escape(sel)}")
            else:
                parts.append(f"<span style='color:{IDLE_COLOR}'>○</span> {ax}: "
                             "not an eigenvector")
        parts.append(f"<span style='color:{IDLE_COLOR};font-size:90%'>points: the computed "
                     "eigenvalues, λ1 at the top;<br>click one to put its eigenvector on "
                     "an axis</span>")
        self.legend.value = "<br>".join(parts)

    # ----------------------------------------------------------------- clicks
    def _clicked(self, change: dict) -> None:
        sel = change["new"]
        if sel is None or len(sel) == 0:
            return
        i = int(np.asarray(sel).reshape(-1)[-1])
        self.scatter.selected = None  # so that clicking the same point again still counts
        if 0 <= i < len(self.labels) and self._on_pick is not None:
            self._on_pick(self.target.value, self.labels[i])
