"""The descent that mines a direction: Adam steps on the filter spheres until a judge, which
classifies what the direction shows, says the target shape is there (Xu et al. 2024's mining,
our operational version: ../shared/METHODS.md).

Each step computes the objective and its gradient over the whole data (`objectives`), and an
Adam step on the tangent gradient mapped back onto the filter-normalized set (`SphereAdam`):
the same bits on every run. Every `CHECK_EVERY` steps, and where the descent ends, a judge
classifies the direction (a curve along it, or a plane through it). Limits (steps, seconds, a
cancel event) only decide when to stop, never what a step computes.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from ..curvature.protocols import LossEvaluator
from ..directions.direction import Direction
from ..engine.progress import ProgressBar
from ..results.records import Curve, Surface
from .filter_sphere import FilterSphere
from .objectives import Objective, is_finite, value_and_grad
from .optimizer import SphereAdam

__all__ = ["CHECK_EVERY", "LR", "MARGIN", "STEPS", "Descent", "Judge", "Verdict", "descend"]

CHECK_EVERY = 10
"""Steps between two judgements (each evaluates a curve or a plane along the direction)."""
STEPS, LR, MARGIN = 1000, 0.1, 0.5
"""The defaults of mining: the most steps, Adam's step, the margin at which it stops. Mining
stops as soon as the shape is confirmed (30–150 steps on the tests' digits MLPs); the step
budget is for sharper minima: on a digits MLP trained to a loss of 0.006 the w-peak took
~1,000 steps (14 s of CPU)."""


@dataclass(frozen=True)
class Verdict:
    """What a judge read from a direction.

    Attributes:
        shape: the classification (a `CurveShape` or a `SurfaceShape`).
        record: the curve or surface it was read from.
        reached: the shape is the target.
        done: mining may stop: reached, with the asked margin, and the objective agrees.
    """

    shape: Any
    record: Curve | Surface
    reached: bool
    done: bool


Judge = Callable[[Direction, float], Verdict]
"""``judge(direction, objective)`` → `Verdict` (the objective is NaN where unknown)."""

Callback = Callable[[int, float, Direction], object]


@dataclass(frozen=True)
class Descent:
    """The outcome of a descent.

    Attributes:
        direction: the last direction (filter-normalized tensors by name).
        verdict: the judge's reading of it.
        history: the objective of each direction visited: the start, then after each step.
        steps: the steps taken.
        seconds: how long the descent ran (the start's eigenpair not included).
        stopped: why it ended: "reached", "steps", "budget", "cancelled", "stationary"
            (a zero tangent gradient) or "non-finite" (the objective diverged).
    """

    direction: dict[str, Tensor]
    verdict: Verdict
    history: tuple[float, ...]
    steps: int
    seconds: float
    stopped: str

    def provenance(self, obj: Objective, **extra: Any) -> dict[str, Any]:
        """The mined direction's provenance: what was mined, how, and how it ended."""
        reached = self.verdict.reached
        return {
            "kind": "mined", "target": obj.target, "objective": obj.text, "steps": self.steps,
            "seconds": self.seconds, "margin": float(self.verdict.shape.margin),
            "reached": reached, "stopped": self.stopped, "norm": "filter", "ignore": "biasbn",
            "label": f"mined {obj.target} ({self.steps} steps{'' if reached else ', not reached'})",
            **extra,
        }


def descend(
    ev: LossEvaluator,
    sphere: FilterSphere,
    obj: Objective,
    start: Mapping[str, Tensor],
    judge: Judge,
    *,
    steps: int,
    budget: float | None,
    lr: float,
    cancel: threading.Event | None,
    callback: Callback | None,
    bar: ProgressBar,
) -> Descent:
    """Adam steps on the filter spheres from `start` down `obj` until `judge` says done, or a
    limit is met (steps, budget in seconds, cancel), or the objective is stationary or
    diverges. `callback(step, objective, direction)` sees every direction visited."""
    began = time.perf_counter()
    adam = SphereAdam(sphere, lr)
    moving, fixed = obj.part(True), obj.part(False)
    # J's constant part (the α = 0 terms): a value without a gradient, computed once.
    base = value_and_grad(ev, (), start, fixed)[0] if fixed.alphas else 0.0
    d, step, history = dict(start), 0, []
    verdict: Verdict | None = None
    judged, stopped = -1, ""
    while True:
        value, grad = value_and_grad(ev, sphere.moving, d, moving)
        if not is_finite(value, grad):
            stopped = "non-finite"
            break
        history.append(base + value)
        if callback is not None:
            callback(step, history[-1], Direction(d))
        if step % CHECK_EVERY == 0:
            verdict, judged = judge(Direction(d), history[-1]), step
            if verdict.done:
                stopped = "reached"
                break
        stopped = _limit(step, steps, budget, began, cancel)
        if stopped:
            break
        d, size = adam.step(d, grad)
        if size == 0.0:
            stopped = "stationary"
            break
        step += 1
        bar.update()
        bar.note(f"objective {history[-1]:.4g}, {verdict.shape.kind if verdict else '?'}")
    if verdict is None or judged != step:
        known = history[-1] if len(history) == step + 1 else math.nan
        verdict = judge(Direction(d), known)
        stopped = "reached" if verdict.done else stopped
    return Descent(d, verdict, tuple(history), step, time.perf_counter() - began, stopped)


def _limit(step: int, steps: int, budget: float | None, began: float,
           cancel: threading.Event | None) -> str:
    """Why the descent stops before another step ("" to go on)."""
    if step >= steps:
        return "steps"
    if budget is not None and time.perf_counter() - began >= budget:
        return "budget"
    if cancel is not None and cancel.is_set():
        return "cancelled"
    return ""
