"""What constructions, mining and surveys use of a `Landscape`, as a Protocol.

`shapes` never imports `engine/landscape*.py` (the Landscape's mixin imports `shapes`): it
takes the landscape as an argument with these few attributes, so there is no import circle.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from torch import nn

from ..curvature.hessian import Hessian
from ..directions.direction import Direction
from ..engine.evaluate import Evaluator
from ..engine.params import ParamSpace
from ..results.records import Curve, Surface

__all__ = ["LandscapeLike", "loss_name"]


class LandscapeLike(Protocol):
    """The parts of `lw.Landscape` that `ls_widget.shapes` uses."""

    model: nn.Module
    space: ParamSpace
    evaluator: Evaluator

    @property
    def metric_names(self) -> tuple[str, ...]:
        """The values at every point: the loss first ("loss", or "train/loss" with named
        data sets)."""

    @property
    def hessian(self) -> Hessian:
        """Eigenpairs of H at the model (over the trainable parameters)."""

    def line(self, d: Direction, *, span: float | Sequence[float] = ..., n: int = ...,
             progress: bool = ...) -> Curve:
        """f(α) = L(θ + α·d) on `n` points of `span`."""

    def plane(self, d1: Direction, d2: Direction, *, span: float | Sequence = ...,
              n: int | Sequence[int] = ..., progress: bool = ...) -> Surface:
        """f(α, β) = L(θ + α·d₁ + β·d₂) on an n × n grid."""


def loss_name(land: LandscapeLike) -> str:
    """The name of the loss among the landscape's values (its first data set's, if named)."""
    return land.metric_names[0]
