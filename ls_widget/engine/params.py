"""ParamSpace: which tensors of a model move, a snapshot of θ₀, and the norms Li et al. use.

Everything here reads the user's model and never writes to it: θ₀ and the buffers are cloned
once, so later evaluation never depends on (or touches) the live model.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class TensorSpec:
    """Name, shape, dtype and device of one parameter or buffer."""

    name: str
    shape: torch.Size
    dtype: torch.dtype
    device: torch.device

    @property
    def numel(self) -> int:
        """Number of values."""
        return int(torch.Size(self.shape).numel())


def floating_params(model: nn.Module, what: str = "the model") -> list[tuple[str, Tensor]]:
    """`model.named_parameters()`, detached, after checking that there are some and that
    they are floating point and finite (errors name the offending tensor and the fix)."""
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"expected a torch.nn.Module, got {type(model).__name__}; pass the model itself"
        )
    params = [(n, p.detach()) for n, p in model.named_parameters()]
    if not params:
        raise ValueError(f"{what} has no parameters; there is no landscape to explore")
    bad = [n for n, p in params if not p.is_floating_point()]
    if bad:
        raise TypeError(
            f"parameters {bad} of {what} are not floating point; a loss landscape needs "
            "floating parameters (convert the model with model.float() or model.double())"
        )
    check_finite(
        dict(params), f"{what}'s parameter",
        "a loss landscape is drawn around finite parameters: load a checkpoint from before "
        "training diverged (or lower the learning rate and retrain)",
    )
    return params


class ParamSpace:
    """The parameters (and floating buffers) of a model, in `named_parameters()` order.

    Holds detached clones of θ₀ and of the buffers, taken when it is built: a snapshot.
    """

    def __init__(self, model: nn.Module) -> None:
        params = floating_params(model)
        with torch.no_grad():
            self.theta0: dict[str, Tensor] = {n: p.detach().clone() for n, p in params}
            self.buffers0: dict[str, Tensor] = {
                n: b.detach().clone() for n, b in model.named_buffers()
            }
        self.specs: tuple[TensorSpec, ...] = tuple(
            TensorSpec(n, p.shape, p.dtype, p.device) for n, p in params
        )
        self.buffer_specs: tuple[TensorSpec, ...] = tuple(
            TensorSpec(n, b.shape, b.dtype, b.device) for n, b in self.buffers0.items()
        )
        self.names: tuple[str, ...] = tuple(s.name for s in self.specs)
        devices = {s.device for s in self.specs}
        if len(devices) > 1:
            raise ValueError(
                f"the model's parameters live on several devices {sorted(map(str, devices))}; "
                "move the model to one device first (model.to(device))"
            )
        self.device: torch.device = self.specs[0].device
        self.dtype: torch.dtype = self.specs[0].dtype
        self.numel: int = sum(s.numel for s in self.specs)

    def __iter__(self) -> Iterator[TensorSpec]:
        return iter(self.specs)

    def spec(self, name: str) -> TensorSpec:
        """The spec of parameter `name` (KeyError if the model has none of that name)."""
        for s in self.specs:
            if s.name == name:
                return s
        raise KeyError(name)

    @property
    def floating_buffer_names(self) -> tuple[str, ...]:
        """Buffers that can move with a direction (BN running statistics, not counters)."""
        return tuple(n for n, b in self.buffers0.items() if b.is_floating_point())

    def check_compatible(self, tensors: Mapping[str, Tensor], what: str = "direction") -> None:
        """Raise a clear error unless `tensors` is keyed and shaped exactly like θ₀ with finite
        values, and (for a Direction) its buffer deltas match the model's floating buffers."""
        names = set(tensors)
        expected = set(self.names)
        if names != expected:
            missing = sorted(expected - names)[:5]
            extra = sorted(names - expected)[:5]
            raise ValueError(
                f"the {what} does not match this model's parameters (missing {missing}, "
                f"unexpected {extra}); build it from the same architecture, e.g. "
                "lw.directions.random(model)"
            )
        for s in self.specs:
            t = tensors[s.name]
            if tuple(t.shape) != tuple(s.shape):
                raise ValueError(
                    f"the {what} has shape {tuple(t.shape)} for {s.name!r} where the model has "
                    f"{tuple(s.shape)}; build it from the same architecture"
                )
        label = getattr(tensors, "label", None)
        named = f"the {what} {label!r}" if label else f"the {what}"
        check_finite(
            {n: tensors[n] for n in self.names}, f"{named}: its tensor",
            "every point along it would be NaN: rebuild it (e.g. lw.directions.random(model) "
            "on a model with finite parameters)",
        )
        buffers: Mapping[str, Tensor] = getattr(tensors, "buffers", {})
        if buffers:
            floating = {n: self.buffers0[n] for n in self.floating_buffer_names}
            unknown = sorted(set(buffers) - set(floating))[:5]
            if unknown:
                raise ValueError(
                    f"{named} moves buffers {unknown} that are not floating buffers of this "
                    "model; build it from the same architecture (lw.directions.towards(model, "
                    "other, buffers=True))"
                )
            for n, t in buffers.items():
                if tuple(t.shape) != tuple(floating[n].shape):
                    raise ValueError(
                        f"{named} has shape {tuple(t.shape)} for buffer {n!r} where the model "
                        f"has {tuple(floating[n].shape)}; build it from the same architecture"
                    )
            check_finite(dict(buffers), f"{named}: its buffer delta",
                         "rebuild it from models with finite buffers")


def check_finite(tensors: Mapping[str, Tensor], what: str, fix: str) -> None:
    """Raise a ValueError naming the first tensor with a NaN or ±inf (one device sync)."""
    if not tensors:
        return
    names = list(tensors)
    device = next(iter(tensors.values())).device
    ok = torch.stack([
        torch.isfinite(t).all().to(device) if t.is_floating_point() or t.is_complex()
        else torch.ones((), dtype=torch.bool, device=device)
        for t in tensors.values()
    ]).cpu()
    if bool(ok.all()):
        return
    name = names[int((~ok).nonzero()[0])]
    t = tensors[name]
    nan, inf = int(torch.isnan(t).sum()), int(torch.isinf(t).sum())
    raise ValueError(
        f"{what} {name!r} has non-finite values ({nan} NaN, {inf} inf, of {t.numel()}); {fix}"
    )


def filter_norms(t: Tensor) -> Tensor:
    """‖tᵢ‖ for every slice along dim 0, shaped to broadcast against `t`."""
    flat = t.reshape(t.shape[0], -1)
    return flat.norm(dim=1).reshape((t.shape[0],) + (1,) * (t.dim() - 1))


def flat_dot(a: Mapping[str, Tensor], b: Mapping[str, Tensor]) -> float:
    """Euclidean inner product of two same-keyed tensor maps, accumulated in float64."""
    return float(sum((a[k].double() * b[k].double()).sum() for k in a))
