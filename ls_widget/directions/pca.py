"""PCA directions of a training trajectory (Li et al. 2018, §7), never forming a parameter ×
parameter matrix.

With T snapshots θᵢ and the centre θ_c, the rows rᵢ = θᵢ − θ_c (over the parameters that
move) are centred, M = rows − their mean, as scikit-learn and the reference code do; the
principal directions are the top eigenvectors of MᵀM. We never form it (P × P) nor M (T × P):
the T × T Gram matrix G = R Rᵀ is accumulated block by block in float64, centred on both
sides (J G J, J = I − 11ᵀ/T, equals M Mᵀ), and its eigenvectors uᵢ give the directions
Mᵀu / ‖Mᵀu‖ and the explained variance ratios λᵢ / Σλ. The centre only moves the plane's
origin: the directions do not depend on it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
from torch import Tensor

from ..engine.memory import parse_memory
from ..engine.params import TensorSpec
from ._checks import _check_choice
from .direction import Direction
from .gaussian import Ignore

if TYPE_CHECKING:
    from ..trajectory import Trajectory

Center = Literal["last", "first"] | int

_IGNORES = ("biasbn", None)
DEFAULT_PCA_MEMORY = 256 * 2**20


def pca(
    traj: Trajectory,
    k: int = 2,
    center: Center = "last",
    ignore: Ignore = "biasbn",
    *,
    memory: int | str = DEFAULT_PCA_MEMORY,
) -> list[Direction]:
    """The top `k` principal directions of a trajectory's snapshots (Li et al.'s paths).

    Equal, up to sign, to a textbook PCA (``sklearn.decomposition.PCA``) of the flattened
    differences θᵢ − θ_c: unit vectors, orthogonal, ordered by explained variance.
    Each direction's sign is fixed so that its largest-magnitude entry is positive (the first
    such entry in ``named_parameters()`` order on a tie), the same on every run.

    Args:
        traj: a `lw.Trajectory` (``lw.Recorder(model).trajectory``,
            ``lw.Trajectory.from_checkpoints(files, model)``) of at least k + 1 snapshots.
        k: how many directions.
        center: the plane's origin: ``"last"`` (the final model, as Li et al.), ``"first"``
            or a snapshot index. Compute the surface around that model
            (``traj.model_at(-1)`` for ``"last"``).
        ignore: ``"biasbn"`` (default, as every published script) leaves tensors with
            dim ≤ 1 (biases, BatchNorm γ and β) out of the PCA and zero in the directions;
            None includes them.
        memory: working memory in bytes or as a string ("256MB"): float64 slices of the
            snapshots, and blocks of snapshots read from files. Beyond it: the T × T matrices,
            the centre and the k directions (8·(k + 1)·P bytes for P parameters).

    Returns:
        k `Direction`s over the model's parameters (no buffer moves: BatchNorm statistics stay
        the centre model's), in its dtypes and on its device. Provenance: ``kind="pca"``,
        ``component`` (1..k), ``explained_variance_ratio``, ``explained_variance`` (as
        scikit-learn's, λ/(T − 1)), ``label`` ("PC1 · 83.2 %"), ``center``, ``center_index``,
        ``ignore``, ``n_snapshots``, ``trajectory`` (the trajectory's fingerprint) and
        ``coordinates`` (each snapshot's coordinate along the direction, from the centre:
        what ``surf.plot(path=traj)`` draws).

    Raises:
        ValueError: k < 1, fewer than k + 1 snapshots, snapshots that vary along fewer than k
            directions, a centre out of range, or non-finite snapshots (named).
    """
    _check_trajectory(traj)
    k = _check_k(k)
    _check_choice("ignore", ignore, _IGNORES)
    budget = parse_memory(memory)
    n = len(traj)
    if n < k + 1:
        raise ValueError(
            f"pca(k={k}) needs at least k + 1 = {k + 1} snapshots (T centred snapshots span at "
            f"most T − 1 directions); the trajectory has {n}: record more snapshots "
            "(lw.Recorder(model, every=...)) or ask for fewer directions"
        )
    c = _center_index(center, n)
    moving = [s for s in traj.specs if not (ignore == "biasbn" and len(s.shape) <= 1)]
    if not moving:
        raise ValueError(
            "ignore='biasbn' leaves no parameter in the PCA (every tensor has dim <= 1); "
            "pass ignore=None"
        )
    snap = traj.state(c, copy=False)
    centre = {s.name: snap[s.name].reshape(-1).double() for s in moving}
    del snap
    for name, t in centre.items():
        _check_finite(traj, t[None], name, c)
    row_bytes = sum(s.numel * (8 if s.dtype == torch.float64 else 4) for s in traj.specs)
    # Snapshots read from files come in blocks: all at once when they fit half the budget,
    # else two blocks of a quarter each (every block is read once more per earlier block).
    fits = traj.in_memory or n * row_bytes <= budget // 2
    block = n if fits else max(1, budget // 4 // row_bytes)
    cols = max(1024, budget // 4 // (8 * 2 * block))
    gram = _gram(traj, moving, centre, block, cols)

    lam, coeff = _principal(gram, k, ignore)
    comps = _components(traj, moving, centre, coeff)
    norms = torch.zeros(k, dtype=torch.float64)
    for v in comps.values():
        norms += (v * v).sum(dim=1)
    norms.sqrt_()
    signs = _signs(comps, moving)
    for v in comps.values():
        v.mul_((signs / norms)[:, None])
    coords = (gram @ coeff) * (signs / norms).numpy()  # rᵢ · v_j, from the raw Gram matrix
    total = float(np.trace(_centred(gram)))
    fingerprint = traj.fingerprint
    center_desc: str | int = center if isinstance(center, str) else c
    out = []
    for j in range(k):
        ratio = float(lam[j] / total)
        tensors = {
            s.name: comps[s.name][j].reshape(s.shape).to(s.device, s.dtype) if s.name in comps
            else torch.zeros(s.shape, dtype=s.dtype, device=s.device)
            for s in traj.specs
        }
        out.append(Direction(
            tensors,
            kind="pca",
            component=j + 1,
            explained_variance_ratio=ratio,
            explained_variance=float(lam[j] / (n - 1)),
            label=f"PC{j + 1} · {100 * ratio:.1f} %",
            center=center_desc,
            center_index=c,
            ignore=ignore,
            norm=None,
            n_snapshots=n,
            trajectory=fingerprint,
            coordinates=tuple(float(x) for x in coords[:, j]),
        ))
    return out


def _check_trajectory(traj: object) -> None:
    needed = ("state", "specs", "steps", "fingerprint", "in_memory", "__len__")
    if not all(hasattr(traj, a) for a in needed):
        raise TypeError(
            f"pca() takes a lw.Trajectory (lw.Recorder(model).trajectory or "
            f"lw.Trajectory.from_checkpoints(files, model)), got {type(traj).__name__}"
        )


def _check_k(k: object) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"k must be an int (how many directions), got {k!r}")
    if k < 1:
        raise ValueError(f"k must be >= 1 (how many principal directions), got {k}; e.g. k=2")
    return int(k)


def _center_index(center: object, n: int) -> int:
    if isinstance(center, str):
        _check_choice("center", center, ("last", "first"))
        return n - 1 if center == "last" else 0
    if isinstance(center, bool) or not isinstance(center, (int, np.integer)):
        raise TypeError(
            f"center must be 'last', 'first' or a snapshot index, got {center!r}"
        )
    if not -n <= center < n:
        raise ValueError(
            f"center={center} is not a snapshot of a trajectory of {n} (0..{n - 1} or -{n}..-1)"
        )
    return int(center) % n


def _stage(
    buf: Tensor, rows: Sequence[Mapping[str, Tensor]], name: str, lo: int, hi: int,
    centre: Tensor,
) -> Tensor:
    """Columns lo:hi of tensor `name` of each row, minus the centre's, in float64: a view of
    the preallocated `buf` (allocating once keeps the peak at the budget, where fresh slices
    of varying sizes fragment the heap)."""
    out = buf[: len(rows), : hi - lo]
    for j, row in enumerate(rows):
        out[j].copy_(row[name].reshape(-1)[lo:hi])
    return out.sub_(centre[lo:hi])


def _gram(
    traj: Trajectory, moving: Sequence[TensorSpec], centre: Mapping[str, Tensor],
    block: int, cols: int,
) -> np.ndarray:
    """G = R Rᵀ for the rows rᵢ = θᵢ − θ_c, by blocks of `block` snapshots (each block read
    once, and once more for every earlier block) and slices of `cols` columns."""
    n = len(traj)
    gram = np.zeros((n, n))
    starts = list(range(0, n, block))
    cols = min(cols, max(s.numel for s in moving))
    stage_a = torch.empty((min(block, n), cols), dtype=torch.float64)
    stage_b = torch.empty((min(block, n), cols), dtype=torch.float64) if len(starts) > 1 else None
    for a, a0 in enumerate(starts):
        a1 = min(n, a0 + block)
        rows_a = [traj.state(i, copy=False) for i in range(a0, a1)]
        gram[a0:a1, a0:a1] = _product(traj, rows_a, moving, centre, cols, a0, stage_a)
        for b0 in starts[a + 1:]:
            b1 = min(n, b0 + block)
            rows_b = [traj.state(i, copy=False) for i in range(b0, b1)]
            assert stage_b is not None
            prod = _product(traj, rows_a, moving, centre, cols, a0, stage_a, rows_b, stage_b)
            gram[a0:a1, b0:b1] = prod
            gram[b0:b1, a0:a1] = prod.T
            del rows_b
        del rows_a
    return (gram + gram.T) / 2


def _product(
    traj: Trajectory,
    rows_a: Sequence[Mapping[str, Tensor]],
    moving: Sequence[TensorSpec],
    centre: Mapping[str, Tensor],
    cols: int,
    first: int,
    stage_a: Tensor,
    rows_b: Sequence[Mapping[str, Tensor]] | None = None,
    stage_b: Tensor | None = None,
) -> np.ndarray:
    """A Bᵀ over the moving tensors (A Aᵀ when `rows_b` is None, checking A is finite)."""
    out = torch.zeros((len(rows_a), len(rows_b or rows_a)), dtype=torch.float64)
    for s in moving:
        for lo in range(0, s.numel, cols):
            hi = min(s.numel, lo + cols)
            a = _stage(stage_a, rows_a, s.name, lo, hi, centre[s.name])
            if rows_b is None:
                _check_finite(traj, a, s.name, first)
                out.addmm_(a, a.T)
            else:
                assert stage_b is not None
                out.addmm_(a, _stage(stage_b, rows_b, s.name, lo, hi, centre[s.name]).T)
    return out.numpy()


def _check_finite(traj: Trajectory, staged: Tensor, name: str, first: int) -> None:
    ok = torch.isfinite(staged).all(dim=1)
    if bool(ok.all()):
        return
    i = first + int((~ok).nonzero()[0])
    raise ValueError(
        f"snapshot {i} (step {traj.steps[i]}) has non-finite values in {name!r}: a PCA through "
        "a diverged run is meaningless; build the trajectory from the snapshots before it "
        f"(e.g. lw.Trajectory.from_checkpoints(files[:{i}], model))"
    )


def _centred(gram: np.ndarray) -> np.ndarray:
    """J G J: the Gram matrix of the rows minus their mean."""
    out = gram - gram.mean(axis=0, keepdims=True) - gram.mean(axis=1, keepdims=True) + gram.mean()
    return (out + out.T) / 2


def _principal(gram: np.ndarray, k: int, ignore: object) -> tuple[np.ndarray, np.ndarray]:
    """(top k eigenvalues of J G J, descending; coefficients J u of the directions, T × k)."""
    lam, vecs = np.linalg.eigh(_centred(gram))
    lam, vecs = lam[::-1], vecs[:, ::-1]
    # Round-off in G is about eps·max|G| per entry; eigenvalues below that are noise.
    noise = 10 * len(gram) * np.finfo(np.float64).eps * float(np.abs(gram).max())
    rank = int((lam > noise).sum())
    if rank < k:
        what = "are all the same" if rank == 0 else f"vary along only {rank} direction(s)"
        raise ValueError(
            f"the snapshots {what} (over the parameters the PCA sees, ignore={ignore!r}), "
            f"fewer than k={k}: ask for k={max(rank, 1)}"
            + (" or" if rank else "") + " record snapshots that differ"
        )
    u = vecs[:, :k]
    return lam[:k].copy(), np.ascontiguousarray(u - u.mean(axis=0, keepdims=True))


def _components(
    traj: Trajectory, moving: Sequence[TensorSpec], centre: Mapping[str, Tensor],
    coeff: np.ndarray,
) -> dict[str, Tensor]:
    """Σᵢ coeff[i] ⊗ rᵢ per tensor (k × numel, float64), reading each snapshot once."""
    k = coeff.shape[1]
    c = torch.from_numpy(coeff)
    comps = {s.name: torch.zeros((k, s.numel), dtype=torch.float64) for s in moving}
    for i in range(len(traj)):
        snap = traj.state(i, copy=False)
        for s in moving:
            r = snap[s.name].reshape(-1).double().sub_(centre[s.name])
            comps[s.name].addr_(c[i], r)
    return comps


def _signs(comps: Mapping[str, Tensor], moving: Sequence[TensorSpec]) -> torch.Tensor:
    """+1 or −1 per component: the sign of its largest-magnitude entry (the first on a tie,
    in parameter order)."""
    k = next(iter(comps.values())).shape[0]
    best = [-math.inf] * k
    signs = torch.ones(k, dtype=torch.float64)
    for s in moving:
        v = comps[s.name]
        mags = v.abs()
        idx = mags.argmax(dim=1)  # the first maximum of each row
        mags = mags.max(dim=1).values
        for j in range(k):
            if float(mags[j]) > best[j]:
                best[j] = float(mags[j])
                signs[j] = -1.0 if float(v[j, int(idx[j])]) < 0 else 1.0
    return signs

