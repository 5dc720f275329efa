"""Argument checks shared by the direction constructors."""

from __future__ import annotations

import difflib

from torch import Tensor, nn

from ..engine.params import check_finite


def _named_params(model: nn.Module, what: str = "the model") -> list[tuple[str, Tensor]]:
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"expected a torch.nn.Module, got {type(model).__name__}; pass the model itself"
        )
    params = [(n, p.detach()) for n, p in model.named_parameters()]
    if not params:
        raise ValueError("the model has no parameters; there is no direction to draw")
    bad = [n for n, p in params if not p.is_floating_point()]
    if bad:
        raise TypeError(
            f"parameters {bad} are not floating point; convert the model with model.float()"
        )
    # Normalizing against a NaN θ would give a NaN direction: say where it comes from.
    check_finite(dict(params), f"{what}'s parameter",
                 "load a checkpoint from before training diverged")
    return params


def _check_choice(name: str, value: object, allowed: tuple[object, ...]) -> None:
    if (isinstance(value, str) and value in allowed) or (value is None and None in allowed):
        return
    hint = ""
    if isinstance(value, str):
        names = [a for a in allowed if isinstance(a, str)]
        close = difflib.get_close_matches(value.lower(), names, n=1, cutoff=0.6)
        if close:
            hint = f" (did you mean {name}={close[0]!r}?)"
    raise ValueError(
        f"{name}={value!r} is not supported{hint}; use one of {list(allowed)}"
    )

