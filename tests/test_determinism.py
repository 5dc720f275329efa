"""Same inputs, same bits: the evaluation schedule never depends on a clock or machine load.

The contract (README, "Determinism"): the same model, data, directions, span, n and settings
give a bit-identical `Surface` on the same machine, whether computed by `plane`, by `stream`
(with any tile size, fully consumed, or stopped and restarted), with `adaptive=False`, in the
widget, under load or idle, in a fresh process. vmap and the per-point loop agree to float
rounding.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import lw
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

_HERE = Path(__file__).parent


def _assemble(tiles, shape, names=("loss",)):
    out = {m: np.full(shape, np.nan) for m in names}
    for t in tiles:
        for m in names:
            out[m][t.rows, t.cols] = t.values[m]
    return out


@pytest.fixture(params=["loop", "vmap"])
def land(request, trained_mlp, digits_small, device):
    model = copy.deepcopy(trained_mlp).to(device)
    data = tuple(t.to(device) for t in digits_small)
    return lw.Landscape(model, data, metrics={"accuracy": lw.metrics.accuracy},
                        strategy=request.param)


@pytest.fixture
def dirs(land):
    return lw.directions.random(land.model, seed=0), lw.directions.random(land.model, seed=1)


# --------------------------------------------------------------------------------- in process
@pytest.mark.parametrize("tile_size", [1, 2, 5, 7, 64, 1000])
def test_stream_equals_plane_bit_for_bit_whatever_the_tile_size(land, dirs, tile_size):
    d1, d2 = dirs
    surf = land.plane(d1, d2, span=1, n=13)
    got = _assemble(land.stream(d1, d2, span=1, n=13, tile_size=tile_size), (13, 13),
                    land.metric_names)
    for m in land.metric_names:
        np.testing.assert_array_equal(got[m], surf[m])


def test_stopped_and_restarted_stream_gives_the_same_bits(land, dirs):
    d1, d2 = dirs
    surf = land.plane(d1, d2, span=0.7, n=11)
    it = land.stream(d1, d2, span=0.7, n=11, tile_size=3)
    for _ in range(4):
        next(it)
    it.close()
    # A restart with another tile size, after other work on another plane in between.
    land.plane(d2, d1, span=2, n=5)
    again = _assemble(land.stream(d1, d2, span=0.7, n=11, tile_size=4), (11, 11))
    np.testing.assert_array_equal(again["loss"], surf["loss"])


def test_adaptive_false_line_and_evaluate_agree_with_the_plane(land, dirs):
    d1, d2 = dirs
    surf = land.plane(d1, d2, span=1, n=9, adaptive=False)
    again = land.plane(d1, d2, span=1, n=9)
    np.testing.assert_array_equal(again["loss"], surf["loss"])
    # Arbitrary points through `evaluate`, in another order and company, same bits.
    rows, cols = np.meshgrid(np.arange(9), np.arange(9), indexing="ij")
    pts = np.stack([surf.x[cols.ravel()], surf.y[rows.ravel()]], axis=1)
    perm = np.random.default_rng(0).permutation(len(pts))
    vals = land.evaluate([d1, d2], pts[perm])["loss"]
    back = np.empty_like(vals)
    back[perm] = vals
    np.testing.assert_array_equal(back.reshape(9, 9), surf["loss"])


def test_tile_size_is_a_pure_function_of_the_inputs(land, dirs):
    sizes = set()
    for _ in range(2):
        land = lw.Landscape(land.model, (land.evaluator.batches[0].x[0],
                                         land.evaluator.batches[0].y))
        bound = land._bind(list(dirs))
        sizes.add((bound.tile_size, land.evaluator.chosen["vmap_chunk"]))
    assert len(sizes) == 1
    (tile, chunk), = sizes
    assert 1 <= tile <= 512
    if land.evaluator.chosen["mode"] == "vmap":
        assert tile % chunk == 0


def test_vmap_and_loop_agree_to_float_rounding(land, dirs):
    d1, d2 = dirs
    data = (land.evaluator.batches[0].x[0], land.evaluator.batches[0].y)
    loop = lw.Landscape(land.model, data, strategy="loop").plane(d1, d2, n=11)
    vm = lw.Landscape(land.model, data, strategy="vmap").plane(d1, d2, n=11)
    np.testing.assert_allclose(vm["loss"], loop["loss"], rtol=1e-5, atol=0)


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    nx=st.integers(2, 12), ny=st.integers(2, 12),
    lo=st.floats(-2, -0.01), hi=st.floats(0.01, 2),
    tile=st.integers(1, 40),
)
def test_property_any_grid_any_tiles_same_bits(land, dirs, nx, ny, lo, hi, tile):
    d1, d2 = dirs
    span = ((lo, hi), (lo / 2, hi))
    surf = land.plane(d1, d2, span=span, n=(nx, ny))
    got = _assemble(land.stream(d1, d2, span=span, n=(nx, ny), tile_size=tile), (ny, nx))
    np.testing.assert_array_equal(got["loss"], surf["loss"])


def test_conv_net_stream_equals_plane(trained_cnn, digits_images):
    land = lw.Landscape(trained_cnn, digits_images)
    d1 = lw.directions.random(trained_cnn, seed=3)
    d2 = lw.directions.random(trained_cnn, seed=4)
    surf = land.plane(d1, d2, span=1, n=7)
    got = _assemble(land.stream(d1, d2, span=1, n=7, tile_size=3), (7, 7))
    np.testing.assert_array_equal(got["loss"], surf["loss"])


# --------------------------------------------------------------------------------- processes
_SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    import numpy as np, torch
    from helpers import {builder}
    import ls_widget as lw

    data = torch.load({data!r})
    model = {builder}(0)
    model.load_state_dict(torch.load({weights!r}))
    land = lw.Landscape(model, data, strategy={strategy!r})
    d1 = lw.directions.random(model, seed=0)
    d2 = lw.directions.random(model, seed=1)
    surf = land.plane(d1, d2, span=1, n=15)
    np.save({out!r}, np.stack([surf[m] for m in surf.metrics]))
""")


def _plane_in_fresh_process(tmp: Path, tag: str, strategy: str, builder: str) -> bytes:
    out = tmp / f"{tag}.npy"
    script = _SCRIPT.format(tests=str(_HERE), data=str(tmp / "data.pt"), builder=builder,
                            weights=str(tmp / "weights.pt"), strategy=strategy, out=str(out))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMP_")}
    subprocess.run([sys.executable, "-c", script], check=True, env=env, timeout=300)
    return out.read_bytes()


@pytest.mark.parametrize(
    ("builder", "strategy"),
    [("mlp", "loop"), ("mlp", "vmap"), ("cnn_bn", "auto")],
)
def test_same_plane_in_two_fresh_processes_one_under_load(
    tmp_path, builder, strategy, trained_mlp, trained_cnn, digits_small, digits_images
):
    model = trained_mlp if builder == "mlp" else trained_cnn
    data = digits_small if builder == "mlp" else digits_images
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    torch.save(data, tmp_path / "data.pt")
    idle = _plane_in_fresh_process(tmp_path, "idle", strategy, builder)
    # A busy CPU beside the second run: one spinning process per core.
    busy = [subprocess.Popen(["yes"], stdout=subprocess.DEVNULL)
            for _ in range(os.cpu_count() or 2)]
    try:
        loaded = _plane_in_fresh_process(tmp_path, "loaded", strategy, builder)
    finally:
        for p in busy:
            p.kill()
            p.wait()
    assert idle == loaded, "the same plane differs between two fresh processes"


def test_the_widget_shows_the_same_bits_as_plane(trained_mlp, digits_small):
    pytest.importorskip("anywidget")
    from ls_widget.widget import LandscapeWidget

    land = lw.Landscape(trained_mlp, digits_small, metrics={"accuracy": lw.metrics.accuracy})
    d1 = lw.directions.random(trained_mlp, seed=0)
    d2 = lw.directions.random(trained_mlp, seed=1)
    w = LandscapeWidget(land, d1, d2, span=0.8, n=13)
    try:
        assert w.wait(timeout=120), "the widget did not finish its surface"
        shown = w.surface_record
        assert shown is not None
        surf = land.plane(d1, d2, span=0.8, n=13)
        for m in surf.metrics:
            np.testing.assert_array_equal(shown[m], surf[m])
    finally:
        w.close()
