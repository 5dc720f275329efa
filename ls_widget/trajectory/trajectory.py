"""`Trajectory`: snapshots of a model along a training run, and their projection on a plane."""

from __future__ import annotations

import copy
import numbers
import os
import pathlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..engine.params import TensorSpec, check_finite
from ._signature import Signature, digest, fingerprint
from ._store import (
    FileSource,
    Folder,
    MemorySource,
    SnapshotMeta,
    Source,
    check_step,
    read_checkpoint,
    unwrap,
    wrapper_meta,
)
from .path import Path

Checkpoint = str | os.PathLike[str] | Mapping[str, Any] | nn.Module
"""A checkpoint file, a state dict (or a dict holding one under "model"/"state_dict"), or a
model."""

# Below this share of ‖d₁‖·‖d₂‖ the 2 × 2 system of the plane is numerically singular.
_PARALLEL = 1e-10


class Trajectory:
    """Snapshots of one model's parameters and floating buffers along a training run.

    Build one with ``lw.Recorder(model).trajectory`` (recorded while training) or
    `Trajectory.from_checkpoints` (saved elsewhere). A trajectory is immutable: a recorder's
    later snapshots belong to its next ``.trajectory``. Snapshots are held on the CPU (float64
    parameters as float64, other floating dtypes as float32) or read from their files one at a
    time.

    Attributes:
        names: the parameter names, in ``named_parameters()`` order.
        buffer_names: the floating buffers held beside them (BatchNorm running statistics).
        specs: name, shape, dtype and device of each of the template model's parameters.
    """

    def __init__(
        self,
        template: nn.Module,
        signature: Signature,
        source: Source,
        metas: Sequence[SnapshotMeta],
    ) -> None:
        self._template = template
        self._signature = signature
        self._source = source
        self._metas = tuple(metas)
        self.names: tuple[str, ...] = signature.names
        self.buffer_names: tuple[str, ...] = tuple(s.name for s in signature.buffers)
        self.specs: tuple[TensorSpec, ...] = signature.params
        self._fingerprint: str | None = None

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_checkpoints(
        cls,
        checkpoints: Checkpoint | Iterable[Checkpoint],
        model: nn.Module,
        *,
        steps: Sequence[int] | None = None,
    ) -> Trajectory:
        """A trajectory of checkpoints saved elsewhere, in the order given.

        Args:
            checkpoints: files written by ``torch.save`` of a state dict or of a dict holding
                one under ``"model"`` or ``"state_dict"`` (its ``"step"``, ``"epoch"``,
                ``"loss"``... become the snapshot's step and logs), such dicts themselves, or
                models; or the folder of a ``lw.Recorder(model, path=...)``.
            model: a model of the same architecture: the template that `model_at` copies
                (never modified).
            steps: the snapshots' steps (default: each checkpoint's ``"step"`` when all have
                one, else 0, 1, 2, ...).

        Files stay on disk and are read one at a time when needed (each is read once here to
        check it); state dicts and models are copied to CPU memory.

        Raises:
            ValueError: a checkpoint of another architecture or a mismatched state dict (the
                message names the key), no checkpoints, or `steps` of another length.
        """
        signature = Signature.of(model, "the template model")
        if isinstance(checkpoints, (str, os.PathLike)):
            root = pathlib.Path(os.fspath(checkpoints))
            if root.is_dir():
                folder = Folder(root, signature, writable=False)
                traj = cls(model, signature, folder.source(), folder.metas)
                return traj if steps is None else traj._with_steps(steps)
            checkpoints = [checkpoints]
        elif isinstance(checkpoints, (Mapping, nn.Module)):
            checkpoints = [checkpoints]
        items = list(checkpoints)
        if not items:
            raise ValueError("no checkpoints given; pass a list of files or state dicts")
        on_disk = all(isinstance(c, (str, os.PathLike)) for c in items)
        states: list[dict[str, Tensor]] = []
        found: list[int | None] = []
        logs: list[dict[str, Any]] = []
        digests: list[str] = []
        for i, item in enumerate(items):
            tensors, step, log = _read(item, i, signature)
            digests.append(digest(tensors, signature.params))
            found.append(step)
            logs.append(log)
            if not on_disk:
                states.append(tensors)
        # Each checkpoint's own step only when all have one: a mix would not be monotone.
        numbered = [s if s is not None and None not in found else i for i, s in enumerate(found)]
        metas = [SnapshotMeta(s, lg, dg)
                 for s, lg, dg in zip(numbered, logs, digests, strict=True)]
        if on_disk:
            files = [pathlib.Path(os.fspath(c)) for c in items]  # type: ignore[arg-type]
            source: Source = FileSource(files, signature)
        else:
            source = MemorySource(states)
        traj = cls(model, signature, source, metas)
        return traj if steps is None else traj._with_steps(steps)

    def _with_steps(self, steps: Sequence[int]) -> Trajectory:
        steps = [check_step(s, f"steps[{i}]") for i, s in enumerate(steps)]
        if len(steps) != len(self):
            raise ValueError(
                f"steps has {len(steps)} entries for {len(self)} snapshots; pass one per "
                "checkpoint"
            )
        metas = [SnapshotMeta(s, m.logs, m.digest, m.call)
                 for s, m in zip(steps, self._metas, strict=True)]
        return Trajectory(self._template, self._signature, self._source, metas)

    # ------------------------------------------------------------------ access
    def __len__(self) -> int:
        return len(self._metas)

    def __repr__(self) -> str:
        span = f", steps {self.steps[0]}..{self.steps[-1]}" if len(self) else ""
        n = sum(s.numel for s in self.specs)
        where = "in memory" if self.in_memory else "on disk"
        return f"Trajectory({len(self)} snapshots{span}, {n:,} parameters, {where})"

    @property
    def steps(self) -> list[int]:
        """The snapshots' steps."""
        return [m.step for m in self._metas]

    @property
    def logs(self) -> list[dict[str, Any]]:
        """The snapshots' logs (copies), e.g. ``{"epoch": 3, "train_loss": 0.41}``."""
        return [dict(m.logs) for m in self._metas]

    @property
    def in_memory(self) -> bool:
        """True when the snapshots are held in CPU memory, False when read from files."""
        return self._source.in_memory

    @property
    def fingerprint(self) -> str:
        """A digest of the parameter layout and of every snapshot's parameters, in order:
        PCA directions record it, so that a path is only ever drawn on its own plane."""
        if self._fingerprint is None:
            self._fingerprint = fingerprint(self.specs, [m.digest for m in self._metas])
        return self._fingerprint

    def _index(self, i: object) -> int:
        if isinstance(i, bool) or not isinstance(i, numbers.Integral):
            raise TypeError(f"a snapshot index is an int, got {i!r} ({type(i).__name__})")
        n = len(self)
        j = int(i) + n if int(i) < 0 else int(i)
        if not 0 <= j < n:
            raise IndexError(
                f"snapshot {int(i)} of a trajectory of {n} (indices 0..{n - 1} or -{n}..-1)"
            )
        return j

    def state(self, i: int, *, copy: bool = True) -> dict[str, Tensor]:
        """Snapshot `i` (negative counts from the end): name → tensor, parameters then
        floating buffers, on the CPU.

        ``copy=False`` returns the stored tensors themselves for snapshots held in memory
        (read them, never write to them); from files it makes no difference.
        """
        j = self._index(i)
        tensors = self._source.load(j)
        if copy and self._source.in_memory:
            return {k: v.clone() for k, v in tensors.items()}
        return dict(tensors)

    def model_at(self, i: int) -> nn.Module:
        """A deep copy of the template model with snapshot `i` loaded (on the template's
        device, in its dtypes); the template is never changed."""
        state = self.state(i, copy=False)
        current = Signature.of(self._template, "the template model")
        for s in self._signature.specs:
            now = next((t for t in current.specs if t.name == s.name), None)
            if now is None or now.shape != s.shape:
                raise ValueError(
                    f"the template model no longer has {s.name!r} of shape {tuple(s.shape)}; "
                    "it changed architecture since the snapshots were taken"
                )
        model = copy.deepcopy(self._template)
        with torch.no_grad():
            for n, p in model.named_parameters():
                if n in state:
                    p.copy_(state[n])
            for n, b in model.named_buffers():
                if n in state:
                    b.copy_(state[n])
        return model

    # ------------------------------------------------------------------ projection
    def project(
        self,
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

    def _origin(self, origin: object, d1: Mapping[str, Tensor]) -> tuple[Tensor, str]:
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

    def path_on(self, record: Any) -> Path:
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


def _read(
    item: object, i: int, signature: Signature
) -> tuple[dict[str, Tensor], int | None, dict[str, Any]]:
    """(tensors, step or None, logs) of one checkpoint of `from_checkpoints`."""
    if isinstance(item, (str, os.PathLike)):
        path = pathlib.Path(os.fspath(item))
        return read_checkpoint(path, signature, f"checkpoint {i} ({str(path)!r})")
    if isinstance(item, nn.Module):
        return signature.pick(item.state_dict(), f"checkpoint {i} (a model)"), None, {}
    if isinstance(item, Mapping):
        state, extra = unwrap(item)
        step, logs = wrapper_meta(extra)
        return signature.pick(state, f"checkpoint {i}"), step, logs
    raise TypeError(
        f"checkpoint {i} is a {type(item).__name__}; pass file paths, state dicts (or dicts "
        "with a 'model' or 'state_dict' key) or models"
    )


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
