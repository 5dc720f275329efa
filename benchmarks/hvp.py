"""Hessian-vector products: ours (`HessianOperator.hvp`) against a plain double backward.

Run: ``.venv/bin/python benchmarks/hvp.py [--repeats 11] [--threads 2] [--models ...]`` (5 to 8
minutes on 2 shared cores, most of it the ResNet).

For each model it times one product H v, float32, eval mode, over the same data in the same
batches, three ways, interleaved round by round (the order rotating each round, so a change of
machine load hits all three alike):

- ours: ``land.hessian.operator().hvp(v)``, everything included (the flat vector in and out,
  the private copy of the model, the batches' weights);
- plain: the textbook double backward on the user's own model, ``loss = Σ_b w_b·loss_b``
  (w_b = the batch's share of the samples), ``g = autograd.grad(loss, params,
  create_graph=True)``, ``autograd.grad(g, params, v)``;
- fwd: the textbook forward-over-reverse with ``torch.func``, ``jvp(grad(loss), (params,),
  (v,))`` over ``functional_call`` (the path ours took before; ``--no-forward`` skips it).

It prints the median milliseconds per product of each, the ratios to plain (the median over
rounds of the ratio within a round; the target is ours/plain ≤ 1.3 on every model), the largest
difference between ours and plain over three random vectors relative to plain's largest entry
(float32 rounding of the same ops: "agree" means ≤ 1e-4), and whether ours gave the same bits
for the same vector before and after all the timed products.

Models: the digits MLP (64-128-128-10, trained, all 1,797 digits, one batch), and the same in
29 batches of 64 (where the cost per batch outside the arithmetic shows most); a wide MLP
(784-1024-1024-10, 1.8M parameters, random weights, 4,096 random samples in two batches of
2,048); the small CNN with BatchNorm of common.py (trained, all 1,797 digits); the ResNet-20
of common.py (He et al. 2016, 0.27M parameters, at initialization with non-trivial
BatchNorm) on 256 random CIFAR-shaped 3×32×32 samples in two batches of 128.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# Idle OpenMP threads sleep instead of spinning (see hessian.py); set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad, jvp

sys.path.insert(0, str(Path(__file__).parent))
from common import cifar_like, cnn, digits, mlp, resnet20, train

import ls_widget as lw

TARGET = 1.3  # ours / plain, per product
AGREE = 1e-4  # max |ours − plain| / max |plain|: float32 products of the same ops


@dataclass
class Case:
    """A model, its data, and the batch size both sides use."""

    name: str
    model: nn.Module
    X: Tensor
    y: Tensor
    batch_size: int


# ------------------------------------------------------------------------------- models
def cases(names: list[str]) -> list[Case]:
    """The benchmark's models (of "mlp", "mlp64", "wide", "cnn", "resnet"), in that order."""
    out = []
    if "mlp" in names:
        X, y = digits()
        out.append(Case("digits MLP 64-128-128-10", train(mlp(), X, y), X, y, 2048))
    if "mlp64" in names:  # many small batches: where per-batch overhead shows most
        X, y = digits()
        out.append(Case("digits MLP, batches of 64", train(mlp(), X, y), X, y, 64))
    if "wide" in names:
        torch.manual_seed(0)
        gen = torch.Generator().manual_seed(0)
        model = nn.Sequential(nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 1024),
                              nn.ReLU(), nn.Linear(1024, 10)).eval()
        X = torch.randn(4096, 784, generator=gen)
        out.append(Case("wide MLP 784-1024-1024-10", model, X,
                        torch.randint(0, 10, (4096,), generator=gen), 2048))
    if "cnn" in names:
        X, y = digits(image=True)
        out.append(Case("digits CNN with BatchNorm", train(cnn(), X, y), X, y, 2048))
    if "resnet" in names:
        X, y = cifar_like(256)
        out.append(Case("ResNet-20, CIFAR-shaped", resnet20(X, samples=256), X, y, 128))
    return out


# ------------------------------------------------------------------------------- products
def plain_hvp(model: nn.Module, batches: list[tuple[Tensor, Tensor]], n: int,
              params: list[Tensor], v: list[Tensor]) -> tuple[Tensor, ...]:
    """The textbook double backward on the user's model."""
    loss = sum(F.cross_entropy(model(x), y) * (len(y) / n) for x, y in batches)
    g = torch.autograd.grad(loss, params, create_graph=True)
    return torch.autograd.grad(g, params, v)


def forward_over_reverse(model: nn.Module, batches: list[tuple[Tensor, Tensor]], n: int,
                         params: dict[str, Tensor], v: dict[str, Tensor]) -> dict[str, Tensor]:
    """The textbook forward-over-reverse with torch.func, over all batches at once."""
    buffers = dict(model.named_buffers())

    def loss(p: dict[str, Tensor]) -> Tensor:
        return sum(F.cross_entropy(functional_call(model, (p, buffers), (x,)), y)
                   * (len(y) / n) for x, y in batches)  # type: ignore[return-value]

    return jvp(grad(loss), (params,), (v,))[1]


def flat(parts: list[Tensor] | tuple[Tensor, ...]) -> Tensor:
    return torch.cat([t.reshape(-1) for t in parts])


def rel_diff(a: Tensor, b: Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


# ------------------------------------------------------------------------------- bench
def bench(case: Case, repeats: int, with_forward: bool) -> dict[str, float]:
    model, X, y = case.model, case.X, case.y
    land = lw.Landscape(model, (X, y), batch_size=case.batch_size)
    op = land.hessian.operator()
    named = dict(model.named_parameters())
    params = [named[n] for n in op.names]
    batches = list(zip(X.split(case.batch_size), y.split(case.batch_size), strict=True))
    n = len(y)
    gen = torch.Generator().manual_seed(1)
    vs = [torch.randn(op.n, generator=gen) for _ in range(3)]
    v = vs[0]
    v_parts = list(op.unflatten(v).values())
    v_dict = dict(zip(op.names, v_parts, strict=True))
    detached = {k: named[k].detach() for k in op.names}

    first = op.hvp(v)
    diff = max(rel_diff(op.hvp(u), flat(plain_hvp(model, batches, n, params,
                                                  list(op.unflatten(u).values()))))
               for u in vs)
    fns: dict[str, Callable[[], object]] = {
        "ours": lambda: op.hvp(v),
        "plain": lambda: plain_hvp(model, batches, n, params, v_parts),
    }
    if with_forward:
        fns["fwd"] = lambda: forward_over_reverse(model, batches, n, detached, v_dict)
        fwd = forward_over_reverse(model, batches, n, detached, v_dict)
        diff_fwd = rel_diff(flat([fwd[k] for k in op.names]), first)
    for fn in fns.values():  # warm-up
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    ratios: dict[str, list[float]] = {k: [] for k in fns if k != "plain"}
    keys = list(fns)
    for r in range(repeats):
        order = keys[r % len(keys):] + keys[: r % len(keys)]
        took = {}
        for k in order:
            t0 = time.perf_counter()
            fns[k]()
            took[k] = time.perf_counter() - t0
            times[k].append(took[k])
        for k in ratios:
            ratios[k].append(took[k] / took["plain"])
    same_bits = torch.equal(op.hvp(v), first)

    ms = {k: 1e3 * statistics.median(t) for k, t in times.items()}
    ratio = {k: statistics.median(r) for k, r in ratios.items()}
    print(f"\n## {case.name}: {op.n:,} parameters, {n:,} samples in {len(batches)} "
          f"batch{'es' if len(batches) > 1 else ''} of ≤ {case.batch_size}")
    print(f"  ms per product (median of {repeats}): "
          + ", ".join(f"{k} {v:.1f}" for k, v in ms.items()))
    print(f"  ours/plain = {ratio['ours']:.2f}  "
          f"[{'met' if ratio['ours'] <= TARGET else 'MISSED'}: ≤ {TARGET}]"
          + (f";  fwd/plain = {ratio['fwd']:.2f}" if with_forward else ""))
    print(f"  max |ours − plain| / max |plain| over 3 vectors: {diff:.1e} "
          f"[{'agree' if diff <= AGREE else 'DIFFER'}]"
          + (f";  fwd vs ours: {diff_fwd:.1e}" if with_forward else ""))
    print(f"  ours: same bits for the same v after {op.hvps - 1} products: {same_bits}")
    return ratio


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=11, help="timed rounds per model")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models", default="mlp,mlp64,wide,cnn,resnet",
                    help="comma-separated, of: mlp, mlp64, wide, cnn, resnet")
    ap.add_argument("--no-forward", action="store_true",
                    help="skip the forward-over-reverse column")
    args = ap.parse_args()
    known = {"mlp", "mlp64", "wide", "cnn", "resnet"}
    names = args.models.split(",")
    if unknown := [m for m in names if m not in known]:
        ap.error(f"unknown models {unknown}; choose from {sorted(known)}")

    torch.set_num_threads(args.threads)
    print(f"# ls-widget HVP benchmark — {platform.processor() or platform.machine()}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}, "
          f"load average {os.getloadavg()[0]:.1f} at start")
    t0 = time.perf_counter()
    worst = max(bench(c, args.repeats, not args.no_forward)["ours"] for c in cases(names))
    print(f"\n# worst ours/plain {worst:.2f} ({'met' if worst <= TARGET else 'MISSED'}: "
          f"≤ {TARGET} on every model); total {time.perf_counter() - t0:.0f} s, load average "
          f"{os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
