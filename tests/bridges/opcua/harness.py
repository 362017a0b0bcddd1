"""Run an OpcUaSource in a test: its config, its events collected, and waits with deadlines."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Mapping, Sequence

from bridges.opcua import OpcUaSource
from bridges.source import DeviceDown, Sample, Samples, SourceEvent
from model.bridges import OpcUaBridgeConfig
from tests.fixtures import waiting


def config(endpoint: str, devices: Sequence[Mapping[str, object]], **extra: object) -> OpcUaBridgeConfig:
    """A bridge config with test-speed timing: 50 ms publishing, 1 s liveness window."""
    fields: dict[str, object] = {
        "name": "opc1",
        "edge": {"group": "plant"},
        "endpoint": endpoint,
        "devices": devices,
        "publishing_interval_ms": 50,
        "poll_interval_s": 0.1,
        "timeout_s": 1.0,
    }
    fields.update(extra)
    return OpcUaBridgeConfig.model_validate(fields)


class Collector:
    """Every event a source produced, in order."""

    def __init__(self, source: OpcUaSource) -> None:
        self.source = source
        self.events: list[SourceEvent] = []

    def samples(self, device: str, name: str) -> list[Sample]:
        return [
            sample
            for event in self.events
            if isinstance(event, Samples) and event.device == device
            for sample in event.samples
            if sample.name == name
        ]

    def latest(self, device: str, name: str) -> Sample | None:
        found = self.samples(device, name)
        return found[-1] if found else None

    def get(self, device: str, name: str) -> Sample:
        """The latest sample of a tag, which must exist."""
        sample = self.latest(device, name)
        assert sample is not None, f"no sample of {device}/{name}"
        return sample

    def value(self, device: str, name: str) -> object:
        sample = self.latest(device, name)
        return None if sample is None else sample.value

    def downs(self) -> list[DeviceDown]:
        return [event for event in self.events if isinstance(event, DeviceDown)]

    def mark(self) -> int:
        """Position to look after (``since``)."""
        return len(self.events)

    def since(self, mark: int) -> Collector:
        view = Collector(self.source)
        view.events = self.events[mark:]
        return view


until = functools.partial(waiting.until, within_s=10.0)
"""``tests.fixtures.waiting.until`` with a 10 s default (OPC UA sessions start slowly)."""


@contextlib.asynccontextmanager
async def running(source: OpcUaSource, *, entered: bool = False) -> AsyncIterator[Collector]:
    """Enter the source (unless already entered) and collect its events until the block ends."""
    collector = Collector(source)

    async def pump() -> None:
        async for event in source.events():
            collector.events.append(event)

    async with contextlib.AsyncExitStack() as stack:
        if not entered:
            await stack.enter_async_context(source)
        task = asyncio.create_task(pump(), name="test.opcua.pump")
        try:
            yield collector
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
