"""Directions in parameter space and their constructors (Li et al. 2018, §4–5).

A `Direction` is a read-only mapping keyed exactly like `model.named_parameters()`, with a
tensor of each parameter's shape, plus the provenance that labels axes and exports. Buffer
deltas (BatchNorm running statistics, from `towards(..., buffers=True)`) travel beside it and
move with the same coefficients.
"""

from __future__ import annotations

import difflib
import math
import operator
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

import torch
from torch import Tensor, nn

from .params import check_finite, filter_norms, flat_dot

Norm = Literal["filter", "layer", "model"] | None
Ignore = Literal["biasbn"] | None

_NORMS = ("filter", "layer", "model", None)
_IGNORES = ("biasbn", None)
_EPS = 1e-10  # as the reference code: keeps a zero slice of d from dividing by zero


def _floating(value: object, name: str, what: str) -> Tensor:
    """A direction's entry, detached; anything but a floating tensor is an error (an integer
    copy of a small direction truncates to zero and would silently draw a flat line)."""
    if not isinstance(value, Tensor):
        raise TypeError(
            f"the direction's {what} {name!r} is a {type(value).__name__}, not a torch.Tensor; "
            "convert it with torch.as_tensor(value, dtype=torch.float32)"
        )
    if not value.is_floating_point():
        raise TypeError(
            f"the direction's {what} {name!r} has dtype {value.dtype}; directions must be "
            "floating point (e.g. value.float(), or the parameter's dtype)"
        )
    return value.detach()


class Direction(Mapping[str, Tensor]):
    """A direction δ in parameter space: `{name: tensor}` shaped like the model's parameters.

    Read-only: build new ones with the constructors in `ls_widget.directions`.

    Attributes:
        buffers: deltas for floating buffers (e.g. BN running stats) moved along with δ, or an
            empty mapping.
        provenance: where it came from (`kind`, `seed`, `norm`, `ignore`, `label`, ...), used
            for axis labels and stored in saved results.
    """

    __slots__ = ("_buffers", "_provenance", "_tensors")

    def __init__(
        self,
        tensors: Mapping[str, Tensor],
        *,
        buffers: Mapping[str, Tensor] | None = None,
        **provenance: Any,
    ) -> None:
        if not isinstance(tensors, Mapping):
            raise TypeError(
                f"a Direction is built from a mapping name → tensor, got {type(tensors).__name__}"
                "; pass e.g. {n: torch.randn_like(p) for n, p in model.named_parameters()}"
            )
        self._tensors = {k: _floating(v, k, "tensor") for k, v in tensors.items()}
        self._buffers = {k: _floating(v, k, "buffer delta") for k, v in (buffers or {}).items()}
        provenance.setdefault("kind", "custom")
        provenance.setdefault("label", provenance["kind"])
        self._provenance = dict(provenance)

    def __getitem__(self, name: str) -> Tensor:
        return self._tensors[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._tensors)

    def __len__(self) -> int:
        return len(self._tensors)

    @property
    def buffers(self) -> Mapping[str, Tensor]:
        """Deltas of floating buffers that move with this direction (a copy of the map)."""
        return dict(self._buffers)

    @property
    def provenance(self) -> dict[str, Any]:
        """Where this direction came from: kind, seed, norm, ignore, label... (a copy)."""
        return dict(self._provenance)

    @property
    def label(self) -> str:
        """The axis label."""
        return str(self._provenance["label"])

    def to(self, device: torch.device | str) -> Direction:
        """This direction with every tensor on `device` (itself when they already are)."""
        device = torch.device(device)
        tensors = {**self._tensors, **self._buffers}
        if all(t.device == device for t in tensors.values()):
            return self
        return Direction(
            {k: v.to(device) for k, v in self._tensors.items()},
            buffers={k: v.to(device) for k, v in self._buffers.items()},
            **self._provenance,
        )

    def norm(self) -> float:
        """Euclidean norm over the parameters (buffers excluded)."""
        return math.sqrt(flat_dot(self, self))

    def dot(self, other: Mapping[str, Tensor]) -> float:
        """Inner product over the parameters, accumulated in float64."""
        return flat_dot(self, other)

    def __repr__(self) -> str:
        n = sum(t.numel() for t in self._tensors.values())
        extra = f", {len(self._buffers)} buffers" if self._buffers else ""
        return f"Direction({self.label!r}, {len(self)} tensors, {n} values{extra})"


def combine(coeffs: Sequence[float], dirs: Sequence[Direction], **provenance: Any) -> Direction:
    """Σ cᵢ dᵢ over parameters and buffers alike (buffers missing from a dᵢ count as zero)."""
    first = dirs[0]
    tensors = {
        k: sum((c * d[k] for c, d in zip(coeffs[1:], dirs[1:], strict=True)), coeffs[0] * first[k])
        for k in first
    }
    names = {k for d in dirs for k in d._buffers}
    buffers: dict[str, Tensor] = {}
    for k in sorted(names):
        parts = [c * d._buffers[k] for c, d in zip(coeffs, dirs, strict=True) if k in d._buffers]
        buffers[k] = sum(parts[1:], parts[0])
    return Direction(tensors, buffers=buffers, **provenance)


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
) -> Direction:
    """A seeded Gaussian direction, normalized as in Li et al. (filter-wise by default).

    Entries are drawn from N(0, 1) by a CPU generator seeded with `seed`, in
    `named_parameters()` order (ignored tensors draw too, so `ignore` never changes the others),
    then cast to each parameter's dtype and moved to its device: the same seed gives the same
    direction, bit for bit, on every run and machine.
    """
    seed = _seed(seed)
    _check_choice("norm", norm, _NORMS)
    _check_choice("ignore", ignore, _IGNORES)
    params = _named_params(model)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    raw = {}
    for name, p in params:
        draw_dtype = torch.float64 if p.dtype == torch.float64 else torch.float32
        raw[name] = torch.randn(p.shape, generator=gen, dtype=draw_dtype).to(p.device, p.dtype)
    theta = dict(params)
    tensors = normalize(raw, theta, norm, ignore)
    norm_txt = f"{norm}-norm" if norm else "unnormalized"
    return Direction(
        tensors,
        kind="random",
        seed=seed,
        norm=norm,
        ignore=ignore,
        label=f"random #{seed}, {norm_txt}",
    )


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


def orthogonalize(d: Direction, *against: Direction) -> Direction:
    """Gram–Schmidt: `d` minus its projection on the span of `against` (in parameter space).

    The result keeps the part of `d` orthogonal to every direction in `against`; it is not
    rescaled (random directions in high dimension are nearly orthogonal already, so the norm
    barely changes). Buffers move with the same coefficients.
    """
    if not against:
        raise ValueError("orthogonalize(d, *against) needs at least one direction to project out")
    basis: list[Direction] = []
    for a in against:
        for b in basis:
            a = combine([1.0, -a.dot(b) / b.dot(b)], [a, b], **a.provenance)
        if a.norm() == 0.0:
            continue
        basis.append(a)
    out = d
    for b in basis:
        out = combine([1.0, -out.dot(b) / b.dot(b)], [out, b])
    prov = d.provenance
    prov["label"] = f"{d.label} ⊥ " + ", ".join(a.label for a in against)
    prov["orthogonalized"] = True
    return Direction(dict(out), buffers=out.buffers, **prov)


def mix_coefficients(d1: Direction, d2: Direction, t: float) -> tuple[float, float]:
    """(a, b) with mix(d1, d2, t) = a·d1 + b·d2; see `mix`."""
    n1, n2 = d1.norm(), d2.norm()
    if n1 == 0.0 or n2 == 0.0:
        raise ValueError("cannot mix a zero direction; both directions need a nonzero norm")
    c = d1.dot(d2) / (n1 * n2)
    c = max(-1.0, min(1.0, c))
    phi = math.acos(c)
    r = (1.0 - t) * n1 + t * n2
    if phi < 1e-12:  # parallel: the rotation is the identity, only the length changes
        return r / n1, 0.0
    if math.pi - phi < 1e-9:
        raise ValueError(
            "d1 and d2 point in opposite directions, so no plane of rotation is defined; "
            "mix with a direction that is not antiparallel"
        )
    # u1 = d1/n1, u2 = (d2/n2 − c·u1)/sin φ; d(t) = r·(cos(tφ)·u1 + sin(tφ)·u2)
    s = math.sin(phi)
    b = r * math.sin(t * phi) / (s * n2)
    a = r * (math.cos(t * phi) - math.sin(t * phi) * c / s) / n1
    return a, b


def mix(d1: Direction, d2: Direction, t: float) -> Direction:
    """Rotate from `d1` (t = 0) to `d2` (t = 1) within their plane, keeping the scale.

    Precisely: with uᵢ = dᵢ/‖dᵢ‖ and φ the angle between d1 and d2, the result is
    ``r(t) · (cos(tφ)·u1 + sin(tφ)·u⊥)``, where u⊥ is the unit vector of span{d1, d2}
    orthogonal to u1 on d2's side, and ``r(t) = (1 − t)‖d1‖ + t‖d2‖``. So t = 0 gives d1 and
    t = 1 gives d2 exactly; the angle changes linearly in t; the norm interpolates linearly
    between the two norms ("scale kept": constant when the norms are equal, as for two
    filter-normalized directions of the same model up to O(1/√N)). d1 and d2 need not be
    orthogonal; they must not be antiparallel. t outside [0, 1] keeps rotating. Buffer deltas
    move with the same coefficients.
    """
    t = float(t)
    a, b = mix_coefficients(d1, d2, t)
    return combine(
        [a, b],
        [d1, d2],
        kind="mix",
        t=t,
        parts=[d1.provenance, d2.provenance],
        norm=d1.provenance.get("norm") if d1.provenance.get("norm") == d2.provenance.get(
            "norm") else None,
        label=f"mix({d1.label} → {d2.label}, t={t:.2f})",
    )
