"""Landscape: a model, data and a loss; lines, planes and progressive streams of tiles."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..curvature import (
    CURVATURE_METRICS,
    Hessian,
    ParamSelection,
    curvature_values,
    select_params,
)
from ..directions.direction import Direction
from ..results.records import Curve, Surface
from .data import as_batches
from .evaluate import DEFAULT_MEMORY_BUDGET, BoundEvaluator, Evaluator, LossFn
from .jobs import JobEstimate, over_limit, refusal
from .params import ParamSpace
from .progressive import collect, progressive
from .sampling import Grid, Tile


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
        strategy: ``"auto"`` (fixed rules), ``"loop"`` or ``"vmap"``.
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
        self.loss_name = getattr(loss, "__name__", type(loss).__name__)
        self._hessian: Hessian | None = None
        self._bound: OrderedDict[tuple[int, ...], tuple[list[Direction], BoundEvaluator]] = (
            OrderedDict()
        )

    # ----------------------------------------------------------------- basics
    @property
    def metric_names(self) -> tuple[str, ...]:
        """The values computed at every point, "loss" first."""
        return self.evaluator.names

    @property
    def n_samples(self) -> int:
        """Samples in the evaluation data."""
        return self.evaluator.n_samples

    def _bind(self, dirs: Sequence[Direction]) -> BoundEvaluator:
        key = tuple(id(d) for d in dirs)
        if key in self._bound:
            self._bound.move_to_end(key)
            return self._bound[key][1]
        bound = self.evaluator.bind(dirs)
        self._bound[key] = (list(dirs), bound)  # the list keeps the ids alive and unique
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
            "evaluation": dict(self.evaluator.chosen),
            **extra,
        }

    # ----------------------------------------------------------------- job size
    def estimate(self, points: int, metrics: int | None = None) -> JobEstimate:
        """Time and memory of evaluating `points` grid points (see `JobEstimate`).

        The time uses the speed measured by earlier evaluations; before any, the model is
        evaluated once at θ₀ to measure it.
        """
        if self.evaluator.points_per_second is None:
            self.center()
        m = len(self.metric_names) if metrics is None else metrics
        return JobEstimate.of(points, m, self.evaluator.points_per_second or 1.0)

    def check_job(
        self,
        points: int,
        *,
        max_points: int | None = None,
        force: bool = False,
        metrics: int | None = None,
    ) -> None:
        """Raise `JobTooLarge`, stating the estimate, for a grid of more than `max_points`
        points (default one million) unless `force`. Decided on the point count alone."""
        limit = over_limit(points, max_points, force)
        if limit is not None:
            raise refusal(self.estimate(points, metrics), limit)

    # ----------------------------------------------------------------- streams
    def stream(
        self,
        d1: Direction,
        d2: Direction | None = None,
        *,
        span: float | Sequence = 1.0,
        n: int | Sequence[int] = 41,
        grid: Grid | None = None,
        adaptive: bool = False,
        tol: float = 0.01,
        tile_size: int | None = None,
        max_points: int | None = None,
        force: bool = False,
    ) -> Iterator[Tile]:
        """Tiles of a line (``d2=None``) or plane, coarse levels first; stop whenever you like.

        Each tile holds the grid indices of its points and their metric values. With
        ``adaptive=True`` finer levels evaluate only where interpolation from the coarser level
        is expected to miss by more than ``tol`` × the value range; the other points arrive in
        tiles with ``exact=False`` holding interpolated values. A `grid` (`lw.Grid`) replaces
        `span` and `n`.

        `tile_size` only groups points for delivery: every point's value is the same whatever
        the tile size, and the default is a pure function of the model, data and plan. Grids
        over `max_points` are refused (see `check_job`).
        """
        dirs, grid = self._grid(d1, d2, span, n, grid)
        self.check_job(grid.size, max_points=max_points, force=force)
        return self._stream(grid, dirs, adaptive=adaptive, tol=tol, tile_size=tile_size)

    @staticmethod
    def _grid(
        d1: Direction, d2: Direction | None, span: Any, n: Any, grid: Grid | None = None
    ) -> tuple[list[Direction], Grid]:
        dirs = [d1] if d2 is None else [d1, d2]
        if grid is None:
            return dirs, Grid.line(span, n) if d2 is None else Grid.plane(span, n)
        if not isinstance(grid, Grid) or grid.k != len(dirs):
            raise TypeError(f"grid must be an lw.Grid with k={len(dirs)} for "
                            f"{len(dirs)} direction(s), got {grid!r}")
        return dirs, grid

    def _stream(
        self, grid: Grid, dirs: list[Direction], *, adaptive: bool, tol: float,
        tile_size: int | None,
    ) -> Iterator[Tile]:
        if tile_size is not None and (
            isinstance(tile_size, bool) or not isinstance(tile_size, (int, np.integer))
            or tile_size < 1
        ):
            raise ValueError(f"tile_size must be a positive int (points per tile), got "
                             f"{tile_size!r}")
        bound = self._bind(dirs)
        return progressive(
            grid, bound.evaluate, self.metric_names, adaptive=adaptive, tol=tol,
            tile_size=bound.tile_size if tile_size is None else int(tile_size),
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
        max_points: int | None = None,
        force: bool = False,
    ) -> Curve:
        """f(α) = L(θ + α·d) at `n` points of `span` (a number s means (−s, s))."""
        dirs, grid = self._grid(d, None, span, n)
        self.check_job(grid.size, max_points=max_points, force=force)
        vals, _ = self._collect(grid, dirs, adaptive, tol)
        return Curve(
            x=grid.x,
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
        max_points: int | None = None,
        force: bool = False,
    ) -> Surface:
        """f(α, β) = L(θ + α·d₁ + β·d₂) on an n×n grid; ``Z[i, j]`` is at ``(x[j], y[i])``.

        `span`: a number s (both axes (−s, s)), a pair (lo, hi), or ((xlo, xhi), (ylo, yhi)).
        `n`: points per axis (an int, or (nx, ny)). With an odd n and a symmetric span the
        centre point is exactly the model. ``adaptive=True`` evaluates only where needed
        (see `stream`) and records which points were evaluated in ``surface.evaluated``.
        Grids over `max_points` points are refused with an estimate (see `check_job`).
        The result is bit-identical for the same inputs and settings, whatever the machine
        load, and equal to what `stream` yields.
        """
        dirs, grid = self._grid(d1, d2, span, n)
        self.check_job(grid.size, max_points=max_points, force=force)
        vals, evaluated = self._collect(grid, dirs, adaptive, tol)
        return self.surface(grid, (d1, d2), vals, evaluated, adaptive=adaptive,
                            tol=tol if adaptive else None, evaluations=int(evaluated.sum()))

    def surface(
        self,
        grid: Grid,
        dirs: Sequence[Direction],
        values: Mapping[str, np.ndarray],
        evaluated: np.ndarray | None = None,
        **meta: Any,
    ) -> Surface:
        """The `Surface` record of values computed on `grid` along `dirs` (with `meta`)."""
        return Surface(x=grid.x, y=grid.y, values=values, evaluated=evaluated,
                       directions=tuple(d.provenance for d in dirs),
                       meta=self.describe(**meta))

    def _collect(
        self, grid: Grid, dirs: list[Direction], adaptive: bool, tol: float
    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        tiles = self._stream(grid, dirs, adaptive=adaptive, tol=tol, tile_size=None)
        return collect(tiles, self.metric_names, grid.shape)

    # ----------------------------------------------------------------- curvature
    def _curvature_params(self, params: ParamSelection) -> list[str]:
        """The names H is taken over; None and "biasbn" start from those requiring grad now."""
        trainable = [n for n, p in self.model.named_parameters() if p.requires_grad]
        return select_params(self.space, params, trainable)

    @property
    def hessian(self) -> Hessian:
        """Eigenpairs, trace and spectral density of H over the trainable parameters."""
        if self._hessian is None:
            self._hessian = Hessian(self.evaluator, self._curvature_params(None))
        return self._hessian

    def hessian_over(self, params: ParamSelection) -> Hessian:
        """H restricted to some parameters: ``"biasbn"`` (no biases/BN, as Li et al.), a list
        of names, or a Direction (the tensors it moves)."""
        return Hessian(self.evaluator, self._curvature_params(params))

    def curvature_stream(
        self,
        d1: Direction,
        d2: Direction,
        *,
        span: float | Sequence = 1.0,
        n: int | Sequence[int] = 11,
        params: ParamSelection = None,
        tol: float = 1e-6,
        max_points: int | None = None,
        force: bool = False,
    ) -> Iterator[Tile]:
        """Tiles of λmax, λmin, |λmin/λmax| and λmin/λmax over a plane, coarse first."""
        dirs, grid = self._grid(d1, d2, span, n)
        self.check_job(grid.size, max_points=max_points, force=force,
                       metrics=len(CURVATURE_METRICS))
        names = self._curvature_params(params)
        return progressive(
            grid, lambda c: curvature_values(self.evaluator, names, dirs, c, tol),
            CURVATURE_METRICS, adaptive=False, tol=0.01, tile_size=1,
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
        max_points: int | None = None,
        force: bool = False,
    ) -> Surface:
        """|λmin/λmax| of H at each point of a plane (Li et al. 2018, Fig. 7), as a Surface
        with "ratio", "signed_ratio", "lambda_max" and "lambda_min". Near 0: locally convex;
        large: strong negative curvature."""
        tiles = self.curvature_stream(d1, d2, span=span, n=n, params=params, tol=tol,
                                      max_points=max_points, force=force)
        grid = Grid.plane(span, n)
        vals, _ = collect(tiles, CURVATURE_METRICS, grid.shape)
        return self.surface(grid, (d1, d2), vals, kind="curvature", tol=tol)
