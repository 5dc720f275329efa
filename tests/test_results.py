"""Curve and Surface records: immutability, npz round trips, matplotlib figures."""

from __future__ import annotations

import dataclasses

import matplotlib.pyplot as plt
import numpy as np
import pytest
from helpers import lw
from matplotlib.figure import Figure


@pytest.fixture(scope="module")
def records(trained_mlp, digits_small):
    land = lw.Landscape(trained_mlp, digits_small, metrics={"accuracy": lw.metrics.accuracy})
    d1 = lw.directions.random(trained_mlp, seed=0)
    d2 = lw.directions.random(trained_mlp, seed=1)
    surf = land.plane(lw.directions.mix(d1, d2, 0.25), d2, span=((-1, 1), (-0.5, 0.5)), n=(9, 7))
    adaptive = land.plane(d1, d2, span=1, n=17, adaptive=True, tol=0.05)
    curve = land.line(d1, span=1, n=11)
    return surf, adaptive, curve


def test_arrays_are_read_only(records):
    surf, adaptive, curve = records
    arrays = [surf.x, surf.y, surf["loss"], surf["accuracy"], surf.evaluated,
              adaptive.evaluated, curve.x, curve["loss"], curve["accuracy"]]
    for a in arrays:
        assert isinstance(a, np.ndarray)
        assert not a.flags.writeable
        with pytest.raises(ValueError):
            a[(0,) * a.ndim] = 1
    with pytest.raises(ValueError):
        surf["loss"] += 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        surf.x = np.zeros(9)  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        curve.values = {}  # type: ignore[misc]


def test_values_mapping_is_immutable():
    """An immutable record: its metric mapping cannot be rebound or extended either."""
    surf = lw.Surface(x=np.arange(3.0), y=np.arange(2.0), values={"loss": np.ones((2, 3))})
    curve = lw.Curve(x=np.arange(3.0), values={"loss": np.ones(3)})
    for rec, shape in [(surf, surf.shape), (curve, curve.x.shape)]:
        with pytest.raises(TypeError):
            rec.values["loss"] = np.zeros(shape)  # type: ignore[index]
        with pytest.raises(TypeError):
            rec.values["extra"] = np.zeros(shape)  # type: ignore[index]


def test_record_contents(records):
    surf, adaptive, curve = records
    assert surf.metrics == ("loss", "accuracy")
    assert "loss" in surf and "nope" not in surf
    assert surf.shape == (7, 9) and surf["loss"].shape == (7, 9)
    assert surf["loss"].dtype == np.float64
    assert curve.x.shape == (11,) and curve["loss"].shape == (11,)
    assert np.all((surf["accuracy"] >= 0) & (surf["accuracy"] <= 1))
    assert surf.evaluated.all() and not adaptive.evaluated.all()
    with pytest.raises(KeyError, match="accuracy"):
        surf["acc"]
    assert surf.directions[0]["kind"] == "mix" and surf.directions[1]["seed"] == 1
    assert curve.directions[0]["seed"] == 0 and curve.directions[0]["norm"] == "filter"
    assert surf.meta["n_samples"] == 300 and surf.meta["dtype"] == "float32"


def test_records_validate_shapes():
    with pytest.raises(ValueError):
        lw.Curve(x=np.arange(3.0), values={"loss": np.zeros(4)})
    with pytest.raises(ValueError):
        lw.Surface(x=np.arange(3.0), y=np.arange(2.0), values={"loss": np.zeros((3, 2))})


def _same(a, b):
    assert type(a) is type(b)
    np.testing.assert_array_equal(a.x, b.x)
    assert a.metrics == b.metrics
    for m in a.metrics:
        assert np.array_equal(a[m], b[m], equal_nan=True), m
        assert not b[m].flags.writeable
    assert a.directions == b.directions
    assert a.meta == b.meta


def test_save_load_round_trip(records, tmp_path):
    surf, adaptive, curve = records
    for name, rec in [("surf", surf), ("adaptive", adaptive), ("curve", curve)]:
        path = rec.save(tmp_path / name)
        assert str(path).endswith(".npz")
        back = lw.load(path)
        _same(rec, back)
        if isinstance(rec, lw.Surface):
            np.testing.assert_array_equal(back.y, rec.y)
            np.testing.assert_array_equal(back.evaluated, rec.evaluated)
            assert back.evaluated.dtype == bool
    # Provenance survives in detail: the mix's parts, seeds, norms, ignore flags.
    back = lw.load(tmp_path / "surf.npz")
    assert back.directions[0]["parts"][0]["seed"] == 0
    assert back.directions[0]["t"] == 0.25
    assert back.directions[1]["ignore"] == "biasbn"
    assert back.meta["adaptive"] is False


def test_save_load_nonfinite(tmp_path):
    surf = lw.Surface(
        x=np.array([-1.0, 0.0, 1.0]), y=np.array([-1.0, 1.0]),
        values={"loss": np.array([[np.nan, 1.0, np.inf], [2.0, 3.0, -np.inf]])},
        directions=({"kind": "custom", "label": "a"}, {"kind": "custom", "label": "b"}),
        meta={"note": "x"},
    )
    back = lw.load(surf.save(tmp_path / "nf.npz"))
    _same(surf, back)


@pytest.mark.parametrize("name", ["x.csv", "x.txt", "x.vtk"])
def test_save_with_an_unknown_suffix_is_an_error_not_a_silent_npz(records, tmp_path, name):
    surf, _, curve = records
    for rec in (surf, curve):
        with pytest.raises(ValueError, match=r"unknown file type .*\.npz"):
            rec.save(tmp_path / name)
    assert not list(tmp_path.iterdir())


def test_load_rejects_foreign_npz(tmp_path):
    p = tmp_path / "other.npz"
    np.savez(p, a=np.zeros(3))
    with pytest.raises(ValueError, match="ls-widget"):
        lw.load(p)


@pytest.mark.parametrize("ext", ["png", "svg", "pdf"])
def test_plots_save_to_files(records, tmp_path, ext):
    surf, adaptive, curve = records
    magic = {"png": b"\x89PNG", "svg": b"<svg", "pdf": b"%PDF"}[ext]
    figs = {
        "surface": surf.plot(),
        "surface-log": surf.plot(log=True),
        "surface-acc": surf.plot("accuracy", filled=False),
        "adaptive": adaptive.plot(),
        "curve": curve.plot(),
    }
    try:
        for name, fig in figs.items():
            assert isinstance(fig, Figure), name
            out = tmp_path / f"{name}.{ext}"
            fig.savefig(out)
            head = out.read_bytes()[:4096]
            assert out.stat().st_size > 1000 and magic in head, name
    finally:
        for fig in figs.values():
            plt.close(fig)


def test_plots_content(records):
    surf, _, curve = records
    fig = surf.plot()
    try:
        ax = fig.axes[0]
        # long labels wrap to the axes' size (never cut): the same words
        assert " ".join(ax.get_xlabel().split()) == surf.directions[0]["label"]
        assert " ".join(ax.get_ylabel().split()) == surf.directions[1]["label"]
        assert ax.get_xlim()[0] <= -1 and ax.get_xlim()[1] >= 1
        assert ax.get_ylim()[0] <= -0.5 and ax.get_ylim()[1] >= 0.5
    finally:
        plt.close(fig)
    fig = curve.plot()
    try:
        assert len(fig.axes) >= 2, "loss and accuracy on twin axes"
        lines = fig.axes[0].get_lines()
        assert any(np.allclose(ln.get_ydata(), curve["loss"]) for ln in lines)
    finally:
        plt.close(fig)


def test_plot_with_nonfinite_values(tmp_path):
    z = np.outer(np.linspace(1, 2, 5), np.linspace(1, 3, 5))
    z[0, 0], z[4, 4] = np.nan, np.inf
    surf = lw.Surface(x=np.linspace(-1, 1, 5), y=np.linspace(-1, 1, 5), values={"loss": z})
    for log in (False, True):
        fig = surf.plot(log=log)
        try:
            fig.savefig(tmp_path / f"nf{log}.png")
        finally:
            plt.close(fig)
    loss = np.array([np.nan, 1, 0.5, 1, np.inf])
    curve = lw.Curve(x=np.linspace(-1, 1, 5), values={"loss": loss})
    fig = curve.plot()
    plt.close(fig)
    assert isinstance(fig, Figure)


def test_log_plot_of_nonpositive_surface():
    """log=True on a surface with no positive value: a figure, or an error that says why."""
    surf = lw.Surface(x=np.linspace(-1, 1, 4), y=np.linspace(-1, 1, 3),
                      values={"loss": np.zeros((3, 4))})
    try:
        fig = surf.plot(log=True)
    except ValueError as exc:
        assert "log" in str(exc).lower(), f"unclear error: {exc}"
    else:
        assert isinstance(fig, Figure)
        plt.close(fig)
    fig = surf.plot()  # a constant surface on a linear scale
    assert isinstance(fig, Figure)
    plt.close(fig)
