"""Metrics: ``fn(output, target)`` → scalar batch mean, weighted by batch size over the data."""

from __future__ import annotations

from torch import Tensor


def accuracy(output: Tensor, target: Tensor) -> Tensor:
    """Fraction of samples whose arg-max class equals the target (targets as class indices)."""
    if not isinstance(output, Tensor) or output.dim() < 2 or output.shape[1] < 2:
        # The arg-max of one column is always 0: an "accuracy" that counts class 0.
        shape = tuple(output.shape) if isinstance(output, Tensor) else type(output).__name__
        raise ValueError(
            f"accuracy compares arg-max classes, so it needs one output per class; the model "
            f"returned {shape}. For one binary logit per sample use e.g. metrics={{'accuracy': "
            "lambda out, y: ((out.reshape(-1) > 0) == y.reshape(-1).bool()).float().mean()}"
        )
    if target.dim() == output.dim():  # one-hot or probabilities: compare arg-maxes
        target = target.argmax(dim=1)
    return (output.argmax(dim=1) == target).float().mean()


def error(output: Tensor, target: Tensor) -> Tensor:
    """1 − accuracy."""
    return 1.0 - accuracy(output, target)
