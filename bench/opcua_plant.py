"""The demo's OPC UA at idle: the simulated plant's refresh and the OPC UA source per notification (issue 16 point 6).

`uv run python -m bench.opcua_plant [--before REV] [--runs 3] [--refreshes 100] [--seconds 20]`

Two figures per tree, each the least of 3 (refresh) or one window (client) in a child process of its own, turn about
with REV's modules (``git archive``) when ``--before`` is given:

- refresh: an ``OpcUaPlant`` serving the packaging machines, one ``OpcUaSource`` with the demo's config subscribed to
  every variable in the same process, as under ``uns up`` (so the server's monitored items fire on each write). A
  seeded ``PlantModel`` is advanced 1 s per refresh (``uns up`` at x1); per refresh the loop thread's CPU
  (``time.thread_time``) of what ``SimulatedPlant`` does to this server: ``collect_writes`` twice and ``update``,
  and the values written (the model's values that moved).
- client: the plant refreshed every second in another process; this process only runs the ``OpcUaSource`` (the
  demo's 1 s sampling and publishing) and drains its events. The loop thread's CPU over ``--seconds``, per second
  (one publish a second: the plant moves something at every refresh) and per notification.

The box is shared: the 1-minute load is printed beside each figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import statistics
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path

from bridges.opcua import OpcUaSource
from bridges.sim.demo import demo_bridges
from bridges.sim.layout import MACHINE_METRICS, MODBUS_MACHINES, OPCUA_MACHINES, ModbusEndpoint, SimEndpoints
from bridges.sim.layout import metric_value as value_of
from bridges.sim.opcua_plant import OpcUaPlant
from bridges.sim.plant import PlantModel, PlantSnapshot
from bridges.source import PollClock
from model.bridges import OpcUaBridgeConfig

_SEED = 42
_REFRESH_MS = 1000


def _config(endpoint: str) -> OpcUaBridgeConfig:
    """The demo's OPC UA bridge reading ``endpoint`` (the Modbus PLCs are named, not reached)."""
    modbus = {machine: ModbusEndpoint(host="127.0.0.1", port=1) for machine in MODBUS_MACHINES}
    (config,) = [c for c in demo_bridges(SimEndpoints(modbus=modbus, opcua=endpoint)) if c.kind == "opcua"]
    assert isinstance(config, OpcUaBridgeConfig)
    return config


def _moved(before: PlantSnapshot, after: PlantSnapshot) -> int:
    """Values of the served machines that differ between two snapshots: the ones a refresh writes."""
    return sum(
        value_of(before.machines[machine], metric.name) != value_of(after.machines[machine], metric.name)
        for machine in OPCUA_MACHINES
        for metric in MACHINE_METRICS[machine]
    )


async def _drain(source: OpcUaSource) -> None:
    async for _event in source.events():
        pass


async def _refresh(refreshes: int) -> tuple[float, float]:
    """Loop CPU per refresh (us) and values written per refresh, with the source subscribed in-process."""
    model = PlantModel(seed=_SEED)
    async with OpcUaPlant() as plant:
        await plant.update(model.snapshot())
        async with OpcUaSource(config=_config(plant.endpoint)) as source:
            drain = asyncio.create_task(_drain(source))
            await asyncio.sleep(2)  # subscribed, first values sent
            spent, written = [], 0
            for _ in range(3):
                cpu = 0.0
                for _ in range(refreshes):
                    before = model.snapshot()
                    model.advance(_REFRESH_MS)
                    after = model.snapshot()
                    written += _moved(before, after)
                    started = time.thread_time()
                    await plant.collect_writes()
                    await plant.collect_writes()
                    await plant.update(after)
                    cpu += time.thread_time() - started
                    await asyncio.sleep(0.02)  # the client's publishes run in between, as between real refreshes
                spent.append(cpu / refreshes * 1e6)
            drain.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await drain
    return min(spent), written / (3 * refreshes)


async def _serve(pipe: Connection) -> None:
    model = PlantModel(seed=_SEED)
    async with OpcUaPlant() as plant:
        await plant.update(model.snapshot())
        pipe.send(plant.endpoint)
        clock = PollClock(_REFRESH_MS / 1000)
        while not pipe.poll():
            model.advance(_REFRESH_MS)
            await plant.collect_writes()
            await plant.update(model.snapshot())
            await clock.wait()


def _server_process(pipe: Connection) -> None:
    asyncio.run(_serve(pipe))


async def _client(endpoint: str, seconds: float) -> tuple[float, float]:
    """Loop CPU per second (us) and per notification (us) of the source alone."""
    async with OpcUaSource(config=_config(endpoint)) as source:
        drain = asyncio.create_task(_drain(source))
        await asyncio.sleep(3)
        notified, started = source.stats.notifications, time.thread_time()
        await asyncio.sleep(seconds)
        cpu, notified = time.thread_time() - started, source.stats.notifications - notified
        drain.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await drain
    return cpu / seconds * 1e6, cpu / max(notified, 1) * 1e6


def _client_us(seconds: float) -> tuple[float, float]:
    ours, theirs = multiprocessing.Pipe()
    server = multiprocessing.get_context("spawn").Process(target=_server_process, args=(theirs,), daemon=True)
    server.start()
    try:
        if not ours.poll(60):
            raise RuntimeError("the plant's server did not start")
        return asyncio.run(_client(ours.recv(), seconds))
    finally:
        ours.send("stop")
        server.join(10)


def _child(source: Path | None, args: argparse.Namespace) -> list[float]:
    from bench.hub_process import run_child  # the parent's only

    argv = ["--child", "--refreshes", str(args.refreshes), "--seconds", str(args.seconds)]
    return [float(figure) for figure in run_child(__file__, source, argv)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", help="also measure the modules of this commit, turn about with this tree")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--refreshes", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        refresh_us, written = asyncio.run(_refresh(args.refreshes))
        print(json.dumps([refresh_us, written, *_client_us(args.seconds)]))
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench.hub_process import compared_trees, turn_about  # the parent's only

    figures: dict[str, list[list[float]]] = {}
    with compared_trees(args.before) as trees:
        for tree, source in turn_about(trees, args.runs):
            refresh, written, per_s, per_note = _child(source, args)
            figures.setdefault(tree, []).append([refresh, written, per_s, per_note])
            print(f"{tree}: refresh {refresh:.0f} us ({written:.1f} values, {refresh / written:.1f} us each), "
                  f"client {per_s:.0f} us/s, {per_note:.1f} us/notification "
                  f"(load {os.getloadavg()[0]:.1f})", flush=True)  # fmt: skip
    for tree, rows in figures.items():
        refresh, written, per_s, per_note = (statistics.median(column) for column in zip(*rows, strict=True))
        print(f"{tree}: median refresh {refresh:.0f} us ({refresh / written:.1f} us per value written), "
              f"client {per_s:.0f} us/s, {per_note:.1f} us/notification")  # fmt: skip


if __name__ == "__main__":
    main()
