"""Benchmark: what the demo's HTTP sources cost at idle, per poll (a ``304``) and per second at the demo's rates.

The idle hub's ERP and QMS feeds answer almost every poll with ``304 Not Modified``; this measures
that poll as the hub pays for it, with the demo's systems (``demo.systems.DemoSystems``, uvicorn)
seeded with a product, an order and an inspection, so the first poll of each feed reads them and
the rest find nothing new:

- paced polls: ``--pollers`` pollers of the demo's three feeds (their own configs), each polling
  every ``--gap`` seconds as the demo's sources do (5 s), staggered so one runs at a time; the CPU of
  each poll alone, client only (the systems in a child process) and with the systems in this
  process (the client and the server), median;
- demo rates: the three HTTP sources as ``uns up`` configures them (``erp-products`` every 10 s,
  ``erp-orders`` and ``qms-results`` every 5 s) and the systems in this process for ``--seconds``,
  their events consumed: polls/s of each and the process's CPU (polls, 304s, status refreshes,
  the servers, the uvicorn ticks).

Run it on two trees turn about to compare code paths (the figures print with ``uptime``'s load):

    uv run python -m bench.http_polls [--pollers 10] [--gap 5.2] [--polls 60] [--seconds 40]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from multiprocessing.queues import Queue
from pathlib import Path

from bridges.http import HttpSource
from bridges.http.poller import Poller
from bridges.http.state import PollState
from demo.connectors import ERP_ORDERS, ERP_PRODUCTS, QMS_RESULTS, business_connectors
from demo.systems import DemoSystems
from model.bridges.http import HttpBridgeConfig
from model.mes import Inspection, ProductType, WorkOrder
from tests.fixtures.broker import start_broker
from uns.connect import local_clients

__all__ = ["main"]

_LINE = "acme/dallas/bottling/line1"
_T0 = 1_764_000_000_000
_FEEDS = (ERP_ORDERS, QMS_RESULTS, ERP_PRODUCTS)


async def _seed(systems: DemoSystems) -> None:
    product = ProductType(timestamp_ms=_T0, product_id="COLA", name="Cola", ideal_cycle_time_s=0.13, unit="bottles")
    order = WorkOrder.model_validate(
        {"timestamp_ms": _T0, "order_id": "WO-1", "action": "release", "product_id": "COLA", "quantity": 100,
         "unit": "bottles", "bom": [{"material_id": "PREFORM", "quantity_per_unit": 1.0, "unit": "pcs"}]}
    )  # fmt: skip
    sample = Inspection.model_validate(
        {"timestamp_ms": _T0, "characteristic": "fill_volume_ml", "value": 500.2, "lower_limit": 495.0,
         "upper_limit": 505.0, "unit": "ml", "order_id": "WO-1", "sample_id": "S1"}
    )  # fmt: skip
    await systems.erp.put_product(_LINE, product)
    await systems.erp.release(_LINE, order)
    await systems.qms.record("qi-1", "inspection", f"{_LINE}/filler", sample)


@contextlib.asynccontextmanager
async def _systems(directory: Path) -> AsyncIterator[DemoSystems]:
    async with DemoSystems(directory=directory) as systems, asyncio.TaskGroup() as tasks:
        serving = tasks.create_task(systems.run(), name="bench.demo-systems")
        await _seed(systems)
        try:
            yield systems
        finally:
            serving.cancel()


def _serve(ready: Queue[tuple[str, str]]) -> None:
    """The child process: the demo's systems until killed."""

    async def run() -> None:
        with tempfile.TemporaryDirectory() as directory:
            async with _systems(Path(directory)) as systems:
                ready.put((systems.erp_url, systems.qms_url))
                await asyncio.Event().wait()

    asyncio.run(run())


def _feeds(erp_url: str, qms_url: str) -> dict[str, HttpBridgeConfig]:
    configs = business_connectors(erp_url=erp_url, qms_url=qms_url, cmms_url="sqlite+aiosqlite://", host_id=None)
    return {config.name: config for config in configs if isinstance(config, HttpBridgeConfig)}


async def _poll(poller: Poller, state: PollState) -> PollState:
    async for page in poller.pages(state):
        state = page.state
    return state


async def _paced(erp_url: str, qms_url: str, pollers: int, gap_s: float, polls: int) -> list[float]:
    """CPU (process time) of each poll after the first two of each poller, one poll every gap / pollers seconds."""
    feeds = _feeds(erp_url, qms_url)
    configs = [feeds[_FEEDS[index % len(_FEEDS)]] for index in range(pollers)]
    async with contextlib.AsyncExitStack() as stack:
        running = [await stack.enter_async_context(Poller(name=c.name, config=c.poll)) for c in configs if c.poll]
        states = [PollState() for _ in running]
        for _ in range(2):  # the items, then the first 304 (its validators are known from then on)
            for index, poller in enumerate(running):
                states[index] = await _poll(poller, states[index])
        cpu: list[float] = []
        step_s = gap_s / pollers
        for count in range(polls):
            await asyncio.sleep(step_s)
            index = count % pollers
            started = time.process_time()
            states[index] = await _poll(running[index], states[index])
            cpu.append(time.process_time() - started)
        assert all(poller.not_modified >= polls // pollers for poller in running), "idle polls should be 304s"
        return cpu


async def _paced_apart(pollers: int, gap_s: float, polls: int) -> list[float]:
    ready: Queue[tuple[str, str]] = multiprocessing.get_context("spawn").Queue()
    server = multiprocessing.get_context("spawn").Process(target=_serve, args=(ready,), daemon=True)
    server.start()
    try:
        erp_url, qms_url = ready.get(timeout=60)
        return await _paced(erp_url, qms_url, pollers, gap_s, polls)
    finally:
        server.kill()
        server.join()


async def _paced_together(pollers: int, gap_s: float, polls: int) -> list[float]:
    with tempfile.TemporaryDirectory() as directory:
        async with _systems(Path(directory)) as systems:
            return await _paced(systems.erp_url, systems.qms_url, pollers, gap_s, polls)


async def _demo_rates(seconds: float) -> tuple[dict[str, float], float]:
    """Polls/s of each source and the process's CPU share, the systems and the sources in this process."""
    with tempfile.TemporaryDirectory() as directory:
        data = Path(directory)
        async with start_broker(data) as broker, _systems(data / "demo") as systems:
            configs = [c for c in systems.connectors(None) if isinstance(c, HttpBridgeConfig)]
            sources = [HttpSource(config=c, clients=local_clients(broker), data_dir=data) for c in configs]
            async with contextlib.AsyncExitStack() as stack, asyncio.TaskGroup() as tasks:
                for source in sources:
                    await stack.enter_async_context(source)
                consumers = [tasks.create_task(_consume(source)) for source in sources]
                await asyncio.sleep(12)  # every feed read its items and answered its first 304
                before = {s.name: s.counts["requests"] for s in sources}
                started, cpu = time.perf_counter(), time.process_time()
                await asyncio.sleep(seconds)
                elapsed, used = time.perf_counter() - started, time.process_time() - cpu
                rates = {s.name: (s.counts["requests"] - before[s.name]) / elapsed for s in sources}
                for task in consumers:
                    task.cancel()
            return rates, used / elapsed


async def _consume(source: HttpSource) -> None:
    async for _ in source.events():
        pass


def _us(values: list[float]) -> str:
    return f"{statistics.median(values) * 1e6:7.0f} us (p90 {statistics.quantiles(values, n=10)[-1] * 1e6:.0f})"


async def _main(pollers: int, gap_s: float, polls: int, seconds: float) -> None:
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")
    apart = await _paced_apart(pollers, gap_s, polls)
    print(f"  CPU per 304 poll, client only (systems in a child process): {_us(apart)}")
    together = await _paced_together(pollers, gap_s, polls)
    print(f"  CPU per 304 poll, client and server in this process:        {_us(together)}")
    rates, share = await _demo_rates(seconds)
    listed = ", ".join(f"{name} {rate:.3f}" for name, rate in rates.items())
    print(f"  demo rates: polls/s {listed}; total {sum(rates.values()):.3f}/s; process CPU {share:.3%} of a core")


def main() -> None:
    """Parse arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pollers", type=int, default=10)
    parser.add_argument("--gap", type=float, default=5.2, help="seconds between two polls of one poller")
    parser.add_argument("--polls", type=int, default=60)
    parser.add_argument("--seconds", type=float, default=40.0)
    args = parser.parse_args()
    asyncio.run(_main(args.pollers, args.gap, args.polls, args.seconds))


if __name__ == "__main__":
    main()
