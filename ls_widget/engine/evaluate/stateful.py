"""Metrics over all the data: objects with ``update`` / ``compute`` / ``reset``.

A batch-mean metric ``fn(output, target)`` is combined over batches as a mean weighted by
their sizes: exact for means (accuracy), wrong for R², F1 or AUROC, whose value on all the data
is no mean of per-batch values (it would change with the batch size). A stateful metric is
computed over all the data at every point instead: ``reset()``, ``update(output, target)`` for
every batch in the data's order, ``compute()`` → one number. torchmetrics' ``Metric`` follows
this protocol; it is recognised by its methods (torchmetrics is never imported here).

Every point needs a state of its own, and the user's object is never touched: `MetricStates`
keeps a snapshot of it, taken when the Evaluator is built, and copies of the snapshot moved to
the model's device, one per point evaluated at once (reset before each point).
"""

from __future__ import annotations

import copy
import inspect
from typing import Any, Protocol, TypeGuard

import torch
from torch import Tensor, nn

from .outputs import describe

METHODS = ("update", "compute", "reset")


class StatefulMetric(Protocol):
    """A metric over all the data (the protocol of torchmetrics' ``Metric``)."""

    def update(self, output: Any, target: Any, /) -> object:
        """Add one batch: the model's output (the tensor the loss sees) and its targets."""

    def compute(self) -> Any:
        """The value over all batches added since the last `reset`: one number."""

    def reset(self) -> object:
        """Forget every batch added."""


def is_stateful(metric: object) -> TypeGuard[StatefulMetric]:
    """`metric` has callable ``update``, ``compute`` and ``reset`` (an instance, not a class)."""
    return not isinstance(metric, type) and all(
        callable(getattr(metric, m, None)) for m in METHODS
    )


def check_stateful(metric: object, what: str) -> bool:
    """Whether `metric` is a stateful metric; an error where it is only partly one.

    An object with some of ``update``, ``compute`` and ``reset`` but not all three (or with
    signatures that do not fit) is a mistake, not a batch-mean function: say what is missing.
    A class is left to `scoring.check_fn`, which asks for an instance.
    """
    if isinstance(metric, type):
        return False
    present = [m for m in METHODS if hasattr(metric, m)]
    if not present:
        return False
    name = type(metric).__name__
    missing = [m for m in METHODS if not callable(getattr(metric, m, None))]
    if missing:
        has = [m for m in present if m not in missing]
        raise TypeError(
            f"the {what} ({name}) has {_listed(has) or 'no callable method'} but no callable "
            f"{_listed(missing)}: a metric over all the data needs all three, reset() to start "
            "a point, update(output, target) for each batch and compute() → one number at the "
            f"end; add {_listed(missing)}, or pass a function fn(output, target) → batch mean"
        )
    for method, args in (("update", (None, None)), ("compute", ()), ("reset", ())):
        fn = getattr(metric, method)
        try:
            sig = inspect.signature(fn)
        except (TypeError, ValueError):  # builtins without a signature: calling them will tell
            continue
        try:
            sig.bind(*args)
        except TypeError:
            call = "update(output, target)" if method == "update" else f"{method}()"
            raise TypeError(
                f"the {what} ({name}) has {method}{sig}, which cannot be called as {call}; "
                "ls-widget calls reset(), then update(output, target) for each batch, then "
                "compute()"
            ) from None
    return True


def _listed(methods: list[str]) -> str:
    return " and ".join(f"{m}()" for m in methods)


class MetricStates:
    """Our own copies of the stateful metrics: one `PointState` per point run at once.

    Args:
        metrics: name → the user's metric (read once here, never called).
        device: the model's device; metrics that are modules (torchmetrics) move there.
    """

    def __init__(self, metrics: dict[str, StatefulMetric], device: torch.device) -> None:
        self.names: tuple[str, ...] = tuple(metrics)
        # A snapshot now, so that what the user does to their object later changes nothing.
        self._snapshot = {n: _own_copy(m, n, device) for n, m in metrics.items()}
        self._pool: list[PointState] = []

    def take(self, count: int) -> list[PointState]:
        """`count` states, reset (`Scorer.compute` resets a state again once a point is done).

        Copies are made the first time so many are needed, then reused: evaluations are
        serialized under the Evaluator's lock.
        """
        while len(self._pool) < count:
            self._pool.append(
                PointState({n: copy.deepcopy(m) for n, m in self._snapshot.items()})
            )
        states = self._pool[:count]
        for state in states:
            state.reset()
        return states


class PointState:
    """One point's copies of the stateful metrics.

    Attributes:
        metrics: name → our copy, fed the point's batches.
        live: every batch so far had a finite loss (once not, the point's metrics are NaN
            and its later batches are not fed: a metric may reject a diverged output).
    """

    def __init__(self, metrics: dict[str, StatefulMetric]) -> None:
        self.metrics = metrics
        self.live = True

    def reset(self) -> None:
        """Start a new point."""
        for metric in self.metrics.values():
            metric.reset()
        self.live = True


def _own_copy(metric: StatefulMetric, name: str, device: torch.device) -> StatefulMetric:
    """A deep copy of the user's `metric` on `device`, reset."""
    try:
        own = copy.deepcopy(metric)
    except Exception as exc:
        raise TypeError(
            f"the metric {name!r} ({type(metric).__name__}) cannot be copied "
            f"(copy.deepcopy failed: {exc}); every point needs a state of its own and the "
            "object you passed is never changed, so it must be deep-copyable: keep locks, "
            "files or generators out of it"
        ) from exc
    if isinstance(own, nn.Module):  # torchmetrics: its states follow the model's device
        own = own.to(device)
    own.reset()
    return own


def as_number(value: object, name: str) -> float:
    """The value `compute()` returned as a float, or an error naming the metric and the fix."""
    if not isinstance(value, Tensor):
        try:
            value = torch.as_tensor(value)
        except Exception:  # a dict, a tuple of curves, None...: not one number
            raise TypeError(
                f"the metric {name!r} returned {describe(value)} from compute(); it must "
                "return one number over all the data (a 0-d tensor or a float): pass each "
                "scalar of a collection or curve under its own name"
            ) from None
    if value.numel() != 1:
        raise ValueError(
            f"the metric {name!r} returned a tensor of shape {tuple(value.shape)} from "
            "compute(); it must return one number over all the data: average it (torchmetrics "
            "classification metrics: average='macro' or 'micro', not average=None), or reduce "
            "it to one value in compute()"
        )
    return float(value)
