"""BatchNorm folded into the layer before it, at every point, for the per-point loop.

In eval mode ``bn(conv(x))`` is ``conv(x)·s + t`` per output channel, with
s = γ/√(σ² + ε) and t = β − μ·s (plus the conv's own bias times s): the same as one conv
with weight W·s and bias t. Folding saves the BatchNorm's pass over the activations: 5–12 %
of a ResNet-20 point on a 2-core CPU (channels_last, micro-batches). The weights and the BatchNorm's
parameters and statistics may all move with the point, so the folded weight and bias are
computed again after every move (a few parameter-sized operations per point), from the
tensors the private copy holds then.

Pairs are found in one forward (`PairWatch`, in the counted forward of first_layer.census):
a plain Conv1d/2d/3d (or a Linear) whose output goes to a plain eval-mode BatchNorm of the
same dimension and to nothing else, each module called once. The loop's values with the
folds are checked against the plain forward before they are used (plan.py).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.hooks import RemovableHandle

Step = Callable[[Tensor], Tensor]
Conv = nn.Conv1d | nn.Conv2d | nn.Conv3d
Layer = nn.Linear | Conv
BatchNorm = nn.modules.batchnorm._BatchNorm
Pair = tuple[Layer, BatchNorm]
_BN_OF: dict[type[nn.Module], type[nn.Module]] = {
    nn.Conv1d: nn.BatchNorm1d, nn.Conv2d: nn.BatchNorm2d, nn.Conv3d: nn.BatchNorm3d,
    nn.Linear: nn.BatchNorm1d,
}
_FLOATS = (torch.float32, torch.float64)  # in half precision, W·s would round too coarsely


def _plain(mod: nn.Module) -> bool:
    """Runs its class's forward, with no hooks."""
    return (
        "forward" not in mod.__dict__ and not mod._forward_hooks and not mod._forward_pre_hooks
    )


def foldable(layer: nn.Module, bn: nn.Module) -> bool:
    """`bn` is an eval-mode BatchNorm on running statistics that matches `layer`'s outputs,
    both plain modules of exactly these types, in float32 or float64."""
    kind = _BN_OF.get(type(layer))
    if kind is None or type(bn) is not kind or not (_plain(layer) and _plain(bn)):
        return False
    assert isinstance(layer, Layer) and isinstance(bn, BatchNorm)
    out = layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels
    return (
        not bn.training
        and bn.track_running_stats
        and bn.running_mean is not None
        and bn.num_features == out
        and layer.weight.dtype in _FLOATS
    )


class PairWatch(TorchDispatchMode):
    """Finds the pairs to fold while a forward runs under it (see `pairs`).

    A layer's output is followed through every operation that reads it (its storage, while
    it is alive): the pair holds when the BatchNorm's input is that output and every read
    happens inside the BatchNorm's call. Hooks on our private copy mark the calls; the mode
    is thread-local, so other threads' forwards are not seen.
    """

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self._inside: list[nn.Module] = []  # the BatchNorms being called, innermost last
        self._output: dict[int, nn.Module] = {}  # storage address → the layer that made it
        self._reads: dict[nn.Module, set[nn.Module | None]] = {}  # layer → where it was read
        self._calls: dict[nn.Module, int] = {}
        self._fed: dict[nn.Module, nn.Module] = {}  # BatchNorm → the layer whose output it got
        self._hooks: list[RemovableHandle] = []
        for mod in module.modules():
            if type(mod) in _BN_OF:
                self._hooks.append(mod.register_forward_hook(self._made))
            elif isinstance(mod, BatchNorm):
                self._hooks.append(mod.register_forward_pre_hook(self._enter))
                self._hooks.append(mod.register_forward_hook(self._leave))

    def _count(self, mod: nn.Module) -> None:
        self._calls[mod] = self._calls.get(mod, 0) + 1

    def _made(self, mod: nn.Module, args: object, out: object) -> None:
        self._count(mod)
        ptr = _address(out)
        if ptr:
            self._output[ptr] = mod
            self._reads.setdefault(mod, set())
            weakref.finalize(out, self._output.pop, ptr, None)

    def _enter(self, mod: nn.Module, args: tuple[object, ...]) -> None:
        self._count(mod)
        layer = self._output.get(_address(args[0] if args else None))
        if layer is not None:
            self._fed[mod] = layer
        self._inside.append(mod)

    def _leave(self, mod: nn.Module, args: object, out: object) -> None:
        self._inside.pop()

    def __torch_dispatch__(
        self, func: Any, types: Any, args: Any = (), kwargs: Any = None
    ) -> Any:
        if self._output:
            for t in tree_leaves((args, kwargs)):
                layer = self._output.get(_address(t))
                if layer is not None:
                    self._reads[layer].add(self._inside[-1] if self._inside else None)
        return func(*args, **(kwargs or {}))

    def __exit__(self, *exc: object) -> None:
        for h in self._hooks:
            h.remove()
        super().__exit__(*exc)

    def pairs(self) -> list[Pair]:
        """The (layer, BatchNorm) pairs seen: each called once, the BatchNorm fed the layer's
        output and the only one to read it, both `foldable`."""
        found: list[Pair] = []
        for bn, layer in self._fed.items():
            if (
                self._reads.get(layer) == {bn} and self._calls.get(layer) == 1
                and self._calls.get(bn) == 1 and foldable(layer, bn)
            ):
                assert isinstance(layer, Layer) and isinstance(bn, BatchNorm)
                found.append((layer, bn))
        return found


def _address(t: object) -> int:
    """The address of a dense tensor's storage (0 for anything else)."""
    if not isinstance(t, Tensor) or t.layout != torch.strided or t.device.type == "meta":
        return 0
    try:
        return t.untyped_storage().data_ptr()
    except (RuntimeError, NotImplementedError):  # tensor subclasses without a storage
        return 0


@dataclass
class Fold:
    """One (layer, BatchNorm) pair of the private copy, and its folded weight and bias.

    Attributes:
        layer: the Conv or Linear.
        bn: the BatchNorm after it.
        weight, bias: W·s and t at the current point (`refresh` computes them).
    """

    layer: Layer
    bn: BatchNorm
    weight: Tensor | None = field(default=None, init=False)
    bias: Tensor | None = field(default=None, init=False)

    def refresh(self) -> None:
        """Fold the tensors the private copy holds now (after a move to a new point)."""
        bn, layer = self.bn, self.layer
        assert bn.running_mean is not None and bn.running_var is not None
        with torch.no_grad():
            scale = torch.rsqrt(bn.running_var + bn.eps)
            if bn.weight is not None:
                scale = scale * bn.weight
            shift = -bn.running_mean * scale
            if bn.bias is not None:
                shift = shift + bn.bias
            if layer.bias is not None:
                shift = torch.addcmul(shift, layer.bias, scale)
            w = layer.weight
            self.weight = w * scale.reshape(-1, *(1,) * (w.dim() - 1))
            self.bias = shift

    def forward(self) -> Step:
        """The folded layer: its output equals ``bn(layer(x))`` (the BatchNorm is skipped)."""
        layer, bn = self.layer, self.bn
        if isinstance(layer, nn.Linear):
            def linear(x: Tensor) -> Tensor:
                if x.dim() != 2:  # BatchNorm1d reads dim 1 as channels: as written
                    y = F.linear(x, layer.weight, layer.bias)
                    return F.batch_norm(y, bn.running_mean, bn.running_var, bn.weight,
                                        bn.bias, False, 0.0, bn.eps)
                assert self.weight is not None
                return F.linear(x, self.weight, self.bias)
            return linear
        conv = layer._conv_forward

        def folded(x: Tensor) -> Tensor:
            assert self.weight is not None
            return conv(x, self.weight, self.bias)
        return folded


def install(
    pairs: list[Pair], forwards: dict[nn.Module, Step | None], old: list[Fold],
    keep: nn.Module | None = None,
) -> list[Fold]:
    """Replace the `old` folds in `forwards` (module → its replacement forward, None: skipped)
    by folds of `pairs`, but for the layer `keep` and layers replaced already; refreshed."""
    for f in old:
        del forwards[f.layer], forwards[f.bn]
    folds = [Fold(layer, bn) for layer, bn in pairs if layer is not keep and layer not in forwards]
    for f in folds:
        forwards[f.layer] = f.forward()
        forwards[f.bn] = None
        f.refresh()
    return folds
