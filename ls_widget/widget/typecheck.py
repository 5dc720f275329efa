"""Runtime checks of JSON values against type declarations (the protocol's TypedDicts).

`problems(kind, value)` lists what is wrong with `value` as a `kind`: a TypedDict (required
keys, declared keys, each value), a Literal, list[...], a union, or int / float / str / bool /
bytes, with JSON's numbers (an int is a float too, a bool is neither). It reads the
declarations with `typing.get_type_hints`, so the TypedDicts are the only schema.
"""

from __future__ import annotations

import types
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints


def problems(kind: Any, value: Any, where: str = "", *, extra: bool = False) -> list[str]:
    """What is wrong with `value` as a `kind` ([] when it conforms).

    `kind` is a TypedDict, or what its fields use: Literal, list[...], a union, int, float,
    str, bool, bytes. Keys a TypedDict does not declare are problems unless `extra`.
    """
    where = where or getattr(kind, "__name__", "value")
    origin = get_origin(kind)
    if isinstance(kind, type) and hasattr(kind, "__required_keys__"):  # a TypedDict
        return _dict_problems(kind, value, where, extra)
    if origin is Literal:
        ok = any(type(value) is type(a) and value == a for a in get_args(kind))
        return [] if ok else [f"{where}: expected one of {list(get_args(kind))}, got {value!r}"]
    if origin is list:
        if not isinstance(value, list):
            return [f"{where}: expected a list, got {type(value).__name__}"]
        (item,) = get_args(kind)
        return [p for k, v in enumerate(value) for p in problems(item, v, f"{where}[{k}]")]
    if origin in (Union, types.UnionType):
        found = [problems(k, value, where, extra=extra) for k in get_args(kind)]
        return [] if any(not f for f in found) else min(found, key=len)
    if kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, kind)
    return [] if ok else [f"{where}: expected {kind.__name__}, got {value!r}"]


def _dict_problems(kind: type, value: Any, where: str, extra: bool) -> list[str]:
    if not isinstance(value, dict):
        return [f"{where}: expected an object, got {type(value).__name__}"]
    hints = get_type_hints(kind)
    required: frozenset[str] = getattr(kind, "__required_keys__", frozenset())
    out = [f"{where}.{key}: missing" for key in sorted(required - value.keys())]
    for key, v in value.items():
        if key in hints:
            out += problems(hints[key], v, f"{where}.{key}")
        elif not extra:
            out.append(f"{where}.{key}: not declared in {kind.__name__}")
    return out
