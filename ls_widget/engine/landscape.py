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
from .data import Layout, as_batches, keywords_of
from .evaluate import DEFAULT_MEMORY_BUDGET, BoundEvaluator, Evaluator, LossFn
from .evaluate.scoring import OutputPick
from .jobs import JobSizing
from .landscape_curvature import CurvatureMixin
from .params import ParamSpace
from .progressive import collect, progressive
from .sampling import Grid, Tile


class Landscape(JobSizing, CurvatureMixin):
    """The loss landscape of `model` on `data`: evaluate it along lines and planes.

    Args:
        model: a trained ``torch.nn.Module``. Never modified: we evaluate a private copy in
            eval mode (BatchNorm running statistics, no dropout) on the model's device and dtype.
        data: a tuple ``(X, y)`` of tensors or NumPy arrays (X may be a tuple ``(X1, X2)``,
            passed as ``model(X1, X2)``, or a dict, passed as keywords), a torch ``Dataset``, a
            ``DataLoader``, or any iterable of batches: ``(x, y)`` pairs (x a tensor or a
            tuple of them) or dicts (``model(**batch)`` with every key but the target's:
            ``"labels"``, ``"label"``, ``"y"`` or ``"target"``, or what `target` names). Read
            once and kept (on the device) in a fixed order.
        loss: ``loss(output, target)`` returning the batch mean. None (default): the model's
            own loss where its output has one (dict batches then give the model the target
            too, as Hugging Face models expect), else cross-entropy. An explicit loss gets
            the target, withheld from the model.
        metrics: more ``name → fn(output, target)`` batch means, e.g.
            ``{"accuracy": lw.metrics.accuracy}``. Values are sample-weighted means over all data.
        inputs: ``fn(batch) -> inputs`` for other batch layouts: a tuple is passed as
            positional arguments, a dict as keywords, a tensor as the one argument.
        target: the target's key in dict batches, or ``fn(batch) -> target``.
        output: which tensor of the model's output (a dict, ModelOutput, namedtuple, tuple)
            the loss and metrics see: a key or attribute name, or ``fn(output) -> tensor``;
            default ``logits``, else the first tensor. It is upcast to float32 for float16 and
            bfloat16 models, so the loss keeps its own resolution.
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
        batches = as_batches(
            data, device=self.space.device, dtype=self.space.dtype, batch_size=batch_size,
            layout=layout,
        )
        self.evaluator = Evaluator(
            model, self.space, batches, loss, metrics,
            memory_budget=memory_budget, strategy=strategy, output=output,
        )
        self.loss_name = (
            getattr(loss, "__name__", type(loss).__name__) if loss is not None
            else "model loss" if any(b.kw for b in batches) else "cross_entropy"
        )
        # The last few bindings by the directions' ids (the list keeps those ids unique).
        self._bound: OrderedDict[tuple[int, ...], tuple[list, BoundEvaluator]] = OrderedDict()

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
        bound = self._bound.get(tuple(id(d) for d in dirs))
        return {
            "loss": self.loss_name,
            "metrics": list(self.metric_names),
            "n_samples": self.n_samples,
            "n_params": self.space.numel,
            "model": type(self.model).__name__,
            "dtype": str(self.space.dtype).replace("torch.", ""),
            "device": str(self.space.device),
            "evaluation": bound[1].chosen if bound is not None else {},
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
