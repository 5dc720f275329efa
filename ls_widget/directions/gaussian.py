"""Seeded Gaussian directions and Li et al.'s normalizations (filter, layer, model)."""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping
from typing import Any, Literal

import torch
from torch import Tensor, nn

from ..engine.params import ParamChoice, choice_text, describe_choice, filter_norms, select_names
from ._checks import _check_choice, _named_params
from .direction import Direction

Norm = Literal["filter", "layer", "model"] | None
Ignore = Literal["biasbn"] | None

_NORMS = ("filter", "layer", "model", None)
_IGNORES = ("biasbn", None)
_EPS = 1e-10  # as the reference code: keeps a zero slice of d from dividing by zero


def normalize(
    d: Mapping[str, Tensor],
    theta: Mapping[str, Tensor],
    norm: Norm = "filter",
    ignore: Ignore = "biasbn",
) -> dict[str, Tensor]:
    """Rescale a raw direction against θ as Li et al. do.

    - ``"filter"``: each slice along dim 0 of every tensor with dim > 1 (a conv filter, a Linear
      row) gets ‖dᵢ‖ = ‖θᵢ‖; tensors with dim ≤ 1 that are not ignored are rescaled as a whole.
    - ``"layer"``: each tensor as a whole, ‖d‖ = ‖θ‖.
    - ``"model"``: the whole vector (over the tensors that move), ‖d‖ = ‖θ‖.
    - ``None``: unchanged.

    ``ignore="biasbn"`` gives every tensor with dim ≤ 1 (biases, BN γ and β) a zero direction.
    """
    _check_choice("norm", norm, _NORMS)
    _check_choice("ignore", ignore, _IGNORES)
    out: dict[str, Tensor] = {}
    for name, t in d.items():
        th = theta[name]
        if ignore == "biasbn" and th.dim() <= 1:
            out[name] = torch.zeros_like(t)
        elif norm == "filter" and th.dim() > 1:
            out[name] = t * (filter_norms(th) / (filter_norms(t) + _EPS))
        elif norm in ("filter", "layer"):
            out[name] = t * (th.norm() / (t.norm() + _EPS))
        else:
            out[name] = t.clone()
    if norm == "model":
        moving = [k for k in out if not (ignore == "biasbn" and theta[k].dim() <= 1)]
        th_norm = math.sqrt(sum(float(theta[k].double().pow(2).sum()) for k in moving))
        d_norm = math.sqrt(sum(float(out[k].double().pow(2).sum()) for k in moving))
        scale = th_norm / (d_norm + _EPS)
        out = {k: v * scale for k, v in out.items()}
    return out


def _seed(seed: object) -> int:
    """An int seed; NumPy integers count (they come from ranges), floats and bools do not."""
    if not isinstance(seed, bool):
        try:
            return operator.index(seed)  # type: ignore[arg-type]
        except TypeError:
            pass
    example = f"seed={int(seed)}" if isinstance(seed, float) and seed.is_integer() else "seed=0"
    raise TypeError(
        f"seed must be an int, got {seed!r} ({type(seed).__name__}); pass e.g. {example}"
    )


def random(
    model: nn.Module,
    seed: int = 0,
    *,
    norm: Norm = "filter",
    ignore: Ignore = "biasbn",
    params: ParamChoice = "trainable",
) -> Direction:
    """A seeded Gaussian direction, normalized as in Li et al. (filter-wise by default).

    Entries are drawn from N(0, 1) by a CPU generator seeded with `seed`, in
    `named_parameters()` order (ignored and unselected tensors draw too, so neither `ignore`
    nor `params` ever changes the others), then cast to each parameter's dtype and moved to
    its device: the same seed gives the same direction, bit for bit, on every run and machine.

    `params` chooses the tensors that move; the others get a zero direction:
    ``"trainable"`` (default: those with ``requires_grad=True``, or every tensor when none
    requires grad), ``"all"``, a list of `fnmatch` glob patterns over the parameter names
    (``["layer4.*", "fc.*"]``) or a predicate ``fn(name, parameter) -> bool``. With
    ``norm="model"`` the norms are taken over the selected tensors.
    """
    seed = _seed(seed)
    _check_choice("norm", norm, _NORMS)
    _check_choice("ignore", ignore, _IGNORES)
    named = _named_params(model)
    selected = select_names(list(model.named_parameters()), params)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    raw = {}
    for name, p in named:
        draw_dtype = torch.float64 if p.dtype == torch.float64 else torch.float32
        raw[name] = torch.randn(p.shape, generator=gen, dtype=draw_dtype).to(p.device, p.dtype)
    theta = dict(named)
    norm_txt = f"{norm}-norm" if norm else "unnormalized"
    label = f"random #{seed}, {norm_txt}"
    extra: dict[str, Any] = {"params": describe_choice(params)}
    if len(selected) == len(named):
        tensors = normalize(raw, theta, norm, ignore)
    else:
        if ignore == "biasbn" and all(theta[n].dim() <= 1 for n in selected):
            raise ValueError(
                f"params={choice_text(params)} selects only tensors of dim <= 1 "
                f"({selected[:4]}), which ignore='biasbn' leaves still: nothing would move; "
                "pass ignore=None or select weight tensors too"
            )
        moved = normalize({n: raw[n] for n in selected}, theta, norm, ignore)
        tensors = {n: moved[n] if n in moved else torch.zeros_like(raw[n]) for n in raw}
        label += f", {choice_text(params)} ({len(selected)} of {len(named)} tensors)"
        extra["selected"] = selected
    return Direction(
        tensors,
        kind="random",
        seed=seed,
        norm=norm,
        ignore=ignore,
        label=label,
        **extra,
    )
