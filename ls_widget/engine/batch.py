"""One batch as the model sees it: inputs (positional and keyword), targets, sample count;
and `forward`, the one way a batch reaches the model."""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import Tensor
from torch.func import functional_call

TARGET_KEYS = ("labels", "label", "y", "target")
"""The keys of a dict batch tried, in this order, for the target (unless ``target=`` names one)."""


class LayoutError(KeyError):
    """A key that a batch or a model's output lacks (shown as its message, unquoted)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def keywords_of(model: torch.nn.Module) -> frozenset[str] | None:
    """The keyword arguments `model`'s forward takes (None: any, it has ``**kwargs``)."""
    try:
        params = inspect.signature(model.forward).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return frozenset(
        p.name for p in params
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    )


@dataclass(frozen=True)
class Batch:
    """Inputs (positional arguments `x` and keyword arguments `kw` of the model), targets and
    the number of samples. The model is called as ``model(*x, **kw)`` (see `forward`)."""

    x: tuple[Tensor, ...]
    y: Any
    n: int
    kw: Mapping[str, Any] = field(default_factory=dict)

    def inputs(self) -> list[Tensor]:
        """Every input tensor, positional then keyword (nested structures flattened)."""
        out: list[Tensor] = []
        _tensors((self.x, self.kw), out)
        return out


class Batches(Protocol):
    """The evaluation data as the evaluator reads it: a list of batches, or a `DataSource`
    (engine/source.py) that is cached or re-read on every pass. Iterating is one pass in
    the fixed order; only the first batch is indexed."""

    def __iter__(self) -> Iterator[Batch]:
        """One pass over the batches, in their fixed order."""

    def __len__(self) -> int:
        """Batches per pass."""

    def __getitem__(self, i: int) -> Batch:
        """Batch `i` (a streamed source keeps only batch 0)."""


def _tensors(obj: Any, out: list[Tensor]) -> None:
    if isinstance(obj, Tensor):
        out.append(obj)
    elif isinstance(obj, Mapping):
        for v in obj.values():
            _tensors(v, out)
    elif isinstance(obj, (tuple, list)):
        for v in obj:
            _tensors(v, out)


def forward(
    module: torch.nn.Module,
    batch: Any,
    params: tuple[dict[str, Tensor], dict[str, Tensor]] | None = None,
) -> Any:
    """The one place a batch is fed to a model: ``module(*batch.x, **batch.kw)``, or through
    ``torch.func.functional_call`` with `params` (parameters, buffers) when given."""
    kw = getattr(batch, "kw", None) or {}
    if params is None:
        return module(*batch.x, **kw)
    return functional_call(module, params, tuple(batch.x), dict(kw) if kw else None)


def _first_tensor(obj: Any) -> Tensor | None:
    if isinstance(obj, Tensor):
        return obj
    items = obj.values() if isinstance(obj, Mapping) else obj if isinstance(
        obj, (tuple, list)
    ) else ()
    for o in items:
        t = _first_tensor(o)
        if t is not None:
            return t
    return None


def count_samples(x: tuple[Any, ...], y: Any, kw: Mapping[str, Any] | None = None) -> int:
    """Samples in a batch: the targets' first dimension, else the first input tensor's."""
    if isinstance(y, Tensor) and y.dim() > 0:
        return int(y.shape[0])
    t = _first_tensor((x, dict(kw or {})))
    return int(t.shape[0]) if t is not None and t.dim() > 0 else 1


def to_device(obj: Any, device: torch.device, dtype: torch.dtype) -> Any:
    """Move tensors to the device; cast floating ones to the parameters' dtype."""
    if isinstance(obj, Tensor):
        obj = obj.to(device)
        return obj.to(dtype) if obj.is_floating_point() else obj
    if isinstance(obj, (tuple, list)):
        return type(obj)(to_device(o, device, dtype) for o in obj)
    if isinstance(obj, Mapping):
        return {k: to_device(v, device, dtype) for k, v in obj.items()}
    return obj


def target_dtype(dtype: torch.dtype) -> torch.dtype:
    """Floating targets in the dtype the loss sees: float32 for half-precision models (whose
    outputs are upcast before the loss), else the model's dtype."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
