"""The projection side of a `Trajectory`: the snapshots' coordinates on a plane.

A mixin of `Trajectory` (trajectory.py), kept apart because it is another responsibility: it
reads the trajectory's snapshots and solves for their coordinates along two directions.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor, nn

from ..engine.params import TensorSpec, check_finite
from ._signature import Signature
from ._store import SnapshotMeta, Source, unwrap
from .path import Path

# Below this share of ‖d₁‖·‖d₂‖ the 2 × 2 system of the plane is numerically singular.
_PARALLEL = 1e-10


class _Host(Protocol):
    """What the mixin uses of its Trajectory."""

    names: tuple[str, ...]
    specs: tuple[TensorSpec, ...]
    _signature: Signature
    _source: Source
    _metas: tuple[SnapshotMeta, ...]

    def __len__(self) -> int: ...

    @property
    def steps(self) -> list[int]: ...

    @property
    def logs(self) -> list[dict[str, Any]]: ...

    @property
    def fingerprint(self) -> str: ...

    def _index(self, i: object) -> int: ...

    def _origin(self, origin: object, d1: Mapping[str, Tensor]) -> tuple[Tensor, str]: ...


class ProjectionMixin:
    """`project` and `path_on`: a mixin of `Trajectory`."""

    def project(
        self: _Host,
        d1: Mapping[str, Tensor],
        d2: Mapping[str, Tensor],
        origin: int | nn.Module | Mapping[str, Any] | None = None,
    ) -> Path:
        """The snapshots' coordinates (α, β) in the plane ``origin + α·d₁ + β·d₂``.

        (α, β) minimizes ‖θᵢ − origin − α·d₁ − β·d₂‖ over the parameters (the 2 × 2 normal
        equations, in float64): the plain projections when d₁, d₂ are orthonormal, as PCA
        directions are; the exact coordinates of a snapshot that lies in the plane whatever
        the directions.

        Args:
            d1: the first direction, keyed like the model's parameters (`lw.Direction`).
            d2: the second.
            origin: ``None``: the centre of PCA directions of this trajectory (the snapshot
                recorded in d1's provenance), else the last snapshot; a snapshot index; a
                model; or a state dict.

        Raises:
            ValueError: directions of another architecture (the key is named), parallel or
                zero directions, or PCA directions of another trajectory with
                ``origin=None``.
        """
        dirs = [_direction(d, f"d{k}", self.specs) for k, d in ((1, d1), (2, d2))]
        gram = np.array([[_dot(a, b) for b in dirs] for a in dirs])
        for k in range(2):
            if gram[k, k] == 0.0:
                raise ValueError(f"d{k + 1} is zero; project on two nonzero directions")
        if gram[0, 0] * gram[1, 1] - gram[0, 1] ** 2 <= _PARALLEL * gram[0, 0] * gram[1, 1]:
            raise ValueError(
                "d1 and d2 are parallel, so they span no plane; pass two independent "
                "directions (e.g. lw.directions.orthogonalize(d2, d1))"
            )
        center, where = self._origin(origin, d1)
        basis = torch.stack([torch.cat([d[n] for n in self.names]) for d in dirs])  # 2 × P
        rhs = np.zeros((2, len(self)))
        for i in range(len(self)):
            snap = self._source.load(i)
            r = torch.cat([snap[n].reshape(-1) for n in self.names]).double().sub_(center)
            rhs[:, i] = torch.mv(basis, r).numpy()
        coords = np.linalg.solve(gram, rhs) if len(self) else np.zeros((2, 0))
        return Path(alpha=coords[0], beta=coords[1], steps=np.asarray(self.steps, np.int64),
                    logs=tuple(self.logs), directions=(_provenance(d1), _provenance(d2)),
                    origin=where)

    def _origin(self: _Host, origin: object, d1: Mapping[str, Tensor]) -> tuple[Tensor, str]:
        """The origin's parameters (flat in `names` order, float64, CPU), and in words."""
        if origin is None:
            if not len(self):
                raise ValueError("the trajectory has no snapshots to project")
            prov = _provenance(d1)
            index = len(self) - 1
            if prov.get("kind") == "pca":
                if prov.get("trajectory") != self.fingerprint:
                    raise ValueError(
                        "origin=None means the centre of the PCA, a snapshot of the trajectory "
                        "d1 came from, which is another one; pass origin= a model, a state "
                        "dict or a snapshot index of this trajectory"
                    )
                index = int(prov["center_index"])
            origin = index
        if isinstance(origin, numbers.Integral) and not isinstance(origin, bool):
            j = self._index(origin)
            tensors = self._source.load(j)
            where = f"snapshot {j} (step {self._metas[j].step})"
        elif isinstance(origin, nn.Module):
            tensors = self._signature.pick(origin.state_dict(), "the origin model",
                                           params_only=True, copy=False)
            where = "model"
        elif isinstance(origin, Mapping):
            state, _ = unwrap(origin)
            tensors = self._signature.pick(state, "the origin state dict", params_only=True,
                                           copy=False)
            where = "state dict"
        else:
            raise TypeError(
                f"origin must be None, a snapshot index, a model or a state dict, got "
                f"{type(origin).__name__}"
            )
        return torch.cat([tensors[n].reshape(-1) for n in self.names]).double(), where

    def path_on(self: _Host, record: Any) -> Path:
        """This trajectory's path on the plane of a surface computed along PCA directions of
        it (``lw.directions.pca(traj)``): the coordinates recorded in their provenance.

        ``surf.plot(path=traj)`` calls this. For other directions, project explicitly:
        ``surf.plot(path=traj.project(d1, d2))``.
        """
        provs = [dict(d) for d in getattr(record, "directions", ())]
        if len(provs) != 2:
            raise ValueError(
                f"a path is drawn on a plane; this record has {len(provs)} direction(s)"
            )
        labels = ", ".join(repr(str(p.get("label", p.get("kind")))) for p in provs)
        if any(p.get("kind") != "pca" for p in provs):
            raise ValueError(
                f"the surface's directions ({labels}) are not PCA directions of a trajectory, "
                "so the snapshots' coordinates are unknown: pass path=traj.project(d1, d2) with "
                "the directions the surface was computed along"
            )
        if any(p.get("trajectory") != self.fingerprint for p in provs):
            raise ValueError(
                f"the surface's PCA directions ({labels}) come from another trajectory; pass "
                "that one, or path=traj.project(d1, d2, origin=...) to draw this one on them"
            )
        alpha, beta = (np.asarray(p["coordinates"], dtype=np.float64) for p in provs)
        c = int(provs[0]["center_index"])
        return Path(alpha=alpha, beta=beta, steps=np.asarray(self.steps, np.int64),
                    logs=tuple(self.logs), directions=tuple(provs),
                    origin=f"snapshot {c} (step {self._metas[c].step})")


def _provenance(d: Mapping[str, Tensor]) -> dict[str, Any]:
    prov = getattr(d, "provenance", None)
    return dict(prov) if isinstance(prov, Mapping) else {"kind": "custom", "label": "custom"}


def _direction(
    d: Mapping[str, Tensor], what: str, specs: Sequence[TensorSpec]
) -> dict[str, Tensor]:
    """A direction's parameters, flat in float64 on the CPU, after checking its keys."""
    if not isinstance(d, Mapping):
        raise TypeError(
            f"{what} is a {type(d).__name__}; pass a direction (lw.Direction, or a dict "
            "name → tensor shaped like the model's parameters)"
        )
    names = {s.name for s in specs}
    for s in specs:
        if s.name not in d:
            raise ValueError(
                f"{what} has no {s.name!r}; it was built for another architecture"
            )
        t = d[s.name]
        if not isinstance(t, Tensor) or tuple(t.shape) != tuple(s.shape):
            shape = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
            raise ValueError(
                f"{what} has {shape} for {s.name!r} where the model has {tuple(s.shape)}; it "
                "was built for another architecture"
            )
    extra = [k for k in d if k not in names]
    if extra:
        raise ValueError(f"{what} has {extra[0]!r}, which the model does not have")
    flat = {s.name: d[s.name].detach().to("cpu", torch.float64).reshape(-1) for s in specs}
    check_finite(flat, f"{what}'s tensor", "rebuild the direction from finite parameters")
    return flat


def _dot(a: Mapping[str, Tensor], b: Mapping[str, Tensor]) -> float:
    return float(sum(float(torch.dot(a[k], b[k])) for k in a))
