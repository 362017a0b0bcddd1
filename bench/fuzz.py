"""Fuzz bench: a million malformed inputs against ``uns up`` beside a counter that must land whole.

``uns up`` runs as its own process, as users run it (broker, Sparkplug host, historian, MES, web;
``--no-demo`` and a one-cell plant so the counters below are the only good data). Beside it two
good sources count 0, 1, 2, ...: a real EdgeNode (Sparkplug, through the host) and a JSON publisher
(QoS 1, straight into the UNS). Meanwhile malformed inputs arrive: Sparkplug payloads (random
bytes, truncated and mutated protobufs, wrong datatypes, unknown aliases, seq jumps, DATA before
BIRTH, bad topics, huge births), JSON envelopes (bad JSON, wrong types, missing fields, far-future
and impossible timestamps), MES events (invalid bodies, unknown events) published at QoS 0 through
a few clients, one input per MQTT message, and raw MQTT packets (garbage, truncated CONNECTs, bad
remaining lengths, QoS 3 subscribes, ...) each on its own TCP connection.

At the end it prints crashes (the hub's exit and its tracebacks), good samples lost (each counter
value counted in DuckDB, which must hold every one exactly once), rejections by reason from the
host's, historian's and MES adapter's health, what the broker did with each raw packet kind, the
log lines per level, and the hub's RSS before the fuzzing (the baseline) and at its peak.

    uv run python -m bench.fuzz [--inputs 1000000] [--quick] [--seed 13]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import random
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson

from bench.fuzz_inputs import InputMix, fuzz_births
from bench.fuzz_raw import RawOutcomes, raw_packet, send_raw
from bench.fuzz_report import Goods, print_report
from bench.hub_process import HubProcess, hub_process, rss_mib
from tests.e2e.crash_rig import CELL, ENTERPRISE, Counter, counting_edge, edge_caught_up, write_plant
from tests.fixtures.waiting import until
from uns.clock import now_ms
from uns.mqtt.client import MqttClient
from uns.mqtt.types import BrokerUrl, Message

__all__ = ["JSON_COUNT_TOPIC", "main"]

JSON_COUNT_TOPIC = f"{CELL}/data/JsonCount"
_PUBLISHERS = 4
_BATCH = 250


@dataclass
class Progress:
    """What the bench sent and what the hub's health says it has seen."""

    sent: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)
    health: dict[str, dict[str, object]] = field(default_factory=dict)
    host_messages_at_start: int = 0
    publisher_reconnects: int = 0

    @property
    def published(self) -> int:
        return sum(self.sent.values())

    def host_messages(self) -> int:
        return int(str(self.health.get("host", {}).get("messages", 0)))


async def _follow_health(url: str, progress: Progress) -> None:
    async with MqttClient(url=BrokerUrl.from_str(url), client_id="fuzz-health") as client:
        await client.subscribe([f"{ENTERPRISE}/hub/+/health"], qos=0)
        async for message in client.messages():
            with contextlib.suppress(orjson.JSONDecodeError):
                doc = orjson.loads(message.payload)
                if isinstance(doc, dict):
                    progress.health[message.topic.split("/")[-2]] = doc


async def _json_counter(url: str, produced: list[int], stop: asyncio.Event, rate_hz: float) -> None:
    """0, 1, 2, ... as JSON envelopes at QoS 1, each with its own millisecond."""
    async with MqttClient(url=BrokerUrl.from_str(url), client_id="fuzz-good-json") as client:
        start, t0 = time.monotonic(), now_ms()
        while not stop.is_set():
            n = produced[0]
            body = {"value": n, "timestamp_ms": t0 + n, "quality": "good", "datatype": "Int64"}
            await client.publish(JSON_COUNT_TOPIC, orjson.dumps(body), qos=1)
            produced[0] = n + 1
            await asyncio.sleep(max(0.0, start + produced[0] / rate_hz - time.monotonic()))


async def _fuzz_published(hub: HubProcess, args: argparse.Namespace, progress: Progress, total: int) -> None:
    rng = random.Random(args.seed)
    stream = InputMix().stream(rng, CELL, now_ms)
    url = BrokerUrl.from_str(hub.mqtt)
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(MqttClient(url=url, client_id=f"fuzz-pub-{i}", max_queued=1_000_000))
            for i in range(_PUBLISHERS)
        ]
        births = [Message(t, p, 0, False) for t, p in fuzz_births(now_ms())]
        await clients[0].publish_many(births)
        progress.host_messages_at_start = progress.host_messages()
        start = time.monotonic()
        next_report = args.report_every
        for done in range(0, total, _BATCH):
            batch = [next(stream) for _ in range(min(_BATCH, total - done))]
            for item in batch:
                progress.sent[(item.cls, item.kind)] += 1
            await clients[(done // _BATCH) % _PUBLISHERS].publish_many(
                [Message(i.topic, i.payload, 0, i.retain) for i in batch]
            )
            await _pace(progress, start, done + len(batch), args)
            if done + len(batch) >= next_report:
                next_report += args.report_every
                _progress_line(hub, progress, start)
        for client in clients:  # a QoS 1 barrier: the broker has read everything before it
            await client.publish(f"{CELL}/data/fuzz/barrier", b"{}", qos=1)
        progress.publisher_reconnects = sum(client.stats.reconnects for client in clients)


async def _pace(progress: Progress, start: float, done: int, args: argparse.Namespace) -> None:
    """Hold the offered rate, and wait while the host is more than ``--max-lag`` Sparkplug messages behind."""
    ahead = start + done / args.rate - time.monotonic()
    if ahead > 0:
        await asyncio.sleep(ahead)
    sparkplug_sent = sum(n for (cls, _), n in progress.sent.items() if cls == "sparkplug")
    last, still = progress.host_messages(), 0
    while sparkplug_sent - (last - progress.host_messages_at_start) > args.max_lag and still < 10:
        await asyncio.sleep(0.2)  # behind: wait while the host's count moves (a stopped count ends the wait)
        now = progress.host_messages()
        still = still + 1 if now == last else 0
        last = now


def _progress_line(hub: HubProcess, progress: Progress, start: float) -> None:
    elapsed = time.monotonic() - start
    print(
        f"  {progress.published:>9,} published  {progress.published / elapsed:7,.0f}/s"
        f"  host read {progress.host_messages() - progress.host_messages_at_start:>9,}"
        f"  historian received {progress.health.get('historian', {}).get('received', 0)!s:>9}"
        f" stored {progress.health.get('historian', {}).get('stored', 0)!s:>8}"
        f"  RSS {rss_mib(hub.pid):6.0f} MiB  ({elapsed:.0f} s)",
        flush=True,
    )


async def _fuzz_raw(hub: HubProcess, args: argparse.Namespace, outcomes: RawOutcomes, total: int) -> None:
    rng = random.Random(args.seed + 1)
    url = BrokerUrl.from_str(hub.mqtt)
    queue: asyncio.Queue[tuple[str, bytes, bytes] | None] = asyncio.Queue(maxsize=args.raw_concurrency * 2)

    async def worker() -> None:
        while (item := await queue.get()) is not None:
            await send_raw(url.host, url.port, *item, outcomes)

    async with asyncio.TaskGroup() as tasks:
        for i in range(args.raw_concurrency):
            tasks.create_task(worker(), name=f"bench.fuzz.raw{i}")
        for n in range(total):
            await queue.put(raw_packet(rng, n))
        for _ in range(args.raw_concurrency):
            await queue.put(None)


async def _drained(progress: Progress, give_up_s: float, quiet_s: float = 5.0) -> float:
    """Seconds until the historian holds no pending rows and its stored count stood still for ``quiet_s``.

    ``received`` never stands still (the hub's own health and KPI topics keep arriving), and a
    starved writer commits seldom: no pending rows is what says the backlog is through.
    """
    last, since, start = None, time.monotonic(), time.monotonic()
    while time.monotonic() - start < give_up_s:
        health = progress.health.get("historian", {})
        now = health.get("stored")
        if now != last or health.get("pending_rows", 1):
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return since - start
        await asyncio.sleep(0.25)
    return float("inf")


async def _run(args: argparse.Namespace, data_dir: Path) -> None:
    plant = write_plant(data_dir / "plant.yaml")
    env = {
        "UNS_PLANT": str(plant),
        "UNS_HOST__HEALTH_INTERVAL_S": "1",
        "UNS_HISTORIAN__HEALTH_INTERVAL_S": "1",
        "UNS_LOG_LEVEL": "INFO",
    }
    log = data_dir / "hub.log"
    raw_total = round(args.inputs * args.raw_share)
    published_total = args.inputs - raw_total
    with hub_process(data_dir / "hub", demo=False, env=env, stderr=log) as hub:
        print(f"hub pid {hub.pid} at {hub.mqtt}; {published_total:,} published + {raw_total:,} raw inputs", flush=True)
        progress, outcomes = Progress(), RawOutcomes()
        stop, json_produced = asyncio.Event(), [0]
        async with asyncio.TaskGroup() as tasks, counting_edge(hub.mqtt, data_dir / "edge") as (source, node):
            health = tasks.create_task(_follow_health(hub.mqtt, progress), name="bench.fuzz.health")
            counter = Counter(source, args.good_hz)
            edge_task = tasks.create_task(counter.run(until_count=10**9), name="bench.fuzz.edge-counter")
            json_task = tasks.create_task(
                _json_counter(hub.mqtt, json_produced, stop, args.good_hz), name="bench.fuzz.json"
            )
            await asyncio.sleep(5.0)  # births, first commits: the baseline
            baseline_rss = rss_mib(hub.pid)
            started = time.monotonic()
            await asyncio.gather(
                _fuzz_published(hub, args, progress, published_total), _fuzz_raw(hub, args, outcomes, raw_total)
            )
            fuzz_s = time.monotonic() - started
            _progress_line(hub, progress, started)
            edge_task.cancel()
            stop.set()
            await json_task
            with contextlib.suppress(AssertionError):  # reported below as lost samples
                await until(lambda: edge_caught_up(node), within_s=60.0, what="the edge node's buffer to drain")
            drain_s = await _drained(progress, args.drain_s)
            print(f"historian drained {drain_s:.0f} s after the fuzzing ended", flush=True)
            peak = rss_mib(hub.pid, "VmHWM")
            alive = hub.proc.poll() is None
            api = await _api_health(hub.http)
            health.cancel()
    exit_code = hub.proc.returncode
    goods = Goods(
        edge_produced=counter.produced,
        json_produced=json_produced[0],
        db=data_dir / "hub" / "historian.duckdb",
        json_topic=JSON_COUNT_TOPIC,
    )
    print_report(
        args=args,
        sent=progress.sent,
        raw=outcomes,
        reconnects=progress.publisher_reconnects,
        health=api or progress.health,
        goods=goods,
        alive=alive,
        exit_code=exit_code,
        log=log,
        rss=(baseline_rss, peak),
        fuzz_s=fuzz_s,
    )


async def _api_health(http: str) -> dict[str, dict[str, object]] | None:
    with contextlib.suppress(httpx.HTTPError, orjson.JSONDecodeError):
        async with httpx.AsyncClient(timeout=10.0) as client:
            response = await client.get(f"{http}/api/health")
            doc = orjson.loads(response.content)
            if isinstance(doc, dict):
                return {k: v for k, v in doc.items() if isinstance(v, dict)}
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inputs", type=int, default=1_000_000, help="malformed inputs in all")
    parser.add_argument("--quick", action="store_true", help="a short run: 20,000 inputs")
    parser.add_argument("--seed", type=int, default=13, help="random seed: the same seed gives the same inputs")
    parser.add_argument("--rate", type=float, default=6_000.0, help="published inputs offered per second at most")
    parser.add_argument("--max-lag", type=int, default=20_000, help="Sparkplug messages the host may be behind")
    parser.add_argument("--raw-share", type=float, default=0.02, help="share of inputs sent as raw MQTT packets")
    parser.add_argument("--raw-concurrency", type=int, default=32, help="raw connections open at once")
    parser.add_argument("--good-hz", type=float, default=100.0, help="values per second of each good counter")
    parser.add_argument("--report-every", type=int, default=50_000, help="published inputs between progress lines")
    parser.add_argument("--drain-s", type=float, default=900.0, help="longest wait for the historian's backlog")
    parser.add_argument("--keep", type=Path, help="keep the hub's data and log in this (new) folder")
    args = parser.parse_args()
    if args.quick:
        args.inputs, args.report_every = 20_000, 5_000
    if args.keep is not None:
        args.keep.mkdir(parents=True)
        asyncio.run(_run(args, args.keep))
        return
    with tempfile.TemporaryDirectory(prefix="uns-fuzz-") as tmp:
        asyncio.run(_run(args, Path(tmp)))


if __name__ == "__main__":
    main()
