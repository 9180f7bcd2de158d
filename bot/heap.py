"""The process's memory: give freed heap back to the system, keep few malloc arenas, freeze what start loaded."""

from __future__ import annotations

import asyncio
import ctypes
import functools
import gc
import os
import platform
import sys
from collections.abc import Callable

M_ARENA_MAX = -8  # mallopt's parameter number in glibc's malloc.h
TRIM_EVERY_SECONDS = 60.0


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    """glibc, or None elsewhere (musl, macOS, Windows: their allocators return memory by themselves)."""
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL(None)
    except OSError:
        return None


def _malloc_trim() -> Callable[[int], int] | None:
    libc = _glibc()
    return getattr(libc, "malloc_trim", None) if libc is not None else None


def limit_arenas(count: int = 2) -> bool:
    """At most `count` malloc arenas: glibc otherwise gives threads arenas of their own (up to 8 per core) whose
    freed pieces stay resident. Call before the threads start (MALLOC_ARENA_MAX set by an admin wins)."""
    libc = _glibc()
    if libc is None or os.environ.get("MALLOC_ARENA_MAX") or not hasattr(libc, "mallopt"):
        return False
    return bool(libc.mallopt(M_ARENA_MAX, count))


async def trim_periodically(interval: float = TRIM_EVERY_SECONDS) -> None:
    """A long-running bot frees as much as it allocates, but glibc keeps the freed pages: give them back now and
    then (a few milliseconds each time)."""
    while True:
        await asyncio.sleep(interval)
        trim()


def trim() -> bool:
    """Return the free pages glibc keeps at the top of the heap and inside its arenas; False when there is no trim.

    CPython frees a large short-lived structure (the parsed tokenizer file) to malloc, which glibc holds on to.
    """
    malloc_trim = _malloc_trim()
    if malloc_trim is None:
        return False
    malloc_trim(0)
    return True


def settle_after_start() -> None:
    """Once everything the process keeps is loaded (libraries, tokenizer, config)."""
    # It lives as long as the process: keep it out of the garbage collector's full passes, which otherwise pause
    # the event loop for tens of milliseconds.
    gc.collect()
    gc.freeze()
    trim()  # what the start freed (the tokenizer file's parse, the migration) goes back to the system
