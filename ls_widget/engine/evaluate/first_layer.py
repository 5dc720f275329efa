"""The first layer, precomputed: its output is affine in the perturbation.

When the first parameterized layer is a Linear or Conv fed by the data alone, f(X; W₀ + Σcₖ
Dₖ) = f(X; W₀) + Σ cₖ f₀(X; Dₖ): its output at θ₀ and along each direction is computed once,
and each point only combines them (a stand-in module returns the combination). That trades
the layer's multiply-adds per output (its fan-in) for ~3 memory passes per output per point,
so the plan uses it from a fan-in of 16 on (plan.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from ...directions.direction import Direction
from ..batch import Batch, forward
from ..memory import peak_bytes
from .flat import Flat
from .fold_bn import Pair, PairWatch

Layer = nn.Linear | nn.Conv1d | nn.Conv2d | nn.Conv3d
_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


@dataclass
class FirstLayer:
    """The private copy's first parameterized layer, when it is a Linear/Conv called once.

    Attributes:
        name: its qualified name ("" when it is the whole model, which cannot be swapped).
        module: the layer itself.
        io: its inputs at θ₀ and its outputs there, per batch: the same for every binding,
            so computed once (see `precompute`) for the batches laid out as `layout` says.
    """

    name: str
    module: Layer
    io: tuple[list[Tensor], list[Tensor]] | None = None
    layout: Hashable = None


class Injected(nn.Module):
    """Stands in for the first layer: returns the output we computed for this point."""

    def __init__(self) -> None:
        super().__init__()
        self.value: Tensor | None = None

    def set(self, value: Tensor) -> None:
        """Return `value` from now on."""
        self.__dict__["value"] = value  # once per point: skip nn.Module.__setattr__ (~10 µs)

    def forward(self, *args: object, **kwargs: object) -> Tensor:
        """The value last `set`, whatever the input."""
        assert self.value is not None
        return self.value


@dataclass
class Injection:
    """A binding's precomputed first layer: y₀ at θ₀ and yₖ along each direction, per batch.

    Attributes:
        name: the layer's qualified name in the private copy.
        module: the real layer (put back when the stand-in is off).
        y0: its output at θ₀, per batch.
        ys: its output along direction k (no bias), per direction, per batch.
        stand_in: the module that takes the layer's place while `active`.
        buf: per batch, the output at the current point (what the stand-in returns).
        row: per batch, y₀ + Σ_{k≥1} cₖyₖ, kept while a grid row lasts.
        active: the stand-in is in the private copy.
    """

    name: str
    module: Layer
    y0: list[Tensor]
    ys: list[list[Tensor]]
    stand_in: Injected = field(default_factory=Injected)
    buf: list[Tensor] = field(init=False)
    row: list[Tensor] = field(init=False)
    active: bool = False

    def __post_init__(self) -> None:
        self.buf = [torch.empty_like(t) for t in self.y0]
        self.row = [torch.empty_like(t) for t in self.y0]

    def feed(self, bi: int, c: Sequence[float], new_row: bool) -> None:
        """Hand the stand-in the layer's output for batch `bi` at the point `c`.

        The same order as `Flat.move` (row bracket first), so a point's value never depends
        on the points before it.
        """
        k = len(self.ys)
        if k > 1 and new_row:
            row = self.row[bi]
            torch.add(self.y0[bi], self.ys[1][bi], alpha=c[1], out=row)
            for j in range(2, k):
                row.add_(self.ys[j][bi], alpha=c[j])
        base = self.row[bi] if k > 1 else self.y0[bi]
        buf = self.buf[bi]
        torch.add(base, self.ys[0][bi], alpha=c[0], out=buf)
        self.stand_in.set(buf)


@dataclass(frozen=True)
class Census:
    """What one counted forward of the private copy tells (`census`).

    Attributes:
        first: its first layer, if it can be precomputed.
        flops_per_point: arithmetic of one point over all the data.
        activation_bytes: the peak bytes of live activations per sample in a forward.
        folds: (layer, BatchNorm) pairs whose BatchNorm can be folded (fold_bn.py).
    """

    first: FirstLayer | None
    flops_per_point: float
    activation_bytes: float
    folds: list[Pair]


def census(module: nn.Module, batch: Batch, n_samples: int) -> tuple[Census, Any]:
    """Run `module` once on `batch` and count: the first module with parameters that runs
    (kept if it is a Linear/Conv called once), the FLOPs of one point (one forward over all
    `n_samples`), the peak bytes of live activations per sample, and the BatchNorms that
    can be folded. Returns them and the forward's output; its errors propagate.

    The counts size tiles and micro-batches deterministically (plan.py). The hooks that find
    the first layer also keep PyTorch's fused fast paths (TransformerEncoderLayer) off, so the
    operations inside them are counted too.
    """
    order: list[str] = []
    counts: dict[str, int] = {}
    hooks = []
    for name, mod in module.named_modules():
        if mod._parameters:
            def hook(m: nn.Module, args: object, name: str = name) -> None:
                counts[name] = counts.get(name, 0) + 1
                if name not in order:
                    order.append(name)
            hooks.append(mod.register_forward_pre_hook(hook))
    watch = PairWatch(module)
    out: list[Any] = []
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter, watch:
            peak = peak_bytes(lambda: out.append(forward(module, batch)))
    finally:
        for h in hooks:
            h.remove()
    # Arithmetic per point, counted (not timed): it sizes tiles deterministically.
    per_sample = 1.0 / max(1, batch.n)
    flops = counter.get_total_flops() * n_samples * per_sample
    activations = peak * per_sample
    folds = watch.pairs()  # after the hooks are gone: a folded module has none
    first = None
    if order:
        name = order[0]
        mod = module.get_submodule(name)
        if counts[name] == 1 and isinstance(mod, _LAYERS):
            first = FirstLayer(name, mod)
    return Census(first, flops, activations, folds), out[0]


def fan_in(mod: Layer) -> int:
    """Multiply-adds per output of the layer."""
    if isinstance(mod, nn.Linear):
        return mod.in_features
    k = mod.in_channels // mod.groups
    for s in mod.kernel_size:
        k *= s
    return k


def precompute(
    first: FirstLayer,
    theta0: dict[str, Tensor],
    directions: Sequence[Direction],
    flats: Sequence[Flat],
    batches: Iterable[Batch],
    module: nn.Module,
    memory_budget: float,
    n_samples: int,
    layout: Hashable = None,
    given: Batch | None = None,
) -> Injection | None:
    """The first layer's output at θ₀ and along each direction, if it fits the budget.

    `module` is the private copy, attached to `flats` (set to θ₀ here to record the layer's
    inputs, the first time for each `layout`: a key of how `batches` are laid out). The
    budget is checked on the first batch before anything else is computed; the layer's
    inputs count too unless they are views of `given` (the first batch as the data gave it).
    """
    name, mod = first.name, first.module
    if not name:
        return None
    pnames = [f"{name}.{leaf}" for leaf in mod._parameters]
    fn = _layer_fn(mod)
    wname, bname = f"{name}.weight", f"{name}.bias"
    if wname not in theta0:
        return None
    w0 = theta0[wname]
    b0 = theta0.get(bname) if bname in pnames else None
    with torch.no_grad():
        if first.io is None or first.layout != layout:  # the same for every binding
            for f in flats:
                f.work.copy_(f.theta)
            pieces = iter(batches)  # made on the fly: never all at once before the check
            piece = next(pieces)
            head = _inputs_of(mod, module, [piece])
            first_out = fn(head[0], w0, b0)
            # Its inputs are kept too, where they are not views of the data (the data as
            # laid out in channels_last, an embedding's output): all counted on the first
            # batch, before the other batches run.
            per_sample = (len(directions) + 3) * _nbytes(first_out)
            if given is None or not _shares_storage(head[0], given):
                per_sample += _nbytes(head[0])
            if per_sample * n_samples / max(1, piece.n) > memory_budget:
                return None
            inputs = head + _inputs_of(mod, module, pieces)
            first.io = (inputs, [first_out] + [fn(x, w0, b0) for x in inputs[1:]])
            first.layout = layout
        inputs, y0 = first.io
        if sum(t.numel() * t.element_size() for t in y0) * (len(directions) + 3) > memory_budget:
            return None
        ys = [
            [
                fn(x, d[wname].to(w0.dtype), d[bname].to(w0.dtype) if b0 is not None else None)
                for x in inputs
            ]
            for d in directions
        ]
    return Injection(name, mod, y0, ys)


def _nbytes(t: Tensor) -> int:
    return t.numel() * t.element_size()


def _shares_storage(t: Tensor, batch: Batch) -> bool:
    """`t` is a view of one of the batch's input tensors (same storage)."""
    ptr = t.untyped_storage().data_ptr()
    return any(x.untyped_storage().data_ptr() == ptr for x in batch.inputs())


class _Reached(BaseException):
    """Raised by the hook that records the first layer's input, to end the forward there
    (a BaseException, so that a model's own ``except Exception`` lets it through)."""


def _inputs_of(layer: nn.Module, module: nn.Module, batches: Iterable[Batch]) -> list[Tensor]:
    """The input of `layer` in a forward of `module` on each batch; each forward stops when
    it reaches the layer, so this costs only what runs before it."""
    inputs: list[Tensor] = []

    def grab(m: nn.Module, args: tuple[Tensor, ...]) -> None:
        inputs.append(args[0])
        raise _Reached

    h = layer.register_forward_pre_hook(grab)
    try:
        for b in batches:
            with contextlib.suppress(_Reached):
                forward(module, b)
    finally:
        h.remove()
    return inputs


def _layer_fn(mod: Layer) -> Callable[[Tensor, Tensor, Tensor | None], Tensor]:
    if isinstance(mod, nn.Linear):
        return lambda x, w, b: nn.functional.linear(x, w, b)
    return mod._conv_forward
