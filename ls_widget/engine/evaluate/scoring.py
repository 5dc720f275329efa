"""The loss and metrics of one batch, and what to tell the user when they (or the model) fail.

Two kinds of metric: a function ``fn(output, target)`` → the batch mean (accuracy), combined
over batches by the runner as a mean weighted by batch size; and a stateful metric (stateful.py:
``update`` / ``compute`` / ``reset``, e.g. a torchmetrics ``Metric``), fed every batch of a
point and computed once over all the data.

Every message names what was called on what (shapes and dtypes of the output and the target)
and, where the shapes make it likely, the fix. Errors of the builtin types are re-raised in
their own type, so a caller's ``except RuntimeError`` still works.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..batch import Batch
from .outputs import OutputPick, describe, own_loss, pick_output, upcast
from .stateful import MetricStates, PointState, StatefulMetric, as_number, is_stateful

LossFn = Callable[[Tensor, Tensor], Tensor]
Metric = LossFn | StatefulMetric  # a batch mean fn(output, target), or over all the data
_METRICS_MODULE = "ls_widget.metrics"  # lw.metrics: they explain their own errors


@dataclass(frozen=True)
class Scorer:
    """``loss_fn(output, target)`` and the metrics, as 0-d tensors on `device`.

    The model's raw output (a tensor, a dict, a ModelOutput, a tuple...) goes through `pick`:
    the tensor that `output` names (default: ``logits``, else the first tensor), upcast to
    float32 for half-precision models, so losses and metrics have their full resolution.

    A metric is a function ``fn(output, target)`` → batch mean (`score` computes it per batch;
    the runner weights batches by size), or a stateful metric with ``update(output, target)``,
    ``compute()`` and ``reset()`` (e.g. a torchmetrics ``Metric``), computed over all the data
    at every point on copies of it (stateful.py; `update`, `compute`). Both get the same picked
    output (logits: torchmetrics applies softmax or sigmoid itself to values outside [0, 1])
    and the batch's targets as they are. Where the loss is not finite, every metric is NaN.

    Attributes:
        loss_fn: the loss, a batch mean; None: the output's own ``loss`` where it has one
            (a model given the labels), else cross-entropy.
        metrics: name → a batch-mean function or a stateful metric, in the user's order.
        device: where the values are gathered (the model's device).
        output: which tensor of the model's output the loss and metrics see: a key or
            attribute name, or a callable ``fn(output) -> tensor``; None: the default.
        means: the batch-mean metrics of `metrics`.
        states: our copies of its stateful metrics (``states.names``; none: empty).
    """

    loss_fn: LossFn | None
    metrics: dict[str, Metric]
    device: torch.device
    output: OutputPick = None
    means: dict[str, LossFn] = field(init=False, repr=False)
    states: MetricStates = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        stateful = {n: m for n, m in self.metrics.items() if is_stateful(m)}
        means = {n: cast(LossFn, m) for n, m in self.metrics.items() if n not in stateful}
        object.__setattr__(self, "means", means)
        object.__setattr__(self, "states", MetricStates(stateful, self.device))

    def pick(self, out: object) -> Any:
        """The tensor of the model's output that the loss and metrics see (upcast)."""
        picked = pick_output(out, self.output)
        return upcast(picked) if isinstance(picked, Tensor) else picked

    def loss(self, out: object, y: Any) -> Tensor:
        """The loss of the model's raw output `out` against `y` (every path calls this)."""
        return self._loss(out, None, y)

    def _loss(self, out: object, picked: Any, y: Any) -> Tensor:
        if self.loss_fn is None:
            own = own_loss(out)
            if own is not None:
                return upcast(_as_scalar(own, "model's own loss"))
            fn: LossFn = F.cross_entropy
        else:
            fn = self.loss_fn
        return _as_scalar(_call(fn, self.pick(out) if picked is None else picked, y, "loss"),
                          "loss")

    @property
    def names(self) -> tuple[str, ...]:
        """The values of a point: "loss", then the metrics in their order."""
        return ("loss", *self.metrics)

    @property
    def mean_names(self) -> tuple[str, ...]:
        """What `score` returns: "loss", then the batch-mean metrics."""
        return ("loss", *self.means)

    def score(self, out: object, batch: Batch) -> list[Tensor]:
        """The loss and the batch-mean metrics of one batch as 0-d tensors on the model's
        device (`mean_names`).

        Where the loss is not finite (a diverged point) every metric is NaN too: a diverged
        model has no meaningful accuracy, and a finite one would be drawn as if it had.
        """
        return self.score_and_pick(out, batch)[0]

    def score_and_pick(self, out: object, batch: Batch) -> tuple[list[Tensor], Any]:
        """`score`, and the picked output that the stateful metrics are fed (`update`)."""
        y = batch.y
        # The targets are shared by every point (and may be the user's own tensor): a loss or
        # metric that writes to them would change the next point's. Autograd's version
        # counter tells, for the price of an attribute read.
        version = _version(y)
        picked = self.pick(out)
        loss = self._loss(out, picked, y)
        if version is not None and y._version != version:
            _writes_target("loss")
        vals = [loss if loss.device == self.device else loss.to(self.device)]
        if self.means:
            finite = torch.isfinite(vals[0])
            for name, fn in self.means.items():
                what = f"metric {name!r}"
                v = _as_scalar(_call(fn, picked, y, what), what)
                if version is not None and y._version != version:
                    _writes_target(what)
                v = v if v.device == self.device else v.to(self.device)
                vals.append(torch.where(finite, v, torch.nan))
        return vals, picked

    def update(self, state: PointState, picked: Any, y: Any, loss_finite: bool) -> None:
        """Feed one batch of a point to its stateful metrics: `picked` is the output `pick`
        chose, `loss_finite` whether the batch's loss is finite.

        From the first batch whose loss is not finite on, the point's metrics will be NaN:
        its later batches are not fed (a metric may reject a diverged output).
        """
        state.live = state.live and loss_finite
        if not state.live:
            return
        version = _version(y)
        for name, metric in state.metrics.items():
            what = f"metric {name!r}"
            _call(metric.update, picked, y, what, "failed in update()")
            if version is not None and y._version != version:
                _writes_target(what)

    def compute(self, state: PointState) -> list[float]:
        """The stateful metrics of a point fed all its batches (`states.names`), then its
        state reset; NaN where a batch's loss was not finite."""
        if not state.live:
            state.reset()
            return [math.nan] * len(state.metrics)
        values = []
        for name, metric in state.metrics.items():
            try:
                value = metric.compute()
            except Exception as exc:
                _raise_with_context(
                    exc, f"the metric {name!r} failed in compute(), after update() on every "
                    "batch of the data"
                )
            values.append(as_number(value, name))
        state.reset()  # frees what it holds until the next point (AUROC keeps every output)
        return values

    def assemble(self, means: np.ndarray, overall: np.ndarray) -> np.ndarray:
        """The values of P points in the order of `names`, from their `mean_names` (P, 1 +
        batch means) and their stateful metrics (P, stateful), NaN wherever the loss is not
        finite."""
        if not self.states.names:
            return means
        columns = {n: means[:, i] for i, n in enumerate(self.mean_names)}
        nan = ~np.isfinite(means[:, 0])
        for i, n in enumerate(self.states.names):
            columns[n] = np.where(nan, np.nan, overall[:, i])
        return np.stack([columns[n] for n in self.names], axis=1)


def _version(y: object) -> int | None:
    """The version counter of a target tensor (None where there is none to watch)."""
    return y._version if isinstance(y, Tensor) and not y.is_inference() else None


def _call(
    fn: Callable[[Any, Any], object], out: Any, y: Any, what: str, failed: str = "failed"
) -> object:
    """fn(out, y); an error says what the loss or metric was given and the likely fix."""
    try:
        return fn(out, y)
    except Exception as exc:
        name = getattr(fn, "__name__", type(fn).__name__)
        label = f"loss {name}" if what == "loss" else what  # metrics are named already
        _raise_with_context(
            exc,
            f"the {label} {failed} on the model's output ({describe(out)}) and the "
            f"target ({describe(y)})",
            # lw.metrics explain their own errors; a guess from the shapes would not help
            "" if getattr(fn, "__module__", "") == _METRICS_MODULE else _target_hint(out, y),
        )


def _as_scalar(value: object, what: str) -> Tensor:
    """`value` as a 0-d tensor, or an error saying that a loss must return the batch mean."""
    if not isinstance(value, Tensor):
        try:
            value = torch.as_tensor(value)
        except Exception:  # None, a module, a string...: not a number
            raise TypeError(
                f"the {what} returned a {type(value).__name__}; it must return the batch mean "
                "as a scalar tensor or a number"
            ) from None
    if value.numel() != 1:
        example = (
            "F.cross_entropy(out, y) with reduction='mean'" if what == "loss"
            else "(out.argmax(1) == y).float().mean()"
        )
        raise ValueError(
            f"the {what} returned a tensor of shape {tuple(value.shape)}; it must return the "
            f"batch mean as a scalar (e.g. {example})"
        )
    return value if value.dim() == 0 else value.reshape(())


def check_fn(fn: object, what: str, example: str) -> None:
    """`fn` can be called as fn(output, target): not a class, and a signature that binds."""
    if isinstance(fn, type):
        raise TypeError(
            f"the {what} is the class {fn.__name__}; pass an instance, {fn.__name__}(), or a "
            f"function fn(output, target) such as {example}"
        )
    if not callable(fn):
        raise TypeError(
            f"the {what} must be a callable fn(output, target), e.g. {example}; got "
            f"{type(fn).__name__}"
        )
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins without a signature: calling them will tell
        return
    try:
        sig.bind(None, None)
    except TypeError:
        name = getattr(fn, "__name__", type(fn).__name__)
        raise TypeError(
            f"the {what} {name}{sig} cannot be called as fn(output, target); ls-widget calls it "
            f"with the model's output and the batch's targets, e.g. {example}"
        ) from None


def check_output(out: object, where: str) -> None:
    """The model's forward returned something a loss can take (not None, not empty)."""
    if out is None:
        raise TypeError(
            "the model's forward returned None; it must return its output (a missing `return`?)"
        )
    if isinstance(out, Tensor) and out.numel() == 0:
        raise ValueError(
            f"the model returned an empty output of shape {tuple(out.shape)} on {where}; a loss "
            "needs at least one value per sample"
        )


def forward_error(exc: Exception, batch: Batch, where: str) -> NoReturn:
    """Re-raise a failed forward at θ₀ with the inputs it was given (and a dtype hint)."""
    tensors = batch.inputs()
    ints = [t.dtype for t in tensors if not t.is_floating_point()]
    dtypes = ("dtype", "scalar type", "Byte", "Char", "Short", "Int", "Long", "Bool")
    if not any(word in str(exc) for word in dtypes):
        ints = []  # an integer input is not the problem (token ids, say)
    hint = (
        f"the inputs are {ints[0]}: integer data is passed as it is (e.g. token ids); "
        "convert features with X.float() (NumPy: X.astype(np.float32))" if ints else ""
    )
    inputs = ", ".join(f"({describe(t)})" for t in batch.x)
    if batch.kw:
        kws = ", ".join(f"{k}=({describe(v)})" for k, v in batch.kw.items())
        call = f"model({'*x, ' if batch.x else ''}**kw) with " + (
            f"x = {inputs} and " if batch.x else ""
        ) + f"kw = {kws}"
    else:
        call = f"model(*x) with x = {inputs}"
    _raise_with_context(exc, f"the model failed at θ₀ on {where}, called as {call}", hint)


def center_hint(out: object, batch: Batch) -> str:
    """Where a non-finite loss at θ₀ comes from (the parameters are known to be finite)."""
    tensors = batch.inputs()
    bad_x = sum(int((~torch.isfinite(t)).sum()) for t in tensors if t.is_floating_point())
    if bad_x:
        return (
            f"the inputs contain {bad_x} NaN/inf values; clean the data (drop those rows, or "
            "X = torch.nan_to_num(X))"
        )
    y = batch.y
    if isinstance(y, Tensor) and y.is_floating_point() and not bool(torch.isfinite(y).all()):
        return "the targets contain NaN/inf values; clean them (or drop those samples)"
    if not isinstance(out, Tensor):
        with contextlib.suppress(Exception):  # no tensor to look at: the loss's fault
            out = pick_output(out)
    if isinstance(out, Tensor) and out.is_floating_point() and not bool(
        torch.isfinite(out).all()
    ):
        return (
            "the model's output contains NaN/inf although its inputs and parameters are "
            "finite; look for log, sqrt or division of non-positive values in forward (or "
            "overflow in float16)"
        )
    return (
        "the model's output is finite, so the loss makes it non-finite; check the loss (e.g. "
        "log of 0, or targets outside the range it expects)"
    )


def _raise_with_context(exc: Exception, context: str, hint: str = "") -> NoReturn:
    """Raise `exc` explained by what was called on what (`context`) and the likely fix, in
    its own type: a new exception for the builtin types (so `except RuntimeError` still
    works), else `exc` itself with a note."""
    tail = f" — {hint}" if hint else ""
    if type(exc) in (RuntimeError, ValueError, TypeError, IndexError, NotImplementedError):
        raise type(exc)(f"{context}: {exc}{tail}") from exc
    if sys.version_info >= (3, 11):  # 3.10 has no notes (it raised AttributeError here)
        exc.add_note(context + tail)
    raise exc


def _target_hint(out: object, y: object) -> str:
    """What is most likely wrong when a loss or metric fails on (out, y), and the fix."""
    if out is None:
        return "the model returned None: does its forward `return` the output?"
    if not isinstance(out, Tensor):
        pick = "out[0]" if isinstance(out, (tuple, list)) else "out.logits"
        return (
            f"the model returns {describe(out)}, which the loss receives as it is: pass a "
            f"loss that picks the tensor, e.g. lambda out, y: F.cross_entropy({pick}, y), or "
            f"pick it with output=lambda out: {pick}"
        )
    if not isinstance(y, Tensor):
        return (
            f"the target is {describe(y)}, which the loss receives as it is: pass a loss that "
            "takes it (e.g. lambda out, y: F.cross_entropy(out, y['labels'])) or y as a tensor"
        )
    if out.numel() == 0:
        return f"the model's output is empty (shape {tuple(out.shape)}): check its forward"
    if out.dim() > 0 and y.dim() > 0 and out.shape[0] != y.shape[0]:
        return (
            f"the output has {out.shape[0]} samples and the target {y.shape[0]}: every batch "
            "needs one target per sample, in the same order"
        )
    one_column = out.dim() == 1 or (out.dim() == 2 and out.shape[1] == 1)  # binary/regression
    if y.is_floating_point():
        if out.dim() != y.dim() + 1:
            return ""
        if one_column:
            return (
                f"the output is shaped {tuple(out.shape)} and the target {tuple(y.shape)}: make "
                "them match, e.g. y.reshape(-1, 1)"
            )
        return "class-index targets must be integers: pass y.long() (NumPy: y.astype(np.int64))"
    if one_column:
        reshape = ".reshape(-1, 1)" if out.dim() == 2 and y.dim() == 1 else ""
        return (
            "the model has one output per sample: a binary or regression loss (e.g. "
            f"F.binary_cross_entropy_with_logits) needs targets y.float(){reshape}; for "
            "classes, give the model one output per class"
        )
    if y.shape == out.shape and out.dim() > 1:
        return (
            "integer targets shaped like the output look one-hot: pass class indices "
            "y.argmax(1), or y.float() as class probabilities"
        )
    if y.dtype not in (torch.int64, torch.uint8, torch.bool):
        return f"class-index targets must be int64, not {y.dtype}: pass y.long()"
    if out.dim() == y.dim() + 1 and y.numel() > 0:
        lo, hi, classes = int(y.min()), int(y.max()), out.shape[1]
        if hi >= classes or lo < -100:
            return (
                f"the targets range over {lo}..{hi} but the model has {classes} outputs: class "
                f"indices must lie in 0..{classes - 1}"
            )
    return ""


def _writes_target(what: str) -> NoReturn:
    raise ValueError(
        f"the {what} writes to its target in place (e.g. y[y == 255] = 0); every point is "
        "scored against the same targets, so it must not change them: work on a copy in the "
        "loss (y = y.clone()), or clean the targets once before building the Landscape"
    )
