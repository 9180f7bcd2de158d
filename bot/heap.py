"""Give freed heap back to the operating system, so a one-off peak (loading the tokenizer) does not stay resident."""

from __future__ import annotations

import ctypes
import functools
import platform
import sys
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, or None elsewhere (musl, macOS, Windows: their allocators return memory by themselves)."""
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):
        return None
    return trim


def trim() -> bool:
    """Return the free pages glibc keeps at the top of the heap and inside its arenas; False when there is no trim.

    CPython frees a large short-lived structure (the parsed tokenizer file) to malloc, which glibc holds on to.
    """
    malloc_trim = _malloc_trim()
    if malloc_trim is None:
        return False
    malloc_trim(0)
    return True
