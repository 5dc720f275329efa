"""Keep activation buffers in the heap between forwards (glibc only).

Each forward allocates and frees the same large activation buffers. glibc serves buffers above
its mmap threshold with fresh `mmap`s and trims the top of the heap once more than the trim
threshold is free, so a loop of forwards pays page faults for memory it has just given back:
on two cores a conv net spent up to half its wall time in the kernel. glibc raises both
thresholds dynamically, but only up to its limits and only after the first large free.

`keep_heap()` sets them once, for the process, to glibc's own maximum mmap threshold (32 MiB)
and a trim threshold of 256 MiB: large buffers then come from the heap and up to 256 MiB of
freed memory stays with the process. The setting cannot be undone (glibc's dynamic mode does
not come back once a threshold is set explicitly), so it is applied once, on the first
evaluation on a CPU, and documented in the README.
"""

from __future__ import annotations

import ctypes
import platform
import threading

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024  # the largest value glibc accepts on 64-bit
TRIM_THRESHOLD = 256 * 1024 * 1024

_lock = threading.Lock()
_done = False


def keep_heap() -> bool:
    """Apply the thresholds once (glibc on Linux); True if they are in force."""
    global _done
    with _lock:
        if _done:
            return True
        if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
            return False
        try:
            mallopt = ctypes.CDLL(None).mallopt
        except (OSError, AttributeError):
            return False
        mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        mallopt.restype = ctypes.c_int
        _done = bool(
            mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
            and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
        )
        return _done
