"""The two ways to run a binding's points: one forward per point, or vmap over chunks.

- `loop`: one forward per point on the private copy, with the plan's shortcuts (precomputed
  first layer, speedups.py). Points of a grid row share their partial sums.
- `vmapped`: `torch.func.functional_call` vectorized over chunks of points (pays on GPUs and
  for small data, where one point does not fill the device). Every call gets exactly the
  binding's chunk of points, the last one padded, because a batched kernel may round
  differently for another batch size: a point's value never depends on its company. If a
  GPU runs out of memory, the chunk is halved and the same points run again (`_halve`).

Both return, per point, the sample-weighted mean over all batches of the loss and of each
batch-mean metric, and the stateful metrics (stateful.py) fed every batch of the point in the
data's order and computed once: shape (P, values). Without stateful metrics nothing of theirs
runs (no picked outputs kept, no syncs).
"""

from __future__ import annotations

import warnings
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.func import vmap
from torch.utils._pytree import tree_map

from ..batch import Batch
from ..batch import forward as call_model
from . import speedups
from .binding import Binding
from .first_layer import Injected
from .scoring import Scorer
from .stateful import PointState


def loop(b: Binding, coeffs: np.ndarray) -> np.ndarray:
    """Values at the points `coeffs` (P, k), one forward per point and batch."""
    module, scorer = b.private.module, b.scorer
    score = scorer.score
    P = coeffs.shape[0]
    # One state for the stateful metrics: points run one at a time (`compute` resets it).
    state = scorer.states.take(1)[0] if scorer.states.names else None
    overall: list[list[float]] = []
    inj = b.injection if b.injected else None
    # Grid rows first: θ₀ + Σ_{k≥1} cₖdₖ (and the first layer's y₀ + Σ_{k≥1} cₖyₖ) are
    # then shared by the points of a row, each point adding only its c₀ term. Every point
    # is combined in this same order, so the order changes no value.
    order = np.lexsort((coeffs[:, 0], *coeffs[:, :0:-1].T)) if b.k > 1 else np.arange(P)
    last_rest: list[float] | None = None
    positional = not b.first_laid_out.kw  # a Sequential takes one input
    steps = (
        speedups.flatten(module, b.padded, (Injected,)) if b.fast and positional else None
    )
    context: AbstractContextManager[None]
    if steps is not None:
        flat_steps = steps  # a name of its own: mypy does not narrow `steps` in the closure

        def forward(batch: Batch) -> Tensor:
            return speedups.run(flat_steps, *batch.x)
        context = nullcontext()
    else:
        def forward(batch: Batch) -> Tensor:
            return call_model(module, batch)
        context = speedups.padded_forwards(b.padded if b.fast else {})
    # Scores stay 0-d tensors until the end: one stack for the whole call rather than a
    # few small ops per point (and no device sync per point on GPUs).
    scores: list[Tensor] = []
    sizes: list[int] = []  # samples per piece of a pass (the pieces are made as they run)
    with torch.no_grad(), context:
        for p, c in enumerate(coeffs[order].tolist()):
            new_row = c[1:] != last_rest
            b.move(c, new_row)
            for bi, batch in enumerate(b.laid_out):
                if p == 0:
                    sizes.append(batch.n)
                if inj is not None:
                    inj.feed(bi, c, new_row)
                if state is None:
                    scores += score(forward(batch), batch)
                    continue
                vals, picked = scorer.score_and_pick(forward(batch), batch)
                scores += vals
                scorer.update(state, picked, batch.y, bool(torch.isfinite(vals[0])))
            if state is not None:
                overall.append(scorer.compute(state))
            last_rest = c[1:]
        per_batch = torch.stack(scores).to(torch.float64)
    names = scorer.mean_names
    weights = torch.tensor(sizes, dtype=torch.float64)
    per_batch = per_batch.cpu().reshape(P, len(sizes), len(names))
    means = np.empty((P, len(names)))
    means[order] = ((per_batch * weights[:, None]).sum(dim=1) / b.n_samples).numpy()
    if state is None:
        return means
    computed = np.empty((P, len(scorer.states.names)))
    computed[order] = overall
    return scorer.assemble(means, computed)


def vmapped(b: Binding, coeffs: np.ndarray) -> np.ndarray:
    """Values at the points `coeffs` (P, k), `b.vmap_chunk` points per vectorized call."""
    module, scorer, space = b.private.module, b.scorer, b.space
    device = space.device
    P = coeffs.shape[0]
    out_rows = []
    names_p = [n for f in b.flats for n in f.names]
    names_b = [n for f in b.buf_flats for n in f.names]
    static_p = {
        n: t for n, t in space.theta0.items() if n not in names_p
    }
    static_b = {n: t for n, t in space.buffers0.items() if n not in names_b}

    def model_at(flat_p: list[Tensor], flat_b: list[Tensor], batch: Batch) -> object:
        params = dict(static_p)
        for f, v in zip(b.flats, flat_p, strict=True):
            params.update(f.unflatten(v))
        bufs = dict(static_b)
        for f, v in zip(b.buf_flats, flat_b, strict=True):
            bufs.update(f.unflatten(v))
        return call_model(module, batch, (params, bufs))

    def point(flat_p: list[Tensor], flat_b: list[Tensor], batch: Batch) -> Tensor:
        out = model_at(flat_p, flat_b, batch)
        return _stacked(scorer.score(out, batch))

    # Stateful metrics cannot run under vmap: the vectorized call also returns the picked
    # output of every point, and each point's slice feeds that point's state outside it.
    def point_and_output(
        flat_p: list[Tensor], flat_b: list[Tensor], batch: Batch
    ) -> tuple[Tensor, Any]:
        vals, picked = scorer.score_and_pick(model_at(flat_p, flat_b, batch), batch)
        return _stacked(vals), picked

    def chunk(part: np.ndarray, size: int) -> np.ndarray:
        real = len(part)
        if real < size:  # always `size` points per call (see the module's docstring)
            part = np.concatenate([part, np.repeat(part[-1:], size - real, axis=0)])
        c = torch.as_tensor(part, device=device)
        fp = [torch.addmm(f.theta, c.to(f.theta.dtype), f.matrix) for f in b.flats]
        fb = [
            torch.addmm(f.theta, c.to(f.theta.dtype), f.matrix) for f in b.buf_flats
        ]
        acc = torch.zeros((c.shape[0], len(scorer.mean_names)), dtype=torch.float64,
                          device=device)
        states = scorer.states.take(real) if scorer.states.names else []  # padding: none
        for batch in b.batches:
            if not states:
                fn = vmap(lambda x, y, batch=batch: point(x, y, batch))
                acc += fn(fp, fb) * batch.n
                continue
            both = vmap(lambda x, y, batch=batch: point_and_output(x, y, batch))
            vals, picked = both(fp, fb)
            acc += vals * batch.n
            _feed(scorer, states, vals, picked, batch)
        means = (acc / b.n_samples).cpu().numpy()[:real]
        if states:
            computed = np.array([scorer.compute(state) for state in states])
            means = scorer.assemble(means, computed)
        return means

    start = 0
    with torch.no_grad():
        while start < P:
            size = b.vmap_chunk
            part = coeffs[start : start + size]
            try:
                rows: np.ndarray | None = chunk(part, size)
            except torch.cuda.OutOfMemoryError:
                if size == 1:
                    raise
                rows = None
            if rows is None:  # out of the except block: the failed call's tensors are freed
                _halve(b, size)
                continue  # the same points again, in chunks of half the size
            out_rows.append(rows)
            start += len(part)
    return np.concatenate(out_rows, axis=0)


def _halve(b: Binding, size: int) -> None:
    """The GPU ran out of memory with `size` points per vmap call: half as many from now on
    (for this binding). Which points shared a call changes, so values from here on may differ
    in their last bits from a run that had the memory (see `plan.vmap_chunk_size`)."""
    b.vmap_chunk = size // 2
    torch.cuda.empty_cache()
    warnings.warn(
        f"CUDA ran out of memory evaluating {size} points per vmapped call; retrying with "
        f"{b.vmap_chunk} (kept for these directions). Values may differ in their last bits "
        "from a run with the memory for the full chunk; a smaller memory= budget keeps the "
        "chunk fixed", RuntimeWarning, stacklevel=2,
    )


def _stacked(values: list[Tensor]) -> Tensor:
    return torch.stack([v.to(torch.float64) for v in values])


def _feed(
    scorer: Scorer, states: list[PointState], vals: Tensor, picked: Any, batch: Batch
) -> None:
    """Feed each real point of a vectorized call its slice of the picked output."""
    finite = torch.isfinite(vals[: len(states), 0]).tolist()
    for i, state in enumerate(states):
        mine = tree_map(lambda t, i=i: t[i], picked)
        scorer.update(state, mine, batch.y, finite[i])
