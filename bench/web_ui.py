"""Benchmark and load of the topic browser: 100,000 retained ISA-95 topics, then thousands of messages/s.

The plant (``plant_topics``): enterprise ``acme``, 2 sites x 4 areas x 5 lines x 4 cells; each cell
has 42 motors x 10 signals, 150 alarms, 10 production counters and 45 quality values under
``data/`` (625 topics), one palletizer has a 1,500-alarm tag table (a node with 1,500 children),
each line 4 KPIs and each cell 3 MES topics: 101,990 topics. One line's edge node is dead (its
values are ``stale``) and one value in 500 is ``bad``. The load (``fill``, then ``churn``) comes
from our own ``uns.mqtt`` client, as any publisher would.

The bench runs ``uns up --no-demo`` as a process, fills it, churns at ``--rate`` messages/s and
measures: time to first tree, expanding the 1,500-child node, search, long tasks and heap in
headless Chromium, SSE batch sizes and bytes/s, and the hub's CPU. Baselines in the same run: the
tree without paging (all 1,500 children at once) and the unfiltered stream of every update.

    uv run python -m bench.web_ui [--rate 3000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import orjson

from bench.hub_idle import cpu_seconds
from uns.clock import now_ms
from uns.mqtt.client import MqttClient
from uns.mqtt.types import BrokerUrl, Message

__all__ = ["BIG_NODE", "DEAD_LINE", "churn", "fill", "free_port", "hub_args", "plant_topics", "publisher"]

SITES = ("dallas", "austin")
AREAS = ("bottling", "packaging", "mixing", "utilities")
CELLS = ("filler", "capper", "labeler", "palletizer")
SIGNALS = ("Current", "Speed", "Torque", "Temp", "Vibration", "Hours", "Starts", "Fault", "Setpoint", "Power")
BIG_NODE = "acme/dallas/packaging/line1/palletizer/data/Alarms"
"""A node with 1,500 children: a PLC's alarm tag table."""
DEAD_LINE = "acme/austin/mixing/line3"
"""A line whose edge node died: its values are stale."""


def plant_topics() -> list[str]:
    """Every topic of the plant, equipment path first (see the module docstring)."""
    topics: list[str] = []
    for site in SITES:
        for area in AREAS:
            for line in range(1, 6):
                base = f"acme/{site}/{area}/line{line}"
                topics += [f"{base}/kpi/{kpi}" for kpi in ("oee", "availability", "performance", "quality")]
                for cell in CELLS:
                    data = f"{base}/{cell}/data"
                    topics += [f"{data}/Motor{m:02d}/{s}" for m in range(1, 43) for s in SIGNALS]
                    alarms = 1500 if f"{data}/Alarms" == BIG_NODE else 150
                    topics += [f"{data}/Alarms/A{a:04d}" for a in range(alarms)]
                    topics += [f"{data}/Production/Counter{c}" for c in range(10)]
                    topics += [f"{data}/Quality/Q{q:02d}" for q in range(45)]
                    topics += [f"{base}/{cell}/mes/{event}" for event in ("state", "count", "order")]
    return topics


def _quality(topic: str, index: int) -> str:
    if topic.startswith(DEAD_LINE + "/"):
        return "stale"
    return "bad" if index % 500 == 7 else "good"


def _envelope(value: float, quality: str) -> bytes:
    stamp = now_ms()
    body = {"value": value, "timestamp_ms": stamp, "quality": quality, "datatype": "Double", "unit": "1"}
    return orjson.dumps(body)


@contextlib.asynccontextmanager
async def publisher(url: str) -> AsyncIterator[MqttClient]:
    """Our MQTT client, with room to queue a whole fill."""
    async with MqttClient(url=BrokerUrl.from_str(url), client_id="bench-web-ui", max_queued=200_000) as client:
        yield client


async def fill(client: MqttClient, topics: list[str], *, chunk: int = 2_000) -> None:
    """One retained envelope on every topic, in chunks (the broker's pace holds us back)."""
    for start in range(0, len(topics), chunk):
        part = topics[start : start + chunk]
        messages = [
            Message(topic, _envelope(float(start + i), _quality(topic, start + i)), 0, True)
            for i, topic in enumerate(part)
        ]
        await client.publish_many(messages)
        await asyncio.sleep(0)


async def churn(client: MqttClient, topics: list[str], *, rate: float, seconds: float, seed: int = 1) -> int:
    """``rate`` retained updates per second on random live topics for ``seconds``; answers how many were sent."""
    rng = random.Random(seed)
    # good values only: the stale line and the bad values stay as filled, so their counts are known
    live = [t for i, t in enumerate(topics) if "/data/" in t and _quality(t, i) == "good"]
    tick, sent = 0.02, 0
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < seconds:
        due = int(rate * elapsed) - sent
        if due > 0:
            picked = rng.choices(live, k=due)
            await client.publish_many([Message(t, _envelope(rng.random() * 100, "good"), 0, True) for t in picked])
            sent += due
        await asyncio.sleep(tick)
    return sent


def free_port() -> int:
    """A TCP port free right now on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def hub_args(mqtt_port: int, data_dir: Path) -> list[str]:
    """``uns up`` with no demo plant, the MQTT port given, any free HTTP and WebSocket port."""
    ports = ["--mqtt-port", str(mqtt_port), "--ws-port", "0", "--http-port", "0"]
    return ["up", "--no-demo", *ports, "--data-dir", str(data_dir)]


# -- the bench ------------------------------------------------------------------------------------------


async def _until_cached(http: httpx.AsyncClient, topics: int, give_up_s: float = 120.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < give_up_s:
        health = (await http.get("/api/health")).json()
        if int(health["web-cache"]["topics"]) >= topics:
            return time.monotonic() - started
        await asyncio.sleep(0.2)
    raise TimeoutError(f"the web cache did not reach {topics} topics in {give_up_s} s")


async def _sse_bytes(http: httpx.AsyncClient, params: list[tuple[str, str]], seconds: float) -> tuple[int, list[int]]:
    """Bytes and rows per batch received on one stream for ``seconds``."""
    total, batches = 0, []
    with contextlib.suppress(TimeoutError):
        async with (
            asyncio.timeout(seconds),
            http.stream("GET", "/api/stream", params=tuple(params)) as response,
        ):
            async for line in response.aiter_lines():
                total += len(line) + 1
                if line.startswith("data: "):
                    body = orjson.loads(line[6:])
                    batches.append(len(body.get("nodes", body.get("updates", []))))
    return total, batches


async def _timed_get(http: httpx.AsyncClient, path: str, params: dict[str, str], runs: int = 5) -> tuple[float, int]:
    times, size = [], 0
    for _ in range(runs):
        started = time.perf_counter()
        answer = await http.get(path, params=params)
        times.append((time.perf_counter() - started) * 1000)
        size = len(answer.content)
    return statistics.median(times), size


async def _browser_figures(url: str) -> dict[str, float]:
    from playwright.async_api import async_playwright

    from tests.e2e.web_rig import CHROMIUM, FLAGS

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = await browser.new_page(viewport={"width": 1300, "height": 900})
        await page.add_init_script(LONG_TASKS_JS)
        started = time.perf_counter()
        await page.goto(url + "/#topics")
        await page.locator('#tree > li[data-path="acme"]').wait_for()
        first_tree_ms = (time.perf_counter() - started) * 1000
        names = BIG_NODE.split("/")
        for depth in range(1, len(names) + 1):
            prefix = "/".join(names[:depth])
            await page.locator(f'li[data-path="{prefix}"] > .twisty').click()
            await page.locator(f'li[data-path="{prefix}"] > ul > li').first.wait_for()
        await page.evaluate("window.__longTasks.length = 0")
        await page.wait_for_timeout(5_000)  # the stream runs; ages tick
        expanded_rows = await page.locator("#tree li").count()
        await page.fill("#search", "Motor07/Temp")
        await page.locator('#tree > li[data-path$="Motor07/Temp"]').first.wait_for()
        figures: dict[str, float] = await page.evaluate(FIGURES_JS)
        await browser.close()
    return {
        "first tree (page load to rows) ms": first_tree_ms,
        "tree rows, 8 levels expanded": expanded_rows,
        **figures,
    }


LONG_TASKS_JS = """
window.__longTasks = [];
new PerformanceObserver((list) => { for (const entry of list.getEntries()) window.__longTasks.push(entry.duration); })
  .observe({type: "longtask", buffered: true});
"""
FIGURES_JS = """(() => {
  const last = (name) => performance.getEntriesByName(name).at(-1)?.duration ?? -1;
  return {
    "roots ms": last("uns:roots"), "expand 1,500-child node ms": last("uns:expand"), "search ms": last("uns:search"),
    "long tasks while streaming": window.__longTasks.length, "longest task ms": Math.max(0, ...window.__longTasks),
    "tree rows after search": document.querySelectorAll("#tree li").length,
    "JS heap MiB": performance.memory ? performance.memory.usedJSHeapSize / 1048576 : -1,
  };
})()"""


@contextlib.contextmanager
def _hub(data_dir: Path) -> Iterator[tuple[str, str, int]]:
    from tests.e2e.web_rig import running_hub

    port = free_port()
    with running_hub(hub_args(port, data_dir), data_dir / "hub.log") as url:
        yield url, f"mqtt://127.0.0.1:{port}", _hub_pid(data_dir)


def _hub_pid(data_dir: Path) -> int:
    """The hub process: the one whose command line names our data directory."""
    for proc in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if proc.name.isdigit() and str(data_dir).encode() in (proc / "cmdline").read_bytes():
                return int(proc.name)
    return -1


async def _bench(rate: float, seconds: float) -> None:
    topics = plant_topics()
    with tempfile.TemporaryDirectory() as tmp, _hub(Path(tmp)) as (url, mqtt, pid):
        async with publisher(mqtt) as client, httpx.AsyncClient(base_url=url, timeout=30) as http:
            started = time.monotonic()
            await fill(client, topics)
            cached_s = await _until_cached(http, len(topics)) + (time.monotonic() - started)
            print(f"{len(topics):,} retained topics published and cached in {cached_s:.1f} s")
            load = asyncio.create_task(churn(client, topics, rate=rate, seconds=seconds + 30), name="bench.churn")
            cpu_before = cpu_seconds(pid, children=False) if pid > 0 else None
            wall = time.monotonic()
            paged = await _timed_get(http, "/api/tree", {"prefix": BIG_NODE, "limit": "200"})
            whole = await _timed_get(http, "/api/tree", {"prefix": BIG_NODE, "limit": "100000"})
            search = await _timed_get(http, "/api/search", {"q": "Motor07/Temp", "limit": "100"})
            watch = [("watch", ""), ("watch", "acme"), ("watch", "acme/dallas"), ("watch", BIG_NODE)]
            (shown, naive) = await asyncio.gather(
                _sse_bytes(http, watch, seconds), _sse_bytes(http, [("prefix", "")], seconds)
            )
            figures = await _browser_figures(url)
            cpu_after = cpu_seconds(pid, children=False) if pid > 0 else None
            wall = time.monotonic() - wall
            load.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await load
    print(f"churn {rate:,.0f} msgs/s; median of 5 HTTP calls:")
    print(f"  tree page (200 of 1,500 children): {paged[0]:.1f} ms, {paged[1]:,} bytes")
    print(f"  naive: all 1,500 children at once: {whole[0]:.1f} ms, {whole[1]:,} bytes ({whole[1] / paged[1]:.1f}x)")
    print(f"  search: {search[0]:.1f} ms")
    for name, (size, batches) in (("watched rows", shown), ("naive: every update", naive)):
        mean = statistics.mean(batches) if batches else 0
        print(f"  SSE {name}: {size / seconds / 1024:,.1f} KiB/s, {len(batches)} batches, {mean:,.0f} rows/batch")
    print(f"  SSE bytes ratio naive/watched: {naive[0] / max(1, shown[0]):.0f}x")
    for name, value in figures.items():
        print(f"  browser: {name}: {value:,.1f}")
    if cpu_before is not None and cpu_after is not None:
        used = cpu_after - cpu_before
        print(f"  hub CPU while measuring: {used:.1f} s in {wall:.1f} s ({100 * used / wall:.0f} % of a core)")


def main() -> None:
    """Run the bench and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=3000.0, help="messages/s while measuring")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds of each SSE measurement")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parents[1]))  # tests.e2e.web_rig for the hub and browser
    asyncio.run(_bench(args.rate, args.seconds))


if __name__ == "__main__":
    main()
