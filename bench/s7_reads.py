"""Benchmark: how fast the S7 driver reads a poll group from an S7 server in another process.

The PLC (``bridges/s7/counter.py``: snap7's Server, its own process) changes DB1.DBW0.. every 100 ms.
In one run, back to back for ``--seconds`` each, the same ``--tags`` INTs are read by:

- our S7Plc: the planner merges them into ranges and packs them into multi-variable reads by the
  negotiated PDU (480 with snap7's server);
- the baseline, python-snap7 3.3's ``AsyncClient.read_multi_vars`` with one item per tag in batches
  of its 20-item limit (it sends one request per item), decoding each with ``struct``.

It prints polls/s, tags/s, requests a poll, this process' CPU per 1k tags/s and the ratios.

    uv run python -m bench.s7_reads [--tags 1000] [--seconds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from snap7.async_client import AsyncClient
from snap7.type import Area

from bridges.s7.device import S7Plc
from bridges.sim.s7_plant import bench_counterpart


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


async def _ours(port: int, tags: int, seconds: float) -> tuple[dict[str, float], int]:
    counterpart = bench_counterpart(tags)
    config = counterpart.bridge(port).devices[0]
    plc = S7Plc(bridge="bench", config=config, tags=config.tags)
    await plc.connect()

    async def poll() -> int:
        read = await plc.read("default")
        if read.problems:
            raise RuntimeError(read.problems)
        return len(read.samples)

    try:
        return await _measure(poll, seconds), len(plc.plan("default").requests)
    finally:
        await plc.close()


async def _baseline(port: int, tags: int, seconds: float) -> dict[str, float]:
    client = AsyncClient()
    await client.connect("127.0.0.1", 0, 1, port)
    items = [{"area": Area.DB, "db_number": 1, "start": 2 * i, "size": 2} for i in range(tags)]

    async def poll() -> int:
        values: list[int] = []
        for first in range(0, tags, AsyncClient.MAX_VARS):
            _, data = await client.read_multi_vars(items[first : first + AsyncClient.MAX_VARS])
            values.extend(struct.unpack(">h", bytes(item))[0] for item in data)
        return len(values)

    try:
        return await _measure(poll, seconds)
    finally:
        await client.disconnect()


def _line(label: str, figures: dict[str, float], requests: float) -> str:
    return (
        f"{label:<44} {figures['polls_s']:8.1f} polls/s {figures['tags_s']:10.0f} tags/s {requests:6.0f} req/poll  "
        f"CPU {figures['cpu_pct']:5.1f} %  {figures['cpu_per_1k']:6.2f} % CPU per 1k tags/s"
    )


async def _main(tags: int, seconds: float) -> None:
    async with _counterpart(tags) as port:
        ours, requests = await _ours(port, tags, seconds)
        base = await _baseline(port, tags, seconds)
    print(_line(f"S7Plc, {tags} INTs (planned)", ours, requests))
    print(_line(f"snap7 AsyncClient.read_multi_vars, {tags} items", base, tags))
    print(
        f"ratio: {ours['tags_s'] / base['tags_s']:.0f}x the tags/s, "
        f"{base['cpu_per_1k'] / ours['cpu_per_1k']:.0f}x less CPU per 1k tags/s, {tags / requests:.0f}x fewer requests"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tags", type=int, default=1000, help="INTs in DB1 to read.")
    parser.add_argument("--seconds", type=float, default=3.0, help="Seconds per measurement.")
    arguments = parser.parse_args()
    asyncio.run(_main(arguments.tags, arguments.seconds))
