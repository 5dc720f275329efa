"""Turn what the user passes as data into a fixed list of batches on the model's device."""

from __future__ import annotations

import numbers
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
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
    """Move tensors to the device; cast floating ones to the parameters' dtype."""
    if isinstance(obj, Tensor):
        obj = obj.to(device)
        return obj.to(dtype) if obj.is_floating_point() else obj
    if isinstance(obj, (tuple, list)):
        return type(obj)(_to(o, device, dtype) for o in obj)
    if isinstance(obj, dict):
        return {k: _to(v, device, dtype) for k, v in obj.items()}
    return obj


def _is_array(obj: Any) -> bool:
    """A NumPy array, or a pandas DataFrame/Series (anything with `to_numpy`)."""
    return isinstance(obj, np.ndarray) or (
        not isinstance(obj, Tensor) and callable(getattr(obj, "to_numpy", None))
    )


def _from_numpy(obj: Any, what: str, *, target: bool) -> Any:
    """NumPy arrays (and pandas objects) as tensors, inside tuples, lists and dicts too.

    Floating arrays become tensors (cast to the model's dtype later, like floating tensors);
    integer targets become int64, as class-index losses need; integer inputs stay integers
    (token ids), like integer tensors. Arrays of objects or strings cannot: a TypeError.
    """
    if isinstance(obj, (tuple, list)) and any(_is_array(o) for o in obj):
        return type(obj)(_from_numpy(o, what, target=target) for o in obj)
    if isinstance(obj, dict):
        return {k: _from_numpy(v, f"{what}[{k!r}]", target=target) for k, v in obj.items()}
    if not _is_array(obj):
        return obj
    arr = obj if isinstance(obj, np.ndarray) else np.asarray(obj.to_numpy())
    if arr.dtype.kind not in "biuf":  # bool, signed, unsigned, floating
        fix = (
            "encode labels as integer class indices, e.g. "
            "np.unique(y, return_inverse=True)[1]" if target
            else "convert it to numbers first, e.g. X.astype(np.float32)"
        )
        kind = _KINDS.get(arr.dtype.kind, "not numbers")
        raise TypeError(
            f"{what} is a NumPy array of dtype {arr.dtype} ({kind}), which cannot become a "
            f"tensor; {fix}"
        )
    wide_unsigned = arr.dtype.kind == "u" and arr.dtype.itemsize > 1
    if arr.dtype.kind in "iu" and (target or wide_unsigned):
        arr = arr.astype(np.int64)  # class indices; torch supports few unsigned types
    arr = np.ascontiguousarray(arr)  # torch.from_numpy refuses negative strides
    if not arr.flags.writeable:
        arr = arr.copy()  # torch.from_numpy would warn: its tensor could write to it
    return torch.from_numpy(arr)


_KINDS = {"O": "Python objects", "U": "strings", "S": "bytes", "c": "complex numbers",
          "M": "datetimes", "m": "timedeltas", "V": "records"}


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
    xs = tuple(_from_numpy(t, "the inputs", target=False) for t in xs)
    if not xs or not all(isinstance(t, Tensor) for t in xs):
        got = ", ".join(type(t).__name__ for t in xs) or "nothing"
        raise TypeError(
            f"model inputs must be tensors or NumPy arrays (or a tuple of them), got {got}; "
            "the model is called as model(*x)"
        )
    xs = tuple(_to(t, device, dtype) for t in xs)
    y = _to(_from_numpy(y, "the targets", target=True), device, dtype)
    return Batch(xs, y, _count(xs, y))


def _batch_size(batch_size: object) -> int:
    if batch_size is None:
        return DEFAULT_BATCH_SIZE
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral):
        raise TypeError(
            f"batch_size must be a positive int, got {batch_size!r} "
            f"({type(batch_size).__name__}); pass e.g. batch_size=256, or leave it out "
            f"for {DEFAULT_BATCH_SIZE}"
        )
    if batch_size < 1:
        raise ValueError(
            f"batch_size must be a positive int, got {batch_size}; pass e.g. batch_size=256, "
            f"or leave it out for {DEFAULT_BATCH_SIZE}"
        )
    return int(batch_size)


def as_batches(
    data: Any,
    *,
    device: torch.device,
    dtype: torch.dtype,
    batch_size: int | None = None,
) -> list[Batch]:
    """Materialize `data` once: a tuple (X, y), a Dataset, a DataLoader or (x, y) batches,
    of tensors or NumPy arrays.

    Batches are evaluated in eval mode in a fixed order, so every grid point sees exactly the
    same samples (and Hessian-vector products are deterministic).
    """
    bs = _batch_size(batch_size)
    batches: list[Batch] = []
    with torch.no_grad():
        pair = isinstance(data, (tuple, list)) and len(data) == 2
        if pair and (isinstance(data[0], Tensor) or _is_array(data[0])):
            X = _from_numpy(data[0], "X", target=False)
            y = data[1]
            if isinstance(y, (list, tuple)) and not any(
                isinstance(t, Tensor) or _is_array(t) for t in y
            ):  # labels as a Python list: one per sample, like an array (not whole per batch)
                try:
                    y = np.asarray(y)
                except ValueError as exc:  # ragged
                    raise TypeError(
                        f"y is a {type(y).__name__} that is not an array of numbers ({exc}); pass "
                        "y as a tensor or NumPy array with one target per sample"
                    ) from None
            y = _from_numpy(y, "y", target=True)
            if isinstance(y, Tensor) and y.dim() > 0 and X.shape[0] != y.shape[0]:
                raise ValueError(
                    f"X has {X.shape[0]} samples but y has {y.shape[0]}; they must match "
                    "(one target per row of X)"
                )
            for i in range(0, X.shape[0], bs):
                yi = y[i : i + bs] if isinstance(y, Tensor) and y.dim() > 0 else y
                batches.append(_batch(X[i : i + bs], yi, device, dtype))
        elif isinstance(data, Tensor) or _is_array(data):
            raise TypeError(
                f"the data is a single {type(data).__name__} of shape {tuple(data.shape)}; pass "
                "the inputs with their targets as a tuple (X, y)"
            )
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
                "tensors or NumPy arrays, a torch Dataset, a DataLoader, or an iterable of "
                "(x, y) batches"
            )
    batches = [b for b in batches if b.n > 0]
    if not batches:
        raise ValueError(
            "the data has no samples; pass a non-empty (X, y), Dataset or DataLoader"
        )
    return batches
