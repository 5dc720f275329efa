"""Shared pieces of the benchmarks: the digits data, the models, a trainer, timing helpers."""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def digits(image: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """sklearn's bundled 8×8 digits (1,797 samples), scaled to [0, 1]."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    x = torch.tensor(X / 16.0, dtype=torch.float32)
    if image:
        x = x.reshape(-1, 1, 8, 8)
    return x, torch.tensor(y)


def mlp() -> nn.Module:
    return nn.Sequential(
        nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10)
    )


def cnn() -> nn.Module:
    """A small conv net with BatchNorm (about 26k parameters) for 1×8×8 digits."""

    def block(i: int, o: int) -> list[nn.Module]:
        return [nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU()]

    return nn.Sequential(
        *block(1, 16), nn.MaxPool2d(2), *block(16, 32), *block(32, 64), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 2 * 2, 10),
    )


def train(model: nn.Module, X: torch.Tensor, y: torch.Tensor, steps: int = 150) -> nn.Module:
    torch.manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, len(X), (256,))
        opt.zero_grad()
        F.cross_entropy(model(X[idx]), y[idx]).backward()
        opt.step()
    return model.eval()


def naive_plane(
    model: nn.Module, X: torch.Tensor, y: torch.Tensor, d1: dict, d2: dict,
    coeffs: np.ndarray,
) -> np.ndarray:
    """The reference loop: copy θ₀ + a·d₁ + b·d₂ into a deep copy, forward, loss. Per point."""
    net = copy.deepcopy(model).eval()
    theta = {n: p.detach().clone() for n, p in net.named_parameters()}
    out = np.empty(len(coeffs))
    with torch.no_grad():
        for i, (a, b) in enumerate(coeffs):
            for n, p in net.named_parameters():
                p.copy_(theta[n] + a * d1[n] + b * d2[n])
            out[i] = F.cross_entropy(net(X), y).item()
    return out


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    t0 = time.perf_counter()
    res = fn()
    return time.perf_counter() - t0, res


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def matmul_peak(seconds: float = 0.6) -> float:
    """This machine's fp32 matmul throughput (GFLOP/s): the best shape's median rate.

    Shapes: square 512² to 2048², and the digits MLP's own (1797×128 · 128×128).
    """
    shapes = [(512, 512, 512), (1024, 1024, 1024), (2048, 2048, 2048), (1797, 128, 128)]
    best = 0.0
    for m, k, n in shapes:
        a, b = torch.randn(m, k), torch.randn(k, n)
        a @ b
        rates = []
        t_end = time.perf_counter() + seconds
        while time.perf_counter() < t_end or len(rates) < 3:
            t0 = time.perf_counter()
            a @ b
            rates.append(2 * m * k * n / (time.perf_counter() - t0) / 1e9)
        best = max(best, median(rates))
    return best


def forward_flops(model: nn.Module, X: torch.Tensor) -> float:
    """Multiply-add FLOPs (×2) of Linear and Conv2d layers in one forward over X."""
    total = 0.0

    def hook(m: nn.Module, inp: tuple, out: torch.Tensor) -> None:
        nonlocal total
        if isinstance(m, nn.Linear):
            total += 2.0 * out.numel() * m.in_features
        elif isinstance(m, nn.Conv2d):
            k = m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
            total += 2.0 * out.numel() * k

    hs = [m.register_forward_hook(hook) for m in model.modules()]
    try:
        with torch.no_grad():
            copy.deepcopy(model).eval()(X)
    finally:
        for h in hs:
            h.remove()
    return total
