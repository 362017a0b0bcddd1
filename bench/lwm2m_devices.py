"""LwM2M clients for ``bench/lwm2m.py``, in a process of their own so the bench measures only the server's CPU.

    python -m bench.lwm2m_devices <count>

Prints ``ports <p1> <p2> ...`` once the clients listen, then reads commands on stdin, one per line:
``register <host> <port>`` (prints ``registered``), ``run <rate> <seconds>`` (sets each client's
temperature in turn, ``rate`` values per second, 0 = as fast as it can; each value is the wall-clock
time in seconds it was set, for the latency; prints ``done <count>``), ``quit``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time

from bridges.sim.lwm2m_client import Lwm2mClient
from uns.clock import now_ns

__all__ = ["ENDPOINT", "main"]

ENDPOINT = "bench-{}"
"""Endpoint name of client number i."""


async def _run(clients: list[Lwm2mClient], rate: float, seconds: float) -> int:
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        clients[count % len(clients)].set("3303/0/5700", now_ns() / 1e9)
        count += 1
        if rate > 0:
            await asyncio.sleep(max(0.0, start + count / rate - time.perf_counter()))
        elif count % 20 == 0:
            await asyncio.sleep(0)  # let the notifications go out
    return count


async def _main(count: int) -> None:
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                Lwm2mClient(endpoint=ENDPOINT.format(i), resources={"3303/0/5700": 0.0}, lifetime_s=3600)
            )
            for i in range(count)
        ]
        print("ports", *(c.port for c in clients), flush=True)
        reader = asyncio.StreamReader()
        await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := (await reader.readline()).decode().split():
            if line[0] == "register":
                await asyncio.gather(*(c.register(line[1], int(line[2])) for c in clients))
                print("registered", flush=True)
            elif line[0] == "run":
                print("done", await _run(clients, float(line[1]), float(line[2])), flush=True)
            elif line[0] == "quit":
                return


def main() -> None:
    """Run ``int(argv[1])`` clients until ``quit`` or the end of stdin."""
    asyncio.run(_main(int(sys.argv[1])))


if __name__ == "__main__":
    main()
