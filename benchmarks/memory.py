"""Peak memory of the engine: at most the data's own size + the model + the memory budget.

Run: ``.venv/bin/python benchmarks/memory.py [--samples 60000] [--points 1]`` (a few minutes on
two cores: every case evaluates θ₀ once over all the data, then `--points` points).

ResNet-20 (benchmarks/common.py) on `--samples` random CIFAR-shaped samples (60,000: 737 MB of
float32), each case in a fresh child process, with the default budget (``memory="512MB"``):

- ``tensors``: the data as ``(X, y)`` tensors (used in place: batches are views);
- ``loader``: a DataLoader (batch 256) over a TensorDataset of them, larger than the data
  cache's half of the budget, so it is read again on every pass;
- ``subset``: the tensors with ``subset=5000``.

The child builds the data and the model, runs one forward of 8 samples (so that PyTorch's
kernels and thread pools are loaded, which any user of the model has paid), then samples its
own RSS every 10 ms while it builds the Landscape and evaluates. It prints the peak RSS above
that baseline next to the budget: the engine's own memory, beyond the data and the model that
were there before. A case passes when the peak stays within the budget.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

MB = 10**6


def child(case: str, samples: int, points: int) -> dict:
    """Measure one case in this (fresh) process."""
    import psutil
    import torch
    from common import cifar_like, resnet20
    from torch.utils.data import DataLoader, TensorDataset

    import ls_widget as lw

    X, y = cifar_like(samples)
    model = resnet20(X, samples=500)
    with torch.no_grad():
        model(X[:8])
    proc = psutil.Process()
    base = proc.memory_info().rss
    peak = [base]
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.01)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    t0 = time.perf_counter()
    if case == "tensors":
        land = lw.Landscape(model, (X, y))
    elif case == "loader":
        land = lw.Landscape(model, DataLoader(TensorDataset(X, y), batch_size=256))
    elif case == "subset":
        land = lw.Landscape(model, (X, y), subset=5000)
    else:
        raise ValueError(case)
    d1, d2 = lw.directions.random(model, 0), lw.directions.random(model, 1)
    coeffs = [[0.1 * (i + 1), -0.05 * (i + 1)] for i in range(points)]
    land.evaluate([d1, d2], coeffs)
    seconds = time.perf_counter() - t0
    done.set()
    thread.join()
    model_bytes = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    return {
        "case": case,
        "data_mb": (X.numel() * X.element_size() + y.numel() * y.element_size()) / MB,
        "model_mb": model_bytes / MB,
        "budget_mb": land.memory / MB,
        "peak_mb": (peak[0] - base) / MB,
        "cached": land.data.cached,
        "batches": len(land.data),
        "samples": land.n_samples,
        "seconds": seconds,
    }


def main() -> None:
    """Every case in its own child process; a table of the peaks."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, default=60_000)
    ap.add_argument("--points", type=int, default=1)
    ap.add_argument("--cases", default="tensors,loader,subset")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.samples, args.points)))
        return
    print(f"ResNet-20, {args.samples:,} CIFAR-shaped samples, default memory budget")
    print(f"{'case':<9}{'data MB':>9}{'model MB':>10}{'budget MB':>11}{'peak MB':>9}"
          f"{'held':>9}{'batches':>9}{'s':>7}  within budget")
    ok = True
    for case in args.cases.split(","):
        out = subprocess.run(
            [sys.executable, __file__, "--child", case, "--samples", str(args.samples),
             "--points", str(args.points)],
            capture_output=True, text=True, check=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        within = r["peak_mb"] <= r["budget_mb"]
        ok &= within
        print(f"{r['case']:<9}{r['data_mb']:>9.0f}{r['model_mb']:>10.2f}{r['budget_mb']:>11.0f}"
              f"{r['peak_mb']:>9.0f}{'cached' if r['cached'] else 'streamed':>9}"
              f"{r['batches']:>9}{r['seconds']:>7.0f}  {'yes' if within else 'NO'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
