"""Landscape: a model, data and a loss; lines, planes and progressive streams of tiles."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..directions.direction import Direction
from .batch import keywords_of
from .evaluate import Evaluator, LossFn, Metric
from .evaluate.outputs import OutputPick
from .jobs import JobSizing
from .landscape_curvature import CurvatureMixin
from .landscape_shapes import ShapesMixin
from .landscape_slices import SlicesMixin, float32_mode
from .layout import Layout
from .memory import DEFAULT_MEMORY, parse_memory
from .named import Bound, NamedSets, Points, evaluator_for, naming, split_sets
from .params import ParamSpace
from .source import DataSource, load


class _Bindings:
    """The last few bindings, by the directions' identities, so that calibration and the
    first-layer precomputation are paid once per pair of directions."""

    def __init__(self, evaluator: Points, size: int = 4) -> None:
        self._evaluator, self._size = evaluator, size
        # The list keeps the directions alive, so their ids stay unique while cached.
        self._cache: OrderedDict[tuple[int, ...], tuple[list, Bound]] = OrderedDict()
        # The widget's worker, its gallery and a miner bind from their own threads.
        self._lock = threading.RLock()

    def find(self, dirs: Sequence[Direction]) -> Bound | None:
        """The binding of `dirs` if cached."""
        with self._lock:
            hit = self._cache.get(tuple(id(d) for d in dirs))
        return None if hit is None else hit[1]

    def get(self, dirs: Sequence[Direction]) -> Bound:
        """The binding of `dirs`, cached or made."""
        key = tuple(id(d) for d in dirs)
        with self._lock:
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
        with self._lock:
            self._cache.clear()


class Landscape(SlicesMixin, JobSizing, CurvatureMixin, ShapesMixin):
    """The loss landscape of `model` on `data`: evaluate it along lines and planes.

    Args:
        model: a trained ``torch.nn.Module``. Never modified: we evaluate a private copy in
            eval mode (BatchNorm running statistics, no dropout) on the model's device and dtype.
        data: ``(X, y)`` tensors or NumPy arrays (X may be a tuple or a dict), a
            ``Dataset``, a ``DataLoader`` or any iterable of ``(x, y)`` pairs or dicts (a dict
            batch calls ``model(**batch)`` without its target key; see `Layout`). Read in a
            fixed order; kept on the device while it fits half the memory budget (whole
            tensors on the device cost nothing: they are used in place), else read again
            from the data on every pass over it. Or named data sets, a dict of any of these
            (``{"train": train, "test": test}``, not a dict of arrays, which is one set of
            keyword inputs): every point is evaluated on each set, and the values are named
            ``"train/loss"``, ``"train/accuracy"``, ``"test/loss"``, ... set by set.
            Curvature (``hessian``, ``curvature_map``) uses the first set.
        loss: ``loss(output, target)`` → batch mean. None: the output's own loss where it
            has one (dict batches then pass the target to the model), else cross-entropy.
        metrics: more values per point, by name: a batch mean ``fn(output, target)`` (e.g.
            ``lw.metrics.accuracy``; sample-weighted over the batches), or a stateful metric
            with ``update``/``compute``/``reset`` such as a torchmetrics ``Metric``, computed
            over all the data at each point (exact F1, AUROC, R², whatever the batch size).
        inputs, target: ``fn(batch)`` for other layouts, or the target's key in dict batches.
        output: which tensor of a dict/ModelOutput/namedtuple output the loss sees (a key,
            an attribute or ``fn(output)``; default ``logits``), upcast from float16/bfloat16.
        batch_size: split ``(X, y)`` or a ``Dataset`` into batches of this size (default:
            the largest power of two up to 2048 whose forward pass fits the budget; a
            DataLoader keeps its own batches).
        memory: the engine's memory budget beyond the data and the model, in bytes or as a
            string (``"512MB"``, default; ``"2GiB"``): at most half caches converted or
            loaded data, the rest holds one forward pass's activations, precomputed
            activations and vectorized chunks. With named data sets, each set has this
            budget (k sets: up to k times as much).
        subset: evaluate on this many samples only, for a fast first look: a seeded random
            subset (``subset_seed``), stratified by class where the targets are classes.
            With named data sets, this many of each set (`batch_size` too is per set).
        subset_seed: the seed of `subset`.
        strategy: ``"auto"`` (fixed rules), ``"loop"`` or ``"vmap"``.
        tf32: let float32 matmuls and convolutions on Ampere+ GPUs use TF32 (faster, ~1e-3
            relative error). Off by default: our evaluations run in full float32 and restore
            PyTorch's own settings afterwards. No effect on CPUs.
        client: where lines, planes and streams run by default: None (here), a
            ``distributed.Client`` or an ``ls_widget.distributed.DaskExecutor`` (Dask
            workers, the same bits); each call's ``client=`` overrides it.

    Lines, planes and streams (`line`, `plane`, `stream`, `surface`) come from `SlicesMixin`;
    job sizes (`estimate`, `check_job`) from `JobSizing`; curvature (``land.hessian``,
    ``curvature_map``, ...) from `CurvatureMixin`; constructions and
    mining (`construct`, `mine`, `mine_plane`, Xu et al. 2024) from `ShapesMixin`.

    Attributes:
        data_sets: the names of the data sets, in the order of the values (empty for one
            unnamed data set).
        data: the (first) data set's batches; ``evaluator``: its evaluator, which curvature
            uses.
    """

    def __init__(
        self,
        model: nn.Module,
        data: Any,
        loss: LossFn | None = None,
        metrics: Mapping[str, Metric] | None = None,
        *,
        inputs: Callable[[Any], Any] | None = None,
        target: str | Callable[[Any], Any] | None = None,
        output: OutputPick = None,
        batch_size: int | None = None,
        memory: int | str = DEFAULT_MEMORY,
        subset: int | None = None,
        subset_seed: int = 0,
        strategy: str = "auto",
        tf32: bool = False,
        client: Any = None,
    ) -> None:
        if not isinstance(tf32, bool):
            raise TypeError(f"tf32 must be True or False, got {tf32!r}")
        self.model = model
        self.tf32 = tf32
        self.client = client
        # What a Dask worker needs to build this Landscape again (distributed.py).
        self._settings: dict[str, Any] = {
            "data": data, "loss": loss, "metrics": metrics, "inputs": inputs, "target": target,
            "output": output, "batch_size": batch_size, "memory": memory, "subset": subset,
            "subset_seed": subset_seed, "strategy": strategy, "tf32": tf32,
        }
        self.memory = parse_memory(memory)
        self.space = ParamSpace(model)
        layout = Layout(inputs, target, pass_target=loss is None, takes=keywords_of(model))
        named = split_sets(data)
        self.data_sets: tuple[str, ...] = tuple(named or ())
        evaluators: dict[str, Evaluator] = {}
        sources: list[DataSource] = []
        for name, part in (named or {"": data}).items():  # "": the one unnamed set
            with naming(name or None):
                # Called from here, so that the source's warnings point at the caller's line.
                sources.append(load(
                    part, layout, device=self.space.device, dtype=self.space.dtype,
                    batch_size=batch_size, subset=subset, subset_seed=subset_seed,
                    cache_limit=self.memory // 2,
                ))
                evaluators[name] = evaluator_for(
                    model, self.space, sources[-1], loss, metrics, memory=self.memory,
                    fit_batches=batch_size is None, output=output, strategy=strategy,
                )
        self.data, self.evaluator = sources[0], next(iter(evaluators.values()))
        self._points: Points = self.evaluator if named is None else NamedSets(evaluators)
        default = "model loss" if self.data.first.kw else "cross_entropy"
        self.loss_name = default if loss is None else getattr(loss, "__name__", repr(loss))
        self._bound = _Bindings(self._points)

    @property
    def metric_names(self) -> tuple[str, ...]:
        """The values computed at every point, "loss" first (with named data sets,
        ``"<set>/loss"``, ``"<set>/<metric>"``, ... set by set)."""
        return self._points.names

    @property
    def points_per_second(self) -> float | None:
        """The evaluation speed measured so far (it feeds estimates, never the schedule)."""
        return self._points.points_per_second

    @property
    def n_samples(self) -> int:
        """Samples in the evaluation data (all the data sets together)."""
        return self._points.n_samples

    def _bind(self, dirs: Sequence[Direction]) -> Bound:
        with float32_mode(self.tf32):  # calibration checks its shortcuts at this precision
            return self._bound.get(dirs)

    def center(self) -> dict[str, float]:
        """Loss and metrics of the model itself (θ₀)."""
        zero = Direction({n: torch.zeros_like(t) for n, t in self.space.theta0.items()})
        with float32_mode(self.tf32):
            vals = self._points.bind([zero]).evaluate([[0.0]])[0]
        return dict(zip(self.metric_names, map(float, vals), strict=True))

    def evaluate(
        self, directions: Sequence[Direction], coeffs: np.ndarray | Sequence[Sequence[float]]
    ) -> dict[str, np.ndarray]:
        """Metrics at θ₀ + Σₖ coeffs[p, k]·directions[k] for arbitrary points p."""
        with float32_mode(self.tf32):
            vals = self._bind(list(directions)).evaluate(coeffs)
        return {n: vals[:, i] for i, n in enumerate(self.metric_names)}

    def describe(self, dirs: Sequence[Direction] = (), **extra: Any) -> dict[str, Any]:
        """A result's `meta`: loss, metrics, data, model, dtype, device, the plan of `dirs`."""
        bound = self._bound.find(dirs)
        return {
            "loss": self.loss_name,
            "metrics": list(self.metric_names),
            "n_samples": self.n_samples,
            **({"data_sets": self._points.samples_per_set}
               if isinstance(self._points, NamedSets) else {}),
            "n_params": self.space.numel,
            "model": type(self.model).__name__,
            "dtype": str(self.space.dtype).replace("torch.", ""),
            "device": str(self.space.device),
            "evaluation": bound.chosen if bound is not None else {},
            **extra,
        }
