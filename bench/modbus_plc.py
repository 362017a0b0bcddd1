"""Benchmark: CPU per request of a simulated bottling PLC, pymodbus's server against ours, and of the client side.

One filler PLC (its register map and values from the demo's model) is read with the demo's plan: the
fast group's reads five times, then the slow group's, over and over, each read awaited before the
next, as the hub's Modbus bridge does. Two ways, each with pymodbus's ``ModbusTcpServer`` over the
simulator datastore (the demo's PLC before) and ``bridges.sim.modbus_server`` (after), taking turns:

- ``one loop``: server and client on one event loop, as in the hub; the process' CPU per request.
- ``split``: the server on an event loop of its own in a second thread, so each side's CPU is its
  thread's (``pthread_getcpuclockid``); the client is our ``DeviceLink`` (pymodbus client), and also a
  bare asyncio protocol sending the same frames, the least a client can do, for the client side's share.

Also the part of the plant's refresh (once a second per PLC) that changed with the server: writing
the four table images into the server and reading the writable slots back (``update`` and
``collect_writes``), through pymodbus's ``async_setValues``/``async_getValues`` before, list slices now.

Prints medians over the repetitions, in microseconds of CPU per request, and the box's load.

    uv run python -m bench.modbus_plc [--requests 3000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import struct
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from concurrent.futures import Future

from bridges.modbus.link import DeviceLink
from bridges.modbus.plan import ReadRequest, plan_device
from bridges.sim.demo import demo_bridges
from bridges.sim.layout import ModbusEndpoint, SimEndpoints
from bridges.sim.modbus_plant import ModbusPlant
from bridges.sim.plant import PlantModel
from model.bridges import ModbusBridgeConfig, ModbusDevice
from model.bridges.modbus import Table

_MACHINE = "filler"
_FUNCTION: Mapping[Table, int] = {"coil": 1, "discrete": 2, "holding": 3, "input": 4}
Serve = Callable[[Mapping[Table, list[int]]], contextlib.AbstractAsyncContextManager[int]]


async def _filler_tables() -> dict[Table, list[int]]:
    """The filler PLC's four tables after one refresh from a model run for 90 s."""
    model = PlantModel(seed=42)
    model.advance(90_000)
    async with ModbusPlant(machines=(_MACHINE,)) as plant:
        await plant.update(model.snapshot())
        return {table: list(values) for table, values in plant._plcs[_MACHINE].tables.items()}


@contextlib.asynccontextmanager
async def _pymodbus(tables: Mapping[Table, list[int]]) -> AsyncIterator[int]:
    """The PLC as it was: pymodbus's TCP server over SimDevice/SimData blocks (the old ``_Plc.device()``)."""
    from pymodbus.server import ModbusTcpServer
    from pymodbus.simulator import DataType, SimData, SimDevice

    blocks: list[list[SimData]] = []
    for table in ("coil", "discrete", "holding", "input"):
        values = tables[table]
        if table in ("coil", "discrete"):
            blocks.append([SimData(address=0, values=[bool(v) for v in values], datatype=DataType.BITS)])
        else:
            blocks.append([SimData(address=0, values=list(values), datatype=DataType.REGISTERS)])
    server = ModbusTcpServer(
        SimDevice(id=1, simdata=(blocks[0], blocks[1], blocks[2], blocks[3])), address=("127.0.0.1", 0)
    )
    await server.serve_forever(background=True)
    listener = server.transport
    assert isinstance(listener, asyncio.Server)
    try:
        yield int(listener.sockets[0].getsockname()[1])
    finally:
        await server.shutdown()


@contextlib.asynccontextmanager
async def _ours(tables: Mapping[Table, list[int]]) -> AsyncIterator[int]:
    from bridges.sim.modbus_server import ModbusServer

    async with ModbusServer(tables={t: list(v) for t, v in tables.items()}) as server:
        yield server.port


_SERVERS: dict[str, Serve] = {"pymodbus": _pymodbus, "ours": _ours}


def _device(port: int) -> ModbusDevice:
    endpoints = SimEndpoints(modbus={_MACHINE: ModbusEndpoint(host="127.0.0.1", port=port)}, opcua="opc.tcp://x:1/")
    bridge = demo_bridges(endpoints)[0]
    assert isinstance(bridge, ModbusBridgeConfig)
    return bridge.devices[0]


def _schedule(device: ModbusDevice) -> list[ReadRequest]:
    """The demo's mix: the fast group (1 s) five times for each slow group (5 s) read."""
    plans = plan_device(device)
    return plans["fast"] * 5 + plans["slow"]


class _RawClient(asyncio.Protocol):
    """The least a client does: send a prebuilt frame, wait for as many bytes as the answer has."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.waiting: asyncio.Future[bytes] | None = None
        self.buffer = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) >= 6 and len(self.buffer) >= 6 + int.from_bytes(self.buffer[4:6], "big"):
            answer, self.buffer = bytes(self.buffer), bytearray()
            if self.waiting is not None and not self.waiting.done():
                self.waiting.set_result(answer)


async def _raw_reads(port: int, schedule: list[ReadRequest]) -> Callable[[int], Awaitable[None]]:
    loop = asyncio.get_running_loop()
    _transport, client = await loop.create_connection(_RawClient, "127.0.0.1", port)
    frames = [
        struct.pack(">HHHBBHH", index, 0, 6, 1, _FUNCTION[r.table], r.address, r.count)
        for index, r in enumerate(schedule)
    ]

    async def run(count: int) -> None:
        for index in range(count):
            client.waiting = loop.create_future()
            assert client.transport is not None
            client.transport.write(frames[index % len(frames)])
            await client.waiting

    return run


async def _link_reads(port: int, schedule: list[ReadRequest]) -> Callable[[int], Awaitable[None]]:
    link = DeviceLink(bridge="bench", device=_device(port))
    await link.connect()

    async def run(count: int) -> None:
        for index in range(count):
            result = await link.read(schedule[index % len(schedule)])
            assert isinstance(result, list), result

    return run


async def _one_loop(serve: Serve, tables: Mapping[Table, list[int]], requests: int) -> float:
    """Process CPU us per request, server and DeviceLink on this loop."""
    async with serve(tables) as port:
        run = await _link_reads(port, _schedule(_device(port)))
        await run(200)  # warm up
        began = time.process_time()
        await run(requests)
        return (time.process_time() - began) / requests * 1e6


class _ServerThread:
    """A server on an event loop of its own thread; ``cpu()`` is that thread's CPU seconds so far."""

    def __init__(self, serve: Serve, tables: Mapping[Table, list[int]]) -> None:
        self._serve, self._tables = serve, tables
        self._port: Future[int] = Future()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), name="bench.server")

    async def _main(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        async with self._serve(self._tables) as port:
            self._port.set_result(port)
            await self._stop.wait()

    def __enter__(self) -> int:
        self._thread.start()
        port = self._port.result(timeout=10)
        assert self._thread.ident is not None
        self._clock = time.pthread_getcpuclockid(self._thread.ident)
        return port

    def __exit__(self, *exc_info: object) -> None:
        assert self._loop is not None
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def cpu(self) -> float:
        return time.clock_gettime(self._clock)


async def _split(serve: Serve, tables: Mapping[Table, list[int]], requests: int, client: str) -> tuple[float, float]:
    """(server, client) thread CPU us per request, the server on a thread of its own."""
    server = _ServerThread(serve, tables)
    with server as port:
        schedule = _schedule(_device(port))
        run = await (_raw_reads if client == "raw" else _link_reads)(port, schedule)
        await run(200)
        server0, client0 = server.cpu(), time.thread_time()
        await run(requests)
        return (server.cpu() - server0) / requests * 1e6, (time.thread_time() - client0) / requests * 1e6


_WRITABLE: tuple[tuple[Table, int, int], ...] = (("holding", 0, 2), ("coil", 0, 1))  # Setpoint/Speed, Command/Run


async def _refresh_tables(tables: Mapping[Table, list[int]], rounds: int) -> tuple[float, float]:
    """CPU us per PLC refresh's table writes and read-backs: (pymodbus datastore as before, list slices now)."""
    from pymodbus.server import ModbusTcpServer
    from pymodbus.simulator import DataType, SimData, SimDevice

    sizes = {table: len(values) for table, values in tables.items()}
    blocks = [
        [SimData(address=0, values=[False] * sizes[t], datatype=DataType.BITS)]
        if t in ("coil", "discrete")
        else [SimData(address=0, count=sizes[t], values=0, datatype=DataType.REGISTERS)]
        for t in ("coil", "discrete", "holding", "input")
    ]
    server = ModbusTcpServer(
        SimDevice(id=1, simdata=(blocks[0], blocks[1], blocks[2], blocks[3])), address=("127.0.0.1", 0)
    )
    began = time.process_time()
    for _ in range(rounds):  # the old _Plc.update's writes and collect_writes' reads, images already encoded
        for table, image in tables.items():
            values: list[int] | list[bool] = [bool(v) for v in image] if table in ("coil", "discrete") else image
            await server.async_setValues(1, _FUNCTION[table], 0, values)
        for table, address, size in _WRITABLE:
            raw = await server.async_getValues(1, _FUNCTION[table], address, size)
            [int(r) for r in raw]
    before = (time.process_time() - began) / rounds * 1e6
    live: dict[Table, list[int]] = {table: [0] * size for table, size in sizes.items()}
    began = time.process_time()
    for _ in range(rounds):
        for table, image in tables.items():
            live[table][:] = image
        for table, address, size in _WRITABLE:
            live[table][address : address + size]
    return before, (time.process_time() - began) / rounds * 1e6


def _median(values: list[float]) -> str:
    return f"{statistics.median(values):6.1f} (runs {', '.join(f'{v:.0f}' for v in values)})"


async def _main(requests: int, repeats: int) -> None:
    tables = await _filler_tables()
    print(f"load before: {os.getloadavg()}; {requests} requests a run, {repeats} runs, turn about")
    one: dict[str, list[float]] = {name: [] for name in _SERVERS}
    split: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for _ in range(repeats):
        for name, serve in _SERVERS.items():
            one[name].append(await _one_loop(serve, tables, requests))
            for client in ("link", "raw"):
                split.setdefault((name, client), []).append(await _split(serve, tables, requests, client))
    print("one loop (server + DeviceLink, as in the hub), process CPU us per request:")
    for name, values in one.items():
        print(f"  {name:9s} {_median(values)}")
    print("split (server on its own thread), thread CPU us per request: server | client")
    for (name, client), pairs in split.items():
        print(
            f"  {name:9s} client={client:4s} server {_median([p[0] for p in pairs])} | "
            f"client {_median([p[1] for p in pairs])}"
        )
    refresh = [await _refresh_tables(tables, 2000) for _ in range(repeats)]
    print("a PLC refresh's table writes and read-backs, CPU us per PLC:")
    print(f"  pymodbus  {_median([r[0] for r in refresh])}")
    print(f"  lists     {_median([r[1] for r in refresh])}")
    print(f"load after: {os.getloadavg()}")


def main() -> None:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(_main(args.requests, args.repeats))


if __name__ == "__main__":
    main()
