"""One Modbus device's connection: the pymodbus client, timeouts, retries, and reconnect backoff with jitter."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.constants import ExcCodes
from pymodbus.exceptions import ModbusException
from pymodbus.pdu import ModbusPDU

from bridges.modbus.plan import ReadRequest, Table
from model.bridges.modbus import ModbusDevice
from uns.backoff import Backoff
from uns.errors import DeviceUnreachable, ReadError

__all__ = ["DeviceLink", "Refused", "endpoint_of", "exception_name"]

log = logging.getLogger(__name__)

_GATEWAY_CODES = frozenset({ExcCodes.GATEWAY_PATH_UNAVIABLE, ExcCodes.GATEWAY_NO_RESPONSE})
"""A gateway answering these says the device behind it is unreachable: that is the device down, not a bad tag."""

# pymodbus must neither reconnect nor retry on its own: the link decides both, so that a device that
# stops answering is reported once and reconnected with our backoff (pymodbus' own reconnect runs
# as an unowned background task).
_NO_AUTO_RECONNECT = 0.0


def endpoint_of(device: ModbusDevice) -> str:
    """``tcp 10.0.0.5:502 unit 1`` or ``rtu /dev/ttyUSB0 unit 7``: where a device is, for logs and errors."""
    if device.transport == "rtu" and device.serial is not None:
        return f"rtu {device.serial.port} unit {device.unit_id}"
    return f"tcp {device.host}:{device.port} unit {device.unit_id}"


def exception_name(code: int) -> str:
    """``ILLEGAL_ADDRESS (2)``: a Modbus exception code, spelled out."""
    try:
        return f"{ExcCodes(code).name} ({code})"
    except ValueError:
        return f"exception code {code}"


@dataclasses.dataclass(frozen=True, slots=True)
class Refused:
    """A device answered a request with a Modbus exception code."""

    code: int


def _client(device: ModbusDevice) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
    name = f"modbus.{device.id}"
    if device.transport == "rtu" and device.serial is not None:
        line = device.serial
        return AsyncModbusSerialClient(
            line.port,
            baudrate=line.baudrate,
            parity=line.parity,
            stopbits=line.stopbits,
            bytesize=line.bytesize,
            name=name,
            reconnect_delay=_NO_AUTO_RECONNECT,
            timeout=device.timeout_s,
            retries=0,
        )
    return AsyncModbusTcpClient(
        device.host,
        port=device.port,
        name=name,
        reconnect_delay=_NO_AUTO_RECONNECT,
        timeout=device.timeout_s,
        retries=0,
    )


class DeviceLink:
    """The connection to one device, shared by its poll groups and writes.

    Not connected until :meth:`connect`. A request that gets no answer is retried ``retries`` times;
    then :meth:`read` raises ``DeviceUnreachable``, the connection is closed, and the next
    :meth:`connect` waits a backoff (doubling from ``backoff_min_s`` to ``backoff_max_s``, times a
    random 0.5..1 so that many bridges do not reconnect in step).
    """

    def __init__(self, *, bridge: str, device: ModbusDevice, rng: random.Random | None = None) -> None:
        self.bridge = bridge
        self.device = device
        self.endpoint = endpoint_of(device)
        self._client = _client(device)
        self._backoff = Backoff(min_s=device.backoff_min_s, max_s=device.backoff_max_s, rng=rng)
        self._lock = asyncio.Lock()
        self._not_before = 0.0
        self._generation = 0
        self.down = False
        """True from a failure until a read succeeds again."""

    @property
    def connected(self) -> bool:
        """Whether the client holds an open connection."""
        return self._client.connected

    @property
    def generation(self) -> int:
        """Counts connections made; a failure seen on an older one has already been handled."""
        return self._generation

    def backoff_s(self, failures: int) -> float:
        """The delay before reconnect attempt number ``failures`` (1 = the first), with jitter."""
        return self._backoff.delay_s(failures)

    async def connect(self) -> None:
        """Connect if not connected, after the backoff that earlier failures earned.

        Raises:
            DeviceUnreachable: the connection (TCP connect or opening the serial port) failed.
        """
        async with self._lock:
            if self._client.connected:
                return
            delay = self._not_before - time.monotonic()
            if delay > 0:
                log.debug("modbus %s: reconnecting to %s in %.2f s", self.device.id, self.endpoint, delay)
                await asyncio.sleep(delay)
            if not await self._client.connect():
                self._failed()
                raise DeviceUnreachable(self.bridge, self.endpoint, f"device {self.device.id}: cannot connect")
            self._generation += 1
            log.info("modbus %s: connected to %s", self.device.id, self.endpoint)

    def fail(self, generation: int) -> bool:
        """Close after a failed request on connection ``generation``; True if this is news (not yet handled)."""
        if generation != self._generation or not self._client.connected:
            return False
        self._client.close()
        self._failed()
        return True

    def _failed(self) -> None:
        self._not_before = time.monotonic() + self._backoff.failed()

    def succeeded(self) -> None:
        """A request was answered: the device is up and the backoff starts over."""
        self._backoff.succeeded()
        self.down = False

    def close(self) -> None:
        """Close the connection (idempotent)."""
        self._client.close()

    async def read(self, request: ReadRequest) -> list[int] | Refused:
        """Read one request: register values, bits as 0/1, or the exception code the device answered.

        Raises:
            DeviceUnreachable: no answer after every retry; names the endpoint and address range.
        """
        unit = self.device.unit_id
        calls: dict[Table, Callable[..., Awaitable[ModbusPDU]]] = {
            "coil": self._client.read_coils,
            "discrete": self._client.read_discrete_inputs,
            "holding": self._client.read_holding_registers,
            "input": self._client.read_input_registers,
        }
        call = calls[request.table]
        response = await self._attempts(
            request.label, lambda: call(request.address, count=request.count, device_id=unit)
        )
        if response.isError():
            if response.exception_code in _GATEWAY_CODES:
                raise DeviceUnreachable(
                    self.bridge,
                    self.endpoint,
                    f"device {self.device.id}: {request.label}: gateway says {exception_name(response.exception_code)}",
                )
            return Refused(response.exception_code)
        if request.table in ("coil", "discrete"):
            return [int(bit) for bit in response.bits[: request.count]]
        if len(response.registers) != request.count:
            raise DeviceUnreachable(
                self.bridge,
                self.endpoint,
                f"{request.label}: answer has {len(response.registers)} registers, asked {request.count}",
            )
        return list(response.registers)

    async def write(self, table: Table, address: int, words: Sequence[int]) -> None:
        """Write coils (0/1) or holding registers, once (a write is not retried).

        Raises:
            DeviceUnreachable: not connected, or no answer in time.
            ReadError: the device refused with an exception code; names the address.
        """
        label = f"{table} {address}..{address + len(words) - 1}"
        if not self._client.connected:
            raise DeviceUnreachable(self.bridge, self.endpoint, f"{label}: device {self.device.id} is not connected")
        unit = self.device.unit_id
        if table == "coil":
            response = await self._attempts(
                label, lambda: self._client.write_coil(address, bool(words[0]), device_id=unit), tries=1
            )
        else:
            response = await self._attempts(
                label, lambda: self._client.write_registers(address, list(words), device_id=unit), tries=1
            )
        if response.isError():
            raise ReadError(
                self.bridge, self.endpoint, label, f"write refused: {exception_name(response.exception_code)}"
            )

    async def _attempts(
        self, label: str, call: Callable[[], Awaitable[ModbusPDU]], *, tries: int | None = None
    ) -> ModbusPDU:
        tries = self.device.retries + 1 if tries is None else tries
        last: BaseException | None = None
        for attempt in range(1, tries + 1):
            try:
                # one deadline per request, pymodbus's own (``timeout=timeout_s``, no retries of its own): a guard
                # of ours beside it would be a second timer on the loop for every read of an idle plant
                return await call()
            except (ModbusException, OSError, TimeoutError) as exc:
                last = exc
                log.debug("modbus %s: %s attempt %d/%d failed: %s", self.device.id, label, attempt, tries, exc)
        raise DeviceUnreachable(
            self.bridge,
            self.endpoint,
            f"device {self.device.id}: {label}: no answer after {tries} attempt(s) of {self.device.timeout_s:g} s "
            f"({type(last).__name__}: {last})",
        )
