"""The first layer, precomputed: its output is affine in the perturbation.

When the first parameterized layer is a Linear or Conv fed by the data alone, f(X; W₀ + Σcₖ
Dₖ) = f(X; W₀) + Σ cₖ f₀(X; Dₖ): its output at θ₀ and along each direction is computed once,
and each point only combines them (a stand-in module returns the combination). That trades
the layer's multiply-adds per output (its fan-in) for ~3 memory passes per output per point,
so the plan uses it from a fan-in of 16 on (plan.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from ...directions.direction import Direction
from ..batch import Batch, forward
from .flat import Flat

Layer = nn.Linear | nn.Conv1d | nn.Conv2d | nn.Conv3d
_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


@dataclass
class FirstLayer:
    """The private copy's first parameterized layer, when it is a Linear/Conv called once.

    Attributes:
        name: its qualified name ("" when it is the whole model, which cannot be swapped).
        module: the layer itself.
        io: its inputs at θ₀ and its outputs there, per batch: the same for every binding,
            so computed once (see `precompute`).
    """

    name: str
    module: Layer
    io: tuple[list[Tensor], list[Tensor]] | None = None


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


def find_first_layer(
    module: nn.Module, batch: Batch, n_samples: int
) -> tuple[FirstLayer | None, float]:
    """The first module with parameters that runs, if it is a Linear/Conv called once; and
    the FLOPs of one point (one forward over all `n_samples`), counted on `batch`.

    The count sizes tiles deterministically (plan.py); 0.0 if the forward fails (the real
    evaluation reports errors properly).
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
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            forward(module, batch)
    except Exception:  # the real evaluation reports errors properly
        return None, 0.0
    finally:
        for h in hooks:
            h.remove()
    # Arithmetic per point, counted (not timed): it sizes tiles deterministically.
    flops = counter.get_total_flops() * n_samples / max(1, batch.n)
    if not order:
        return None, flops
    name = order[0]
    mod = module.get_submodule(name)
    if counts[name] != 1 or not isinstance(mod, _LAYERS):
        return None, flops
    return FirstLayer(name, mod), flops


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
    batches: Sequence[Batch],
    module: nn.Module,
    memory_budget: float,
) -> Injection | None:
    """The first layer's output at θ₀ and along each direction, if it fits the budget.

    `module` is the private copy, attached to `flats` (set to θ₀ here to record the layer's
    inputs, the first time).
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
    if first.io is None:  # the layer's input at θ₀ and its output: same for every binding
        inputs: list[Tensor] = []

        def grab(m: nn.Module, args: tuple[Tensor, ...]) -> None:
            inputs.append(args[0])

        h = mod.register_forward_pre_hook(grab)
        try:
            with torch.no_grad():
                for f in flats:
                    f.work.copy_(f.theta)
                for b in batches:
                    forward(module, b)
        finally:
            h.remove()
        with torch.no_grad():
            first.io = (inputs, [fn(x, w0, b0) for x in inputs])
    inputs, y0 = first.io
    with torch.no_grad():
        ys = [
            [
                fn(x, d[wname].to(w0.dtype), d[bname].to(w0.dtype) if b0 is not None else None)
                for x in inputs
            ]
            for d in directions
        ]
    if sum(t.numel() * t.element_size() for t in y0) * (len(directions) + 3) > memory_budget:
        return None
    return Injection(name, mod, y0, ys)


def _layer_fn(mod: Layer) -> Callable[[Tensor, Tensor, Tensor | None], Tensor]:
    if isinstance(mod, nn.Linear):
        return lambda x, w, b: nn.functional.linear(x, w, b)
    return mod._conv_forward
