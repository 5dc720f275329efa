"""Flat layouts: the moving tensors of one dtype as one vector, and moving it to a point.

The private copy's parameters are views into one flat work vector per dtype, so moving to a
grid point is one fused `add` per dtype, and θ₀ + Σ_{k≥1} cₖdₖ is kept while a grid row lasts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import torch
from torch import Tensor


@dataclass
class Flat:
    """One dtype's moving tensors laid out in a flat vector (θ₀, directions, work).

    A tensor may be stored with zero rows added (`pad`); its view is then the first rows
    of the padded block, and `padded(name)` the whole block.

    Attributes:
        names: the tensors, in storage order.
        theta: θ₀, flat.
        dirs: each direction, flat.
        work: the current point; the private copy's tensors are views of it (`views`).
        channels_last: 4D weights stored NHWC.
        slots: name → (offset, stored shape, real rows if padded else None).
    """

    names: list[str]
    theta: Tensor
    dirs: list[Tensor]
    work: Tensor
    channels_last: bool
    slots: dict[str, tuple[int, torch.Size, int | None]]
    views: dict[str, Tensor] = field(init=False)  # the parameters' views of `work`
    row: Tensor | None = field(default=None, init=False)  # θ₀ + Σ_{k≥1} cₖdₖ (see `move`)

    def __post_init__(self) -> None:
        self.views = self.unflatten(self.work)

    def unflatten(self, vector: Tensor) -> dict[str, Tensor]:
        """Views of `vector` (laid out like `work`) shaped like the parameters."""
        out = {}
        for n in self.names:
            t, rows = self.padded(n, vector), self.slots[n][2]
            out[n] = t if rows is None else t[:rows]
        return out

    def padded(self, name: str, vector: Tensor | None = None) -> Tensor:
        """The whole stored block of `name` in `vector` (default: `work`), padding included."""
        off, shape, _ = self.slots[name]
        v = self.work if vector is None else vector
        return _view(v[off : off + shape.numel()], shape, self.channels_last)

    @cached_property
    def matrix(self) -> Tensor:
        """Directions as rows of a (k, numel) matrix, for vmap's batched points."""
        return torch.stack(self.dirs)

    def move(self, coeffs: Sequence[float], new_row: bool = True) -> None:
        """Work ← (θ₀ + Σ_{k≥1} cₖdₖ) + c₀d₀, the bracket kept while a grid row lasts.

        Always this order, so a point's value never depends on the points before it.
        """
        if len(self.dirs) == 1:
            torch.add(self.theta, self.dirs[0], alpha=float(coeffs[0]), out=self.work)
            return
        row = self.row
        if row is None:
            row = self.row = torch.empty_like(self.theta)
            new_row = True
        if new_row:
            torch.add(self.theta, self.dirs[1], alpha=float(coeffs[1]), out=row)
            for c, d in zip(coeffs[2:], self.dirs[2:], strict=True):
                row.add_(d, alpha=float(c))
        torch.add(row, self.dirs[0], alpha=float(coeffs[0]), out=self.work)


def build_flats(
    base: Mapping[str, Tensor],
    dirs: Sequence[Mapping[str, Tensor]],
    names: Sequence[str],
    channels_last: bool,
    pad: Mapping[str, int] | None = None,
) -> list[Flat]:
    """Flat vectors per dtype; tensors named in `pad` are stored with that many rows."""
    pad = pad or {}
    by_dtype: dict[torch.dtype, list[str]] = {}
    for n in names:
        by_dtype.setdefault(base[n].dtype, []).append(n)

    def flat(t: Tensor, n: str) -> Tensor:
        return _layout(pad_rows(t.to(base[n].dtype), pad.get(n, 0)), channels_last)

    flats = []
    for group in by_dtype.values():
        theta = torch.cat([flat(base[n], n) for n in group])
        dflat = [torch.cat([flat(d[n], n) for n in group]) for d in dirs]
        slots: dict[str, tuple[int, torch.Size, int | None]] = {}
        off = 0
        for n in group:
            shape = base[n].shape
            rows = pad.get(n, 0)
            if shape and rows > shape[0]:
                slots[n] = (off, torch.Size((rows, *shape[1:])), shape[0])
            else:
                slots[n] = (off, shape, None)
            off += slots[n][1].numel()
        flats.append(Flat(list(group), theta, dflat, theta.clone(), channels_last, slots))
    return flats


def pad_rows(t: Tensor, rows: int) -> Tensor:
    """`t` with zero rows appended up to `rows` (unchanged if it has as many already)."""
    if t.dim() == 0 or rows <= t.shape[0]:
        return t
    return torch.cat([t, t.new_zeros((rows - t.shape[0], *t.shape[1:]))])


def _layout(t: Tensor, channels_last: bool) -> Tensor:
    """The flat order in which a tensor is stored (NHWC for 4D weights in channels_last)."""
    if channels_last and t.dim() == 4:
        return t.permute(0, 2, 3, 1).reshape(-1)
    return t.reshape(-1)


def _view(flat: Tensor, shape: torch.Size, channels_last: bool) -> Tensor:
    """`flat` shaped as `shape`, read back in the order `_layout` stored it."""
    if channels_last and len(shape) == 4:
        o, i, h, w = shape
        return flat.view(o, h, w, i).permute(0, 3, 1, 2)
    return flat.view(shape)
