"""The shapes each entry point makes, and the check that names the right one for a kind."""

from __future__ import annotations

import difflib

from .objectives import MINED

__all__ = ["CONSTRUCTED", "MINED", "PLANE_KINDS", "check_kind"]

CONSTRUCTED = ("v-basin", "v-side", "w-basin")
"""The shapes of a curve with a construction (`construct`); `MINED` lists those mined."""

PLANE_KINDS = ("saddle", "wine-bottle")
"""The shapes of a plane that `mine_plane` makes."""

_WHERE = {
    **{k: f"{k!r} is mined: land.mine({k!r})" for k in MINED},
    **{k: f"{k!r} is constructed: land.construct({k!r})" for k in CONSTRUCTED},
    **{k: f"{k!r} is a plane: land.mine_plane({k!r})" for k in PLANE_KINDS},
}


def check_kind(kind: object, allowed: tuple[str, ...], what: str) -> str:
    """`kind` if it is one of `allowed`, else a ValueError naming the choices, and where
    another kind is made (or the closest allowed one)."""
    if isinstance(kind, str) and kind in allowed:
        return kind
    hint = ""
    if isinstance(kind, str):
        if kind in _WHERE:
            hint = f" ({_WHERE[kind]})"
        else:
            close = difflib.get_close_matches(kind.lower(), allowed, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ValueError(f"{what} kind={kind!r} is not supported{hint}; use one of {list(allowed)}")
