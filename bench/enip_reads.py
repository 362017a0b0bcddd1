"""Benchmark: how fast the EtherNet/IP driver reads a poll group from a Logix-like server in another process.

The controller (``python -m bridges.sim.ethernetip_plant --tags N``: our server, its own process)
changes ``Bench[0..N-1]`` (DINT) every 100 ms. In one run, back to back for ``--seconds`` each, the
same N tags (each element its own tag, ``Bench[i]``) are read by:

- our EnipDevice: Read Tag requests packed into Multiple Service Packets as full as the Large
  Forward Open's 4002 bytes allow;
- the baselines, pylogix 1.1.6's ``PLC.Read`` and pycomm3 1.2.16's ``LogixDriver.read`` of the
  same list (both batch into Multiple Service Packets too; both synchronous, so they run in a worker
  thread here, as they would in a bridge; pycomm3 uploads the tag list first, which our server serves).

It prints polls/s, tags/s, requests a poll, this process' CPU per 1k tags/s and the ratios.

    uv run python -m bench.enip_reads [--tags 1000] [--seconds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from pycomm3 import LogixDriver
from pylogix import PLC  # type: ignore[import-untyped]  # ships no type information

from bridges.ethernetip import EnipDevice
from bridges.sim.ethernetip_plant import bench_counterpart


@contextlib.asynccontextmanager
async def _counterpart(tags: int) -> AsyncIterator[int]:
    counterpart = bench_counterpart(tags)
    process = await asyncio.create_subprocess_exec(*counterpart.argv, stdout=asyncio.subprocess.PIPE)
    try:
        if process.stdout is None:
            raise RuntimeError("no stdout")
        async with asyncio.timeout(30):
            yield int((await process.stdout.readline()).split()[1])
    finally:
        process.terminate()
        await process.wait()


async def _measure(poll: Callable[[], Awaitable[int]], seconds: float) -> dict[str, float]:
    await poll()  # warm up
    cpu0, wall0, polls, tags = time.process_time(), time.monotonic(), 0, 0
    while time.monotonic() - wall0 < seconds:
        tags += await poll()
        polls += 1
    wall, cpu = time.monotonic() - wall0, time.process_time() - cpu0
    return {"polls_s": polls / wall, "tags_s": tags / wall, "cpu_pct": 100 * cpu / wall,
            "cpu_per_1k": 100 * cpu / wall / (tags / wall / 1000)}  # fmt: skip


async def _ours(port: int, tags: int, seconds: float) -> dict[str, float]:
    config = bench_counterpart(tags).bridge(port).devices[0].model_copy(update={"tag_cache": False})
    device = EnipDevice(bridge="bench", config=config)
    await device.connect()

    async def poll() -> int:
        read = await device.read("default")
        if read.problems:
            raise RuntimeError(read.problems)
        return len(read.samples)

    try:
        return await _measure(poll, seconds)
    finally:
        await device.close()


async def _baseline(port: int, tags: int, seconds: float) -> dict[str, float]:
    comm = PLC("127.0.0.1")
    comm.conn.msg_socket.close()  # pylogix opens this socket and never uses or closes it
    comm.Port = port
    names = [f"Bench[{i}]" for i in range(tags)]

    def read() -> int:
        results = comm.Read(names)
        bad = [r.Status for r in results if r.Status != "Success"]
        if bad:
            raise RuntimeError(bad[:3])
        return len(results)

    async def poll() -> int:
        return await asyncio.to_thread(read)

    try:
        return await _measure(poll, seconds)
    finally:
        comm.Close()


async def _pycomm3(port: int, tags: int, seconds: float) -> dict[str, float]:
    plc = LogixDriver(f"127.0.0.1:{port}/0")
    await asyncio.to_thread(plc.open)
    names = [f"Bench[{i}]" for i in range(tags)]

    def read() -> int:
        results = plc.read(*names)
        bad = [r.error for r in results if r.error]
        if bad:
            raise RuntimeError(bad[:3])
        return len(results)

    async def poll() -> int:
        return await asyncio.to_thread(read)

    try:
        return await _measure(poll, seconds)
    finally:
        plc.close()


def _line(label: str, figures: dict[str, float]) -> str:
    return (
        f"{label:<44} {figures['polls_s']:8.1f} polls/s {figures['tags_s']:10.0f} tags/s  "
        f"CPU {figures['cpu_pct']:5.1f} %  {figures['cpu_per_1k']:6.2f} % CPU per 1k tags/s"
    )


async def _main(tags: int, seconds: float) -> None:
    async with _counterpart(tags) as port:
        ours = await _ours(port, tags, seconds)
        base = await _baseline(port, tags, seconds)
        other = await _pycomm3(port, tags, seconds)
    print(_line(f"EnipDevice, {tags} DINT tags (MSP, 4002 B)", ours))
    print(_line(f"pylogix PLC.Read, {tags} tags (in a thread)", base))
    print(_line(f"pycomm3 LogixDriver.read, {tags} tags (thread)", other))
    for name, figures in (("pylogix", base), ("pycomm3", other)):
        print(
            f"ratio to {name}: {ours['tags_s'] / figures['tags_s']:.1f}x the tags/s, "
            f"{figures['cpu_per_1k'] / ours['cpu_per_1k']:.1f}x less CPU per 1k tags/s"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tags", type=int, default=1000, help="DINT tags to read.")
    parser.add_argument("--seconds", type=float, default=3.0, help="Seconds per measurement.")
    arguments = parser.parse_args()
    asyncio.run(_main(arguments.tags, arguments.seconds))
