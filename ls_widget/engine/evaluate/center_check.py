"""The check of the model at θ₀ made when an Evaluator binds its first directions.

A loss that broadcasts output against target (wrong values, with only a warning) is an error,
and so is a non-finite loss at θ₀, which would draw every point as NaN. The check is the
binding's own value at θ₀, which the points at θ₀ reuse, so it costs at most one point; only
a failure runs the plain model batch by batch, to name the batch and the fix.
"""

from __future__ import annotations

import math
import warnings
from contextlib import AbstractContextManager
from typing import Protocol

import torch
from torch import nn

from ..batch import Batches, forward
from ..params import ParamSpace
from .bound import BoundEvaluator
from .outputs import describe
from .scoring import Scorer, center_hint, check_output, forward_error


class Evaluator(Protocol):
    """What the check reads of its `Evaluator` (evaluator.py imports this module)."""

    space: ParamSpace
    batches: Batches
    scorer: Scorer

    def plain(self) -> AbstractContextManager[nn.Module]:
        """The private copy with its real first layer, for `functional_call`."""


def check_center(ev: Evaluator, bound: BoundEvaluator) -> None:
    """Check the model at θ₀ over all the data (see the module's docstring); raises.

    (Points away from θ₀ may diverge: there NaN and inf are results, drawn masked.)
    """
    with warnings.catch_warnings(record=True) as caught:
        # Seen even where the user ignores warnings (or saw it once already).
        warnings.filterwarnings("always", message=".*broadcast", category=UserWarning)
        try:
            loss = float(bound.center()[0])
        except Exception:
            check_batches(ev)  # names the batch and the likely fix
            raise
    broadcast = [w for w in caught if _broadcasts(w)]
    if broadcast or not math.isfinite(loss):
        check_batches(ev)
        if broadcast:  # the plain model did not warn where the binding's did
            raise ValueError(_broadcast_text(None, None, broadcast[0]))
        raise ValueError(
            f"the model's own loss at θ₀ is {loss} (its parameters are finite), so every "
            "point of the landscape would be NaN"
        )
    for w in caught:
        warnings.showwarning(w.message, w.category, w.filename, w.lineno)


def check_batches(ev: Evaluator) -> None:
    """The plain model at θ₀ on every batch: raise, naming the batch and the fix, where
    its forward fails, its output is empty, the loss broadcasts or is not finite."""
    space = ev.space
    n = len(ev.batches)
    with ev.plain() as module, torch.no_grad():
        for i, batch in enumerate(ev.batches):
            where = f"batch {i + 1} of {n}" if n > 1 else "the data"
            try:
                out = forward(module, batch, (space.theta0, space.buffers0))
            except Exception as exc:
                forward_error(exc, batch, where)
            check_output(out, where)
            with warnings.catch_warnings(record=True) as caught:
                warnings.filterwarnings("always", message=".*broadcast", category=UserWarning)
                loss = float(ev.scorer.score(out, batch)[0])
            for w in caught:
                if _broadcasts(w):
                    raise ValueError(_broadcast_text(out, batch.y, w))
            if not math.isfinite(loss):
                raise ValueError(
                    f"the model's own loss at θ₀ is {loss} on {where} (its parameters are "
                    "finite), so every point of the landscape would be NaN: "
                    + center_hint(out, batch)
                )


def _broadcasts(w: warnings.WarningMessage) -> bool:
    return issubclass(w.category, UserWarning) and "broadcast" in str(w.message)


def _broadcast_text(out: object, y: object, w: warnings.WarningMessage) -> str:
    shapes = (f" ({describe(out)}) against the target ({describe(y)})" if out is not None
              else " against the target")
    return (
        f"the loss broadcasts the model's output{shapes}, which gives wrong values "
        f"(PyTorch warned: {w.message}). Make the shapes match, e.g. targets "
        "y.reshape(-1, 1), or a loss lambda out, y: F.mse_loss(out.squeeze(-1), y)"
    )
