"""Real pymodbus servers for the Modbus bridge tests: TCP on free loopback ports, RTU over a pty pair."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tty
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Self

from pymodbus.constants import ExcCodes
from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from model.bridges.common import EdgeNodeConfig
from model.bridges.modbus import ModbusBridgeConfig, ModbusDevice

__all__ = ["PtyPair", "Requests", "TcpServer", "bridge_config", "rtu_server", "sim_device"]

Requests = list[tuple[int, int, int]]
"""What a server was asked: (function code, address, count) per request it served."""

_SPARE = 64000  # an address no test uses: pymodbus needs at least one block in every table


def _blocks(table: Mapping[int, Sequence[int]] | None, *, bits: bool) -> list[SimData]:
    if not table:
        return [
            SimData(
                _SPARE, values=[False] * 16 if bits else [0], datatype=DataType.BITS if bits else DataType.REGISTERS
            )
        ]
    if bits:
        return [SimData(a, values=[bool(v) for v in vs], datatype=DataType.BITS) for a, vs in table.items()]
    return [SimData(a, values=list(vs), datatype=DataType.REGISTERS) for a, vs in table.items()]


def sim_device(
    unit: int = 1,
    *,
    coils: Mapping[int, Sequence[int]] | None = None,
    discrete: Mapping[int, Sequence[int]] | None = None,
    holding: Mapping[int, Sequence[int]] | None = None,
    input_: Mapping[int, Sequence[int]] | None = None,
    requests: Requests | None = None,
    refuse: ExcCodes | None = None,
) -> SimDevice:
    """A device with four separate tables; each mapping is start address → values. Addresses outside them
    answer ILLEGAL_ADDRESS. ``requests`` records every request the device serves; ``refuse`` answers every
    valid request with that exception code."""

    async def record(
        fc: int, _start: int, address: int, count: int, _regs: list[int], _values: list[int] | list[bool] | None
    ) -> ExcCodes | None:
        if requests is not None:
            requests.append((fc, address, count))
        return refuse

    return SimDevice(
        id=unit,
        simdata=(
            _blocks(coils, bits=True),
            _blocks(discrete, bits=True),
            _blocks(holding, bits=False),
            _blocks(input_, bits=False),
        ),
        action=record,
    )


class TcpServer:
    """A pymodbus TCP server on 127.0.0.1; port 0 picks a free one. ``stop()`` and ``start()`` keep the port."""

    def __init__(self, devices: SimDevice | list[SimDevice], *, port: int = 0) -> None:
        self.devices = devices
        self.port = port
        self._server: ModbusTcpServer | None = None

    async def start(self) -> None:
        server = ModbusTcpServer(self.devices, address=("127.0.0.1", self.port))
        await server.serve_forever(background=True)
        self._server = server
        listener = server.transport
        assert isinstance(listener, asyncio.Server)
        self.port = int(listener.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.shutdown()
            self._server = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


class PtyPair:
    """A virtual null-modem cable: two pseudo-terminals whose masters this relay joins (what socat does).

    ``a`` and ``b`` are device paths pyserial opens like any serial port.
    """

    def __init__(self) -> None:
        self._fds: list[int] = []
        self.a = self.b = ""
        self._masters: tuple[int, int] = (-1, -1)

    def __enter__(self) -> Self:
        master_a, slave_a = os.openpty()
        master_b, slave_b = os.openpty()
        self._fds = [master_a, slave_a, master_b, slave_b]
        for fd in (slave_a, slave_b):
            tty.setraw(fd)  # no echo, no line discipline: bytes pass unchanged
        for fd in (master_a, master_b):
            os.set_blocking(fd, False)
        self.a, self.b = os.ttyname(slave_a), os.ttyname(slave_b)
        self._masters = (master_a, master_b)
        loop = asyncio.get_running_loop()
        loop.add_reader(master_a, self._copy, master_a, master_b)
        loop.add_reader(master_b, self._copy, master_b, master_a)
        return self

    @staticmethod
    def _copy(src: int, dst: int) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(dst, os.read(src, 4096))

    def __exit__(self, *exc: object) -> None:
        loop = asyncio.get_running_loop()
        for fd in self._masters:
            loop.remove_reader(fd)
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)


@contextlib.asynccontextmanager
async def rtu_server(
    devices: SimDevice | list[SimDevice], port: str, baudrate: int = 19200
) -> AsyncIterator[ModbusSerialServer]:
    """A pymodbus RTU server on a serial device path."""
    server = ModbusSerialServer(devices, framer=FramerType.RTU, port=port, baudrate=baudrate)
    await server.serve_forever(background=True)
    try:
        yield server
    finally:
        await server.shutdown()


def bridge_config(*devices: ModbusDevice | dict[str, object], name: str = "plc") -> ModbusBridgeConfig:
    """A Modbus bridge config around the given devices."""
    return ModbusBridgeConfig.model_validate(
        {"name": name, "edge": EdgeNodeConfig(group="test"), "devices": list(devices)}
    )
