"""Turn what the user passes as data into a fixed list of batches on the model's device."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

DEFAULT_BATCH_SIZE = 2048


@dataclass(frozen=True)
class Batch:
    """Inputs (positional arguments of the model), targets and the number of samples."""

    x: tuple[Tensor, ...]
    y: Any
    n: int


def _count(x: tuple[Tensor, ...], y: Any) -> int:
    if isinstance(y, Tensor) and y.dim() > 0:
        return int(y.shape[0])
    return int(x[0].shape[0]) if x[0].dim() > 0 else 1


def _to(obj: Any, device: torch.device, dtype: torch.dtype) -> Any:
    """Move tensors to the device; cast floating inputs to the parameters' dtype."""
    if isinstance(obj, Tensor):
        obj = obj.to(device)
        return obj.to(dtype) if obj.is_floating_point() else obj
    if isinstance(obj, (tuple, list)):
        return type(obj)(_to(o, device, dtype) for o in obj)
    return obj


def _split_pair(item: Any, where: str) -> tuple[Any, Any]:
    if isinstance(item, dict):
        raise TypeError(
            f"{where} yields dicts; pass (x, y) pairs, e.g. wrap the loader in a generator "
            "`((b['x'], b['y']) for b in loader)`"
        )
    try:
        x, y = item
    except (TypeError, ValueError):
        raise TypeError(
            f"{where} must yield (x, y) pairs; got {type(item).__name__}. Pass a tuple (X, y), "
            "a Dataset or DataLoader of (x, y), or an iterable of (x, y) batches"
        ) from None
    return x, y


def _batch(x: Any, y: Any, device: torch.device, dtype: torch.dtype) -> Batch:
    xs = tuple(x) if isinstance(x, (tuple, list)) else (x,)
    if not xs or not all(isinstance(t, Tensor) for t in xs):
        raise TypeError("model inputs must be tensors (or a tuple of tensors)")
    xs = tuple(_to(t, device, dtype) for t in xs)
    y = _to(y, device, dtype) if isinstance(y, Tensor) and y.is_floating_point() else (
        y.to(device) if isinstance(y, Tensor) else y
    )
    return Batch(xs, y, _count(xs, y))


def as_batches(
    data: Any,
    *,
    device: torch.device,
    dtype: torch.dtype,
    batch_size: int | None = None,
) -> list[Batch]:
    """Materialize `data` once: a tuple (X, y), a Dataset, a DataLoader or (x, y) batches.

    Batches are evaluated in eval mode in a fixed order, so every grid point sees exactly the
    same samples (and Hessian-vector products are deterministic).
    """
    bs = batch_size or DEFAULT_BATCH_SIZE
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    batches: list[Batch] = []
    with torch.no_grad():
        if isinstance(data, (tuple, list)) and len(data) == 2 and isinstance(data[0], Tensor):
            X, y = data
            if isinstance(y, Tensor) and y.dim() > 0 and X.shape[0] != y.shape[0]:
                raise ValueError(
                    f"X has {X.shape[0]} samples but y has {y.shape[0]}; they must match"
                )
            for i in range(0, X.shape[0], bs):
                yi = y[i : i + bs] if isinstance(y, Tensor) and y.dim() > 0 else y
                batches.append(_batch(X[i : i + bs], yi, device, dtype))
        elif isinstance(data, Dataset) and not isinstance(data, DataLoader):
            if not hasattr(data, "__len__"):
                raise TypeError("a Dataset without __len__: wrap it in a DataLoader")
            loader = DataLoader(data, batch_size=bs, shuffle=False)
            for item in loader:
                batches.append(_batch(*_split_pair(item, "the Dataset"), device, dtype))
        elif isinstance(data, Iterable) and not isinstance(data, (Tensor, str, bytes)):
            where = "the DataLoader" if isinstance(data, DataLoader) else "the data iterable"
            for item in data:
                batches.append(_batch(*_split_pair(item, where), device, dtype))
        else:
            raise TypeError(
                f"unsupported data of type {type(data).__name__}; pass a tuple (X, y) of "
                "tensors, a torch Dataset, a DataLoader, or an iterable of (x, y) batches"
            )
    batches = [b for b in batches if b.n > 0]
    if not batches:
        raise ValueError(
            "the data has no samples; pass a non-empty (X, y), Dataset or DataLoader"
        )
    return batches
