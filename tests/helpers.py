"""Small models, reference evaluations and model snapshots shared by the engine tests.

Everything here is small (digits, 64-32-10 MLPs, 4-channel CNNs, grids of 5 to 21 points) so
the whole suite runs in well under two minutes on a 2-core CPU.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence

import matplotlib
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

matplotlib.use("Agg")

import ls_widget as lw


# --------------------------------------------------------------------------------- models
class Quadratic(nn.Module):
    """One parameter vector θ; the output is θ repeated per sample (see `quadratic_loss`)."""

    def __init__(self, theta0: torch.Tensor) -> None:
        super().__init__()
        self.theta = nn.Parameter(theta0.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.theta.expand(x.shape[0], -1)


def make_quadratic_loss(
    A: torch.Tensor, c: float
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """loss(out, θ*) = ½ (out − θ*)ᵀ A (out − θ*) + c, averaged over the batch."""

    def quadratic_loss(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        r = out - target
        return 0.5 * torch.einsum("bi,ij,bj->b", r, A, r).mean() + c

    return quadratic_loss


def mlp(seed: int = 0, sizes: Sequence[int] = (64, 32, 10), dtype=torch.float32) -> nn.Module:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers).to(dtype)


def flatten_mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)
    )


def cnn_bn(seed: int = 0) -> nn.Module:
    """Conv2d + BatchNorm2d + ReLU + pooling + Linear on 1×8×8 digit images."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(4 * 4 * 4, 10),
    )


def mlp_bn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(64, 24), nn.BatchNorm1d(24), nn.ReLU(), nn.Linear(24, 10)
    )


def train(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    steps: int,
    seed: int = 0,
    lr: float = 1e-2,
    batch: int = 128,
) -> nn.Module:
    """A few Adam steps on minibatches (updates BN running statistics); ends in eval mode."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, X.shape[0], (batch,), generator=g)
        opt.zero_grad()
        F.cross_entropy(model(X[idx]), y[idx]).backward()
        opt.step()
    opt.zero_grad(set_to_none=True)
    for p in model.parameters():
        p.grad = None
    model.eval()
    return model


# --------------------------------------------------------------------------------- helpers
def batches_of(data) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The (x, y) batches a reference evaluation iterates over."""
    if isinstance(data, tuple) and isinstance(data[0], torch.Tensor):
        return [data]
    return [(x, y) for x, y in data]


def naive_eval(
    model: nn.Module,
    data,
    loss_fn: Callable,
    dirs: Sequence[Mapping[str, torch.Tensor]],
    coeffs: Iterable[Sequence[float]],
    metrics: Mapping[str, Callable] | None = None,
    buffers: bool = False,
) -> dict[str, np.ndarray]:
    """Reference: deep copy, write θ₀ + Σ cₖ dₖ into it, eval mode, forward all data.

    Returns sample-weighted means (float64) of the loss and the metrics per point.
    """
    fns = {"loss": loss_fn, **(metrics or {})}
    out: dict[str, list[float]] = {k: [] for k in fns}
    base = copy.deepcopy(model)
    theta0 = {n: p.detach().clone() for n, p in base.named_parameters()}
    buf0 = {n: b.detach().clone() for n, b in base.named_buffers()}
    data_batches = batches_of(data)
    dtype = next(base.parameters()).dtype
    for c in coeffs:
        m = copy.deepcopy(base)
        with torch.no_grad():
            for n, p in m.named_parameters():
                v = theta0[n].clone()
                for ck, d in zip(c, dirs, strict=True):
                    v = v + ck * d[n].to(v.dtype)
                p.copy_(v)
            if buffers:
                for n, b in m.named_buffers():
                    if not b.is_floating_point():
                        continue
                    v = buf0[n].clone()
                    for ck, d in zip(c, dirs, strict=True):
                        if n in d.buffers:
                            v = v + ck * d.buffers[n].to(v.dtype)
                    b.copy_(v)
        m.eval()
        sums = dict.fromkeys(fns, 0.0)
        total = 0
        with torch.no_grad():
            for x, y in data_batches:
                x = x.to(dtype) if x.is_floating_point() else x
                o = m(x)
                k = y.shape[0]
                for name, fn in fns.items():
                    sums[name] += float(fn(o, y)) * k
                total += k
        for name in fns:
            out[name].append(sums[name] / total)
    return {k: np.array(v) for k, v in out.items()}


def grid_coeffs(x: np.ndarray, y: np.ndarray | None = None) -> list[tuple[float, ...]]:
    """Coefficients in the order of a Surface's values (row i = y[i], column j = x[j])."""
    if y is None:
        return [(float(a),) for a in x]
    return [(float(a), float(b)) for b in y for a in x]


def eval_loss(model: nn.Module, X: torch.Tensor, y: torch.Tensor, loss_fn=F.cross_entropy) -> float:
    """The model's own loss in eval mode, without touching the model (on a deep copy)."""
    m = copy.deepcopy(model).eval()
    with torch.no_grad():
        return float(loss_fn(m(X), y))


def snapshot(model: nn.Module) -> dict:
    """Everything about a model that must survive any public call unchanged."""
    return {
        "params": {n: p.detach().clone() for n, p in model.named_parameters()},
        "param_ids": {n: id(p) for n, p in model.named_parameters()},
        "param_ptrs": {n: p.data_ptr() for n, p in model.named_parameters()},
        "buffers": {n: b.detach().clone() for n, b in model.named_buffers()},
        "buffer_ptrs": {n: b.data_ptr() for n, b in model.named_buffers()},
        "training": {n: m.training for n, m in model.named_modules()},
        "requires_grad": {n: p.requires_grad for n, p in model.named_parameters()},
        "grads": {n: p.grad for n, p in model.named_parameters()},
        "hooks": {
            n: (len(m._forward_hooks), len(m._forward_pre_hooks))
            for n, m in model.named_modules()
        },
    }


def assert_unchanged(model: nn.Module, snap: dict) -> None:
    now = snapshot(model)
    assert now["params"].keys() == snap["params"].keys()
    for n, p in snap["params"].items():
        q = now["params"][n]
        assert q.dtype == p.dtype and q.device == p.device, n
        assert torch.equal(q, p), f"parameter {n} changed"
    assert now["param_ids"] == snap["param_ids"], "parameter objects were replaced"
    assert now["param_ptrs"] == snap["param_ptrs"], "parameter storage was replaced"
    assert now["buffers"].keys() == snap["buffers"].keys()
    for n, b in snap["buffers"].items():
        c = now["buffers"][n]
        assert c.dtype == b.dtype, n
        assert torch.equal(c, b), f"buffer {n} changed"
    assert now["buffer_ptrs"] == snap["buffer_ptrs"], "buffer storage was replaced"
    assert now["training"] == snap["training"], "training flags changed"
    assert now["requires_grad"] == snap["requires_grad"], "requires_grad flags changed"
    for n, g in snap["grads"].items():
        assert now["grads"][n] is g, f"gradient of {n} changed"
    assert now["hooks"] == snap["hooks"], "hooks were left on the model"


def quad_setup(n: int = 6, seed: int = 0, device: str | torch.device = "cpu"):
    """A float64 quadratic problem on `device`: model, data, loss, A, θ*, c (A and θ* on the
    CPU, for closed-form references)."""
    g = torch.Generator().manual_seed(seed)
    M = torch.randn(n, n, generator=g, dtype=torch.float64)
    A = M @ M.T / n + 0.3 * torch.eye(n, dtype=torch.float64)
    A[0, 1] = A[1, 0] = A[0, 1] - 1.5  # not diagonal, not necessarily definite
    theta_star = torch.randn(n, generator=g, dtype=torch.float64)
    theta0 = theta_star + 0.5 * torch.randn(n, generator=g, dtype=torch.float64)
    c = 0.75
    model = Quadratic(theta0).to(device)
    X = torch.zeros(5, 1, dtype=torch.float64, device=device)
    Y = theta_star.expand(5, n).clone().to(device)
    return model, (X, Y), make_quadratic_loss(A.to(device), c), A, theta_star, c


__all__ = [
    "Quadratic",
    "assert_unchanged",
    "cnn_bn",
    "eval_loss",
    "flatten_mlp",
    "grid_coeffs",
    "lw",
    "make_quadratic_loss",
    "mlp",
    "mlp_bn",
    "naive_eval",
    "quad_setup",
    "snapshot",
    "train",
]
