"""The process's native heap: few glibc arenas, and freed pages handed back to the system.

Under a steady load the hub's Python objects stay flat (tracemalloc), yet a long run's RSS grew in
glibc's per-thread arenas: the historian's writer thread and DuckDB's workers allocate and free
native memory in arenas of their own, which glibc neither merges nor returns while any chunk near
their top is live (``bench/soak.py``, docs/benchmarks.md). Two arenas instead of eight per core and a
``malloc_trim`` every minute keep the heap the size of what is in use. Both are no-ops where the C
library is not glibc; an operator's own ``MALLOC_ARENA_MAX`` wins.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import os
import time

__all__ = ["ARENA_MAX", "TRIM_EVERY_S", "HeapKeeper", "heap_in_use", "limit_arenas"]

log = logging.getLogger(__name__)

ARENA_MAX = 2
"""glibc arenas for the whole process: the event loop's and one shared by every worker thread."""
TRIM_EVERY_S = 60.0
"""How often freed pages are handed back (a trim takes a few ms, in a worker thread)."""
_M_ARENA_MAX = -8  # mallopt parameter number, from glibc's malloc.h


def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks")
    ] + [("keepcost", ctypes.c_size_t)]


def heap_in_use() -> int | None:
    """Bytes glibc has handed out and not had back (``mallinfo2``: every arena and mmapped chunk); None elsewhere."""
    libc = _glibc()
    if libc is None or not hasattr(libc, "mallinfo2"):
        return None
    libc.mallinfo2.restype = _MallInfo2
    info = libc.mallinfo2()
    return int(info.uordblks) + int(info.hblkhd)


def limit_arenas(arena_max: int = ARENA_MAX) -> bool:
    """Cap glibc's arenas; call before the first thread starts. True if the cap is set here."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False  # the operator chose; glibc read it at start
    libc = _glibc()
    return libc is not None and bool(libc.mallopt(_M_ARENA_MAX, arena_max))


class HeapKeeper:
    """A part of every long-lived process: hands freed heap pages back every ``every_s`` seconds."""

    name = "heap"

    def __init__(self, *, every_s: float = TRIM_EVERY_S) -> None:
        self._every_s = every_s
        self._libc = _glibc()
        self.trims = 0
        self.last_trim_ms = 0.0

    async def run(self) -> None:
        """Trim until cancelled (returns at once where the C library is not glibc)."""
        if self._libc is None:
            return
        trim = self._libc.malloc_trim
        while True:
            await asyncio.sleep(self._every_s)
            started = time.perf_counter()
            await asyncio.to_thread(trim, 0)
            self.trims += 1
            self.last_trim_ms = (time.perf_counter() - started) * 1000.0
            log.debug("heap trimmed in %.1f ms", self.last_trim_ms)
