"""`Recorder`: snapshots of a model taken inside its training loop."""

from __future__ import annotations

import operator
import os
import pathlib
from typing import Any

import torch
from torch import nn

from ._signature import Signature, digest
from ._store import Folder, MemorySource, SnapshotMeta, check_step, clean_logs
from .trajectory import Trajectory


class Recorder:
    """Records a model's parameters and floating buffers while it trains.

    Call `step` in the training loop; every `every`-th call (the first included) takes a
    snapshot: detached copies on the CPU (float64 tensors stay float64, other floating dtypes
    become float32), kept in memory or, with `path`, written to that folder as one file per
    snapshot. Writing is interrupt-safe: each file is complete or absent, and a new Recorder
    on the same folder resumes after the last complete snapshot (its call count and steps
    continue). The model is only read.

    Example::

        rec = lw.Recorder(model, every=100, path="runs/a")
        for step, (x, y) in enumerate(loader):
            ...
            rec.step(step=step, train_loss=loss.item())
        d1, d2 = lw.directions.pca(rec.trajectory)

    Args:
        model: the model being trained.
        every: take a snapshot on every `every`-th call of `step`.
        path: a folder for the snapshots (created if absent; resumed if it holds some),
            or None to keep them in memory.

    Raises:
        ValueError: `every` < 1, or a folder recorded from another architecture (the message
            names the tensor).
    """

    def __init__(
        self,
        model: nn.Module,
        every: int = 1,
        path: str | os.PathLike[str] | None = None,
    ) -> None:
        if isinstance(every, bool):
            raise TypeError(f"every must be an int >= 1, got {every!r}")
        try:
            every = operator.index(every)
        except TypeError:
            raise TypeError(
                f"every must be an int >= 1, got {every!r} ({type(every).__name__})"
            ) from None
        if every < 1:
            raise ValueError(f"every must be >= 1 (a snapshot every `every` calls), got {every}")
        self._model = model
        self._signature = Signature.of(model)
        self.every = every
        self._memory: MemorySource | None = None
        self._folder: Folder | None = None
        self._metas: list[SnapshotMeta]
        if path is None:
            self._memory = MemorySource([])
            self._metas = []
        else:
            self._folder = Folder(pathlib.Path(os.fspath(path)), self._signature, writable=True)
            self._metas = self._folder.metas
        self._calls = self._metas[-1].call + 1 if self._metas else 0

    @property
    def path(self) -> pathlib.Path | None:
        """The folder of the snapshots, or None when they are kept in memory."""
        return None if self._folder is None else self._folder.root

    @property
    def calls(self) -> int:
        """How many times `step` has been called (counting those of a resumed folder up to
        its last snapshot)."""
        return self._calls

    def __len__(self) -> int:
        return len(self._metas)

    def __repr__(self) -> str:
        where = "memory" if self._folder is None else repr(str(self._folder.root))
        return f"Recorder({len(self)} snapshots, every={self.every}, in {where})"

    def step(self, epoch: int | None = None, step: int | None = None, **logs: Any) -> int | None:
        """Count one call; on every `every`-th (the first included) take a snapshot.

        Args:
            epoch: stored in the snapshot's logs as ``"epoch"``.
            step: the snapshot's step (default: the number of calls before this one, so a
                call before training records step 0).
            **logs: numbers or strings to keep with the snapshot, e.g. ``train_loss=0.41``
                (0-d tensors and NumPy scalars are read out).

        Returns:
            The snapshot's index, or None when this call took no snapshot.
        """
        call = self._calls
        record: dict[str, Any] = {} if epoch is None else {"epoch": epoch}
        record.update(logs)
        cleaned = clean_logs(record)  # checked on every call, so a bad log fails at once
        number = call if step is None else check_step(step)
        self._calls += 1
        if call % self.every:
            return None
        with torch.no_grad():
            state = self._signature.pick(self._model.state_dict(keep_vars=False),
                                         "the model", copy=True)
        meta = SnapshotMeta(number, cleaned, digest(state, self._signature.params), call)
        if self._folder is not None:
            self._folder.append(state, meta)  # appends to self._metas (the same list)
        else:
            assert self._memory is not None
            self._memory.append(state)
            self._metas.append(meta)
        return len(self._metas) - 1

    @property
    def trajectory(self) -> Trajectory:
        """The snapshots taken so far, as a `Trajectory` (later ones are not in it)."""
        if self._folder is not None:
            source: Any = self._folder.source()
        else:
            assert self._memory is not None
            source = self._memory.view()
        return Trajectory(self._model, self._signature, source, list(self._metas))
