"""On a GPU: our planes against the naive per-point loop on the same GPU, side by side.

Run: ``.venv/bin/python benchmarks/gpu.py [--n 51] [--naive-points 20] [--memory 8GB]``.
Without CUDA it prints "skipped: no CUDA" and exits.

Models (benchmarks/common.py), float32, full precision (``tf32=False``, the default: TF32 off
for matmuls and cuDNN convolutions while we evaluate), on 10,000 random CIFAR-shaped samples
(3×32×32, 10 classes), on ``cuda:0``:

- an MLP 3072-512-512-10 (flattened images), at its initialization;
- ResNet-20 (He et al. 2016; 0.27 M parameters) at its initialization in eval mode with real
  BatchNorm statistics (see common.resnet20).

For each it times:

- naive: the reference loop on `--naive-points` points of the plane: per point θ₀ + α·d₁ +
  β·d₂ copied into a deep copy's parameters, a forward of every batch (batches of 1,000),
  the sample-weighted mean of the cross-entropy, synchronized;
- ours: ``lw.Landscape(model, (X, y), memory=...)`` and its n×n ``plane`` (construction and
  calibration included), and, on another Landscape after a 5×5 warm-up plane, the n×n
  plane again (the steady rate).

It prints points/s of each, the ratios, the plan chosen (vmap chunk), the largest relative
difference between ours and the naive loop on the naive loop's points, and whether the two
Landscapes' planes are the same bits.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from common import cifar_like, resnet20

import ls_widget as lw
from ls_widget.engine.sampling import axis

T = TypeVar("T")


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(3072, 512), nn.ReLU(), nn.Linear(512, 512),
                         nn.ReLU(), nn.Linear(512, 10)).eval()


def naive(model: nn.Module, X: torch.Tensor, y: torch.Tensor, d1: lw.Direction,
          d2: lw.Direction, coeffs: np.ndarray, batch: int = 1000) -> np.ndarray:
    """The reference loop, per point, on the GPU."""
    net = copy.deepcopy(model).eval()
    theta = {n: p.detach().clone() for n, p in net.named_parameters()}
    out = np.empty(len(coeffs))
    with torch.no_grad():
        for i, (a, b) in enumerate(coeffs):
            for n, p in net.named_parameters():
                p.copy_(theta[n] + a * d1[n] + b * d2[n])
            total = torch.zeros((), dtype=torch.float64, device=X.device)
            for s in range(0, len(X), batch):
                total += F.cross_entropy(net(X[s : s + batch]), y[s : s + batch]).double() * (
                    min(batch, len(X) - s))
            out[i] = float(total) / len(X)
    return out


def synced(fn: Callable[[], T]) -> tuple[float, T]:
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    res = fn()
    torch.cuda.synchronize()
    return time.perf_counter() - t0, res


def bench(name: str, model: nn.Module, X: torch.Tensor, y: torch.Tensor,
          args: argparse.Namespace) -> None:
    d1, d2 = (lw.directions.random(model, seed=s) for s in (1, 2))
    n = args.n
    xs = axis((-1.0, 1.0), n)
    rng = np.random.default_rng(0)
    picks = rng.choice(n * n, size=min(args.naive_points, n * n), replace=False)
    coeffs = np.stack([xs[picks % n], xs[picks // n]], axis=1)
    naive(model, X, y, d1, d2, coeffs[:2])  # cuDNN autotuning, allocator warm-up
    t_naive, ref = synced(lambda: naive(model, X, y, d1, d2, coeffs))
    t_first, surf = synced(lambda: lw.Landscape(model, (X, y), memory=args.memory).plane(
        d1, d2, n=n, progress=False))
    land = lw.Landscape(model, (X, y), memory=args.memory)
    land.plane(d1, d2, n=5, progress=False)
    t_plane, again = synced(lambda: land.plane(d1, d2, n=n, progress=False))
    ours = np.asarray(again["loss"])[picks // n, picks % n]
    err = float(np.max(np.abs(ours - ref) / np.maximum(np.abs(ref), 1e-12)))
    pps_naive, pps_first, pps = len(coeffs) / t_naive, n * n / t_first, n * n / t_plane
    print(f"{name}: naive {pps_naive:.1f} points/s | ours first call {pps_first:.1f} points/s "
          f"({pps_first / pps_naive:.1f}×), steady {pps:.1f} points/s ({pps / pps_naive:.1f}×) "
          f"| plan {again.meta['evaluation']} | max rel. diff vs naive {err:.1e} | two "
          f"Landscapes, same bits: {np.array_equal(surf['loss'], again['loss'], equal_nan=True)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=51)
    parser.add_argument("--naive-points", type=int, default=20)
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--memory", default="8GB", help="the engine's memory budget")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("skipped: no CUDA")
        return
    device = torch.device("cuda", 0)
    print(f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}, float32, TF32 off, "
          f"{args.n}×{args.n} planes, {args.samples:,} CIFAR-shaped samples")
    X, y = cifar_like(args.samples)
    bench("MLP 3072-512-512-10", mlp().to(device), X.to(device), y.to(device), args)
    resnet = resnet20(X).to(device)
    bench("ResNet-20", resnet, X.to(device), y.to(device), args)


if __name__ == "__main__":
    main()
