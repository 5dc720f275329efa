"""A Landscape's data sets: one set's evaluator, and several named ones side by side.

``Landscape(model, {"train": train, "test": test})`` evaluates every point on each set: one
`Evaluator` per set, each built exactly as a Landscape on that set alone builds its own, so
each set's values are the bits a single-set Landscape gives. The values of a point are the
sets' values concatenated in the order of the sets, named ``"<set>/<metric>"``.

Memory: an Evaluator's private model copy holds no tensor of its own (its parameters point at
the shared θ₀ snapshot), so a set costs its data cache and the work vectors of its bindings
(one parameter vector per dtype and binding); ``memory=`` is the budget of each set.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

import numpy as np
from torch import nn

from ..directions.direction import Direction
from .convert import is_data
from .evaluate import Evaluator, LossFn, Metric
from .evaluate.outputs import OutputPick
from .memory import activation_bytes, fit_batch_size
from .params import ParamSpace
from .source import DataSource

SEPARATOR = "/"
"""Between a set's name and a metric's: ``"test/accuracy"``."""


class Bound(Protocol):
    """Evaluation bound to k directions (a `BoundEvaluator`, or `NamedBound` over sets)."""

    def evaluate(self, coeffs: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
        """Values at θ₀ + Σₖ coeffs[p, k]·dₖ, shape (P, len(names)), float64."""

    @property
    def tile_size(self) -> int:
        """Points per tile of a stream (a pure function of the model, data and plan)."""

    @property
    def chosen(self) -> dict[str, object]:
        """How the points run, as results record it."""


class Points(Protocol):
    """What evaluates a Landscape's points: an `Evaluator`, or `NamedSets` of several."""

    @property
    def names(self) -> tuple[str, ...]:
        """The values computed at every point."""

    @property
    def n_samples(self) -> int:
        """Samples in the evaluation data."""

    @property
    def points_per_second(self) -> float | None:
        """The speed measured so far (time estimates only)."""

    def bind(self, directions: Sequence[Direction]) -> Bound:
        """Prepare evaluation at θ₀ + Σ cₖ dₖ for these directions."""


def split_sets(data: Any) -> dict[str, Any] | None:
    """The named data sets of `data`, or None when `data` is one data set.

    Named sets are a Mapping of names to data sets, none of them an array: a dict of whole
    arrays (``{"x": X, "labels": y}``) is one data set, as before.
    """
    if not isinstance(data, Mapping) or any(is_data(v) for v in data.values()):
        return None
    if not data:
        raise ValueError(
            "the data is an empty dict; pass one data set ((X, y), a Dataset, a DataLoader, "
            "...) or named ones, e.g. {'train': (X_train, y_train), 'test': (X_test, y_test)}"
        )
    for name in data:
        if not isinstance(name, str) or not name:
            raise TypeError(
                f"data set names must be non-empty strings, got {name!r}; name the sets as "
                "in {'train': train_data, 'test': test_data}"
            )
        if SEPARATOR in name:
            raise ValueError(
                f"data set name {name!r} contains {SEPARATOR!r}, which separates the set from "
                f"the metric in value names ('train{SEPARATOR}loss'); rename it, e.g. "
                f"{name.replace(SEPARATOR, '_')!r}"
            )
    return dict(data)


@contextmanager
def naming(name: str | None) -> Iterator[None]:
    """Errors raised inside say which data set they are about (nothing for one set)."""
    try:
        yield
    except (TypeError, ValueError, RuntimeError) as exc:
        # Exactly these types: a subclass may take other constructor arguments.
        if name is None or type(exc) not in (TypeError, ValueError, RuntimeError):
            raise
        raise type(exc)(f"data set {name!r}: {exc}") from exc


def evaluator_for(
    model: nn.Module,
    space: ParamSpace,
    source: DataSource,
    loss: LossFn | None,
    metrics: Mapping[str, Metric] | None,
    *,
    memory: int,
    fit_batches: bool,
    output: OutputPick,
    strategy: str,
) -> Evaluator:
    """The Evaluator of one data set in a budget of `memory` bytes.

    What the data cache leaves (at least half) is split in two: one forward pass, and
    precomputed activations with vectorized chunks. With `fit_batches`, whole data kept as
    views is re-batched so that one forward pass fits its share.
    """
    workspace = max(memory - source.cache_bytes, memory // 2) // 2
    if fit_batches and source.views:
        _fit_batches(model, space, source, workspace)
    return Evaluator(model, space, source, loss, metrics, memory_budget=workspace,
                     strategy=strategy, output=output)


def _fit_batches(model: nn.Module, space: ParamSpace, source: DataSource, budget: int) -> None:
    """Smaller batches of whole data where one forward pass would not fit `budget`.

    The probe runs the user's model functionally on our snapshot of its parameters and a copy
    of its buffers, on at most 64 samples: nothing of the model changes.
    """
    first = source.first
    buffers = {n: b.clone() for n, b in space.buffers0.items()}
    try:
        per_sample = activation_bytes(model, first, (space.theta0, buffers), min(first.n, 64))
    except Exception:  # the evaluator's θ₀ check explains failures
        return
    size = fit_batch_size(per_sample, budget, first.n)
    if size < first.n:
        source.rebatch(size)


class NamedBound:
    """Each set's binding of the same directions; values side by side, in the sets' order."""

    def __init__(self, bounds: Mapping[str, Bound]) -> None:
        self._bounds = dict(bounds)

    def evaluate(self, coeffs: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
        """Values at θ₀ + Σₖ coeffs[p, k]·dₖ: each set's columns, in the order of the sets."""
        return np.concatenate([b.evaluate(coeffs) for b in self._bounds.values()], axis=1)

    @property
    def tile_size(self) -> int:
        """The smallest of the sets' tile sizes (tiles group points for delivery only)."""
        return min(b.tile_size for b in self._bounds.values())

    @property
    def chosen(self) -> dict[str, object]:
        """How each set's points run, by set."""
        return {name: b.chosen for name, b in self._bounds.items()}


class NamedSets:
    """Several named data sets evaluated at the same points: one `Evaluator` per set.

    Args:
        evaluators: set name → its Evaluator, in the order the values are concatenated.
    """

    def __init__(self, evaluators: Mapping[str, Evaluator]) -> None:
        if not evaluators:
            raise ValueError("NamedSets needs at least one data set")
        self.evaluators: dict[str, Evaluator] = dict(evaluators)

    @property
    def names(self) -> tuple[str, ...]:
        """``"<set>/<metric>"`` for every set and metric, set by set."""
        return tuple(f"{s}{SEPARATOR}{m}" for s, ev in self.evaluators.items() for m in ev.names)

    @property
    def n_samples(self) -> int:
        """Samples in all the sets together."""
        return sum(ev.n_samples for ev in self.evaluators.values())

    @property
    def samples_per_set(self) -> dict[str, int]:
        """Samples in each set."""
        return {name: ev.n_samples for name, ev in self.evaluators.items()}

    @property
    def points_per_second(self) -> float | None:
        """Points per second over all the sets (each point runs on every set), once every
        set has been measured."""
        speeds = [ev.points_per_second for ev in self.evaluators.values()]
        if any(s is None or s <= 0 for s in speeds):
            return None
        return 1.0 / sum(1.0 / s for s in speeds if s is not None)

    def bind(self, directions: Sequence[Direction]) -> NamedBound:
        """Every set's binding of `directions`."""
        bounds: dict[str, Bound] = {}
        for name, ev in self.evaluators.items():
            with naming(name):
                bounds[name] = ev.bind(directions)
        return NamedBound(bounds)
