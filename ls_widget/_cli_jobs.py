"""The `line`, `plane` and `pca` commands: a landscape, its directions and grid, a record."""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from . import __version__
from . import _cli_checkpoint as checkpoint
from ._cli_errors import one_line, runtime, usage
from ._cli_grid import GridJob, run
from ._cli_load import (
    build_model,
    call,
    data_digest,
    loss_function,
    metric_functions,
    parse_device,
    resolve,
    state_digest,
    tensors_digest,
)
from ._cli_output import check_finished, check_target, record_target, save_record
from .directions import Direction
from .directions import pca as pca_directions
from .directions import random as random_direction
from .engine.jobs import JobTooLarge
from .engine.landscape import Landscape
from .engine.sampling import Grid
from .results import Curve, Surface
from .trajectory import Trajectory


def make_landscape(args: argparse.Namespace, model: nn.Module) -> tuple[Landscape, str]:
    """The landscape of `model` on what ``--data`` returns, with ``--loss`` and ``--metric``;
    and the data in words for the fingerprint (its digest where it is tensors or arrays)."""
    loss = loss_function(args.loss)
    metrics = metric_functions(args.metric)
    data = call(resolve(args.data, "--data"), "--data", args.data)
    digest = data_digest(data)
    what = (f"sha256 {digest}" if digest is not None
            else f"{args.data} (a {type(data).__name__}: its size only)")
    try:
        land = Landscape(model, data, loss, metrics or None, batch_size=args.batch_size,
                         memory=args.memory)
        return land, what
    except Exception as exc:
        given = f"--data {args.data!r} (a {type(data).__name__})" + (
            f" with --loss {args.loss!r}" if args.loss else "")
        raise runtime(f"the model cannot be evaluated on {given}: {one_line(exc)}") from exc


def make_grid(args: argparse.Namespace, k: int, default_span: float = 1.0) -> Grid:
    """The line (k = 1) or plane of ``--span``/``--xrange``/``--yrange`` and ``--n``."""
    span = args.span if args.span is not None else default_span
    try:
        if k == 1:
            if len(args.n) != 1:
                raise usage(f"--n {','.join(map(str, args.n))}: a line takes one number of points")
            return Grid.line(args.xrange or span, args.n[0])
        xs = args.xrange or (span if isinstance(span, tuple) else (-span, span))
        ys = args.yrange or (span if isinstance(span, tuple) else (-span, span))
        n = args.n if len(args.n) == 2 else args.n * 2
        return Grid.plane((xs, ys), n)
    except (TypeError, ValueError) as exc:
        raise usage(f"--n/--span: {one_line(exc)}") from exc


def random_directions(args: argparse.Namespace, model: nn.Module, k: int) -> list[Direction]:
    """The k seeded random directions: ``--seed``, ``--seed`` + 1, normalized as asked."""
    try:
        return [random_direction(model, seed=args.seed + i, norm=args.norm, ignore=args.ignore,
                                 params=args.params) for i in range(k)]
    except (TypeError, ValueError) as exc:
        raise usage(f"--params/--norm/--ignore: {one_line(exc)}") from exc


def fingerprint(args: argparse.Namespace, land: Landscape, data: str, model: nn.Module,
                dirs: list[Direction], grid: Grid) -> dict[str, str]:
    """What the job is, for its checkpoint and output: see `_cli_checkpoint`."""
    g = hashlib.sha256(np.ascontiguousarray(grid.x).tobytes()
                       + np.ascontiguousarray(grid.y).tobytes()).hexdigest()[:16]
    (x0, x1), (y0, y1) = grid.span
    where = f"x [{x0:g}, {x1:g}]" + (f", y [{y0:g}, {y1:g}]" if grid.k == 2 else "")
    shape = f"{grid.shape[1]}" if grid.k == 1 else f"{grid.shape[1]}×{grid.shape[0]}"
    return {
        "command": args.command,
        "model": state_digest(model),
        "data": data,
        "samples": str(land.n_samples),
        "loss": land.loss_name,
        "metrics": ", ".join(land.metric_names),
        "batch_size": str(args.batch_size or "auto"),
        "memory": str(land.memory),
        "directions": "; ".join(
            f"{d.provenance.get('label', d.provenance.get('kind'))} ({tensors_digest(d)[:16]})"
            for d in dirs
        ),
        "grid": f"{shape}, {where} ({g})",
        "adaptive": f"tol={args.tol:g}" if args.adaptive else "off",
        "device": f"{land.space.device}, {str(land.space.dtype).replace('torch.', '')}",
        "versions": f"torch {torch.__version__}, ls-widget {__version__}",
    }


def line_or_plane(args: argparse.Namespace) -> int:
    """``ls-widget line`` and ``ls-widget plane``."""
    k = 1 if args.command == "line" else 2
    out = record_target(args.out, "curve" if k == 1 else "surface")
    go = check_target(out, force=args.force, resume=args.resume)
    grid = make_grid(args, k)
    device = parse_device(args.device)
    model = build_model(args.model, args.weights, device)
    land, data = make_landscape(args, model)
    dirs = random_directions(args, model, k)
    job = GridJob(land, dirs, grid, out, fingerprint(args, land, data, model, dirs, grid),
                  adaptive=args.adaptive, tol=args.tol, max_points=args.max_points)
    return _compute(args, job, go, {})


def pca(args: argparse.Namespace) -> int:
    """``ls-widget pca``: the plane of a run's first two principal directions around its
    last snapshot, with the run's path (in ``meta["path"]``)."""
    out = record_target(args.out, "surface")
    go = check_target(out, force=args.force, resume=args.resume)
    if args.span is not None or args.xrange or args.yrange:
        make_grid(args, 2)  # bad values are refused before the snapshots are read
    device = parse_device(args.device)
    template = build_model(args.model, None, device)
    traj = _trajectory(args.checkpoints, template)
    try:
        dirs = pca_directions(traj, k=2, ignore=args.ignore)
    except (TypeError, ValueError) as exc:
        raise runtime(f"--checkpoints: {one_line(exc)}") from exc
    path = traj.project(dirs[0], dirs[1])
    reach = float(max(np.abs(path.alpha).max(), np.abs(path.beta).max()))
    grid = make_grid(args, 2, default_span=1.25 * reach if reach > 0 else 1.0)
    model = traj.model_at(-1)
    land, data = make_landscape(args, model)
    job = GridJob(land, dirs, grid, out, fingerprint(args, land, data, model, dirs, grid),
                  adaptive=args.adaptive, tol=args.tol, max_points=args.max_points)
    return _compute(args, job, go, {"path": path.to_dict()})


def _trajectory(checkpoints: list[str], template: nn.Module) -> Trajectory:
    for c in checkpoints:
        if not Path(c).exists():
            raise usage(f"--checkpoints: no file or folder {c!r}")
    try:
        if len(checkpoints) == 1 and Path(checkpoints[0]).is_dir():
            return Trajectory.from_checkpoints(checkpoints[0], template)
        return Trajectory.from_checkpoints(checkpoints, template)
    except (TypeError, ValueError, RuntimeError, OSError) as exc:
        raise runtime(f"--checkpoints: {one_line(exc)}") from exc


def _compute(args: argparse.Namespace, job: GridJob, go: bool, extra: dict[str, Any]) -> int:
    """Run `job` (unless `go` is False: finished already), save its record, drop the
    checkpoint."""
    land, dirs, grid, out = job.land, list(job.directions), job.grid, job.out
    if not go:
        print(check_finished(out, job.fingerprint), file=sys.stderr)
        return 0
    try:
        values, evaluated = run(job, resume_from=args.resume, every=args.checkpoint_every,
                                progress=args.progress, force=args.force)
    except JobTooLarge as exc:
        raise usage(f"{exc}; on the command line: --max-points {grid.size}") from exc
    meta: dict[str, Any] = {"adaptive": args.adaptive, **extra, "job": job.fingerprint}
    record: Curve | Surface
    if grid.k == 1:
        record = Curve(x=grid.x, values={m: v[0] for m, v in values.items()},
                       directions=(dirs[0].provenance,), meta=land.describe(dirs, **meta),
                       direction_tensors=(dirs[0],))
    else:
        record = land.surface(grid, dirs, values, evaluated,
                              tol=args.tol if args.adaptive else None,
                              evaluations=int(evaluated.sum()), **meta)
    save_record(record, out)
    checkpoint.partial_path(out).unlink(missing_ok=True)
    first = record[record.metrics[0]]
    finite = first[np.isfinite(first)]
    low = f", {record.metrics[0]} {finite.min():.4g} to {finite.max():.4g}" if finite.size else ""
    print(f"wrote {out} ({args.command}, {grid.size} points{low})")
    return 0
