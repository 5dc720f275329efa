"""`Path`: a training run's snapshots as points (α, β) of a plane, with their steps and logs."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..results import io
from ._store import logged_loss


def _frozen(a: Any, dtype: Any) -> np.ndarray:
    arr = np.array(a, dtype=dtype, copy=True)
    arr.setflags(write=False)
    return arr


def snapshot_label(step: int, logs: Mapping[str, Any]) -> str:
    """``"epoch 3 · step 120 · loss 0.41"`` (the parts that are known)."""
    parts = []
    epoch = logs.get("epoch")
    if epoch is not None:
        parts.append(f"epoch {epoch}")
    parts.append(f"step {step}")
    loss = logged_loss(logs)
    if not math.isnan(loss):
        parts.append(f"loss {loss:.3g}")
    return " · ".join(parts)


@dataclass(frozen=True, eq=False)
class Path:
    """Where a trajectory's snapshots lie in the plane of two directions.

    Snapshot i sits at ``origin + alpha[i]·d₁ + beta[i]·d₂ + (a part off the plane)``, with
    (α, β) the least-squares coordinates (the plain projections when d₁, d₂ are orthonormal,
    as PCA directions are). Draw it over a surface of the same plane computed around the same
    origin: ``surf.plot(path=path)``.

    Attributes:
        alpha: α per snapshot, shape (T,).
        beta: β per snapshot, shape (T,).
        steps: the snapshots' steps, shape (T,).
        logs: the snapshots' logs (``{"epoch": 3, "train_loss": 0.41}``, ...).
        loss: the logged ``"train_loss"`` (else ``"loss"``) per snapshot, NaN where none.
        labels: one text per snapshot, e.g. ``"step 120 · loss 0.41"``.
        directions: the provenance of d₁ and d₂.
        origin: what the coordinates are relative to, in words (``"snapshot 9 (step 90)"``).
    """

    alpha: np.ndarray
    beta: np.ndarray
    steps: np.ndarray
    logs: tuple[dict[str, Any], ...] = ()
    directions: tuple[dict[str, Any], ...] = ()
    origin: str = ""
    loss: np.ndarray = field(init=False)
    labels: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "alpha", _frozen(self.alpha, np.float64))
        object.__setattr__(self, "beta", _frozen(self.beta, np.float64))
        object.__setattr__(self, "steps", _frozen(self.steps, np.int64))
        n = len(self.alpha)
        logs = tuple(dict(d) for d in self.logs) or tuple({} for _ in range(n))
        object.__setattr__(self, "logs", logs)
        object.__setattr__(self, "directions", tuple(dict(d) for d in self.directions))
        for name, arr in (("beta", self.beta), ("steps", self.steps), ("logs", logs)):
            if len(arr) != n:
                raise ValueError(f"a Path has one {name} entry per snapshot: {len(arr)} for {n}")
        object.__setattr__(self, "loss", _frozen([logged_loss(d) for d in logs], np.float64))
        object.__setattr__(self, "labels", tuple(
            snapshot_label(int(s), d) for s, d in zip(self.steps, logs, strict=True)))

    def __len__(self) -> int:
        return len(self.alpha)

    def __repr__(self) -> str:
        span = f"steps {self.steps[0]}..{self.steps[-1]}" if len(self) else "empty"
        return f"Path({len(self)} snapshots, {span}, origin={self.origin!r})"

    def to_dict(self) -> dict[str, Any]:
        """The path as JSON-ready lists and dicts."""
        return {
            "kind": "path",
            "alpha": self.alpha.tolist(),
            "beta": self.beta.tolist(),
            "steps": self.steps.tolist(),
            "loss": [None if math.isnan(v) else v for v in self.loss.tolist()],
            "labels": list(self.labels),
            "logs": [dict(d) for d in self.logs],
            "directions": [dict(d) for d in self.directions],
            "origin": self.origin,
        }

    def save(self, path: str | os.PathLike[str]) -> str:
        """Write an .npz (the arrays, and a JSON header with the logs and the directions'
        provenance); returns the path written (``.npz`` added to a path without a suffix)."""
        header = {"kind": "path", "logs": list(self.logs), "directions": list(self.directions),
                  "origin": self.origin, "meta": {}, "metrics": []}
        return io.write_npz(path, header, alpha=self.alpha, beta=self.beta, steps=self.steps)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Path:
        """Read a path written by `save`."""
        header, arrays = io.read_npz(path)
        if header.get("kind") != "path":
            raise ValueError(
                f"{os.fspath(path)!r} holds a {header.get('kind')}, not a path; read it with "
                "lw.load"
            )
        return cls(alpha=arrays["alpha"], beta=arrays["beta"], steps=arrays["steps"],
                   logs=tuple(header["logs"]), directions=tuple(header["directions"]),
                   origin=str(header["origin"]))

