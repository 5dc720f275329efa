"""Real architectures: ours vs the naive per-point loop, per point, side by side in one run.

Run: ``.venv/bin/python benchmarks/architectures.py [--repeats 3] [--points 2]`` (about ten
minutes on two quiet cores, most of it ResNet-20).

Models (benchmarks/common.py), float32, on the CPU with PyTorch's default threads:

- ResNet-20 (He et al. 2016: 3 stages × 3 basic blocks, 16/32/64 channels, BatchNorm, option A
  shortcuts; 0.27 M parameters) on 10,000 random CIFAR-shaped samples (3×32×32, 10 classes).
  It is not trained: at its initialization, in eval mode, with BatchNorm γ, β drawn around 1
  and 0 and running statistics averaged over forwards of 2,000 of the samples (no gradient
  step), so every BatchNorm does real work.
- A 4-layer ``nn.TransformerEncoder`` classifier (d_model 128, 4 heads, feed-forward 512,
  post-norm, batch_first; token and learned position embeddings, mean pooling, a linear head;
  0.9 M parameters) on 512 random sequences of 64 tokens (vocabulary 1,000, 10 classes), at its
  initialization in eval mode.

Every repeat runs each method in a fresh child process (glibc's default heap behaviour, as in
a user's session; the child first runs one small forward, so that PyTorch's kernels and
threads are loaded as for any user of the model, and ours a 3×3 plane of a tiny model, so that
the modules ls-widget and PyTorch import on first use, once a session, are loaded), the order
alternating, so that drifting machine load hits both alike:

- naive: the reference loop on `--points` points of the plane: a deep copy of the model, per
  point θ₀ + α·d₁ + β·d₂ copied into its parameters, eval mode, ``torch.no_grad()``, a forward
  of every batch (the batches ls-widget uses), the sample-weighted mean of the loss;
- naive, small batches: the same loop on batches of `--naive-batch` samples (128: what an
  evaluation DataLoader often uses, and kinder to the CPU's caches than ls-widget's batches);
- ours, first call: a fresh ``lw.Landscape(model, (X, y))`` and its first ``plane`` (an n×n
  grid around the model, the model at its centre), everything included;
- ours, per point: ``land.evaluate([d1, d2], points)`` on the plane's n² − 1 points other
  than its centre (whose value a binding may keep from its first call).

It prints the median seconds per point of each and their ratio (the median over repeats of the
ratio within a repeat), the first call's overhead in points: (construction + first plane −
n² × ours per point) ÷ ours per point, and the largest relative difference between ours and
the naive loop on the same points (the plane's and `evaluate`'s values both).
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from common import cifar_like, resnet20, token_data, transformer

import ls_widget as lw
from ls_widget.engine.sampling import axis


@dataclass
class Case:
    """One model, its data, and the n×n plane of its first call."""

    name: str
    model: nn.Module
    X: torch.Tensor
    y: torch.Tensor
    n: int
    what: str


@dataclass
class Times:
    """Per-repeat measurements of one case."""

    naive: list[float] = field(default_factory=list)  # seconds per point
    small: list[float] = field(default_factory=list)  # the naive loop on small batches
    ours: list[float] = field(default_factory=list)
    first: list[float] = field(default_factory=list)  # construction + first plane, seconds
    build: list[float] = field(default_factory=list)
    errors: list[float] = field(default_factory=list)


def naive_points(
    model: nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]], d1: dict, d2: dict,
    coeffs: np.ndarray,
) -> np.ndarray:
    """The reference loop: per point, θ₀ + a·d₁ + b·d₂ copied into a deep copy of the model,
    a forward of every batch, the sample-weighted mean of the cross-entropy."""
    net = copy.deepcopy(model).eval()
    theta = {n: p.detach().clone() for n, p in net.named_parameters()}
    total = sum(len(y) for _, y in batches)
    out = np.empty(len(coeffs))
    with torch.no_grad():
        for i, (a, b) in enumerate(coeffs):
            for n, p in net.named_parameters():
                p.copy_(theta[n] + a * d1[n] + b * d2[n])
            loss = 0.0
            for x, y in batches:
                loss += F.cross_entropy(net(x), y).item() * len(y)
            out[i] = loss / total
    return out


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    t0 = time.perf_counter()
    res = fn()
    return time.perf_counter() - t0, res


def child(path: str, method: str) -> None:
    """One method in a fresh process (glibc's default heap, as a user's session has): the
    naive loop, or ours (a fresh Landscape, its first plane, then `evaluate` on the points)."""
    job = torch.load(path, weights_only=False)
    model, X, y, n, pts = job["model"], job["X"], job["y"], job["n"], job["points"]
    d1, d2 = lw.Direction(job["d1"]), lw.Direction(job["d2"])
    with torch.no_grad():
        model(X[:8])  # PyTorch's kernels and threads loaded, as any user of the model has
    if method == "ours":  # and the modules ls-widget imports on first use (once a session)
        tiny = nn.Linear(4, 3)
        lw.Landscape(tiny, (torch.randn(8, 4), torch.randint(0, 3, (8,)))).plane(
            lw.directions.random(tiny, seed=0), lw.directions.random(tiny, seed=1), n=3)
    out: dict[str, object] = {}
    if method.startswith("naive"):
        size = method.partition(":")[2]
        sizes = job["sizes"] if not size else [int(size)] * (len(X) // int(size)) + (
            [len(X) % int(size)] if len(X) % int(size) else [])
        bounds = np.cumsum([0, *sizes])
        batches = [(X[i:j], y[i:j]) for i, j in itertools.pairwise(bounds)]
        t, vals = timed(lambda: naive_points(model, batches, job["d1"], job["d2"], pts))
        out.update(per_point=t / len(pts), values=np.asarray(vals).tolist())
    else:
        t0 = time.perf_counter()
        land = lw.Landscape(model, (X, y))
        out["build"] = time.perf_counter() - t0
        surf = land.plane(d1, d2, span=1, n=n)
        out["first"] = time.perf_counter() - t0
        out["plane"] = surf["loss"].reshape(-1).tolist()
        out["sizes"] = [b.n for b in land.evaluator.batches]
        # Per point: the plane's points again but its centre (a value the binding may keep).
        t, vals = timed(lambda: land.evaluate([d1, d2], job["off_centre"])["loss"])
        out.update(per_point=t / len(job["off_centre"]), values=np.asarray(vals).tolist(),
                   chosen=land.evaluator.chosen, flops=land.evaluator.flops_per_point)
    print(json.dumps(out))


def run_child(path: str, method: str) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", path, method], capture_output=True, text=True,
    )
    if proc.returncode:
        raise RuntimeError(f"the {method} child failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench(case: Case, args: argparse.Namespace, tmp: str) -> dict:
    model, X, y, n = case.model, case.X, case.y, case.n
    d1 = lw.directions.random(model, seed=0)
    d2 = lw.directions.random(model, seed=1)
    xs = axis((-1.0, 1.0), n)
    grid = np.stack(np.meshgrid(xs, xs), axis=-1).reshape(-1, 2)  # (α, β), row = β as Surface
    off_centre = np.flatnonzero(np.any(grid != 0, axis=1))
    rank = np.random.default_rng(0).permutation(len(off_centre))
    pick = off_centre[rank[: args.points]]  # the naive loop's points
    pts = grid[pick]
    path = os.path.join(tmp, f"{case.name}.pt")
    job = {"model": model, "X": X, "y": y, "n": n, "points": pts, "d1": dict(d1),
           "d2": dict(d2), "sizes": None, "off_centre": grid[off_centre]}
    torch.save(job, path)
    res = Times()
    meta: dict = {}
    for r in range(args.repeats):
        got: dict[str, dict] = {}
        # ours first in even repeats; the naive loop takes ls-widget's batches (known after
        # the first run of ours), so the very first repeat starts with ours
        small = f"naive:{args.naive_batch}"
        for method in ("ours", "naive", small) if r % 2 == 0 else (small, "naive", "ours"):
            got[method] = run_child(path, method)
            if method == "ours" and job["sizes"] is None:
                job["sizes"] = got["ours"]["sizes"]
                torch.save(job, path)
        o, v, w = got["ours"], got["naive"], got[small]
        res.naive.append(v["per_point"])
        res.small.append(w["per_point"])
        res.ours.append(o["per_point"])
        res.build.append(o["build"])
        res.first.append(o["first"])
        evaluated = np.asarray(o["values"])[rank[: args.points]]
        for naive_vals in (np.asarray(v["values"]), np.asarray(w["values"])):
            for ours_vals in (evaluated, np.asarray(o["plane"])[pick]):
                res.errors.append(
                    float(np.max(np.abs(ours_vals - naive_vals) / np.abs(naive_vals))))
        meta.update(chosen=o["chosen"], flops=o["flops"], sizes=o["sizes"],
                    scale=float(np.nanmax(np.abs(o["plane"]))))
        print(f"  [{case.name} repeat {r + 1}/{args.repeats}] naive {res.naive[-1]:.2f} s/point,"
              f" (batches of {args.naive_batch}: {res.small[-1]:.2f}),"
              f" ours {res.ours[-1]:.2f} s/point, first call {res.first[-1]:.1f} s",
              file=sys.stderr, flush=True)
    ratios = [a / b for a, b in zip(res.naive, res.ours, strict=True)]
    small_ratios = [a / b for a, b in zip(res.small, res.ours, strict=True)]
    over = [(f - n * n * o) / o for f, o in zip(res.first, res.ours, strict=True)]
    return {
        "case": case,
        "params": sum(p.numel() for p in model.parameters()),
        "flops": meta["flops"],
        "batches": meta["sizes"],
        "naive": statistics.median(res.naive),
        "ours": statistics.median(res.ours),
        "ratio": statistics.median(ratios),
        "ratios": ratios,
        "small": statistics.median(res.small),
        "small_ratio": statistics.median(small_ratios),
        "small_ratios": small_ratios,
        "first": statistics.median(res.first),
        "build": statistics.median(res.build),
        "overhead": statistics.median(over),
        "overheads": over,
        "error": max(res.errors),
        "loss_scale": meta["scale"],
        "chosen": meta["chosen"],
        "points": len(pts),
    }


def cases(args: argparse.Namespace) -> list[Case]:
    out = []
    for name in args.models.split(","):
        if name == "resnet20":
            X, y = cifar_like(args.samples)
            out.append(Case("ResNet-20", resnet20(X), X, y, args.resnet_n,
                            f"{args.samples:,} CIFAR-shaped samples"))
        elif name == "transformer":
            X, y = token_data(args.sequences, args.length)
            out.append(Case("Transformer", transformer(length=args.length), X, y,
                            args.transformer_n,
                            f"{args.sequences:,} sequences of {args.length} tokens"))
        else:
            raise SystemExit(f"unknown model {name!r}; use resnet20 and/or transformer")
    return out


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--points", type=int, default=2, help="naive loop's points per repeat")
    ap.add_argument("--naive-batch", type=int, default=128,
                    help="the second naive loop's batch size")
    ap.add_argument("--models", default="resnet20,transformer")
    ap.add_argument("--samples", type=int, default=10_000, help="ResNet-20's samples")
    ap.add_argument("--sequences", type=int, default=512, help="the transformer's sequences")
    ap.add_argument("--length", type=int, default=64, help="tokens per sequence")
    ap.add_argument("--resnet-n", type=int, default=3, help="ResNet-20's first plane: n×n")
    ap.add_argument("--transformer-n", type=int, default=3, help="the transformer's: n×n")
    args = ap.parse_args()
    torch.manual_seed(0)
    print(f"# ls-widget on real architectures — {platform.processor() or platform.machine()}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"# per point, ours vs the naive per-point loop, {args.repeats} interleaved repeats, "
          "medians")
    with tempfile.TemporaryDirectory() as tmp:
        rows = [bench(c, args, tmp) for c in cases(args)]
    for r in rows:
        c = r["case"]
        print(f"\n## {c.name}: {r['params']:,} parameters, {r['flops'] / 1e9:.1f} GFLOP per "
              f"point, {c.what} in batches of {r['batches'][0]:,}")
        print(f"  evaluation chosen: {r['chosen']}")
        print(f"  {'method':<30}{'s/point':>9}{'points/s':>10}{'× naive':>9}")
        print(f"  {'naive per-point loop':<30}{r['naive']:>9.3f}{1 / r['naive']:>10.3f}"
              f"{1.0:>9.2f}   ({r['points']} points)")
        label = f"naive, batches of {args.naive_batch}"
        print(f"  {label:<30}{r['small']:>9.3f}{1 / r['small']:>10.3f}"
              f"{r['naive'] / r['small']:>9.2f}")
        print(f"  {'ls-widget, land.evaluate':<30}{r['ours']:>9.3f}{1 / r['ours']:>10.3f}"
              f"{r['ratio']:>9.2f}   (per repeat: "
              + ", ".join(f"{x:.2f}" for x in r["ratios"]) + ")")
        print(f"  {'':<30}{'':>9}{'':>10}{r['small_ratio']:>9.2f}   × the naive loop on "
              f"batches of {args.naive_batch} (per repeat: "
              + ", ".join(f"{x:.2f}" for x in r["small_ratios"]) + ")")
        print(f"  first call: Landscape() {r['build']:.2f} s + plane {c.n}×{c.n} "
              f"{r['first'] - r['build']:.1f} s = {r['overhead']:.2f} points beyond its "
              f"{c.n * c.n} (per repeat: " + ", ".join(f"{x:.2f}" for x in r["overheads"]) + ")")
        print(f"  max |ours − naive| / |naive| on the same points: {r['error']:.1e} "
              f"(losses up to {r['loss_scale']:.3g})")
    print("\n# targets: ResNet-20 ≥ 1.5× naive, transformer ≥ 1.3×; first call ≤ 2 points "
          "beyond its points")
    for r in rows:
        c = r["case"]
        target = 1.5 if c.name == "ResNet-20" else 1.3
        for text, ok in (
            (f"{c.name}: ours/naive {r['ratio']:.2f} ≥ {target}", r["ratio"] >= target),
            (f"{c.name}: ours/naive on batches of {args.naive_batch} {r['small_ratio']:.2f} ≥ "
             f"{target}", r["small_ratio"] >= target),
            (f"{c.name}: first call {r['overhead']:.2f} ≤ 2 points", r["overhead"] <= 2),
        ):
            print(f"  [{'met' if ok else 'MISSED'}] {text}")


if __name__ == "__main__":
    main()
