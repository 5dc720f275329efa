"""Which parameters the explorer moves: the `params=` choice resolved on the model, and the
axis labels that say so.

`ParamScope` is a choice as `lw.directions.random` takes it (``"trainable"``, ``"all"``, glob
patterns or a predicate), resolved once by the engine's `select_names` into the names of the
tensors that move. The explorer draws its random directions over exactly those names and
takes the Hessian over them, so every direction it draws and every eigenvector it computes
moves the same tensors, even if ``requires_grad`` flags change later (choose again to pick
that up). When not every tensor moves, the axis label ends with the scope:
"random #0, filter-norm · trainable (1.2 k of 3.4 k params)"; `ParamScope.details` is the long
form, for a tooltip.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

from ..directions import Direction, mix, random
from ..engine.params import (
    ParamChoice,
    choice_text,
    describe_choice,
    floating_params,
    select_names,
)

_SEP = " · "  # between an axis label and its scope
_MAX_CHOICE = 28  # characters of the choice shown in an axis label


def count(n: int) -> str:
    """A parameter count for labels: 890, 3.4 k, 12 k, 11 M, 1.2 B."""
    text = str(n)
    for unit, size in (("k", 1e3), ("M", 1e6), ("B", 1e9)):
        if float(text.split()[0]) < 1000:
            break
        v = n / size
        text = f"{v:.1f} {unit}" if v < 9.95 else f"{v:.0f} {unit}"
    return text


def short_text(choice: ParamChoice) -> str:
    """A choice in a few words for labels and menus: a predicate by its name, not its
    qualified name, and at most a few dozen characters."""
    if callable(choice):
        text = f"predicate {getattr(choice, '__name__', type(choice).__name__)}"
    else:
        text = choice_text(choice)
    return text if len(text) <= _MAX_CHOICE else text[: _MAX_CHOICE - 1] + "…"


def normalized(choice: ParamChoice) -> ParamChoice:
    """`choice` with an iterable of patterns made a list (a generator is read once)."""
    if isinstance(choice, str) or callable(choice):
        return choice
    if isinstance(choice, Iterable) and not isinstance(choice, bytes | Mapping):
        return list(choice)
    return choice  # select_names says what is wrong with it


@dataclass(frozen=True, eq=False)
class ParamScope:
    """A `params=` choice resolved on a model.

    Attributes:
        choice: the choice as given (an iterable of patterns as a list).
        names: the parameters that move, in ``named_parameters()`` order.
        sizes: every parameter's name and number of values, in that order.
    """

    choice: ParamChoice
    names: tuple[str, ...]
    sizes: tuple[tuple[str, int], ...]

    @property
    def restricted(self) -> bool:
        """Whether some parameters stay still."""
        return len(self.names) < len(self.sizes)

    @property
    def moved(self) -> int:
        """Number of parameter values that move."""
        keep = set(self.names)
        return sum(n for name, n in self.sizes if name in keep)

    @property
    def total(self) -> int:
        """Number of parameter values of the model."""
        return sum(n for _, n in self.sizes)

    @property
    def text(self) -> str:
        """The choice in a few words: "trainable", "4.*, fc.*", "predicate is_head"
        (shortened; `details` has it all)."""
        return short_text(self.choice)

    @property
    def short(self) -> str:
        """The scope for axis labels: "trainable (1.2 k of 3.4 k params)"."""
        return f"{self.text} ({count(self.moved)} of {count(self.total)} params)"

    @property
    def summary(self) -> str:
        """What moves: "2 of 6 tensors (1,290 of 2,410 values)" or "all 6 tensors (…)"."""
        k, n = len(self.names), len(self.sizes)
        tensors = f"{k} of {n} tensors" if self.restricted else f"all {n} tensors"
        return f"{tensors} ({self.moved:,} of {self.total:,} values)"

    @property
    def details(self) -> str:
        """The long form, for a tooltip: the choice, the counts and the names that move."""
        shown = ", ".join(self.names[:12])
        more = f", … ({len(self.names) - 12} more)" if len(self.names) > 12 else ""
        return f"params={choice_text(self.choice)}: moves {self.summary}: {shown}{more}"

    def label(self, base: str) -> str:
        """`base` as an axis label of a direction over this scope."""
        return f"{base}{_SEP}{self.short}" if self.restricted else base

    def provenance(self) -> dict[str, Any]:
        """What a direction over this scope records: the choice (as JSON), and when not
        everything moves, the names that do and the scope text of its label."""
        out: dict[str, Any] = {"params": describe_choice(self.choice)}
        if self.restricted:
            out.update(selected=list(self.names), scope=self.short)
        return out


def resolve(model: nn.Module, choice: ParamChoice) -> ParamScope:
    """The parameters of `model` that `choice` moves (the engine's errors for a bad one: a
    pattern that matches nothing names it and lists a few parameters)."""
    choice = normalized(choice)
    sizes = tuple((n, p.numel()) for n, p in floating_params(model))
    names = select_names(list(model.named_parameters()), choice)
    return ParamScope(choice, tuple(names), sizes)


def draw(model: nn.Module, seed: int, scope: ParamScope) -> Direction:
    """The explorer's random direction of `seed` (filter-normalized, biases and BN still) over
    exactly `scope.names`, labelled "random #<seed>, filter-norm[ · scope]"."""
    names = frozenset(scope.names)

    def moves(name: str, _: Any) -> bool:  # exactly the scope, whatever requires_grad is now
        return name in names

    d = random(model, seed=seed, params=moves if scope.restricted else "all")
    prov = {k: v for k, v in d.provenance.items() if k not in ("params", "selected")}
    prov.update(scope.provenance())
    if scope.restricted:  # the engine's label names our predicate: say the user's choice
        prov["label"] = scope.label(f"random #{seed}, filter-norm")
    return Direction(dict(d), buffers=d.buffers, **prov)


def base_label(d: Direction) -> str:
    """The label of `d` without the scope that `ParamScope.label` appended."""
    scope = d.provenance.get("scope")
    return d.label.removesuffix(f"{_SEP}{scope}") if scope else d.label


def mixed(d1: Direction, d2: Direction, t: float) -> Direction:
    """`lw.directions.mix(d1, d2, t)`; when both move the same scope, labelled once with it:
    "mix(random #0, filter-norm → random #2, filter-norm, t=0.50) · trainable (…)"."""
    d = mix(d1, d2, t)
    p1, p2 = d1.provenance, d2.provenance
    scope = p1.get("scope")
    if not scope or scope != p2.get("scope") or p1.get("selected") != p2.get("selected"):
        return d
    prov = d.provenance
    prov.update(params=p1["params"], selected=p1["selected"], scope=scope,
                label=f"mix({base_label(d1)} → {base_label(d2)}, t={float(t):.2f}){_SEP}{scope}")
    return Direction(dict(d), buffers=d.buffers, **prov)
