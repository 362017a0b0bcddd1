"""Benchmark: tags/s one ModbusSource reads from a pymodbus TCP server in another process, and its CPU cost.

The server (pymodbus ``ModbusTcpServer``, its own process) holds N holding registers. One
ModbusSource polls them as one device and one poll group: int16/uint16 tags, every fifth scaled
(so decoded to Double), coalesced into reads of ``max_read`` registers. For each poll interval it
prints the tags/s delivered as ``Samples``, the rounds completed against the rounds asked for, the
bridge process' CPU (user+sys) and the CPU per 1k tags/s; the server's CPU is shown apart.

    uv run python -m bench.modbus_bridge [--registers 1000] [--intervals 0.1,0.02,0.001] [--seconds 8]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import time
from multiprocessing.queues import Queue

from bench.hub_idle import cpu_seconds
from bridges.modbus import ModbusSource
from bridges.source import Samples
from model.bridges.modbus import ModbusBridgeConfig


def _serve(registers: int, ready: Queue[int]) -> None:
    """The server process: N holding registers on a free loopback port, until killed."""
    from pymodbus.server import ModbusTcpServer
    from pymodbus.simulator import DataType, SimData, SimDevice

    async def run() -> None:
        device = SimDevice(
            id=1,
            simdata=(
                [SimData(0, values=[False] * 16, datatype=DataType.BITS)],
                [SimData(0, values=[False] * 16, datatype=DataType.BITS)],
                [SimData(0, values=[i % 65536 for i in range(registers)], datatype=DataType.REGISTERS)],
                [SimData(0, values=[0], datatype=DataType.REGISTERS)],
            ),
        )
        server = ModbusTcpServer(device, address=("127.0.0.1", 0))
        await server.serve_forever(background=True)
        listener = server.transport
        assert isinstance(listener, asyncio.Server)
        ready.put(int(listener.sockets[0].getsockname()[1]))
        await asyncio.Event().wait()

    asyncio.run(run())


def _config(port: int, registers: int, interval: float) -> ModbusBridgeConfig:
    tags = [
        {
            "name": f"Tag/{i:04d}",
            "table": "holding",
            "address": i,
            "type": "int16" if i % 2 else "uint16",
            **({"scale": 0.1} if i % 5 == 0 else {}),
        }
        for i in range(registers)
    ]
    device = {"id": "plc", "port": port, "max_read": 120, "poll_groups": {"default": interval}, "registers": tags}
    return ModbusBridgeConfig.model_validate({"name": "bench", "edge": {"group": "bench"}, "devices": [device]})


async def _step(port: int, server_pid: int, registers: int, interval: float, seconds: float) -> dict[str, float]:
    source = ModbusSource(config=_config(port, registers, interval))
    tags = rounds = 0
    async with source, contextlib.aclosing(source.events()) as stream:
        first = await anext(stream)  # connect and warm up outside the measurement
        assert isinstance(first, Samples), first
        cpu0, server0, wall0 = time.process_time(), cpu_seconds(server_pid, children=False), time.monotonic()
        end = wall0 + seconds
        async for event in stream:
            assert isinstance(event, Samples), event
            tags += len(event.samples)
            rounds += 1
            if time.monotonic() >= end:
                break
        wall = time.monotonic() - wall0
        cpu, server_cpu = time.process_time() - cpu0, cpu_seconds(server_pid, children=False) - server0
    rate = tags / wall
    return {
        "interval_ms": interval * 1000,
        "tags_per_s": rate,
        "rounds_per_s": rounds / wall,
        "asked_rounds_per_s": 1 / interval,
        "cpu_pct": 100 * cpu / wall,
        "cpu_pct_per_1k": 100 * cpu / wall / (rate / 1000),
        "server_cpu_pct": 100 * server_cpu / wall,
    }


async def _main(args: argparse.Namespace) -> None:
    context = multiprocessing.get_context("spawn")
    ready: Queue[int] = context.Queue()
    server = context.Process(target=_serve, args=(args.registers, ready), daemon=True)
    server.start()
    try:
        port = ready.get(timeout=20)
        assert server.pid is not None
        print(
            f"modbus bridge bench: {args.registers} holding registers, 1 device, 1 poll group, server pid {server.pid}"
        )
        print(f"{'interval':>9} {'tags/s':>9} {'rounds/s':>9} {'asked':>7} {'cpu %':>7} {'cpu%/1k':>8} {'server %':>9}")
        for interval in (float(x) for x in args.intervals.split(",")):
            row = await _step(port, server.pid, args.registers, interval, args.seconds)
            print(
                f"{row['interval_ms']:>7.0f}ms {row['tags_per_s']:>9.0f} {row['rounds_per_s']:>9.1f} "
                f"{row['asked_rounds_per_s']:>7.0f} {row['cpu_pct']:>7.1f} {row['cpu_pct_per_1k']:>8.2f} "
                f"{row['server_cpu_pct']:>9.1f}"
            )
    finally:
        server.terminate()
        server.join(5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--registers", type=int, default=1000, help="holding registers = tags (default 1000)")
    parser.add_argument("--intervals", default="0.1,0.02,0.001", help="poll intervals in seconds, comma-separated")
    parser.add_argument("--seconds", type=float, default=8.0, help="measurement time per interval")
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
