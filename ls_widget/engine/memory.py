"""The memory budget: parsing ``memory=``, and the peak bytes a forward pass allocates.

The peak is counted, not sampled: a dispatch mode adds the bytes of every tensor an op
allocates and subtracts them when the tensor is freed, so it is the same on every run and
machine (no allocator statistics, no timing), and batch sizes chosen from it are too.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable
from typing import Any

from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

DEFAULT_MEMORY = 512 * 2**20  # bytes: the engine's budget beyond the data and the model

_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_memory(value: object, name: str = "memory") -> int:
    """Bytes from an int, a float or a string such as ``"512MB"``, ``"2 GiB"``."""
    if isinstance(value, bool):
        value = None  # True/False are not sizes: fall through to the error
    if isinstance(value, str):
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", value)
        unit = m.group(2).lower() if m else None
        if m is None or unit not in _UNITS:
            raise ValueError(
                f"{name}={value!r} is not a size; pass bytes (e.g. 2**30) or a string such as "
                "'512MB' or '2GiB'"
            )
        value = float(m.group(1)) * _UNITS[unit]
    if not isinstance(value, (int, float)):
        raise TypeError(
            f"{name} is a number of bytes or a string such as '512MB', got {value!r} "
            f"({type(value).__name__})"
        )
    if not value > 0:
        raise ValueError(f"{name} must be positive, got {value!r}; e.g. {name}='512MB'")
    return int(value)


class _LiveBytes(TorchDispatchMode):
    """Counts the bytes of the tensors allocated under it that are still alive, and the peak."""

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, int] = {}  # storage address → bytes
        self.now = 0
        self.peak = 0

    def _free(self, ptr: int) -> None:
        self.now -= self.live.pop(ptr, 0)

    def __torch_dispatch__(
        self, func: Any, types: Any, args: Any = (), kwargs: Any = None
    ) -> Any:
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if not isinstance(t, Tensor) or t.device.type == "meta":
                continue
            storage = t.untyped_storage()
            ptr = storage.data_ptr()
            if ptr == 0 or ptr in self.live:  # empty, or a view of a tensor counted already
                continue
            self.live[ptr] = storage.nbytes()
            self.now += self.live[ptr]
            self.peak = max(self.peak, self.now)
            weakref.finalize(t, self._free, ptr)
        return out


def peak_bytes(run: Callable[[], Any]) -> int:
    """The most bytes of tensors allocated by `run()` alive at once (its result excluded
    once freed; inputs and parameters are not counted)."""
    mode = _LiveBytes()
    with mode:
        result = run()
    del result
    return mode.peak


def activation_bytes(module: Any, batch: Any, params: Any, samples: int) -> float:
    """Peak bytes per sample of one forward of `module` on the first `samples` of `batch`.

    The forward gets copies of those samples: a model that writes to its inputs must not
    write to the user's data.
    """
    import torch

    from .batch import forward
    from .convert import slice_samples

    def copy(obj: Any) -> Any:
        return torch.utils._pytree.tree_map_only(
            Tensor, lambda t: t.clone(), slice_samples(obj, 0, samples)
        )

    small = type(batch)(x=copy(batch.x), y=copy(batch.y), n=samples, kw=copy(dict(batch.kw)))
    with torch.no_grad():
        peak = peak_bytes(lambda: forward(module, small, params))
    return peak / samples


def fit_batch_size(per_sample: float, budget: int, current: int) -> int:
    """The largest power of two ≤ `current` whose forward fits `budget` bytes (at least 1).

    A power of two: a pure function of the model and data shapes that small differences in
    the count (another torch version) rarely move.
    """
    fit = max(1, int(budget // max(per_sample, 1.0)))
    if fit >= current:
        return current
    return 1 << (fit.bit_length() - 1)
