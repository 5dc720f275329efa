"""`Trajectory`: snapshots of a model along a training run, and their projection on a plane."""

from __future__ import annotations

import copy
import numbers
import os
import pathlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ..engine.params import TensorSpec
from ._projection import ProjectionMixin
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

Checkpoint = str | os.PathLike[str] | Mapping[str, Any] | nn.Module
"""A checkpoint file, a state dict (or a dict holding one under "model"/"state_dict"), or a
model."""


class Trajectory(ProjectionMixin):
    """Snapshots of one model's parameters and floating buffers along a training run.

    Build one with ``lw.Recorder(model).trajectory`` (recorded while training) or
    `Trajectory.from_checkpoints` (saved elsewhere). A trajectory is immutable: a recorder's
    later snapshots belong to its next ``.trajectory``. Snapshots are held on the CPU (float64
    parameters as float64, other floating dtypes as float32) or read from their files one at a
    time.

    Projection on a plane (`project`, `path_on`) comes from `ProjectionMixin`.

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
