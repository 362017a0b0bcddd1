"""Reading a source's event stream in tests: the next event that matches, within a deadline."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable

from bridges.source import DeviceDown, Samples, SourceEvent

__all__ = ["down", "next_event", "samples_of", "values"]


async def next_event(
    stream: AsyncGenerator[SourceEvent, None], match: Callable[[SourceEvent], bool], *, deadline_s: float = 5.0
) -> SourceEvent:
    """The next event ``match`` accepts; fails the test after ``deadline_s`` seconds."""
    async with asyncio.timeout(deadline_s):
        while True:
            event = await anext(stream)
            if match(event):
                return event


def samples_of(device: str) -> Callable[[SourceEvent], bool]:
    """Matches a ``Samples`` of ``device``."""
    return lambda event: isinstance(event, Samples) and event.device == device


def down(device: str) -> Callable[[SourceEvent], bool]:
    """Matches a ``DeviceDown`` of ``device``."""
    return lambda event: isinstance(event, DeviceDown) and event.device == device


def values(event: SourceEvent) -> dict[str, object]:
    """Tag name → value of a ``Samples``."""
    assert isinstance(event, Samples), event
    return {sample.name: sample.value for sample in event.samples}
