"""Figures of 1D curves: the loss and, on a twin axis, the other metrics.

Curves of named data sets (metrics ``"train/loss"``, ``"test/loss"``, ...) are drawn as Li et
al. (2018, Fig. 2) draw them: one colour per metric, the first set solid, the second dashed
(then dotted, dash-dotted), the loss on the left axis and the other metrics on the right.
"""

from __future__ import annotations

from typing import Any

from ._common import CurveLike, axes, axis_label
from .labels import label_directions, wrap

_SET_STYLES = ("-", "--", ":", "-.")  # first set solid, second dashed, ...


def _split(names: tuple[str, ...]) -> list[tuple[str, str]] | None:
    """(set, metric) of every name when all are ``"<set>/<metric>"``, else None."""
    parts = [tuple(n.split("/", 1)) for n in names]
    if not all(len(p) == 2 and p[0] and p[1] for p in parts):
        return None
    return [(p[0], p[1]) for p in parts]


def plot_curve(
    curve: CurveLike, *, ax: Any = None, metrics: tuple[str, ...] | None = None, log: bool = False
) -> Any:
    """Loss on the left axis, other metrics (accuracy, ...) dashed on a twin right axis.

    With named data sets: each metric in one colour, the sets told apart by the line style
    (train solid, test dashed), and a legend naming every line.
    """
    fig, ax = axes(ax, (5.6, 3.8))
    names = tuple(metrics or curve.metrics)
    if not names:
        raise ValueError("the curve has no metrics to plot; pass metrics=('loss', ...)")
    split = _split(names)
    if split is None:
        _single(ax, curve, names)
    else:
        _by_set(ax, curve, names, split)
    if log:
        ax.set_yscale("log")
    # the direction's label wrapped to the axes, its provenance a tooltip in SVG
    label_directions(ax, curve.directions, (axis_label(curve, 0, "α"),), "x")
    ax.axvline(0.0, color="0.6", lw=0.8, ls=":")
    first = names[0] if split is None else split[0][1]
    title = f"{first} along {axis_label(curve, 0, 'the direction')}"
    text, size = wrap(title, fig.get_size_inches()[0] * 0.8, float(ax.title.get_fontsize()))
    ax.set_title(text, fontsize=size)
    return fig


def _single(ax: Any, curve: CurveLike, names: tuple[str, ...]) -> None:
    """One data set: the first metric solid on the left axis, the rest dashed on the right."""
    first, *rest = names
    ax.plot(curve.x, curve[first], color="C0", lw=1.8, label=first)
    ax.set_ylabel(first, color="C0")
    ax.tick_params(axis="y", colors="C0")
    if rest:
        twin = ax.twinx()
        for i, m in enumerate(rest, start=1):
            twin.plot(curve.x, curve[m], color=f"C{i}", lw=1.4, ls="--", label=m)
        colour = "C1" if len(rest) == 1 else "0.2"
        twin.set_ylabel(", ".join(rest), color=colour)
        twin.tick_params(axis="y", colors=colour)
        if len(rest) > 1:
            twin.legend(loc="upper right", fontsize=8)


def _by_set(ax: Any, curve: CurveLike, names: tuple[str, ...],
            split: list[tuple[str, str]]) -> None:
    """Named data sets: colour per metric, style per set; the first metric on the left."""
    sets = list(dict.fromkeys(s for s, _ in split))
    kinds = list(dict.fromkeys(m for _, m in split))
    twin = ax.twinx() if len(kinds) > 1 else None
    for name, (s, m) in zip(names, split, strict=True):
        k = kinds.index(m)
        on = twin if k > 0 and twin is not None else ax
        on.plot(curve.x, curve[name], color=f"C{k}", lw=1.8 if k == 0 else 1.4,
                ls=_SET_STYLES[sets.index(s) % len(_SET_STYLES)], label=name)
    ax.set_ylabel(kinds[0], color="C0")
    ax.tick_params(axis="y", colors="C0")
    handles, labels = ax.get_legend_handles_labels()
    if twin is not None:
        colour = "C1" if len(kinds) == 2 else "0.2"
        twin.set_ylabel(", ".join(kinds[1:]), color=colour)
        twin.tick_params(axis="y", colors=colour)
        more = twin.get_legend_handles_labels()
        handles, labels = handles + more[0], labels + more[1]
    # On the top axes, so that the twin's lines do not hide it.
    (twin or ax).legend(handles, labels, loc="best", fontsize=8)
