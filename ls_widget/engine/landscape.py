"""Landscape: a model, data and a loss; lines, planes and progressive streams of tiles."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .curvature import (
    CURVATURE_METRICS,
    Hessian,
    ParamSelection,
    curvature_values,
    select_params,
)
from .data import as_batches
from .directions import Direction
from .evaluate import DEFAULT_MEMORY_BUDGET, BoundEvaluator, Evaluator, LossFn
from .params import ParamSpace
from .results import Curve, Surface
from .sampling import (
    Tile,
    axis,
    chunks,
    grid_strides,
    interpolate,
    level_grid,
    parse_n,
    parse_plane_span,
    parse_span,
    progressive_order,
)

# Halving the grid spacing shrinks interpolation error at least 4× (linear) and 16× (cubic) on
# smooth surfaces; we assume only 4× when predicting where the next level needs evaluating.
_ADAPTIVE_DECAY = 0.25
_TILE_SECONDS = 0.2  # a tile is about this much work, so consumers can stop between tiles


def _name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__name__", type(fn).__name__)


class Landscape:
    """The loss landscape of `model` on `data`: evaluate it along lines and planes.

    Args:
        model: a trained ``torch.nn.Module``. Never modified: we evaluate a private copy in
            eval mode (BatchNorm running statistics, no dropout) on the model's device and dtype.
        data: a tuple ``(X, y)`` of tensors, a torch ``Dataset``, a ``DataLoader``, or any
            iterable of ``(x, y)`` batches. Read once and kept (on the device) in a fixed order.
        loss: ``loss(output, target)`` returning the batch mean (default cross-entropy).
        metrics: more ``name → fn(output, target)`` batch means, e.g.
            ``{"accuracy": lw.metrics.accuracy}``. Values are sample-weighted means over all data.
        batch_size: split ``(X, y)`` or a ``Dataset`` into batches of this size.
        memory_budget: bytes for precomputed activations and vectorized chunks.
        strategy: ``"auto"`` (calibrate), ``"loop"`` or ``"vmap"``.
    """

    def __init__(
        self,
        model: nn.Module,
        data: Any,
        loss: LossFn = F.cross_entropy,
        metrics: Mapping[str, LossFn] | None = None,
        *,
        batch_size: int | None = None,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
        strategy: str = "auto",
    ) -> None:
        self.model = model
        self.space = ParamSpace(model)
        batches = as_batches(
            data, device=self.space.device, dtype=self.space.dtype, batch_size=batch_size
        )
        self.evaluator = Evaluator(
            model, self.space, batches, loss, metrics,
            memory_budget=memory_budget, strategy=strategy,
        )
        self.loss_name = _name(loss)
        self._hessian: Hessian | None = None
        self._bound: OrderedDict[tuple[int, ...], tuple[list[Direction], BoundEvaluator]] = (
            OrderedDict()
        )

    # ----------------------------------------------------------------- basics
    @property
    def metric_names(self) -> tuple[str, ...]:
        return self.evaluator.names

    @property
    def n_samples(self) -> int:
        return self.evaluator.n_samples

    def _bind(self, dirs: Sequence[Direction]) -> BoundEvaluator:
        key = tuple(id(d) for d in dirs)
        if key in self._bound:
            self._bound.move_to_end(key)
            return self._bound[key][1]
        bound = self.evaluator.bind(dirs)
        self._bound[key] = (list(dirs), bound)
        while len(self._bound) > 4:
            self._bound.popitem(last=False)
        return bound

    def center(self) -> dict[str, float]:
        """Loss and metrics of the model itself (θ₀)."""
        zero = Direction(
            {n: torch.zeros_like(t) for n, t in self.space.theta0.items()}, kind="zero"
        )
        vals = self.evaluator.bind([zero]).evaluate([[0.0]])[0]
        return dict(zip(self.metric_names, map(float, vals), strict=True))

    def evaluate(
        self, directions: Sequence[Direction], coeffs: np.ndarray | Sequence[Sequence[float]]
    ) -> dict[str, np.ndarray]:
        """Metrics at θ₀ + Σₖ coeffs[p, k]·directions[k] for arbitrary points p."""
        vals = self._bind(list(directions)).evaluate(coeffs)
        return {n: vals[:, i] for i, n in enumerate(self.metric_names)}

    def describe(self, **extra: Any) -> dict[str, Any]:
        """What a result's `meta` records: loss, metrics, data size, model, dtype, device and
        how points were evaluated, plus `extra`."""
        return {
            "loss": self.loss_name,
            "metrics": list(self.metric_names),
            "n_samples": self.n_samples,
            "n_params": self.space.numel,
            "model": type(self.model).__name__,
            "dtype": str(self.space.dtype).replace("torch.", ""),
            "device": str(self.space.device),
            "evaluation": {
                k: v for k, v in self.evaluator.chosen.items() if k != "seconds_per_point"
            },
            **extra,
        }

    def _tile_size(self, fixed: int | None) -> int:
        if fixed is not None:
            return max(1, int(fixed))
        pps = self.evaluator.points_per_second or 50.0
        return int(np.clip(pps * _TILE_SECONDS, 1, 512))

    # ----------------------------------------------------------------- streams
    def stream(
        self,
        d1: Direction,
        d2: Direction | None = None,
        *,
        span: float | Sequence = 1.0,
        n: int | Sequence[int] = 41,
        adaptive: bool = False,
        tol: float = 0.01,
        tile_size: int | None = None,
    ) -> Iterator[Tile]:
        """Tiles of a line (``d2=None``) or plane, coarse levels first; stop whenever you like.

        Each tile holds the grid indices of its points and their metric values. With
        ``adaptive=True`` finer levels evaluate only where interpolation from the coarser level
        is expected to miss by more than ``tol`` × the value range; the other points arrive in
        tiles with ``exact=False`` holding interpolated values.
        """
        xs, ys, dirs = self._grid(d1, d2, span, n)
        return self._stream(xs, ys, dirs, adaptive=adaptive, tol=tol, tile_size=tile_size)

    def _grid(
        self, d1: Direction, d2: Direction | None, span: Any, n: Any
    ) -> tuple[np.ndarray, np.ndarray, list[Direction]]:
        if d2 is None:
            (nx,) = parse_n(n, 1)
            return axis(parse_span(span), nx), np.zeros(1), [d1]
        (sx, sy), (nx, ny) = parse_plane_span(span), parse_n(n, 2)
        return axis(sx, nx), axis(sy, ny), [d1, d2]

    def _stream(
        self,
        xs: np.ndarray,
        ys: np.ndarray,
        dirs: list[Direction],
        *,
        adaptive: bool,
        tol: float,
        tile_size: int | None,
    ) -> Iterator[Tile]:
        bound = self._bind(dirs)
        return progressive(
            xs, ys, len(dirs), bound.evaluate, self.metric_names,
            adaptive=adaptive, tol=tol, tile_size=lambda: self._tile_size(tile_size),
        )

    # ----------------------------------------------------------------- curvature
    @property
    def hessian(self) -> Hessian:
        """Eigenpairs, trace and spectral density of H over the trainable parameters."""
        if self._hessian is None:
            self._hessian = Hessian(self)
        return self._hessian

    def hessian_over(self, params: ParamSelection) -> Hessian:
        """H restricted to some parameters: ``"biasbn"`` (no biases/BN, as Li et al.), a list
        of names, or a Direction (the tensors it moves)."""
        return Hessian(self, params)

    def curvature_stream(
        self,
        d1: Direction,
        d2: Direction,
        *,
        span: float | Sequence = 1.0,
        n: int | Sequence[int] = 11,
        params: ParamSelection = None,
        tol: float = 1e-6,
    ) -> Iterator[Tile]:
        """Tiles of λmax, λmin, |λmin/λmax| and λmin/λmax over a plane, coarse first."""
        xs, ys, dirs = self._grid(d1, d2, span, n)
        names = select_params(self, params)
        return progressive(
            xs, ys, 2, lambda c: curvature_values(self, names, dirs, c, tol),
            CURVATURE_METRICS, adaptive=False, tol=0.01, tile_size=lambda: 1,
        )

    def curvature_map(
        self,
        d1: Direction,
        d2: Direction,
        *,
        span: float | Sequence = 1.0,
        n: int | Sequence[int] = 11,
        params: ParamSelection = None,
        tol: float = 1e-6,
    ) -> Surface:
        """|λmin/λmax| of H at each point of a plane (Li et al. 2018, Fig. 7), as a Surface
        with "ratio", "signed_ratio", "lambda_max" and "lambda_min". Near 0: locally convex;
        large: strong negative curvature."""
        xs, ys, _ = self._grid(d1, d2, span, n)
        tiles = self.curvature_stream(d1, d2, span=span, n=n, params=params, tol=tol)
        vals, _ = collect(tiles, CURVATURE_METRICS, (len(ys), len(xs)))
        return Surface(
            x=xs, y=ys, values=vals, directions=(d1.provenance, d2.provenance),
            meta=self.describe(kind="curvature", tol=tol),
        )

    # ----------------------------------------------------------------- records
    def line(
        self,
        d: Direction,
        *,
        span: float | Sequence[float] = 1.0,
        n: int = 51,
        adaptive: bool = False,
        tol: float = 0.01,
    ) -> Curve:
        """f(α) = L(θ + α·d) at `n` points of `span` (a number s means (−s, s))."""
        xs, ys, dirs = self._grid(d, None, span, n)
        vals, _ = self._collect(xs, ys, dirs, adaptive, tol)
        return Curve(
            x=xs,
            values={m: v[0] for m, v in vals.items()},
            directions=(d.provenance,),
            meta=self.describe(adaptive=adaptive),
        )

    def plane(
        self,
        d1: Direction,
        d2: Direction,
        *,
        span: float | Sequence = 1.0,
        n: int | Sequence[int] = 41,
        adaptive: bool = False,
        tol: float = 0.01,
    ) -> Surface:
        """f(α, β) = L(θ + α·d₁ + β·d₂) on an n×n grid; ``Z[i, j]`` is at ``(x[j], y[i])``.

        `span`: a number s (both axes (−s, s)), a pair (lo, hi), or ((xlo, xhi), (ylo, yhi)).
        `n`: points per axis (an int, or (nx, ny)). With an odd n and a symmetric span the
        centre point is exactly the model. ``adaptive=True`` evaluates only where needed
        (see `stream`) and records which points were evaluated in ``surface.evaluated``.
        """
        xs, ys, dirs = self._grid(d1, d2, span, n)
        vals, evaluated = self._collect(xs, ys, dirs, adaptive, tol)
        return Surface(
            x=xs,
            y=ys,
            values=vals,
            evaluated=evaluated,
            directions=(d1.provenance, d2.provenance),
            meta=self.describe(adaptive=adaptive, tol=tol if adaptive else None,
                            evaluations=int(evaluated.sum())),
        )

    def _collect(
        self, xs: np.ndarray, ys: np.ndarray, dirs: list[Direction], adaptive: bool, tol: float
    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        tiles = self._stream(xs, ys, dirs, adaptive=adaptive, tol=tol, tile_size=None)
        return collect(tiles, self.metric_names, (len(ys), len(xs)))


def progressive(
    xs: np.ndarray,
    ys: np.ndarray,
    k: int,
    evaluate: Callable[[np.ndarray], np.ndarray],
    names: Sequence[str],
    *,
    adaptive: bool,
    tol: float,
    tile_size: Callable[[], int],
) -> Iterator[Tile]:
    """Coarse-to-fine tiles of a grid; `evaluate(coeffs (P, k))` → values (P, len(names)).

    With `adaptive`, finer levels evaluate only where interpolation from the coarser level is
    expected to miss by more than `tol` × the value range; the rest arrive interpolated in
    tiles with ``exact=False``.
    """
    if not (isinstance(tol, (int, float)) and tol > 0):
        raise ValueError(f"tol must be a positive fraction of the value range, got {tol!r}")
    shape = (len(ys), len(xs))
    total = shape[0] * shape[1]
    known = 0
    values = np.full((len(names), *shape), np.nan)
    err = np.zeros(shape)
    evaluated = np.zeros(shape, dtype=bool)

    def run(level: int, rows: np.ndarray, cols: np.ndarray) -> Iterator[Tile]:
        nonlocal known
        for r, c in chunks(rows, cols, tile_size()):
            vals = evaluate(_coeffs(xs, ys, k, r, c))
            values[:, r, c] = vals.T
            evaluated[r, c] = True
            known += len(r)
            yield Tile(level, r, c, {m: vals[:, i] for i, m in enumerate(names)},
                       True, known / total)

    for level, rows, cols in progressive_order(shape):
        if not adaptive or level == 0:
            yield from run(level, rows, cols)
            continue
        gy, gx = level_grid(shape, level - 1)
        pts = (ys[rows], xs[cols])
        pred = np.stack([
            interpolate((ys[gy], xs[gx]), values[i][np.ix_(gy, gx)], pts)
            for i in range(len(names))
        ])
        if level == 1:
            need = np.ones(len(rows), dtype=bool)
        else:
            from scipy.ndimage import maximum_filter

            stride = max(grid_strides(shape)[level - 1])
            est = maximum_filter(err, size=2 * stride + 1, mode="nearest")[rows, cols]
            finite = values[0][evaluated]
            finite = finite[np.isfinite(finite)]
            vrange = float(np.ptp(finite)) if finite.size else 0.0
            need = (est * _ADAPTIVE_DECAY > tol * vrange) | ~np.isfinite(pred[0])
            err[rows[~need], cols[~need]] = est[~need] * _ADAPTIVE_DECAY
        yield from run(level, rows[need], cols[need])
        with np.errstate(invalid="ignore"):  # inf − inf where both are divergent
            miss = np.abs(values[0][rows[need], cols[need]] - pred[0][need])
        err[rows[need], cols[need]] = np.where(np.isfinite(miss), miss, np.inf)
        skip = ~need
        if skip.any():
            r, c = rows[skip], cols[skip]
            values[:, r, c] = pred[:, skip]
            known += int(skip.sum())
            yield Tile(level, r, c, {m: pred[i, skip] for i, m in enumerate(names)},
                       False, known / total)


def collect(
    tiles: Iterable[Tile], names: Sequence[str], shape: tuple[int, int]
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Assemble tiles into one array per metric (NaN where no tile came) and the mask of
    points that were evaluated rather than interpolated."""
    vals = {m: np.full(shape, np.nan) for m in names}
    evaluated = np.zeros(shape, dtype=bool)
    for tile in tiles:
        for m in names:
            vals[m][tile.rows, tile.cols] = tile.values[m]
        evaluated[tile.rows, tile.cols] = tile.exact
    return vals, evaluated


def _coeffs(
    xs: np.ndarray, ys: np.ndarray, k: int, rows: np.ndarray, cols: np.ndarray
) -> np.ndarray:
    if k == 1:
        return xs[cols][:, None]
    return np.stack([xs[cols], ys[rows]], axis=1)

