"""Loss-surface throughput: ours vs the naive per-point loop vs `loss_landscapes`, side by side.

Run: ``make bench`` or ``.venv/bin/python benchmarks/surface.py [--repeats 5]``.

For the digits MLP (64-128-128-10) and a small CNN with BatchNorm, on all 1,797 digits and a
41×41 filter-normalized random plane, it prints points/s of each method (median of the
repeats, all measured in this one run, interleaved), the ratio to the naive loop, the share of
this machine's fp32 matmul throughput (counting the FLOPs the naive loop does per point), and
for adaptive refinement the evaluations, time and max error against the dense grid.

The matmul throughput (the best of four shapes, see common.matmul_peak) is measured before
every repeat, and each run's share is taken against its own neighbour before the median: on
a shared VM both drift by ±20 % within minutes, together.

The naive loop, `loss_landscapes` and ls-widget with its defaults run in a fresh child
process each repeat, with glibc's default heap behaviour, as a user's loop would. This process
calls `lw.keep_heap()` (opt-in, process-wide and one-way: see ls_widget/engine/heap.py) and
measures ls-widget again with it, and, as an ablation, the naive loop with it.

The CNN's naive loop and `loss_landscapes` run on a subset of points (per-point cost is what
is compared; a full 41×41 naive CNN plane takes minutes on two cores).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from common import (
    cnn,
    digits,
    forward_flops,
    matmul_peak,
    median,
    mlp,
    naive_plane,
    timed,
    train,
)

import ls_widget as lw
from ls_widget.engine.sampling import axis


def peer_points_per_second(model: torch.nn.Module, X, y, steps: int) -> float:
    """`loss_landscapes.random_plane` with filter normalization, steps×steps points."""
    import loss_landscapes
    import loss_landscapes.metrics

    metric = loss_landscapes.metrics.Loss(F.cross_entropy, X, y)
    with torch.no_grad():
        t, _ = timed(
            lambda: loss_landscapes.random_plane(
                model, metric, distance=1, steps=steps, normalization="filter",
                deepcopy_model=True,
            )
        )
    return steps * steps / t


def baselines_in_child(path: str) -> None:
    """Child process: the naive loop and loss_landscapes with glibc's default heap behaviour
    (ls-widget's heap setting is process-wide and one-way, so baselines never share it)."""
    job = torch.load(path, weights_only=False)
    model, X, y = job["model"], job["X"], job["y"]
    t, vals = timed(lambda: naive_plane(model, X, y, job["d1"], job["d2"], job["points"]))
    out = {"naive": len(job["points"]) / t, "naive_vals": vals.tolist()}
    # ls-widget with its defaults (no heap setting): bind and plan once, then time the plane.
    land = lw.Landscape(model, (X, y))
    d1, d2 = lw.Direction(job["d1"]), lw.Direction(job["d2"])
    land.plane(d1, d2, span=1, n=3)
    t, _ = timed(lambda: land.plane(d1, d2, span=1, n=job["n"]))
    out["ours_default"] = job["n"] ** 2 / t
    if job["peer_steps"]:
        out["peer"] = peer_points_per_second(model, X, y, job["peer_steps"])
    print(json.dumps(out))


def run_child(job: dict) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "job.pt")
        torch.save(job, path)
        proc = subprocess.run(
            [sys.executable, __file__, "--child", path], capture_output=True, text=True,
            check=True,
        )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench(name: str, model: torch.nn.Module, X, y, args: argparse.Namespace) -> dict:
    n = args.n
    xs = axis((-1.0, 1.0), n)
    grid = np.stack(np.meshgrid(xs, xs), axis=-1).reshape(-1, 2)  # (α, β) pairs
    subset = name == "cnn"
    rng = np.random.default_rng(0)
    pick = rng.choice(len(grid), size=min(args.cnn_points, len(grid)), replace=False)
    naive_pts = grid[pick] if subset else grid
    peer_steps = args.cnn_peer_steps if subset else n

    d1 = lw.directions.random(model, seed=0)
    d2 = lw.directions.random(model, seed=1)
    t_build, land = timed(lambda: lw.Landscape(model, (X, y)))
    res: dict[str, list[float]] = {
        "naive": [], "peer": [], "ours": [], "ours_default": [], "naive_kept_heap": [],
        "adaptive": [], "peak": [],
    }
    dense = adaptive = None
    naive_vals = None
    job = {"model": model, "X": X, "y": y, "d1": dict(d1), "d2": dict(d2),
           "points": naive_pts, "peer_steps": 0 if args.no_peer else peer_steps, "n": n}
    for _ in range(args.repeats):
        child = run_child(job)  # a fresh process: glibc's default heap behaviour
        res["naive"].append(child["naive"])
        res["ours_default"].append(child["ours_default"])
        naive_vals = np.asarray(child["naive_vals"])
        if "peer" in child:
            res["peer"].append(child["peer"])
        # The machine's matmul throughput drifts by ±20 % over minutes on a shared VM: measure
        # it next to each run, and compare each run with its own neighbour.
        res["peak"].append(matmul_peak(seconds=0.25))
        land._bound.clear()  # each repeat binds anew (the plan stays cached, as in real use)
        t, dense = timed(lambda: land.plane(d1, d2, span=1, n=n))
        res["ours"].append(n * n / t)
        # Ablation: the naive loop in this process, where ls-widget's heap setting is in force.
        t, _ = timed(lambda: naive_plane(model, X, y, dict(d1), dict(d2), naive_pts))
        res["naive_kept_heap"].append(len(naive_pts) / t)
        t, adaptive = timed(lambda: land.plane(d1, d2, span=1, n=n, adaptive=True, tol=args.tol))
        res["adaptive"].append(t)

    z = dense["loss"]
    ours_at = z.reshape(-1)[pick] if subset else z.reshape(-1)
    # meshgrid above is (row = β, col = α), as Surface: flatten orders agree
    err_vs_naive = float(np.max(np.abs(ours_at - naive_vals)))
    vrange = float(np.ptp(z[np.isfinite(z)]))
    adapt_err = float(np.nanmax(np.abs(adaptive["loss"] - z))) / vrange
    flops = forward_flops(model, X)

    def share(method: str) -> float:
        """Median over repeats of points/s × FLOPs per point ÷ that repeat's matmul rate."""
        pairs = zip(res[method], res["peak"], strict=True)
        return median([r * flops / 1e9 / p for r, p in pairs])

    naive = median(res["naive"])
    ours = median(res["ours"])
    t_adapt = median(res["adaptive"])
    t_dense_naive = n * n / naive
    return {
        "name": name,
        "params": sum(p.numel() for p in model.parameters()),
        "gflop_per_point": flops / 1e9,
        "build_s": t_build,
        "naive": naive,
        "peer": median(res["peer"]) if res["peer"] else float("nan"),
        "ours": ours,
        "ours_all": res["ours"],
        "naive_kept_heap": median(res["naive_kept_heap"]),
        "ours_default": median(res["ours_default"]),
        "default_peak": share("ours_default"),
        "chosen": land.evaluator.chosen,
        "peak": median(res["peak"]),
        "naive_peak": share("naive"),
        "ours_peak": share("ours"),
        "kept_peak": share("naive_kept_heap"),
        "err_vs_naive": err_vs_naive,
        "adapt_evals": int(adaptive.evaluated.sum()),
        "adapt_s": t_adapt,
        "adapt_speedup": t_dense_naive / t_adapt,
        "adapt_err": adapt_err,
        "naive_points": len(naive_pts),
        "peer_points": peer_steps**2,
    }


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        baselines_in_child(sys.argv[2])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=41)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--tol", type=float, default=0.01)
    ap.add_argument("--cnn-points", type=int, default=120)
    ap.add_argument("--cnn-peer-steps", type=int, default=11)
    ap.add_argument("--no-peer", action="store_true", help="skip loss_landscapes")
    ap.add_argument("--models", default="mlp,cnn")
    args = ap.parse_args()

    torch.manual_seed(0)
    lw.keep_heap()  # this process only: the child processes keep glibc's defaults
    print(f"# ls-widget surface benchmark — {platform.processor() or platform.machine()}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"# grid {args.n}×{args.n}, span ±1, filter-normalized random plane, "
          f"{args.repeats} interleaved repeats, medians")
    rows = []
    for name in args.models.split(","):
        X, y = digits(image=(name == "cnn"))
        model = train(mlp() if name == "mlp" else cnn(), X, y)
        rows.append(bench(name, model, X, y, args))

    for r in rows:
        print(f"\n## {r['name']}: {r['params']:,} parameters, "
              f"{r['gflop_per_point']:.3f} GFLOP per point (1,797 samples)")
        print(f"  evaluation chosen: {r['chosen']}")
        print(f"  fp32 matmul throughput, measured before each repeat (best shape's median): "
              f"median {r['peak']:.1f} GFLOP/s")
        print("  ours per repeat, points/s:", [round(v) for v in r["ours_all"]])
        print(f"  Landscape() set-up: {r['build_s'] * 1e3:.0f} ms")
        print(f"  {'method':<28}{'points/s':>10}{'× naive':>10}{'% matmul peak':>15}")
        print(f"  {'naive per-point loop':<28}{r['naive']:>10.1f}{1.0:>10.2f}"
              f"{100 * r['naive_peak']:>14.0f}%   ({r['naive_points']} points)")
        if np.isfinite(r["peer"]):
            print(f"  {'loss_landscapes.random_plane':<28}{r['peer']:>10.1f}"
                  f"{r['peer'] / r['naive']:>10.2f}{'':>15}   ({r['peer_points']} points)")
        od = r["ours_default"]
        print(f"  {'ls-widget plane':<28}{od:>10.1f}{od / r['naive']:>10.2f}"
              f"{100 * r['default_peak']:>14.0f}%   (defaults, fresh process)")
        print(f"  {'ls-widget, lw.keep_heap()':<28}{r['ours']:>10.1f}"
              f"{r['ours'] / r['naive']:>10.2f}{100 * r['ours_peak']:>14.0f}%")
        hk = r["naive_kept_heap"]
        print(f"  {'naive loop, heap kept':<28}{hk:>10.1f}{hk / r['naive']:>10.2f}"
              f"{100 * r['kept_peak']:>14.0f}%   (ablation: the naive "
              f"loop with lw.keep_heap())")
        print(f"  max |ours − naive| on the same points: {r['err_vs_naive']:.2e}")
        print(f"  adaptive (tol {args.tol}): {r['adapt_evals']} of {args.n**2} points evaluated,"
              f" {r['adapt_s']:.2f} s, {r['adapt_speedup']:.1f}× faster than the dense naive "
              f"loop, max error {100 * r['adapt_err']:.2f}% of the value range")

    print("\n# targets: ours ≥ 1.2× naive (MLP), ≥ 1.5× (CNN); adaptive ≥ 3× faster than "
          "dense naive at ≤ 1% error; ≥ 80% of matmul peak (MLP)")
    for r in rows:
        target = 1.2 if r["name"] == "mlp" else 1.5
        checks = [
            (f"{r['name']}: ours (defaults)/naive {r['ours_default'] / r['naive']:.2f} ≥ "
             f"{target}", r["ours_default"] / r["naive"] >= target),
            (f"{r['name']}: adaptive {r['adapt_speedup']:.1f}× ≥ 3 at "
             f"{100 * r['adapt_err']:.2f}% ≤ 1%",
             r["adapt_speedup"] >= 3 and r["adapt_err"] <= 0.01),
        ]
        if r["name"] == "mlp":
            checks.append((f"mlp: {100 * r['ours_peak']:.0f}% of matmul peak ≥ 80%",
                           r["ours_peak"] >= 0.8))
        for text, ok in checks:
            print(f"  [{'met' if ok else 'MISSED'}] {text}")


if __name__ == "__main__":
    main()
