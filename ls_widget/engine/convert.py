"""Turn what the user passes as data into a fixed list of batches on the model's device."""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from .batch import Batch, count_samples, target_dtype, to_device
from .layout import Layout

DEFAULT_BATCH_SIZE = 2048


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
    if isinstance(obj, Mapping):
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


def _batch(inputs: Any, y: Any, device: torch.device, dtype: torch.dtype) -> Batch:
    kw: dict[str, Any] = {}
    if isinstance(inputs, Mapping):
        bad = [k for k in inputs if not isinstance(k, str)]
        if bad or not inputs:
            raise TypeError(
                f"keyword inputs need string keys and at least one entry; got keys "
                f"{list(inputs)[:5]} (the model is called as model(**inputs))"
            )
        kw = to_device(_from_numpy(dict(inputs), "the inputs", target=False), device, dtype)
        xs: tuple[Any, ...] = ()
    else:
        xs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
        xs = tuple(_from_numpy(t, "the inputs", target=False) for t in xs)
        if not xs or not all(isinstance(t, Tensor) for t in xs):
            got = ", ".join(type(t).__name__ for t in xs) or "nothing"
            raise TypeError(
                f"model inputs must be tensors or NumPy arrays (or a tuple of them, or a dict "
                f"of keyword arguments), got {got}; the model is called as model(*x), or "
                "model(**x) for a dict"
            )
        xs = tuple(to_device(t, device, dtype) for t in xs)
    y = to_device(_from_numpy(y, "the targets", target=True), device, target_dtype(dtype))
    return Batch(xs, y, count_samples(xs, y, kw), kw)


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


def _is_data(obj: Any) -> bool:
    return isinstance(obj, Tensor) or _is_array(obj)


def _whole_inputs(obj: Any) -> bool:
    """Whole-data inputs: an array, or a non-empty tuple/list/dict of arrays."""
    if _is_data(obj):
        return True
    if isinstance(obj, (tuple, list)):
        return bool(obj) and all(_is_data(o) for o in obj)
    if isinstance(obj, Mapping):
        return bool(obj) and all(_is_data(o) for o in obj.values())
    return False


def _slice(obj: Any, i: int, j: int) -> Any:
    """Samples i..j of every tensor (with a sample axis) in a nested structure."""
    if isinstance(obj, Tensor):
        return obj[i:j] if obj.dim() > 0 else obj
    if isinstance(obj, (tuple, list)):
        return type(obj)(_slice(o, i, j) for o in obj)
    if isinstance(obj, Mapping):
        return {k: _slice(v, i, j) for k, v in obj.items()}
    return obj


def _labels(y: Any) -> Any:
    """The targets of whole data, as a tensor: labels as a Python list are one per sample."""
    if isinstance(y, (list, tuple)) and not any(_is_data(t) for t in y):
        try:
            y = np.asarray(y)
        except ValueError as exc:  # ragged
            raise TypeError(
                f"y is a {type(y).__name__} that is not an array of numbers ({exc}); pass "
                "y as a tensor or NumPy array with one target per sample"
            ) from None
    return _from_numpy(y, "y", target=True)


def _samples(data: Any, what: str) -> int:
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


def as_batches(
    data: Any,
    *,
    device: torch.device,
    dtype: torch.dtype,
    batch_size: int | None = None,
    layout: Layout | None = None,
) -> list[Batch]:
    """Materialize `data` once: a tuple (X, y) (X an array, a tuple of arrays or a dict of
    arrays), a dict of arrays, a Dataset, a DataLoader or an iterable of batches ((x, y) pairs
    or dicts), of tensors or NumPy arrays. `layout` splits each batch into inputs and target.

    Batches are evaluated in eval mode in a fixed order, so every grid point sees exactly the
    same samples (and Hessian-vector products are deterministic).
    """
    bs = _batch_size(batch_size)
    lay = layout if layout is not None else Layout()
    batches: list[Batch] = []
    with torch.no_grad():
        pair = isinstance(data, (tuple, list)) and len(data) == 2
        # ((X1, X2), y) or ({"a": A}, y), not a list of two (x, y) or dict batches
        whole_pair = pair and _whole_inputs(data[0]) and (
            _is_data(data[0]) or _is_data(data[1]) or (
                isinstance(data[1], list)
                and not any(_is_data(t) or isinstance(t, (tuple, list, Mapping)) for t in data[1])
            )
        )
        whole_dict = isinstance(data, Mapping) and _whole_inputs(data)
        if whole_pair or whole_dict:
            if whole_pair:
                X = _from_numpy(data[0], "X", target=False)
                y = _labels(data[1])
                n = _samples(X, "X")
                if isinstance(y, Tensor) and y.dim() > 0 and n != y.shape[0]:
                    raise ValueError(
                        f"X has {n} samples but y has {y.shape[0]}; they must match "
                        "(one target per row of X)"
                    )
                whole: Any = (X, y)
            else:
                whole = _from_numpy(dict(data), "the data", target=False)
                n = _samples(whole, "the data")
            for i in range(0, n, bs):
                item = _slice(whole, i, i + bs)
                if whole_pair and not isinstance(item, tuple):
                    item = tuple(item)
                batches.append(_batch(*lay.split(item, "the data"), device, dtype))
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
                batches.append(_batch(*lay.split(item, "the Dataset"), device, dtype))
        elif isinstance(data, Iterable) and not isinstance(data, (Tensor, str, bytes, Mapping)):
            where = "the DataLoader" if isinstance(data, DataLoader) else "the data iterable"
            for item in data:
                batches.append(_batch(*lay.split(item, where), device, dtype))
        else:
            raise TypeError(
                f"unsupported data of type {type(data).__name__}; pass a tuple (X, y) of "
                "tensors or NumPy arrays, a dict of them, a torch Dataset, a DataLoader, or an "
                "iterable of (x, y) or dict batches"
            )
    batches = [b for b in batches if b.n > 0]
    if not batches:
        raise ValueError(
            "the data has no samples; pass a non-empty (X, y), Dataset or DataLoader"
        )
    return batches
