"""The `hessian` command: extreme eigenvalues, trace and spectral density of H, to JSON or
.npz (one call of the engine each; nothing to resume)."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from ._cli_errors import one_line, runtime, usage
from ._cli_jobs import make_landscape
from ._cli_load import build_model, parse_device, state_digest
from ._cli_output import save_text
from .curvature import Hessian
from .engine.atomic import write_atomic

SUFFIXES = (".json", ".npz")


def hessian_target(out: str, force: bool) -> Path:
    """The output file: ``.json`` (added when there is no suffix) or ``.npz``."""
    path = Path(out)
    if not path.suffix:
        path = path.with_suffix(".json")
    if path.suffix.lower() not in SUFFIXES:
        raise usage(f"--out {out!r}: the hessian command writes .json or .npz, not "
                    f"{path.suffix!r} (e.g. {path.with_suffix('.json').name!r})")
    if path.is_dir() or not path.parent.is_dir():
        raise usage(f"--out {out!r}: not a file in an existing folder")
    if path.exists() and not force:
        raise usage(f"--out {str(path)!r} exists; pass --force to overwrite it")
    return path


def hessian(args: argparse.Namespace) -> int:
    """``ls-widget hessian``: the results of H as asked, with the job's provenance."""
    out = hessian_target(args.out, args.force)
    model = build_model(args.model, args.weights, parse_device(args.device))
    land, data = make_landscape(args, model)
    try:
        h = land.hessian if args.params in (None, "trainable") else land.hessian_over(
            args.params)
    except (TypeError, ValueError) as exc:
        raise usage(f"--params: {one_line(exc)}") from exc
    result: dict[str, Any] = {"kind": "hessian", "parameters": h.size}
    try:
        result.update(_compute(args, h))
    except (TypeError, ValueError) as exc:
        raise runtime(f"hessian: {one_line(exc)}") from exc
    result["meta"] = land.describe(model_sha256=state_digest(model), data=data,
                                   seed=args.seed)
    if out.suffix.lower() == ".npz":
        _write_npz(result, out)
    else:
        save_text(json.dumps(_jsonable(result), indent=1) + "\n", out)
    eig = result.get("eigen")
    said = f", λ {eig['values'][0]:.4g} to {eig['values'][-1]:.4g}" if eig else ""
    print(f"wrote {out} (hessian over {h.size} parameters{said})")
    return 0


def _compute(args: argparse.Namespace, h: Hessian) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if args.k > 0:
        eig = h.eigen(k=args.k, which=args.which, seed=args.seed, method=args.method,
                      progress=args.progress)
        found["eigen"] = {"values": eig.values, "residuals": eig.residuals, "hvps": eig.hvps,
                          "which": eig.which, "k": args.k, "method": args.method}
    if args.trace:
        tr = h.trace(args.trace, samples=args.samples, seed=args.seed, progress=args.progress)
        found["trace"] = {
            "method": tr.method, "mean": tr.mean, "stderr": tr.stderr,
            "evaluations": tr.evaluations, "samples": tr.samples, "h": tr.h,
            "at_steps": [[step, m, s] for step, (m, s) in tr.at_steps.items()],
            "converged": tr.converged, "smooth": tr.smooth,
            "nonsmooth_ops": list(tr.nonsmooth_ops),
        }
    if args.density:
        d = h.density(iterations=args.iterations, vectors=args.vectors, seed=args.seed,
                      progress=args.progress)
        found["density"] = {"grid": d.grid, "density": d.density, "nodes": d.nodes,
                            "weights": d.weights, "hvps": d.hvps}
    if not found:
        raise usage("hessian: nothing to compute; ask for --k ≥ 1, --trace or --density")
    return found


def _write_npz(result: dict[str, Any], path: Path) -> None:
    """Arrays as ``<part>_<name>`` (``eigen_values``, ``density_grid``...), the rest in a JSON
    header."""
    arrays: dict[str, Any] = {}
    header: dict[str, Any] = {}
    for key, value in result.items():
        if isinstance(value, dict) and key != "meta":
            header[key] = {}
            for name, v in value.items():
                if isinstance(v, np.ndarray):
                    arrays[f"{key}_{name}"] = v
                else:
                    header[key][name] = v
        else:
            header[key] = value
    text = json.dumps(_jsonable(header))
    write_atomic(path, lambda f: np.savez(f, header=np.array(text), **arrays))


def _jsonable(value: Any) -> Any:
    """JSON-ready: arrays as lists, NaN and inf as null (JSON has neither)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return _jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)

