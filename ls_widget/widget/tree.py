"""Closing a composite widget for good: every widget it holds, not only its box.

ipywidgets keeps an open widget registered (and through its observers, whatever it observes:
an explorer and its landscape) until it is closed, so a composite view closes every widget
reachable from it.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as W


def widget_tree(root: W.Widget) -> list[W.Widget]:
    """`root` and every widget it holds, in traits or attributes (children, layouts, styles,
    bqplot marks and scales, a panel's plot before it is shown), also through containers and
    this package's helpers (the controls, the Hessian job), whether or not shown yet."""
    found: dict[int, W.Widget] = {}
    seen: set[int] = set()
    todo: list[Any] = [root]
    while todo:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, W.Widget):
            found[id(obj)] = obj
            todo.extend(vars(obj).values())  # holds `_trait_values`
        elif isinstance(obj, dict):
            todo.extend(obj.values())
        elif isinstance(obj, (list, tuple)):
            todo.extend(obj)
        elif type(obj).__module__.startswith(__package__ or "") and hasattr(obj, "__dict__"):
            todo.extend(vars(obj).values())
    return list(found.values())


def close_tree(root: W.Widget) -> None:
    """Close every widget `root` holds (see `widget_tree`), leaving `root` itself to its
    caller (whose own close() comes last)."""
    for w in widget_tree(root):
        if w is not root:
            w.close()
