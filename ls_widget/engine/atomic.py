"""Files written whole or not at all: through a temporary file renamed into place."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable
from typing import IO


def write_atomic(target: pathlib.Path, write: Callable[[IO[bytes]], object]) -> None:
    """Call ``write(f)`` on ``.<name>.tmp`` beside `target`, flush it to disk and rename it
    to `target`: a reader (or a resumed job) finds `target` complete or absent, never cut
    short. The temporary file is removed if anything fails, a KeyboardInterrupt included."""
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
