"""Files of records: the ls-widget `.npz` format (arrays plus a JSON header of provenance).

Pure format code: it reads and writes a header and named arrays, and knows nothing of the
record classes, so `records` builds on it and never the other way round.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "ls-widget"
FORMAT_VERSION = 1
SUFFIXES = (".npz",)
"""File types `save` writes and `load` reads."""


def target(path: str | os.PathLike[str]) -> str:
    """The file a record is saved to: `path` with ``.npz`` added when it has no suffix.

    Any other suffix is an error rather than a file of another format under that name.
    """
    p = Path(os.fspath(path))
    if not p.suffix:
        return str(p.with_suffix(".npz"))
    if p.suffix.lower() not in SUFFIXES:
        raise ValueError(
            f"cannot save to {str(p)!r}: unknown file type {p.suffix!r}; supported: "
            f"{', '.join(SUFFIXES)} (e.g. {p.with_suffix('.npz').name!r})"
        )
    return str(p)


def write_npz(path: str | os.PathLike[str], header: dict[str, Any], **arrays: np.ndarray) -> str:
    """Write `arrays` and the JSON `header` (format name and version added) to an .npz."""
    out = target(path)
    text = json.dumps({"format": FORMAT, "version": FORMAT_VERSION, **header},
                      default=_json_default)
    payload: dict[str, Any] = {"header": np.array(text), **arrays}
    np.savez_compressed(out, **payload)
    return out


def read_npz(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The header and arrays of a file written by `write_npz`."""
    with np.load(os.fspath(path), allow_pickle=False) as f:
        try:
            header = json.loads(str(f["header"]))
        except KeyError:
            raise ValueError(f"{path} is not an ls-widget file (no header)") from None
        if header.get("format") != FORMAT:
            raise ValueError(f"{path} is not an ls-widget file")
        return header, {k: f[k] for k in f.files if k != "header"}


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)
