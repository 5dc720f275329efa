"""`towards`: the direction from one model to another (Li et al.'s 1D interpolation)."""

from __future__ import annotations

import warnings

import torch
from torch import Tensor, nn

from ._checks import _named_params
from .direction import Direction


def _floating_buffers(model: nn.Module) -> dict[str, Tensor]:
    return {n: b.detach() for n, b in model.named_buffers() if b.is_floating_point()}


def _class_differences(model: nn.Module, other: nn.Module) -> list[str]:
    """Where the two models' classes differ (the model itself, then its submodules)."""
    diffs = []
    if type(model).__name__ != type(other).__name__:
        diffs.append(f"the models are {type(model).__name__} and {type(other).__name__}")
    mine = {n: type(m).__name__ for n, m in model.named_modules() if n}
    theirs = {n: type(m).__name__ for n, m in other.named_modules() if n}
    for n in mine:
        if n in theirs and mine[n] != theirs[n]:
            diffs.append(f"{n!r} is {mine[n]} and {theirs[n]}")
    diffs.extend(f"{n!r} is only in the first model" for n in mine if n not in theirs)
    diffs.extend(f"{n!r} is only in the other model" for n in theirs if n not in mine)
    return diffs


def towards(
    model: nn.Module,
    other: nn.Module,
    *,
    buffers: bool | None = None,
    label: str | None = None,
) -> Direction:
    """θ_other − θ: moving by α = 1 reaches `other` (Li et al.'s 1D interpolation).

    The floating buffers (BatchNorm running mean and variance) move too, which interpolation
    between two BN models needs to give the right losses: ``buffers=None`` (default) moves
    them when any of them differs between the models, ``buffers=True`` always,
    ``buffers=False`` never (weights only). Whether they moved is in the provenance
    (``buffers_moved``).

    Warns (UserWarning) when the models' classes or submodule classes differ although their
    parameters match in names and shapes; raises ValueError when those differ.
    """
    if buffers is not None and not isinstance(buffers, bool):
        raise TypeError(f"buffers must be None (auto), True or False, got {buffers!r}")
    mine = dict(_named_params(model))
    theirs = dict(_named_params(other, "the other model"))
    if mine.keys() != theirs.keys() or any(
        mine[k].shape != theirs[k].shape for k in mine
    ):
        raise ValueError(
            "the two models have different architectures (parameter names or shapes differ); "
            "towards() needs two instances of the same model class"
        )
    diffs = _class_differences(model, other)
    if diffs:
        warnings.warn(
            "towards(): the two models' parameters match in names and shapes, but their "
            f"architectures differ ({'; '.join(diffs[:3])}"
            f"{'; ...' if len(diffs) > 3 else ''}); the direction pairs parameters by name",
            UserWarning,
            stacklevel=2,
        )
    tensors = {k: theirs[k].to(mine[k].device, mine[k].dtype) - mine[k] for k in mine}
    deltas: dict[str, Tensor] = {}
    if buffers is not False:
        mb, ob = _floating_buffers(model), _floating_buffers(other)
        if mb.keys() != ob.keys() or any(mb[k].shape != ob[k].shape for k in mb):
            raise ValueError(
                "the two models' buffers differ in names or shapes; they must share an "
                "architecture (or pass buffers=False to move the weights only)"
            )
        deltas = {k: ob[k].to(mb[k].device, mb[k].dtype) - mb[k] for k in mb}
        if buffers is None and not any(bool(torch.any(d != 0)) for d in deltas.values()):
            deltas = {}
    return Direction(
        tensors,
        buffers=deltas,
        kind="towards",
        norm=None,
        ignore=None,
        buffers_moved=bool(deltas) if buffers is None else bool(buffers),
        label=label or "towards other model",
    )
