"""Argument checks shared by the direction constructors."""

from __future__ import annotations

import difflib

from torch import Tensor, nn

from ..engine.params import floating_params


def _named_params(model: nn.Module, what: str = "the model") -> list[tuple[str, Tensor]]:
    # Normalizing against a NaN θ would give a NaN direction: the checks say where it comes from.
    return floating_params(model, what)


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

