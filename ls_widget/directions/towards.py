"""`towards`: the direction from one model to another (Li et al.'s 1D interpolation)."""

from __future__ import annotations

from torch import Tensor, nn

from ._checks import _named_params
from .direction import Direction


def towards(
    model: nn.Module, other: nn.Module, *, buffers: bool = False, label: str | None = None
) -> Direction:
    """θ_other − θ: moving by α = 1 reaches `other` (Li et al.'s 1D interpolation).

    With ``buffers=True`` the floating buffers (BatchNorm running mean and variance) move too,
    which interpolation between two BN models needs to give the right losses.
    """
    mine = dict(_named_params(model))
    theirs = dict(_named_params(other, "the other model"))
    if mine.keys() != theirs.keys() or any(
        mine[k].shape != theirs[k].shape for k in mine
    ):
        raise ValueError(
            "the two models have different architectures (parameter names or shapes differ); "
            "towards() needs two instances of the same model class"
        )
    tensors = {k: theirs[k].to(mine[k].device, mine[k].dtype) - mine[k] for k in mine}
    deltas: dict[str, Tensor] = {}
    if buffers:
        mb = {n: b.detach() for n, b in model.named_buffers() if b.is_floating_point()}
        ob = {n: b.detach() for n, b in other.named_buffers() if b.is_floating_point()}
        if mb.keys() != ob.keys() or any(mb[k].shape != ob[k].shape for k in mb):
            raise ValueError("the two models' buffers differ; they must share an architecture")
        deltas = {k: ob[k].to(mb[k].device, mb[k].dtype) - mb[k] for k in mb}
    return Direction(
        tensors,
        buffers=deltas,
        kind="towards",
        norm=None,
        ignore=None,
        buffers_moved=bool(buffers),
        label=label or "towards other model",
    )

