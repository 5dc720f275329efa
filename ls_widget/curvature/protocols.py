"""What curvature needs from the engine: a loss evaluator over a parameter snapshot.

Curvature never sees a `Landscape`: it takes the engine's `Evaluator` (or anything with the
same few attributes, described here as Protocols) and plain parameter names. So the engine
imports curvature and curvature imports nothing of the engine: no import circle.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor, nn

from ..directions.direction import Direction

__all__ = ["BatchLike", "BatchesLike", "BoundLoss", "LossEvaluator", "ParamSnapshot"]


class ParamSnapshot(Protocol):
    """θ₀ and the buffers of a model, as the engine's `ParamSpace` holds them."""

    @property
    def theta0(self) -> Mapping[str, Tensor]:
        """Every parameter at θ₀, in `named_parameters()` order."""

    @property
    def buffers0(self) -> Mapping[str, Tensor]:
        """Every buffer (BatchNorm running statistics, counters) at θ₀."""

    @property
    def names(self) -> Sequence[str]:
        """The parameter names, in order."""

    @property
    def dtype(self) -> torch.dtype:
        """The parameters' dtype."""

    @property
    def device(self) -> torch.device:
        """The parameters' device."""

    def check_compatible(self, tensors: Mapping[str, Tensor], what: str = ...) -> None:
        """Raise a clear ValueError unless `tensors` is shaped like θ₀, with finite values."""


class BatchLike(Protocol):
    """One batch of the evaluation data."""

    @property
    def x(self) -> tuple[Any, ...]:
        """The model's positional inputs."""

    @property
    def y(self) -> Any:
        """The targets, as the loss takes them."""

    @property
    def n(self) -> int:
        """The number of samples (the batch's weight in the mean loss)."""


class BatchesLike(Protocol):
    """The evaluation data: one pass per iteration, in a fixed order (it may be re-read from
    the user's loader on every pass); the first batch can be indexed."""

    def __iter__(self) -> Iterator[BatchLike]:
        """One pass over the batches."""

    def __len__(self) -> int:
        """Batches per pass."""

    def __getitem__(self, i: int) -> BatchLike:
        """Batch `i` (at least batch 0)."""


class BoundLoss(Protocol):
    """The loss at points θ₀ + Σₖ cₖ dₖ of a set of directions."""

    def evaluate(self, coeffs: Sequence[Sequence[float]]) -> np.ndarray:
        """Values (points, metrics) at each row of coefficients; column 0 is the loss."""


class LossEvaluator(Protocol):
    """The engine's `Evaluator`, as far as curvature uses it.

    The loss is the sample-weighted mean over `batches` of ``loss_fn(model(*x), y)``, in eval
    mode, on a private copy of the model that `plain()` lends (never the user's model).
    """

    @property
    def space(self) -> ParamSnapshot:
        """θ₀, the buffers, and the checks on directions."""

    @property
    def batches(self) -> BatchesLike:
        """The evaluation data, in a fixed order."""

    @property
    def loss_fn(self) -> Callable[[Any, Any], Any]:
        """``loss_fn(output, target)`` → the batch mean, a scalar tensor."""

    @property
    def n_samples(self) -> int:
        """The number of samples over all batches."""

    def plain(self) -> AbstractContextManager[nn.Module]:
        """The private copy of the model, for `torch.func.functional_call`."""

    def bind(self, directions: Sequence[Direction]) -> BoundLoss:
        """Prepare evaluation at θ₀ + Σₖ cₖ dₖ for these directions."""
