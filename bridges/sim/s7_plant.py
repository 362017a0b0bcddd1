"""The demo's S7-1500 air compressor: python-snap7's ``Server`` serving the machine in DB1, read by an S7 bridge.

DB1 is a standard (not optimized) data block laid out by S7 rules from the machine's metric list:
each value at the next even byte (a BOOL alone in its byte, bit 0), REAL for Float, DINT for Int32,
UDINT for UInt32, LREAL for Double. ``update`` writes the model's values; ``collect_writes`` reports
what clients changed in the writable slots since. snap7's pure-Python server writes a bit write's
byte whole (it drops the bit number), so the plant's server applies bit writes to their bit only,
as a real CPU does.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import sys
from collections.abc import Sequence
from typing import Any, Self

from snap7.server import Server
from snap7.type import SrvArea

from bridges.s7 import counter
from bridges.s7.codec import decode, encode
from bridges.sim.layout import GROUP, MACHINE_METRICS, Metric, metric_value, utility_node
from bridges.sim.modbus_plant import ClientWrite
from bridges.sim.plant import PlantSnapshot
from bridges.sim.rates import poll_groups
from model.bridges.common import EdgeNodeConfig
from model.bridges.s7 import S7BridgeConfig, S7Device, S7Tag
from model.bridges.s7_address import S7Address, parse_address

__all__ = ["BenchCounterpart", "S7Plant", "S7Slot", "bench_counterpart", "demo_bridge", "s7_slots"]

log = logging.getLogger(__name__)

DB_NUMBER = 1
_S7_TYPE = {"Float": ("REAL", "D"), "Double": ("LREAL", "B"), "Int32": ("DINT", "D"), "UInt32": ("UDINT", "D"),
            "Int16": ("INT", "W"), "UInt16": ("WORD", "W"), "Boolean": ("BOOL", "X")}  # fmt: skip
_RANGES = {"DINT": (-(2**31), 2**31 - 1), "UDINT": (0, 2**32 - 1), "INT": (-(2**15), 2**15 - 1), "WORD": (0, 2**16 - 1)}


@dataclasses.dataclass(frozen=True, slots=True)
class S7Slot:
    """Where one metric sits in DB1."""

    metric: Metric
    address: S7Address


def s7_slots(metrics: Sequence[Metric]) -> tuple[S7Slot, ...]:
    """DB1's layout for a machine's metrics, in their order."""
    slots: list[S7Slot] = []
    offset = 0
    for metric in metrics:
        try:
            s7type, width = _S7_TYPE[metric.datatype]
        except KeyError:
            raise ValueError(f"metric {metric.name}: no S7 type for {metric.datatype}") from None
        text = f"DB{DB_NUMBER}.DB{width}{offset}" + (".0" if width == "X" else "")
        address = parse_address(text, s7type)
        slots.append(S7Slot(metric, address))
        offset += address.size + address.size % 2
    return tuple(slots)


def demo_bridge(endpoint: tuple[str, int], machine: str, metrics: Sequence[Metric]) -> S7BridgeConfig:
    """The S7 bridge (edge node ``s7-utilities``) reading a machine from its plant at ``endpoint``."""
    host, port = endpoint
    tags = [
        S7Tag(
            name=slot.metric.name,
            address=slot.address.text,
            type=slot.address.type.name,  # type: ignore[arg-type]  # one of _S7_TYPE's names
            unit=slot.metric.unit,
            poll=slot.metric.poll,
            writable=slot.metric.writable,
            deadband=slot.metric.deadband,
        )
        for slot in s7_slots(metrics)
    ]
    device = S7Device(id=machine, host=host, port=port, cpu="S7-1500", rack=0, slot=1,
                      poll_groups=poll_groups(), tags=tags)  # fmt: skip
    node = utility_node(machine)
    return S7BridgeConfig(name=node, edge=EdgeNodeConfig(group=GROUP, primary_host_id="uns-hub"), devices=[device])


class _BitExactServer(Server):
    """snap7's server, but a bit write (transport size BIT) changes only its bit."""

    def _handle_write_area(self, request: dict[str, Any], client_address: tuple[str, int]) -> bytes:
        raw = request.get("raw_parameters", b"")
        data = (request.get("data") or {}).get("data", b"")
        if len(raw) >= 14 and raw[5] == 0x01 and data:  # item 1's transport size: BIT
            db, area = int.from_bytes(raw[8:10], "big"), raw[10]
            address = int.from_bytes(raw[11:14], "big")
            key = next((k for k in self.memory_areas if k == (area, db)), None)
            if key is not None and address // 8 < len(self.memory_areas[key]):
                with self.area_locks[key]:
                    current = self.memory_areas[key][address // 8]
                mask = 1 << (address % 8)
                request["data"]["data"] = bytes([current | mask if data[0] & 1 else current & ~mask])
        result: bytes = super()._handle_write_area(request, client_address)
        return result


class S7Plant:
    """``async with S7Plant(bind=..., port=0) as plant:`` an S7-1500 serving one machine in DB1."""

    def __init__(self, *, bind: str = "127.0.0.1", port: int = 0, machine: str = "compressor") -> None:
        self.machine = machine
        self._bind, self._port = bind, port
        self.slots = s7_slots(MACHINE_METRICS[machine])
        last = self.slots[-1].address
        self._memory = bytearray(last.start + last.size + 2)
        self._server: _BitExactServer | None = None
        self._written: dict[str, float | bool] = {}

    @property
    def endpoint(self) -> tuple[str, int]:
        """Host and port (the real port once entered)."""
        return self._bind, self._port

    async def __aenter__(self) -> Self:
        server = _BitExactServer(log=False)
        server.register_area(SrvArea.DB, DB_NUMBER, self._memory)
        server.host = self._bind
        await asyncio.to_thread(server.start, self._port)
        if server.server_socket is not None:
            self._port = server.server_socket.getsockname()[1]
        self._server = server
        log.info("S7 plant %s listening on %s:%d (DB%d, %d bytes)", self.machine, self._bind, self._port,
                 DB_NUMBER, len(self._memory))  # fmt: skip
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        server, self._server = self._server, None
        if server is not None:
            await asyncio.to_thread(server.stop)

    async def update(self, snapshot: PlantSnapshot) -> None:
        """Write the machine's current values into DB1."""
        if self._server is None:
            return
        machine = snapshot.machines[self.machine]
        image = bytearray(len(self._memory))
        written: dict[str, float | bool] = {}
        for slot in self.slots:
            value = _fit(slot.address, metric_value(machine, slot.metric.name))
            offset, data = encode(slot.address, value)
            start = slot.address.start + offset
            image[start : start + len(data)] = data
        for slot in self.slots:
            if slot.metric.writable:
                read_back = decode(
                    slot.address, bytes(image[slot.address.start : slot.address.start + slot.address.size])
                )
                if isinstance(read_back, bool | int | float):
                    written[slot.metric.name] = read_back
        with self._server.area_locks[next(iter(self._server.area_locks))]:
            self._memory[:] = image
        self._written = written

    async def collect_writes(self) -> list[ClientWrite]:
        """Values clients wrote into writable slots since the last ``update``."""
        if self._server is None or not self._written:
            return []
        with self._server.area_locks[next(iter(self._server.area_locks))]:
            memory = bytes(self._memory)
        writes: list[ClientWrite] = []
        for slot in self.slots:
            if not slot.metric.writable:
                continue
            address = slot.address
            value = decode(address, memory[address.start : address.start + address.size])
            if isinstance(value, bool | int | float) and value != self._written.get(slot.metric.name):
                writes.append(ClientWrite(machine=self.machine, metric=slot.metric.name, value=value))
        return writes


def _fit(address: S7Address, value: float | int | bool) -> float | int | bool:
    """Integers rounded and clamped to their S7 type, so a glitching model never crashes the PLC."""
    bounds = _RANGES.get(address.type.name)
    if bounds is None:
        return value
    number = float(value)
    return int(min(max(round(number) if math.isfinite(number) else 0, bounds[0]), bounds[1]))


@dataclasses.dataclass(frozen=True, slots=True)
class BenchCounterpart:
    """How a bench runs an S7 PLC with ``tags`` changing INTs in another process, and the bridge reading it."""

    argv: tuple[str, ...]
    """Start it (``sys.executable`` first); it prints ``port <n>`` once listening."""
    tags: int

    def bridge(self, port: int, *, interval_s: float = 0.1, host: str = "127.0.0.1") -> S7BridgeConfig:
        """The bridge polling every tag (DB1.DBW0, DBW2, ..., one INT each) at ``interval_s``."""
        tags = [S7Tag(name=f"Tag/{i:04d}", address=f"DB1.DBW{2 * i}", type="INT") for i in range(self.tags)]
        device = S7Device(id="bench", host=host, port=port, poll_groups={"default": interval_s}, tags=tags)
        return S7BridgeConfig(name="s7-bench", edge=EdgeNodeConfig(group="bench"), devices=[device])


def bench_counterpart(tags: int) -> BenchCounterpart:
    """A snap7 Server subprocess whose DB1 INTs 0..tags-1 change every 100 ms, and the bridge config reading them."""
    # run by path: it imports only snap7, so it starts fast on a loaded box
    return BenchCounterpart(argv=(sys.executable, counter.__file__, "--words", str(tags)), tags=tags)
