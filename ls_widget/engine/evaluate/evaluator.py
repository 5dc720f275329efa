"""Evaluator: loss and metrics at many points θ₀ + Σₖ cₖ dₖ, fast, on tensors we own.

The user's model is never written to: we evaluate a private copy (private_model.py) whose
parameters are views into one flat work vector per dtype (flat.py). `bind` fixes k directions
and returns a `BoundEvaluator` (bound.py), which runs points one forward at a time or with vmap
(run.py) as a fixed plan decides (plan.py).
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from threading import RLock

import torch
from torch import nn

from ...directions.direction import Direction
from ..batch import Batches
from ..params import ParamSpace
from .bound import BoundEvaluator
from .center_check import check_center
from .outputs import OutputPick
from .plan import Plan, PlanKey
from .private_model import PrivateModel
from .scoring import (
    LossFn,
    Metric,
    Scorer,
    check_fn,
)
from .stateful import check_stateful

DEFAULT_MEMORY_BUDGET = 1 << 30  # bytes for precomputed activations and vmap chunks


class Evaluator:
    """Loss and metrics of a model at points of a low-dimensional affine subspace.

    Args:
        model: the user's model (read once, never written).
        space: its ParamSpace (θ₀ and buffer snapshots).
        batches: the evaluation data (fixed order).
        loss_fn: ``loss_fn(output, target)`` → scalar batch mean; None: the model's own loss
            where its output has one, else cross-entropy.
        metrics: name → a metric of one of two kinds (see `Scorer`): a function
            ``fn(output, target)`` → scalar batch mean (e.g. accuracy), combined as a mean
            weighted by batch size; or a stateful metric with ``update(output, target)``,
            ``compute()`` and ``reset()``, such as a torchmetrics ``Metric``, computed over
            all the data at every point (R², F1, AUROC: values that are no mean of batches).
            The user's object is copied when the Evaluator is built and never changed.
        memory_budget: bytes allowed for precomputed first-layer outputs and vmap chunks.
        strategy: ``"auto"`` (fixed rules), ``"loop"`` or ``"vmap"``.
        output: which tensor of the model's output the loss and metrics see (see `Scorer`).

    Attributes:
        chosen: what the latest calibration picked (mode, vmap chunk, memory format, shortcuts), for
            benchmarks and logs.
        points_per_second: the speed measured so far; it feeds time estimates only, never
            which points are evaluated together.
        plans: calibrations so far, by which tensors move (see plan.py).
    """

    def __init__(
        self,
        model: nn.Module,
        space: ParamSpace,
        batches: Batches,
        loss_fn: LossFn | None,
        metrics: Mapping[str, Metric] | None = None,
        *,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
        strategy: str = "auto",
        output: OutputPick = None,
    ) -> None:
        if loss_fn is not None and not callable(loss_fn):
            raise TypeError(
                "loss must be a callable loss_fn(output, target), e.g. F.cross_entropy; got "
                f"{type(loss_fn).__name__}"
            )
        if loss_fn is not None:
            check_fn(loss_fn, "loss", "F.cross_entropy")
        if output is not None and not (isinstance(output, str) or callable(output)):
            raise TypeError(
                f"output must be a key or attribute name of the model's output (e.g. "
                f"output='logits') or a callable fn(output) -> tensor; got "
                f"{type(output).__name__}"
            )
        if metrics is not None and not isinstance(metrics, Mapping):
            raise TypeError(
                f"metrics must be a dict name → fn(output, target), got {type(metrics).__name__}"
                "; pass e.g. metrics={'accuracy': lw.metrics.accuracy}"
            )
        for name, fn in (metrics or {}).items():
            if not isinstance(name, str):
                raise TypeError(f"metric names must be strings, got {name!r}")
            if not check_stateful(fn, f"metric {name!r}"):
                check_fn(fn, f"metric {name!r}", "lw.metrics.accuracy")
        if strategy not in ("auto", "loop", "vmap"):
            raise ValueError(f"strategy={strategy!r}; use 'auto', 'loop' or 'vmap'")
        if isinstance(memory_budget, bool) or not isinstance(memory_budget, numbers.Real):
            raise TypeError(
                f"memory_budget is a number of bytes, got {memory_budget!r}; e.g. 2**30 for 1 GiB"
            )
        if not memory_budget > 0:
            raise ValueError(f"memory_budget must be a positive number of bytes: {memory_budget}")
        self.space: ParamSpace = space
        self.batches: Batches = batches
        named = dict(metrics or {})
        if "loss" in named:
            raise ValueError("'loss' is reserved for the loss; give the metric another name")
        self.scorer: Scorer = Scorer(loss_fn, named, space.device, output)
        self.n_samples: int = sum(b.n for b in batches)
        self.memory_budget: int = memory_budget
        self.strategy: str = strategy
        self.device: torch.device = space.device
        self.private: PrivateModel = PrivateModel(model, space, batches)
        self.lock: RLock = self.private.lock  # one private copy: bindings take turns on it
        self.plans: dict[PlanKey, Plan] = {}
        self.chosen: dict[str, object] = {}
        self.points_per_second: float | None = None
        self._center_checked: bool = False  # set by the first successful `_check_center`

    @property
    def loss_fn(self) -> LossFn:
        """``loss_fn(output, target)`` → scalar batch mean, of the model's raw output: the
        scorer picks the tensor (and upcasts it), or takes the output's own loss."""
        return self.scorer.loss

    @property
    def metrics(self) -> dict[str, Metric]:
        """Name → a batch-mean ``fn(output, target)`` or a stateful metric (see `Scorer`)."""
        return self.scorer.metrics

    @property
    def names(self) -> tuple[str, ...]:
        """The values computed at every point: "loss", then the metrics."""
        return self.scorer.names

    @property
    def flops_per_point(self) -> float:
        """Arithmetic of one point over all the data, counted (not timed) in one forward."""
        return self.private.flops_per_point

    def plain(self) -> AbstractContextManager[nn.Module]:
        """The private copy with its real first layer, for `functional_call` (holds the lock).

        Whatever calls it passes every parameter and buffer explicitly; afterwards the next
        evaluation re-attaches its binding.
        """
        return self.private.plain()

    def bind(self, directions: Sequence[Direction]) -> BoundEvaluator:
        """Prepare evaluation at θ₀ + Σ cₖ dₖ for these directions."""
        if isinstance(directions, Direction) or not isinstance(directions, Sequence):
            raise TypeError(
                f"expected a list of lw.Direction, got {type(directions).__name__}; pass [d]"
            )
        if not directions:
            raise ValueError("need at least one direction")
        dirs = []
        for d in directions:
            if not isinstance(d, Direction):
                keys = (
                    " (a parameter name: was a single Direction passed where a list is "
                    "expected? pass [d])" if isinstance(d, str) else ""
                )
                raise TypeError(
                    f"expected an lw.Direction, got {type(d).__name__}{keys}; build one with "
                    "lw.directions.random(model)"
                )
            self.space.check_compatible(d)  # architecture, and finite values
            dirs.append(d.to(self.device))  # built on another device: follow the model
        with self.lock:
            bound = BoundEvaluator(self, dirs)
            # After the binding's calibration, whose first point reports errors in the loss
            # (the order of the user's loss calls stays as it was before this check existed).
            if not self._center_checked:
                check_center(self, bound)
                self._center_checked = True
            return bound
