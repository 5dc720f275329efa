"""Job sizes: refuse grids over a point limit, with an estimate of their time and memory."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

DEFAULT_MAX_POINTS = 1_000_000
"""Grids with more points than this are refused unless ``max_points=`` or ``force=True``."""

# Bytes per point and metric held while a grid is computed: the stream's values and its
# error estimate, the assembled arrays and the finished record (float64 each).
_BYTES_PER_METRIC = 3 * 8
_BYTES_PER_POINT = 8 + 3  # the error estimate and three boolean masks


class JobTooLarge(ValueError):
    """A grid over the point limit; the message states the estimate and how to proceed."""


@dataclass(frozen=True)
class JobEstimate:
    """What a job will cost, before it runs.

    Attributes:
        points: grid points to evaluate.
        seconds: estimated wall time at the speed measured on this machine so far.
        bytes: memory for the values held while computing.
    """

    points: int
    seconds: float
    bytes: int

    @classmethod
    def of(cls, points: int, metrics: int, points_per_second: float) -> JobEstimate:
        """The estimate for `points` points of `metrics` values each."""
        per_point = metrics * _BYTES_PER_METRIC + _BYTES_PER_POINT
        return cls(int(points), points / points_per_second, int(points) * per_point)

    def describe(self) -> str:
        """E.g. "25,010,001 points: about 1.48 GB and 135 h at the measured 51 points/s"."""
        rate = self.points / self.seconds if self.seconds > 0 else math.inf
        return (f"{self.points:,} points: about {_human_bytes(self.bytes)} and "
                f"{_human_seconds(self.seconds)} at the measured {rate:,.0f} points/s")


def over_limit(points: int, max_points: int | None, force: bool) -> int | None:
    """The limit `points` exceeds (None when the job may run); checks `max_points`.

    The decision depends on the point count only, never on measured speed.
    """
    limit = DEFAULT_MAX_POINTS if max_points is None else max_points
    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1:
        raise ValueError(f"max_points must be a positive int, got {max_points!r}")
    return None if force or points <= limit else int(limit)


def refusal(estimate: JobEstimate, limit: int) -> JobTooLarge:
    """The error for a job over `limit` points: the estimate and how to proceed."""
    return JobTooLarge(
        f"this grid is {estimate.describe()}, over the limit of max_points={limit:,}. "
        f"Use fewer points (a smaller n), or pass max_points={estimate.points} (or "
        "force=True) to run it anyway"
    )


def _human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB"):
        if n < 1000:
            return f"{n:.3g} {unit}"
        n /= 1000
    return f"{n:.3g} GB"


def _human_seconds(s: float) -> str:
    if s < 120:
        return f"{s:.3g} s"
    if s < 7200:
        return f"{s / 60:.3g} min"
    return f"{s / 3600:.3g} h"


class _Host(Protocol):
    """What `JobSizing` uses of its Landscape."""

    @property
    def metric_names(self) -> tuple[str, ...]: ...

    @property
    def points_per_second(self) -> float | None: ...

    def center(self) -> dict[str, float]: ...


class JobSizing:
    """`estimate` and `check_job`: a mixin of `Landscape`."""

    def estimate(self: _Host, points: int, metrics: int | None = None) -> JobEstimate:
        """Time and memory of evaluating `points` grid points (see `JobEstimate`).

        The time uses the speed measured by earlier evaluations; before any, the model is
        evaluated once at θ₀ to measure it.
        """
        if self.points_per_second is None:
            self.center()
        m = len(self.metric_names) if metrics is None else metrics
        return JobEstimate.of(points, m, self.points_per_second or 1.0)

    def check_job(
        self: _Host,
        points: int,
        *,
        max_points: int | None = None,
        force: bool = False,
        metrics: int | None = None,
    ) -> None:
        """Raise `JobTooLarge`, stating the estimate, for a grid of more than `max_points`
        points (default one million) unless `force`. Decided on the point count alone."""
        limit = over_limit(points, max_points, force)
        if limit is not None:
            raise refusal(JobSizing.estimate(self, points, metrics), limit)
