"""Evaluator: loss and metrics at many points θ₀ + Σₖ cₖ dₖ, fast, on tensors we own.

The user's model is never written to. We evaluate a private copy whose parameters are views
into one flat work vector per dtype, so moving to a grid point is one fused `add` per dtype
(θ₀ + Σ_{k≥1} cₖdₖ is kept while a grid row lasts). Two ways to run the points:

- ``loop``: one forward per point. When the first parameterized layer is a Linear or Conv fed
  by the data alone, its output is affine in the perturbation, so f(X; W₀ + Σcₖ Dₖ) =
  f(X; W₀) + Σ cₖ f₀(X; Dₖ) is computed once per direction and combined per point (where the
  layer does enough work per output for that to pay: fan-in ≥ 16). The loop also runs the
  exact speed-ups of speedups.py (flattened Sequentials, in-place ReLUs, padded narrow
  Linears). Each shortcut is checked numerically against the plain loop before it is used.
- ``vmap``: `torch.func.functional_call` vectorized over chunks of points (pays on GPUs and for
  small data, where one point does not fill the device).

Fixed rules pick between them (and channels_last for conv nets on CPUs), never timings, so
the same inputs give the same numbers on every run.
"""

from __future__ import annotations

import copy
import inspect
import math
import numbers
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import NoReturn

import numpy as np
import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap
from torch.utils.flop_counter import FlopCounterMode

from ...directions.direction import Direction
from ..data import Batch
from ..heap import keep_heap
from ..params import ParamSpace
from . import speedups

LossFn = Callable[[Tensor, Tensor], Tensor]
DEFAULT_MEMORY_BUDGET = 1 << 30  # bytes for precomputed activations and vmap chunks
_VMAP_SMALL_DATA = 512  # samples: below this, one point underfills even a CPU
# Points per vmap call, at most. Every call gets exactly its binding's chunk of points (the
# last one padded), because a batched kernel may round differently for another batch size:
# so a point's value never depends on how many points share its call.
_VMAP_MAX_CHUNK = 128
# A tile is about this much arithmetic (counted, not timed): ~0.1–0.3 s on two CPU cores, so
# a consumer can stop between tiles; tiles hold 1 to 512 points.
_TILE_FLOPS = 2e10
_MAX_TILE = 512
# Precomputing the first layer trades its multiply-adds per output (its fan-in) for ~3 memory
# passes per output per point: it pays from about this fan-in (measured on CPU: the digits
# MLP's 64 and 3-channel image stems' 27–147 gain 1.2–1.7×, a 1-channel 3×3 conv's 9 loses).
_INJECT_MIN_FAN_IN = 16


def _module_and_leaf(root: nn.Module, name: str) -> tuple[nn.Module, str]:
    *path, leaf = name.split(".")
    mod = root
    for p in path:
        mod = getattr(mod, p)
    return mod, leaf


def _as_scalar(value: object, what: str) -> Tensor:
    if not isinstance(value, Tensor):
        try:
            value = torch.as_tensor(value)
        except Exception:  # None, a module, a string...: not a number
            raise TypeError(
                f"the {what} returned a {type(value).__name__}; it must return the batch mean "
                "as a scalar tensor or a number"
            ) from None
    if value.numel() != 1:
        example = (
            "F.cross_entropy(out, y) with reduction='mean'" if what == "loss"
            else "(out.argmax(1) == y).float().mean()"
        )
        raise ValueError(
            f"the {what} returned a tensor of shape {tuple(value.shape)}; it must return the "
            f"batch mean as a scalar (e.g. {example})"
        )
    return value if value.dim() == 0 else value.reshape(())


_METRICS_MODULE = "ls_widget.engine.metrics"


def _describe(obj: object) -> str:
    """'shape (20, 3), float32' for a tensor, else the type (and a dict's keys)."""
    if isinstance(obj, Tensor):
        return f"shape {tuple(obj.shape)}, {str(obj.dtype).replace('torch.', '')}"
    if isinstance(obj, Mapping):
        return f"a {type(obj).__name__} with keys {list(obj)[:5]}"
    if isinstance(obj, (tuple, list)):
        return f"a {type(obj).__name__} of {len(obj)}: " + ", ".join(
            f"({_describe(o)})" for o in obj[:3]
        )
    return "None" if obj is None else f"a {type(obj).__name__}"


def _target_hint(out: object, y: object) -> str:
    """What is most likely wrong when a loss or metric fails on (out, y), and the fix."""
    if out is None:
        return "the model returned None: does its forward `return` the output?"
    if not isinstance(out, Tensor):
        pick = "out[0]" if isinstance(out, (tuple, list)) else "out.logits"
        return (
            f"the model returns {_describe(out)}, which the loss receives as it is: pass a "
            f"loss that picks the tensor, e.g. lambda out, y: F.cross_entropy({pick}, y)"
        )
    if not isinstance(y, Tensor):
        return (
            f"the target is {_describe(y)}, which the loss receives as it is: pass a loss that "
            "takes it (e.g. lambda out, y: F.cross_entropy(out, y['labels'])) or y as a tensor"
        )
    if out.numel() == 0:
        return f"the model's output is empty (shape {tuple(out.shape)}): check its forward"
    if out.dim() > 0 and y.dim() > 0 and out.shape[0] != y.shape[0]:
        return (
            f"the output has {out.shape[0]} samples and the target {y.shape[0]}: every batch "
            "needs one target per sample, in the same order"
        )
    one_column = out.dim() == 1 or (out.dim() == 2 and out.shape[1] == 1)  # binary/regression
    if y.is_floating_point():
        if out.dim() != y.dim() + 1:
            return ""
        if one_column:
            return (
                f"the output is shaped {tuple(out.shape)} and the target {tuple(y.shape)}: make "
                "them match, e.g. y.reshape(-1, 1)"
            )
        return "class-index targets must be integers: pass y.long() (NumPy: y.astype(np.int64))"
    if one_column:
        reshape = ".reshape(-1, 1)" if out.dim() == 2 and y.dim() == 1 else ""
        return (
            "the model has one output per sample: a binary or regression loss (e.g. "
            f"F.binary_cross_entropy_with_logits) needs targets y.float(){reshape}; for "
            "classes, give the model one output per class"
        )
    if y.shape == out.shape and out.dim() > 1:
        return (
            "integer targets shaped like the output look one-hot: pass class indices "
            "y.argmax(1), or y.float() as class probabilities"
        )
    if y.dtype not in (torch.int64, torch.uint8, torch.bool):
        return f"class-index targets must be int64, not {y.dtype}: pass y.long()"
    if out.dim() == y.dim() + 1 and y.numel() > 0:
        lo, hi, classes = int(y.min()), int(y.max()), out.shape[1]
        if hi >= classes or lo < -100:
            return (
                f"the targets range over {lo}..{hi} but the model has {classes} outputs: class "
                f"indices must lie in 0..{classes - 1}"
            )
    return ""


def _raise_with_context(exc: Exception, context: str, hint: str = "") -> NoReturn:
    """Raise `exc` explained by what was called on what (`context`) and the likely fix, in
    its own type: a new exception for the builtin types (so `except RuntimeError` still
    works), else `exc` itself with a note."""
    tail = f" — {hint}" if hint else ""
    if type(exc) in (RuntimeError, ValueError, TypeError, IndexError, NotImplementedError):
        raise type(exc)(f"{context}: {exc}{tail}") from exc
    exc.add_note(context + tail)
    raise exc


def _check_fn(fn: object, what: str, example: str) -> None:
    """`fn` can be called as fn(output, target): not a class, and a signature that binds."""
    if isinstance(fn, type):
        raise TypeError(
            f"the {what} is the class {fn.__name__}; pass an instance, {fn.__name__}(), or a "
            f"function fn(output, target) such as {example}"
        )
    if not callable(fn):
        raise TypeError(
            f"the {what} must be a callable fn(output, target), e.g. {example}; got "
            f"{type(fn).__name__}"
        )
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins without a signature: calling them will tell
        return
    try:
        sig.bind(None, None)
    except TypeError:
        name = getattr(fn, "__name__", type(fn).__name__)
        raise TypeError(
            f"the {what} {name}{sig} cannot be called as fn(output, target); ls-widget calls it "
            f"with the model's output and the batch's targets, e.g. {example}"
        ) from None


def _same(a: Tensor, b: Tensor) -> bool:
    """Bit for bit equal (NaNs included: a buffer may hold a mask of -inf or NaN)."""
    if a.shape != b.shape or a.dtype != b.dtype or a.device != b.device:
        return False
    if torch.equal(a, b):
        return True
    return a.numel() > 0 and torch.equal(
        a.reshape(-1).contiguous().view(torch.uint8), b.reshape(-1).contiguous().view(torch.uint8)
    )


def _check_output(out: object, where: str) -> None:
    if out is None:
        raise TypeError(
            "the model's forward returned None; it must return its output (a missing `return`?)"
        )
    if isinstance(out, Tensor) and out.numel() == 0:
        raise ValueError(
            f"the model returned an empty output of shape {tuple(out.shape)} on {where}; a loss "
            "needs at least one value per sample"
        )


def _center_hint(out: object, batch: Batch) -> str:
    """Where a non-finite loss at θ₀ comes from (the parameters are known to be finite)."""
    bad_x = sum(int((~torch.isfinite(t)).sum()) for t in batch.x if t.is_floating_point())
    if bad_x:
        return (
            f"the inputs contain {bad_x} NaN/inf values; clean the data (drop those rows, or "
            "X = torch.nan_to_num(X))"
        )
    y = batch.y
    if isinstance(y, Tensor) and y.is_floating_point() and not bool(torch.isfinite(y).all()):
        return "the targets contain NaN/inf values; clean them (or drop those samples)"
    if isinstance(out, Tensor) and out.is_floating_point() and not bool(
        torch.isfinite(out).all()
    ):
        return (
            "the model's output contains NaN/inf although its inputs and parameters are "
            "finite; look for log, sqrt or division of non-positive values in forward (or "
            "overflow in float16)"
        )
    return (
        "the model's output is finite, so the loss makes it non-finite; check the loss (e.g. "
        "log of 0, or targets outside the range it expects)"
    )


def _writes_target(what: str) -> NoReturn:
    raise ValueError(
        f"the {what} writes to its target in place (e.g. y[y == 255] = 0); every point is "
        "scored against the same targets, so it must not change them: work on a copy in the "
        "loss (y = y.clone()), or clean the targets once before building the Landscape"
    )


def _fresh_inputs(module: nn.Module, args: tuple) -> tuple:
    """Forward pre-hook for models that write to their inputs: they get copies, so the data
    (the user's tensors, and ours) is the same for every point."""
    return tuple(a.clone() if isinstance(a, Tensor) else a for a in args)


class _Injected(nn.Module):
    """Stands in for the first layer: returns the output we computed for this point."""

    def __init__(self) -> None:
        super().__init__()
        self.value: Tensor | None = None

    def set(self, value: Tensor) -> None:
        self.__dict__["value"] = value  # once per point: skip nn.Module.__setattr__ (~10 µs)

    def forward(self, *args: object, **kwargs: object) -> Tensor:
        assert self.value is not None
        return self.value


def _fan_in(mod: nn.Module) -> int:
    if isinstance(mod, nn.Linear):
        return mod.in_features
    k = mod.in_channels // mod.groups  # type: ignore[operator]
    for s in mod.kernel_size:  # type: ignore[union-attr]
        k *= s
    return k


def _layer_fn(mod: nn.Module) -> Callable[[Tensor, Tensor, Tensor | None], Tensor] | None:
    if isinstance(mod, nn.Linear):
        return lambda x, w, b: nn.functional.linear(x, w, b)
    if isinstance(mod, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        return mod._conv_forward
    return None


@dataclass
class _Flat:
    """One dtype's moving tensors laid out in a flat vector (θ₀, directions, work).

    A tensor may be stored with zero rows added (`pad`); its view is then the first rows
    of the padded block, and `padded(name)` the whole block.
    """

    names: list[str]
    theta: Tensor
    dirs: list[Tensor]
    work: Tensor
    channels_last: bool
    slots: dict[str, tuple[int, torch.Size, int | None]]  # name → offset, stored shape, rows
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
        off, shape, _ = self.slots[name]
        v = self.work if vector is None else vector
        return _view(v[off : off + shape.numel()], shape, self.channels_last)

    @property
    def matrix(self) -> Tensor:
        """Directions as rows of a (k, numel) matrix, for vmap's batched points."""
        if "_matrix" not in self.__dict__:
            self.__dict__["_matrix"] = torch.stack(self.dirs)
        return self.__dict__["_matrix"]

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


def _layout(t: Tensor, channels_last: bool) -> Tensor:
    """The flat order in which a tensor is stored (NHWC for 4D weights in channels_last)."""
    if channels_last and t.dim() == 4:
        return t.permute(0, 2, 3, 1).reshape(-1)
    return t.reshape(-1)


def _view(flat: Tensor, shape: torch.Size, channels_last: bool) -> Tensor:
    if channels_last and len(shape) == 4:
        o, i, h, w = shape
        return flat.view(o, h, w, i).permute(0, 3, 1, 2)
    return flat.view(shape)


def _pad_rows(t: Tensor, rows: int) -> Tensor:
    if t.dim() == 0 or rows <= t.shape[0]:
        return t
    return torch.cat([t, t.new_zeros((rows - t.shape[0], *t.shape[1:]))])


def _build_flats(
    base: Mapping[str, Tensor],
    dirs: Sequence[Mapping[str, Tensor]],
    names: Sequence[str],
    channels_last: bool,
    pad: Mapping[str, int] | None = None,
) -> list[_Flat]:
    """Flat vectors per dtype; tensors named in `pad` are stored with that many rows."""
    pad = pad or {}
    by_dtype: dict[torch.dtype, list[str]] = {}
    for n in names:
        by_dtype.setdefault(base[n].dtype, []).append(n)

    def flat(t: Tensor, n: str) -> Tensor:
        return _layout(_pad_rows(t.to(base[n].dtype), pad.get(n, 0)), channels_last)

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
        flats.append(_Flat(list(group), theta, dflat, theta.clone(), channels_last, slots))
    return flats


class Evaluator:
    """Loss and metrics of a model at points of a low-dimensional affine subspace.

    Args:
        model: the user's model (read once, never written).
        space: its ParamSpace (θ₀ and buffer snapshots).
        batches: the evaluation data (fixed order).
        loss_fn: ``loss_fn(output, target)`` → scalar batch mean.
        metrics: name → ``fn(output, target)`` → scalar batch mean (e.g. accuracy).
        memory_budget: bytes allowed for precomputed first-layer outputs and vmap chunks.
        strategy: ``"auto"`` (calibrate), ``"loop"`` or ``"vmap"``.
    """

    def __init__(
        self,
        model: nn.Module,
        space: ParamSpace,
        batches: list[Batch],
        loss_fn: LossFn,
        metrics: Mapping[str, LossFn] | None = None,
        *,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
        strategy: str = "auto",
    ) -> None:
        if not callable(loss_fn):
            raise TypeError(
                "loss must be a callable loss_fn(output, target), e.g. F.cross_entropy; got "
                f"{type(loss_fn).__name__}"
            )
        _check_fn(loss_fn, "loss", "F.cross_entropy")
        if metrics is not None and not isinstance(metrics, Mapping):
            raise TypeError(
                f"metrics must be a dict name → fn(output, target), got {type(metrics).__name__}"
                "; pass e.g. metrics={'accuracy': lw.metrics.accuracy}"
            )
        for name, fn in (metrics or {}).items():
            if not isinstance(name, str):
                raise TypeError(f"metric names must be strings, got {name!r}")
            _check_fn(fn, f"metric {name!r}", "lw.metrics.accuracy")
        if strategy not in ("auto", "loop", "vmap"):
            raise ValueError(f"strategy={strategy!r}; use 'auto', 'loop' or 'vmap'")
        if isinstance(memory_budget, bool) or not isinstance(memory_budget, numbers.Real):
            raise TypeError(
                f"memory_budget is a number of bytes, got {memory_budget!r}; e.g. 2**30 for 1 GiB"
            )
        if not memory_budget > 0:
            raise ValueError(f"memory_budget must be a positive number of bytes: {memory_budget}")
        self.space = space
        self.batches = batches
        self.loss_fn = loss_fn
        self.metrics = dict(metrics or {})
        if "loss" in self.metrics:
            raise ValueError("'loss' is reserved for the loss; give the metric another name")
        self.names: tuple[str, ...] = ("loss", *self.metrics)
        self.n_samples = sum(b.n for b in batches)
        self.memory_budget = memory_budget
        self.strategy = strategy
        self.device = space.device
        self.has_conv = any(
            isinstance(m, (nn.Conv2d,)) for m in model.modules()
        )
        self._copy = self._private_copy(model)
        self.flops_per_point = 0.0  # counted in the first forward (_find_first_layer)
        self._first: tuple[str, nn.Module] | None = self._find_first_layer()
        # Narrow Linears the loop computes padded (speedups.py): CPU float32 only, where
        # MKL's small-N sgemm is slow.
        self._narrow: list[tuple[nn.Module, str, str | None]] = []
        if self.device.type == "cpu":
            for qual, mod in speedups.narrow_linears(self._copy):
                wn = f"{qual}.weight"
                bn = f"{qual}.bias" if mod.bias is not None else None
                canonical = wn in self._alias_p and (bn is None or bn in self._alias_p)
                if canonical and space.theta0[wn].dtype == torch.float32:
                    self._narrow.append((mod, wn, bn))
        self.lock = threading.RLock()  # one private copy: bindings take turns on it
        self.keep_heap = True  # see heap.py: large CPU buffers stay in the heap (glibc)
        self._active: BoundEvaluator | None = None
        self._plans: dict[tuple, dict] = {}  # calibration results by which tensors move
        self._first_io: tuple[list[Tensor], list[Tensor]] | None = None  # see _prepare_injection
        self.chosen: dict[str, object] = {}  # what calibration picked, for benchmarks and logs
        self.points_per_second: float | None = None

    # ----------------------------------------------------------------- the private copy
    def _private_copy(self, model: nn.Module) -> nn.Module:
        """Deep copy of the module tree that shares no tensor with the user's model.

        The memo maps every parameter and buffer to an empty placeholder, so the copy costs no
        extra memory; `set_param`/`set_buffer` then point it at θ₀ and our work vectors.
        """
        memo: dict[int, object] = {}
        for p in model.parameters():
            memo[id(p)] = nn.Parameter(p.new_empty(0), requires_grad=False)
        for b in model.buffers():
            memo[id(b)] = b.new_empty(0)
        # Tensors a forward left as plain attributes with autograd history (the weight that
        # the old torch.nn.utils.weight_norm / spectral_norm hooks compute) refuse deepcopy;
        # the hooks recompute them on every call, so a detached copy will do.
        for mod in model.modules():
            for t in vars(mod).values():
                if isinstance(t, Tensor) and t.grad_fn is not None and id(t) not in memo:
                    memo[id(t)] = t.detach().clone()
        try:
            clone = copy.deepcopy(model, memo)
        except Exception as exc:  # any failure means: cannot copy this model
            raise TypeError(
                f"ls-widget evaluates a private copy of the model, and copy.deepcopy(model) "
                f"failed ({type(exc).__name__}: {exc}); make the model deep-copyable (no open "
                "files, locks or generators as attributes)"
            ) from exc
        clone.eval()
        # Canonical name (as in named_parameters()) -> every alias: tied weights stay tied.
        self._alias_p = self._aliases(clone.named_parameters(remove_duplicate=False))
        self._alias_b = self._aliases(clone.named_buffers(remove_duplicate=False))
        self._root = clone
        self._probe_forward(clone)
        for name in self._alias_p:
            self.set_param(name, self.space.theta0[name])
        for name in self._alias_b:
            self.set_buffer(name, self.space.buffers0[name])
        return clone

    def _probe_forward(self, clone: nn.Module) -> None:
        """Run the copy once at θ₀ on the first batch, all on tensors of its own.

        A forward that fails, or returns nothing usable, is reported now with what it was
        given. Then writes: a forward that writes to its inputs gets fresh copies of them on
        every call (so the user's data, which our batches may share, is never written, and
        every point sees the same data); one that writes to its parameters or buffers is an
        error, since each point would move the model for the next (and drift θ₀).
        """
        space = self.space
        for name in self._alias_p:
            self.set_param(name, space.theta0[name].clone())
        for name in self._alias_b:
            self.set_buffer(name, space.buffers0[name].clone())
        x = self.batches[0].x
        mine = tuple(t.clone() for t in x)
        where = "the first batch" if len(self.batches) > 1 else "the data"
        try:
            with torch.no_grad():
                out = clone(*mine)
        except Exception as exc:
            self._forward_error(exc, self.batches[0], where)
        _check_output(out, where)
        for kind, aliases, slots, snapshot in (
            ("parameter", self._alias_p, "_parameters", space.theta0),
            ("buffer", self._alias_b, "_buffers", space.buffers0),
        ):
            for name, names in aliases.items():
                for alias in names:
                    mod, leaf = _module_and_leaf(clone, alias)
                    now = getattr(mod, slots).get(leaf)
                    if isinstance(now, Tensor) and _same(now.detach(), snapshot[name]):
                        continue
                    cache = (
                        " (if it is a cache the model fills on first use, run the model once "
                        "on your data before building the Landscape)" if kind == "buffer" else ""
                    )
                    raise ValueError(
                        f"the model's forward writes to its {kind} {alias!r}: it changed when "
                        "ls-widget ran the model once at θ₀ in eval mode, so every point "
                        "evaluated would move the model for the next. Move that update out of "
                        "forward (into the training loop, or under `if self.training:`)" + cache
                    )
        if not all(_same(a, b) for a, b in zip(mine, x, strict=True)):
            clone.register_forward_pre_hook(_fresh_inputs)

    @staticmethod
    def _aliases(named: object) -> dict[str, list[str]]:
        first: dict[int, str] = {}
        out: dict[str, list[str]] = {}
        for n, t in named:  # type: ignore[attr-defined]
            canon = first.setdefault(id(t), n)
            out.setdefault(canon, []).append(n)
        return out

    def set_param(self, name: str, value: Tensor) -> None:
        """Point parameter `name` (and its tied aliases) of the private copy at `value`."""
        param = nn.Parameter(value, requires_grad=False)
        for alias in self._alias_p.get(name, [name]):
            mod, leaf = _module_and_leaf(self._root, alias)
            mod._parameters[leaf] = param

    def set_buffer(self, name: str, value: Tensor) -> None:
        """Point buffer `name` (and its aliases) of the private copy at `value`."""
        for alias in self._alias_b.get(name, [name]):
            mod, leaf = _module_and_leaf(self._root, alias)
            mod._buffers[leaf] = value

    # ----------------------------------------------------------------- first-layer linearity
    def _find_first_layer(self) -> tuple[str, nn.Module] | None:
        """The first module with parameters that runs, if it is a Linear/Conv called once."""
        order: list[str] = []
        counts: dict[str, int] = {}
        hooks = []
        for name, mod in self._copy.named_modules():
            if mod._parameters:
                def hook(m: nn.Module, args: object, name: str = name) -> None:
                    counts[name] = counts.get(name, 0) + 1
                    if name not in order:
                        order.append(name)
                hooks.append(mod.register_forward_pre_hook(hook))
        first = self.batches[0]
        try:
            with torch.no_grad(), FlopCounterMode(display=False) as counter:
                self._forward(self._copy, first)
        except Exception:  # the real evaluation reports errors properly
            return None
        finally:
            for h in hooks:
                h.remove()
        # Arithmetic per point, counted (not timed): it sizes tiles deterministically.
        self.flops_per_point = counter.get_total_flops() * self.n_samples / max(1, first.n)
        if not order:
            return None
        name = order[0]
        mod = self._copy.get_submodule(name)
        if counts[name] != 1 or _layer_fn(mod) is None:
            return None
        return name, mod

    @contextmanager
    def plain(self) -> Iterator[nn.Module]:
        """The private copy with its real first layer, for `functional_call` (holds the lock).

        Whatever calls it passes every parameter and buffer explicitly; afterwards the next
        evaluation re-attaches its binding.
        """
        with self.lock:
            if self._first is not None and self._first[0]:
                parent, leaf = _module_and_leaf(self._copy, self._first[0])
                setattr(parent, leaf, self._first[1])
            self._active = None
            yield self._copy

    # ----------------------------------------------------------------- evaluation
    @staticmethod
    def _forward(module: nn.Module, batch: Batch) -> Tensor:
        return module(*batch.x)

    def _score(self, out: Tensor, batch: Batch) -> list[Tensor]:
        """The loss and metrics of one batch as 0-d tensors on the model's device.

        Where the loss is not finite (a diverged point) every metric is NaN too: a diverged
        model has no meaningful accuracy, and a finite one would be drawn as if it had.
        """
        y = batch.y
        # The targets are shared by every point (and may be the user's own tensor): a loss or
        # metric that writes to them would change the next point's. Autograd's version
        # counter tells, for the price of an attribute read.
        version = y._version if isinstance(y, Tensor) and not y.is_inference() else None
        loss = _as_scalar(self._call(self.loss_fn, out, y, "loss"), "loss")
        if version is not None and y._version != version:
            _writes_target("loss")
        vals = [loss if loss.device == self.device else loss.to(self.device)]
        if self.metrics:
            finite = torch.isfinite(vals[0])
            for name, fn in self.metrics.items():
                what = f"metric {name!r}"
                v = _as_scalar(self._call(fn, out, y, what), what)
                if version is not None and y._version != version:
                    _writes_target(what)
                v = v if v.device == self.device else v.to(self.device)
                vals.append(torch.where(finite, v, torch.nan))
        return vals

    @staticmethod
    def _call(fn: LossFn, out: Tensor, y: object, what: str) -> object:
        """fn(out, y); an error says what the loss or metric was given and the likely fix."""
        try:
            return fn(out, y)
        except Exception as exc:
            name = getattr(fn, "__name__", type(fn).__name__)
            label = f"loss {name}" if what == "loss" else what  # metrics are named already
            _raise_with_context(
                exc,
                f"the {label} failed on the model's output ({_describe(out)}) and the "
                f"target ({_describe(y)})",
                # lw.metrics explain their own errors; a guess from the shapes would not help
                "" if getattr(fn, "__module__", "") == _METRICS_MODULE else _target_hint(out, y),
            )

    def bind(self, directions: Sequence[Direction]) -> BoundEvaluator:
        """Prepare evaluation at θ₀ + Σ cₖ dₖ for these directions."""
        if isinstance(directions, Direction) or not isinstance(directions, Sequence):
            raise TypeError(
                f"expected a list of lw.Direction, got {type(directions).__name__}; pass [d]"
            )
        if not directions:
            raise ValueError("need at least one direction")
        dirs = []
        for d in directions:
            if not isinstance(d, Direction):
                keys = (
                    " (a parameter name: was a single Direction passed where a list is "
                    "expected? pass [d])" if isinstance(d, str) else ""
                )
                raise TypeError(
                    f"expected an lw.Direction, got {type(d).__name__}{keys}; build one with "
                    "lw.directions.random(model)"
                )
            self.space.check_compatible(d)  # architecture, and finite values
            dirs.append(d.to(self.device))  # built on another device: follow the model
        with self.lock:
            bound = BoundEvaluator(self, dirs)
            # After the binding's calibration, whose first point reports errors in the loss
            # (the order of the user's loss calls stays as it was before this check existed).
            if not self._center_checked:
                self._check_center()
            return bound

    _center_checked = False  # set by the first successful `_check_center`

    def _check_center(self) -> None:
        """Run the model at θ₀ over all the data once, when the first binding is made.

        A loss that broadcasts output against target (wrong values, with only a warning) is
        an error; and so is a non-finite loss at θ₀, which would draw every point as NaN.
        (Points away from θ₀ may diverge: there NaN and inf are results, drawn masked.)
        """
        space = self.space
        with self.plain() as module, torch.no_grad():
            for i, batch in enumerate(self.batches):
                where = f"batch {i + 1} of {len(self.batches)}" if len(self.batches) > 1 else (
                    "the data"
                )
                try:
                    out = functional_call(module, (space.theta0, space.buffers0), batch.x)
                except Exception as exc:
                    self._forward_error(exc, batch, where)
                _check_output(out, where)
                with warnings.catch_warnings(record=True) as caught:
                    # Seen even where the user ignores warnings (or saw it once already).
                    warnings.filterwarnings("always", message=".*broadcast", category=UserWarning)
                    loss = float(self._score(out, batch)[0])
                for w in caught:
                    if issubclass(w.category, UserWarning) and "broadcast" in str(w.message):
                        raise ValueError(
                            f"the loss broadcasts the model's output ({_describe(out)}) against "
                            f"the target ({_describe(batch.y)}), which gives wrong values "
                            f"(PyTorch warned: {w.message}). Make the shapes match, e.g. "
                            "targets y.reshape(-1, 1), or a loss lambda out, y: "
                            "F.mse_loss(out.squeeze(-1), y)"
                        )
                    warnings.showwarning(w.message, w.category, w.filename, w.lineno)
                if not math.isfinite(loss):
                    raise ValueError(
                        f"the model's own loss at θ₀ is {loss} on {where} (its parameters are "
                        "finite), so every point of the landscape would be NaN: "
                        + _center_hint(out, batch)
                    )
        self._center_checked = True

    @staticmethod
    def _forward_error(exc: Exception, batch: Batch, where: str) -> NoReturn:
        ints = [t.dtype for t in batch.x if not t.is_floating_point()]
        dtypes = ("dtype", "scalar type", "Byte", "Char", "Short", "Int", "Long", "Bool")
        if not any(word in str(exc) for word in dtypes):
            ints = []  # an integer input is not the problem (token ids, say)
        hint = (
            f"the inputs are {ints[0]}: integer data is passed as it is (e.g. token ids); "
            "convert features with X.float() (NumPy: X.astype(np.float32))" if ints else ""
        )
        inputs = ", ".join(f"({_describe(t)})" for t in batch.x)
        _raise_with_context(
            exc, f"the model failed at θ₀ on {where}, called as model(*x) with x = {inputs}", hint
        )


class BoundEvaluator:
    """An Evaluator bound to k directions: `evaluate(coeffs)` for coeffs of shape (P, k)."""

    def __init__(self, ev: Evaluator, directions: list[Direction]) -> None:
        self.ev = ev
        self.directions = directions
        self.k = len(directions)
        space = ev.space
        self.moving = [
            n for n in space.names if any(bool(d[n].any()) for d in directions)
        ]
        buf_names = [
            n for n in space.floating_buffer_names
            if any(n in d.buffers and bool(d.buffers[n].any()) for d in directions)
        ]
        self.buffer_names = buf_names
        self.channels_last = False
        self._flats: list[_Flat] = []
        self._buf_flats: list[_Flat] = []
        self._inject: dict | None = None
        self._mode = "loop"
        self._vmap_chunk = 1
        self._fast = False  # the loop's speed-ups (speedups.py), on once verified
        self._layout(channels_last=False)
        self._calibrate()

    # ----------------------------------------------------------------- setup
    def _layout(self, channels_last: bool) -> None:
        space = self.ev.space
        self.channels_last = channels_last
        dirs = [dict(d) for d in self.directions]
        pad = {n: speedups.PAD_TO for _, *names in self.ev._narrow for n in names if n}
        self._flats = _build_flats(space.theta0, dirs, self.moving, channels_last, pad)
        bdirs = [
            {n: d.buffers.get(n, torch.zeros_like(space.buffers0[n])) for n in self.buffer_names}
            for d in self.directions
        ]
        self._buf_flats = _build_flats(space.buffers0, bdirs, self.buffer_names, False)
        self._static = {}
        for n in space.names:
            if n not in self.moving:
                base = space.theta0[n]
                if channels_last and base.dim() == 4:
                    base = base.contiguous(memory_format=torch.channels_last)
                self._static[n] = base

        def padded(n: str) -> Tensor:
            for f in self._flats:
                if n in f.slots:
                    return f.padded(n)
            return _pad_rows(space.theta0[n], pad[n])

        self._padded = {
            mod: (padded(wn), padded(bn) if bn else None) for mod, wn, bn in self.ev._narrow
        }
        self._batches = [self._to_layout(b, channels_last) for b in self.ev.batches]
        self._attach()

    @staticmethod
    def _to_layout(batch: Batch, channels_last: bool) -> Batch:
        if channels_last and batch.x[0].dim() == 4:
            x0 = batch.x[0].contiguous(memory_format=torch.channels_last)
            return Batch((x0, *batch.x[1:]), batch.y, batch.n)
        return batch

    def _prepare_injection(self) -> bool:
        """Precompute the first layer's output at θ₀ and along each direction, if it pays."""
        ev = self.ev
        if ev._first is None or not ev._first[0]:
            return False
        name, mod = ev._first
        pnames = [f"{name}.{leaf}" if name else leaf for leaf in mod._parameters]
        fn = _layer_fn(mod)
        assert fn is not None
        wname, bname = f"{name}.weight" if name else "weight", f"{name}.bias" if name else "bias"
        if wname not in ev.space.theta0:
            return False
        w0 = ev.space.theta0[wname]
        b0 = ev.space.theta0.get(bname) if bname in pnames else None
        if ev._first_io is None:  # the layer's input at θ₀ and its output: same for every binding
            inputs: list[Tensor] = []

            def grab(m: nn.Module, args: tuple) -> None:
                inputs.append(args[0])

            h = mod.register_forward_pre_hook(grab)
            try:
                with torch.no_grad():
                    for f in self._flats + self._buf_flats:
                        f.work.copy_(f.theta)
                    for b in self._batches:
                        ev._forward(ev._copy, b)
            finally:
                h.remove()
            with torch.no_grad():
                ev._first_io = (inputs, [fn(x, w0, b0) for x in inputs])
        inputs, y0 = ev._first_io
        with torch.no_grad():
            ys = [
                [
                    fn(x, d[wname].to(w0.dtype), d[bname].to(w0.dtype) if b0 is not None else None)
                    for x in inputs
                ]
                for d in self.directions
            ]
        if sum(t.numel() * t.element_size() for t in y0) * (self.k + 3) > ev.memory_budget:
            return False
        self._inject = {
            "name": name, "module": mod, "y0": y0, "ys": ys, "stand_in": _Injected(),
            "buf": [torch.empty_like(t) for t in y0], "row": [torch.empty_like(t) for t in y0],
            "active": False,
        }
        return True

    def _set_injected(self, on: bool) -> None:
        """Swap the first layer of the private copy for its precomputed stand-in (or back)."""
        if self._inject is None:
            return
        parent, leaf = _module_and_leaf(self.ev._copy, self._inject["name"])
        setattr(parent, leaf, self._inject["stand_in"] if on else self._inject["module"])
        self._inject["active"] = on

    def _attach(self) -> None:
        """Point the shared private copy at this binding's work vectors (cheap: no copies)."""
        ev, space = self.ev, self.ev.space
        if ev._first is not None and ev._first[0]:  # the real first layer back, to receive θ
            parent, leaf = _module_and_leaf(ev._copy, ev._first[0])
            setattr(parent, leaf, ev._first[1])
        for flat in self._flats:
            for n, view in flat.views.items():
                ev.set_param(n, view)
        for flat in self._buf_flats:
            for n, view in flat.views.items():
                ev.set_buffer(n, view)
        for n in space.names:
            if n not in self.moving:
                ev.set_param(n, self._static[n])
        for n in space.buffers0:
            if n not in self.buffer_names:
                ev.set_buffer(n, space.buffers0[n])
        if self._inject is not None and self._inject.get("active"):
            self._set_injected(True)
        ev._active = self

    # ----------------------------------------------------------------- running points
    def _move(self, c: Sequence[float], new_row: bool = True) -> None:
        for f in self._flats:
            f.move(c, new_row)
        for f in self._buf_flats:
            f.move(c, new_row)

    def _loop(self, coeffs: np.ndarray) -> np.ndarray:
        ev = self.ev
        P = coeffs.shape[0]
        inj = self._inject if self._inject and self._inject.get("active") else None
        # Grid rows first: θ₀ + Σ_{k≥1} cₖdₖ (and the first layer's y₀ + Σ_{k≥1} cₖyₖ) are
        # then shared by the points of a row, each point adding only its c₀ term. Every point
        # is combined in this same order, so the order changes no value.
        order = np.lexsort((coeffs[:, 0], *coeffs[:, :0:-1].T)) if self.k > 1 else np.arange(P)
        last_rest: list[float] | None = None
        steps = speedups.flatten(ev._copy, self._padded, (_Injected,)) if self._fast else None
        if steps is not None:
            def forward(batch: Batch) -> Tensor:
                return speedups.run(steps, *batch.x)
            context = nullcontext()
        else:
            def forward(batch: Batch) -> Tensor:
                return ev._forward(ev._copy, batch)
            context = speedups.padded_forwards(self._padded if self._fast else {})
        # Scores stay 0-d tensors until the end: one stack for the whole call rather than a
        # few small ops per point (and no device sync per point on GPUs).
        scores: list[Tensor] = []
        with torch.no_grad(), context:
            for c in coeffs[order].tolist():
                new_row = c[1:] != last_rest
                self._move(c, new_row)
                for bi, batch in enumerate(self._batches):
                    if inj is not None:
                        if self.k > 1 and new_row:
                            row = inj["row"][bi]
                            torch.add(inj["y0"][bi], inj["ys"][1][bi], alpha=c[1], out=row)
                            for k in range(2, self.k):
                                row.add_(inj["ys"][k][bi], alpha=c[k])
                        base = inj["row"][bi] if self.k > 1 else inj["y0"][bi]
                        buf = inj["buf"][bi]
                        torch.add(base, inj["ys"][0][bi], alpha=c[0], out=buf)
                        inj["stand_in"].set(buf)
                    scores += ev._score(forward(batch), batch)
                last_rest = c[1:]
            per_batch = torch.stack(scores).to(torch.float64)
        weights = torch.tensor([b.n for b in self._batches], dtype=torch.float64)
        per_batch = per_batch.cpu().reshape(P, len(self._batches), len(ev.names))
        out = np.empty((P, len(ev.names)))
        out[order] = ((per_batch * weights[:, None]).sum(dim=1) / ev.n_samples).numpy()
        return out

    def _vmapped(self, coeffs: np.ndarray) -> np.ndarray:
        ev = self.ev
        P = coeffs.shape[0]
        out_rows = []
        names_p = [n for f in self._flats for n in f.names]
        names_b = [n for f in self._buf_flats for n in f.names]
        static_p = {
            n: t for n, t in ev.space.theta0.items() if n not in names_p
        }
        static_b = {n: t for n, t in ev.space.buffers0.items() if n not in names_b}

        def point(flat_p: list[Tensor], flat_b: list[Tensor], batch: Batch) -> Tensor:
            params = dict(static_p)
            for f, v in zip(self._flats, flat_p, strict=True):
                params.update(f.unflatten(v))
            bufs = dict(static_b)
            for f, v in zip(self._buf_flats, flat_b, strict=True):
                bufs.update(f.unflatten(v))
            out = functional_call(self._plain, (params, bufs), batch.x)
            return torch.stack([v.to(torch.float64) for v in ev._score(out, batch)])

        size = self._vmap_chunk
        with torch.no_grad():
            for start in range(0, P, size):
                part = coeffs[start : start + size]
                real = len(part)
                if real < size:  # always `size` points per call: see _VMAP_MAX_CHUNK
                    part = np.concatenate([part, np.repeat(part[-1:], size - real, axis=0)])
                c = torch.as_tensor(part, device=ev.device)
                fp = [torch.addmm(f.theta, c.to(f.theta.dtype), f.matrix) for f in self._flats]
                fb = [
                    torch.addmm(f.theta, c.to(f.theta.dtype), f.matrix) for f in self._buf_flats
                ]
                acc = torch.zeros((c.shape[0], len(ev.names)), dtype=torch.float64,
                                  device=ev.device)
                for batch in ev.batches:
                    fn = vmap(lambda a, b, batch=batch: point(a, b, batch))
                    acc += fn(fp, fb) * batch.n
                out_rows.append((acc / ev.n_samples).cpu().numpy()[:real])
        return np.concatenate(out_rows, axis=0)

    @property
    def _plain(self) -> nn.Module:
        return self.ev._copy

    def evaluate(self, coeffs: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
        """Metrics at θ₀ + Σₖ coeffs[p, k]·dₖ, shape (P, len(names)), float64."""
        c = np.asarray(coeffs, dtype=np.float64).reshape(-1, self.k)
        if c.shape[0] == 0:
            return np.zeros((0, len(self.ev.names)))
        if self.ev.keep_heap and self.ev.device.type == "cpu":
            keep_heap()
        with self.ev.lock:
            if self.ev._active is not self:
                self._attach()
            t0 = time.perf_counter()
            nothing_moves = not (self._flats or self._buf_flats)
            vectorize = self._mode == "vmap" and not nothing_moves
            res = self._vmapped(c) if vectorize else self._loop(c)
            dt = time.perf_counter() - t0
        # The measured speed only feeds time estimates shown to the user (`check_job`); it
        # never decides how or with which company a point is evaluated.
        pps = c.shape[0] / max(dt, 1e-9)
        old = self.ev.points_per_second
        self.ev.points_per_second = pps if old is None else 0.7 * old + 0.3 * pps
        return res

    # ----------------------------------------------------------------- calibration
    def _vmap_chunk_size(self) -> int:
        """Points per vmap call: bounded by the memory budget (never by timings)."""
        ev = self.ev
        act = max(
            t.numel() * t.element_size() for b in ev.batches for t in b.x
        ) * 8  # activations of a few layers per point, a rough upper estimate
        return int(max(1, min(_VMAP_MAX_CHUNK, ev.memory_budget // max(1, act))))

    @property
    def tile_size(self) -> int:
        """Points per tile of a stream: a pure function of the model, data and plan.

        About `_TILE_FLOPS` of arithmetic per tile (FLOPs counted in one forward, at least
        one multiply-add per parameter and sample); in vmap mode a whole number of chunks.
        """
        ev = self.ev
        per_point = max(ev.flops_per_point, 2.0 * ev.n_samples * ev.space.numel)
        size = int(np.clip(_TILE_FLOPS // per_point, 1, _MAX_TILE))
        if self._mode == "vmap":
            size = max(1, round(size / self._vmap_chunk)) * self._vmap_chunk
        return size

    def _verify(self, probe: np.ndarray) -> dict[str, object]:
        """Check the loop's shortcuts (precomputed first layer, speed-ups) against the plain
        loop on a few points; drop whichever disagrees. Returns what was kept, for `chosen`."""

        def agree(ref: np.ndarray, got: np.ndarray) -> bool:
            finite = np.isfinite(ref) & np.isfinite(got)
            return bool(np.all(np.isfinite(ref) == np.isfinite(got))) and np.allclose(
                got[finite], ref[finite], rtol=1e-4, atol=1e-5
            )

        inject = self._inject is not None
        found = {
            "flattened": speedups.flatten(self.ev._copy, {}) is not None,
            "padded_linears": len(self._padded),
        }
        verdict: dict[str, object] = {}
        if not inject and not any(found.values()):
            return verdict
        self._set_injected(False)
        self._fast = False
        ref = self._loop(probe)
        for fast in (True, False):  # a failure with both on: try the first layer alone
            self._fast = fast
            self._set_injected(inject)
            if agree(ref, self._loop(probe)):
                break
        else:
            self._fast = False
            self._set_injected(False)
            self._inject = None
        if inject:
            verdict["first_layer"] = (
                "precomputed" if self._inject is not None
                else "rejected (numerical check failed)"
            )
        if self._fast:
            verdict.update(found)
        return verdict

    def _calibrate(self) -> None:
        """Pick the fastest correct way to run points; record it in `ev.chosen`."""
        ev = self.ev
        key = (tuple(self.moving), tuple(self.buffer_names), self.k)
        if key in ev._plans:  # same tensors move as in an earlier binding: reuse its plan
            self._apply(ev._plans[key])
            return
        rng = np.random.default_rng(0)
        probe = rng.uniform(-0.5, 0.5, size=(2, self.k))
        mode = ev.strategy
        self._loop(probe[:1])  # runs the model once: user errors surface here, clearly
        # The plan follows fixed rules, never timings, so the same inputs give bit-identical
        # results on every run (the paths differ in float rounding).
        if ev.has_conv and ev.device.type == "cpu" and mode != "vmap":
            # oneDNN's NHWC convolutions beat NCHW on CPUs.
            self._layout(channels_last=True)
            ev.chosen["memory_format"] = "channels_last"
        if ev._first is not None and _fan_in(ev._first[1]) >= _INJECT_MIN_FAN_IN:
            self._prepare_injection()
        ev.chosen.update(self._verify(probe))
        # vmap pays where one point does not fill the device (GPUs, or little data); with
        # enough data each point is already one large matmul on a CPU and the loop wins.
        small = ev.n_samples <= _VMAP_SMALL_DATA
        moves = bool(self._flats or self._buf_flats)
        want_vmap = mode == "vmap" or (mode == "auto" and (ev.device.type != "cpu" or small))
        self._mode = "loop"
        if want_vmap and moves:
            self._vmap_chunk = self._vmap_chunk_size()
            was = bool(self._inject and self._inject.get("active"))
            self._set_injected(False)
            try:
                self._vmapped(probe)
                self._mode = "vmap"
            except Exception as exc:  # models whose ops lack batching rules
                if mode == "vmap":
                    raise RuntimeError(f"vmap evaluation failed: {exc}") from exc
                ev.chosen["vmap"] = f"unavailable ({type(exc).__name__})"
                if was:
                    self._set_injected(True)
        run = self._vmapped if self._mode == "vmap" else self._loop
        # vmap runs whole chunks: time one full chunk (the speed feeds estimates only).
        timed = probe if self._mode == "loop" else np.resize(probe, (self._vmap_chunk, self.k))
        t0 = time.perf_counter()
        run(timed)
        ev.points_per_second = len(timed) / max(time.perf_counter() - t0, 1e-9)
        ev.chosen["mode"] = self._mode
        ev.chosen["vmap_chunk"] = self._vmap_chunk
        ev._plans[key] = {
            "channels_last": self.channels_last,
            "inject": bool(self._inject and self._inject.get("active")),
            "fast": self._fast,
            "mode": self._mode,
            "vmap_chunk": self._vmap_chunk,
        }

    def _apply(self, plan: dict) -> None:
        """Set up as an earlier calibration decided (the first layer is still precomputed
        for these directions)."""
        if plan["channels_last"]:
            self._layout(channels_last=True)
        if plan["inject"] and self._prepare_injection():
            self._set_injected(True)
        self._fast = plan["fast"]
        self._mode = plan["mode"]
        self._vmap_chunk = plan["vmap_chunk"]
