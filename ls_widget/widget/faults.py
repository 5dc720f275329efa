"""Faults in the widget's background threads: which end a thread, and how the rest are shown.

Anything the user's model or loss raises in a worker (an Exception, or a KeyboardInterrupt
raised inside the loss) is shown to the user, and the thread goes on serving.
"""

from __future__ import annotations

import sys


def fatal(exc: BaseException) -> bool:
    """Whether a worker thread must let `exc` end it: only SystemExit while the interpreter
    shuts down. Everything else is shown to the user and the thread goes on."""
    return isinstance(exc, SystemExit) and sys.is_finalizing()


def describe(exc: BaseException) -> str:
    """"ValueError: text" (the type alone when there is no text, as for a bare Ctrl-C)."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
