"""ParamSpace: which tensors of a model move, a snapshot of θ₀, and the norms Li et al. use.

Everything here reads the user's model and never writes to it: θ₀ and the buffers are cloned
once, so later evaluation never depends on (or touches) the live model.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class TensorSpec:
    """Name, shape, dtype and device of one parameter or buffer."""

    name: str
    shape: torch.Size
    dtype: torch.dtype
    device: torch.device

    @property
    def numel(self) -> int:
        """Number of values."""
        return int(torch.Size(self.shape).numel())


def floating_params(model: nn.Module, what: str = "the model") -> list[tuple[str, Tensor]]:
    """`model.named_parameters()`, detached, after checking that there are some and that
    they are floating point and finite (errors name the offending tensor and the fix)."""
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"expected a torch.nn.Module, got {type(model).__name__}; pass the model itself"
        )
    params = [(n, p.detach()) for n, p in model.named_parameters()]
    if not params:
        raise ValueError(f"{what} has no parameters; there is no landscape to explore")
    bad = [n for n, p in params if not p.is_floating_point()]
    if bad:
        raise TypeError(
            f"parameters {bad} of {what} are not floating point; a loss landscape needs "
            "floating parameters (convert the model with model.float() or model.double())"
        )
    check_finite(
        dict(params), f"{what}'s parameter",
        "a loss landscape is drawn around finite parameters: load a checkpoint from before "
        "training diverged (or lower the learning rate and retrain)",
    )
    return params


class ParamSpace:
    """The parameters (and floating buffers) of a model, in `named_parameters()` order.

    Holds detached clones of θ₀ and of the buffers, taken when it is built: a snapshot.
    """

    def __init__(self, model: nn.Module) -> None:
        params = floating_params(model)
        with torch.no_grad():
            self.theta0: dict[str, Tensor] = {n: p.detach().clone() for n, p in params}
            self.buffers0: dict[str, Tensor] = {
                n: b.detach().clone() for n, b in model.named_buffers()
            }
        self.specs: tuple[TensorSpec, ...] = tuple(
            TensorSpec(n, p.shape, p.dtype, p.device) for n, p in params
        )
        self.buffer_specs: tuple[TensorSpec, ...] = tuple(
            TensorSpec(n, b.shape, b.dtype, b.device) for n, b in self.buffers0.items()
        )
        self.names: tuple[str, ...] = tuple(s.name for s in self.specs)
        devices = {s.device for s in self.specs}
        if len(devices) > 1:
            raise ValueError(
                f"the model's parameters live on several devices {sorted(map(str, devices))}; "
                "move the model to one device first (model.to(device))"
            )
        self.device: torch.device = self.specs[0].device
        self.dtype: torch.dtype = self.specs[0].dtype
        self.numel: int = sum(s.numel for s in self.specs)

    def __iter__(self) -> Iterator[TensorSpec]:
        return iter(self.specs)

    def spec(self, name: str) -> TensorSpec:
        """The spec of parameter `name` (KeyError if the model has none of that name)."""
        for s in self.specs:
            if s.name == name:
                return s
        raise KeyError(name)

    @property
    def floating_buffer_names(self) -> tuple[str, ...]:
        """Buffers that can move with a direction (BN running statistics, not counters)."""
        return tuple(n for n, b in self.buffers0.items() if b.is_floating_point())

    def check_compatible(self, tensors: Mapping[str, Tensor], what: str = "direction") -> None:
        """Raise a clear error unless `tensors` is keyed and shaped exactly like θ₀ with finite
        values, and (for a Direction) its buffer deltas match the model's floating buffers."""
        names = set(tensors)
        expected = set(self.names)
        if names != expected:
            missing = sorted(expected - names)[:5]
            extra = sorted(names - expected)[:5]
            raise ValueError(
                f"the {what} does not match this model's parameters (missing {missing}, "
                f"unexpected {extra}); build it from the same architecture, e.g. "
                "lw.directions.random(model)"
            )
        for s in self.specs:
            t = tensors[s.name]
            if tuple(t.shape) != tuple(s.shape):
                raise ValueError(
                    f"the {what} has shape {tuple(t.shape)} for {s.name!r} where the model has "
                    f"{tuple(s.shape)}; build it from the same architecture"
                )
        label = getattr(tensors, "label", None)
        named = f"the {what} {label!r}" if label else f"the {what}"
        check_finite(
            {n: tensors[n] for n in self.names}, f"{named}: its tensor",
            "every point along it would be NaN: rebuild it (e.g. lw.directions.random(model) "
            "on a model with finite parameters)",
        )
        buffers: Mapping[str, Tensor] = getattr(tensors, "buffers", {})
        if buffers:
            floating = {n: self.buffers0[n] for n in self.floating_buffer_names}
            unknown = sorted(set(buffers) - set(floating))[:5]
            if unknown:
                raise ValueError(
                    f"{named} moves buffers {unknown} that are not floating buffers of this "
                    "model; build it from the same architecture (lw.directions.towards(model, "
                    "other, buffers=True))"
                )
            for n, t in buffers.items():
                if tuple(t.shape) != tuple(floating[n].shape):
                    raise ValueError(
                        f"{named} has shape {tuple(t.shape)} for buffer {n!r} where the model "
                        f"has {tuple(floating[n].shape)}; build it from the same architecture"
                    )
            check_finite(dict(buffers), f"{named}: its buffer delta",
                         "rebuild it from models with finite buffers")


def check_finite(tensors: Mapping[str, Tensor], what: str, fix: str) -> None:
    """Raise a ValueError naming the first tensor with a NaN or ±inf (one device sync)."""
    if not tensors:
        return
    names = list(tensors)
    device = next(iter(tensors.values())).device
    ok = torch.stack([
        torch.isfinite(t).all().to(device) if t.is_floating_point() or t.is_complex()
        else torch.ones((), dtype=torch.bool, device=device)
        for t in tensors.values()
    ]).cpu()
    if bool(ok.all()):
        return
    name = names[int((~ok).nonzero()[0])]
    t = tensors[name]
    nan, inf = int(torch.isnan(t).sum()), int(torch.isinf(t).sum())
    raise ValueError(
        f"{what} {name!r} has non-finite values ({nan} NaN, {inf} inf, of {t.numel()}); {fix}"
    )


def filter_norms(t: Tensor) -> Tensor:
    """‖tᵢ‖ for every slice along dim 0, shaped to broadcast against `t`."""
    flat = t.reshape(t.shape[0], -1)
    return flat.norm(dim=1).reshape((t.shape[0],) + (1,) * (t.dim() - 1))


def flat_dot(a: Mapping[str, Tensor], b: Mapping[str, Tensor]) -> float:
    """Euclidean inner product of two same-keyed tensor maps, accumulated in float64."""
    return float(sum((a[k].double() * b[k].double()).sum() for k in a))


ParamChoice = str | Sequence[str] | Callable[[str, Tensor], bool]
"""Which parameters a direction moves (and H is taken over): ``"trainable"`` (those with
``requires_grad=True``), ``"all"``, a list of `fnmatch` glob patterns over the names of
`named_parameters()` (e.g. ``["layer4.*", "fc.*"]``), or a predicate ``fn(name, parameter)``."""

PARAM_CHOICES = ("trainable", "all")


def describe_choice(params: ParamChoice) -> str | list[str]:
    """The selection as provenance can store it (JSON): the string, the patterns, or
    ``"predicate <name>"``."""
    if isinstance(params, str):
        return params
    if callable(params):
        name = getattr(params, "__qualname__", None) or type(params).__name__
        return f"predicate {name}"
    return list(params)


def choice_text(params: ParamChoice) -> str:
    """The selection in a few words, for labels."""
    desc = describe_choice(params)
    return ", ".join(desc) if isinstance(desc, list) else desc


def _examples(names: Sequence[str]) -> str:
    shown = list(names[:4])
    more = f", ... ({len(names)} in all)" if len(names) > len(shown) else ""
    return ", ".join(repr(n) for n in shown) + more


def select_names(
    named: Sequence[tuple[str, Tensor]],
    params: ParamChoice = "trainable",
    *,
    trainable: Collection[str] | None = None,
) -> list[str]:
    """The names of the parameters that `params` selects, in `named_parameters()` order.

    Args:
        named: ``model.named_parameters()`` (the live parameters: predicates and
            ``"trainable"`` read ``requires_grad``).
        params: see `ParamChoice`.
        trainable: the names requiring grad, when `named` holds detached copies (default:
            read ``requires_grad`` from `named`).

    ``"trainable"`` on a model where no parameter requires grad (a model frozen for
    evaluation) is every parameter: nothing is singled out.

    Raises:
        ValueError: an unknown string, a pattern that matches no parameter, or a selection
            that leaves no parameter; the message names the patterns and a few parameters.
        TypeError: a selection of another type.
    """
    all_names = [n for n, _ in named]
    if isinstance(params, str):
        if params == "all":
            return all_names
        if params == "trainable":
            keep = set(trainable) if trainable is not None else {
                n for n, p in named if p.requires_grad}
            return [n for n in all_names if n in keep] or all_names
        raise ValueError(
            f"params={params!r} is not supported; use 'trainable', 'all', a list of glob "
            f"patterns (e.g. params=[{params + '*'!r}]) or a predicate fn(name, parameter). "
            f"The model's parameters: {_examples(all_names)}"
        )
    if callable(params):
        names = [n for n, p in named if bool(params(n, p))]
        if not names:
            raise ValueError(
                f"params={choice_text(params)} selects no parameter; it is called as "
                f"fn(name, parameter) on {_examples(all_names)}"
            )
        return names
    if isinstance(params, Iterable) and not isinstance(params, bytes | Mapping):
        patterns = list(params)
        bad = [p for p in patterns if not isinstance(p, str)]
        if bad:
            raise TypeError(
                f"params patterns must be strings (glob patterns over parameter names), got "
                f"{bad[:3]!r}"
            )
        if not patterns:
            raise ValueError(
                "params=[] selects no parameter; pass glob patterns such as ['fc.*'], "
                f"'trainable' or 'all'. The model's parameters: {_examples(all_names)}"
            )
        unmatched = [p for p in patterns
                     if not any(fnmatch.fnmatchcase(n, p) for n in all_names)]
        if unmatched:
            raise ValueError(
                f"unknown parameter names or patterns {unmatched[:5]} (they match no "
                f"parameter; globs use fnmatch, e.g. 'fc.*'). The model's parameters: "
                f"{_examples(all_names)}"
            )
        return [n for n in all_names if any(fnmatch.fnmatchcase(n, p) for p in patterns)]
    raise TypeError(
        f"params must be 'trainable', 'all', a list of glob patterns or a predicate "
        f"fn(name, parameter), got {type(params).__name__}"
    )
