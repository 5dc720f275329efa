"""The output file of a command: checked before any work, written whole or not at all."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ._cli_checkpoint import Fingerprint, differences, partial_path
from ._cli_errors import one_line, usage
from .engine.atomic import write_atomic
from .results import Curve, Surface, load


def record_target(out: str, kind: str) -> Path:
    """The file a `kind` ("curve" or "surface") record saved to `out` lands in, checked by
    saving a tiny record of that kind to the same file type first: every type `save`
    supports works, and an unsupported one is refused before hours of work, in `save`'s
    words."""
    probe: Curve | Surface
    if kind == "curve":
        probe = Curve(x=np.array([0.0, 1.0]), values={"loss": np.zeros(2)})
    else:
        probe = Surface(x=np.array([0.0, 1.0]), y=np.array([0.0, 1.0]),
                        values={"loss": np.zeros((2, 2))})
    path = Path(out)
    with tempfile.TemporaryDirectory(prefix="ls-widget-") as tmp:
        try:
            written = Path(probe.save(Path(tmp) / f"probe{path.suffix}"))
        except Exception as exc:
            raise usage(f"--out {out!r}: {one_line(exc)}") from exc
    return path if path.suffix else path.with_suffix(written.suffix)


def check_target(path: Path, *, force: bool, resume: bool) -> bool:
    """Whether the job should run: False when `--resume` finds `path` already finished.

    Refuses an existing output (unless `force`) and a stopped job's checkpoint that neither
    `resume` nor `force` was given for.
    """
    if path.is_dir():
        raise usage(f"--out {str(path)!r} is a folder; give a file name")
    if not path.parent.is_dir():
        raise usage(f"--out {str(path)!r}: no folder {str(path.parent)!r}; create it first")
    partial = partial_path(path)
    if partial.exists() and not (resume or force):
        raise usage(
            f"--out {str(path)!r}: a stopped job left {str(partial)!r}; pass --resume to "
            "continue it, or --force to start over"
        )
    if path.exists() and not partial.exists() and not force:
        if resume:
            return False
        raise usage(f"--out {str(path)!r} exists; pass --force to overwrite it")
    return True


def check_finished(path: Path, fingerprint: Fingerprint) -> str:
    """What to say when `--resume` finds `path` finished; refuses it if it is another job's
    (when its file type keeps the record's meta)."""
    try:
        meta: Any = load(path).meta
    except Exception:
        meta = {}
    job = meta.get("job") if isinstance(meta, dict) else None
    if isinstance(job, dict):
        differ = differences(job, fingerprint)
        if differ:
            raise usage(
                f"--resume: {str(path)!r} is the finished output of another job: {differ}; "
                "pass --force to compute this one over it"
            )
    return f"{path} is already complete; nothing to resume (--force computes it again)"


def save_record(record: Curve | Surface, path: Path) -> None:
    """Save `record` to `path` through a temporary file renamed into place."""
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    try:
        written = Path(record.save(tmp))
        os.replace(written, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save_text(text: str, path: Path) -> None:
    """Write `text` to `path` through a temporary file renamed into place."""
    write_atomic(path, lambda f: f.write(text.encode()))
