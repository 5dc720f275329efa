"""How to read what the user passes as data, pass after pass: a `Reader` of raw batches.

A reader yields the user's items (before the layout splits them) in a fixed order: slices of
whole data, or the batches of a Dataset, DataLoader or iterable. `source.py` decides whether
they are read once and cached or read again on every pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from torch import Tensor
from torch.utils.data import DataLoader, Dataset, RandomSampler

from .convert import (
    count_rows,
    from_numpy,
    is_array,
    is_data,
    labels_of,
    slice_samples,
    whole_inputs,
)


@dataclass(frozen=True)
class Reader:
    """The user's data as raw batches, readable pass after pass.

    Attributes:
        items: a new pass over the raw batches (tuples, dicts, ... before the layout split).
        where: how messages name the data ("the data", "the DataLoader", ...).
        batches: batches per pass where known in advance (None: an iterable without len).
        reiterable: a second pass reads the data again; False for a one-shot iterator (a
            generator), which can be read only once.
        whole: the user's own tensors when the data is whole tensors (batches are views of
            them: caching those costs nothing).
        shuffles: the DataLoader's sampler draws a random order on every pass.
        dataset: the map-style Dataset behind it, where there is one (for subsets).
        loader: the DataLoader, where there is one (its batch size and collate function).
        size: samples per pass where known in advance.
        whole_data: the whole data as one structure (inputs, targets) where it is whole.
    """

    items: Callable[[], Iterator[Any]]
    where: str
    batches: int | None
    reiterable: bool
    whole: tuple[Tensor, ...] = ()
    shuffles: bool = False
    dataset: Dataset | None = None
    loader: DataLoader | None = None
    size: int | None = None
    whole_data: Any = None


def _tensors(obj: Any) -> tuple[Tensor, ...]:
    if isinstance(obj, Tensor):
        return (obj,)
    if isinstance(obj, Mapping):
        return tuple(t for v in obj.values() for t in _tensors(v))
    if isinstance(obj, (tuple, list)):
        return tuple(t for v in obj for t in _tensors(v))
    return ()


def whole_reader(whole: Any, n: int, batch_size: int, pair: bool, where: str) -> Reader:
    """Batches of `batch_size` samples sliced (as views) from whole data `whole`."""

    def items() -> Iterator[Any]:
        for i in range(0, n, batch_size):
            item = slice_samples(whole, i, i + batch_size)
            yield tuple(item) if pair and not isinstance(item, tuple) else item

    return Reader(items, where, -(-n // batch_size), True, _tensors(whole), size=n,
                  whole_data=whole)


def _whole(data: Any) -> tuple[Any, int, bool] | None:
    """Whole data as (structure, samples, is a pair), or None for batched data."""
    pair = isinstance(data, (tuple, list)) and len(data) == 2
    # ((X1, X2), y) or ({"a": A}, y), not a list of two (x, y) or dict batches
    whole_pair = pair and whole_inputs(data[0]) and (
        is_data(data[0]) or is_data(data[1]) or (
            isinstance(data[1], list)
            and not any(is_data(t) or isinstance(t, (tuple, list, Mapping)) for t in data[1])
        )
    )
    if whole_pair:
        X = from_numpy(data[0], "X", target=False)
        y = labels_of(data[1])
        n = count_rows(X, "X")
        if isinstance(y, Tensor) and y.dim() > 0 and n != y.shape[0]:
            raise ValueError(
                f"X has {n} samples but y has {y.shape[0]}; they must match "
                "(one target per row of X)"
            )
        return (X, y), n, True
    if isinstance(data, Mapping) and whole_inputs(data):
        whole = from_numpy(dict(data), "the data", target=False)
        return whole, count_rows(whole, "the data"), False
    return None


def loader_reader(loader: DataLoader, where: str) -> Reader:
    """The batches of a DataLoader, in its own order."""
    dataset = loader.dataset
    map_style = hasattr(dataset, "__getitem__") and hasattr(dataset, "__len__")
    try:
        batches: int | None = len(loader)
    except TypeError:  # an IterableDataset without __len__
        batches = None
    return Reader(
        lambda: iter(loader), where, batches, True,
        shuffles=isinstance(loader.sampler, RandomSampler)
        or isinstance(getattr(loader, "batch_sampler", None), RandomSampler),
        dataset=dataset if map_style else None, loader=loader,
        size=len(dataset) if map_style else None,  # type: ignore[arg-type]
    )


def reader(data: Any, batch_size: int) -> Reader:
    """A `Reader` for any data ls-widget takes: ``(X, y)`` (X an array, a tuple of arrays or
    a dict of arrays), a dict of arrays, a Dataset, a DataLoader or an iterable of batches
    ((x, y) pairs or dicts), of tensors or NumPy arrays. Whole data and Datasets are split into
    batches of `batch_size`; a DataLoader's own batches are kept."""
    whole = _whole(data)
    if whole is not None:
        structure, n, pair = whole
        return whole_reader(structure, n, batch_size, pair, "the data")
    if isinstance(data, Tensor) or is_array(data):
        raise TypeError(
            f"the data is a single {type(data).__name__} of shape {tuple(data.shape)}; pass "
            "the inputs with their targets as a tuple (X, y)"
        )
    if isinstance(data, DataLoader):
        return loader_reader(data, "the DataLoader")
    if isinstance(data, Dataset):
        if not hasattr(data, "__len__"):
            raise TypeError("a Dataset without __len__: wrap it in a DataLoader")
        return loader_reader(DataLoader(data, batch_size=batch_size, shuffle=False),
                             "the Dataset")
    if isinstance(data, Iterable) and not isinstance(data, (str, bytes, Mapping)):
        one_shot = iter(data) is data  # a generator or iterator: it can be read only once
        length = len(data) if hasattr(data, "__len__") else None  # type: ignore[arg-type]
        return Reader(lambda: iter(data), "the data iterable", length, not one_shot)
    raise TypeError(
        f"unsupported data of type {type(data).__name__}; pass a tuple (X, y) of tensors or "
        "NumPy arrays, a dict of them, a torch Dataset, a DataLoader, or an iterable of "
        "(x, y) or dict batches"
    )
