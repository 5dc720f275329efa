"""Figures of 1D curves: the loss and, on a twin axis, the other metrics."""

from __future__ import annotations

from typing import Any

from ._common import CurveLike, axes, axis_label


def plot_curve(
    curve: CurveLike, *, ax: Any = None, metrics: tuple[str, ...] | None = None, log: bool = False
) -> Any:
    """Loss on the left axis, other metrics (accuracy, ...) dashed on a twin right axis."""
    fig, ax = axes(ax, (5.6, 3.8))
    names = metrics or curve.metrics
    first, *rest = names
    ax.plot(curve.x, curve[first], color="C0", lw=1.8, label=first)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel(axis_label(curve, 0, "α"))
    ax.set_ylabel(first, color="C0")
    ax.tick_params(axis="y", colors="C0")
    ax.axvline(0.0, color="0.6", lw=0.8, ls=":")
    if rest:
        twin = ax.twinx()
        for i, m in enumerate(rest, start=1):
            twin.plot(curve.x, curve[m], color=f"C{i}", lw=1.4, ls="--", label=m)
        colour = "C1" if len(rest) == 1 else "0.2"
        twin.set_ylabel(", ".join(rest), color=colour)
        twin.tick_params(axis="y", colors=colour)
        if len(rest) > 1:
            twin.legend(loc="upper right", fontsize=8)
    ax.set_title(f"{first} along {axis_label(curve, 0, 'the direction')}")
    return fig
