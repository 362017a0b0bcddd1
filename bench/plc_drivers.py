"""Benchmark: the four PLC drivers against their counterparts in other processes, the Modbus bridge as baseline.

For each driver (``modbus`` first, the baseline; then ``s7``, ``ethernetip``, ``slmp``, ``fins``) a
counterpart process holds ``--tags`` (1,000) values that change every 100 ms (the drivers' own
``bench_counterpart``: snap7's Server, our Logix server, virtual-plc, our FINS simulator; for Modbus a
pymodbus server started by this script), and the driver's bridge config polls every tag at
``--interval`` (100 ms):

A. **Source alone**, in this process, for ``--seconds``: tags/s delivered as ``Samples``, this
   process' CPU in % of one core, tags/s per % of a core, and that figure against Modbus' (ratio).
B. **Read to UNS**, the same bridge inside ``uns up --no-demo`` (its own process: broker, host,
   historian; the bridge's device is unbound, so its topics are ``acme/unbound/bench/...``) for
   ``--seconds``: arrival time of each live UNS JSON envelope minus its ``timestamp_ms`` (when the
   driver read the value), p50 and p99.

    uv run python -m bench.plc_drivers [--tags 1000] [--interval 0.1] [--seconds 5] [--drivers s7,fins]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncGenerator, Callable, Iterator
from pathlib import Path
from typing import cast

import orjson

from bench.hub_idle import cpu_seconds
from bench.hub_process import hub_process
from bridges.source import Samples, Source, SourceEvent
from model.bridges import BridgeConfig, EdgeNodeConfig, ModbusBridgeConfig
from tests.fixtures.processes import stop_process
from uns.clock import now_ns
from uns.mqtt.client import MqttClient
from uns.mqtt.types import BrokerUrl

_GROUP = "bench"


@dataclasses.dataclass(frozen=True)
class _Driver:
    name: str
    argv: tuple[str, ...]
    """The counterpart process; it prints ``port <n>`` once listening."""
    bridge: Callable[[int, float], BridgeConfig]
    """(port, interval) -> the bridge that polls every tag."""
    source: Callable[[BridgeConfig], Source]


def _modbus_bridge(tags: int) -> Callable[[int, float], BridgeConfig]:
    def bridge(port: int, interval: float) -> BridgeConfig:
        registers = [{"name": f"Tag/{i:04d}", "table": "holding", "address": i, "type": "int16"} for i in range(tags)]
        device = {"id": "bench", "port": port, "max_read": 120, "poll_groups": {"default": interval},
                  "registers": registers}  # fmt: skip
        return ModbusBridgeConfig.model_validate({"name": "modbus-bench", "edge": {"group": _GROUP},
                                                  "devices": [device]})  # fmt: skip

    return bridge


def _drivers(tags: int) -> list[_Driver]:
    from bridges.ethernetip import make_source as enip_source
    from bridges.fins import make_source as fins_source
    from bridges.modbus import ModbusSource
    from bridges.s7 import make_source as s7_source
    from bridges.sim import ethernetip_plant, fins_plant, s7_plant, slmp_plant
    from bridges.slmp import make_source as slmp_source

    def plc(name: str, module: object, make: Callable[[BridgeConfig], Source]) -> _Driver:
        counterpart = module.bench_counterpart(tags)  # type: ignore[attr-defined]
        return _Driver(name, counterpart.argv, lambda port, interval: counterpart.bridge(port, interval_s=interval),
                       make)  # fmt: skip

    return [
        _Driver(
            "modbus",
            (sys.executable, "-m", "bench.plc_drivers", "--serve-modbus", str(tags)),
            _modbus_bridge(tags),
            lambda config: ModbusSource(config=config),  # type: ignore[arg-type]
        ),
        plc("s7", s7_plant, s7_source),  # type: ignore[arg-type]
        plc("ethernetip", ethernetip_plant, enip_source),  # type: ignore[arg-type]
        plc("slmp", slmp_plant, slmp_source),  # type: ignore[arg-type]
        plc("fins", fins_plant, fins_source),  # type: ignore[arg-type]
    ]


@contextlib.contextmanager
def _counterpart(argv: tuple[str, ...]) -> Iterator[tuple[subprocess.Popen[str], int]]:
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("port "):
            raise RuntimeError(f"counterpart {argv} did not start: {line!r}")
        yield proc, int(line.split()[1])
    finally:
        stop_process(proc, 10)


async def _source_alone(
    driver: _Driver, port: int, server_pid: int, interval: float, seconds: float
) -> dict[str, float]:
    source = driver.source(driver.bridge(port, interval))
    tags = 0
    async with source, contextlib.aclosing(cast(AsyncGenerator[SourceEvent, None], source.events())) as stream:
        first = await anext(stream)  # connect, upload, plan: outside the measurement
        assert isinstance(first, Samples), first
        cpu0, server0, wall0 = time.process_time(), cpu_seconds(server_pid, children=False), time.monotonic()
        async for event in stream:
            assert isinstance(event, Samples), event
            tags += sum(sample.value is not None for sample in event.samples)
            if time.monotonic() - wall0 >= seconds:
                break
        wall = time.monotonic() - wall0
        cpu, server_cpu = time.process_time() - cpu0, cpu_seconds(server_pid, children=False) - server0
    rate = tags / wall
    cpu_pct = 100 * cpu / wall
    return {"tags_per_s": rate, "cpu_pct": cpu_pct, "per_pct": rate / cpu_pct if cpu_pct else float("nan"),
            "server_pct": 100 * server_cpu / wall}  # fmt: skip


async def _read_to_uns(driver: _Driver, port: int, interval: float, seconds: float) -> list[float]:
    config = driver.bridge(port, interval)
    config = config.model_copy(update={"edge": EdgeNodeConfig(group=_GROUP, primary_host_id="uns-hub")})
    latencies: list[float] = []
    with tempfile.TemporaryDirectory() as data:
        settings = Path(data) / "hub.yaml"  # JSON is YAML; 1,000 tags are too long for an environment variable
        settings.write_text(json.dumps({"bridges": [config.model_dump(mode="json")]}))
        env = {"UNS_CONFIG": str(settings)}
        with hub_process(Path(data), demo=False, env=env) as hub:
            async with MqttClient(url=BrokerUrl.from_str(hub.mqtt), client_id="bench-plc-latency") as client:
                await client.subscribe([f"acme/unbound/{_GROUP}/#"], qos=0)
                warm_until = time.monotonic() + 3  # births and the first rounds: not counted
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(3 + seconds):
                        async for message in client.messages():
                            if time.monotonic() < warm_until or message.retain or "/data/Bridge/" in message.topic:
                                continue
                            envelope = orjson.loads(message.payload)
                            if "/data/" in message.topic and not envelope.get("historical"):
                                latencies.append(now_ns() / 1e6 - envelope["timestamp_ms"])
    return latencies


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] if ordered else float("nan")


async def _main(args: argparse.Namespace) -> None:
    wanted = set(args.drivers.split(",")) | {"modbus"}
    drivers = [d for d in _drivers(args.tags) if d.name in wanted]
    print(f"PLC drivers bench: {args.tags} tags at {args.interval * 1000:g} ms, {args.seconds:g} s per phase, "
          f"counterparts in other processes; Modbus is the baseline")  # fmt: skip
    print(f"{'driver':<11}{'tags/s':>9}{'cpu %':>8}{'tags/s per %':>14}{'vs modbus':>11}{'server %':>10}"
          f"{'UNS p50 ms':>12}{'p99 ms':>9}{'samples':>9}")  # fmt: skip
    baseline = float("nan")
    for driver in drivers:
        with _counterpart(driver.argv) as (proc, port):
            alone = await _source_alone(driver, port, proc.pid, args.interval, args.seconds)
            latencies = await _read_to_uns(driver, port, args.interval, args.seconds) if not args.no_uns else []
        if driver.name == "modbus":
            baseline = alone["per_pct"]
        print(f"{driver.name:<11}{alone['tags_per_s']:>9.0f}{alone['cpu_pct']:>8.1f}{alone['per_pct']:>14.0f}"
              f"{alone['per_pct'] / baseline:>10.2f}x{alone['server_pct']:>10.1f}"
              f"{_percentile(latencies, 0.5):>12.1f}{_percentile(latencies, 0.99):>9.1f}{len(latencies):>9}",
              flush=True)  # fmt: skip
    if len(drivers) > 1:
        print("(tags/s per %: tags delivered per second per percent of one core this process used; "
              "vs modbus: that figure over the Modbus bridge's in the same run)")  # fmt: skip


async def _serve_modbus(tags: int) -> None:
    """The Modbus counterpart: ``tags`` holding registers on a free loopback port, each changing every 100 ms."""
    from pymodbus.server import ModbusTcpServer
    from pymodbus.simulator import DataType, SimData, SimDevice

    bits = [SimData(0, values=[False] * 16, datatype=DataType.BITS)]
    holding = [SimData(0, count=tags, values=0, datatype=DataType.REGISTERS)]
    simdata = (bits, bits, holding, [SimData(0, values=[0], datatype=DataType.REGISTERS)])
    server = ModbusTcpServer(SimDevice(id=1, simdata=simdata), address=("127.0.0.1", 0))
    await server.serve_forever(background=True)
    listener = server.transport
    assert isinstance(listener, asyncio.Server)
    print(f"port {listener.sockets[0].getsockname()[1]}", flush=True)
    tick = 0
    while True:
        tick += 1
        await server.async_setValues(1, 3, 0, [(tick + i) % 32768 for i in range(tags)])
        await asyncio.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tags", type=int, default=1000, help="tags per driver (default 1000)")
    parser.add_argument("--interval", type=float, default=0.1, help="poll interval in seconds (default 0.1)")
    parser.add_argument("--seconds", type=float, default=5.0, help="measurement time per phase (default 5)")
    parser.add_argument("--drivers", default="s7,ethernetip,slmp,fins", help="which drivers (modbus always runs)")
    parser.add_argument("--no-uns", action="store_true", help="skip the read-to-UNS phase")
    parser.add_argument("--serve-modbus", type=int, metavar="TAGS", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_modbus:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_serve_modbus(args.serve_modbus))
        return
    asyncio.run(_main(args))


if __name__ == "__main__":
    main()
