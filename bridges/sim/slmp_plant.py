"""The simulated iQ-R PLC of the utilities area (the water chiller), served by virtual-plc in this process.

virtual-plc (MIT) is an MC protocol PLC simulator by another author: its ``Server`` runs on threads
here. Each metric gets a Mitsubishi address (``slmp_slots``, laid out by ``bridges/sim/word_plc.py``):
values from D100, writable setpoints from D200, read-only flags in X0.., writable commands in M100..,
multi-word values low word first as an iQ-R keeps them. The plant writes the model's values through
an SLMP connection of its own (plc-comm-slmp), so its writes are serialised with the clients'
requests by the simulator, and reads back the writable ones to spot what clients wrote, through the
SLMP bridge's own reader (``SlmpPlc``), which plans them into one random read.
``demo_bridge`` gives the SLMP bridge that reads it, from the same slots, so the two cannot drift apart.

``bench_counterpart(N)`` is the bench's counterpart: ``bridges/slmp/counter.py``, D0..D<N-1>
changing every 100 ms, in a process of its own; it prints ``port <n>`` once listening.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import sys
from collections.abc import Mapping, Sequence
from typing import Self

from slmp import AsyncSlmpClient, SlmpError, SlmpTarget
from virtual_plc import Server  # type: ignore[import-untyped]  # no py.typed in virtual-plc 0.3.0

from bridges.sim.layout import GROUP, MACHINE_METRICS, Metric, metric_value
from bridges.sim.modbus_plant import ClientWrite
from bridges.sim.plant import PlantSnapshot
from bridges.sim.rates import poll_groups
from bridges.sim.word_plc import PlcSlot, plc_slots, slot_tags
from bridges.slmp import counter
from bridges.slmp.codec import decode, encode
from bridges.slmp.device import SlmpPlc
from model.bridges.common import EdgeNodeConfig
from model.bridges.slmp import SlmpBridgeConfig, SlmpDevice, SlmpTag, parse_address, words_of
from uns.errors import UnsError

__all__ = [
    "SLMP_NODE",
    "BenchCounterpart",
    "SlmpPlant",
    "bench_counterpart",
    "demo_bridge",
    "slmp_slots",
]

log = logging.getLogger(__name__)

SLMP_NODE = "slmp-utilities"
"""Edge node id of the SLMP bridge of the utilities area."""
_PROFILE = "melsec:iq-r"
_READ_BACK = "default"
"""The read-back reader's one poll group: the writable slots."""


def _bit_address(bit: int, writable: bool) -> str:
    """Flags as inputs X0.. (hexadecimal numbers), commands as internal relays M100.."""
    return f"M{bit}" if writable else f"X{bit:X}"


def slmp_slots(metrics: Sequence[Metric]) -> tuple[PlcSlot, ...]:
    """The address of every metric: values from D100, writable ones from D200, flags X0.., commands M100.."""
    return plc_slots(metrics, words=words_of, bit_address=_bit_address, first_bit={False: 0, True: 100})


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
        self._first_words = {  # parsed once: the D number each word slot starts at
            slot.metric.name: parse_address(slot.address, "iQ-R")[1] for slot in self.slots if slot.type != "bool"
        }
        self.server = Server(bind, port, profile="iQ-R")
        self._client: AsyncSlmpClient | None = None
        self._reader: SlmpPlc | None = None
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
            self._reader = _read_back(self.machine, self.endpoint, self.slots)
            if self._reader is not None:
                await self._reader.connect()
        except BaseException:
            await self.__aexit__()
            raise
        log.info("simulated iQ-R PLC of %s listening on %s:%d", self.machine, *self.endpoint)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            await reader.close()
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
                written[name] = bool(value)
                continue
            try:
                data = encode(slot.type, value, length=slot.length)
            except ValueError:  # a glitching model never crashes the PLC: out of range reads as 0
                data = encode(slot.type, 0, length=slot.length)
            words.update(enumerate(data, self._first_words[name]))
            if slot.metric.writable:  # only writable values are compared with what the PLC holds
                read_back = decode(slot.type, data)
                written[name] = read_back if isinstance(read_back, str) else float(read_back)
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
        """Values clients wrote into writable metrics since the last ``update``: one random read covers them all."""
        reader = self._reader
        if reader is None or not self._written:
            return []
        try:
            read = await reader.read(_READ_BACK)
        except UnsError as exc:
            log.warning("simulated PLC of %s: reading back writes failed: %s", self.machine, exc)
            return []
        writes = []
        for sample in read.samples:
            value = sample.value
            if not isinstance(value, bool | int | float) or sample.name not in self._written:
                continue  # an address the PLC refused reads as None
            value = value if isinstance(value, bool) else float(value)
            if value != self._written[sample.name]:
                writes.append(ClientWrite(self.machine, sample.name, value))
        return writes


def _read_back(machine: str, endpoint: tuple[str, int], slots: Sequence[PlcSlot]) -> SlmpPlc | None:
    """The bridge's own reader of the writable slots (no text ones), planned into one random read; None: none."""
    host, port = endpoint
    tags = [
        SlmpTag(name=slot.metric.name, address=slot.address, type=slot.type, length=slot.length, writable=True)
        for slot in slots
        if slot.metric.writable and slot.type != "string"
    ]
    if not tags:
        return None
    device = SlmpDevice(id=machine, host=host, port=port, series="iQ-R", tags=tags)
    return SlmpPlc(bridge=f"simulated {machine}", config=device)


def _same(slot: PlcSlot, value: float | int | bool | str, written: float | bool | str) -> bool:
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
    tags = slot_tags(slmp_slots(metrics), SlmpTag)
    device = SlmpDevice(
        id=machine,
        host=host,
        port=port,
        series="iQ-R",
        poll_groups=poll_groups(),
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
