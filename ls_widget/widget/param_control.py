"""The explorer's "parameters" control: which tensors its directions move and its Hessian is
taken over.

"parameters: trainable | all | custom…" (and the predicate given to `explore`, if one was),
with a text field of comma-separated glob patterns for custom, applied on Enter. Choosing
another scope draws the bank's random directions again (same seeds), restarts the view as any
other control does (stale tiles dropped), and computes the Hessian eigenpairs again if some
were asked for. A choice the engine refuses (a glob that matches no parameter, say) shows its
message in the control's status line, in red, and the previous scope stays in effect.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import ipywidgets as W

from ..engine.params import ParamChoice
from .bank import DirectionBank
from .controls import AxisControls
from .faults import describe
from .scope import ParamScope, resolve, short_text

_STYLE = {"description_width": "76px"}
_CUSTOM = "custom"
_PREDICATE = "predicate"
_ERROR_COLOR = "#c0392b"


def parse_globs(text: str) -> list[str]:
    """Comma-separated glob patterns → a list (blanks dropped)."""
    return [p.strip() for p in text.split(",") if p.strip()]


class ParamsControl:
    """Choose the parameters the explorer moves; see the module docstring.

    Attributes:
        select: "parameters": trainable, all, custom… (and "predicate <name>" when `explore`
            was given a predicate).
        globs: comma-separated glob patterns for custom… (shown only then; applied on Enter).
        status: what moves now (the names in its tooltip), or why a choice was refused.
        box: the three in a row.
    """

    def __init__(
        self, bank: DirectionBank, controls: AxisControls, on_rescope: Callable[[], Any]
    ) -> None:
        self._bank, self._controls, self._on_rescope = bank, controls, on_rescope
        self._updating = False  # set while this control shows a scope: not a user's choice
        choice = bank.scope.choice
        self._predicate: ParamChoice | None = choice if callable(choice) else None
        self.select = W.Dropdown(description="parameters", style=_STYLE,
                                 layout=W.Layout(width="320px"))
        self.globs = W.Text(placeholder="globs, e.g. 4.*, fc.*  (Enter)",
                            continuous_update=False, layout=W.Layout(width="200px"))
        self.status = W.HTML(layout=W.Layout(min_width="240px", flex="1 1 auto"))
        self.status.add_class("lsw-params-status")
        self.box = W.HBox([self.select, self.globs, self.status])
        self.show(bank.scope)
        self.select.observe(self._chosen, names="value")
        self.globs.observe(self._typed, names="value")

    def apply(self, params: ParamChoice) -> ParamScope:
        """Move the parameters `params` selects from now on: redraw the bank's random
        directions (same seeds), restart the view, recompute the Hessian eigenpairs if some
        were asked for. Raises the engine's error for a bad choice, changing nothing."""
        scope = resolve(self._bank.landscape.model, params)
        with self._controls.quiet():
            self._bank.rescope(scope)  # draws everything first: an error changes nothing
            if callable(scope.choice):
                self._predicate = scope.choice
            self.show(scope)
        self._controls.restart()
        self._on_rescope()
        return scope

    def show(self, scope: ParamScope) -> None:
        """Set the controls to `scope` (no redraw) and say what moves."""
        self._updating = True
        try:
            self.select.options = self._options()
            choice = scope.choice
            if isinstance(choice, str):
                self.select.value = choice
            elif callable(choice):
                self.select.value = _PREDICATE
            else:
                self.select.value = _CUSTOM
                self.globs.value = ", ".join(choice)
            self.globs.layout.display = None if self.select.value == _CUSTOM else "none"
        finally:
            self._updating = False
        details = html.escape(scope.details, quote=True)
        self._say(f"<span title='{details}'>moves {html.escape(scope.summary)}</span>")
        self.select.tooltip = scope.details

    def _say(self, body: str) -> None:
        # A long message (the engine lists parameter names) wraps instead of widening the row.
        self.status.value = f"<div style='white-space:normal;line-height:1.3'>{body}</div>"

    def _options(self) -> list[tuple[str, str]]:
        trainable = resolve(self._bank.landscape.model, "trainable")
        n = len(trainable.sizes)
        some = f"{len(trainable.names)} of {n}" if trainable.restricted else f"all {n}"
        options = [(f"trainable ({some} tensors)", "trainable"), (f"all ({n} tensors)", "all"),
                   ("custom…", _CUSTOM)]
        if self._predicate is not None:
            options.append((short_text(self._predicate), _PREDICATE))
        return options

    # ----------------------------------------------------------------- the user's moves
    def _chosen(self, change: dict[str, Any]) -> None:
        if self._updating:
            return
        value = change["new"]
        custom = value == _CUSTOM
        self.globs.layout.display = None if custom else "none"
        if not custom:
            predicate = self._predicate if value == _PREDICATE else None
            self._try(predicate if predicate is not None else value)
        elif parse_globs(self.globs.value):
            self._try(parse_globs(self.globs.value))
        else:
            self._say("type glob patterns over the parameter names, comma-separated, then "
                      "press Enter")

    def _typed(self, change: dict[str, Any]) -> None:
        if not self._updating and self.select.value == _CUSTOM:
            self._try(parse_globs(change["new"]))

    def _try(self, params: ParamChoice) -> None:
        """Apply a choice made in the controls; a refused one is shown, never raised (the
        controls keep what the user typed, to be fixed; the bank keeps its scope)."""
        try:
            self.apply(params)
        except Exception as exc:  # a refusal must not leave a traceback in the kernel
            kept = html.escape(self._bank.scope.short)
            self._say(f"<span style='color:{_ERROR_COLOR}'>{html.escape(describe(exc))}</span>"
                      f" (still moving: {kept})")
