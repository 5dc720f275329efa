"""Keep activation buffers in the heap while a grid is evaluated (glibc only).

Each forward allocates and frees the same large activation buffers. By default glibc serves
buffers above a (dynamic) threshold with fresh `mmap`s and trims the heap top after frees, so
every point pays page faults for memory it just gave back: on two cores a conv net spent up to
half its wall time in the kernel. Inside `kept_heap()` large buffers come from the heap and
stay there; on leaving, glibc's default thresholds return and the next free trims the heap,
so the memory goes back to the system once the evaluation is over.
"""

from __future__ import annotations

import ctypes
import platform
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_DEFAULT_THRESHOLD = 128 * 1024  # glibc's documented defaults for both
_MAX_MMAP_THRESHOLD = 32 * 1024 * 1024  # the largest value glibc accepts on 64-bit
_KEEP_TRIM = 1 << 30

_lock = threading.Lock()
_depth = 0


def _mallopt() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        fn = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


_MALLOPT = _mallopt()


@contextmanager
def kept_heap() -> Iterator[None]:
    """Large allocations stay in the heap until the outermost `kept_heap` exits."""
    global _depth
    if _MALLOPT is None:
        yield
        return
    with _lock:
        _depth += 1
        if _depth == 1:
            _MALLOPT(_M_MMAP_THRESHOLD, _MAX_MMAP_THRESHOLD)
            _MALLOPT(_M_TRIM_THRESHOLD, _KEEP_TRIM)
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                _MALLOPT(_M_MMAP_THRESHOLD, _DEFAULT_THRESHOLD)
                _MALLOPT(_M_TRIM_THRESHOLD, _DEFAULT_THRESHOLD)
