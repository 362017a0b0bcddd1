"""Waiting on an ``asyncio.Event`` for at most a while: the one way loops sleep until woken or due."""

from __future__ import annotations

import asyncio

__all__ = ["set_within"]


async def set_within(event: asyncio.Event, timeout_s: float | None) -> bool:
    """True once ``event`` is set (at once when it is, whatever ``timeout_s``), False when ``timeout_s`` passes first.

    ``timeout_s`` None waits without a limit, as ``asyncio.timeout(None)``.

    ``asyncio.timeout``, not ``asyncio.wait_for``: Python 3.11's ``wait_for`` can swallow a cancellation
    that arrives as the wait completes, and the task would outlive its owner.
    """
    if event.is_set():
        return True
    try:
        async with asyncio.timeout(timeout_s):
            await event.wait()
    except TimeoutError:
        return False
    return True
