"""Metrics for ``lw.Landscape(..., metrics={name: metric})``, of two kinds.

- A function ``fn(output, target)`` → the batch mean as a scalar, such as `accuracy` and
  `error` here: the value at a point is the mean over batches weighted by their sizes, exact
  for any per-sample mean.
- A stateful metric, an object with ``update(output, target)``, ``compute()`` and ``reset()``,
  such as a torchmetrics ``Metric`` (e.g. ``MulticlassF1Score(num_classes=10,
  average="macro")``, ``MulticlassAUROC(num_classes=10)``, ``R2Score()``) or a class of your
  own: at every point it is reset, updated with every batch in the data's order and computed
  once, so metrics that are no mean of batches (F1, AUROC, R²) are exact over all the data and
  do not depend on the batch size. Your object is copied, never changed. ``compute()`` must
  return one number (torchmetrics: ``average="macro"``, not ``average=None``).

Both kinds get the same ``output``: the tensor the loss sees (logits, not probabilities;
torchmetrics' classification metrics apply the softmax or sigmoid themselves to values outside
[0, 1]), and the batch's targets as they are (class indices for classification metrics).
Wherever the loss is not finite (a diverged point), every metric is NaN.
"""

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
