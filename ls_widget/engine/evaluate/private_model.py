"""The private copy of the user's model: the module tree, on tensors that we own.

The user's model is never written to. `PrivateModel` deep-copies its module tree with every
parameter and buffer replaced by an empty placeholder, then points the copy's tensors at θ₀
(or, while a binding runs, at views of its flat work vectors). Tied weights stay tied: every
alias of a tensor is pointed at the same value.

Before anything else the copy runs once at θ₀ on tensors of its own, which reports a failing
forward with what it was given, and catches forwards that write: to their inputs (they get
fresh copies from then on) or to their parameters and buffers (an error). That run also
counts what plans need (first_layer.census), on the first few samples of the first batch
(`PROBE_SAMPLES`), so that building the copy costs a small share of one point.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from ..batch import Batch, Batches, forward
from ..params import ParamSpace
from . import microbatch, speedups
from .first_layer import Census, census
from .scoring import check_output, forward_error

PROBE_SAMPLES = 16  # samples of the first batch that the probe (a counted forward) sees


class PrivateModel:
    """A deep copy of the user's model that shares no tensor with it, in eval mode.

    Args:
        model: the user's model (read, never written).
        space: its ParamSpace (θ₀ and buffer snapshots).
        batches: the evaluation data; the copy runs once on the first batch.

    Attributes:
        module: the copy.
        lock: held while the copy is in use (bindings take turns on it).
        active: the binding the copy's tensors point at now (None: nobody's).
        first: its first layer, where that can be precomputed (first_layer.py).
        flops_per_point: arithmetic of one point over all the data, counted in one forward.
        activation_bytes: the peak bytes of live activations per sample, counted there too.
        folds: (layer, BatchNorm) pairs whose BatchNorm the loop may fold (fold_bn.py).
        narrow: (module, weight name, bias name) of the narrow Linears the loop computes
            padded (speedups.py): CPU float32 only, where MKL's small-N sgemm is slow.
        has_conv: the model has a Conv2d (channels_last pays on CPUs).
    """

    def __init__(self, model: nn.Module, space: ParamSpace, batches: Batches) -> None:
        self.space = space
        self.has_conv = any(isinstance(m, (nn.Conv2d,)) for m in model.modules())
        self.module = self._deep_copy(model)
        # Canonical name (as in named_parameters()) -> every alias: tied weights stay tied.
        self.alias_p = _aliases(self.module.named_parameters(remove_duplicate=False))
        self.alias_b = _aliases(self.module.named_buffers(remove_duplicate=False))
        where = "the first batch" if len(batches) > 1 else "the data"
        n_samples = sum(b.n for b in batches)
        probe = _probe_batch(batches[0])
        try:
            counted = self._probe_forward(batches[0], probe, where, n_samples)
        except Exception:
            if probe is batches[0]:
                raise
            probe = batches[0]  # a model that needs its whole batch: probe on all of it
            counted = self._probe_forward(probe, probe, where, n_samples)
        for name in self.alias_p:
            self.set_param(name, space.theta0[name])
        for name in self.alias_b:
            self.set_buffer(name, space.buffers0[name])
        self.first = counted.first
        self.flops_per_point = counted.flops_per_point
        self.activation_bytes = counted.activation_bytes
        self.folds = counted.folds
        self.narrow: list[tuple[nn.Linear, str, str | None]] = []
        if space.device.type == "cpu":
            for qual, mod in speedups.narrow_linears(self.module):
                wn = f"{qual}.weight"
                bn = f"{qual}.bias" if mod.bias is not None else None
                canonical = wn in self.alias_p and (bn is None or bn in self.alias_p)
                if canonical and space.theta0[wn].dtype == torch.float32:
                    self.narrow.append((mod, wn, bn))
        self.lock = threading.RLock()
        self.active: object | None = None

    def set_param(self, name: str, value: Tensor) -> None:
        """Point parameter `name` (and its tied aliases) of the copy at `value`."""
        param = nn.Parameter(value, requires_grad=False)
        for alias in self.alias_p.get(name, [name]):
            mod, leaf = _module_and_leaf(self.module, alias)
            mod._parameters[leaf] = param

    def set_buffer(self, name: str, value: Tensor) -> None:
        """Point buffer `name` (and its aliases) of the copy at `value`."""
        for alias in self.alias_b.get(name, [name]):
            mod, leaf = _module_and_leaf(self.module, alias)
            mod._buffers[leaf] = value

    def swap_first_layer(self, stand_in: nn.Module | None = None) -> None:
        """Put `stand_in` in the first layer's place, or (None) the real layer back."""
        if self.first is not None and self.first.name:
            parent, leaf = _module_and_leaf(self.module, self.first.name)
            setattr(parent, leaf, self.first.module if stand_in is None else stand_in)

    @contextmanager
    def plain(self) -> Iterator[nn.Module]:
        """The copy with its real first layer, for `functional_call` (holds the lock).

        Whatever calls it passes every parameter and buffer explicitly; afterwards the next
        evaluation re-attaches its binding.
        """
        with self.lock:
            self.swap_first_layer(None)
            self.active = None
            yield self.module

    # ----------------------------------------------------------------- construction
    @staticmethod
    def _deep_copy(model: nn.Module) -> nn.Module:
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
        return clone

    def _probe_forward(self, first: Batch, probe: Batch, where: str, n_samples: int) -> Census:
        """Run the copy once at θ₀ on `probe` (the first samples of the `first` batch), all on
        tensors of its own, and count what `census` counts (for `n_samples` samples).

        A forward that fails, or returns nothing usable, is reported now with what it was
        given. Then writes: a forward that writes to its inputs gets fresh copies of them on
        every call (so the user's data, which our batches may share, is never written, and
        every point sees the same data); one that writes to its parameters or buffers is an
        error, since each point would move the model for the next (and drift θ₀).
        """
        space, clone = self.space, self.module
        for name in self.alias_p:
            self.set_param(name, space.theta0[name].clone())
        for name in self.alias_b:
            self.set_buffer(name, space.buffers0[name].clone())
        mine = _copied(probe)
        try:
            counted, out = census(clone, mine, n_samples)
        except Exception:  # the model's fault, or the counting's: run it as it is to tell
            counted = Census(None, 0.0, 0.0, [])
            mine = _copied(probe)
            try:
                with torch.no_grad():
                    out = forward(clone, mine)
            except Exception as exc:
                forward_error(exc, first, where)
        check_output(out, where)
        for kind, aliases, slots, snapshot in (
            ("parameter", self.alias_p, "_parameters", space.theta0),
            ("buffer", self.alias_b, "_buffers", space.buffers0),
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
        if not _same_tree((mine.x, mine.kw), (probe.x, probe.kw)):
            clone.register_forward_pre_hook(_fresh_inputs, with_kwargs=True)
        return counted


def _copied(batch: Batch) -> Batch:
    """`batch` with copies of its inputs (its targets shared)."""
    return Batch(tuple(t.clone() for t in batch.x), batch.y, batch.n,
                 {k: _clone(v) for k, v in batch.kw.items()})


def _probe_batch(first: Batch) -> Batch:
    """The first `PROBE_SAMPLES` samples of the first batch (all of it if it cannot be
    split along its samples)."""
    if first.n <= PROBE_SAMPLES or not microbatch.splittable(first):
        return first
    return microbatch.head(first, 0, PROBE_SAMPLES)


def _aliases(named: Iterable[tuple[str, Tensor]]) -> dict[str, list[str]]:
    """Canonical name (the first seen) → every name of the same tensor."""
    first: dict[int, str] = {}
    out: dict[str, list[str]] = {}
    for n, t in named:
        canon = first.setdefault(id(t), n)
        out.setdefault(canon, []).append(n)
    return out


def _module_and_leaf(root: nn.Module, name: str) -> tuple[nn.Module, str]:
    *path, leaf = name.split(".")
    mod = root
    for p in path:
        mod = getattr(mod, p)
    return mod, leaf


def _same(a: Tensor, b: Tensor) -> bool:
    """Bit for bit equal (NaNs included: a buffer may hold a mask of -inf or NaN)."""
    if a.shape != b.shape or a.dtype != b.dtype or a.device != b.device:
        return False
    if torch.equal(a, b):
        return True
    return a.numel() > 0 and torch.equal(
        a.reshape(-1).contiguous().view(torch.uint8), b.reshape(-1).contiguous().view(torch.uint8)
    )


def _clone(obj: object) -> object:
    """A copy of every tensor in a nested structure (tuples, lists, dicts)."""
    if isinstance(obj, Tensor):
        return obj.clone()
    if isinstance(obj, (tuple, list)):
        return type(obj)(_clone(o) for o in obj)
    if isinstance(obj, Mapping):
        return {k: _clone(v) for k, v in obj.items()}
    return obj


def _same_tree(a: object, b: object) -> bool:
    """Nested structures with bit-identical tensors."""
    if isinstance(a, Tensor):
        return isinstance(b, Tensor) and _same(a, b)
    if isinstance(a, (tuple, list)):
        return isinstance(b, (tuple, list)) and len(a) == len(b) and all(
            _same_tree(x, y) for x, y in zip(a, b, strict=True)
        )
    if isinstance(a, Mapping):
        return isinstance(b, Mapping) and list(a) == list(b) and all(
            _same_tree(a[k], b[k]) for k in a
        )
    return True


def _fresh_inputs(
    module: nn.Module, args: tuple[object, ...], kwargs: dict[str, object]
) -> tuple[object, dict[str, object]]:
    """Forward pre-hook for models that write to their inputs: they get copies, so the data
    (the user's tensors, and ours) is the same for every point."""
    return _clone(args), {k: _clone(v) for k, v in kwargs.items()}
