"""How a user's batch splits into the model's inputs and the target: `Layout`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .batch import TARGET_KEYS, LayoutError


def _keys(item: Mapping[Any, Any]) -> list[str]:
    return [str(k) for k in item]


@dataclass(frozen=True)
class Layout:
    """How one batch splits into the model's inputs and the target.

    Attributes:
        inputs: ``fn(batch) -> inputs`` (a tuple: positional, a dict: keywords, a tensor: one
            positional), or None for the default split.
        target: the target's key in dict batches, or ``fn(batch) -> target``, or None (dict
            batches: the first of `TARGET_KEYS` present; tuples: ``(inputs, target)``).
        pass_target: dict batches also give the target's key to the model (models that compute
            their own loss, as Hugging Face models do when given ``labels``), where its
            forward takes that keyword.
        takes: the keywords the model's forward takes (`keywords_of`; None: any).
    """

    inputs: Callable[[Any], Any] | None = None
    target: str | Callable[[Any], Any] | None = None
    pass_target: bool = False
    takes: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if self.inputs is not None and not callable(self.inputs):
            raise TypeError(
                f"inputs must be a callable fn(batch) -> inputs (a tuple: positional arguments, "
                f"a dict: keyword arguments, a tensor: one argument); got "
                f"{type(self.inputs).__name__}"
            )
        if self.target is not None and not (isinstance(self.target, str) or callable(self.target)):
            raise TypeError(
                f"target must be the target's key in dict batches (e.g. target='labels') or a "
                f"callable fn(batch) -> target; got {type(self.target).__name__}"
            )

    def _key(self, item: Mapping[Any, Any], where: str) -> Any:
        """The target's key in the dict batch `item` (None: `target` is a callable)."""
        if isinstance(self.target, str):
            if self.target not in item:
                raise LayoutError(
                    f"target={self.target!r} is not a key of the dict batches of {where}, which "
                    f"has keys {_keys(item)}; pass target= one of them"
                )
            return self.target
        found = next((k for k in TARGET_KEYS if k in item), None)
        if found is None and self.target is None:
            keys = _keys(item)
            raise LayoutError(
                f"{where} yields dicts with keys {keys}, none of which is a known target key "
                f"({', '.join(map(repr, TARGET_KEYS))}); pass target=\"...\" naming the target's "
                f"key (e.g. target={keys[-1] if keys else 'labels'!r}), or a callable "
                "target=fn(batch) -> target"
            )
        return found

    def split(self, item: Any, where: str) -> tuple[Any, Any]:
        """(inputs, target) of one batch."""
        if isinstance(item, Mapping):
            key = self._key(item, where)
            y = self.target(item) if callable(self.target) else item[key]
            if self.inputs is not None:
                return _call_user(self.inputs, item, "inputs"), y
            keep = self.pass_target and not callable(self.target) and (
                self.takes is None or key in self.takes
            )
            return {k: v for k, v in item.items() if k != key or keep}, y
        if isinstance(self.target, str):
            raise TypeError(
                f"target={self.target!r} names a key, but {where} yields "
                f"{type(item).__name__}s, not dicts; pass target as a callable "
                "fn(batch) -> target"
            )
        if self.inputs is None and self.target is None:
            return split_pair(item, where)
        if self.inputs is not None and self.target is not None:
            return (
                _call_user(self.inputs, item, "inputs"), _call_user(self.target, item, "target")
            )
        x, y = split_pair(item, where)
        if self.inputs is not None:
            x = _call_user(self.inputs, item, "inputs")
        if callable(self.target):
            y = _call_user(self.target, item, "target")
        return x, y


def _call_user(fn: Callable[[Any], Any], item: Any, what: str) -> Any:
    try:
        value = fn(item)
    except Exception as exc:
        if type(exc) in (TypeError, ValueError, KeyError, IndexError):
            raise type(exc)(
                f"the {what}= function failed on a batch ({type(item).__name__}): {exc}"
            ) from exc
        raise
    if value is None:
        raise TypeError(
            f"the {what}= function returned None for a batch ({type(item).__name__}); it must "
            f"return the {what} (a missing `return`?)"
        )
    return value


def split_pair(item: Any, where: str) -> tuple[Any, Any]:
    """(inputs, target) of an `(x, y)` item; a clear error for anything else."""
    try:
        x, y = item
    except (TypeError, ValueError):
        raise TypeError(
            f"{where} must yield (x, y) pairs or dicts; got {type(item).__name__}. Pass a tuple "
            "(X, y), a Dataset or DataLoader of (x, y) or of dicts, or an iterable of (x, y) "
            "batches; for other layouts pass inputs=fn(batch) and target=fn(batch)"
        ) from None
    return x, y
