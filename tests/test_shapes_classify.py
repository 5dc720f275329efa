"""The curve and surface shape classifiers (issue 13, Xu et al. 2024): analytic shapes with known
answers, clean, noisy and with ReLU-like kinks; non-finite values, short curves, steep walls;
and the random directions of a trained network."""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import assert_unchanged, snapshot

import ls_widget as lw
from ls_widget.shapes.classify import KINDS, POSITIONS, CurveShape, Extremum, classify
from ls_widget.shapes.surface import SURFACE_KINDS, classify_surface

X41 = np.linspace(-1.0, 1.0, 41)  # step 0.05
TOWARDS = np.linspace(-0.5, 1.5, 41)  # a path through two models at 0 and 1
X7 = np.linspace(-0.7, 0.7, 41)
Fn = Callable[[np.ndarray], np.ndarray]


def double_well(a: np.ndarray) -> np.ndarray:
    return (a * (a - 1.0)) ** 2  # minima at 0 and 1, barrier at 0.5


# kind, alphas, f, true minima, true maxima (None: not checked)
CURVES: list[tuple[str, np.ndarray, Fn, list[float] | None, list[float] | None]] = [
    ("v-basin", X41, lambda a: a**2, [0.0], []),
    ("v-basin", X41, np.abs, [0.0], []),
    ("v-basin", X41, lambda a: 1 - np.exp(-4 * a**2), [0.0], []),  # flattens at the ends
    ("v-basin", X41, lambda a: 0.2 * np.abs(a) + a**2, [0.0], []),
    ("v-basin", X41, lambda a: np.maximum(a, -0.5 * a) + 0.3 * a**2, [0.0], []),
    ("v-basin", X41, lambda a: (a - 0.05) ** 2, [0.05], []),
    ("v-basin", X41, lambda a: a**4, None, []),  # a floor so flat that noise places its bottom
    ("v-side", X41, lambda a: a, [], []),
    ("v-side", X41, lambda a: np.tanh(3 * (a + 0.2)), [], []),
    ("v-side", X41, np.exp, [], []),
    ("v-side", X41, lambda a: (a + 1.5) ** 2, [], []),  # the minimum beyond an end
    ("v-side", X41, lambda a: (a - 0.8) ** 2, None, []),  # an interior minimum, the model high
    ("w-basin", TOWARDS, double_well, [0.0, 1.0], [0.5]),
    ("w-basin", TOWARDS, lambda a: double_well(a) + 0.02 * a, None, None),
    ("w-basin", TOWARDS, lambda a: np.minimum(np.abs(a), np.abs(a - 1)), [0.0, 1.0], [0.5]),
    ("w-peak", X41, lambda a: (a**2 - 0.25) ** 2, [-0.5, 0.5], [0.0]),
    ("w-peak", X41, lambda a: np.abs(np.abs(a) - 0.5), [-0.5, 0.5], [0.0]),
    ("w-peak", X41, lambda a: np.cos(4 * a), [-np.pi / 4, np.pi / 4], [0.0]),
    ("vvv-basin", X41, lambda a: a**2 + 0.3 * (1 - np.cos(2 * np.pi * a / 0.6)), None, None),
    ("vvv-basin", X7, lambda a: 0.5 * a**2 + 0.3 * np.abs(np.sin(2 * np.pi * a)),
     [-0.5, 0.0, 0.5], [-0.25, 0.25]),
    ("other", X41, lambda a: np.minimum(np.abs(a - 0.3), np.abs(a - 0.7)), [0.3, 0.7], [0.5]),
    ("other", X41, lambda a: -(a**2), [], [0.0]),  # a hill
    ("other", X41, lambda a: 1 - np.cos(2 * np.pi * a), [0.0], [-0.5, 0.5]),  # lower beyond
]


def kinked(fn: Fn, x: np.ndarray) -> np.ndarray:
    """The piecewise-linear interpolant of fn through 21 knots: a ReLU net's kinks."""
    knots = np.linspace(x[0], x[-1], 21)
    return np.interp(x, knots, fn(knots))


def noisy(f: np.ndarray, seed: int, level: float = 0.01) -> np.ndarray:
    return f + level * np.ptp(f) * np.random.default_rng(seed).standard_normal(f.shape)


def assert_located(found: tuple[Extremum, ...], truth: list[float] | None, step: float) -> None:
    if truth is None:
        return
    assert len(found) == len(truth), (found, truth)
    for e, t in zip(found, truth, strict=True):
        assert abs(e.alpha - t) <= step, (e, t)


@pytest.mark.parametrize("variant", ["clean", "noise", "kinks", "kinks+noise"])
@pytest.mark.parametrize(("kind", "x", "fn", "minima", "maxima"), CURVES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CURVES)])
def test_analytic_curves(kind, x, fn, minima, maxima, variant) -> None:
    f = kinked(fn, x) if "kinks" in variant else fn(x)
    if "noise" in variant:
        f = noisy(f, seed=len(variant))
    shape = classify((x, f))
    assert shape.kind == kind, str(shape)
    step = float(x[1] - x[0])
    assert_located(shape.minima, minima, step)
    assert_located(shape.maxima, maxima, step)
    assert 0.0 < shape.margin <= 1.0
    assert all(0.05 <= e.prominence <= 1.0 for e in (*shape.minima, *shape.maxima))
    assert [e.alpha for e in shape.minima] == sorted(e.alpha for e in shape.minima)


@pytest.mark.parametrize("seed", range(10))
def test_noise_seeds_do_not_change_clean_shapes(seed) -> None:
    """1 % noise, ten draws: the clean kinds stay (margins: ../shapes/classify.py)."""
    for kind, x, fn, _, _ in CURVES[::3]:
        assert classify((x, noisy(fn(x), seed))).kind == kind


def test_positions_fields_and_text() -> None:
    w = classify((X41, np.abs(np.abs(X41) - 0.5) + 0.1))
    assert (w.kind, w.position, w.metric, w.scale) == ("w-peak", "maximum", "loss", "linear")
    assert (w.smoothing, w.prominence) == (1.0, 0.05)
    assert [e.kind for e in w.minima] == ["min", "min"] and w.maxima[0].kind == "max"
    assert w.maxima[0].loss == pytest.approx(0.6)  # the raw value at the grid point
    assert w.minima[0].prominence == pytest.approx(0.5 / 0.5, abs=0.1)
    assert str(w) == f"w-peak (margin {w.margin:.2f}): minima at α=-0.50, 0.50; maximum at α=0.00"
    assert classify((X41, X41)).position == "wall"
    assert classify((X41, X41**2)).position == "minimum"
    assert str(classify((X41, 0 * X41))) == "flat (margin 1.00)"
    assert KINDS == ("v-basin", "v-side", "w-basin", "w-peak", "vvv-basin", "flat", "other")
    assert POSITIONS == ("minimum", "maximum", "wall", "elsewhere")


def test_center_moves_the_model_along_a_path() -> None:
    f = double_well(TOWARDS)  # minima at 0 and 1, barrier at 0.5
    kinds = {c: classify((TOWARDS, f), center=c).kind for c in (0.0, 0.25, 0.5, 1.0, 1.5)}
    assert kinds == {0.0: "w-basin", 0.25: "other", 0.5: "w-peak", 1.0: "w-basin",
                     1.5: "other"}
    at_end = classify((TOWARDS, f), center=1.5)
    assert (at_end.position, at_end.margin) == ("elsewhere", 0.0)
    # the outer minimum of three is not the middle one
    vvv = X41**2 + 0.3 * (1 - np.cos(2 * np.pi * X41 / 0.6))
    assert classify((X41, vvv)).kind == "vvv-basin"
    assert classify((X41, vvv), center=-0.56).kind == "other"


def test_model_near_but_off_the_bottom() -> None:
    """Within 10 % of the half-span, or a quarter of the basin's depth: at the bottom."""
    assert classify((X41, (X41 - 0.1) ** 2)).kind == "v-basin"
    assert classify((X41, (X41 - 0.3) ** 2)).kind == "v-basin"  # 0.09 of a 0.49-deep basin
    off = classify((X41, (X41 - 0.6) ** 2))  # 0.36 of a 0.16-deep basin: on its wall
    assert (off.kind, off.position) == ("v-side", "wall")
    assert classify((X41, (X41 - 0.3) ** 2)).margin < classify((X41, X41**2)).margin


def test_flat_curves() -> None:
    for f in (np.full(41, 2.3), np.zeros(41), 2.3 + 1e-7 * np.sin(7 * X41)):
        shape = classify((X41, f))
        assert (shape.kind, shape.position, shape.minima, shape.maxima) == (
            "flat", "elsewhere", (), ())
    assert classify((X41, 2.3 + 1e-3 * X41**2)).kind == "v-basin"  # small, not negligible


def test_non_finite_values() -> None:
    f = X41**2
    ends = f.copy()
    ends[:3], ends[-2:] = np.nan, np.inf  # diverged towards both ends: walls
    assert classify((X41, ends)).kind == "v-basin"
    one_side = np.where(X41 > 0.9, np.inf, (X41 - 0.8) ** 2)  # the minimum by a wall
    assert classify((X41, one_side)).kind == "v-side"
    hole = f.copy()
    hole[24:26] = np.nan  # undefined points inside: masked, not walls
    assert classify((X41, hole)).kind == "v-basin"
    spike = f.copy()
    spike[25] = np.inf  # a point where the loss diverged: a wall
    assert classify((X41, spike)).kind == "w-basin"
    nothing = classify((X41, np.full(41, np.nan)))
    assert (nothing.kind, nothing.margin) == ("other", 0.0)
    assert classify((X41, np.where(X41 < -0.9, -np.inf, f))).kind == "v-basin"


def test_short_curves() -> None:
    three = classify(([-1.0, 0.0, 1.0], [1.0, 0.0, 1.0]))
    assert three.kind == "v-basin" and three.margin <= 0.2
    assert classify(([-1.0, 0.0, 1.0], [0.0, 1.0, 2.0])).kind == "v-side"
    x5 = np.linspace(-1, 1, 5)
    assert classify((x5, (x5**2 - 0.25) ** 2)).kind == "w-peak"
    for x, f in (([-1.0, 1.0], [0.0, 1.0]), ([0.0], [0.0])):
        shape = classify((x, f))
        assert (shape.kind, shape.margin) == ("other", 0.0)


def test_walls_decades_above_a_shallow_w_basin() -> None:
    """A w-basin one unit deep near 0 inside walls 1e4 high: found on the log scale."""
    x = np.linspace(-1.0, 1.0, 201)
    b = 0.1
    f = (((x - b) ** 2 - b**2) / b**2) ** 2  # minima at 0 and 0.2, barrier 1 at 0.1
    assert f.max() > 1e4
    for g in (f, f + 1e-2 * np.random.default_rng(0).standard_normal(len(x))):
        shape = classify((x, g))
        assert (shape.kind, shape.scale, shape.position) == ("w-basin", "log", "minimum")
        assert_located(shape.minima, [0.0, 0.2], 0.01)
        assert_located(shape.maxima, [0.1], 0.01)
        assert "log scale" in str(shape)
    # noise swamping the basin: the linear scale's V is all there is to see
    assert classify((x, f + 30 * np.random.default_rng(1).standard_normal(len(x)))).kind == (
        "v-basin")
    # an ordinary noisy quadratic stays on the linear scale
    assert classify((X41, noisy(X41**2, 3))).scale == "linear"


def test_parameters_change_the_answer() -> None:
    f = X41**2 + 0.15 * (1 - np.cos(2 * np.pi * X41 / 0.6))  # shallow side dips
    assert classify((X41, f)).kind == "v-basin"
    assert classify((X41, f)).margin < 0.3  # the dips are just below the threshold
    assert classify((X41, f), prominence=0.01).kind == "vvv-basin"
    assert classify((X41, f), prominence=0.2).margin == pytest.approx(1.0)
    wiggly = X41**2 + 0.05 * np.cos(2 * np.pi * X41 / 0.2)  # a wiggle of 4 grid steps
    assert classify((X41, wiggly), smoothing=0, prominence=0.02).kind == "w-peak"
    assert classify((X41, wiggly), smoothing=2).kind == "v-basin"


def surface(z: np.ndarray, x: np.ndarray = X41, y: np.ndarray = X41) -> lw.Surface:
    return lw.Surface(x=x, y=y, values={"loss": z, "accuracy": -z})


def test_curve_and_surface_lines() -> None:
    A, B = np.meshgrid(X41, X41)
    surf = surface((A**2 - 0.25) ** 2 + (B - 0.2) ** 2)
    assert classify(surf, along="x", at=0.2).kind == "w-peak"  # the row β = 0.2
    assert classify(surf, along="y").kind == "v-basin"  # the column α = 0
    assert classify(surf, along="y", at=0.5).kind == "v-basin"
    assert classify(surf, along="y", metric="accuracy").kind == "other"  # upside down: a hill
    c = lw.Curve(x=TOWARDS, values={"train/loss": double_well(TOWARDS)})
    assert classify(c, metric="train/loss").kind == "w-basin"


def test_bad_input_is_named() -> None:
    c = lw.Curve(x=X41, values={"train/loss": X41**2})
    with pytest.raises(ValueError, match="metric='train/loss'"):
        classify(c)
    with pytest.raises(ValueError, match="along='x'"):
        classify(surface(np.zeros((41, 41))))
    with pytest.raises(ValueError, match="Surface only"):
        classify(c, metric="train/loss", along="x")
    with pytest.raises(ValueError, match="at=3"):
        classify(surface(np.zeros((41, 41))), along="x", at=3)
    with pytest.raises(ValueError, match=r"prominence=1\.5"):
        classify((X41, X41**2), prominence=1.5)
    with pytest.raises(ValueError, match="smoothing=-1"):
        classify((X41, X41**2), smoothing=-1)
    with pytest.raises(ValueError, match="center=2"):
        classify((X41, X41**2), center=2)
    with pytest.raises(ValueError, match="strictly increasing"):
        classify((X41[::-1], X41**2))
    with pytest.raises(ValueError, match="1D arrays"):
        classify((X41, X41[:-1]))
    with pytest.raises(TypeError, match="Curve, a Surface or a pair"):
        classify(X41)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="takes a Surface"):
        classify_surface((X41, X41**2))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"model \(0, 0\) lies outside"):
        classify_surface(surface(np.zeros((41, 41)), x=X41 + 2))


def test_same_inputs_same_answer() -> None:
    f = noisy(kinked(lambda a: (a**2 - 0.25) ** 2, X41), 5)
    assert classify((X41, f)) == classify((X41, f.copy()))
    A, B = np.meshgrid(X41, X41)
    z = noisy((A**2 + B**2 - 0.25) ** 2, 6)
    assert classify_surface(surface(z)) == classify_surface(surface(z.copy()))


# ------------------------------------------------------------------------------- surfaces
A41, B41 = np.meshgrid(X41, X41)  # α along columns, β along rows
R2 = A41**2 + B41**2
SURFACES: list[tuple[str, np.ndarray, str | None]] = [  # kind, Z, the critical point at (0, 0)
    ("basin", R2, "min"),
    ("basin", A41**2 + 0.3 * B41**2 + 0.2 * A41 * B41, "min"),
    ("basin", np.abs(A41) + np.abs(B41), "min"),  # kinks
    ("saddle", A41**2 - B41**2, "saddle"),
    ("saddle", (B41**2 - 0.25) ** 2 + 0.3 * A41**2, "saddle"),  # v-basin × w-peak
    ("saddle", A41 * B41, "saddle"),
    ("wine-bottle", (R2 - 0.25) ** 2, "max"),
    ("wine-bottle", (A41**2 - 0.25) ** 2 + (B41**2 - 0.25) ** 2, "max"),  # w-peak × w-peak
    ("wine-bottle", np.abs(np.sqrt(R2) - 0.4), "max"),  # a cone in a V-shaped ring
    ("valley", A41**2 + 0 * B41, None),
    ("valley", (A41 - B41) ** 2 / 2, None),  # a rotated trough
    ("valley", A41**2 + 0.02 * B41, None),  # a gently tilted one
    ("other", A41 + B41, None),  # a slope
    ("other", -R2, "max"),  # a hill
    ("other", (R2 - 0.25) ** 2 + A41, None),  # a tilted wine bottle: the model on its side
]


@pytest.mark.parametrize("noise", [False, True])
@pytest.mark.parametrize(("kind", "z", "at_model"), SURFACES,
                         ids=[f"{s[0]}-{i}" for i, s in enumerate(SURFACES)])
def test_analytic_surfaces(kind, z, at_model, noise) -> None:
    # 1 % of the range over the disc the profiles see (the corners of a square rise higher)
    rng = np.random.default_rng(7)
    shape = classify_surface(surface(
        z + 0.01 * np.ptp(z[R2 <= 1]) * rng.standard_normal(z.shape) if noise else z))
    assert shape.kind == kind, str(shape)
    assert 0.0 < shape.margin <= 1.0 and shape.metric == "loss"
    dist = [np.hypot(c.alpha, c.beta) for c in shape.critical]
    assert dist == sorted(dist)
    if at_model is not None:
        first = shape.critical[0]
        assert first.kind == at_model and dist[0] <= 0.1, str(shape)
        signs = {"min": (1, 1), "max": (-1, -1), "saddle": (-1, 1)}[at_model]
        assert tuple(np.sign(first.eigenvalues)) == signs


def test_surface_critical_points_located() -> None:
    shape = classify_surface(surface((B41**2 - 0.25) ** 2 + 0.3 * A41**2))
    saddle, *minima = shape.critical
    assert saddle.kind == "saddle" and abs(saddle.alpha) < 0.01 and abs(saddle.beta) < 0.01
    assert [m.kind for m in minima] == ["min", "min"]
    assert sorted(round(m.beta, 1) for m in minima) == [-0.5, 0.5]
    assert all(abs(m.alpha) < 0.01 and abs(abs(m.beta) - 0.5) < 0.025 for m in minima)
    assert saddle.loss == pytest.approx(0.0625)
    lo, hi = saddle.eigenvalues  # ∂²/∂β² = −1 (−0.84 smoothed), ∂²/∂α² = 0.6
    assert lo == pytest.approx(-1.0, abs=0.25) and hi == pytest.approx(0.6, abs=0.05)
    assert "saddle at (0.00, 0.00)" in str(shape)
    assert set(SURFACE_KINDS) == {"basin", "saddle", "wine-bottle", "valley", "other"}


def test_shallow_barrier_across_a_steep_basin_is_a_saddle() -> None:
    """v-basin × a w-peak whose range is 9 % of the v-basin's: read at its own scale."""
    z = A41**2 + 0.16 * (B41**2 - 0.25) ** 2  # barrier 0.01 at β = 0, walls 0.09
    rng = np.random.default_rng(8)
    for level in (0.0, 1e-3):
        shape = classify_surface(surface(z + level * rng.standard_normal(z.shape)))
        assert shape.kind == "saddle" and shape.critical[0].kind == "saddle", str(shape)
    # noise as large as the barrier: the shallow direction is flat, a valley
    assert classify_surface(surface(z + 1e-2 * rng.standard_normal(z.shape))).kind == "valley"


def test_surface_edge_cases() -> None:
    flat = classify_surface(surface(np.full((41, 41), 1.5)))
    assert (flat.kind, flat.critical) == ("other", ())
    tiny = classify_surface(surface(np.zeros((2, 2)), x=np.array([-1.0, 1.0]),
                                    y=np.array([-1.0, 1.0])))
    assert (tiny.kind, tiny.margin) == ("other", 0.0)
    walls = R2.copy()
    walls[R2 > 0.9] = np.inf
    walls[0, :] = np.nan
    assert classify_surface(surface(walls)).kind == "basin"
    assert classify_surface(surface(-R2), metric="accuracy").kind == "basin"
    offset = classify_surface(surface(R2, x=np.linspace(0, 2, 41)))  # the model on an edge
    assert (offset.kind, offset.margin) == ("other", 0.0)


# ------------------------------------------------------------------------------- a network
def test_random_directions_of_a_trained_network_are_v_basins(trained_mlp, digits_small) -> None:
    """Li et al.'s filter-normalized Gaussian directions: ≥ 90 % v-basin (measured on this MLP:
    100 of 100 seeds at spans 0.5, 1 and 2)."""
    snap = snapshot(trained_mlp)
    land = lw.Landscape(trained_mlp, digits_small)
    shapes = [classify(land.line(lw.directions.random(trained_mlp, seed=s), span=1, n=41,
                                 progress=False)) for s in range(32)]
    kinds = Counter(s.kind for s in shapes)
    assert kinds["v-basin"] >= 0.9 * len(shapes), kinds
    assert all(isinstance(s, CurveShape) and s.scale == "linear" for s in shapes)
    assert_unchanged(trained_mlp, snap)


def test_curvature_and_gradient_directions_of_a_trained_network(trained_mlp,
                                                                digits_small) -> None:
    """Along the most negative curvature the model sits on a barrier (w-peak, Xu et al.);
    along the gradient, close enough, on a wall (v-side)."""
    land = lw.Landscape(trained_mlp, digits_small)
    eig = land.hessian.eigen(k=1, which="bottom", progress=False)
    assert eig.values[0] < 0
    assert classify(land.line(eig.vectors[0], span=1, n=41, progress=False)).kind == "w-peak"
    model = copy.deepcopy(trained_mlp)
    X, y = digits_small
    F.cross_entropy(model(X), y).backward()
    grad = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    norm = torch.sqrt(sum((g**2).sum() for g in grad.values()))
    d = lw.Direction({n: -g / norm for n, g in grad.items()})
    curve = land.line(d, span=0.01, n=41, progress=False)
    shape = classify(curve)
    assert (shape.kind, shape.position) == ("v-side", "wall")
    assert curve["loss"][-1] < curve["loss"][20] < curve["loss"][0]
    # planes: two random directions give a basin; λmin × a random direction a saddle
    r0, r1 = (lw.directions.random(trained_mlp, seed=s) for s in (0, 1))
    assert classify_surface(land.plane(r0, r1, span=1, n=25, progress=False)).kind == "basin"
    plane = land.plane(eig.vectors[0], r1, span=1, n=25, progress=False)
    assert classify_surface(plane).kind == "saddle"
