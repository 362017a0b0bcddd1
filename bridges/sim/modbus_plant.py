"""Simulated bottling PLCs: one Modbus TCP server per machine, registers following the model.

Each PLC serves its machine's register map from ``layout.modbus_slots`` as unit id 1: process
values in input registers, the part-done toggle as a discrete input, the speed setpoint in a
holding register and the run command in a coil (both writable by clients). Unused registers
inside a table's range read as 0, as on a real PLC; reads past the range get exception 2
(illegal data address). The server is ``modbus_server``'s, over four plain lists that the refresh
writes in place: it answers a request at a quarter of the CPU pymodbus's server took, and a refresh
no longer goes through a datastore (``bench/modbus_plc.py``).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import struct
from collections.abc import Mapping, Sequence
from typing import Self

from bridges.sim.layout import (
    MODBUS_MACHINES,
    ModbusEndpoint,
    ModbusSlot,
    Table,
    metric_value,
    modbus_order,
    modbus_slots,
)
from bridges.sim.modbus_server import ModbusServer
from bridges.sim.plant import PlantSnapshot
from model.bridges.modbus import RegisterType, WordOrder
from uns.errors import BridgeError

__all__ = ["ClientWrite", "ModbusPlant", "decode_registers", "encode_registers"]

log = logging.getLogger(__name__)

_CODES: Mapping[str, str] = {
    "int16": "h", "uint16": "H", "int32": "i", "uint32": "I", "int64": "q", "uint64": "Q",
    "float32": "f", "float64": "d",
}  # fmt: skip
# each type's value and its big-endian words, built once: every refresh encodes every slot
_VALUE: Mapping[str, struct.Struct] = {type_: struct.Struct(">" + code) for type_, code in _CODES.items()}
_WORDS: Mapping[str, struct.Struct] = {type_: struct.Struct(f">{v.size // 2}H") for type_, v in _VALUE.items()}
_INT_RANGE: Mapping[str, tuple[int, int]] = {
    type_: (0, 2 ** (8 * v.size) - 1)
    if type_.startswith("uint")
    else (-(2 ** (8 * v.size - 1)), 2 ** (8 * v.size - 1) - 1)
    for type_, v in _VALUE.items()
    if type_.startswith(("int", "uint"))
}
_TABLES: tuple[Table, ...] = ("coil", "discrete", "holding", "input")


def _order_words(words: list[int], order: WordOrder) -> list[int]:
    if order in ("BADC", "DCBA"):
        words = [((word & 0xFF) << 8) | (word >> 8) for word in words]
    if order in ("CDAB", "DCBA"):
        words = words[::-1]
    return words


def encode_registers(
    value: float | bool, type_: RegisterType, *, scale: float = 1.0, order: WordOrder = "ABCD"
) -> list[int]:
    """Registers holding ``value`` as ``type_`` (raw = value / scale), multi-register values in ``order``.

    Integer types round and clamp to their range, so a glitching model never crashes a PLC.
    ``CDAB`` reverses the word order (low word first), ``BADC`` swaps the bytes of each word,
    ``DCBA`` does both (so a single register is byte-swapped by BADC and DCBA only).
    """
    number = float(value) / scale
    limits = _INT_RANGE.get(type_)
    if limits is not None:
        number = min(max(round(number) if math.isfinite(number) else 0, limits[0]), limits[1])
    return _order_words(list(_WORDS[type_].unpack(_VALUE[type_].pack(number))), order)


def decode_registers(
    words: Sequence[int], type_: RegisterType, *, scale: float = 1.0, order: WordOrder = "ABCD"
) -> float:
    """The inverse of ``encode_registers``: the engineering value of ``words``."""
    (number,) = _VALUE[type_].unpack(_WORDS[type_].pack(*_order_words(list(words), order)))
    return float(number) * scale


@dataclasses.dataclass(frozen=True, slots=True)
class ClientWrite:
    """A client changed a writable metric of a simulated machine."""

    machine: str
    metric: str
    value: float | bool


class _Plc:
    """One machine's server, its tables, and the values last written into them."""

    def __init__(self, machine: str, bind: str, port: int) -> None:
        self.machine = machine
        self.bind = bind
        self.port = port
        self.slots = modbus_slots(machine)
        self.writable = tuple(slot for slot in self.slots if slot.metric.writable)
        self.order = modbus_order(machine)
        self.sizes = {table: _table_size(self.slots, table) for table in _TABLES}
        self.tables: dict[Table, list[int]] = {}
        self.written: dict[str, float | bool] = {}
        """The writable slots' values as last refreshed, by metric name."""
        self.server: ModbusServer | None = None

    async def start(self) -> None:
        self.tables = {table: [0] * size for table, size in self.sizes.items()}  # a PLC powers up with zeros
        server = ModbusServer(tables=self.tables, bind=self.bind, port=self.port)
        try:
            await server.start()
        except OSError as exc:
            raise BridgeError("sim", f"modbus://{self.bind}:{self.port}", f"PLC {self.machine}: {exc}") from exc
        self.port = server.port
        self.server = server
        self.written = {}

    async def stop(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            await server.stop()

    async def collect_writes(self) -> list[ClientWrite]:
        if self.server is None or not self.written:
            return []
        writes = []
        for slot in self.writable:
            raw = self.tables[slot.table][slot.address : slot.address + slot.size]
            value: float | bool
            if slot.type == "bool":
                value = bool(raw[0])
            else:
                value = decode_registers(raw, slot.type, scale=slot.scale, order=self.order)
            if value != self.written.get(slot.metric.name):
                writes.append(ClientWrite(self.machine, slot.metric.name, value))
        return writes

    async def update(self, snapshot: PlantSnapshot) -> None:
        if self.server is None:
            return
        machine = snapshot.machines[self.machine]
        images: dict[Table, list[int]] = {table: [0] * self.sizes[table] for table in _TABLES}
        written: dict[str, float | bool] = {}
        for slot in self.slots:
            value = metric_value(machine, slot.metric.name)
            if slot.type == "bool":
                images[slot.table][slot.address] = int(bool(value))
                if slot.metric.writable:
                    written[slot.metric.name] = bool(value)
                continue
            words = encode_registers(value, slot.type, scale=slot.scale, order=self.order)
            images[slot.table][slot.address : slot.address + len(words)] = words
            if slot.metric.writable:  # what a client reading it back decodes (float32 rounding), to spot its writes
                written[slot.metric.name] = decode_registers(words, slot.type, scale=slot.scale, order=self.order)
        for table, image in images.items():
            self.tables[table][:] = image  # in place: the server answers from these lists
        self.written = written


def _table_size(slots: Sequence[ModbusSlot], table: Table) -> int:
    return max((slot.address + slot.size for slot in slots if slot.table == table), default=0)


class ModbusPlant:
    """The bottling PLCs: one Modbus TCP server per machine.

    Args:
        bind: Address to listen on.
        first_port: Port of the first machine's PLC, the next ones count up; 0 = free ports.
        machines: Which machines to serve (default: every bottling machine).
    """

    def __init__(
        self, *, bind: str = "127.0.0.1", first_port: int = 0, machines: Sequence[str] = MODBUS_MACHINES
    ) -> None:
        self._plcs = {
            machine: _Plc(machine, bind, first_port + index if first_port else 0)
            for index, machine in enumerate(machines)
        }
        self._bind = bind

    @property
    def endpoints(self) -> Mapping[str, ModbusEndpoint]:
        """Machine id -> its PLC's address (real ports once entered)."""
        return {machine: ModbusEndpoint(host=self._bind, port=plc.port) for machine, plc in self._plcs.items()}

    async def __aenter__(self) -> Self:
        try:
            for plc in self._plcs.values():
                await plc.start()
        except BaseException:
            await self.__aexit__()
            raise
        log.info("simulated Modbus PLCs listening: %s", ", ".join(f"{m}={e}" for m, e in self.endpoints.items()))
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for plc in self._plcs.values():
            await plc.stop()

    async def update(self, snapshot: PlantSnapshot) -> None:
        """Write every machine's values from the model into its registers."""
        for plc in self._plcs.values():
            await plc.update(snapshot)

    async def collect_writes(self) -> list[ClientWrite]:
        """Values clients wrote into setpoint registers or command coils since the last ``update``."""
        writes: list[ClientWrite] = []
        for plc in self._plcs.values():
            writes.extend(await plc.collect_writes())
        return writes

    async def stop_plc(self, machine: str) -> None:
        """Take one PLC off the network (its connections drop, the port refuses), for fault tests."""
        await self._plc(machine).stop()
        log.info("simulated PLC %s stopped", machine)

    async def start_plc(self, machine: str) -> None:
        """Bring a stopped PLC back on the same port; its registers fill on the next ``update``."""
        plc = self._plc(machine)
        if plc.server is None:
            await plc.start()
            log.info("simulated PLC %s back on port %d", machine, plc.port)

    def _plc(self, machine: str) -> _Plc:
        try:
            return self._plcs[machine]
        except KeyError:
            raise ValueError(f"no simulated PLC {machine!r}; known: {', '.join(self._plcs)}") from None
