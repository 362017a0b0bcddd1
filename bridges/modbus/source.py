"""ModbusSource: polls Modbus TCP and RTU devices by poll group, and writes holding registers and coils."""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncGenerator, Sequence
from typing import Self

from bridges.modbus.codec import RegisterCodec
from bridges.modbus.link import DeviceLink, Refused, exception_name
from bridges.modbus.plan import ReadRequest, plan_device, split
from bridges.source import DeviceDown, PollClock, Sample, Samples, SourceEvent, SourceTasks, TagSpec, poll_rounds
from model.bridges.modbus import ModbusBridgeConfig, ModbusDevice, ModbusRegister
from model.envelope import Quality
from uns.clock import now_ms
from uns.errors import BridgeError, DeviceUnreachable
from uns.logs import RateLimitedLog
from uns.sparkplug import DataType, MetricValue

__all__ = ["ModbusSource", "datatype_of"]

log = logging.getLogger(__name__)

_WARN_EVERY_S = 60.0
"""A refused read is logged at most this often per device, address range and exception code."""
_QUEUE_SIZE = 256
"""Events waiting for the consumer; beyond it the pollers wait (back-pressure, nothing dropped)."""

_DATATYPES: dict[str, DataType] = {
    "bool": DataType.Boolean,
    "int16": DataType.Int16,
    "uint16": DataType.UInt16,
    "int32": DataType.Int32,
    "uint32": DataType.UInt32,
    "int64": DataType.Int64,
    "uint64": DataType.UInt64,
    "float32": DataType.Float,
    "float64": DataType.Double,
    "string": DataType.String,
}


def datatype_of(register: ModbusRegister) -> DataType:
    """The Sparkplug datatype a register is published as: its type's, or Double once scaled."""
    if register.scaled and register.type not in ("bool", "string"):
        return DataType.Double
    return _DATATYPES[register.type]


class ModbusSource:
    """Every device of one Modbus bridge: its tags, its polling, and writes.

    ``events()`` runs one task per device and poll group (named ``modbus.<bridge>.<device>.<group>``)
    that reads the group's coalesced requests every interval and yields one ``Samples`` per round.
    A device that answers no request within its timeout and retries yields one ``DeviceDown`` naming
    its endpoint and the error, and is reconnected with exponential backoff and jitter while the
    other devices go on. A request the device refuses with an exception code gives its tags quality
    ``bad`` and a rate-limited WARNING, without taking the device down; a coalesced request refused
    so is read tag by tag from then on, so one bad address never hides its neighbours.
    """

    def __init__(self, *, config: ModbusBridgeConfig) -> None:
        self.name = config.name
        self._config = config
        self._devices: dict[str, ModbusDevice] = {device.id: device for device in config.devices}
        self._registers: dict[str, dict[str, ModbusRegister]] = {
            device.id: {register.name: register for register in device.registers} for device in config.devices
        }
        self._codecs: dict[str, dict[str, RegisterCodec]] = {
            device.id: {
                register.name: RegisterCodec(
                    kind=register.type,
                    order=register.order or device.order,
                    length=register.length,
                    scale=register.scale,
                    offset=register.offset,
                    decimals=register.decimals,
                )
                for register in device.registers
            }
            for device in config.devices
        }
        self._plans = {device.id: plan_device(device) for device in config.devices}
        self._links: dict[str, DeviceLink] = {}
        self._refusals = RateLimitedLog(log, interval_s=_WARN_EVERY_S)

    async def __aenter__(self) -> Self:
        """Create each device's client; connections open on first use (a device down at start is not an error)."""
        self._links = {device.id: DeviceLink(bridge=self.name, device=device) for device in self._config.devices}
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Close every connection."""
        for link in self._links.values():
            link.close()
        self._links = {}

    def tags(self) -> Sequence[TagSpec]:
        """Every register of every device, in config order."""
        return [
            TagSpec(
                device=device.id,
                name=register.name,
                datatype=datatype_of(register),
                unit=register.unit,
                writable=register.writable,
                deadband=register.deadband,
                description=f"{register.table} {register.address} {register.type}"
                + ("" if register.type in ("bool", "uint16", "int16") else f" {register.order or device.order}"),
            )
            for device in self._config.devices
            for register in device.registers
        ]

    async def events(self) -> AsyncGenerator[SourceEvent, None]:
        """Poll every device's groups until cancelled; yields ``Samples`` per group read and ``DeviceDown``."""
        if not self._links:
            raise RuntimeError(f"modbus bridge {self.name}: enter the source (async with) before events()")
        tasks: SourceTasks[SourceEvent] = SourceTasks(f"modbus.{self.name}", maxsize=_QUEUE_SIZE)
        try:
            for device_id, plans in self._plans.items():
                link = self._links[device_id]
                for group, requests in plans.items():
                    read_round = functools.partial(self._round, link, group, list(requests), tasks)
                    tasks.start(poll_rounds(link.device.poll_groups[group], read_round), f"{device_id}.{group}")
            while True:
                yield await tasks.get()
        finally:
            await tasks.stop()

    async def _round(
        self,
        link: DeviceLink,
        group: str,
        requests: list[ReadRequest],
        tasks: SourceTasks[SourceEvent],
        clock: PollClock,
    ) -> bool:
        """One read of a poll group; False when the device is unreachable (the link backs off before it connects)."""
        device = link.device.id
        generation = link.generation
        try:
            if not link.connected:
                await link.connect()
                generation = link.generation
                clock.restart()
            samples = await self._read_group(link, requests)
        except DeviceUnreachable as exc:
            link.fail(generation)
            if not link.down:
                link.down = True
                log.warning("modbus %s: device %s down: %s", self.name, device, exc)
                await tasks.put(DeviceDown(device=device, reason=str(exc)))
            return False
        link.succeeded()
        await tasks.put(Samples(device=device, samples=samples))
        log.debug("modbus %s: %s/%s read %d tags", self.name, device, group, len(samples))
        return True

    async def _read_group(self, link: DeviceLink, requests: list[ReadRequest]) -> list[Sample]:
        samples: list[Sample] = []
        index = 0
        while index < len(requests):
            request = requests[index]
            result = await link.read(request)
            if isinstance(result, Refused) and len(request.spans) > 1:
                parts = split(request)
                log.warning(
                    "modbus %s: device %s refused %s with %s; reading its %d tags one by one from now on",
                    self.name, link.device.id, request.label, exception_name(result.code), len(parts),
                )  # fmt: skip
                requests[index : index + 1] = parts
                continue
            samples.extend(self._decode(link, request, result))
            index += 1
        return samples

    def _decode(self, link: DeviceLink, request: ReadRequest, result: list[int] | Refused) -> list[Sample]:
        device = link.device.id
        now = now_ms()
        if isinstance(result, Refused):
            self._refusals.warning(
                (device, request.label, result.code),
                "modbus %s: device %s (%s) refused %s: %s; its tags %s are bad",
                self.name, device, link.endpoint, request.label, exception_name(result.code),
                ", ".join(span.name for span in request.spans),
            )  # fmt: skip
            return [Sample(name=span.name, value=None, timestamp_ms=now, quality=Quality.bad) for span in request.spans]
        codecs = self._codecs[device]
        return [
            Sample(name=span.name, value=codecs[span.name].decode(result[start:end]), timestamp_ms=now)
            for span, start, end in request.slices()
        ]

    async def write(self, device: str, name: str, value: MetricValue) -> None:
        """Encode ``value`` and write it to the tag's holding registers or coil.

        Raises:
            BridgeError: unknown device or tag, a tag that is not writable, or a value that does not
                fit the tag's type; names the device, tag and address.
            DeviceUnreachable: the device is down or does not answer.
            ReadError: the device refused the write with an exception code.
        """
        link = self._links.get(device)
        register = self._registers.get(device, {}).get(name)
        if link is None:
            raise BridgeError(self.name, "modbus", f"write: no device {device!r}")
        if register is None:
            raise BridgeError(self.name, link.endpoint, f"write: device {device!r} has no tag {name!r}")
        where = f"device {device}: {name} ({register.table} {register.address})"
        if not register.writable:
            raise BridgeError(self.name, link.endpoint, f"{where} is not writable")
        try:
            words = self._codecs[device][name].encode(value)
        except ValueError as exc:
            raise BridgeError(self.name, link.endpoint, f"{where}: cannot write {value!r}: {exc}") from exc
        if link.down:
            raise DeviceUnreachable(self.name, link.endpoint, f"{where}: device is down")
        if not link.connected:
            await link.connect()
        await link.write(register.table, register.address, words)
        log.info("modbus %s: wrote %r to %s", self.name, value, where)
