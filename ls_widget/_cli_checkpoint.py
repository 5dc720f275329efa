"""A grid job's checkpoint beside its output: the finished points, and what the job was.

``run.h5`` gets ``run.h5.partial.npz`` while it is computed: the values and the mask of the
points evaluated so far, and the job's fingerprint (a digest of the model's weights, the data
size, the directions, the grid and the settings). It is written to a temporary file renamed
into place, so it is always complete; `--resume` reads it back, checks that the fingerprint
is the same job's (naming what differs when not), and the job evaluates only the rest. The
partial file goes once the output is written: a partial beside an output means unfinished.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._cli_errors import one_line, runtime, usage
from .engine.atomic import write_atomic

FORMAT = "ls-widget-cli-partial"
VERSION = 1

Fingerprint = dict[str, str]
"""What a job is, field by field (model, data, directions, grid, ...): text values."""

LABELS = {
    "command": "command",
    "model": "model weights (sha256)",
    "data": "data",
    "samples": "number of samples",
    "loss": "loss",
    "metrics": "metrics",
    "batch_size": "--batch-size",
    "memory": "--memory",
    "directions": "directions",
    "grid": "grid",
    "adaptive": "adaptive refinement",
    "device": "device and dtype",
    "versions": "versions of torch and ls-widget",
}


def partial_path(out: Path) -> Path:
    """The checkpoint of the job writing `out`: ``out`` + ``.partial.npz``."""
    return out.with_name(out.name + ".partial.npz")


@dataclass
class Partial:
    """A job's finished points.

    Attributes:
        names: the metric names, in the order of `values`.
        values: (metrics, rows, columns) float64; meaningful where `known`.
        known: (rows, columns) bool: the points evaluated.
    """

    names: tuple[str, ...]
    values: np.ndarray
    known: np.ndarray

    @classmethod
    def empty(cls, names: Sequence[str], shape: tuple[int, int]) -> Partial:
        """No point known yet."""
        return cls(tuple(names), np.full((len(names), *shape), np.nan),
                   np.zeros(shape, dtype=bool))

    def by_name(self) -> dict[str, np.ndarray]:
        """Metric name → its (rows, columns) array."""
        return {m: self.values[i] for i, m in enumerate(self.names)}


def write(path: Path, fingerprint: Fingerprint, partial: Partial) -> None:
    """Write the checkpoint through a temporary file renamed into place (complete or absent)."""
    header = json.dumps({"format": FORMAT, "version": VERSION, "fingerprint": fingerprint,
                         "names": list(partial.names)})
    write_atomic(path, lambda f: np.savez(f, header=np.array(header), values=partial.values,
                                          known=partial.known))


def read(path: Path, fingerprint: Fingerprint, shape: tuple[int, int]) -> Partial:
    """The checkpoint at `path`, refused unless it is the job of `fingerprint`."""
    try:
        with np.load(path, allow_pickle=False) as f:
            header = json.loads(str(f["header"]))
            values, known = f["values"], f["known"]
    except Exception as exc:
        raise runtime(
            f"--resume: cannot read the checkpoint {str(path)!r} ({one_line(exc)}); delete it "
            "or pass --force to start over"
        ) from exc
    if header.get("format") != FORMAT:
        raise usage(f"--resume: {str(path)!r} is not an ls-widget checkpoint; move it away")
    differ = differences(header.get("fingerprint", {}), fingerprint)
    if differ:
        raise usage(
            f"--resume: the checkpoint {str(path)!r} is of another job: {differ}; run with the "
            "arguments of that job, or pass --force to start this one over"
        )
    names = tuple(header["names"])
    if known.shape != shape or values.shape != (len(names), *shape):
        raise runtime(f"--resume: the checkpoint {str(path)!r} is damaged (shapes); pass --force "
                      "to start over")
    return Partial(names, values.astype(np.float64), known.astype(bool))


def differences(was: Mapping[str, str], now: Mapping[str, str]) -> str:
    """The fields that differ, in words: ``"grid was 21×21 ..., now 41×41 ..."``."""
    parts = []
    for key in dict.fromkeys([*now, *was]):
        a, b = was.get(key), now.get(key)
        if a != b:
            parts.append(f"{LABELS.get(key, key)} was {_short(a)}, now {_short(b)}")
    return "; ".join(parts)


def _short(text: str | None) -> str:
    if text is None:
        return "not recorded"
    return repr(text if len(text) <= 90 else text[:87] + "...")
