"""Benchmark: the historian. Part A: UNS JSON in through the broker, rows out in DuckDB. Part B: History queries.

Part A runs the hub as users run it, ``uns up --no-demo`` in its own process, and loads it from
another process with UNS JSON envelopes on 10k data topics at stepped offered rates. Per step it
prints the stored rows/s (from ``acme/hub/historian/health``), rows lost, the drain time once the
load stops and the commit times the health reports; then publish-to-queryable latency at 10k
rows/s (a probe polled over ``/api/history/last``) and publish-to-historian latency (the DB's
``received - ts``). Baselines, in-process on the same rows: parsing alone, ``Store.commit`` (the
Arrow path, no broker) and plain ``executemany``.

Part B builds a 10M-sample database (10k series, one 1 s metric over 30 days, a line of state
series), runs the rollups once, and times the ``History`` API (first run on a fresh connection,
median of 5 after) against the naive SQL a user would write over the raw table.

Part C times one ``Store.commit`` (with the MES commit and its facts' invalidation beside it,
``bench.hub_idle.writer_commits``) at an idle plant's size (25 samples of 200 known series) and at
ingest's (10k samples of 10k series): the writer thread's CPU and the whole process's (DuckDB's
worker threads too), medians, each tree in processes of its own, turn about ``--commit-runs`` times.

``--baseline REV`` runs Parts A and C first on commit REV (``git archive`` into a temp dir), then
on this tree, in the same run, and prints the ratios.

    uv run python -m bench.historian [--seconds 6] [--rows 10000000] [--rates 20000,25000,30000,...]
        [--baseline REV] [--part a|b|c|all]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import multiprocessing.connection
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypedDict

import duckdb
import httpx
import orjson

from bench.following import following
from bench.historian_queries import Timing, part_b
from bench.hub_idle import WriterCommits, commits_of, cpu_seconds
from bench.hub_process import compared_trees, hub_command, hub_source, read_ready, rss_mib, turn_about
from model.config import HistorianSection
from tests.fixtures.processes import stop_process
from uns.clock import now_ms, utc_now
from uns.historian.rows import RowParser, SampleRow
from uns.historian.store import Batch, Store
from uns.mqtt.client import MqttClient
from uns.mqtt.types import BrokerUrl, Message
from uns.store.database import Database

HEALTH = "acme/hub/historian/health"
PROBE = "acme/bench/probe/line/cell/data/probe"
HEALTH_INTERVAL_S = 0.5
SUSTAINED_DRAIN_S = 1.0  # flush interval 0.5 s + one health period: more than that is a backlog
_ENVELOPE = b'{"value":%.3f,"timestamp_ms":%d,"quality":"good","datatype":"Double","unit":"degC"}'


def _topics(count: int) -> list[str]:
    return [f"acme/s/a/l/c{n // 100}/data/m{n % 100}" for n in range(count)]


# -- Part A: the load process ------------------------------------------------------------------------


async def _load(
    url: str, topics: int, rate: float, seconds: float, conn: multiprocessing.connection.Connection
) -> None:
    names = _topics(topics)
    last = [0] * topics
    async with MqttClient(url=BrokerUrl.from_str(url), client_id=f"bench-load-{rate:.0f}", max_queued=1_000_000) as c:
        tick, sent, carry, cursor = 0.01, 0, 0.0, 0
        start = time.monotonic()
        next_tick = start
        while time.monotonic() - start < seconds:
            carry += rate * tick
            now = now_ms()
            batch: list[Message] = []
            while carry >= 1.0:
                carry -= 1.0
                i = cursor % topics
                ts = now if now > last[i] else last[i] + 1  # distinct, increasing per topic
                last[i] = ts
                batch.append(Message(names[i], _ENVELOPE % (20.0 + (cursor % 1000) / 100, ts)))
                cursor += 1
            if batch:
                await c.publish_many(batch)
                sent += len(batch)
            next_tick += tick
            delay = next_tick - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        elapsed = time.monotonic() - start
    conn.send({"sent": sent, "seconds": elapsed})


def _run_load(url: str, topics: int, rate: float, seconds: float, conn: multiprocessing.connection.Connection) -> None:
    asyncio.run(_load(url, topics, rate, seconds, conn))


class LoadReport(TypedDict):
    sent: int
    seconds: float


def load_process(url: str, topics: int, rate: float, seconds: float) -> LoadReport:
    """The load in a process of its own until it ends: its report, ``sent`` messages in ``seconds``."""
    spawn = multiprocessing.get_context("spawn")  # a fresh interpreter: no copy of our event loop
    parent, child = spawn.Pipe()
    proc = spawn.Process(target=_run_load, args=(url, topics, rate, seconds, child), daemon=True)
    proc.start()
    child.close()  # only the load holds its end: if it dies, recv raises EOFError instead of waiting forever
    report: LoadReport = parent.recv()
    proc.join()
    return report


# -- Part A: the hub and its health ----------------------------------------------------------------


@dataclass
class Health:
    at: float  # monotonic arrival
    stored: int
    commits: int
    last_commit_ms: float
    max_commit_ms: float


@dataclass
class Monitor:
    """Follows the historian's health topic."""

    samples: list[Health] = field(default_factory=list)
    started: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def stored(self) -> int:
        return self.samples[-1].stored if self.samples else 0

    async def follow(self, client: MqttClient) -> None:
        async for message in client.messages():
            if message.topic == HEALTH:
                doc = orjson.loads(message.payload)
                keys = ("stored", "commits", "last_commit_ms", "max_commit_ms")
                self.samples.append(Health(time.monotonic(), *(doc[key] for key in keys)))
                self.started.set()

    async def reach(self, target: int, since: float, give_up_s: float = 60.0) -> float:
        """Seconds from ``since`` until ``stored >= target``, or until it stopped moving for 10 s."""
        last, moved = self.stored, time.monotonic()
        while time.monotonic() - since < give_up_s:
            if self.stored >= target:
                return self.samples[-1].at - since
            if self.stored != last:
                last, moved = self.stored, time.monotonic()
            elif time.monotonic() - moved > 10.0:  # longer than any commit seen: it is stuck
                break
            await asyncio.sleep(0.05)
        return time.monotonic() - since

    def between(self, t0: float, t1: float) -> list[Health]:
        return [h for h in self.samples if t0 <= h.at <= t1]


@dataclass
class Step:
    target: float
    offered: float
    stored_per_s: float
    sent: int
    stored: int
    drain_s: float
    commit_ms: float  # the slowest commit the health reported during the step
    rows_per_commit: float
    cpu_s: float  # the hub's CPU time from the step's start to its drain: robust to a shared, loaded box
    load: float = field(default_factory=lambda: os.getloadavg()[0])  # the box's 1-minute load at the step's end

    def row(self) -> str:
        verdict = "sustained" if self.sustained else "held back" if self.lost == 0 else "LOSS"
        return (
            f"{self.target:>9.0f} {self.offered:>10.0f} {self.stored_per_s:>10.0f} {self.sent:>9} {self.stored:>9}"
            f" {self.lost:>6} {self.drain_s:>8.2f} {self.commit_ms:>14.1f} {self.rows_per_commit:>12.0f}"
            f" {self.cpu_us_per_row:>10.1f} {self.load:>5.1f}  {verdict}"
        )

    @property
    def cpu_us_per_row(self) -> float:
        return self.cpu_s * 1e6 / self.stored if self.stored else float("nan")

    @property
    def lost(self) -> int:
        return max(0, self.sent - self.stored)

    @property
    def sustained(self) -> bool:
        held_back = self.offered < 0.95 * self.target  # the broker slowed the publisher down (TCP back-pressure)
        return self.lost == 0 and self.drain_s <= SUSTAINED_DRAIN_S and not held_back


@contextlib.contextmanager
def _hub(data_dir: Path, source: Path | None) -> Iterator[tuple[subprocess.Popen[str], str, str]]:
    env = {**os.environ, "UNS_HISTORIAN__HEALTH_INTERVAL_S": str(HEALTH_INTERVAL_S), "UNS_LOG_LEVEL": "ERROR"}
    argv = ["up", "--no-demo", "--mqtt-port", "0", "--ws-port", "0", "--http-port", "0", "--data-dir", str(data_dir)]
    command, cwd = hub_command(argv, source, env)
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env, cwd=cwd)
    try:
        parts = read_ready(proc)
        yield proc, parts["mqtt"], parts["http"]
    finally:
        stop_process(proc, 30)


@contextlib.asynccontextmanager
async def _monitored(url: str) -> AsyncIterator[tuple[Monitor, MqttClient]]:
    monitor = Monitor()
    async with following(url, [HEALTH], monitor.follow) as client:
        yield monitor, client


async def _step(url: str, monitor: Monitor, topics: int, rate: float, seconds: float, pid: int) -> Step:
    before = monitor.stored
    cpu0 = cpu_seconds(pid)
    commits0 = monitor.samples[-1].commits if monitor.samples else 0
    started = time.monotonic()
    report = await asyncio.to_thread(load_process, url, topics, rate, seconds)
    ended = time.monotonic()
    drain = await monitor.reach(before + report["sent"], ended)
    cpu = cpu_seconds(pid) - cpu0
    window = monitor.between(started + 1.5, ended)  # skip the process start and ramp-up
    rate_stored = (
        (window[-1].stored - window[0].stored) / (window[-1].at - window[0].at) if len(window) >= 2 else float("nan")
    )
    during = [h for h in monitor.between(started, ended + drain) if h.commits > commits0]  # this step's commits
    commits = monitor.samples[-1].commits - commits0
    stored, per_commit = monitor.stored - before, (monitor.stored - before) / commits if commits else float("nan")
    slowest = max((h.last_commit_ms for h in during), default=float("nan"))
    return Step(
        rate, report["sent"] / report["seconds"], rate_stored, report["sent"], stored, drain, slowest, per_commit, cpu
    )


async def _probe_latency(client: MqttClient, http: str, seconds: float) -> list[float]:
    """Publish a probe every 20 ms and poll ``/api/history/last`` for it: ms from publish to queryable."""
    sent_at: dict[int, float] = {}
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=http, timeout=10.0) as web:
        await client.publish(PROBE, _ENVELOPE % (0.0, now_ms()))  # its series exists before we measure
        async with asyncio.timeout(30):
            while (await web.get("/api/history/last", params={"match": PROBE})).status_code != 200:  # noqa: ASYNC110
                await asyncio.sleep(0.05)

        async def publish() -> None:
            for n in range(1, int(seconds / 0.02)):
                sent_at[n] = time.monotonic()
                await client.publish(PROBE, _ENVELOPE % (float(n), now_ms()))
                await asyncio.sleep(0.02)

        async def poll(done: asyncio.Task[None]) -> None:
            seen = 0
            while not (done.done() and seen >= len(sent_at)):
                response = await web.get("/api/history/last", params={"match": PROBE})
                rows = response.json()["rows"]
                now = time.monotonic()
                newest = int(rows[0]["value"]) if rows else 0
                for n in range(seen + 1, newest + 1):
                    latencies.append((now - sent_at[n]) * 1000)
                seen = max(seen, newest)
                await asyncio.sleep(0.005)

        publisher = asyncio.create_task(publish(), name="bench.probe")
        async with asyncio.timeout(seconds + 30):
            await poll(publisher)
        await publisher
    return latencies


def _quantiles(values: Sequence[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(values, n=100) if len(values) > 1 else [float("nan")] * 99
    return cuts[49], cuts[98]


@dataclass
class Ingest:
    best: float
    p50: float
    p99: float
    received: tuple[float, float]
    rss: float
    max_commit: float
    cpu_us: float  # the hub's CPU per stored row, median over the steps: what one core could sustain is 1e6 / it


async def _part_a(args: argparse.Namespace, tmp: Path, source: Path | None, label: str) -> Ingest:
    print(
        f"\n== Part A ({label}): ingest through `uns up --no-demo`, {args.topics} topics, {args.seconds:.0f} s per step"
    )
    print(f"{'target/s':>9} {'offered/s':>10} {'stored/s':>10} {'sent':>9} {'stored':>9} {'lost':>6} {'drain s':>8}"
          f" {'max commit ms':>14} {'rows/commit':>12} {'cpu us/row':>10} {'load':>5}")  # fmt: skip
    steps: list[Step] = []
    with _hub(tmp / label, source) as (proc, url, http):
        async with _monitored(url) as (monitor, client):
            await monitor.started.wait()
            warm = await _step(
                url, monitor, args.topics, args.topics, 1.0, proc.pid
            )  # one sample per topic: new series
            print(f"warm-up: {warm.sent} rows on new series stored {warm.drain_s:.2f} s after the load stopped")
            for rate in args.rates:
                step = await _step(url, monitor, args.topics, rate, args.seconds, proc.pid)
                steps.append(step)
                print(step.row(), flush=True)
            wall0 = now_ms()
            probe, latency_step = await asyncio.gather(
                _probe_latency(client, http, args.seconds),
                _step(url, monitor, args.topics, args.latency_rate, args.seconds, proc.pid),
            )
            wall1 = now_ms()
            max_commit = monitor.samples[-1].max_commit_ms
        rss = rss_mib(proc.pid, "VmHWM")
    # plain DuckDB, not Database: a baseline hub's file may be of an older layout, which Database refuses read-only
    with duckdb.connect(str(tmp / label / "historian.duckdb"), read_only=True) as connection:
        row = connection.execute(
            "SELECT quantile_cont(epoch_ms(received) - epoch_ms(ts), [0.5, 0.99]), count(*) FROM samples"
            " WHERE ts >= make_timestamptz(? * 1000) AND ts < make_timestamptz(? * 1000)",
            [wall0 + 1500, wall1],
        ).fetchone()
    assert row is not None
    received_q, received_n = row
    p50, p99 = _quantiles(probe)
    best = max((s.offered for s in steps if s.sustained), default=0.0)  # all of it stored
    print(
        f"latency at {latency_step.offered:.0f} rows/s: publish -> queryable (HTTP poll of /api/history/last) p50"
        f" {p50:.0f} ms, p99 {p99:.0f} ms ({len(probe)} probes); publish -> historian received (DB received - ts)"
        f" p50 {received_q[0]:.1f} ms, p99 {received_q[1]:.1f} ms ({received_n} rows)"
    )
    print(f"sustained: {best:.0f} rows/s   max commit {max_commit:.0f} ms   peak RSS of the hub {rss:.0f} MiB")
    cpu_us = statistics.median(s.cpu_us_per_row for s in steps)
    print(
        f"hub CPU per stored row: {cpu_us:.1f} us (one core's worth: {1e6 / cpu_us:,.0f} rows/s),"
        f" load {os.getloadavg()[0]:.1f}"
    )
    return Ingest(best, p50, p99, (received_q[0], received_q[1]), rss, max_commit, cpu_us)


# -- Part A: baselines in-process ------------------------------------------------------------------


def _payloads(topics: int, rows: int, start_ms: int) -> list[tuple[str, bytes]]:
    names = _topics(topics)
    return [(names[i % topics], _ENVELOPE % (20.0 + i % 1000 / 100, start_ms + i // topics)) for i in range(rows)]


def _batches(rows: list[SampleRow], size: int, now_ms: int) -> list[Batch]:
    chunks = [rows[k : k + size] for k in range(0, len(rows), size)]
    return [Batch(samples=chunk, received_ms=[now_ms] * len(chunk)) for chunk in chunks]


def _baselines(args: argparse.Namespace, tmp: Path) -> dict[str, float]:
    print(f"\n== Part A baselines, in-process, same rows and schema ({args.topics} series, batches of 10k)")
    start_ms = now_ms() - 3_600_000
    messages = _payloads(args.topics, args.arrow_rows + args.topics, start_ms)
    parser = RowParser(max_future_ms=300_000)
    now = now_ms()
    t = time.perf_counter()
    parsed = [parser.parse(topic, payload, now_ms=now) for topic, payload in messages]
    parse_s = time.perf_counter() - t
    rows = [r for r in parsed if isinstance(r, SampleRow)]
    assert len(rows) == len(messages)
    with Database(path=tmp / "arrow.duckdb") as db:
        store = Store(db.connection)
        t = time.perf_counter()
        store.commit(_batches(rows[: args.topics], 10_000, now)[0])  # registers every series
        register_s = time.perf_counter() - t
        t = time.perf_counter()
        stored = sum(store.commit(b).inserted for b in _batches(rows[args.topics :], 10_000, now))
        arrow_s = time.perf_counter() - t
    assert stored == args.arrow_rows
    got = utc_now()
    rest = (None, None, "good", False, None, got)
    plain = [  # what a user writes: one tuple per row, datetimes, the same columns
        (i % args.topics + 1, datetime.fromtimestamp(r.ts_ms / 1000, UTC), r.value, *rest)
        for i, r in enumerate(rows[args.topics : args.topics + args.executemany_rows])
    ]
    with Database(path=tmp / "executemany.duckdb") as db:
        connection = db.connection
        t = time.perf_counter()
        for k in range(0, len(plain), 10_000):
            connection.execute("BEGIN TRANSACTION")
            connection.executemany("INSERT INTO samples VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0)", plain[k : k + 10_000])
            connection.execute("COMMIT")
        plain_s = time.perf_counter() - t
    figures = {
        "parse": len(messages) / parse_s,
        "arrow": args.arrow_rows / arrow_s,
        "executemany": len(plain) / plain_s,
    }
    print(f"parse (RowParser, 1 thread):            {figures['parse']:>10.0f} rows/s  ({len(messages)} rows)")
    print(f"Store.commit, Arrow, series known:      {figures['arrow']:>10.0f} rows/s  ({args.arrow_rows} rows)")
    print(f"Store.commit of {args.topics} new series:        {register_s:>10.2f} s")
    print(f"executemany, 1 transaction per 10k:     {figures['executemany']:>10.0f} rows/s  ({len(plain)} rows)")
    return figures


# -- Part C: one commit's CPU ----------------------------------------------------------------------

_COMMIT_SHAPES = (("idle plant", 25, 200, 120), ("ingest", 10_000, 10_000, 15))
"""Name, samples per commit, series they come from, commits timed."""


def _part_c(args: argparse.Namespace) -> None:
    print(f"\n== Part C: one historian commit's CPU (ms, median of {args.commit_runs} processes per tree, turn about;"
          f" each a median of its commits), load at the start {os.getloadavg()[0]:.1f}")  # fmt: skip
    baseline = f"baseline {args.baseline}"
    with compared_trees(
        args.baseline, args.current, before_label=baseline, now_label=args.current or "this tree"
    ) as trees:
        for shape, rows, series, commits in _COMMIT_SHAPES:
            runs: dict[str, list[WriterCommits]] = {label: [] for label, _ in trees}
            for label, source in turn_about(trees, args.commit_runs):
                timed = commits_of(source, rows, series, commits)
                if timed is None:
                    raise SystemExit(f"{label} predates the store modules Part C drives")
                runs[label].append(timed)
            figures = _COMMIT_FIGURES if shape == "idle plant" else _COMMIT_FIGURES[:1]  # the MES's: one size
            for what, of in figures:
                _print_figures(f"{shape} ({rows} samples of {series} series), {what}", runs, of, trees[0][0])
    print(f"load at the end {os.getloadavg()[0]:.1f}")


_COMMIT_FIGURES: tuple[tuple[str, Callable[[WriterCommits], tuple[float, float]]], ...] = (
    ("historian commit", lambda t: (t.historian_ms, t.historian_process_ms)),
    ("MES commit's 4 moved baselines of 40", lambda t: (t.mes_ms, t.mes_process_ms)),
    ("MES facts told of a count in the open hour", lambda t: (t.facts_ms, t.facts_process_ms)),
)
"""What Part C prints of each run: (writer thread, process) CPU ms."""


def _print_figures(
    what: str, runs: dict[str, list[WriterCommits]], of: Callable[[WriterCommits], tuple[float, float]], first: str
) -> None:
    """Each tree's medians of ``of``, and after the first tree its ratio to the first (the baseline, if any)."""
    medians = {label: _spread([of(timed) for timed in runs_of]) for label, runs_of in runs.items()}
    (base_thread, base_process), _ = medians[first]
    for label, ((thread, process), spread) in medians.items():
        ratio = f"  ({thread / base_thread:.2f}x, {process / base_process:.2f}x the first's)" if label != first else ""
        print(f"{what}, {label}: writer thread {thread:.2f} ms, process {process:.2f} ms (runs {spread}){ratio}",
              flush=True)  # fmt: skip


def _spread(runs: Sequence[tuple[float, float]]) -> tuple[tuple[float, float], str]:
    """The medians over the runs of (thread, process) ms, and each run's figures."""
    medians = (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs))
    return medians, ", ".join(f"{thread:.2f}/{process:.2f}" for thread, process in runs)


# -- the run --------------------------------------------------------------------------------------


def _summary(
    a: Ingest | None, base: dict[str, float] | None, b: list[tuple[str, Timing, Timing]], old: Ingest | None
) -> None:
    print("\n== summary")
    if a is not None and old is not None:
        print(
            f"  baseline hub: sustained {old.best:,.0f} rows/s, peak RSS {old.rss:.0f} MiB;"
            f" this tree {a.best:,.0f} rows/s ({a.best / old.best if old.best else float('nan'):.2f}x),"
            f" peak RSS {a.rss:.0f} MiB"
        )
        print(f"  hub CPU per stored row: baseline {old.cpu_us:.1f} us, this tree {a.cpu_us:.1f} us"
              f" ({old.cpu_us / a.cpu_us:.2f}x less)")  # fmt: skip
    if a is not None and base is not None:
        settings = HistorianSection()
        print(f"Part A (2 cores; flush_interval_s {settings.flush_interval_s}, batch_rows {settings.batch_rows},"
              f" max_pending_rows {settings.max_pending_rows})")  # fmt: skip
        lines = [
            ("ingest sustained, broker -> DuckDB (uns up)", f"{a.best:,.0f} rows/s"),
            ("publish -> queryable at 10k/s, p50 / p99", f"{a.p50:.0f} / {a.p99:.0f} ms"),
            ("publish -> historian received, p50 / p99", f"{a.received[0]:.1f} / {a.received[1]:.1f} ms"),
            ("slowest commit (health max_commit_ms)", f"{a.max_commit:.0f} ms"),
            ("peak RSS of the hub", f"{a.rss:.0f} MiB"),
            ("parse alone (RowParser)", f"{base['parse']:,.0f} rows/s"),
            ("Store.commit alone (Arrow)", f"{base['arrow']:,.0f} rows/s"),
            ("executemany, 10k per transaction", f"{base['executemany']:,.0f} rows/s"),
            ("ratio ingest / executemany", f"{a.best / base['executemany']:.1f}x"),
        ]
        for name, value in lines:
            print(f"  {name:<46} {value:>18}")
    if b:
        print("Part B (ms: first run on a fresh connection / median of the next runs; ratio = ours / naive median)")
        print(f"  {'query':<44} {'ours':>13} {'naive':>13} {'ratio':>7}")
        for name, ours, naive in b:
            print(f"  {name:<44} {ours!s:>13} {naive!s:>13} {ours.median / naive.median:>6.2f}x")


async def _main(args: argparse.Namespace) -> None:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="uns-bench-historian-") as name:
        tmp = Path(name)
        old = a = None
        if args.part in ("a", "all"):
            if args.baseline is not None:
                with hub_source(args.baseline) as source:
                    old = await _part_a(args, tmp, source, f"baseline {args.baseline}")
            with hub_source(args.current) as source:
                a = await _part_a(args, tmp, source, args.current or "this tree")
        base = await asyncio.to_thread(_baselines, args, tmp) if args.part in ("a", "all") else None
        b = await asyncio.to_thread(part_b, args, tmp) if args.part in ("b", "all") else []
        if args.part in ("c", "all"):
            await asyncio.to_thread(_part_c, args)
    _summary(a, base, b, old)
    print(f"\n(whole bench {time.monotonic() - started:.0f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=6.0, help="length of each load step")
    parser.add_argument("--rows", type=int, default=10_000_000, help="samples in the Part B database")
    parser.add_argument(
        "--rates",
        type=lambda s: [float(x) for x in s.split(",")],
        default=[20_000.0, 25_000.0, 30_000.0, 35_000.0, 50_000.0, 100_000.0, 150_000.0],
        help="offered rows/s steps",
    )
    parser.add_argument("--latency-rate", type=float, default=10_000.0, help="rows/s during the latency run")
    parser.add_argument("--topics", type=int, default=10_000, help="distinct data topics of the load")
    parser.add_argument("--arrow-rows", type=int, default=200_000, help="rows for the Store.commit baseline")
    parser.add_argument("--executemany-rows", type=int, default=20_000, help="rows for the executemany baseline")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per query after the first")
    parser.add_argument("--part", choices=("a", "b", "c", "all"), default="all", help="run only part A, B or C")
    parser.add_argument("--commit-runs", type=int, default=3, help="Part C: processes per tree and commit size")
    parser.add_argument("--baseline", help="also run Parts A and C on this commit first (ratios printed)")
    parser.add_argument("--current", help="run Parts A and C on this commit (e.g. HEAD) instead of the working tree")
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
