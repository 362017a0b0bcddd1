"""ModbusSource: polls Modbus TCP and RTU devices by poll group, and writes holding registers and coils."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncGenerator, Sequence
from typing import Self

from bridges.modbus.codec import RegisterCodec
from bridges.modbus.link import DeviceLink, Refused, exception_name
from bridges.modbus.plan import ReadRequest, plan_device, split
from bridges.source import DeviceDown, Sample, Samples, SourceEvent, TagSpec
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


@dataclasses.dataclass(frozen=True, slots=True)
class _Crash:
    """A poll task died of a bug: the stream re-raises it instead of going quiet."""

    error: Exception


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
        queue: asyncio.Queue[SourceEvent | _Crash] = asyncio.Queue(_QUEUE_SIZE)
        # Plain tasks, cancelled in `finally`, rather than a TaskGroup: a TaskGroup held across `yield`
        # would cancel whatever the consumer happens to await when a poller fails.
        tasks: list[asyncio.Task[None]] = []
        try:
            for device_id, plans in self._plans.items():
                link = self._links[device_id]
                for group, requests in plans.items():
                    interval = link.device.poll_groups[group]
                    tasks.append(
                        asyncio.create_task(
                            self._guarded(link, group, interval, list(requests), queue),
                            name=f"modbus.{self.name}.{device_id}.{group}",
                        )
                    )
            while True:
                item = await queue.get()
                if isinstance(item, _Crash):
                    raise item.error
                yield item
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _guarded(
        self,
        link: DeviceLink,
        group: str,
        interval: float,
        requests: list[ReadRequest],
        queue: asyncio.Queue[SourceEvent | _Crash],
    ) -> None:
        try:
            await self._poll(link, group, interval, requests, queue)
        except Exception as exc:
            log.exception("modbus %s: poll group %s of device %s crashed", self.name, group, link.device.id)
            await queue.put(_Crash(exc))

    async def _poll(
        self,
        link: DeviceLink,
        group: str,
        interval: float,
        requests: list[ReadRequest],
        queue: asyncio.Queue[SourceEvent | _Crash],
    ) -> None:
        device = link.device.id
        next_at = time.monotonic()
        me = asyncio.current_task()
        while True:
            if me is not None and me.cancelling():
                # Python 3.11's asyncio.wait_for (inside pymodbus) swallows a cancel that races a
                # response; without this check the poll loop would outlive its source forever
                raise asyncio.CancelledError
            generation = link.generation
            try:
                if not link.connected:
                    await link.connect()
                    generation = link.generation
                    next_at = time.monotonic()
                samples = await self._read_group(link, requests)
            except DeviceUnreachable as exc:
                link.fail(generation)
                if not link.down:
                    link.down = True
                    log.warning("modbus %s: device %s down: %s", self.name, device, exc)
                    await queue.put(DeviceDown(device=device, reason=str(exc)))
                continue
            link.succeeded()
            await queue.put(Samples(device=device, samples=samples))
            log.debug("modbus %s: %s/%s read %d tags", self.name, device, group, len(samples))
            next_at += interval
            now = time.monotonic()
            if next_at < now:
                next_at = now  # a slow round: start the next one now rather than bursting to catch up
            await asyncio.sleep(next_at - now)

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
