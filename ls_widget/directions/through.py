"""`through`: the plane through three models (Garipov et al. 2018's mode-connectivity pictures).

Centre θ₀, d₁ = θ₁ − θ₀ and d₂ = θ₂ − θ₀ minus its projection on d₁, both unnormalized: m0 sits
at (0, 0), m1 at (1, 0) and m2 at (⟨θ₂ − θ₀, d₁⟩/‖d₁‖², 1). The floating buffers (BatchNorm
running statistics) move with the same coefficients, so each model's point of the plane is that
model, running statistics included.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from ..engine.params import flat_dot
from .direction import Direction, combine
from .towards import towards

Coords = dict[str, tuple[float, float]]
"""Where each model sits in the plane: ``{"m0": (0, 0), "m1": (1, 0), "m2": (a, b)}``."""

# m2's part orthogonal to d₁ below this many ulps of its own size is rounding: the three
# models are on one line and span no plane.
_COLLINEAR_ULPS = 1e3


def _floating(named: Any) -> dict[str, Tensor]:
    return {n: t.detach() for n, t in named if t.is_floating_point()}


def _first_difference(
    mine: Mapping[str, Any], theirs: Mapping[str, Any], name: str, what: str
) -> str | None:
    """The first key of m0's `mine` missing from, or shaped differently in, `theirs` (or the
    first key only `theirs` has), in words."""
    for k, t in mine.items():
        if k not in theirs:
            return f"m0's {what} {k!r} is missing from {name}"
        shape = getattr(theirs[k], "shape", None)
        if shape is None or t.shape != shape:
            got = "no tensor" if shape is None else f"shape {tuple(shape)}"
            return f"{what} {k!r} has shape {tuple(t.shape)} in m0 and {got} in {name}"
    extra = [k for k in theirs if k not in mine]
    if extra:
        return f"{name} has {what} {extra[0]!r}, which m0 does not have"
    return None


def _mismatch(m0: nn.Module, other: nn.Module, name: str) -> str | None:
    """The first parameter or floating buffer whose name or shape differs, in words."""
    return _first_difference(
        dict(m0.named_parameters()), dict(other.named_parameters()), name, "parameter"
    ) or _first_difference(
        _floating(m0.named_buffers()), _floating(other.named_buffers()), name, "buffer"
    )


def _as_model(m0: nn.Module, other: object, name: str) -> nn.Module:
    """`other` itself, or a copy of m0 with the state dict `other` loaded (strictly)."""
    if isinstance(other, nn.Module):
        return other
    if not isinstance(other, Mapping):
        raise TypeError(
            f"through(): {name} is a {type(other).__name__}; pass a model of m0's architecture "
            "or its state dict (model.state_dict())"
        )
    for wrapper in ("model", "state_dict"):
        if isinstance(other.get(wrapper), Mapping):
            raise ValueError(
                f"through(): {name} is a checkpoint holding its state dict under {wrapper!r}; "
                f"pass checkpoint[{wrapper!r}]"
            )
    where = _first_difference(m0.state_dict(), other, f"the state dict {name}", "entry")
    if where is not None:
        raise ValueError(
            f"through(): the state dict {name} does not fit m0's architecture: {where}; pass "
            "the state dict of a model of m0's architecture"
        )
    model = copy.deepcopy(m0)
    model.load_state_dict(other, strict=True)
    return model


def _difference(m0: nn.Module, other: object, name: str, buffers: bool) -> Direction:
    """θ_other − θ₀ by `towards` (its checks), errors saying which model and which key."""
    model = _as_model(m0, other, name)
    try:
        return towards(m0, model, buffers=buffers)
    except ValueError as exc:
        where = _mismatch(m0, model, name)
        if where is None:
            raise ValueError(f"through(): {name}: {exc}") from exc
        raise ValueError(
            f"through(): {name} does not have m0's architecture: {where}; the three models "
            "must be instances of one architecture"
        ) from exc
    except TypeError as exc:
        raise TypeError(f"through(): {name}: {exc}") from exc


def _dot(a: Direction, b: Direction) -> float:
    """Inner product over the parameters and the moving buffers, in float64."""
    bufs_a, bufs_b = a.buffers, b.buffers
    return a.dot(b) + (flat_dot(bufs_a, bufs_b) if bufs_a else 0.0)


def _without_buffers(d: Direction) -> Direction:
    return Direction(dict(d), **{**d.provenance, "buffers_moved": False})


def through(
    m0: nn.Module,
    m1: nn.Module | Mapping[str, Tensor],
    m2: nn.Module | Mapping[str, Tensor],
    *,
    buffers: bool | None = None,
) -> tuple[Direction, Direction, Coords]:
    """The plane through three models: centre m0, axes towards m1 and (orthogonalized) m2.

    ``d1 = θ₁ − θ₀`` and ``d2 = (θ₂ − θ₀) − a·d1`` with ``a = ⟨θ₂ − θ₀, d1⟩ / ‖d1‖²``, the
    inner product taken over the parameters and the moving floating buffers, so d1 ⟂ d2 in
    it (`Direction.dot` counts the parameters only: it is not zero there when BatchNorm
    statistics move). Neither is rescaled, so ``θ₀ + a·d1 + 1·d2`` is θ₂ exactly (up to
    rounding) and each model's loss is at its coordinates. Evaluate the plane with
    ``lw.Landscape(m0, data).plane(d1, d2, span=...)``.

    Args:
        m0: the centre model (the Landscape is built on it).
        m1: a model of the same architecture (or its state dict); it sits at (1, 0).
        m2: another one; it sits at (a, 1).
        buffers: move the floating buffers (BatchNorm running mean and variance) too. None
            (default): when any of them differs between the models; True: always; False:
            never (then m1 and m2 are reached only up to their buffers).

    Returns:
        ``(d1, d2, coords)``, where ``coords = {"m0": (0.0, 0.0), "m1": (1.0, 0.0),
        "m2": (a, 1.0)}``; both directions carry `coords` in their provenance (``"markers"``)
        for plots.

    Raises:
        ValueError: the models differ in architecture or a state dict does not fit m0 (the
            message names the first key that differs), m1 equals m0, or m2 lies on the line
            through m0 and m1.
        TypeError: a model is neither an ``nn.Module`` nor a state dict.
    """
    if buffers is not None and not isinstance(buffers, bool):
        raise TypeError(f"buffers must be None (auto), True or False, got {buffers!r}")
    if not isinstance(m0, nn.Module):
        raise TypeError(
            f"through(): m0 is a {type(m0).__name__}; the centre must be the model itself"
        )
    e1 = _difference(m0, m1, "m1", buffers is not False)
    e2 = _difference(m0, m2, "m2", buffers is not False)
    moved = {**e1.buffers, **e2.buffers}
    if buffers is None and not any(bool(torch.any(t != 0)) for t in moved.values()):
        e1, e2 = _without_buffers(e1), _without_buffers(e2)
    moves_buffers = bool(e1.buffers)

    n11 = _dot(e1, e1)
    if n11 == 0.0:
        raise ValueError(
            "through(): m1 equals m0 (every parameter and moving buffer), so there is no axis "
            "towards it; pass three different models"
        )
    a = _dot(e2, e1) / n11
    v = combine([1.0, -a], [e2, e1])
    eps = float(torch.finfo(next(iter(e1.values())).dtype).eps)
    if _dot(v, v) <= (_COLLINEAR_ULPS * eps) ** 2 * _dot(e2, e2):
        raise ValueError(
            "through(): m2 lies on the line through m0 and m1 (or equals m0), so the three "
            "models span no plane; pass a third model off that line, or use "
            "lw.directions.towards(m0, m1) for the line"
        )
    coords: Coords = {"m0": (0.0, 0.0), "m1": (1.0, 0.0), "m2": (float(a), 1.0)}
    common: dict[str, Any] = {
        "kind": "through", "norm": None, "ignore": None, "buffers_moved": moves_buffers,
        "inner_product": "parameters and buffers" if moves_buffers else "parameters",
    }
    # Each gets its own copy of the markers: the caller may change `coords`.
    d1 = Direction(dict(e1), buffers=e1.buffers, axis=1, label="m0 → m1",
                   markers=dict(coords), **common)
    d2 = Direction(dict(v), buffers=v.buffers, axis=2, label="m0 → m2 ⊥ m1",
                   markers=dict(coords), **common)
    return d1, d2, coords
