"""Publication figures: the widget's colour scale and levels, labels never cut, provenance as
tooltips, the explorer's layout, files of a chosen size and format (texts and artists, not
pixels)."""

from __future__ import annotations

import json
import struct
from xml.sax.saxutils import escape

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.contour import ContourSet

import ls_widget as lw
from ls_widget.figures import auto_log, explorer_figure, save_explorer, save_figure
from ls_widget.figures.scale import widget_levels

LONG = ("random #0, filter-normalised, seed 0, ignoring biases and batch-norm parameters, "
        "layers conv1 to conv4 of the residual blocks")
X, Y = np.linspace(-1, 1, 21), np.linspace(-1, 0.8, 15)
BOWL = np.add.outer(Y**2, X**2)


def surface(z: np.ndarray, long: bool = False) -> lw.Surface:
    dirs = ({"label": LONG if long else "d1", "kind": "random", "seed": 0},
            {"label": "d2", "kind": "random", "seed": 1})
    return lw.Surface(x=X, y=Y, values={"loss": z, "accuracy": 1 - z / 10}, directions=dirs)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def colorbar(fig):
    return next(ax for ax in fig.axes if ax.get_label() == "<colorbar>")


def contour_sets(fig):
    sets = [c for c in fig.axes[0].collections if isinstance(c, ContourSet)]
    return [c for c in sets if c.filled], [c for c in sets if not c.filled]


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


# ------------------------------------------------------------------------- colour scale
def test_auto_log_rule():
    assert auto_log(np.array([1e-3, 0.5, 2.0]))  # 2 / 1e-3 = 2000 > 100
    assert not auto_log(np.array([0.05, 1.0, 4.0]))  # 80: under two decades
    assert not auto_log(np.array([0.0, 1.0, 1e4]))  # a zero: linear
    assert not auto_log(np.array([-1.0, 1e3]))
    assert auto_log(np.array([np.nan, np.inf, 1e-2, 2.0]))  # non-finite values are ignored
    assert not auto_log(np.array([np.nan]))


def test_auto_picks_log_for_a_deep_basin_and_linear_otherwise():
    deep = surface(1e-4 + BOWL)
    fig = deep.plot()
    assert colorbar(fig).get_ylabel() == "loss (log scale)"
    assert colorbar(fig).get_yscale() == "log"
    fig = surface(1 + BOWL).plot()
    assert colorbar(fig).get_ylabel() == "loss"
    assert surface(1e-4 + BOWL).plot(log=False).axes[1].get_ylabel() == "loss"
    assert colorbar(surface(1 + BOWL).plot(log=True)).get_ylabel() == "loss (log scale)"


def test_colorbar_ticks_at_both_ends_of_the_data():
    z = 0.3 + BOWL
    cb = colorbar(surface(z).plot(log=False))
    ticks = cb.get_yticks()
    assert ticks[0] == pytest.approx(z.min()) and ticks[-1] == pytest.approx(z.max())
    labels = [t.get_text() for t in cb.get_yticklabels()]
    assert labels[0] == f"{z.min():.3g}" and labels[-1] == f"{z.max():.3g}"


def test_vmin_vmax_clip_the_scale():
    z = 0.3 + BOWL
    fig = surface(z).plot(log=False, vmin=0.5, vmax=1.5)
    ticks = colorbar(fig).get_yticks()
    assert ticks[0] == pytest.approx(0.5) and ticks[-1] == pytest.approx(1.5)
    filled, lines = contour_sets(fig)
    assert filled[0].norm.vmin == 0.5 and filled[0].norm.vmax == 1.5
    assert np.allclose(lines[0].levels, widget_levels(0.5, 1.5, 12, False))


@pytest.mark.parametrize(("kw", "match"), [
    ({"vmin": 2.0, "vmax": 1.0}, "vmin < vmax"),
    ({"log": True, "vmin": -1.0}, "positive vmin"),
    ({"log": "yes"}, "log='auto'"),
    ({"vmax": float("nan")}, "finite number"),
    ({"levels": -3}, "levels=-3"),
    ({"levels": True}, "levels=True"),
])
def test_bad_scale_arguments_name_the_fix(kw, match):
    with pytest.raises(ValueError, match=match):
        surface(0.3 + BOWL).plot(**kw)


def test_constant_surface_gets_a_defined_scale():
    for log in (False, True, "auto"):
        fig = surface(np.full_like(BOWL, 0.7)).plot(log=log)
        ticks = colorbar(fig).get_yticks()
        assert ticks[0] < ticks[-1] and ticks[0] == pytest.approx(0.7)


# ---------------------------------------------------------------------- widget's look
def test_default_colormap_and_levels_are_the_widgets():
    z = 0.3 + BOWL
    filled, lines = contour_sets(surface(z).plot(log=False))
    assert filled[0].cmap.name == "viridis"
    lo, hi = z.min(), z.max()
    # contour.ts contourLevels: 12 evenly spaced strictly inside [min, max]
    assert np.allclose(lines[0].levels, lo + (hi - lo) * np.arange(1, 13) / 13)
    z = 1e-3 + BOWL
    _, lines = contour_sets(surface(z).plot())  # auto: log, geometric levels
    lo, hi = z.min(), z.max()
    assert np.allclose(lines[0].levels, lo * (hi / lo) ** (np.arange(1, 13) / 13))
    _, lines = contour_sets(surface(z).plot(levels=5, cmap="magma"))
    assert len(lines[0].levels) == 5
    assert contour_sets(surface(z).plot(cmap="magma"))[0][0].cmap.name == "magma"


# ---------------------------------------------------------------------------- labels
def test_long_direction_labels_wrap_never_cut():
    fig = surface(0.3 + BOWL, long=True).plot()
    label = fig.axes[0].get_xlabel()
    assert "\n" in label and "…" not in label and "..." not in label
    assert " ".join(label.split()) == LONG
    assert fig.axes[0].get_ylabel() == "d2"  # short labels stay as they are


def test_provenance_is_an_svg_tooltip_not_a_label(tmp_path):
    surf = surface(0.3 + BOWL, long=True)
    fig = surf.plot()
    out = save_figure(fig, tmp_path / "s.svg")
    svg = out.read_text()
    for d in surf.directions:
        tip = escape(json.dumps(dict(d), sort_keys=True, ensure_ascii=False))
        assert f"<title>{tip}</title>" in svg
    assert "kind" not in fig.axes[0].get_xlabel()  # the label, not the whole record
    again = save_figure(surf.plot(), tmp_path / "t.svg")
    assert again.read_bytes() == out.read_bytes()  # same figure, same bits
    with pytest.raises(ValueError, match=r"\.png, \.svg or \.pdf"):
        save_figure(fig, tmp_path / "s.jpg")


def test_curve_axes_are_titled_with_metric_and_direction():
    x = np.linspace(-1, 1, 11)
    dirs = ({"label": LONG, "kind": "random"},)
    curve = lw.Curve(x=x, values={"loss": 1 + x**2, "accuracy": 0.9 - 0.1 * x**2},
                     directions=dirs)
    ax = curve.plot().axes[0]
    assert ax.get_ylabel() == "loss"
    assert " ".join(ax.get_xlabel().split()) == LONG and "\n" in ax.get_xlabel()
    assert " ".join(ax.get_title().split()) == f"loss along {LONG}"  # wrapped, not cut
    sets = lw.Curve(x=x, values={"train/loss": 1 + x**2, "test/accuracy": 0.9 + 0 * x})
    assert sets.plot().axes[0].get_ylabel() == "loss"


# ------------------------------------------------------------------- explorer layout
def test_explorer_figure_draws_the_rows_through_the_point():
    z = 0.3 + BOWL + 0.1 * X[None, :]
    surf = surface(z)
    fig = surf.plot(cross=(0.25, -0.3))
    i, j = int(np.argmin(np.abs(Y + 0.3))), int(np.argmin(np.abs(X - 0.25)))
    titles = {ax.get_title(): ax for ax in fig.axes}
    along_a = titles[f"loss at β = {Y[i]:.3g}"]
    along_b = titles[f"loss at α = {X[j]:.3g}"]
    assert np.array_equal(along_a.get_lines()[0].get_ydata(), z[i, :])
    assert np.array_equal(along_b.get_lines()[0].get_ydata(), z[:, j])
    assert along_a.get_xlabel() == "d1" and along_b.get_xlabel() == "d2"
    assert along_a.get_ylabel() == "loss"
    assert colorbar(fig).get_ylabel() == "loss"
    acc = explorer_figure(surf, "accuracy")  # through the grid point nearest (0, 0)
    assert any(ax.get_title() == f"accuracy at β = {Y[int(np.argmin(np.abs(Y)))]:.3g}"
               for ax in acc.axes)


def test_explorer_figure_rejects_bad_points():
    surf = surface(0.3 + BOWL)
    with pytest.raises(ValueError, match="outside the surface"):
        surf.plot(cross=(5.0, 0.0))
    with pytest.raises(ValueError, match=r"point \(α, β\)"):
        surf.plot(cross=(0.0,))
    with pytest.raises(ValueError, match="ax=None"):
        surf.plot(ax=plt.subplots()[1], cross=(0.0, 0.0))


def test_saved_files_of_a_size_and_format(tmp_path):
    surf = surface(0.3 + BOWL)
    png = save_explorer(surf, tmp_path / "e.png", width=900, height=420, dpi=100)
    assert png_size(png) == (900, 420)
    pdf = save_explorer(surf, tmp_path / "e.pdf")
    assert pdf.read_bytes()[:4] == b"%PDF"
    assert save_explorer(surf, tmp_path / "f.pdf").read_bytes() == pdf.read_bytes()
    with pytest.raises(ValueError, match="at least 100 pixels"):
        save_explorer(surf, tmp_path / "e.png", width=10)


def test_widget_saves_sized_png_svg_and_pdf(tmp_path):
    import torch
    from torch import nn

    from ls_widget.widget.view import LandscapeWidget

    torch.manual_seed(0)
    X_, y_ = torch.randn(64, 4), torch.randint(0, 2, (64,))
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    land = lw.Landscape(model, (X_, y_))
    d1, d2 = (lw.directions.random(model, seed=s) for s in (0, 1))
    w = LandscapeWidget(land, d1, d2, n=7)
    try:
        assert w.wait(30)
        fake = b"\x89PNG\r\n\x1a\nfrom-the-screen"
        w._handle_custom_msg({"type": "snapshot", "gen": w.generation}, [fake])
        assert w.save_png(tmp_path / "screen.png").read_bytes() == fake  # no size: the screen
        sized = w.save_png(tmp_path / "sized.png", width=800, height=400, dpi=100)
        assert png_size(sized) == (800, 400)
        svg = w.save_svg(tmp_path / "fig")
        assert svg.suffix == ".svg" and "<title>" in svg.read_text()
        assert w.save_pdf(tmp_path / "fig.pdf").read_bytes()[:4] == b"%PDF"
        with pytest.raises(ValueError, match=r"not a \.svg file"):
            w.save_svg(tmp_path / "fig.png")
    finally:
        w.close()
