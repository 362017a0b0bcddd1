"""Benchmark: MT-SICS frames/s the serial source reads from a pty, its CPU cost, and frame-to-DDATA latency.

Throughput: a sender process writes ``--frames`` weight lines (``S S     12.345 kg``) into a
pseudo-terminal as fast as the pty takes them; this process reads the other end. The baseline reads
the same stream with plain pyserial-asyncio-fast (``readuntil`` + ``float`` of the value: what any
reader pays); the source reads it through ``SerialSource`` (framing, MT-SICS parse, samples and the
status counters of each frame). For each: frames/s, CPU of this process (user+sys) and frames/s
per % of a core; the ratio source/baseline says what the connector costs.

Latency: lines paced at ``--rate`` per second, each carrying its sequence number as the weight; the
time from writing a line to an MQTT subscriber on the embedded broker receiving it: through the
serial source and the edge node (Sparkplug DDATA), and as baseline through a plain reader that
publishes each value as JSON with the same MQTT client. p50/p99 in ms.

    uv run python -m bench.serial [--frames 50000] [--rate 200] [--seconds 5] [--rounds 3]
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
import tty
from pathlib import Path

import orjson
import serial_asyncio_fast

from bridges.edge import EdgeNode
from bridges.serial import SerialSource
from bridges.source import Samples
from model.bridges.serial import SerialBridgeConfig
from model.broker_config import BrokerFileConfig
from uns.broker import EmbeddedBroker
from uns.clock import now_ms
from uns.connect import network_clients
from uns.mqtt.client import MqttClient
from uns.mqtt.types import BrokerUrl, Message
from uns.sparkplug import sparkplug_b_pb2 as pb


def _cpu_s() -> float:
    times = os.times()
    return times.user + times.system


def _line(weight: float) -> bytes:
    return f"S S {weight:>10.3f} kg\r\n".encode()


def _blast(master: int, frames: int) -> None:
    """The sender process: every frame as fast as the pty takes it (blocking writes)."""
    os.set_blocking(master, True)
    chunk = b"".join(_line(i % 1000 + 0.125) for i in range(100))
    for _ in range(frames // 100):
        os.write(master, chunk)


def _config(port: str) -> SerialBridgeConfig:
    return SerialBridgeConfig.model_validate(
        {"name": "bench", "edge": {"group": "bench", "primary_host_id": None, "first_reading_wait_s": 0},
         "devices": [{"id": "scale", "port": port, "protocol": {"kind": "mt_sics"},
                      "framing": {"kind": "terminator", "max_length": 64}}]}
    )  # fmt: skip


def _pty() -> tuple[int, int, str]:
    master, slave = os.openpty()
    tty.setraw(slave)
    return master, slave, os.ttyname(slave)


async def _baseline(frames: int) -> tuple[float, float]:
    master, slave, path = _pty()
    try:
        reader, writer = await serial_asyncio_fast.open_serial_connection(url=path, baudrate=115200)
        sender = multiprocessing.Process(target=_blast, args=(master, frames), daemon=True)
        started, cpu = time.perf_counter(), _cpu_s()
        sender.start()
        for _ in range(frames):
            line = await reader.readuntil(b"\r\n")
            float(line.split()[2])
        elapsed, used = time.perf_counter() - started, _cpu_s() - cpu
        sender.join()
        writer.close()
        return elapsed, used
    finally:
        os.close(master)
        os.close(slave)


async def _source(frames: int) -> tuple[float, float]:
    master, slave, path = _pty()
    try:
        source = SerialSource(config=_config(path), clients=network_clients(BrokerUrl(port=1)))
        sender = multiprocessing.Process(target=_blast, args=(master, frames), daemon=True)
        async with source:
            events = source.events()
            await anext(events)  # the port is open
            started, cpu = time.perf_counter(), _cpu_s()
            sender.start()
            seen = 0
            async for event in events:
                if isinstance(event, Samples) and any(sample.name == "Weight" for sample in event.samples):
                    seen += 1
                    if seen == frames:
                        break
            elapsed, used = time.perf_counter() - started, _cpu_s() - cpu
            await events.aclose()
        sender.join()
        return elapsed, used
    finally:
        os.close(master)
        os.close(slave)


async def _pace(master: int, rate: float, seconds: float, sent: dict[int, float]) -> None:
    """Lines carrying their sequence number, ``rate`` per second, for ``seconds``; their send times in ``sent``."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    for i in range(int(rate * seconds)):
        await asyncio.sleep(max(0.0, start + i / rate - loop.time()))
        sent[i] = time.perf_counter()
        os.write(master, _line(float(i)))


async def _latency(broker: EmbeddedBroker, rate: float, seconds: float, *, through_source: bool) -> list[float]:
    master, slave, path = _pty()
    sent: dict[int, float] = {}
    got: list[float] = []
    topic = "spBv1.0/bench/+/bench/scale" if through_source else "bench/scale/Weight"
    weight_alias: list[int] = []  # from the DBIRTH: DDATA names metrics by alias only
    try:
        async with contextlib.AsyncExitStack() as stack:
            listener = await stack.enter_async_context(MqttClient(url=broker.url, client_id="bench-listener"))
            await listener.subscribe([topic], qos=0)

            async def listen() -> None:
                async for message in listener.messages():
                    now = time.perf_counter()
                    if through_source:
                        payload = pb.Payload.FromString(message.payload)
                        if "/DBIRTH/" in message.topic:
                            weight_alias[:] = [m.alias for m in payload.metrics if m.name == "Weight"]
                        values = [m.double_value for m in payload.metrics if m.alias in weight_alias]
                    else:
                        values = [orjson.loads(message.payload)["value"]]
                    for value in values:
                        if int(value) in sent:
                            got.append((now - sent[int(value)]) * 1000)

            tasks = [asyncio.create_task(listen(), name="bench.listen")]
            if through_source:
                node = EdgeNode(config=_config(path).edge, node_id="bench", source=SerialSource(
                    config=_config(path), clients=network_clients(broker.url)), clients=network_clients(broker.url),
                    data_dir=Path(stack.enter_context(tempfile.TemporaryDirectory())))  # fmt: skip
                await stack.enter_async_context(node)
                tasks.append(asyncio.create_task(node.run(), name="bench.node"))
            else:
                tasks.append(asyncio.create_task(_plain(broker, path), name="bench.plain"))
            await asyncio.sleep(1.0)  # connected and born
            await _pace(master, rate, seconds, sent)
            await asyncio.sleep(0.5)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        os.close(master)
        os.close(slave)
    return got


async def _plain(broker: EmbeddedBroker, path: str) -> None:
    """Baseline: read lines and publish each weight as JSON, with the same MQTT client."""
    reader, writer = await serial_asyncio_fast.open_serial_connection(url=path, baudrate=115200)
    try:
        async with MqttClient(url=broker.url, client_id="bench-plain") as client:
            while True:
                line = await reader.readuntil(b"\r\n")
                body = orjson.dumps({"value": float(line.split()[2]), "timestamp_ms": now_ms()})
                await client.publish_many([Message("bench/scale/Weight", body, 0, False)])
    finally:
        writer.close()


def _report(what: str, frames: int, elapsed: float, cpu: float) -> float:
    rate = frames / elapsed
    share = 100 * cpu / elapsed
    print(f"  {what:<44} {rate:>9.0f} frames/s  cpu {share:5.1f} %  {rate / max(share, 0.1):>7.0f} frames/s per % core")
    return rate / max(share, 0.1)


def _percentiles(what: str, got: list[float]) -> float:
    quantiles = statistics.quantiles(got, n=100)
    print(f"  {what:<44} n={len(got):<6} p50 {quantiles[49]:6.2f} ms  p99 {quantiles[98]:6.2f} ms")
    return quantiles[49]


async def _main(frames: int, rate: float, seconds: float, rounds: int) -> None:
    print(f"serial source: {frames} MT-SICS frames through a pty, best of {rounds}")
    best: dict[str, tuple[float, float]] = {}
    for _ in range(rounds):
        for name, run in (("baseline", _baseline(frames)), ("source", _source(frames))):
            elapsed, cpu = await run
            if name not in best or elapsed < best[name][0]:
                best[name] = (elapsed, cpu)
    base = _report("baseline: pyserial-asyncio readuntil + float", frames, *best["baseline"])
    source = _report("serial source: framing, MT-SICS, samples", frames, *best["source"])
    print(f"  source/baseline (frames/s per % core): {source / base:.2f}")
    print(f"latency: {rate:g} lines/s for {seconds:g} s, write -> MQTT subscriber on the embedded broker")
    with tempfile.TemporaryDirectory() as directory:
        config = BrokerFileConfig.model_validate(
            {"listeners": {"tcp": {"bind": "127.0.0.1", "port": 0}}, "allow_anonymous": True, "anonymous_role": "admin"}
        )
        async with EmbeddedBroker(config=config, data_dir=Path(directory)) as broker:
            plain = _percentiles("baseline: read + JSON publish", await _latency(broker, rate, seconds,
                                                                                 through_source=False))  # fmt: skip
            edge = _percentiles("serial source + edge node (DDATA)", await _latency(broker, rate, seconds,
                                                                                    through_source=True))  # fmt: skip
    print(f"  p50 source/baseline: {edge / plain:.2f}")


def main() -> None:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=50_000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(_main(args.frames, args.rate, args.seconds, args.rounds))


if __name__ == "__main__":
    main()
