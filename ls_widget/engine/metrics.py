"""Metrics: ``fn(output, target)`` → scalar batch mean, weighted by batch size over the data."""

from __future__ import annotations

from torch import Tensor


def accuracy(output: Tensor, target: Tensor) -> Tensor:
    """Fraction of samples whose arg-max class equals the target (targets as class indices)."""
    if target.dim() == output.dim():  # one-hot or probabilities: compare arg-maxes
        target = target.argmax(dim=1)
    return (output.argmax(dim=1) == target).float().mean()


def error(output: Tensor, target: Tensor) -> Tensor:
    """1 − accuracy."""
    return 1.0 - accuracy(output, target)
