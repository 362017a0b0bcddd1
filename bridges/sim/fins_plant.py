"""The simulated NJ PLC of the utilities area (the wastewater pump): a FINS server holding one machine's values.

Each metric of the machine gets an Omron address (``fins_slots``): values in D100 upward, writable
setpoints from D200, read-only flags as bits of W0 and writable commands as bits of W1, multi-word
values low word first as an NJ maps DINT/REAL/LREAL variables to FINS memory (laid out by
``bridges/sim/word_plc.py``). ``demo_bridge`` gives the FINS bridge that reads it, from the same
slots, so the two cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from collections.abc import Sequence
from typing import Self

from bridges.fins.codec import decode, encode, word_count
from bridges.sim.fins_memory import FinsMemory
from bridges.sim.fins_server import FinsServer
from bridges.sim.layout import GROUP, MACHINE_METRICS, Metric, metric_value
from bridges.sim.modbus_plant import ClientWrite
from bridges.sim.plant import PlantSnapshot
from bridges.sim.rates import poll_groups
from bridges.sim.word_plc import PlcSlot, plc_slots, slot_tags
from model.bridges.common import EdgeNodeConfig
from model.bridges.fins import FinsBridgeConfig, FinsDevice, FinsTag
from model.bridges.fins_address import parse_address

__all__ = [
    "FINS_NODE",
    "BenchCounterpart",
    "FinsPlant",
    "bench_counterpart",
    "demo_bridge",
    "fins_slots",
]

log = logging.getLogger(__name__)

FINS_NODE = "fins-utilities"
"""Edge node id of the FINS bridge of the utilities area."""


def _bit_address(bit: int, writable: bool) -> str:
    """Flags as bits of W0 (then W2, ...), commands as bits of W1 (then W3, ...)."""
    word = 1 if writable else 0
    return f"W{word + 2 * (bit // 16)}.{bit % 16:02d}"


def fins_slots(metrics: Sequence[Metric]) -> tuple[PlcSlot, ...]:
    """The address of every metric: values from D100, writable ones from D200, flags in W0, commands in W1."""
    return plc_slots(metrics, words=word_count, bit_address=_bit_address, first_bit={False: 0, True: 0})


class FinsPlant:
    """One machine's NJ PLC: ``async with FinsPlant(port=0) as plant:``, ``plant.endpoint`` is (host, port).

    Args:
        bind: Address to listen on.
        port: FINS UDP and TCP port; 0 = a free one.
        machine: The machine it runs (its metrics from ``layout.MACHINE_METRICS`` unless given).
        metrics: The machine's metrics.
    """

    def __init__(
        self, *, bind: str = "127.0.0.1", port: int = 0, machine: str = "pump", metrics: Sequence[Metric] | None = None
    ) -> None:
        self.machine = machine
        self.slots = fins_slots(metrics if metrics is not None else MACHINE_METRICS[machine])
        self._addresses = {slot.metric.name: parse_address(slot.address) for slot in self.slots}  # parsed once
        self.server = FinsServer(bind=bind, port=port, memory=FinsMemory(model="NJ501-1300"))
        self._written: dict[str, float | bool | str] = {}

    @property
    def endpoint(self) -> tuple[str, int]:
        """(host, port) of the PLC, the real port once entered."""
        return (self.server.bind, self.server.port)

    async def __aenter__(self) -> Self:
        await self.server.__aenter__()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.server.__aexit__(*exc_info)

    async def stop_plc(self) -> None:
        """Take the PLC off the network (TCP connections drop, UDP gets port unreachable), for fault tests."""
        await self.server.__aexit__(None, None, None)

    async def start_plc(self) -> None:
        """Bring a stopped PLC back on the same port with the memory it had."""
        await self.server.__aenter__()

    async def update(self, snapshot: PlantSnapshot) -> None:
        """Write the machine's current values from the model into the PLC memory."""
        machine = snapshot.machines[self.machine]
        written: dict[str, float | bool | str] = {}
        for slot in self.slots:
            value = metric_value(machine, slot.metric.name)
            written[slot.metric.name] = self._put(slot, value)
        self._written = written

    def _put(self, slot: PlcSlot, value: float | int | bool | str) -> float | bool | str:
        memory = self.server.memory
        address = self._addresses[slot.metric.name]
        if address.bit is not None:
            memory.set_bit(address, bool(value))
            return bool(value)
        try:
            data = encode(value, slot.type, length=slot.length)
        except ValueError:  # a glitching model never crashes the PLC: out of range reads as 0
            data = encode(0, slot.type, length=slot.length)
        memory.set_words(address, data)
        read_back = decode(data, slot.type)
        return read_back if not isinstance(read_back, int) or isinstance(read_back, bool) else float(read_back)

    async def collect_writes(self) -> list[ClientWrite]:
        """Values clients wrote into writable metrics since the last ``update``."""
        memory = self.server.memory
        writes = []
        for slot in self.slots:
            if not slot.metric.writable or slot.metric.name not in self._written:
                continue
            address = self._addresses[slot.metric.name]
            value: float | bool
            if address.bit is not None:
                value = memory.get_bit(address)
            else:
                raw = decode(memory.get_words(address, word_count(slot.type, slot.length)), slot.type)
                if isinstance(raw, str):
                    continue  # no writable text metrics in the demo
                value = float(raw)
            if value != self._written[slot.metric.name]:
                writes.append(ClientWrite(self.machine, slot.metric.name, value))
        return writes


def demo_bridge(endpoint: tuple[str, int], machine: str, metrics: Sequence[Metric]) -> FinsBridgeConfig:
    """The FINS bridge reading one simulated PLC: edge node ``fins-utilities``, device id = the machine."""
    host, port = endpoint
    tags = slot_tags(fins_slots(metrics), FinsTag)
    device = FinsDevice(id=machine, host=host, port=port, poll_groups=poll_groups(), tags=tags)
    return FinsBridgeConfig(
        name=FINS_NODE, edge=EdgeNodeConfig(group=GROUP, primary_host_id="uns-hub"), devices=[device]
    )


@dataclasses.dataclass(frozen=True, slots=True)
class BenchCounterpart:
    """How a bench runs a FINS PLC with ``tags`` changing words in another process, and the bridge reading it."""

    argv: tuple[str, ...]
    """Start it (``sys.executable`` first); it prints ``port <n>`` once listening."""
    tags: int

    def bridge(self, port: int, *, interval_s: float = 0.1, host: str = "127.0.0.1") -> FinsBridgeConfig:
        """The bridge polling every tag (D0.., one uint16 each) at ``interval_s``."""
        device = FinsDevice(
            id="bench",
            host=host,
            port=port,
            poll_groups={"default": interval_s},
            tags=[FinsTag(name=f"Tag/{i:04d}", address=f"D{i}", type="uint16") for i in range(self.tags)],
        )
        return FinsBridgeConfig(name="fins-bench", edge=EdgeNodeConfig(group="bench"), devices=[device])


def bench_counterpart(tags: int) -> BenchCounterpart:
    """A FINS PLC subprocess whose D0..D<tags-1> change every 100 ms, and the bridge config that reads them."""
    return BenchCounterpart(argv=(sys.executable, "-m", "bridges.sim.fins_server", "--words", str(tags)), tags=tags)
