"""`Direction`: a read-only map from parameter names to tensors, with its provenance.

A `Direction` is keyed exactly like `model.named_parameters()`, with a tensor of each
parameter's shape, plus the provenance that labels axes and exports. Buffer deltas (BatchNorm
running statistics, from `towards(..., buffers=True)`) travel beside it and move with the same
coefficients.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from ..engine.params import flat_dot


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

