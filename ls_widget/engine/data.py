"""Turn what the user passes as data into a fixed list of batches on the model's device."""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.func import functional_call
from torch.utils.data import DataLoader, Dataset

DEFAULT_BATCH_SIZE = 2048
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


def _count(x: tuple[Any, ...], y: Any, kw: Mapping[str, Any] | None = None) -> int:
    if isinstance(y, Tensor) and y.dim() > 0:
        return int(y.shape[0])
    t = _first_tensor((x, dict(kw or {})))
    return int(t.shape[0]) if t is not None and t.dim() > 0 else 1


def _to(obj: Any, device: torch.device, dtype: torch.dtype) -> Any:
    """Move tensors to the device; cast floating ones to the parameters' dtype."""
    if isinstance(obj, Tensor):
        obj = obj.to(device)
        return obj.to(dtype) if obj.is_floating_point() else obj
    if isinstance(obj, (tuple, list)):
        return type(obj)(_to(o, device, dtype) for o in obj)
    if isinstance(obj, Mapping):
        return {k: _to(v, device, dtype) for k, v in obj.items()}
    return obj


def _target_dtype(dtype: torch.dtype) -> torch.dtype:
    """Floating targets in the dtype the loss sees: float32 for half-precision models (whose
    outputs are upcast before the loss), else the model's dtype."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


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


def _keys(item: Mapping[Any, Any]) -> list[str]:
    return [str(k) for k in item]


@dataclass(frozen=True)
class Layout:
    """How one batch splits into the model's inputs and the target.

    Attributes:
        inputs: ``fn(batch) -> inputs`` (a tuple: positional, a dict: keywords, a tensor: one
            positional), or None for the default split.
        target: the target's key in dict batches, or ``fn(batch) -> target``, or None (dict
            batches: the first of `TARGET_KEYS` present; tuples: ``(inputs, target)``).
        pass_target: dict batches also give the target's key to the model (models that compute
            their own loss, as Hugging Face models do when given ``labels``), where its
            forward takes that keyword.
        takes: the keywords the model's forward takes (`keywords_of`; None: any).
    """

    inputs: Callable[[Any], Any] | None = None
    target: str | Callable[[Any], Any] | None = None
    pass_target: bool = False
    takes: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if self.inputs is not None and not callable(self.inputs):
            raise TypeError(
                f"inputs must be a callable fn(batch) -> inputs (a tuple: positional arguments, "
                f"a dict: keyword arguments, a tensor: one argument); got "
                f"{type(self.inputs).__name__}"
            )
        if self.target is not None and not (isinstance(self.target, str) or callable(self.target)):
            raise TypeError(
                f"target must be the target's key in dict batches (e.g. target='labels') or a "
                f"callable fn(batch) -> target; got {type(self.target).__name__}"
            )

    def _key(self, item: Mapping[Any, Any], where: str) -> Any:
        """The target's key in the dict batch `item` (None: `target` is a callable)."""
        if isinstance(self.target, str):
            if self.target not in item:
                raise LayoutError(
                    f"target={self.target!r} is not a key of the dict batches of {where}, which "
                    f"has keys {_keys(item)}; pass target= one of them"
                )
            return self.target
        found = next((k for k in TARGET_KEYS if k in item), None)
        if found is None and self.target is None:
            keys = _keys(item)
            raise LayoutError(
                f"{where} yields dicts with keys {keys}, none of which is a known target key "
                f"({', '.join(map(repr, TARGET_KEYS))}); pass target=\"...\" naming the target's "
                f"key (e.g. target={keys[-1] if keys else 'labels'!r}), or a callable "
                "target=fn(batch) -> target"
            )
        return found

    def split(self, item: Any, where: str) -> tuple[Any, Any]:
        """(inputs, target) of one batch."""
        if isinstance(item, Mapping):
            key = self._key(item, where)
            y = self.target(item) if callable(self.target) else item[key]
            if self.inputs is not None:
                return _call_user(self.inputs, item, "inputs"), y
            keep = self.pass_target and not callable(self.target) and (
                self.takes is None or key in self.takes
            )
            return {k: v for k, v in item.items() if k != key or keep}, y
        if isinstance(self.target, str):
            raise TypeError(
                f"target={self.target!r} names a key, but {where} yields "
                f"{type(item).__name__}s, not dicts; pass target as a callable "
                "fn(batch) -> target"
            )
        if self.inputs is None and self.target is None:
            return _split_pair(item, where)
        if self.inputs is not None and self.target is not None:
            return (
                _call_user(self.inputs, item, "inputs"), _call_user(self.target, item, "target")
            )
        x, y = _split_pair(item, where)
        if self.inputs is not None:
            x = _call_user(self.inputs, item, "inputs")
        if callable(self.target):
            y = _call_user(self.target, item, "target")
        return x, y


def _call_user(fn: Callable[[Any], Any], item: Any, what: str) -> Any:
    try:
        value = fn(item)
    except Exception as exc:
        if type(exc) in (TypeError, ValueError, KeyError, IndexError):
            raise type(exc)(
                f"the {what}= function failed on a batch ({type(item).__name__}): {exc}"
            ) from exc
        raise
    if value is None:
        raise TypeError(
            f"the {what}= function returned None for a batch ({type(item).__name__}); it must "
            f"return the {what} (a missing `return`?)"
        )
    return value


def _split_pair(item: Any, where: str) -> tuple[Any, Any]:
    try:
        x, y = item
    except (TypeError, ValueError):
        raise TypeError(
            f"{where} must yield (x, y) pairs or dicts; got {type(item).__name__}. Pass a tuple "
            "(X, y), a Dataset or DataLoader of (x, y) or of dicts, or an iterable of (x, y) "
            "batches; for other layouts pass inputs=fn(batch) and target=fn(batch)"
        ) from None
    return x, y


def _batch(inputs: Any, y: Any, device: torch.device, dtype: torch.dtype) -> Batch:
    kw: dict[str, Any] = {}
    if isinstance(inputs, Mapping):
        bad = [k for k in inputs if not isinstance(k, str)]
        if bad or not inputs:
            raise TypeError(
                f"keyword inputs need string keys and at least one entry; got keys "
                f"{list(inputs)[:5]} (the model is called as model(**inputs))"
            )
        kw = _to(_from_numpy(dict(inputs), "the inputs", target=False), device, dtype)
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
        xs = tuple(_to(t, device, dtype) for t in xs)
    y = _to(_from_numpy(y, "the targets", target=True), device, _target_dtype(dtype))
    return Batch(xs, y, _count(xs, y, kw), kw)


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
