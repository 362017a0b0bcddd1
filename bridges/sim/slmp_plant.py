"""The simulated iQ-R PLC of the utilities area (the water chiller), served by virtual-plc in this process.

virtual-plc (MIT) is an MC protocol PLC simulator by another author: its ``Server`` runs on threads
here. Each metric gets a Mitsubishi address (``slmp_slots``): values from D100, writable setpoints
from D200, read-only flags in X0.., writable commands in M100.., multi-word values low word first
as an iQ-R keeps them. The plant writes the model's values through an SLMP connection of its own
(plc-comm-slmp), so its writes are serialised with the clients' requests by the simulator, and
reads back the writable ones to spot what clients wrote. ``demo_bridge`` gives the SLMP bridge that
reads it, from the same slots, so the two cannot drift apart.

``bench_counterpart(N)`` is the bench's counterpart: ``bridges/slmp/counter.py``, D0..D<N-1>
changing every 100 ms, in a process of its own; it prints ``port <n>`` once listening.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import sys
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Self

from slmp import AsyncSlmpClient, SlmpError, SlmpTarget
from virtual_plc import Server  # type: ignore[import-untyped]  # no py.typed in virtual-plc 0.3.0

from bridges.sim.layout import GROUP, MACHINE_METRICS, Metric, metric_value
from bridges.sim.modbus_plant import ClientWrite
from bridges.sim.plant import PlantSnapshot
from bridges.slmp import counter
from bridges.slmp.codec import decode, encode
from model.bridges.common import EdgeNodeConfig
from model.bridges.slmp import SlmpBridgeConfig, SlmpDevice, SlmpTag, SlmpType, parse_address, words_of

__all__ = [
    "FAST_POLL_S",
    "SLMP_NODE",
    "SLOW_POLL_S",
    "BenchCounterpart",
    "SlmpPlant",
    "SlmpSlot",
    "bench_counterpart",
    "demo_bridge",
    "slmp_slots",
]

log = logging.getLogger(__name__)

SLMP_NODE = "slmp-utilities"
"""Edge node id of the SLMP bridge of the utilities area."""
FAST_POLL_S = 0.2
SLOW_POLL_S = 1.0
_STRING_WORDS = 16
_PROFILE = "melsec:iq-r"

_TYPES: Mapping[str, SlmpType] = MappingProxyType(
    {
        "Boolean": "bool", "Int8": "int16", "Int16": "int16", "UInt8": "uint16", "UInt16": "uint16",
        "Int32": "int32", "Int64": "int32", "UInt32": "uint32", "UInt64": "uint32", "Float": "float32",
        "Double": "float64", "String": "string", "Text": "string", "DateTime": "float64",
    }
)  # fmt: skip
"""Sparkplug datatype -> the type the PLC program keeps it in (64-bit counters as 32-bit words)."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SlmpSlot:
    """Where and how one metric sits in the simulated PLC."""

    metric: Metric
    address: str
    type: SlmpType
    length: int | None = None


def slmp_slots(metrics: Sequence[Metric]) -> tuple[SlmpSlot, ...]:
    """The address of every metric: values from D100, writable ones from D200, flags X0.., commands M100.."""
    next_word = {False: 100, True: 200}
    next_bit = {False: 0, True: 100}
    slots = []
    for metric in metrics:
        type_ = _TYPES[metric.datatype]
        if type_ == "bool":
            bit = next_bit[metric.writable]
            next_bit[metric.writable] = bit + 1
            address = f"M{bit}" if metric.writable else f"X{bit:X}"
            slots.append(SlmpSlot(metric=metric, address=address, type="bool"))
            continue
        length = _STRING_WORDS if type_ == "string" else None
        word = next_word[metric.writable]
        next_word[metric.writable] = word + words_of(type_, length)
        slots.append(SlmpSlot(metric=metric, address=f"D{word}", type=type_, length=length))
    return tuple(slots)


class SlmpPlant:
    """One machine's iQ-R PLC: ``async with SlmpPlant(port=0) as plant:``, ``plant.endpoint`` is (host, port).

    Args:
        bind: Address to listen on (SLMP over TCP).
        port: 0 = a free one.
        machine: The machine it runs (its metrics from ``layout.MACHINE_METRICS`` unless given).
        metrics: The machine's metrics.
    """

    def __init__(
        self,
        *,
        bind: str = "127.0.0.1",
        port: int = 0,
        machine: str = "chiller",
        metrics: Sequence[Metric] | None = None,
    ) -> None:
        self.machine = machine
        self.slots = slmp_slots(metrics if metrics is not None else MACHINE_METRICS[machine])
        self.server = Server(bind, port, profile="iQ-R")
        self._client: AsyncSlmpClient | None = None
        self._written: dict[str, float | bool | str] = {}

    @property
    def endpoint(self) -> tuple[str, int]:
        """(host, port) of the PLC, the real port once entered."""
        host, port = self.server.address
        return (str(host), int(port))

    async def __aenter__(self) -> Self:
        await asyncio.to_thread(self.server.start)
        try:
            self._client = AsyncSlmpClient(
                *self.endpoint, transport="tcp", default_target=SlmpTarget(0, 0xFF, 0x3FF, 0), plc_profile=_PROFILE,
                timeout=5.0,
            )  # fmt: skip
            await self._client.connect()
        except BaseException:
            await self.__aexit__()
            raise
        log.info("simulated iQ-R PLC of %s listening on %s:%d", self.machine, *self.endpoint)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()
        await asyncio.to_thread(self.server.stop)

    async def update(self, snapshot: PlantSnapshot) -> None:
        """Write the machine's current values from the model into the PLC memory."""
        client = self._client
        if client is None:
            return
        machine = snapshot.machines[self.machine]
        written: dict[str, float | bool | str] = {}
        words: dict[int, int] = {}
        bits: list[tuple[str, bool]] = []
        for slot in self.slots:
            value = metric_value(machine, slot.metric.name)
            name = slot.metric.name
            if slot.metric.writable and name in self._written and _same(slot, value, self._written[name]):
                # unchanged in the model: leave it, a client's write may have landed since collect_writes
                written[name] = self._written[name]
                continue
            if slot.type == "bool":
                bits.append((slot.address, bool(value)))
                written[slot.metric.name] = bool(value)
                continue
            try:
                data = encode(slot.type, value, length=slot.length)
            except ValueError:  # a glitching model never crashes the PLC: out of range reads as 0
                data = encode(slot.type, 0, length=slot.length)
            first = parse_address(slot.address, "iQ-R")[1]
            words.update(enumerate(data, first))
            read_back = decode(slot.type, data)
            written[slot.metric.name] = read_back if isinstance(read_back, str) else float(read_back)
        try:
            for head, run in _runs(words):
                await client.write_devices(f"D{head}", run, bit_unit=False)
            if bits:
                await client.write_random_bits(bits)
        except (SlmpError, OSError) as exc:
            log.warning("simulated PLC of %s: update failed: %s", self.machine, exc)
            return
        self._written = written

    async def collect_writes(self) -> list[ClientWrite]:
        """Values clients wrote into writable metrics since the last ``update``."""
        client = self._client
        if client is None:
            return []
        writes = []
        try:
            for slot in self.slots:
                if not slot.metric.writable or slot.metric.name not in self._written or slot.type == "string":
                    continue
                value: float | bool
                if slot.type == "bool":
                    value = bool((await client.read_devices(slot.address, 1, bit_unit=True))[0])
                else:
                    raw = await client.read_devices(slot.address, words_of(slot.type, slot.length), bit_unit=False)
                    value = float(decode(slot.type, [int(word) for word in raw]))
                if value != self._written[slot.metric.name]:
                    writes.append(ClientWrite(self.machine, slot.metric.name, value))
        except (SlmpError, OSError) as exc:
            log.warning("simulated PLC of %s: reading back writes failed: %s", self.machine, exc)
            return []
        return writes


def _same(slot: SlmpSlot, value: float | int | bool | str, written: float | bool | str) -> bool:
    """Whether the model's ``value`` reads back as what the PLC memory was last given."""
    if slot.type == "bool":
        return bool(value) == written
    try:
        read_back = decode(slot.type, encode(slot.type, value, length=slot.length))
    except ValueError:
        return False
    return (read_back if isinstance(read_back, str) else float(read_back)) == written


def _runs(words: Mapping[int, int]) -> list[tuple[int, list[int]]]:
    """Consecutive words as (first number, words) runs: one batch write each."""
    runs: list[tuple[int, list[int]]] = []
    for number in sorted(words):
        if runs and runs[-1][0] + len(runs[-1][1]) == number:
            runs[-1][1].append(words[number])
        else:
            runs.append((number, [words[number]]))
    return runs


def demo_bridge(endpoint: tuple[str, int], machine: str, metrics: Sequence[Metric]) -> SlmpBridgeConfig:
    """The SLMP bridge reading one simulated PLC: edge node ``slmp-utilities``, device id = the machine."""
    host, port = endpoint
    tags = [
        SlmpTag(
            name=slot.metric.name,
            address=slot.address,
            type=slot.type,
            length=slot.length,
            unit=slot.metric.unit,
            poll=slot.metric.poll,
            writable=slot.metric.writable,
        )
        for slot in slmp_slots(metrics)
    ]
    device = SlmpDevice(
        id=machine,
        host=host,
        port=port,
        series="iQ-R",
        poll_groups={"fast": FAST_POLL_S, "slow": SLOW_POLL_S},
        tags=tags,
    )
    return SlmpBridgeConfig(
        name=SLMP_NODE, edge=EdgeNodeConfig(group=GROUP, primary_host_id="uns-hub"), devices=[device]
    )


@dataclasses.dataclass(frozen=True, slots=True)
class BenchCounterpart:
    """How a bench runs an iQ-R PLC with ``tags`` changing words in another process, and the bridge reading it."""

    argv: tuple[str, ...]
    """Start it (``sys.executable`` first); it prints ``port <n>`` once listening."""
    tags: int

    def bridge(self, port: int, *, interval_s: float = 0.1, host: str = "127.0.0.1") -> SlmpBridgeConfig:
        """The bridge polling every tag (D0.., one uint16 each) at ``interval_s``."""
        device = SlmpDevice(
            id="bench",
            host=host,
            port=port,
            series="iQ-R",
            poll_groups={"default": interval_s},
            tags=[SlmpTag(name=f"Tag/{i:04d}", address=f"D{i}", type="uint16") for i in range(self.tags)],
        )
        return SlmpBridgeConfig(name="slmp-bench", edge=EdgeNodeConfig(group="bench"), devices=[device])


def bench_counterpart(tags: int) -> BenchCounterpart:
    """A virtual-plc subprocess whose D0..D<tags-1> change every 100 ms, and the bridge config that reads them."""
    return BenchCounterpart(argv=(sys.executable, counter.__file__, "--words", str(tags)), tags=tags)
