"""Progress bars outside the widget: which calls show one, its unit, total and final count,
that it closes on every way out, that ``progress=False`` shows nothing, and that the values
are the same bits with and without a bar.

Most tests replace the tqdm class that `ls_widget.engine.progress` draws with a recorder; the
others draw real tqdm bars into captured stderr. A small tanh MLP on synthetic data keeps each
test well under a second.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import lw
from torch import nn
from tqdm.std import tqdm

from ls_widget.curvature.extremes import lanczos_steps
from ls_widget.engine import progress as progress_mod


# --------------------------------------------------------------------------------- fixtures
class RecordedBar:
    """Stands in for tqdm: keeps what the engine asked of it."""

    made: ClassVar[list[RecordedBar]] = []

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.first_total = kwargs["total"]
        self.total = kwargs["total"]
        self.n = 0
        self.updates: list[int] = []
        self.postfix = ""
        self.closed = False
        RecordedBar.made.append(self)

    def update(self, n: int = 1) -> None:
        assert not self.closed, "update after close"
        self.n += n
        self.updates.append(n)

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        self.postfix = text

    def refresh(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def bars(monkeypatch) -> Iterator[list[RecordedBar]]:
    """The bars the engine makes, recorded instead of drawn."""
    RecordedBar.made = []
    monkeypatch.setattr(progress_mod, "TqdmBar", RecordedBar)
    yield RecordedBar.made


@pytest.fixture
def shown(monkeypatch) -> None:
    """Real tqdm bars that draw at once (no delay), into pytest's captured stderr."""
    monkeypatch.setattr(progress_mod, "DELAY_S", 0.0)


def make_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, 12), nn.Tanh(), nn.Linear(12, 3))


def make_data(n: int = 120, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 8, generator=g)
    return X, (X[:, 0] > 0).long() + (X[:, 1] > 0.5).long()


@pytest.fixture
def land() -> lw.Landscape:
    return lw.Landscape(make_model(), make_data())


def dirs(land: lw.Landscape) -> tuple[lw.Direction, lw.Direction]:
    return lw.directions.random(land.model, 1), lw.directions.random(land.model, 2)


def only(bars: list[RecordedBar]) -> RecordedBar:
    assert len(bars) == 1, f"expected one bar, got {len(bars)}"
    return bars[0]


# --------------------------------------------------------------------------------- points
def test_plane_bar_counts_every_point(land, bars):
    d1, d2 = dirs(land)
    land.plane(d1, d2, n=(9, 7))
    bar = only(bars)
    assert bar.kwargs["unit"] == "pt" and bar.kwargs["desc"] == "plane 9×7"
    assert bar.kwargs["delay"] == progress_mod.DELAY_S and bar.kwargs["leave"] is True
    assert bar.first_total == bar.total == bar.n == 63
    assert len(bar.updates) > 1  # tile by tile (coarse level first), not once at the end
    assert bar.closed and bar.postfix == ""  # nothing interpolated


def test_line_bar(land, bars):
    d1, _ = dirs(land)
    land.line(d1, n=11)
    bar = only(bars)
    assert bar.kwargs["desc"] == "line 11" and bar.kwargs["unit"] == "pt"
    assert bar.total == bar.n == 11 and bar.closed


def test_adaptive_plane_bar_counts_interpolated_points_too(land, bars):
    d1, d2 = dirs(land)
    surface = land.plane(d1, d2, n=17, span=0.3, adaptive=True, tol=0.2)
    evaluated = int(surface.evaluated.sum())
    assert evaluated < 17 * 17, "the test needs some points interpolated"
    bar = only(bars)
    assert bar.total == bar.n == 17 * 17 and bar.closed
    assert bar.postfix == f"{evaluated} evaluated"


def test_curvature_map_bar(land, bars):
    d1, d2 = dirs(land)
    land.curvature_map(d1, d2, n=3, span=0.2, tol=1e-3)
    bar = only(bars)  # one bar of points: the Lanczos run at each point has none
    assert bar.kwargs["desc"] == "curvature map 3×3" and bar.kwargs["unit"] == "pt"
    assert bar.total == bar.n == 9 and bar.closed


def test_streams_have_no_bar_unless_asked(land, bars):
    d1, d2 = dirs(land)
    tiles = list(land.stream(d1, d2, n=5))
    assert bars == []
    assert list(land.curvature_stream(d1, d2, n=2, span=0.1, tol=1e-3)) and bars == []
    tracked = list(land.stream(d1, d2, n=5, progress=True))
    assert [t.values["loss"].tolist() for t in tracked] == [
        t.values["loss"].tolist() for t in tiles
    ]
    bar = only(bars)
    assert bar.total == bar.n == 25 and bar.closed


def test_stream_closed_early_closes_its_bar(land, bars):
    d1, d2 = dirs(land)
    stream = land.stream(d1, d2, n=9, progress=True)
    assert bars == []  # nothing shown before the first tile is asked for
    next(stream)
    bar = only(bars)
    assert 0 < bar.n < 81 and not bar.closed
    stream.close()  # type: ignore[attr-defined]
    assert bar.closed


def failing_mid_plane(n: int) -> tuple[lw.Landscape, lw.Direction, lw.Direction]:
    """A landscape whose loss raises half-way through an n × n plane (counted on a dry run,
    with one loss call per point and batch)."""
    calls, limit = 0, None

    def loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        nonlocal calls
        calls += 1
        if limit is not None and calls > limit:
            raise RuntimeError("loss failed")
        return F.cross_entropy(out, y)

    land = lw.Landscape(make_model(), make_data(), loss, strategy="loop")
    d1, d2 = dirs(land)
    land.plane(d1, d2, n=n, progress=False)
    assert calls >= n * n
    calls, limit = 0, calls // 2
    return lw.Landscape(make_model(), make_data(), loss, strategy="loop"), d1, d2


def test_bar_closed_when_the_loss_raises_mid_plane(bars):
    land, d1, d2 = failing_mid_plane(9)
    with pytest.raises(RuntimeError, match="loss failed"):
        land.plane(d1, d2, n=9)
    bar = only(bars)
    assert bar.closed and 0 < bar.n < 81


def test_real_bar_closed_and_no_thread_left_when_the_loss_raises(shown, capsys):
    land, d1, d2 = failing_mid_plane(9)
    bars, threads = len(tqdm._instances), set(threading.enumerate())
    with pytest.raises(RuntimeError, match="loss failed"):
        land.plane(d1, d2, n=9)
    assert len(tqdm._instances) == bars, "a bar was left open"
    assert set(threading.enumerate()) == threads, "a thread was left running"
    err = capsys.readouterr().err
    assert "plane 9×9" in err and "/81" in err and "81/81" not in err


# --------------------------------------------------------------------------------- Hessian
def test_lanczos_bar_shows_the_step_bound_and_ends_full_when_converged(land, bars):
    hessian = land.hessian_over(None)
    eig = hessian.eigen(2, which="both", tol=1e-4)
    bar = only(bars)
    assert bar.kwargs["unit"] == "hvp" and bar.kwargs["desc"] == "Hessian eigenpairs"
    bound = lanczos_steps(hessian.size, 2, torch.float32)
    assert bar.first_total == bound + 4  # the step limit, and one product per pair
    assert bar.n == eig.hvps < bar.first_total, "converged before the bound"
    assert bar.total == bar.n and bar.closed
    hessian.eigen(2, which="both", tol=1e-4)  # cached: no work, no bar
    assert len(bars) == 1


def test_arpack_bar_has_no_bound(land, bars):
    eig = land.hessian_over(None).eigen(1, which="top", tol=1e-4, method="arpack")
    bar = only(bars)
    assert bar.first_total is None
    assert bar.total == bar.n == eig.hvps and bar.closed


def test_density_bar(land, bars):
    dens = land.hessian_over(None).density(iterations=12, vectors=2)
    bar = only(bars)
    assert bar.kwargs["unit"] == "hvp" and bar.first_total == 24
    assert bar.total == bar.n == dens.hvps == 24 and bar.closed


def test_trace_bars(land, bars):
    hessian = land.hessian_over(None)
    hutch = hessian.trace("hutchinson", samples=5)
    proj = hessian.trace("projection", samples=3)
    first, second = bars
    assert first.kwargs["unit"] == "hvp" and first.total == first.n == hutch.evaluations == 5
    assert second.kwargs["unit"] == "pt"
    assert second.total == second.n == proj.evaluations == 13
    assert first.closed and second.closed


# --------------------------------------------------------------------------------- off, values
def test_progress_false_makes_no_bar(land, bars, shown, capsys):
    d1, d2 = dirs(land)
    hessian = land.hessian_over(None)
    land.plane(d1, d2, n=5, progress=False)
    land.line(d1, n=5, progress=False)
    land.curvature_map(d1, d2, n=2, span=0.1, tol=1e-3, progress=False)
    hessian.eigen(1, tol=1e-3, progress=False)
    hessian.density(iterations=5, vectors=1, progress=False)
    hessian.trace(samples=2, progress=False)
    hessian.trace("projection", samples=2, progress=False)
    assert bars == []
    assert capsys.readouterr().err == ""


def test_quick_calls_print_nothing(land, capsys):
    d1, d2 = dirs(land)
    land.plane(d1, d2, n=3)  # milliseconds: well within the delay
    assert capsys.readouterr().err == ""


def test_real_bar_shows_count_rate_and_label(land, shown, capsys):
    d1, d2 = dirs(land)
    land.plane(d1, d2, n=5)
    err = capsys.readouterr().err
    assert "plane 5×5" in err and "25/25" in err and "pt/s" in err
    land.hessian_over(None).density(iterations=6, vectors=1)
    err = capsys.readouterr().err
    assert "Hessian density (SLQ)" in err and "6/6" in err and "hvp/s" in err


def test_same_bits_with_and_without_progress(land, shown):
    d1, d2 = dirs(land)
    for adaptive in (False, True):
        on = land.plane(d1, d2, n=9, adaptive=adaptive, tol=0.05)
        off = land.plane(d1, d2, n=9, adaptive=adaptive, tol=0.05, progress=False)
        for m in land.metric_names:
            np.testing.assert_array_equal(on[m], off[m])
        np.testing.assert_array_equal(on.evaluated, off.evaluated)
    np.testing.assert_array_equal(land.line(d1, n=7)["loss"],
                                  land.line(d1, n=7, progress=False)["loss"])
    maps = [land.curvature_map(d1, d2, n=2, span=0.1, tol=1e-3, progress=p) for p in (True, False)]
    np.testing.assert_array_equal(maps[0]["ratio"], maps[1]["ratio"])
    # Fresh Hessians each time: the cache would make the comparison trivial.
    eigs = [land.hessian_over(None).eigen(2, tol=1e-4, progress=p) for p in (True, False)]
    np.testing.assert_array_equal(eigs[0].values, eigs[1].values)
    for a, b in zip(eigs[0].vectors, eigs[1].vectors, strict=True):
        assert all(torch.equal(a[n], b[n]) for n in land.space.names)
    dens = [land.hessian_over(None).density(iterations=8, vectors=2, progress=p)
            for p in (True, False)]
    np.testing.assert_array_equal(dens[0].density, dens[1].density)
    traces = [land.hessian_over(None).trace("projection", samples=3, progress=p)
              for p in (True, False)]
    np.testing.assert_array_equal(traces[0].samples, traces[1].samples)
    assert traces[0].mean == traces[1].mean


@pytest.mark.parametrize("bad", ["yes", 1, None])
def test_progress_must_be_a_bool(land, bad):
    d1, d2 = dirs(land)
    for call in (
        lambda: land.plane(d1, d2, n=3, progress=bad),
        lambda: land.stream(d1, d2, n=3, progress=bad),
        lambda: land.hessian_over(None).eigen(1, progress=bad),
    ):
        with pytest.raises(TypeError, match=f"progress must be True or False, got {bad!r}"):
            call()
