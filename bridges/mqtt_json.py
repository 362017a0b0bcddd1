"""The MQTT-JSON bridge: devices that already publish JSON are mapped into Sparkplug metrics.

Its subscription to the source broker is a persistent session (``clean_session`` false, QoS 1, the
stable client id ``config.session_id``), so the source broker queues what the devices publish while
the bridge is down. A message is acknowledged only once the edge engine took its samples (sent and
journaled, or put in the store-and-forward buffer): the engine asks for the next event only after
handling the previous one, so a kill -9 loses nothing the source broker accepted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Self

import orjson

from bridges.json_paths import MISSING, JsonPath, convert
from bridges.source import Sample, Samples, SourceEvent, TagSpec
from model.bridges import JsonMapping, MqttJsonBridgeConfig
from model.envelope import Quality
from uns.clock import now_ms
from uns.connect import ClientFactory
from uns.errors import BridgeError
from uns.mqtt.filters import topic_matches
from uns.mqtt.types import PubSub
from uns.sparkplug import DataType, MetricValue

__all__ = ["MISSING", "JsonPath", "MqttJsonSource", "convert"]  # the paths: from bridges.json_paths, re-exported

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Route:
    device: str
    mapping: JsonMapping
    path: JsonPath
    datatype: DataType


class MqttJsonSource:
    """Subscribes to the devices' JSON topics and reports each mapped value as a Sample."""

    def __init__(self, *, config: MqttJsonBridgeConfig, clients: ClientFactory) -> None:
        self.name = config.name
        self._config = config
        self._clients = clients
        self._routes = [
            _Route(device.id, mapping, JsonPath.from_str(mapping.path), DataType[mapping.type])
            for device in config.devices
            for mapping in device.mappings
        ]
        self._stack = contextlib.AsyncExitStack()
        self._client: PubSub | None = None
        self.rejected = 0

    async def __aenter__(self) -> Self:
        async with contextlib.AsyncExitStack() as stack:
            client = await stack.enter_async_context(
                self._clients(client_id=self._config.session_id, clean_session=False, manual_ack=True)
            )
            await client.subscribe(sorted({route.mapping.topic for route in self._routes}), qos=1)
            self._stack = stack.pop_all()
        self._client = client
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._client = None
        await self._stack.aclose()

    def tags(self) -> Sequence[TagSpec]:
        """One tag per mapping."""
        return [
            TagSpec(
                device=route.device,
                name=route.mapping.name,
                datatype=route.datatype,
                unit=route.mapping.unit,
                deadband=route.mapping.deadband,
            )
            for route in self._routes
        ]

    async def events(self) -> AsyncIterator[SourceEvent]:
        """One ``Samples`` per device per incoming JSON message that maps to something."""
        if self._client is None:
            raise RuntimeError("MqttJsonSource.events() needs `async with source:` first")
        client = self._client
        async for message in client.messages():
            received_ms = now_ms()
            try:
                document = orjson.loads(message.payload)
            except orjson.JSONDecodeError as exc:
                self._reject(message.topic, f"not JSON: {exc}")
                client.ack(message)
                continue
            by_device: dict[str, list[Sample]] = {}
            for route in self._routes:
                if not topic_matches(message.topic, route.mapping.topic):
                    continue
                found = route.path.find(document)
                if found is MISSING:
                    continue  # this message does not carry that field
                try:
                    sample = Sample(route.mapping.name, convert(found, route.datatype), received_ms)
                except ValueError as exc:
                    self._reject(message.topic, f"{route.mapping.path} for {route.mapping.name}: {exc}")
                    sample = Sample(route.mapping.name, None, received_ms, Quality.bad)
                by_device.setdefault(route.device, []).append(sample)
            for device, samples in by_device.items():
                yield Samples(device, samples)
            # the consumer handled every Samples above before asking for more: now the broker may forget it
            client.ack(message)
            await asyncio.sleep(0)

    async def write(self, device: str, name: str, value: MetricValue) -> None:
        """JSON devices are read-only here."""
        raise BridgeError(self.name, device, f"{name}: the MQTT-JSON bridge is read-only")

    def _reject(self, topic: str, reason: str) -> None:
        self.rejected += 1
        log.warning("bridge %s: message on %s rejected: %s", self.name, topic, reason)
