"""Conversions of the user's data: NumPy arrays and pandas objects to tensors, whole data to
samples and slices, one raw batch to a `Batch` on the model's device and dtype."""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .batch import Batch, count_samples, target_dtype, to_device

DEFAULT_BATCH_SIZE = 2048


def is_array(obj: Any) -> bool:
    """A NumPy array, or a pandas DataFrame/Series (anything with `to_numpy`)."""
    return isinstance(obj, np.ndarray) or (
        not isinstance(obj, Tensor) and callable(getattr(obj, "to_numpy", None))
    )


def from_numpy(obj: Any, what: str, *, target: bool) -> Any:
    """NumPy arrays (and pandas objects) as tensors, inside tuples, lists and dicts too.

    Floating arrays become tensors (cast to the model's dtype later, like floating tensors);
    integer targets become int64, as class-index losses need; integer inputs stay integers
    (token ids), like integer tensors. Arrays of objects or strings cannot: a TypeError.
    """
    if isinstance(obj, (tuple, list)) and any(is_array(o) for o in obj):
        return type(obj)(from_numpy(o, what, target=target) for o in obj)
    if isinstance(obj, Mapping):
        return {k: from_numpy(v, f"{what}[{k!r}]", target=target) for k, v in obj.items()}
    if not is_array(obj):
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


def to_batch(inputs: Any, y: Any, device: torch.device, dtype: torch.dtype) -> Batch:
    """One batch's inputs and target as a `Batch` on `device`, floating tensors in `dtype`."""
    kw: dict[str, Any] = {}
    if isinstance(inputs, Mapping):
        bad = [k for k in inputs if not isinstance(k, str)]
        if bad or not inputs:
            raise TypeError(
                f"keyword inputs need string keys and at least one entry; got keys "
                f"{list(inputs)[:5]} (the model is called as model(**inputs))"
            )
        kw = to_device(from_numpy(dict(inputs), "the inputs", target=False), device, dtype)
        xs: tuple[Any, ...] = ()
    else:
        xs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
        xs = tuple(from_numpy(t, "the inputs", target=False) for t in xs)
        if not xs or not all(isinstance(t, Tensor) for t in xs):
            got = ", ".join(type(t).__name__ for t in xs) or "nothing"
            raise TypeError(
                f"model inputs must be tensors or NumPy arrays (or a tuple of them, or a dict "
                f"of keyword arguments), got {got}; the model is called as model(*x), or "
                "model(**x) for a dict"
            )
        xs = tuple(to_device(t, device, dtype) for t in xs)
    y = to_device(from_numpy(y, "the targets", target=True), device, target_dtype(dtype))
    return Batch(xs, y, count_samples(xs, y, kw), kw)


def batch_size_of(batch_size: object) -> int:
    """The batch size to split whole data and Datasets by (None: the default), checked."""
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


def is_data(obj: Any) -> bool:
    """A tensor, a NumPy array or a pandas object: data with a sample axis."""
    return isinstance(obj, Tensor) or is_array(obj)


def whole_inputs(obj: Any) -> bool:
    """Whole-data inputs: an array, or a non-empty tuple/list/dict of arrays."""
    if is_data(obj):
        return True
    if isinstance(obj, (tuple, list)):
        return bool(obj) and all(is_data(o) for o in obj)
    if isinstance(obj, Mapping):
        return bool(obj) and all(is_data(o) for o in obj.values())
    return False


def slice_samples(obj: Any, i: int, j: int) -> Any:
    """Samples i..j of every tensor (with a sample axis) in a nested structure."""
    if isinstance(obj, Tensor):
        return obj[i:j] if obj.dim() > 0 else obj
    if isinstance(obj, (tuple, list)):
        return type(obj)(slice_samples(o, i, j) for o in obj)
    if isinstance(obj, Mapping):
        return {k: slice_samples(v, i, j) for k, v in obj.items()}
    return obj


def labels_of(y: Any) -> Any:
    """The targets of whole data, as a tensor: labels as a Python list are one per sample."""
    if isinstance(y, (list, tuple)) and not any(is_data(t) for t in y):
        try:
            y = np.asarray(y)
        except ValueError as exc:  # ragged
            raise TypeError(
                f"y is a {type(y).__name__} that is not an array of numbers ({exc}); pass "
                "y as a tensor or NumPy array with one target per sample"
            ) from None
    return from_numpy(y, "y", target=True)


def count_rows(data: Any, what: str) -> int:
    """The common number of samples (dim 0) of every tensor of whole-data `data`."""
    sizes: dict[str, int] = {}

    def walk(obj: Any, name: str) -> None:
        if isinstance(obj, Tensor):
            if obj.dim() > 0:
                sizes[name] = int(obj.shape[0])
        elif isinstance(obj, (tuple, list)):
            for k, o in enumerate(obj):
                walk(o, f"{name}[{k}]")
        elif isinstance(obj, Mapping):
            for k, o in obj.items():
                walk(o, f"{name}[{k!r}]")

    walk(data, what)
    if not sizes:
        raise ValueError(f"{what} holds no tensor with samples along dim 0")
    if len(set(sizes.values())) > 1:
        listed = ", ".join(f"{k}: {v}" for k, v in sizes.items())
        raise ValueError(
            f"the tensors of {what} have different numbers of samples along dim 0 ({listed}); "
            "every input needs one row per sample"
        )
    return next(iter(sizes.values()))
