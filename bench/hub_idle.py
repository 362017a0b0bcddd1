"""Benchmark: the CPU an idle ``uns up`` with the demo plant uses, read from ``/proc/<pid>/stat``.

The hub runs as users run it (its own process, ports 0, a temporary data dir, the demo on). After
``--warmup-s`` (the demo's machines come up, the MES facts of closed hours are built), the user and
system CPU time of the hub and its children are read ``--seconds`` apart: CPU % of one core, the event loop's
thread apart (the rest is the historian's writer thread and the simulated PLCs' server threads), and the idle
RSS at the end, then for ``--rates-s`` what the UNS carries: messages a second on the ISA-95 ``data`` topics and on
``spBv1.0`` (read by one more MQTT client, after the CPU was measured). ``--before REV`` runs the hub of that commit
too (``git archive``), turn about with this tree (or with ``--after REV``, so others' uncommitted work in the tree
is left out), ``--runs`` times each, and prints the ratio of the medians: a baseline from the same run on the same box.

``--side-by-side`` starts both trees' hubs at once and reads both over the same windows (``--runs`` of them): the
box's speed drifts from minute to minute by more than a change's effect, and side by side both hubs see the same.

    uv run python -m bench.hub_idle [--warmup-s 30] [--seconds 60] [--before HEAD~3 [--after HEAD] --runs 2]
                                    [--side-by-side]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import duckdb

from bench.hub_process import hub_process, rss_mib
from model.config import MesSection
from uns.historian.rows import SampleRow
from uns.historian.store import Batch, Store
from uns.mes.baselines import SavedBaselines
from uns.mes.changes import Change
from uns.mes.derive import CounterBaseline
from uns.mes.facts import FactBuilder
from uns.mqtt.client import MqttClient
from uns.mqtt.types import BrokerUrl
from uns.store.database import Database

__all__ = [
    "IdleRun",
    "WriterCommits",
    "commits_of",
    "cpu_seconds",
    "main",
    "main_thread_seconds",
    "measure",
    "thread_cpu_seconds",
    "writer_commits",
]

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int, *, children: bool = True) -> float:
    """User + system CPU seconds of ``pid`` so far, with ``children`` its waited-for children's too (fields 14-17
    of ``/proc/<pid>/stat``; 14-15 without)."""
    return _stat_seconds(Path(f"/proc/{pid}/stat"), 4 if children else 2)


def thread_cpu_seconds(pid: int) -> dict[int, float]:
    """User + system CPU seconds of each thread of ``pid`` by thread id (a thread ended meanwhile is left out)."""
    found: dict[int, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            found[int(task.name)] = _stat_seconds(task / "stat", 2)
    return found


def _stat_seconds(stat: Path, fields: int) -> float:
    values = stat.read_text().rsplit(")", 1)[1].split()[11 : 11 + fields]  # after the name, which may hold spaces
    return sum(int(value) for value in values) / _TICK


def baselines(counters: int, moved: int, commits: int = 20) -> tuple[float, float]:
    """Milliseconds per commit spent saving baselines: every one with ``executemany``, then only the moved."""
    with (
        tempfile.TemporaryDirectory(prefix="uns-bench-baselines-") as name,
        Database(path=Path(name) / "b.duckdb") as db,
    ):
        connection, saved = db.connection, SavedBaselines()
        state = {f"acme/s/a/l/c{k}/data/GoodCount": CounterBaseline(value=k, ts_ms=0) for k in range(counters)}
        old, new = [], []
        for commit in range(1, commits + 1):
            for k, topic in enumerate(list(state)[:moved]):  # the counters that moved since the last commit
                state[topic] = CounterBaseline(value=commit * 10 + k, ts_ms=commit * 1000)
            rows = [(topic, float(b.value), b.ts_ms) for topic, b in state.items()]
            started = time.perf_counter()
            connection.executemany(
                "INSERT OR REPLACE INTO mes_counter_state VALUES (?, ?, make_timestamptz(? * 1000))", rows
            )
            old.append(time.perf_counter() - started)
            started = time.perf_counter()
            changed = saved.moved(state)
            saved.save(connection, changed)
            saved.committed(changed)
            new.append(time.perf_counter() - started)
    return statistics.median(old) * 1000, statistics.median(new) * 1000


@dataclasses.dataclass(frozen=True)
class WriterCommits:
    """CPU ms of the writer's commits (medians): the writer thread's alone and the whole process's, which adds
    the work DuckDB's worker threads do for the commit."""

    historian_ms: float
    historian_process_ms: float
    mes_ms: float
    mes_process_ms: float
    facts_ms: float
    """The MES's facts told of the commit's production count (``FactBuilder.changed``, after each MES commit)."""
    facts_process_ms: float


def writer_commits(rows: int = 25, series: int | None = None, commits: int = 190) -> WriterCommits:
    """The CPU of a plant's two commits on the writer thread (medians of ``commits``), with the store modules on
    the path.

    A historian commit of ``rows`` new samples, one each of the next ``rows`` of ``series`` series (default
    ``rows``: every series in every commit), and an MES commit's save of 4 moved counter baselines of 40, each
    in its own transaction, as the writer thread runs them; then the MES's facts (a month of closed hours built)
    told of a production count in the open hour, as the MES's change listener is after each of its commits.
    Measured once every series has its ``latest`` row and after 10 more commits: a series' first sample is not
    what a running plant's commits carry.
    """
    series = rows if series is None else series
    warmup = -(-series // rows) + 10
    with (
        tempfile.TemporaryDirectory(prefix="uns-bench-commits-") as name,
        Database(path=Path(name) / "c.duckdb") as db,
    ):
        connection, store, saved = db.connection, Store(db.connection), SavedBaselines()
        state = {f"acme/s/a/l/c{k}/data/GoodCount": CounterBaseline(value=k, ts_ms=0) for k in range(40)}
        facts = _built_facts(connection, before_ms=_START_MS)
        times: list[tuple[float, ...]] = []
        for commit in range(warmup + commits):
            at = _START_MS + commit * max(1000, rows)  # each series' samples newer than its last
            picked = [((commit * rows + i) % series, i) for i in range(rows)]
            samples = [
                SampleRow(topic=f"acme/s/a/l{n % 5}/c{n}/data/m{n % 7}", path=f"acme/s/a/l{n % 5}/c{n}",
                          class_word="data", metric=f"m{n % 7}", ts_ms=at + i, value=commit + i / 10,
                          value_text=None, value_json=None, quality="good", historical=False, source="g/n/d",
                          datatype="Double", unit=None, unbound=False)
                for n, i in picked
            ]  # fmt: skip
            thread, process = time.thread_time(), time.process_time()
            store.commit(Batch(samples=samples, received_ms=[at + 50] * rows))
            historian = time.thread_time() - thread, time.process_time() - process
            for k, topic in enumerate(list(state)[:4]):
                state[topic] = CounterBaseline(value=commit * 10 + k, ts_ms=at)
            thread, process = time.thread_time(), time.process_time()
            moved = saved.moved(state)
            connection.execute("BEGIN TRANSACTION")
            saved.save(connection, moved)
            connection.execute("COMMIT")
            saved.committed(moved)
            mes = time.thread_time() - thread, time.process_time() - process
            thread, process = time.thread_time(), time.process_time()
            facts.changed([Change(event="production_count", path="acme/s/a/l/c1", start_ms=at, end_ms=None)])
            times.append((*historian, *mes, time.thread_time() - thread, time.process_time() - process))
    return WriterCommits(*(statistics.median(column) * 1000 for column in zip(*times[warmup:], strict=True)))


_START_MS = 1_764_000_000_000  # on an hour: the commits' samples and counts fall in the hours from it on


def _built_facts(connection: duckdb.DuckDBPyConnection, *, before_ms: int) -> FactBuilder:
    """The MES's fact builder over a month of count facts (17 paths) built for the closed hours before ``before_ms``."""
    FactBuilder(connection, MesSection())  # its tables
    hour = before_ms // 3_600_000
    connection.execute("INSERT INTO mes_fact_count_hours SELECT unnest(range(?, ?))", [hour - 720, hour])
    connection.execute(
        "INSERT INTO mes_fact_counts SELECT 'acme/s/a/l/c' || i % 17, ? + i // 17, 'WO-1', 30, 29 FROM range(?) t(i)",
        [hour - 720, 720 * 17],
    )
    return FactBuilder(connection, MesSection())  # as a hub's, started on a file with these facts


def commits_of(
    source: Path | None, rows: int = 25, series: int | None = None, commits: int = 190
) -> WriterCommits | None:
    """``writer_commits`` run in a process of its own with the modules of ``source`` (None: this tree); None for
    a tree older than the modules it drives (``uns.store``, the MES baselines)."""
    from bench.hub_process import run_child  # not at the top: this file's child runs on ``source``'s bench/

    shape = f"{rows},{rows if series is None else series},{commits}"
    try:
        return WriterCommits(**run_child(__file__, source, ["--commits-only", shape]))
    except subprocess.CalledProcessError as failed:
        if source is not None and "ModuleNotFoundError" in failed.stderr:
            return None
        raise RuntimeError(f"the writer's commits failed: {failed.stderr}") from failed


@dataclasses.dataclass(frozen=True)
class IdleRun:
    """One measured stretch of an idle hub."""

    tree: str
    cpu_pct: float
    main_pct: float
    rss_mib: float
    load: float
    data_per_s: float = float("nan")
    """Messages a second on ``<enterprise>/.../data/...`` (the ISA-95 values, retained ones left out)."""
    sparkplug_per_s: float = float("nan")
    """Messages a second on ``spBv1.0/...`` (the edge nodes' DATA and the rest)."""


def main_thread_seconds(pid: int) -> float:
    """User + system CPU seconds of the hub's main thread (its event loop) alone."""
    return _stat_seconds(Path(f"/proc/{pid}/task/{pid}/stat"), 2)


async def _count(url: str, seconds: float) -> tuple[float, float]:
    """Live messages a second on the UNS's data topics and on Sparkplug over ``seconds``."""
    data = sparkplug = 0
    async with MqttClient(url=BrokerUrl.from_str(url), client_id="bench-idle-rates") as client:
        await client.subscribe(["+/+/+/+/+/data/#", "+/+/+/+/data/#", "+/+/+/data/#", "spBv1.0/#"], qos=0)
        started = time.monotonic()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                async for message in client.messages():
                    if message.retain:
                        continue  # what the broker held on subscribing, not traffic
                    if message.topic.startswith("spBv1.0/"):
                        sparkplug += 1
                    else:
                        data += 1
        elapsed = time.monotonic() - started
    return data / elapsed, sparkplug / elapsed


def measure(tree: str, source: Path | None, warmup_s: float, seconds: float, rates_s: float = 0.0) -> IdleRun:
    """Start ``uns up`` with the demo from ``source`` (None: this tree), wait ``warmup_s``, measure ``seconds``."""
    return measure_together([(tree, source)], warmup_s, seconds, 1, rates_s)[0]


def measure_together(
    trees: Sequence[tuple[str, Path | None]], warmup_s: float, seconds: float, windows: int, rates_s: float = 0.0
) -> list[IdleRun]:
    """Every tree's hub at once, each measured over the same ``windows`` stretches of ``seconds`` after ``warmup_s``.

    The box's own speed drifts from minute to minute (the same tree read 5.0-6.8 % in one sequential run), more
    than a change's effect; side by side, both hubs see the same drift, so their difference is the change's.
    """
    runs: list[IdleRun] = []
    with contextlib.ExitStack() as stack:
        hubs = []
        for tree, source in trees:
            name = stack.enter_context(tempfile.TemporaryDirectory(prefix="uns-bench-idle-"))
            hubs.append((tree, stack.enter_context(hub_process(Path(name), source=source))))
        time.sleep(warmup_s)  # a fixed stretch to measure, not a wait for a condition
        for _ in range(windows):
            start = [(cpu_seconds(hub.pid), main_thread_seconds(hub.pid)) for _, hub in hubs]
            wall0 = time.monotonic()
            time.sleep(seconds)
            wall = time.monotonic() - wall0
            for (tree, hub), (cpu0, main0) in zip(hubs, start, strict=True):
                cpu, main = (
                    100 * (cpu_seconds(hub.pid) - cpu0) / wall,
                    100 * (main_thread_seconds(hub.pid) - main0) / wall,
                )
                runs.append(IdleRun(tree, cpu, main, rss_mib(hub.pid), os.getloadavg()[0]))
        if rates_s > 0:
            for tree, hub in hubs:
                data, sparkplug = asyncio.run(_count(hub.mqtt, rates_s))
                runs = [
                    dataclasses.replace(r, data_per_s=data, sparkplug_per_s=sparkplug) if r.tree == tree else r
                    for r in runs
                ]
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warmup-s", type=float, default=30.0, help="seconds after the ready line before measuring")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to measure")
    parser.add_argument("--before", help="also run the hub of this commit (git archive), turn about with this tree")
    parser.add_argument("--after", help="run the hub of this commit as 'now' instead of this working tree")
    parser.add_argument("--runs", type=int, default=1, help="runs of each tree (side by side: measured windows)")
    parser.add_argument("--side-by-side", action="store_true", help="run both trees' hubs at once, measured together")
    parser.add_argument("--rates-s", type=float, default=10.0, help="seconds to count UNS messages after; 0 = no")
    parser.add_argument("--counters", type=int, default=40, help="counter baselines the adapter holds")
    parser.add_argument("--moved", type=int, default=4, help="of them, moved since the last commit")
    parser.add_argument("--commits-only", metavar="ROWS,SERIES,COMMITS", help=argparse.SUPPRESS)  # commits_of's child
    args = parser.parse_args()
    if args.commits_only:
        rows, series, count = (int(part) for part in args.commits_only.split(","))
        print(json.dumps(dataclasses.asdict(writer_commits(rows, series, count))))
        return
    from bench.hub_process import compared_trees, turn_about  # the parent's only: ``source``'s bench/ may lack them

    old, new = baselines(args.counters, args.moved)
    print(f"baselines per commit ({args.counters} counters, {args.moved} moved): every one with executemany"
          f" {old:.2f} ms, the moved as one Arrow insert {new:.2f} ms ({old / new:.0f}x)")  # fmt: skip
    runs: list[IdleRun] = []
    with compared_trees(args.before, args.after) as trees:
        for tree, source in trees:
            commits = commits_of(source)
            if commits is None:
                print(f"writer, {tree}: not timed (that tree predates the store modules it drives)", flush=True)
                continue
            print(f"writer, {tree}: a historian commit of 25 samples {commits.historian_ms:.2f} ms"
                  f" ({commits.historian_process_ms:.2f} ms of the process), an MES commit's 4 moved baselines"
                  f" {commits.mes_ms:.2f} ms ({commits.mes_process_ms:.2f}), its facts told of its count"
                  f" {commits.facts_ms:.2f} ms ({commits.facts_process_ms:.2f}) (thread CPU, medians of 190)",
                  flush=True)  # fmt: skip
        measured: Iterable[IdleRun]
        if args.side_by_side:
            measured = measure_together(trees, args.warmup_s, args.seconds, args.runs, args.rates_s)
        else:  # one hub at a time, as each is measured
            measured = (measure(tree, source, args.warmup_s, args.seconds, args.rates_s)
                        for tree, source in turn_about(trees, args.runs))  # fmt: skip
        for run in measured:
            runs.append(run)
            print(f"uns up (demo) idle, {run.tree}: {run.cpu_pct:.1f} % of one core ({run.main_pct:.1f} % its"
                  f" event loop), RSS {run.rss_mib:.0f} MiB, load {run.load:.1f}; UNS data {run.data_per_s:.1f}"
                  f" msg/s, Sparkplug {run.sparkplug_per_s:.1f} msg/s", flush=True)  # fmt: skip
    for tree, _source in trees:
        mine = [run for run in runs if run.tree == tree]
        print(f"{tree}: median {statistics.median(r.cpu_pct for r in mine):.1f} % of one core,"
              f" RSS {statistics.median(r.rss_mib for r in mine):.0f} MiB over {len(mine)} runs")  # fmt: skip
    if args.before is not None:
        now = trees[-1][0]
        ratio = statistics.median(r.cpu_pct for r in runs if r.tree == now) / statistics.median(
            r.cpu_pct for r in runs if r.tree != now
        )
        print(f"now / before: {ratio:.2f}x the CPU")


if __name__ == "__main__":
    main()
