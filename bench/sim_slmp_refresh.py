"""Benchmark: what the simulated chiller's iQ-R PLC (``SlmpPlant``) costs the demo plant per refresh.

Each refresh of ``SimulatedPlant`` reads the PLC's writable slots back twice (``collect_writes``
before the model's step and again just before the update) and updates it once. The plant runs
refreshes back to back on a model that is not advancing (the idle case: no client writes), turn
about in the same run:

- baseline: the read-back the plant had before, one SLMP read per writable slot, on a connection of its own;
- now: ``SlmpPlant.collect_writes``, one random read covering every writable slot;
- for comparison, that read once per refresh instead of twice (what dropping the second read would save;
  not done: see "Idle ``uns up``" in docs/benchmarks.md).

It prints, as medians over the repetitions: SLMP requests per refresh (counted by the simulator),
the CPU per refresh of the process (the event loop and virtual-plc's worker threads) and of the
event loop's thread alone, and the box's load.

    uv run python -m bench.sim_slmp_refresh [--refreshes 300] [--repetitions 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable

from slmp import AsyncSlmpClient, SlmpTarget

from bridges.sim.modbus_plant import ClientWrite
from bridges.sim.plant import PlantModel
from bridges.sim.slmp_plant import SlmpPlant
from bridges.slmp.codec import decode
from model.bridges.slmp import words_of

ReadBack = Callable[[], Awaitable[list[ClientWrite]]]
Case = tuple[ReadBack, int]
"""A read-back and how many times a refresh calls it."""


def _per_slot_read_back(plant: SlmpPlant, client: AsyncSlmpClient) -> ReadBack:
    """The baseline: each writable slot read with a request of its own, as ``collect_writes`` did before."""
    written: dict[str, float | bool] = {}

    async def read_back() -> list[ClientWrite]:
        writes = []
        for slot in plant.slots:
            if not slot.metric.writable or slot.type == "string":
                continue
            value: float | bool
            if slot.type == "bool":
                value = bool((await client.read_devices(slot.address, 1, bit_unit=True))[0])
            else:
                raw = await client.read_devices(slot.address, words_of(slot.type, slot.length), bit_unit=False)
                value = float(decode(slot.type, [int(word) for word in raw]))
            if value != written.setdefault(slot.metric.name, value):
                writes.append(ClientWrite(plant.machine, slot.metric.name, value))
        return writes

    return read_back


async def _refreshes(plant: SlmpPlant, case: Case, model: PlantModel, count: int) -> tuple[float, float]:
    """(process CPU s, event-loop thread CPU s) of ``count`` refreshes: the case's read-backs, then the update."""
    read_back, reads = case
    snapshot = model.snapshot()
    cpu0, thread0 = time.process_time(), time.thread_time()
    for _ in range(count):
        for _ in range(reads):
            assert await read_back() == []
        await plant.update(snapshot)
    return time.process_time() - cpu0, time.thread_time() - thread0


async def _run(refreshes: int, repetitions: int) -> None:
    model = PlantModel(seed=42)
    model.advance(60_000)
    requests = [0]

    def count(response: bytes) -> bytes:
        requests[0] += 1
        return response

    async with SlmpPlant(port=0) as plant:
        plant.server._hook = count  # virtual-plc's response hook: sees every request the PLC answers
        await plant.update(model.snapshot())
        client = AsyncSlmpClient(
            *plant.endpoint, transport="tcp", default_target=SlmpTarget(0, 0xFF, 0x3FF, 0), plc_profile="melsec:iq-r"
        )
        await client.connect()
        try:
            cases = {
                "per-slot reads (baseline)": (_per_slot_read_back(plant, client), 2),
                "one random read": (plant.collect_writes, 2),
                "one random read, once": (plant.collect_writes, 1),
            }
            figures: dict[str, list[tuple[float, float, float]]] = {label: [] for label in cases}
            for case in cases.values():  # warm up
                await _refreshes(plant, case, model, 20)
            for _ in range(repetitions):
                for label, case in cases.items():
                    requests[0] = 0
                    cpu, thread = await _refreshes(plant, case, model, refreshes)
                    figures[label].append((requests[0] / refreshes, cpu / refreshes, thread / refreshes))
        finally:
            await client.close()
    print(f"{refreshes} refreshes x {repetitions} repetitions, turn about; medians")
    for label, runs in figures.items():
        per_refresh, cpu, thread = (statistics.median(run[i] for run in runs) for i in range(3))
        print(f"{label:<28} {per_refresh:4.1f} SLMP requests/refresh  CPU {cpu * 1e3:6.3f} ms/refresh "
              f"(event loop thread {thread * 1e3:6.3f} ms)")  # fmt: skip
    print(f"load {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")


def main() -> None:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--refreshes", type=int, default=300, help="refreshes per measurement")
    parser.add_argument("--repetitions", type=int, default=5, help="measurements of each case")
    options = parser.parse_args()
    asyncio.run(_run(options.refreshes, options.repetitions))


if __name__ == "__main__":
    main()
