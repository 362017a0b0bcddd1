"""The demo's ControlLogix boiler: our Logix-like EtherNet/IP server serving one machine, read by an EtherNet/IP bridge.

The controller holds one tag of a user-defined type per machine (``Boiler`` of ``Utility_UDT``: a
member per read-only metric, ``/`` spelled ``_``) and a program ``MainProgram`` with the writable
metrics (``Program:MainProgram.Setpoint_Temperature``, ``...Command_Run``), as a Logix project keeps
operator inputs in program scope. ``update`` writes the model's values; ``collect_writes`` reports
what clients changed in the program tags since. Run as a module it is the bench's counterpart:
``python -m bridges.sim.ethernetip_plant --tags 1000`` serves ``Bench[0..N-1]`` (DINT) changing
every 100 ms and prints ``port <n>``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import math
import struct
import sys
from collections.abc import Sequence
from typing import Self

from bridges.sim.ethernetip_server import LogixServer, SimTag, SimUdt, Value
from bridges.sim.layout import GROUP, MACHINE_METRICS, Metric, metric_value, utility_node
from bridges.sim.modbus_plant import ClientWrite
from bridges.sim.plant import PlantSnapshot
from bridges.sim.rates import poll_groups
from model.bridges.common import EdgeNodeConfig
from model.bridges.ethernetip import EthernetIpBridgeConfig, EthernetIpDevice, EthernetIpTag, LogixType

__all__ = [
    "PROGRAM",
    "BenchCounterpart",
    "EnipSlot",
    "EthernetIpPlant",
    "bench_counterpart",
    "demo_bridge",
    "enip_slots",
]

log = logging.getLogger(__name__)

PROGRAM = "MainProgram"
_UDT = "Utility_UDT"
_LOGIX: dict[str, LogixType] = {
    "Float": "REAL", "Double": "LREAL", "Int32": "DINT", "UInt32": "UDINT", "Int16": "INT", "UInt16": "UINT",
    "Int64": "LINT", "UInt64": "ULINT", "Int8": "SINT", "UInt8": "USINT", "Boolean": "BOOL", "String": "STRING",
}  # fmt: skip
_BITS = {"SINT": 8, "INT": 16, "DINT": 32, "LINT": 64, "USINT": 8, "UINT": 16, "UDINT": 32, "ULINT": 64}


@dataclasses.dataclass(frozen=True, slots=True)
class EnipSlot:
    """Where one metric lives in the controller."""

    metric: Metric
    address: str
    """``Boiler.Temperature`` (a UDT member) or ``Program:MainProgram.Command_Run``."""
    type: LogixType
    member: str


def enip_slots(machine: str, metrics: Sequence[Metric]) -> tuple[EnipSlot, ...]:
    """The controller's layout for a machine's metrics, in their order."""
    tag = machine.capitalize()
    slots = []
    for metric in metrics:
        try:
            logix = _LOGIX[metric.datatype]
        except KeyError:
            raise ValueError(f"metric {metric.name}: no Logix type for {metric.datatype}") from None
        member = metric.name.replace("/", "_")
        address = f"Program:{PROGRAM}.{member}" if metric.writable else f"{tag}.{member}"
        slots.append(EnipSlot(metric, address, logix, member))
    return tuple(slots)


def demo_bridge(endpoint: tuple[str, int], machine: str, metrics: Sequence[Metric]) -> EthernetIpBridgeConfig:
    """The EtherNet/IP bridge (edge node ``ethernetip-utilities``) reading a machine from its plant at ``endpoint``."""
    host, port = endpoint
    tags = [
        EthernetIpTag(
            name=slot.metric.name,
            address=slot.address,
            type=slot.type,
            unit=slot.metric.unit,
            poll=slot.metric.poll,
            writable=slot.metric.writable,
            deadband=slot.metric.deadband,
        )
        for slot in enip_slots(machine, metrics)
    ]
    device = EthernetIpDevice(id=machine, host=host, port=port, route=[(1, 0)], poll_groups=poll_groups(),
                              tags=tags)  # fmt: skip
    return EthernetIpBridgeConfig(
        name=utility_node(machine), edge=EdgeNodeConfig(group=GROUP, primary_host_id="uns-hub"), devices=[device]
    )


def _stored(logix: str, value: float | int | bool | str) -> Value:
    """The value as the controller holds it: REAL rounded to float32, integers clamped to their type."""
    if logix == "BOOL":
        return bool(value)
    if logix == "STRING":
        return str(value)
    number = float(value)
    if logix == "REAL":
        return struct.unpack("<f", struct.pack("<f", number))[0] if math.isfinite(number) else 0.0
    if logix == "LREAL":
        return number
    bits = _BITS[logix]
    low, high = (0, 2**bits - 1) if logix.startswith("U") else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    return int(min(max(round(number) if math.isfinite(number) else 0, low), high))


class EthernetIpPlant:
    """``async with EthernetIpPlant(bind=..., port=0) as plant:`` a ControlLogix (slot 0) serving one machine."""

    def __init__(self, *, bind: str = "127.0.0.1", port: int = 0, machine: str = "boiler") -> None:
        self.machine = machine
        self.slots = enip_slots(machine, MACHINE_METRICS[machine])
        udt = SimUdt(_UDT, tuple((s.member, s.type) for s in self.slots if not s.metric.writable))
        record: dict[str, Value] = {s.member: _stored(s.type, 0) for s in self.slots if not s.metric.writable}
        tags = [SimTag(machine.capitalize(), _UDT, record)]
        tags += [SimTag(s.address, s.type, _stored(s.type, 0)) for s in self.slots if s.metric.writable]
        self.server = LogixServer(tags=tags, udts=[udt], bind=bind, port=port, slot=0)
        self._written: dict[str, Value] = {}

    @property
    def endpoint(self) -> tuple[str, int]:
        """Host and port (the real port once entered)."""
        return self.server.endpoint

    async def __aenter__(self) -> Self:
        await self.server.__aenter__()
        log.info("EtherNet/IP plant %s listening on %s:%d", self.machine, *self.endpoint)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.server.__aexit__(*exc_info)

    async def update(self, snapshot: PlantSnapshot) -> None:
        """Write the machine's current values into the controller's tags."""
        machine = snapshot.machines[self.machine]
        record = self.server.tags[self.machine.capitalize()].value
        assert isinstance(record, dict)  # noqa: S101  (built as a dict above)
        written: dict[str, Value] = {}
        for slot in self.slots:
            value = _stored(slot.type, metric_value(machine, slot.metric.name))
            if slot.metric.writable:
                self.server.tags[slot.address].value = value
                written[slot.metric.name] = value
            else:
                record[slot.member] = value
        self._written = written

    async def collect_writes(self) -> list[ClientWrite]:
        """Values clients wrote into the program's tags since the last ``update``."""
        writes = []
        for slot in self.slots:
            if not slot.metric.writable or slot.metric.name not in self._written:
                continue
            value = self.server.tags[slot.address].value
            if value != self._written[slot.metric.name] and isinstance(value, bool | int | float):
                writes.append(ClientWrite(machine=self.machine, metric=slot.metric.name, value=value))
        return writes


@dataclasses.dataclass(frozen=True, slots=True)
class BenchCounterpart:
    """How a bench runs a Logix controller with ``tags`` changing DINTs in another process, and the bridge for it."""

    argv: tuple[str, ...]
    """Start it (``sys.executable`` first); it prints ``port <n>`` once listening."""
    tags: int

    def bridge(self, port: int, *, interval_s: float = 0.1, host: str = "127.0.0.1") -> EthernetIpBridgeConfig:
        """The bridge polling every element ``Bench[i]`` as its own tag at ``interval_s``."""
        device = EthernetIpDevice(
            id="bench",
            host=host,
            port=port,
            poll_groups={"default": interval_s},
            tags=[EthernetIpTag(name=f"Tag/{i:04d}", address=f"Bench[{i}]", type="DINT") for i in range(self.tags)],
        )
        return EthernetIpBridgeConfig(name="ethernetip-bench", edge=EdgeNodeConfig(group="bench"), devices=[device])


def bench_counterpart(tags: int) -> BenchCounterpart:
    """A Logix server subprocess whose ``Bench[0..tags-1]`` change every 100 ms, and the bridge that reads them."""
    return BenchCounterpart(argv=(sys.executable, "-m", "bridges.sim.ethernetip_plant", "--tags", str(tags)), tags=tags)


async def _bench_server(tags: int, port: int) -> None:
    values: list[int] = [0] * tags
    async with LogixServer(tags=[SimTag("Bench", "DINT", values, dims=tags)], port=port) as server:
        print(f"port {server.port}", flush=True)
        tick = 0
        while True:
            tick += 1
            for index in range(tags):
                values[index] = (tick + index) % 100_000
            await asyncio.sleep(0.1)


def main() -> None:
    """``python -m bridges.sim.ethernetip_plant --tags N [--port P]``: the bench's counterpart."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tags", type=int, default=1000, help="DINT elements of Bench[] that change every 100 ms")
    parser.add_argument("--port", type=int, default=0, help="TCP port (0: a free one, printed)")
    args = parser.parse_args()
    asyncio.run(_bench_server(args.tags, args.port))


if __name__ == "__main__":
    main()
