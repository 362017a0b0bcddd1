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
import math
import re
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Self

import orjson

from bridges.source import Sample, Samples, SourceEvent, TagSpec
from model.bridges import JsonMapping, MqttJsonBridgeConfig
from model.envelope import Quality
from uns.connect import ClientFactory
from uns.errors import BridgeError
from uns.mqtt.filters import topic_matches
from uns.mqtt.types import PubSub
from uns.sparkplug import DataType, MetricValue

__all__ = ["MISSING", "JsonPath", "MqttJsonSource", "convert"]

log = logging.getLogger(__name__)

_STEP = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]")
_INTEGER_RANGES = {
    DataType.Int8: (-(2**7), 2**7 - 1), DataType.Int16: (-(2**15), 2**15 - 1),
    DataType.Int32: (-(2**31), 2**31 - 1), DataType.Int64: (-(2**63), 2**63 - 1),
    DataType.UInt8: (0, 2**8 - 1), DataType.UInt16: (0, 2**16 - 1),
    DataType.UInt32: (0, 2**32 - 1), DataType.UInt64: (0, 2**64 - 1),
    DataType.DateTime: (0, 2**63 - 1),
}  # fmt: skip
MISSING = object()
"""What ``JsonPath.find`` returns when the document has no value at the path."""


@dataclass(frozen=True, slots=True)
class JsonPath:
    """A dotted JSON path, ``$.a.b[0].c``, parsed once."""

    steps: tuple[str | int, ...]

    @classmethod
    def from_str(cls, path: str) -> Self:
        """Parse; raises ``ValueError`` naming the offset where the path stops making sense."""
        if not path.startswith("$"):
            raise ValueError(f"JSON path {path!r} must start with $")
        steps: list[str | int] = []
        position = 1
        while position < len(path):
            match = _STEP.match(path, position)
            if match is None:
                raise ValueError(f"JSON path {path!r}: cannot read from offset {position}")
            steps.append(match.group(1) if match.group(1) is not None else int(match.group(2)))
            position = match.end()
        return cls(tuple(steps))

    def find(self, document: object) -> object:
        """The value at this path, or ``MISSING``."""
        current = document
        for step in self.steps:
            in_list = isinstance(step, int) and isinstance(current, list) and -len(current) <= step < len(current)
            in_object = isinstance(step, str) and isinstance(current, dict) and step in current
            if not (in_list or in_object):
                return MISSING
            current = current[step]  # type: ignore[index]
        return current


def convert(value: object, datatype: DataType) -> MetricValue:
    """A JSON value as the metric's datatype; raises ``ValueError`` saying why it does not fit."""
    if datatype is DataType.Boolean:
        if isinstance(value, bool):
            return value
        raise ValueError(f"{value!r} is not a boolean")
    if datatype in (DataType.String, DataType.Text):
        if isinstance(value, str):
            return value
        return orjson.dumps(value).decode()  # objects and numbers keep their JSON text
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{value!r} is not a number")
    if datatype in (DataType.Float, DataType.Double):
        return float(value)
    if isinstance(value, float):
        if not value.is_integer() or math.isinf(value):
            raise ValueError(f"{value!r} is not an integer")
        value = int(value)
    low, high = _INTEGER_RANGES[datatype]
    if not low <= value <= high:
        raise ValueError(f"{value} is outside {datatype.name} ({low}..{high})")
    return value


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
            now_ms = time.time_ns() // 1_000_000
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
                    sample = Sample(route.mapping.name, convert(found, route.datatype), now_ms)
                except ValueError as exc:
                    self._reject(message.topic, f"{route.mapping.path} for {route.mapping.name}: {exc}")
                    sample = Sample(route.mapping.name, None, now_ms, Quality.bad)
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
