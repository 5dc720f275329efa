"""Which tensor of a model's output the loss sees: a tensor, a mapping or ModelOutput, a
namedtuple; ``output=`` picks, else ``logits``, else the first tensor. Upcast from half precision
so the loss keeps its own resolution."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor

from ..batch import LayoutError

OutputPick = str | Callable[[Any], Tensor] | None
_OUTPUT_LOSS = "loss"  # the field of an output that holds its own loss


def own_loss(out: object) -> Tensor | None:
    """The loss a model computed itself (``out["loss"]`` or ``out.loss``), if any."""
    if isinstance(out, Tensor):
        return None
    value = _field(out, _OUTPUT_LOSS)
    return value if isinstance(value, Tensor) else None


def pick_output(out: object, output: OutputPick = None) -> Any:
    """The tensor of a model's output that losses see: `output` (a key or attribute name, or
    ``fn(output) -> tensor``) picks it; by default ``logits``, else the first tensor.

    A plain tuple or list (not a namedtuple) has no names to tell logits from a loss (a Hugging
    Face model with ``return_dict=False`` returns ``(loss, logits)``): by default it goes to
    the loss as it is, and `output` picks from it.
    """
    if output is None and (
        isinstance(out, Tensor)
        or (isinstance(out, (tuple, list)) and not hasattr(out, "_fields"))
    ):
        return out
    if callable(output):
        value = output(out)
        if not isinstance(value, Tensor):
            raise TypeError(
                f"output= {getattr(output, '__name__', type(output).__name__)} returned "
                f"{describe(value)} for the model's output ({describe(out)}); it must return "
                "the tensor the loss takes"
            )
        return value
    if isinstance(output, str):
        found = _field(out, output)
        if isinstance(found, Tensor):
            return found
        names = _fields(out)
        raise LayoutError(
            f"output={output!r}: the model's output ({describe(out)}) has no tensor "
            f"{output!r}" + (f"; its fields are {names}" if names else "")
            + "; pass output= one of them, or a callable output=fn(output) -> tensor"
        )
    if output is not None:
        raise TypeError(
            f"output must be a key or attribute name (e.g. output='logits') or a callable "
            f"fn(output) -> tensor; got {type(output).__name__}"
        )
    logits = _field(out, "logits")
    if isinstance(logits, Tensor):
        return logits
    values = (
        list(out.values()) if isinstance(out, Mapping)
        else list(out) if isinstance(out, (tuple, list))
        else [getattr(out, n, None) for n in _fields(out)]
    )
    for v in values:
        if isinstance(v, Tensor):
            return v
    raise TypeError(
        f"the model's output ({describe(out)}) holds no tensor for the loss; pass "
        "output=fn(output) -> tensor (or output='name' of the tensor) to pick it"
    )


def _field(out: object, name: str) -> object:
    if isinstance(out, Mapping):
        return out.get(name)
    return getattr(out, name, None)


def _fields(out: object) -> list[str]:
    if isinstance(out, Mapping):
        return [str(k) for k in out]
    if hasattr(out, "_fields"):  # namedtuple
        return list(out._fields)
    if hasattr(out, "__dataclass_fields__"):
        return list(out.__dataclass_fields__)
    return [k for k, v in vars(out).items() if isinstance(v, Tensor)] if hasattr(
        out, "__dict__"
    ) else []


def upcast(t: Tensor) -> Tensor:
    """Half-precision floats as float32: the loss gets its own resolution, not bf16's."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


def describe(obj: object) -> str:
    """'shape (20, 3), float32' for a tensor, else the type (and a dict's keys)."""
    if isinstance(obj, Tensor):
        return f"shape {tuple(obj.shape)}, {str(obj.dtype).replace('torch.', '')}"
    if isinstance(obj, Mapping):
        return f"a {type(obj).__name__} with keys {list(obj)[:5]}"
    if isinstance(obj, (tuple, list)):
        return f"a {type(obj).__name__} of {len(obj)}: " + ", ".join(
            f"({describe(o)})" for o in obj[:3]
        )
    return "None" if obj is None else f"a {type(obj).__name__}"
