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


# ------------------------------------------------------------------ real architectures
def cifar_like(n: int = 10_000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """`n` random CIFAR-shaped samples (3×32×32, standard normal) and labels in 0..9."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 32, 32, generator=g), torch.randint(0, 10, (n,), generator=g)


class ShortcutA(nn.Module):
    """He et al.'s option A shortcut: subsample by the stride, zero-pad the new channels."""

    def __init__(self, planes: int) -> None:
        super().__init__()
        self.pad = planes // 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))


class BasicBlock(nn.Module):
    """Two 3×3 conv-BN layers with an identity (or option A) shortcut."""

    def __init__(self, inp: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inp, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut: nn.Module = (
            ShortcutA(planes) if stride != 1 or inp != planes else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet20(nn.Module):
    """The CIFAR ResNet-20 of He et al. 2016: a 16-channel stem, 3 stages × 3 basic blocks
    (16/32/64 channels), option A shortcuts, global average pooling, a 10-way linear head
    (0.27 M parameters)."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        blocks: list[nn.Module] = []
        inp = 16
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            for i in range(3):
                blocks.append(BasicBlock(inp, planes, stride if i == 0 else 1))
                inp = planes
        self.layers = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layers(out)
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.fc(out)


def resnet20(X: torch.Tensor, seed: int = 0, samples: int = 2_000) -> nn.Module:
    """ResNet-20 at its initialization, in eval mode, with non-trivial BatchNorm: γ and β drawn
    around 1 and 0, and running statistics averaged over forwards of `samples` of `X` in train
    mode (no gradient step: the statistics are real activation statistics)."""
    torch.manual_seed(seed)
    model = ResNet20()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.momentum = None  # cumulative average over the forwards below
        model.train()
        for i in range(0, samples, 250):
            model(X[i : i + 250])
    return model.eval()


def token_data(
    n: int = 512, length: int = 64, vocab: int = 1000, classes: int = 10, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """`n` random token sequences of `length` ids below `vocab`, and labels in 0..classes-1."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (n, length), generator=g)
    return ids, torch.randint(0, classes, (n,), generator=g)


class TokenClassifier(nn.Module):
    """Token and learned position embeddings, a post-norm `nn.TransformerEncoder`
    (batch_first), mean pooling over positions and a linear head."""

    def __init__(
        self, vocab: int = 1000, length: int = 64, d_model: int = 128, heads: int = 4,
        layers: int = 4, ff: int = 512, classes: int = 10,
    ) -> None:
        super().__init__()
        self.tokens = nn.Embedding(vocab, d_model)
        self.positions = nn.Embedding(length, d_model)
        layer = nn.TransformerEncoderLayer(d_model, heads, ff, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(ids.shape[1], device=ids.device)
        h = self.encoder(self.tokens(ids) + self.positions(pos))
        return self.head(h.mean(dim=1))


def transformer(seed: int = 0, **kw: int) -> nn.Module:
    """A 4-layer, d_model 128, 4-head `TokenClassifier` at its initialization, in eval mode."""
    torch.manual_seed(seed)
    return TokenClassifier(**kw).eval()
