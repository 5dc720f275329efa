"""``subset=N``: a seeded random subset of the data for a fast first look, stratified by class.

Where the targets are class indices (one integer per sample), every class keeps its share of
the N samples (largest remainders), drawn at random within the class; otherwise N samples are
drawn uniformly. The same seed gives the same samples on every run and machine. The chosen
samples keep their order in the data.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Subset

from .convert import labels_of
from .data import Reader, loader_reader, whole_reader
from .layout import Layout


def check_subset(subset: object) -> int | None:
    """`subset` as a positive int (None: all the data), or a clear error."""
    if subset is None:
        return None
    if isinstance(subset, bool) or not isinstance(subset, numbers.Integral) or subset < 1:
        raise ValueError(
            f"subset must be a positive number of samples, got {subset!r}; e.g. subset=2000 "
            "for a fast first look, or leave it out for all the data"
        )
    return int(subset)


def _classes(y: Any, n: int) -> np.ndarray | None:
    """The targets as class indices (int64, one per sample), or None if they are not."""
    if isinstance(y, Tensor) and y.dim() == 1 and y.shape[0] == n and not (
        y.is_floating_point() or y.is_complex()
    ):
        return y.detach().cpu().numpy().astype(np.int64)
    return None


def choose(targets: Any, n_total: int, n: int, seed: int) -> np.ndarray:
    """Sorted indices of `n` of `n_total` samples, stratified where `targets` are classes."""
    gen = torch.Generator().manual_seed(seed)
    classes = _classes(targets, n_total)
    if classes is None:
        return np.sort(torch.randperm(n_total, generator=gen)[:n].numpy())
    values, counts = np.unique(classes, return_counts=True)
    share = counts * n / n_total
    quota = np.floor(share).astype(np.int64)
    # Largest remainders get the samples left; ties go to the smaller class label.
    rest = np.argsort(-(share - quota), kind="stable")[: n - int(quota.sum())]
    quota[rest] += 1
    picked = []
    for value, k in zip(values, quota, strict=True):
        members = np.flatnonzero(classes == value)
        picked.append(members[torch.randperm(len(members), generator=gen)[:k].numpy()])
    return np.sort(np.concatenate(picked))


def _take(obj: Any, idx: Tensor) -> Any:
    """Rows `idx` of every tensor (with a sample axis) in a nested structure."""
    if isinstance(obj, Tensor):
        return obj.index_select(0, idx.to(obj.device)) if obj.dim() > 0 else obj
    if isinstance(obj, np.ndarray):
        return obj[idx.numpy()] if obj.ndim > 0 else obj
    if isinstance(obj, (tuple, list)):
        return type(obj)(_take(o, idx) for o in obj)
    if isinstance(obj, dict):
        return {k: _take(v, idx) for k, v in obj.items()}
    return obj


def _targets(reader: Reader, layout: Layout) -> Any:
    """Every sample's target in reading order: a tensor where they are tensors, else None."""
    ds = reader.dataset
    known = getattr(ds, "targets", None)  # torchvision's datasets list them
    if known is not None and reader.size is not None and len(known) == reader.size:
        return labels_of(known)
    ys = []
    for item in reader.items():
        y = layout.split(item, reader.where)[1]
        y = labels_of(y) if not isinstance(y, Tensor) else y
        if not isinstance(y, Tensor) or y.dim() == 0:
            return None
        ys.append(y.detach().cpu())
    return torch.cat(ys) if ys else None


def subset_reader(reader: Reader, layout: Layout, n: int, seed: int, batch_size: int) -> Reader:
    """A reader of `n` samples of `reader`'s data (the whole reader if it has ≤ n)."""
    if reader.whole_data is not None:
        whole, total = reader.whole_data, reader.size or 0
        if n >= total:
            return reader
        targets = whole[1] if isinstance(whole, tuple) else layout.split(whole, reader.where)[1]
        idx = torch.as_tensor(choose(targets, total, n, seed))
        return whole_reader(_take(whole, idx), n, batch_size, isinstance(whole, tuple),
                            reader.where)
    if reader.dataset is not None and reader.loader is not None and reader.size is not None:
        if n >= reader.size:
            return reader
        picked = choose(_targets(reader, layout), reader.size, n, seed)
        base = reader.loader
        loader = DataLoader(
            Subset(reader.dataset, picked.tolist()), batch_size=base.batch_size or batch_size,
            shuffle=False, collate_fn=base.collate_fn, num_workers=base.num_workers,
        )
        return loader_reader(loader, reader.where)
    return _rows_reader(reader, layout, n, seed)


def _rows_reader(reader: Reader, layout: Layout, n: int, seed: int) -> Reader:
    """Subset of an iterable of batches: the chosen rows of each batch, in order."""
    items = list(reader.items()) if not reader.reiterable else None  # one shot: keep them
    source = reader if items is None else Reader(lambda: iter(items), reader.where,
                                                 len(items), True)
    targets = _targets(source, layout)
    total = int(targets.shape[0]) if targets is not None else sum(
        _rows(layout.split(item, reader.where)) for item in source.items()
    )
    if n >= total:
        return source
    keep = torch.zeros(total, dtype=torch.bool)
    keep[torch.as_tensor(choose(targets, total, n, seed))] = True

    def rows() -> Iterator[Any]:
        start = 0
        for item in source.items():
            size = _rows(layout.split(item, reader.where))
            mine = torch.nonzero(keep[start : start + size]).reshape(-1)
            start += size
            if len(mine):
                yield _take(item, mine) if len(mine) < size else item

    return Reader(rows, reader.where, None, True)


def _rows(split: tuple[Any, Any]) -> int:
    """Samples in one (inputs, target) split."""
    from .batch import count_samples

    x, y = split
    if isinstance(x, dict):
        return count_samples((), y, x)
    return count_samples(tuple(x) if isinstance(x, (tuple, list)) else (x,), y)

