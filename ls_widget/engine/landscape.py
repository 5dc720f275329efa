"""Landscape: a model, data and a loss; lines, planes and progressive streams of tiles."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..directions.direction import Direction
from ..results.records import Curve, Surface
from .batch import keywords_of
from .data import as_batches
from .evaluate import DEFAULT_MEMORY_BUDGET, BoundEvaluator, Evaluator, LossFn
from .evaluate.outputs import OutputPick
from .jobs import JobSizing
from .landscape_curvature import CurvatureMixin
from .layout import Layout
from .params import ParamSpace
from .progressive import collect, progressive
from .sampling import Grid, Tile


class _Bindings:
    """The last few bindings, by the directions' identities, so that calibration and the
    first-layer precomputation are paid once per pair of directions."""

    def __init__(self, evaluator: Evaluator, size: int = 4) -> None:
        self._evaluator, self._size = evaluator, size
        # The list keeps the directions alive, so their ids stay unique while cached.
        self._cache: OrderedDict[tuple[int, ...], tuple[list, BoundEvaluator]] = OrderedDict()

    def find(self, dirs: Sequence[Direction]) -> BoundEvaluator | None:
        """The binding of `dirs` if cached."""
        hit = self._cache.get(tuple(id(d) for d in dirs))
        return None if hit is None else hit[1]

    def get(self, dirs: Sequence[Direction]) -> BoundEvaluator:
        """The binding of `dirs`, cached or made."""
        key = tuple(id(d) for d in dirs)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key][1]
        bound = self._evaluator.bind(dirs)
        self._cache[key] = (list(dirs), bound)
        while len(self._cache) > self._size:
            self._cache.popitem(last=False)
        return bound

    def clear(self) -> None:
        """Forget every binding."""
        self._cache.clear()


class Landscape(JobSizing, CurvatureMixin):
    """The loss landscape of `model` on `data`: evaluate it along lines and planes.

    Args:
        model: a trained ``torch.nn.Module``. Never modified: we evaluate a private copy in
            eval mode (BatchNorm running statistics, no dropout) on the model's device and dtype.
        data: ``(X, y)`` tensors or NumPy arrays (X may be a tuple or a dict), a
            ``Dataset``, a ``DataLoader`` or any iterable of ``(x, y)`` pairs or dicts (a dict
            batch calls ``model(**batch)`` without its target key; see `Layout`). Read once and
            kept on the device in a fixed order.
        loss: ``loss(output, target)`` → batch mean. None: the output's own loss where it
            has one (dict batches then pass the target to the model), else cross-entropy.
        metrics: more ``name → fn(output, target)`` batch means, e.g.
            ``{"accuracy": lw.metrics.accuracy}``; sample-weighted means over all data.
        inputs, target: ``fn(batch)`` for other layouts, or the target's key in dict batches.
        output: which tensor of a dict/ModelOutput/namedtuple output the loss sees (a key,
            an attribute or ``fn(output)``; default ``logits``), upcast from float16/bfloat16.
        batch_size: split ``(X, y)`` or a ``Dataset`` into batches of this size.
        memory_budget: bytes for precomputed activations and vectorized chunks.
        strategy: ``"auto"`` (fixed rules), ``"loop"`` or ``"vmap"``.

    Job sizes (`estimate`, `check_job`) come from `JobSizing`; curvature (``land.hessian``,
    ``curvature_map``, ...) from `CurvatureMixin`.
    """

    def __init__(
        self,
        model: nn.Module,
        data: Any,
        loss: LossFn | None = None,
        metrics: Mapping[str, LossFn] | None = None,
        *,
        inputs: Callable[[Any], Any] | None = None,
        target: str | Callable[[Any], Any] | None = None,
        output: OutputPick = None,
        batch_size: int | None = None,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
        strategy: str = "auto",
    ) -> None:
        self.model = model
        self.space = ParamSpace(model)
        layout = Layout(inputs, target, pass_target=loss is None, takes=keywords_of(model))
        batches = as_batches(data, device=self.space.device, dtype=self.space.dtype,
                             batch_size=batch_size, layout=layout)
        self.evaluator = Evaluator(
            model, self.space, batches, loss, metrics,
            memory_budget=memory_budget, strategy=strategy, output=output,
        )
        default = "model loss" if any(b.kw for b in batches) else "cross_entropy"
        self.loss_name = default if loss is None else getattr(loss, "__name__", repr(loss))
        self._bound = _Bindings(self.evaluator)

    @property
    def metric_names(self) -> tuple[str, ...]:
        """The values computed at every point, "loss" first."""
        return self.evaluator.names

    @property
    def points_per_second(self) -> float | None:
        """The evaluation speed measured so far (it feeds estimates, never the schedule)."""
        return self.evaluator.points_per_second

    @property
    def n_samples(self) -> int:
        """Samples in the evaluation data."""
        return self.evaluator.n_samples

    def _bind(self, dirs: Sequence[Direction]) -> BoundEvaluator:
        return self._bound.get(dirs)

    def center(self) -> dict[str, float]:
        """Loss and metrics of the model itself (θ₀)."""
        zero = Direction({n: torch.zeros_like(t) for n, t in self.space.theta0.items()})
        vals = self.evaluator.bind([zero]).evaluate([[0.0]])[0]
        return dict(zip(self.metric_names, map(float, vals), strict=True))

    def evaluate(
        self, directions: Sequence[Direction], coeffs: np.ndarray | Sequence[Sequence[float]]
    ) -> dict[str, np.ndarray]:
        """Metrics at θ₀ + Σₖ coeffs[p, k]·directions[k] for arbitrary points p."""
        vals = self._bind(list(directions)).evaluate(coeffs)
        return {n: vals[:, i] for i, n in enumerate(self.metric_names)}

    def describe(self, dirs: Sequence[Direction] = (), **extra: Any) -> dict[str, Any]:
        """A result's `meta`: loss, metrics, data, model, dtype, device, the plan of `dirs`."""
        bound = self._bound.find(dirs)
        return {
            "loss": self.loss_name,
            "metrics": list(self.metric_names),
            "n_samples": self.n_samples,
            "n_params": self.space.numel,
            "model": type(self.model).__name__,
            "dtype": str(self.space.dtype).replace("torch.", ""),
            "device": str(self.space.device),
            "evaluation": bound.chosen if bound is not None else {},
            **extra,
        }

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

        Each tile holds its points' grid indices and metric values. ``adaptive=True`` evaluates
        finer levels only where interpolating the coarser one misses by more than ``tol`` × the
        value range; the rest arrive interpolated (``exact=False``). A `grid` replaces `span`
        and `n`. `tile_size` only groups points for delivery: no value depends on it.
        """
        dirs = [d1] if d2 is None else [d1, d2]
        grid = Grid.of(len(dirs), span, n, grid)
        self.check_job(grid.size, max_points=max_points, force=force)
        return self._stream(grid, dirs, adaptive=adaptive, tol=tol, tile_size=tile_size)

    def _stream(
        self, grid: Grid, dirs: list[Direction], *, adaptive: bool, tol: float,
        tile_size: int | None,
    ) -> Iterator[Tile]:
        bound = self._bind(dirs)
        return progressive(
            grid, bound.evaluate, self.metric_names, adaptive=adaptive, tol=tol,
            tile_size=bound.tile_size if tile_size is None else tile_size,
        )

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
        dirs, grid = [d], Grid.line(span, n)
        vals, _ = self._collect(grid, dirs, adaptive, tol, max_points, force)
        return Curve(
            x=grid.x,
            values={m: v[0] for m, v in vals.items()},
            directions=(d.provenance,),
            meta=self.describe(dirs, adaptive=adaptive),
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

        `span`: a number s (both axes (−s, s)), a pair (lo, hi), or ((xlo, xhi), (ylo, yhi));
        `n`: an int or (nx, ny). An odd n on a symmetric span puts the model at the centre.
        ``adaptive=True``: see `stream`; ``surface.evaluated`` marks the evaluated points.
        Grids over `max_points` are refused (`check_job`). Same inputs, same bits as `stream`.
        """
        dirs, grid = [d1, d2], Grid.plane(span, n)
        vals, evaluated = self._collect(grid, dirs, adaptive, tol, max_points, force)
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
                       meta=self.describe(dirs, **meta))

    def _collect(
        self, grid: Grid, dirs: list[Direction], adaptive: bool, tol: float,
        max_points: int | None, force: bool,
    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        self.check_job(grid.size, max_points=max_points, force=force)
        tiles = self._stream(grid, dirs, adaptive=adaptive, tol=tol, tile_size=None)
        return collect(tiles, self.metric_names, grid.shape)
