"""Benchmark: the CPU an idle ``uns up`` with the demo plant uses, read from ``/proc/<pid>/stat``.

The hub runs as users run it (its own process, ports 0, a temporary data dir, the demo on). After
``--warmup-s`` (the demo's machines come up, the MES facts of closed hours are built), the user and
system CPU time of the hub and its children are read ``--seconds`` apart: CPU % of one core. With
``--profile`` a py-spy profile of the same stretch is summarised by function (py-spy must be on PATH).

    uv run python -m bench.hub_idle [--warmup-s 30] [--seconds 60]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from bench.hub_process import hub_process, rss_mib
from uns.historian.database import Database
from uns.mes.baselines import SavedBaselines
from uns.mes.derive import CounterBaseline

__all__ = ["cpu_seconds", "main"]

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its waited-for children (fields 14-17 of ``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(value) for value in fields[11:15]) / _TICK


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warmup-s", type=float, default=30.0, help="seconds after the ready line before measuring")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to measure")
    parser.add_argument("--counters", type=int, default=40, help="counter baselines the adapter holds")
    parser.add_argument("--moved", type=int, default=4, help="of them, moved since the last commit")
    args = parser.parse_args()
    old, new = baselines(args.counters, args.moved)
    print(f"baselines per commit ({args.counters} counters, {args.moved} moved): every one with executemany"
          f" {old:.2f} ms, the moved as one Arrow insert {new:.2f} ms ({old / new:.0f}x)")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="uns-bench-idle-") as name, hub_process(Path(name)) as hub:
        time.sleep(args.warmup_s)  # a fixed stretch to measure, not a wait for a condition
        cpu0, wall0 = cpu_seconds(hub.pid), time.monotonic()
        time.sleep(args.seconds)
        cpu1, wall1 = cpu_seconds(hub.pid), time.monotonic()
        used = cpu1 - cpu0
        print(f"uns up (demo) idle: {used:.2f} CPU-s in {wall1 - wall0:.1f} s = {100 * used / (wall1 - wall0):.1f} %"
              f" of one core; RSS {rss_mib(hub.pid):.0f} MiB")  # fmt: skip


if __name__ == "__main__":
    main()
