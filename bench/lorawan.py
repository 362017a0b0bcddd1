"""Benchmark: ChirpStack uplinks/s the LoRaWAN connector reads from Mosquitto, its CPU, and uplink-to-Sparkplug latency.

Throughput: ``--uplinks`` ChirpStack v4 uplink events (JSON, a 19-byte Cayenne LPP frame like the
demo meter's, round-robin over ``--devices`` devices) wait at Mosquitto in the connector's
persistent session; the connector reads them (parse, dedupe, decode the LPP, map five metrics and
the radio ones to one ``Samples``) and acknowledges each when the next event is asked for, as under
the edge node. Baseline in the same run: a plain MQTT client of ours on an identical queued session
that only ``orjson.loads`` each event, base64-decodes its data and acknowledges. Uplinks/s, CPU of
this process (user+sys; Mosquitto runs apart), % of a core per 1k uplinks/s, best of ``--rounds``.
The pure core (parse + LPP decode, no I/O) shows the ceiling.

Latency: uplinks published at ``--rate``/s, each timed from its publish until the edge node's
DDATA for that device reaches a subscriber (publish -> Mosquitto -> connector -> edge node ->
Mosquitto -> subscriber); the baseline is the same publish timed to a plain subscriber of the event
topic (one broker hop). p50/p99. The hub's host adds its republish to the JSON topic on top
(``bench/demo_latency.py``).

    uv run python -m bench.lorawan [--uplinks 20000] [--devices 100] [--rate 200] [--seconds 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import tempfile
import time
from pathlib import Path

import orjson

from bench.amqp import _cpu_s, _pcts
from bridges.edge import EdgeNode
from bridges.lorawan import make_source
from bridges.lorawan.events import parse_chirpstack
from bridges.lorawan.lpp import decode_lpp, encode_lpp
from bridges.sim.lorawan_meter import chirpstack_event
from bridges.source import Samples
from model.bridges.lorawan import LorawanBridgeConfig
from tests.fixtures.mosquitto import Mosquitto, run_mosquitto
from uns.clock import now_ms
from uns.connect import network_clients
from uns.mqtt.client import MqttClient
from uns.mqtt.types import BrokerUrl, Message

_APP = "bench-app"


def _eui(device: int) -> str:
    return f"70B3D57E{device:08X}"


def _config(port: int, devices: int, client_id: str) -> LorawanBridgeConfig:
    metrics = [
        {"path": "$.voltage_1", "name": "Voltage", "type": "Float"},
        {"path": "$.current_2", "name": "Current", "type": "Float"},
        {"path": "$.frequency_3", "name": "Frequency", "type": "Float"},
        {"path": "$.energy_4", "name": "Energy"},
        {"path": "$.analog_in_5", "name": "Power", "type": "Float"},
    ]
    return LorawanBridgeConfig.model_validate(
        {
            "name": "bench",
            "edge": {"group": "bench", "primary_host_id": None, "first_reading_wait_s": 0.0},
            "server": {"flavour": "chirpstack", "application_id": _APP, "host": "127.0.0.1", "port": port,
                       "client_id": client_id},
            "devices": [{"id": f"m{d}", "dev_eui": _eui(d), "metrics": metrics} for d in range(devices)],
            "dedupe_kept": 100_000,
        }
    )  # fmt: skip


def _uplink(device: int, f_cnt: int) -> Message:
    data = encode_lpp({"voltage_1": 230.1, "current_2": 61.2, "frequency_3": 50.0,
                       "energy_4": 12_000 + f_cnt / 100, "analog_in_5": 38.4})  # fmt: skip
    body: dict[str, object] = {
        "deduplicationId": f"{device:08x}-0000-4000-8000-{f_cnt:012x}", "devAddr": "01fa3b2c", "adr": True,
        "dr": 5, "fCnt": f_cnt, "fPort": 1, "confirmed": False, "data": base64.b64encode(data).decode(),
        "rxInfo": [{"gatewayId": "0016c001f153a000", "uplinkId": f_cnt, "rssi": -71, "snr": 8.5}],
    }  # fmt: skip
    topic = f"application/{_APP}/device/{_eui(device).lower()}/event/up"
    return Message(topic, chirpstack_event(_eui(device), _APP, body, at_ms=now_ms()), qos=1)


def _uplinks(count: int, devices: int, first_f_cnt: int) -> list[Message]:
    return [_uplink(i % devices, first_f_cnt + i // devices) for i in range(count)]


async def _queue(url: BrokerUrl, client_id: str, messages: list[Message]) -> None:
    """Open the persistent session once (subscribed), leave, then publish: Mosquitto queues them for it."""
    async with MqttClient(url=url, client_id=client_id, clean_session=False) as client:
        await client.subscribe([f"application/{_APP}/device/+/event/+"], qos=1)
    async with MqttClient(url=url, client_id=f"{client_id}-publisher") as publisher:
        for start in range(0, len(messages), 1000):
            await publisher.publish_many(messages[start : start + 1000])


async def _connector(broker: Mosquitto, devices: int, messages: list[Message], name: str) -> tuple[float, float]:
    url = BrokerUrl(port=broker.port)
    await _queue(url, name, messages)
    source = make_source(_config(broker.port, devices, name), network_clients(url))
    seen = 0
    started, cpu = time.perf_counter(), _cpu_s()
    async with source:
        async for event in source.events():
            if isinstance(event, Samples) and event.device != "network-server":
                seen += 1
                if seen == len(messages):
                    break
    return time.perf_counter() - started, _cpu_s() - cpu


async def _baseline(broker: Mosquitto, messages: list[Message], name: str) -> tuple[float, float]:
    url = BrokerUrl(port=broker.port)
    await _queue(url, name, messages)
    seen = 0
    started, cpu = time.perf_counter(), _cpu_s()
    async with MqttClient(url=url, client_id=name, clean_session=False, manual_ack=True) as client:
        await client.subscribe([f"application/{_APP}/device/+/event/+"], qos=1)
        async for message in client.messages():
            base64.b64decode(orjson.loads(message.payload)["data"])
            client.ack(message)
            seen += 1
            if seen == len(messages):
                break
    return time.perf_counter() - started, _cpu_s() - cpu


def _pure(messages: list[Message]) -> tuple[float, float]:
    started, cpu = time.perf_counter(), _cpu_s()
    for message in messages:
        event = parse_chirpstack(message.topic, message.payload)
        decode_lpp(event.data)  # type: ignore[union-attr]
    return time.perf_counter() - started, _cpu_s() - cpu


async def _latency(broker: Mosquitto, devices: int, rate: int, seconds: float) -> tuple[list[float], list[float]]:
    url = BrokerUrl(port=broker.port)
    config = _config(broker.port, devices, "latency")
    clients = network_clients(url)
    pending: dict[str, collections.deque[float]] = collections.defaultdict(collections.deque)
    heard: dict[str, collections.deque[float]] = collections.defaultdict(collections.deque)
    through, hop = [], []
    born: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="uns-bench-lorawan-") as tmp:
        node = EdgeNode(
            config=config.edge, node_id="bench", source=make_source(config, clients), clients=clients,
            data_dir=Path(tmp),
        )  # fmt: skip
        async with (
            node,
            MqttClient(url=url, client_id="latency-watch") as watch,
            MqttClient(url=url, client_id="latency-publisher") as publisher,
        ):
            await watch.subscribe(["spBv1.0/bench/+/bench/+", f"application/{_APP}/device/+/event/up"], qos=0)

            async def listen() -> None:
                async for message in watch.messages():
                    now = time.perf_counter()
                    levels = message.topic.split("/")
                    if levels[0] == "application":
                        hop.append(now - heard[levels[3]].popleft())
                    elif levels[2] == "DBIRTH":
                        born.add(levels[4])
                    elif levels[2] == "DDATA" and pending[levels[4]]:
                        through.append(now - pending[levels[4]].popleft())

            tasks = [asyncio.create_task(node.run(), name="bench.node"), asyncio.create_task(listen(), name="bench.w")]
            try:
                while len(born) < devices:  # noqa: ASYNC110  (a bench's bounded wait for the births)
                    await asyncio.sleep(0.05)
                for i in range(int(rate * seconds)):
                    device = i % devices
                    message = _uplink(device, 1 + i // devices)
                    at = time.perf_counter()
                    pending[f"m{device}"].append(at)
                    heard[_eui(device).lower()].append(at)
                    await publisher.publish(message.topic, message.payload, qos=1)
                    await asyncio.sleep(max(0.0, at + 1 / rate - time.perf_counter()))
                await asyncio.sleep(1.0)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
    return through, hop


def _line(what: str, count: int, elapsed: float, cpu: float) -> float:
    rate, share = count / elapsed, cpu / elapsed
    print(f"  {what:<34} {rate:>9,.0f} uplinks/s   CPU {share:6.1%}   {share / rate * 1e5:6.2f} % of a core per 1k/s")
    return rate


async def _main(args: argparse.Namespace) -> None:
    with run_mosquitto() as broker:
        print(f"Mosquitto :{broker.port}: {args.uplinks:,} uplinks over {args.devices} devices, {args.rounds} rounds")
        best: dict[str, float] = {}
        for round_ in range(args.rounds):
            messages = _uplinks(args.uplinks, args.devices, 1 + round_ * args.uplinks)
            for what, run in (
                ("plain MQTT client (loads+b64+ack)", _baseline(broker, messages, f"plain{round_}")),
                ("LoRaWAN connector", _connector(broker, args.devices, messages, f"source{round_}")),
            ):
                elapsed, cpu = await run
                best[what] = max(best.get(what, 0.0), _line(what, args.uplinks, elapsed, cpu))
            _line("pure core (parse + LPP decode)", args.uplinks, *_pure(messages))
        print(f"  connector / baseline: {best['LoRaWAN connector'] / best['plain MQTT client (loads+b64+ack)']:.2f}x")
        print(f"latency at {args.rate}/s for {args.seconds:g} s:")
        through, hop = await _latency(broker, min(args.devices, 50), args.rate, args.seconds)
        _pcts("uplink -> DDATA (connector+edge)", through)
        _pcts("uplink -> subscriber (one hop)", hop)


def main() -> None:
    """Parse the arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--uplinks", type=int, default=20_000)
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
