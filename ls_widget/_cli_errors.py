"""The command line's errors: a message for the user's last line, and the exit status.

Status 2 is a bad argument (a name that does not resolve, a missing file, a value out of
range, an output that exists), as argparse uses for its own; status 1 is a failure while
running (the user's function raised, returned the wrong thing, the weights do not fit).
"""

from __future__ import annotations

USAGE = 2
RUNTIME = 1


class CliError(Exception):
    """An error the command line reports as one line, without a traceback.

    Args:
        message: what went wrong, naming the offending value, and the fix.
        status: the exit status (`USAGE` or `RUNTIME`).
    """

    def __init__(self, message: str, status: int = USAGE) -> None:
        super().__init__(message)
        self.status = status


def usage(message: str) -> CliError:
    """A bad argument (exit status 2)."""
    return CliError(message, USAGE)


def runtime(message: str) -> CliError:
    """A failure while running (exit status 1)."""
    return CliError(message, RUNTIME)


def one_line(exc: BaseException) -> str:
    """``"ValueError: the message"``, its lines joined, for quoting an exception."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
