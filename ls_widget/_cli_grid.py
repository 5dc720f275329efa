"""A line or plane computed tile by tile, its finished points checkpointed for `--resume`.

Which points are computed, in which tiles, is the engine's (a pure function of the inputs);
the clock decides only when the checkpoint is written. On an interrupt (Ctrl-C, SIGTERM from
a scheduler) the finished tiles are written before the command exits.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import _cli_checkpoint as checkpoint
from ._cli_checkpoint import Fingerprint, Partial
from ._cli_errors import CliError
from .directions import Direction
from .engine.landscape import Landscape
from .engine.progress import DELAY_S, TqdmBar
from .engine.resume import resume
from .engine.sampling import Grid


@dataclass(frozen=True)
class GridJob:
    """One line or plane of a command.

    Attributes:
        land: the landscape.
        directions: 1 (line) or 2 (plane).
        grid: the grid.
        out: the output file (its checkpoint lies beside it).
        fingerprint: what the job is (`_cli_checkpoint`).
        adaptive, tol: adaptive refinement.
        max_points: the job size limit (None: the engine's).
    """

    land: Landscape
    directions: Sequence[Direction]
    grid: Grid
    out: Path
    fingerprint: Fingerprint
    adaptive: bool = False
    tol: float = 0.01
    max_points: int | None = None


class Interrupted(Exception):
    """The job stopped between or inside tiles; its finished points are in the checkpoint.

    Args:
        message: what was kept, and how to continue.
        status: the exit status (130 for Ctrl-C, 143 for SIGTERM).
    """

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def run(job: GridJob, *, resume_from: bool, every: float, progress: bool, force: bool = False
        ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Compute the job's grid: (metric name → values of the grid's shape, evaluated mask).

    With `resume_from` and a checkpoint of this job beside the output, its points are not
    evaluated again (a checkpoint of another job is refused, or with `force` replaced). The
    checkpoint is rewritten after a tile that finished new points once `every` seconds passed
    since the last write (0: after every such tile), and on an interrupt.
    """
    grid, names = job.grid, job.land.metric_names
    path = checkpoint.partial_path(job.out)
    done = Partial.empty(names, grid.shape)
    if resume_from and path.exists():
        try:
            done = checkpoint.read(path, job.fingerprint, grid.shape)
            print(f"resuming from {path}: {int(done.known.sum())} of {grid.size} points done",
                  file=sys.stderr)
        except CliError as exc:
            if not force:
                raise
            print(f"{exc}; starting over (--force)", file=sys.stderr)
    elif resume_from:
        print(f"no checkpoint at {path}; starting from the beginning", file=sys.stderr)
    tiles = resume(job.land, job.directions, grid, done.by_name(), done.known,
                   adaptive=job.adaptive, tol=job.tol, max_points=job.max_points)
    values = done.values.copy()
    evaluated = np.zeros(grid.shape, dtype=bool)
    rows, cols = grid.shape
    desc = f"line {cols}" if grid.k == 1 else f"plane {cols}×{rows}"
    known = written = int(done.known.sum())
    last = time.monotonic()
    bar = TqdmBar(total=grid.size, initial=known, unit="pt", desc=desc, delay=DELAY_S,
                  leave=True, miniters=1, dynamic_ncols=True, disable=not progress)
    try:
        with bar:
            for tile in tiles:
                for i, m in enumerate(names):
                    values[i, tile.rows, tile.cols] = tile.values[m]
                if not tile.exact:  # interpolated (adaptive): recomputed on a resume
                    bar.update(len(tile))
                    continue
                fresh = int((~done.known[tile.rows, tile.cols]).sum())
                evaluated[tile.rows, tile.cols] = True
                done.known[tile.rows, tile.cols] = True
                done.values[:, tile.rows, tile.cols] = values[:, tile.rows, tile.cols]
                known += fresh
                bar.update(fresh)
                if known > written and time.monotonic() - last >= every:
                    checkpoint.write(path, job.fingerprint, done)
                    written, last = known, time.monotonic()
    except BaseException as exc:
        # Whatever stopped the job, its finished points are kept.
        if known > written:
            checkpoint.write(path, job.fingerprint, done)
        status = _interrupt_status(exc)
        if status is None:
            raise
        raise Interrupted(
            f"interrupted: {known} of {grid.size} points kept in {path}; continue with the "
            "same command and --resume", status
        ) from exc
    finally:
        close = getattr(tiles, "close", None)  # a generator: end it now, not when collected
        if close is not None:
            close()
    # The last state, so that a stop while the output is being written loses nothing.
    if known > written:
        checkpoint.write(path, job.fingerprint, done)
    return {m: values[i] for i, m in enumerate(names)}, evaluated


class Terminated(BaseException):
    """SIGTERM arrived (a scheduler ends the job): unwinds like a KeyboardInterrupt."""


def _interrupt_status(exc: BaseException) -> int | None:
    if isinstance(exc, KeyboardInterrupt):
        return 130
    if isinstance(exc, Terminated):
        return 143
    return None
