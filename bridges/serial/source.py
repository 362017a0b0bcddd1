"""The serial source: one ``SerialPort`` per instrument, their readings merged into one stream for the edge node."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Sequence
from typing import Self

from bridges.http.mapping import MappedEvent
from bridges.serial.port import SerialPort
from bridges.source import SourceEvent, SourceTasks, TagSpec
from model.bridges.serial import SerialBridgeConfig
from uns.backoff import Backoff
from uns.connect import ClientFactory
from uns.errors import BridgeError
from uns.logs import RateLimitedLog
from uns.mqtt.types import Message, PubSub
from uns.sparkplug import MetricValue

__all__ = ["SerialSource"]

log = logging.getLogger(__name__)

_QUEUE = 256  # readings waiting for the edge node; beyond it the ports wait (back-pressure, nothing dropped)


class SerialSource:
    """A ``Source`` for ``kind: serial``.

    Args:
        config: the bridge's config.
        clients: MQTT clients of the hub's broker, for MES events (opened only when a device has events).
    """

    def __init__(self, *, config: SerialBridgeConfig, clients: ClientFactory) -> None:
        self.name = config.name
        self._config = config
        self._clients = clients
        self._queue: SourceTasks[SourceEvent] = SourceTasks(f"serial[{config.name}]", maxsize=_QUEUE)
        self.ports = {
            device.id: SerialPort(bridge=config.name, config=device, emit=self._queue.put, publish=self._publish)
            for device in config.devices
        }
        self._client: PubSub | None = None
        self._stack = contextlib.AsyncExitStack()
        self._warn = RateLimitedLog(log)

    async def __aenter__(self) -> Self:
        async with contextlib.AsyncExitStack() as stack:
            if any(device.events for device in self._config.devices):
                client_id = f"uns-serial-{self._config.edge.group}-{self._config.node_id}"
                self._client = await stack.enter_async_context(self._clients(client_id=client_id))
            self._stack = stack.pop_all()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._queue.stop()
        self._client = None
        await self._stack.aclose()

    def tags(self) -> Sequence[TagSpec]:
        """Every device's metrics and status, in device order."""
        return [tag for port in self.ports.values() for tag in port.tags()]

    async def events(self) -> AsyncGenerator[SourceEvent, None]:
        """Readings and ``DeviceDown`` of every port until cancelled; a port task's crash is raised here.

        The ports run as tasks of their own (``SourceTasks``), stopped when this generator closes or the source exits.
        """
        for port in self.ports.values():
            self._queue.start(port.run(), port.id)
        try:
            while True:
                yield await self._queue.get()
        finally:
            await self._queue.stop()

    async def _publish(self, events: list[MappedEvent]) -> None:
        """MES events at QoS 1, awaited until the broker acknowledges them (retried while it is away)."""
        client = self._client
        if client is None:  # pragma: no cover  (entered with events configured)
            raise BridgeError(self.name, "mqtt", "no MQTT client for MES events")
        messages = [Message(event.topic, event.body, 1, False) for event in events]
        backoff = Backoff(min_s=0.2, max_s=10.0)
        while True:
            try:
                await client.publish_many(messages)
                return
            except Exception as exc:  # the broker is away: the port waits (its bytes queue in the OS) and retries
                delay = backoff.failed()
                self._warn.warning("publish", "serial %s: MES events not acknowledged (%r): retrying in %.1f s",
                                   self.name, exc, delay)  # fmt: skip
                await asyncio.sleep(delay)

    async def write(self, device: str, name: str, value: MetricValue) -> None:
        """A scale command (``Command/Zero``, ``Command/Tare``) from a DCMD; raises ``BridgeError``."""
        port = self.ports.get(device)
        if port is None:
            raise BridgeError(self.name, "serial", f"write: no device {device!r}")
        await port.write(name, value)
