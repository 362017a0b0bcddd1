"""Benchmark: items/s the HTTP source polls and maps from a REST API in another process, and its CPU cost.

The API (uvicorn + Starlette, its own process) serves N items in pages of ``--limit`` with offset
pagination, each page JSON encoded once up front. Each item has an id, a timestamp and four numbers;
the source maps three of them to metrics of one device (so every item is a ``Samples``). In the same
process and against the same server, a baseline fetches the same pages with plain httpx and
``orjson.loads`` (what any poller pays) and nothing else. Then a webhook run posts signed batches of
``--limit`` items to the source's listener (the sender runs in this process too, so its CPU counts),
and the pure mapping runs alone for its ceiling. For each: items/s, CPU of this process (user+sys)
and CPU per 1k items/s; the ratio source/baseline says what mapping, the status device and the edge
hand-off cost.

    uv run python -m bench.http_source [--items 20000] [--limit 500] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import socket
import tempfile
import time
from multiprocessing.queues import Queue
from pathlib import Path

import httpx
import orjson

from bridges.http import HttpSource
from bridges.http.mapping import Mapper
from bridges.http.signature import sign
from bridges.source import Samples
from model.bridges.http import HttpBridgeConfig
from uns.clock import now_ms
from uns.connect import network_clients
from uns.mqtt.types import BrokerUrl

_SECRET = "bench-secret"  # noqa: S105  (a bench key)


def _serve(items: int, ready: Queue[int]) -> None:
    """The API process: ``GET /items?offset=&limit=`` from pages encoded once, until killed."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    rows = [
        {"id": f"i{i}", "ts": 1_764_000_000_000 + i, "a": i * 0.5, "b": i % 1000, "c": float(i % 7), "d": "ok"}
        for i in range(items)
    ]
    cache: dict[tuple[int, int], bytes] = {}

    async def page(request: Request) -> Response:
        offset, limit = int(request.query_params["offset"]), int(request.query_params["limit"])
        body = cache.get((offset, limit))
        if body is None:
            body = cache[(offset, limit)] = orjson.dumps({"items": rows[offset : offset + limit]})
        return Response(body, media_type="application/json")

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    ready.put(sock.getsockname()[1])
    config = uvicorn.Config(
        Starlette(routes=[Route("/items", page)]), log_config=None, access_log=False, lifespan="off", http="h11"
    )
    asyncio.run(uvicorn.Server(config).serve(sockets=[sock]))


def _cpu_s() -> float:
    times = os.times()
    return times.user + times.system


def _config(url: str | None, limit: int, webhook: bool) -> HttpBridgeConfig:
    return HttpBridgeConfig.model_validate(
        {
            "name": "bench",
            "edge": {"group": "bench"},
            "poll": None
            if url is None
            else {
                "url": f"{url}/items",
                "interval_s": 3600,
                "items_path": "$.items",
                "pagination": {"kind": "offset", "limit": limit, "max_pages": 1_000_000},
                "conditional": False,
            },
            "webhook": {"secret": _SECRET, "items_path": "$.items", "max_body_bytes": 64 << 20} if webhook else None,
            "key_path": "$.id",
            "devices": [
                {
                    "id": "machine",
                    "timestamp_path": "$.ts",
                    "metrics": [
                        {"path": "$.a", "name": "A"},
                        {"path": "$.b", "name": "B", "type": "Int32"},
                        {"path": "$.c", "name": "C"},
                    ],
                }
            ],
        }
    )


async def _baseline(url: str, items: int, limit: int) -> tuple[float, float]:
    started, cpu = time.perf_counter(), _cpu_s()
    got = 0
    async with httpx.AsyncClient(trust_env=False) as client:
        for offset in range(0, items, limit):
            response = await client.get(f"{url}/items", params={"offset": offset, "limit": limit})
            got += len(orjson.loads(response.content)["items"])
    assert got == items
    return time.perf_counter() - started, _cpu_s() - cpu


async def _source(url: str, items: int, limit: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as directory:
        source = HttpSource(
            config=_config(url, limit, False), clients=network_clients(BrokerUrl(port=1)), data_dir=Path(directory)
        )
        got = 0
        async with source:
            started, cpu = time.perf_counter(), _cpu_s()
            async for event in source.events():
                if isinstance(event, Samples) and event.device == "machine":
                    got += 1
                    if got == items:
                        break
        return time.perf_counter() - started, _cpu_s() - cpu


async def _webhook(items: int, limit: int) -> tuple[float, float]:
    rows = [{"id": f"w{i}", "ts": 1_764_000_000_000 + i, "a": i * 0.5, "b": i % 1000, "c": 1.0} for i in range(items)]
    bodies = [orjson.dumps({"items": rows[i : i + limit]}) for i in range(0, items, limit)]
    with tempfile.TemporaryDirectory() as directory:
        source = HttpSource(
            config=_config(None, limit, True), clients=network_clients(BrokerUrl(port=1)), data_dir=Path(directory)
        )
        async with source, httpx.AsyncClient(trust_env=False) as client:
            assert source.webhook is not None
            url = source.webhook.url
            got = 0

            async def consume() -> None:
                nonlocal got
                async for event in source.events():
                    if isinstance(event, Samples) and event.device == "machine":
                        got += 1

            task = asyncio.create_task(consume(), name="bench.consume")
            started, cpu = time.perf_counter(), _cpu_s()
            for body in bodies:
                stamp = str(now_ms() // 1000)
                headers = {
                    "X-Timestamp": stamp,
                    "X-Signature": "sha256=" + sign(_SECRET.encode(), body, timestamp=stamp),
                }
                answer = await client.post(url, content=body, headers=headers)
                assert answer.status_code == 200, answer.text
            elapsed, used = time.perf_counter() - started, _cpu_s() - cpu
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        assert got == items, got
        return elapsed, used


def _map_only(items: int) -> tuple[float, float]:
    """The pure mapping alone (no HTTP): the ceiling the source's own CPU sets."""
    mapper = Mapper(_config("http://127.0.0.1:1", 500, False))
    rows = [{"id": f"i{i}", "ts": 1_764_000_000_000 + i, "a": i * 0.5, "b": i % 1000, "c": 1.0} for i in range(items)]
    started, cpu = time.perf_counter(), _cpu_s()
    for index, row in enumerate(rows):
        mapper.samples(row, mapper.key(row, index), now_ms=0)
    return time.perf_counter() - started, _cpu_s() - cpu


def _line(what: str, items: int, elapsed: float, cpu: float) -> float:
    rate = items / elapsed
    share = cpu / elapsed
    per_1k = share / rate * 1e5
    print(f"  {what:<34} {rate:>10,.0f} items/s   CPU {share:6.1%}   {per_1k:6.2f} % of a core per 1k items/s")
    return rate


async def _main(items: int, limit: int, rounds: int) -> None:
    ready: Queue[int] = multiprocessing.get_context("spawn").Queue()
    server = multiprocessing.get_context("spawn").Process(target=_serve, args=(items, ready), daemon=True)
    server.start()
    try:
        url = f"http://127.0.0.1:{ready.get(timeout=30)}"
        await _baseline(url, items, limit)  # warm the server's page cache
        print(f"{items:,} items in pages of {limit}, {rounds} rounds (best of each)")
        best: dict[str, tuple[float, float]] = {}
        for _ in range(rounds):
            for name, run in (("baseline", _baseline(url, items, limit)), ("source", _source(url, items, limit))):
                elapsed, cpu = await run
                if name not in best or elapsed < best[name][0]:
                    best[name] = (elapsed, cpu)
            elapsed, cpu = await _webhook(items, limit)
            if "webhook" not in best or elapsed < best["webhook"][0]:
                best["webhook"] = (elapsed, cpu)
        base = _line("baseline: httpx GET + orjson", items, *best["baseline"])
        polled = _line("HTTP source poll (map + Samples)", items, *best["source"])
        _line("HTTP source webhook (signed POSTs)", items, *best["webhook"])
        _line("mapping alone (Mapper.samples)", items, *min(_map_only(items) for _ in range(rounds)))
        print(f"  source/baseline: {polled / base:.2f}")
    finally:
        server.kill()
        server.join()


def main() -> None:
    """Parse arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--limit", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(_main(args.items, args.limit, args.rounds))


if __name__ == "__main__":
    main()
