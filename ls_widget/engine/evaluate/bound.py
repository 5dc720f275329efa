"""BoundEvaluator: an Evaluator bound to k directions, evaluating points θ₀ + Σₖ cₖ dₖ."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from ...directions.direction import Direction
from ..batch import Batches
from . import plan
from .binding import Binding
from .private_model import PrivateModel
from .run import loop, vmapped
from .scoring import Scorer


class Shared(Protocol):
    """What the bindings of one Evaluator share: its private copy, scorer, data and settings,
    and where they record the plans calibrated, what was chosen and the speed measured.

    `Evaluator` is the one implementation (evaluator.py imports this module, not the reverse).
    """

    @property
    def private(self) -> PrivateModel:
        """The private copy of the model."""

    @property
    def scorer(self) -> Scorer:
        """The loss and metrics."""

    @property
    def batches(self) -> Batches:
        """The evaluation data."""

    @property
    def memory_budget(self) -> int:
        """Bytes for precomputed activations and vmap chunks."""

    @property
    def strategy(self) -> str:
        """How points run: "auto" (fixed rules), "loop" or "vmap"."""

    @property
    def plans(self) -> dict[plan.PlanKey, plan.Plan]:
        """Calibrations so far, by which tensors move."""

    @property
    def chosen(self) -> dict[str, object]:
        """What calibration picked, for benchmarks and logs."""

    points_per_second: float | None


class BoundEvaluator:
    """An Evaluator bound to k directions: `evaluate(coeffs)` for coeffs of shape (P, k).

    Built by `Evaluator.bind`. The first binding that moves a given set of tensors
    calibrates a plan (plan.py); later ones reuse it.
    """

    def __init__(self, ev: Shared, directions: list[Direction]) -> None:
        self.ev = ev
        self._center: np.ndarray | None = None  # the values at θ₀, once `center` ran
        self.binding = b = Binding(ev.private, ev.scorer, ev.batches, ev.memory_budget,
                                   directions)
        key = plan.plan_key(b)
        if key in ev.plans:  # same tensors move as in an earlier binding: reuse its plan
            self.plan = ev.plans[key]
            plan.apply(b, self.plan)
            return
        self.plan, speed = plan.calibrate(b, ev.strategy)
        ev.chosen.clear()
        ev.chosen.update(self.plan.chosen)
        ev.points_per_second = speed
        ev.plans[key] = self.plan

    @property
    def chosen(self) -> dict[str, object]:
        """How this binding's points run (mode, vmap chunk, memory format, shortcuts), as
        results record it."""
        return dict(self.plan.chosen)

    @property
    def directions(self) -> list[Direction]:
        """The k directions."""
        return self.binding.directions

    @property
    def k(self) -> int:
        """How many directions (coefficients per point)."""
        return self.binding.k

    @property
    def mode(self) -> str:
        """How points run: "loop" or "vmap" (the plan's choice)."""
        return self.binding.mode

    @property
    def _vmap_chunk(self) -> int:
        """Points per vmap call (the plan's choice; 1 in loop mode)."""
        return self.binding.vmap_chunk

    def evaluate(self, coeffs: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
        """Metrics at θ₀ + Σₖ coeffs[p, k]·dₖ, shape (P, len(names)), float64."""
        b = self.binding
        c = np.asarray(coeffs, dtype=np.float64).reshape(-1, b.k)
        if c.shape[0] == 0:
            return np.zeros((0, len(b.scorer.names)))
        at_center = ~c.any(axis=1)
        if self._center is None or not at_center.any():
            return self._run(c)
        # θ₀ was evaluated already (`center`), on the same path: the same bits again.
        out = np.empty((c.shape[0], self._center.shape[0]))
        out[at_center] = self._center
        if not at_center.all():
            out[~at_center] = self._run(c[~at_center])
        return out

    def center(self) -> np.ndarray:
        """Metrics at θ₀, shape (len(names),), evaluated like any point of this binding and
        kept: points at θ₀ in later calls (a grid's centre) are not evaluated again."""
        if self._center is None:
            self._center = self._run(np.zeros((1, self.binding.k)))[0]
        return self._center.copy()

    def _run(self, c: np.ndarray) -> np.ndarray:
        b = self.binding
        with b.private.lock:
            if b.private.active is not b:
                b.attach()
            t0 = time.perf_counter()
            vectorize = b.mode == "vmap" and b.moves
            res = vmapped(b, c) if vectorize else loop(b, c)
            dt = time.perf_counter() - t0
        # The measured speed only feeds time estimates shown to the user (`check_job`); it
        # never decides how or with which company a point is evaluated.
        pps = c.shape[0] / max(dt, 1e-9)
        old = self.ev.points_per_second
        self.ev.points_per_second = pps if old is None else 0.7 * old + 0.3 * pps
        return res

    @property
    def tile_size(self) -> int:
        """Points per tile of a stream: a pure function of the model, data and plan (see
        `plan.tile_size`); in vmap mode a whole number of chunks."""
        b = self.binding
        return plan.tile_size(
            b.private.flops_per_point, b.n_samples, b.space.numel, b.mode, b.vmap_chunk
        )
