"""Mining directions that show a chosen shape (Xu et al. 2024, "Visualizing, Rethinking, and
Mining the Loss Landscape of Deep Neural Networks").

Xu et al. show that random directions almost always give a v-basin, and that directions with
rarer shapes (a w-peak, a vvv-basin) can be found by optimizing the direction. Ours
(../shared/METHODS.md): projected gradient descent on d at a fixed, filter-normalized scale
(Li et al. 2018) on a shape objective (`objectives`), by Adam steps on the filter spheres
(`descent`), stopping once `classify` says the curve along d on [−span, span] has the target
shape with the asked margin and the objective agrees. Deterministic: the same bits on every
run. The model never changes; the budget in seconds only decides when to stop.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from dataclasses import dataclass

import numpy as np
from torch import Tensor, nn

from ..directions.direction import Direction
from ..directions.gaussian import _seed
from ..engine.progress import ProgressBar, check_progress
from ..results.records import Curve
from .classify import CurveShape, classify
from .construct import construct
from .descent import LR, MARGIN, STEPS, Callback, Descent, Judge, Verdict, descend
from .filter_sphere import FilterSphere
from .kinds import CONSTRUCTED, MINED, check_kind
from .objectives import Objective, objective
from .protocols import LandscapeLike, loss_name

__all__ = ["Mined", "mine"]

Start = Direction | str


@dataclass(frozen=True)
class Mined:
    """A direction mined (or constructed) for a shape, with the curve along it.

    Attributes:
        direction: the direction; provenance: ``kind="mined"``, ``target``, ``objective``,
            ``steps``, ``seconds``, ``margin``, ``reached``, ``stopped`` (why mining ended:
            "reached", "steps", "budget", "cancelled", "stationary", "non-finite"), ``seed``,
            ``start``, ``span``, ``lr``.
        curve: the curve along it on [−span, span] with n points.
        shape: ``classify(curve)``.
        reached: whether ``shape.kind`` is the target.
        history: the objective J of each direction visited: the start, then after each step
            (empty for a constructed direction).
    """

    direction: Direction
    curve: Curve
    shape: CurveShape
    reached: bool
    history: tuple[float, ...]

    def __repr__(self) -> str:
        p = self.direction.provenance
        state = "reached" if self.reached else "not reached"
        return f"Mined({p.get('target')!r} {state} after {p.get('steps', 0)} steps: {self.shape})"


def mine(
    land: LandscapeLike,
    kind: str,
    *,
    span: float = 1.0,
    n: int = 41,
    steps: int = STEPS,
    budget: float | None = None,
    seed: int = 0,
    lr: float = LR,
    margin: float = MARGIN,
    progress: bool = True,
    start: Start = "hessian",
    other: nn.Module | None = None,
    cancel: threading.Event | None = None,
    callback: Callback | None = None,
) -> Mined:
    """Optimize a filter-normalized direction until the curve along it has the shape `kind`.

    Xu et al. 2024's mining, in our operational version (module docstring, `objectives`).

    Args:
        land: the landscape (its model never changes).
        kind: ``"w-peak"`` or ``"vvv-basin"`` (mined); ``"v-basin"``, ``"v-side"`` or
            ``"w-basin"`` are constructed (`construct`; "w-basin" takes `other`).
        span: the curve is checked on [−span, span]; the objective's points scale with it.
        n: points of that curve (odd puts the model on the grid).
        steps: the most steps.
        budget: seconds of descent after which mining stops (None: no limit; the Hessian
            start's eigenpair, a second or two on the digits MLP, comes before and is not
            counted); the steps done are in the provenance. Only when to stop depends on it,
            never what a step computes.
        seed: the seed of a Gaussian start and of the Lanczos run of a Hessian start.
        lr: Adam's step per coordinate, in units of its filter's root-mean-square entry.
        margin: mining stops once the shape is reached with at least this classifier margin
            (0..1) and the objective is below −(the prominence threshold × the curve's
            range). Just reached, a shape is fragile; a few more steps deepen it: on the
            digits MLP a w-peak went from margin 0.06 to 0.74 in 40 steps.
        progress: show a bar of the steps (`tqdm.auto`) once the call has run for a second.
        start: the first direction, filter-normalized: "hessian" (the eigenvector of the most
            negative eigenvalue of H, as METHODS.md; with λmin ≥ 0 the seeded Gaussian instead,
            said in the provenance), "random" (a seeded Gaussian) or a Direction. On the
            digits MLP the Hessian start reached both shapes in fewer steps than Gaussians.
        other: the second model of a constructed "w-basin".
        cancel: a `threading.Event`; once set, mining stops before its next step and returns
            what it has (``reached`` False unless already reached).
        callback: ``fn(step, objective, direction)`` for every direction visited (step 0 is
            the start), e.g. a widget's progress.

    Returns:
        `Mined`: the direction, the curve along it, its shape, whether the target was
        reached and the objective per step.
    """
    kind = check_kind(kind, MINED + CONSTRUCTED, "mine()")
    span, n = check_scale(span, n)
    check_descent(steps, budget, lr, margin, progress, cancel, callback)
    if kind in CONSTRUCTED:
        d = construct(land, kind, other=other, seed=seed)
        curve = land.line(d, span=span, n=n, progress=False)
        shape = classify(curve, metric=loss_name(land))
        return Mined(d, curve, shape, shape.kind == kind, ())
    if other is not None:
        raise ValueError(f"other= applies to mine('w-basin') only, not to {kind!r}")
    seed = _seed(seed)
    sphere = FilterSphere(land.model, land.space)
    d0, start_text = first_direction(land, sphere, start, seed, progress)
    obj = objective(kind, span)
    judge = curve_judge(land, kind, span, n, float(margin))
    with ProgressBar(progress, total=steps, unit="step", desc=f"mining {kind}") as bar:
        run = descend(land.evaluator, sphere, obj, d0, judge, steps=steps, budget=budget,
                      lr=float(lr), cancel=cancel, callback=callback, bar=bar)
    return _mined(run, obj, seed=seed, start=start_text, span=span, lr=float(lr))


def _mined(run: Descent, obj: Objective, **extra: object) -> Mined:
    d = Direction(run.direction, **run.provenance(obj, **extra))
    record = run.verdict.record
    assert isinstance(record, Curve)  # a curve judge's
    curve = dataclasses.replace(record, directions=(d.provenance,))  # labelled by d
    return Mined(d, curve, run.verdict.shape, run.verdict.reached, run.history)


def curve_judge(land: LandscapeLike, target: str, span: float, n: int, margin: float) -> Judge:
    """A judge that classifies the curve along a direction on [−span, span].

    Done when the classifier says `target` with at least `margin`, and the objective agrees
    on the linear scale: −J ≥ the prominence threshold × the curve's range (e.g. a w-peak's
    dips lie that far below the model). The classifier may decide on a log scale, where dips
    of a thousandth of the range count; such a shape dissolves in a plane, classified on the
    linear scale (measured: a w-peak of margin 0.99 and depth 0.004 on a range of 0.16 made
    a plane of kind "other").
    """

    def judge(d: Direction, value: float) -> Verdict:
        line = land.line(d, span=span, n=n, progress=False)
        metric = loss_name(land)
        shape = classify(line, metric=metric)
        values = np.asarray(line.values[metric])
        finite = values[np.isfinite(values)]
        visible = shape.prominence * float(np.ptp(finite)) if finite.size else math.inf
        reached = shape.kind == target
        return Verdict(shape, line, reached,
                       reached and shape.margin >= margin and -value >= visible)

    return judge


def first_direction(land: LandscapeLike, sphere: FilterSphere, start: Start, seed: int,
                    progress: bool) -> tuple[dict[str, Tensor], str]:
    """The first direction, on the filter spheres, and its description for the provenance."""
    if isinstance(start, Direction):
        land.space.check_compatible(start, "start direction")
        return sphere.project(start), f"direction {start.label!r}"
    if start not in ("hessian", "random"):
        raise ValueError(f"start={start!r} is not supported; use 'hessian' (the most negative "
                         "eigenvector), 'random' (a seeded Gaussian) or a Direction")
    if start == "hessian":
        eig = land.hessian.eigen(k=1, which="bottom", seed=seed, progress=progress)
        lam = float(eig.values[0])
        if lam < 0:
            return sphere.project(eig.vectors[0]), f"hessian (eigenvalue {lam:.4g})"
        gauss = construct(land, "v-basin", seed=seed)
        return sphere.project(gauss), (f"random #{seed} (the smallest Hessian eigenvalue, "
                                       f"{lam:.4g}, is not negative)")
    return sphere.project(construct(land, "v-basin", seed=seed)), f"random #{seed}"


def check_scale(span: object, n: object, name: str = "n") -> tuple[float, int]:
    """`span` and `n` (named `name`) of a curve or plane, checked (clear errors naming the
    value)."""
    if not _positive(span):
        raise ValueError(f"span={span!r} must be a positive number (the landscape is looked at "
                         "on [−span, span]); pass e.g. span=1.0")
    if isinstance(n, bool) or not isinstance(n, int) or n < 5:
        raise ValueError(f"{name}={n!r} must be an int of at least 5 points; pass e.g. "
                         f"{name}=41")
    return float(span), n  # type: ignore[arg-type]


def check_descent(steps: object, budget: object, lr: object, margin: object, progress: object,
                  cancel: object, callback: object) -> None:
    """The arguments of a descent, checked: clear errors naming the value and the fix."""
    check_progress(progress)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps={steps!r} must be a non-negative int; pass e.g. steps=200")
    if budget is not None and not _positive(budget):
        raise ValueError(f"budget={budget!r} must be None or a positive number of seconds; "
                         "pass e.g. budget=30")
    if not _positive(lr):
        raise ValueError(f"lr={lr!r} must be a positive step size; pass e.g. lr=0.1")
    if not (_positive(margin) or _zero(margin)) or margin > 1:  # type: ignore[operator]
        raise ValueError(f"margin={margin!r} must be a number in [0, 1]; pass e.g. margin=0.5")
    if cancel is not None and not callable(getattr(cancel, "is_set", None)):
        raise TypeError(f"cancel must be a threading.Event, got {type(cancel).__name__}")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be fn(step, objective, direction), got "
                        f"{type(callback).__name__}")


def _zero(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0


def _positive(value: object) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and value > 0)
