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
        return int(torch.Size(self.shape).numel())


class ParamSpace:
    """The parameters (and floating buffers) of a model, in `named_parameters()` order.

    Holds detached clones of θ₀ and of the buffers, taken when it is built: a snapshot.
    """

    def __init__(self, model: nn.Module) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(
                f"expected a torch.nn.Module, got {type(model).__name__}; pass the model itself"
            )
        params = list(model.named_parameters())
        if not params:
            raise ValueError("the model has no parameters; there is no landscape to explore")
        bad = [n for n, p in params if not p.is_floating_point()]
        if bad:
            raise TypeError(
                f"parameters {bad} are not floating point; a loss landscape needs floating "
                "parameters (convert the model with model.float() or model.double())"
            )
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
        for s in self.specs:
            if s.name == name:
                return s
        raise KeyError(name)

    @property
    def floating_buffer_names(self) -> tuple[str, ...]:
        """Buffers that can move with a direction (BN running statistics, not counters)."""
        return tuple(n for n, b in self.buffers0.items() if b.is_floating_point())

    def check_compatible(self, tensors: Mapping[str, Tensor], what: str = "direction") -> None:
        """Raise a clear error unless `tensors` is keyed and shaped exactly like θ₀."""
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


def filter_norms(t: Tensor) -> Tensor:
    """‖tᵢ‖ for every slice along dim 0, shaped to broadcast against `t`."""
    flat = t.reshape(t.shape[0], -1)
    return flat.norm(dim=1).reshape((t.shape[0],) + (1,) * (t.dim() - 1))


def flat_dot(a: Mapping[str, Tensor], b: Mapping[str, Tensor]) -> float:
    """Euclidean inner product of two same-keyed tensor maps, accumulated in float64."""
    return float(sum((a[k].double() * b[k].double()).sum() for k in a))
