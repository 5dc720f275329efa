"""Where snapshots live: CPU memory, checkpoint files, or a recorder's folder.

A folder holds one ``torch.save`` file per snapshot, ``snapshot-000012.pt``, written to a
temporary name and renamed into place (so a file under its final name is always complete),
and a small JSON index of the steps, logs and digests, rewritten the same way after each
snapshot. Reopening a folder keeps the snapshots up to the last complete one: an index entry
whose file is missing or has another size ends the run there, a file the index does not list
yet (the process stopped between the two renames) is read back, and leftover temporary files
are ignored (and removed when the folder is opened for recording).
"""

from __future__ import annotations

import json
import math
import numbers
import operator
import pathlib
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import Tensor

from ..engine.atomic import write_atomic
from ._signature import Signature, digest

INDEX = "index.json"
FORMAT = "ls-widget-trajectory"
VERSION = 1


_SNAPSHOT = re.compile(r"snapshot-(\d{6,})\.pt")


def snapshot_file(i: int) -> str:
    """The file name of snapshot `i` in a recorder's folder."""
    return f"snapshot-{i:06d}.pt"


@dataclass(frozen=True)
class SnapshotMeta:
    """What is known of a snapshot without loading it."""

    step: int
    logs: dict[str, Any] = field(default_factory=dict)
    digest: str = ""
    call: int = 0


def check_step(step: object, what: str = "step") -> int:
    """An int step (NumPy and 0-d integer tensors count; floats and bools do not)."""
    if isinstance(step, Tensor) and step.numel() == 1 and not step.is_floating_point():
        step = step.item()
    if not isinstance(step, bool):
        try:
            return operator.index(step)  # type: ignore[arg-type]
        except TypeError:
            pass
    raise TypeError(f"{what} must be an int, got {step!r} ({type(step).__name__})")


def clean_logs(logs: Mapping[str, Any]) -> dict[str, Any]:
    """The logs as JSON values: numbers (0-d tensors and NumPy scalars read out), strings,
    bools and None; anything else is an error naming the key."""
    out: dict[str, Any] = {}
    for key, value in logs.items():
        v = value
        if isinstance(v, Tensor) and v.numel() == 1:
            v = v.item()
        elif hasattr(v, "item") and getattr(v, "shape", None) == ():
            v = v.item()  # a NumPy scalar or 0-d array
        if isinstance(v, bool) or v is None or isinstance(v, str):
            out[key] = v
        elif isinstance(v, numbers.Integral):
            out[key] = int(v)
        elif isinstance(v, numbers.Real):
            out[key] = float(v)
        else:
            raise TypeError(
                f"log {key!r} is a {type(value).__name__}; logs are numbers or strings "
                f"(e.g. {key}=float(value))"
            )
    return out


def logged_loss(logs: Mapping[str, Any]) -> float:
    """The recorded training loss ("train_loss", else "loss"), or NaN."""
    for key in ("train_loss", "loss"):
        v = logs.get(key)
        if isinstance(v, numbers.Real) and not isinstance(v, bool):
            return float(v)
    return math.nan


class Source(Protocol):
    """Loads snapshot `i`'s stored tensors (parameters, then floating buffers)."""

    @property
    def in_memory(self) -> bool:
        """True when loading costs nothing (the snapshots are held in CPU memory)."""
        ...

    def load(self, i: int) -> dict[str, Tensor]:
        """Snapshot `i`; from memory these are the stored tensors themselves (read only)."""
        ...


class MemorySource:
    """Snapshots held in CPU memory (never modified once stored)."""

    in_memory = True

    def __init__(self, states: Sequence[dict[str, Tensor]]) -> None:
        self._states = list(states)

    def load(self, i: int) -> dict[str, Tensor]:
        """Snapshot `i` (the stored tensors themselves)."""
        return self._states[i]

    def append(self, state: dict[str, Tensor]) -> None:
        """Store one more snapshot."""
        self._states.append(state)

    def view(self) -> MemorySource:
        """A source over the snapshots stored so far (later appends do not show in it)."""
        return MemorySource(self._states)


def _load_file(path: pathlib.Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"no checkpoint file {str(path)!r}") from None
    except Exception as exc:
        raise ValueError(
            f"could not read {str(path)!r} with torch.load(weights_only=True): {exc}. If the "
            "file holds more than tensors and plain containers, load it yourself "
            "(torch.load(path, weights_only=False)) and pass its state dict"
        ) from exc


def unwrap(obj: Any) -> tuple[Any, dict[str, Any]]:
    """(state dict, the wrapper's other entries) of a checkpoint: a state dict itself, or a
    dict holding one under ``"model"`` or ``"state_dict"``."""
    if isinstance(obj, Mapping):
        for key in ("model", "state_dict"):
            inner = obj.get(key)
            if isinstance(inner, Mapping):
                return inner, {k: v for k, v in obj.items() if k != key}
    return obj, {}


def wrapper_meta(extra: Mapping[str, Any]) -> tuple[int | None, dict[str, Any]]:
    """(step, logs) from a checkpoint wrapper: its ``"step"``, its ``"logs"`` dict (as this
    package's files have) and its scalar entries (``"epoch"``, ``"loss"``, ...)."""
    step = extra.get("step")
    logs: dict[str, Any] = {}
    if isinstance(extra.get("logs"), Mapping):
        logs.update(clean_logs(extra["logs"]))
    for k, v in extra.items():
        if k in ("step", "logs", "call", "digest") or k in logs:
            continue
        if isinstance(v, (numbers.Real, str)) or (isinstance(v, Tensor) and v.numel() == 1):
            logs.update(clean_logs({k: v}))
    ok = step is not None and not isinstance(step, bool) and isinstance(step, numbers.Integral)
    return (int(step) if ok else None), logs  # type: ignore[arg-type]


class FileSource:
    """Snapshots in checkpoint files, loaded one at a time on demand."""

    in_memory = False

    def __init__(self, files: Sequence[pathlib.Path], signature: Signature) -> None:
        self._files = list(files)
        self._signature = signature

    def load(self, i: int) -> dict[str, Tensor]:
        """Snapshot `i`, read from its file and checked against the model."""
        path = self._files[i]
        state, _ = unwrap(_load_file(path))
        return self._signature.pick(state, f"snapshot {i} ({str(path)!r})", copy=False)


def read_checkpoint(
    path: pathlib.Path, signature: Signature, what: str
) -> tuple[dict[str, Tensor], int | None, dict[str, Any]]:
    """(tensors, step or None, logs) of one checkpoint file."""
    state, extra = unwrap(_load_file(path))
    tensors = signature.pick(state, what, copy=False)
    step, logs = wrapper_meta(extra)
    return tensors, step, logs


class Folder:
    """A recorder's folder: snapshot files and their index (see the module's docstring).

    Args:
        root: the folder (created when `writable` and absent).
        signature: the model's; a folder recorded from another architecture is refused.
        writable: open for appending (removes leftover temporary files and brings the index
            up to date); otherwise nothing on disk changes.
    """

    def __init__(self, root: pathlib.Path, signature: Signature, *, writable: bool) -> None:
        self.root = root
        self.signature = signature
        if root.exists() and not root.is_dir():
            raise ValueError(f"{str(root)!r} is a file; pass a folder for the snapshots")
        if not root.exists():
            if not writable:
                raise FileNotFoundError(f"no trajectory folder {str(root)!r}")
            root.mkdir(parents=True)
        self.metas: list[SnapshotMeta] = []
        self._sizes: list[int] = []  # bytes of each snapshot file, as the index records them
        indexed = self._read_index()
        stale = self._reconcile(indexed)
        if writable:
            self._check_no_gap()
            for tmp in root.glob(".snapshot-*.pt.tmp"):
                tmp.unlink(missing_ok=True)
            if stale or not (root / INDEX).exists():
                self._write_index()

    def _check_no_gap(self) -> None:
        """Refuse to append when snapshot files lie beyond a missing or broken one: the next
        snapshots would be numbered among them, and reopening would mix the two runs."""
        n = len(self.metas)
        later = sorted(p.name for p in self.root.glob("snapshot-*.pt")
                       if (m := _SNAPSHOT.fullmatch(p.name)) and int(m.group(1)) > n)
        if later:
            raise ValueError(
                f"{str(self.root)!r}: {snapshot_file(n)} is missing or incomplete, but "
                f"{later[0]} and {len(later) - 1} more follow it; move the files from "
                f"{snapshot_file(n)} on out of the folder, or record into a new folder"
            )

    def _read_index(self) -> list[dict[str, Any]]:
        path = self.root / INDEX
        if not path.exists():
            return []
        try:
            index = json.loads(path.read_text())
        except ValueError as exc:
            raise ValueError(
                f"{str(path)!r} is not a readable trajectory index ({exc}); delete it and the "
                "snapshots are read back from their files"
            ) from exc
        if not isinstance(index, dict) or index.get("format") != FORMAT:
            raise ValueError(
                f"{str(path)!r} is not an ls-widget trajectory index; record into another folder"
            )
        self.signature.check_described(index["tensors"], f"the folder {str(self.root)!r}")
        return list(index.get("snapshots", []))

    def _reconcile(self, indexed: list[dict[str, Any]]) -> bool:
        """Keep the snapshots up to the last complete one; True when the index needs a
        rewrite."""
        for i, entry in enumerate(indexed):
            path = self.root / snapshot_file(i)
            if not path.exists() or path.stat().st_size != entry.get("bytes"):
                warnings.warn(
                    f"{str(path)!r} is missing or incomplete; the trajectory in "
                    f"{str(self.root)!r} keeps its first {i} snapshots",
                    UserWarning, stacklevel=4,
                )
                return True
            self.metas.append(SnapshotMeta(int(entry["step"]), dict(entry.get("logs", {})),
                                           str(entry["digest"]), int(entry.get("call", 0))))
            self._sizes.append(int(entry["bytes"]))
        stale = False
        while (path := self.root / snapshot_file(len(self.metas))).exists():
            # Renamed into place but not indexed: the process stopped in between.
            try:
                obj = _load_file(path)
                state, extra = unwrap(obj)
                tensors = self.signature.pick(state, repr(str(path)), copy=False)
            except (ValueError, TypeError) as exc:
                warnings.warn(f"ignoring {str(path)!r} and what follows: {exc}", UserWarning,
                              stacklevel=4)
                break
            step, logs = wrapper_meta(extra)
            call = extra.get("call", 0)
            self.metas.append(SnapshotMeta(
                step if step is not None else len(self.metas), logs,
                digest(tensors, self.signature.params),
                int(call) if isinstance(call, int) else 0,
            ))
            self._sizes.append(path.stat().st_size)
            stale = True
        return stale

    def _write_index(self) -> None:
        entries = [
            {"file": snapshot_file(i), "bytes": size, "step": m.step, "call": m.call,
             "logs": m.logs, "digest": m.digest}
            for i, (m, size) in enumerate(zip(self.metas, self._sizes, strict=True))
        ]
        text = json.dumps({"format": FORMAT, "version": VERSION,
                           "tensors": self.signature.describe(), "snapshots": entries},
                          indent=1)
        write_atomic(self.root / INDEX, lambda f: f.write(text.encode()))

    def append(self, state: dict[str, Tensor], meta: SnapshotMeta) -> None:
        """Write one more snapshot, then the index."""
        payload = {"state_dict": state, "step": meta.step, "call": meta.call,
                   "logs": meta.logs, "digest": meta.digest}
        path = self.root / snapshot_file(len(self.metas))
        write_atomic(path, lambda f: torch.save(payload, f))
        self.metas.append(meta)
        self._sizes.append(path.stat().st_size)
        self._write_index()

    def source(self) -> FileSource:
        """The snapshots written so far, as a source."""
        files = [self.root / snapshot_file(i) for i in range(len(self.metas))]
        return FileSource(files, self.signature)
