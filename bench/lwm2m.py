"""Benchmark: LwM2M notifications/s the server takes per % of a core, and notify-to-UNS latency.

Clients: ``--devices`` aiocoap LwM2M clients (``bench/lwm2m_devices.py``) in a process of their own,
each with one observed temperature (3303/0/5700, plain text), set in turn as fast as they can for
``--seconds``; each value is the wall-clock time it was set. A fresh client process per run.

Throughput: the LwM2M server (``Lwm2mSource``: CoAP, registration, observation, decode, ``Samples``),
its ``events()`` drained as the edge node would, against a baseline in the same run: a plain aiocoap
client context observing the same resources directly and parsing each float (the CoAP stack alone).
Notifications/s received, CPU of this process (user+sys; the clients run apart), % of a core per
1k notifications/s, best of ``--rounds``. Notifications are CoAP NON/CON as aiocoap's server sends
them; under overload some are lost on the way (UDP), so received counts are what is compared.

Latency: the clients set values at ``--rate``/s in total; each is timed from its set until the edge
node's DDATA carrying it reaches an MQTT subscriber through Mosquitto (client -> CoAP -> server ->
edge node -> Mosquitto -> subscriber), beside the same values timed to the plain aiocoap observer
(one CoAP hop). p50/p99.

    uv run python -m bench.lwm2m [--devices 20] [--seconds 5] [--rate 200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiocoap  # type: ignore[import-untyped]  # no py.typed in aiocoap 0.4.17

from bench.lwm2m_devices import ENDPOINT
from bridges.edge import EdgeNode
from bridges.lwm2m import Lwm2mSource
from bridges.lwm2m.content import TEXT, decode
from bridges.source import Samples
from model.bridges.lwm2m import Lwm2mBridgeConfig
from tests.fixtures.mosquitto import Mosquitto, run_mosquitto
from uns.clock import now_ns
from uns.connect import network_clients
from uns.mqtt.client import MqttClient
from uns.mqtt.types import BrokerUrl
from uns.sparkplug import DataType
from uns.sparkplug import sparkplug_b_pb2 as pb

__all__ = ["main"]

_DRAIN_S = 0.5


def _cpu_s() -> float:
    times = os.times()
    return times.user + times.system


class _Devices:
    """The client process: its ports, and commands."""

    def __init__(self, process: asyncio.subprocess.Process, ports: list[int]) -> None:
        self.process = process
        self.ports = ports

    async def say(self, line: str, answer: str) -> str:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(line.encode() + b"\n")
        await self.process.stdin.drain()
        async with asyncio.timeout(120):
            while True:
                got = (await self.process.stdout.readline()).decode()
                if not got:
                    raise RuntimeError(f"bench.lwm2m_devices exited before {answer!r}")
                if got.startswith(answer):
                    return got


@contextlib.asynccontextmanager
async def _devices(count: int) -> AsyncIterator[_Devices]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.lwm2m_devices", str(count),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        first = (await process.stdout.readline()).decode().split()
        yield _Devices(process, [int(p) for p in first[1:]])
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


def _config(count: int) -> Lwm2mBridgeConfig:
    return Lwm2mBridgeConfig.model_validate(
        {
            "name": "bench",
            "edge": {"group": "bench", "primary_host_id": None, "first_reading_wait_s": 0.0},
            "port": 0,
            "devices": [
                {"endpoint": ENDPOINT.format(i), "id": f"t{i}", "resources": [{"path": "3303/0/5700"}]}
                for i in range(count)
            ],
        }
    )


async def _baseline(count: int, seconds: float, rate: float) -> tuple[int, float, float, list[float]]:
    """A plain aiocoap observer of every client: notifications received, elapsed, CPU, latencies."""
    latencies: list[float] = []
    async with _devices(count) as devices:
        ctx = await aiocoap.Context.create_client_context(transports=["udp6"])
        pending = []
        try:
            for port in devices.ports:
                request = aiocoap.Message(code=aiocoap.GET, uri=f"coap://127.0.0.1:{port}/3303/0/5700", observe=0)
                observed = ctx.request(request)
                await observed.response
                pending.append(observed)

            async def watch(observed: object) -> None:
                async for message in observed.observation:  # type: ignore[attr-defined]
                    latencies.append(now_ns() / 1e9 - float(message.payload))

            tasks = [asyncio.create_task(watch(o), name="bench.observer") for o in pending]
            started, cpu = time.perf_counter(), _cpu_s()
            await devices.say(f"run {rate} {seconds}", "done")
            await asyncio.sleep(_DRAIN_S)
            elapsed, used = time.perf_counter() - started, _cpu_s() - cpu
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            for observed in pending:
                observed.observation.cancel()
            await ctx.shutdown()
    return len(latencies), elapsed, used, latencies


async def _server(count: int, seconds: float) -> tuple[int, float, float]:
    """The LwM2M server's events() drained: notifications received as samples, elapsed, CPU."""
    received = 0
    first: set[str] = set()
    async with _devices(count) as devices, Lwm2mSource(config=_config(count)) as source:

        async def drain() -> None:
            nonlocal received
            async for event in source.events():
                if isinstance(event, Samples) and event.device != "server":
                    first.add(event.device)
                    received += len(event.samples)

        task = asyncio.create_task(drain(), name="bench.drain")
        try:
            await devices.say(f"register 127.0.0.1 {source.port}", "registered")
            while len(first) < count:  # noqa: ASYNC110  (a bench's bounded wait for the first reads)
                await asyncio.sleep(0.05)
            received = 0
            started, cpu = time.perf_counter(), _cpu_s()
            await devices.say(f"run 0 {seconds}", "done")
            await asyncio.sleep(_DRAIN_S)
            return received, time.perf_counter() - started, _cpu_s() - cpu
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def _through_uns(broker: Mosquitto, count: int, rate: float, seconds: float) -> list[float]:
    """Set -> DDATA at a subscriber, through the edge node and Mosquitto."""
    url = BrokerUrl(port=broker.port)
    clients = network_clients(url)
    config = _config(count)
    latencies: list[float] = []
    born: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="uns-bench-lwm2m-") as tmp:
        source = Lwm2mSource(config=config)
        node = EdgeNode(config=config.edge, node_id="bench", source=source, clients=clients, data_dir=Path(tmp))
        async with node, _devices(count) as devices, MqttClient(url=url, client_id="lwm2m-watch") as watch:
            await watch.subscribe(["spBv1.0/bench/+/bench/+"], qos=0)

            async def listen() -> None:
                async for message in watch.messages():
                    now = now_ns() / 1e9
                    kind = message.topic.split("/")[2]
                    if kind == "DBIRTH":
                        born.add(message.topic.split("/")[4])
                    elif kind == "DDATA":
                        payload = pb.Payload()
                        payload.ParseFromString(message.payload)
                        latencies.extend(now - m.double_value for m in payload.metrics if m.double_value > 1e9)

            tasks = [asyncio.create_task(node.run(), name="bench.node"), asyncio.create_task(listen(), name="bench.w")]
            try:
                await devices.say(f"register 127.0.0.1 {source.port}", "registered")
                while len(born) < count + 1:  # noqa: ASYNC110  (the devices and the status device)
                    await asyncio.sleep(0.05)
                latencies.clear()
                await devices.say(f"run {rate} {seconds}", "done")
                await asyncio.sleep(1.0)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
    return latencies


def _pure(values: int) -> tuple[float, float]:
    started, cpu = time.perf_counter(), _cpu_s()
    for i in range(values):
        decode(b"%.6f" % (1.7e9 + i), TEXT, (3303, 0, 5700), lambda _p: DataType.Double, now_ms=0)
    return time.perf_counter() - started, _cpu_s() - cpu


def _line(what: str, count: int, elapsed: float, cpu: float) -> float:
    rate, share = count / elapsed, cpu / elapsed
    print(f"  {what:<36} {rate:>8,.0f} notif/s   CPU {share:6.1%}   {share / rate * 1e5:6.2f} % of a core per 1k/s")
    return share / rate * 1e5


def _pcts(what: str, values: list[float]) -> None:
    ordered = sorted(values)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
    print(f"  {what:<36} p50 {p50:7.2f} ms   p99 {p99:7.2f} ms   ({len(values)} values)")


async def _main(args: argparse.Namespace) -> None:
    print(f"{args.devices} LwM2M clients, {args.seconds:g} s flat out, {args.rounds} rounds")
    best: dict[str, float] = {}
    for _ in range(args.rounds):
        count, elapsed, cpu, _lat = await _baseline(args.devices, args.seconds, 0)
        best["base"] = min(best.get("base", 1e9), _line("plain aiocoap observer (parse float)", count, elapsed, cpu))
        count, elapsed, cpu = await _server(args.devices, args.seconds)
        best["server"] = min(best.get("server", 1e9), _line("LwM2M server (to Samples)", count, elapsed, cpu))
    _line("pure core (decode plain text)", 100_000, *_pure(100_000))
    print(f"  server / baseline (% core per 1k/s, best): {best['server'] / best['base']:.2f}x")
    print(f"latency at {args.rate:g}/s for {args.seconds:g} s:")
    with run_mosquitto() as broker:
        _pcts(
            "set -> DDATA at subscriber (Mosquitto)", await _through_uns(broker, args.devices, args.rate, args.seconds)
        )
    _pcts("set -> plain aiocoap observer", (await _baseline(args.devices, args.seconds, args.rate))[3])


def main() -> None:
    """Parse the arguments and run."""
    logging.basicConfig(level=logging.ERROR)  # the devices' "not registered" at start is expected here
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--rounds", type=int, default=3)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
