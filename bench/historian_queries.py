"""Benchmark part B of ``bench.historian``: History queries on a 10M-sample database against naive SQL.

Builds 10k series (one 1 s metric over 30 days, a line of state series, the rest spread evenly),
runs the rollups once, and times the ``History`` API (first run on a fresh connection, median of
``runs`` after) against the SQL a user would write over the raw table.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import orjson

from model.config import HistorianSection
from uns.clock import utc_now
from uns.historian.queries import History
from uns.historian.query_api import answer_bytes, run_endpoint
from uns.historian.query_buckets import plan_sources
from uns.historian.retention import apply_retention
from uns.historian.rollups import Rollups
from uns.query.args import Params, document_bytes
from uns.query.timespec import UTC_ZONE
from uns.store.database import Database

__all__ = ["Timing", "answers", "part_b"]

FAST = "acme/dallas/packaging/line1/filler/data/Temperature"
STATES = "acme/dallas/packaging/line1/+/data/State"
STATE_CELL1 = "acme/dallas/packaging/line1/cell1/data/State"
DAY_S, MONTH_S = 86_400, 30 * 86_400
_OTHER = 9_994  # 1 fast metric + 5 states + these = 10k series
_BUILD_MEMORY_MB = 3_072  # the time-ordered INSERT of 10M rows sorts past the hub's default 512 MiB

_BUILD_SERIES = f"""
INSERT INTO series
SELECT 1, '{FAST}', 'acme/dallas/packaging/line1/filler', 'data', 'Temperature', 'Double', 'degC', false, $start
UNION ALL
SELECT 1 + c, printf('acme/dallas/packaging/line1/cell%d/data/State', c),
    printf('acme/dallas/packaging/line1/cell%d', c), 'data', 'State', 'Int32', NULL, false, $start FROM range(1, 6) t(c)
UNION ALL
SELECT 7 + n, printf('acme/dallas/area%d/line%d/cell%d/data/m%d', n // 2000, n // 200 % 10, n // 20 % 10, n % 20),
    printf('acme/dallas/area%d/line%d/cell%d', n // 2000, n // 200 % 10, n // 20 % 10), 'data', 'm' || (n % 20),
    'Double', 'bar', false, $start FROM range(0, {_OTHER}) t(n)
"""  # noqa: S608  (our constants)
_BUILD_SAMPLES = f"""
INSERT INTO samples
SELECT sid, ts, v, NULL, NULL, 'good', false, NULL, ts + to_milliseconds(5 + (hash(sid, ts) % 50)::BIGINT), 0 FROM (
    SELECT 1 AS sid, $start + to_seconds(i) AS ts, 20 + 5 * sin(i / 3600) + (hash(i) % 1000)::INT / 1000 AS v
    FROM range(0, {MONTH_S}) t(i)
    UNION ALL  -- machine state codes 1..7, a sample every 5 min with up to 2 min of jitter
    SELECT 1 + c, $start + to_seconds(i * 300 + (hash(i, c) % 120)::BIGINT), (1 + hash(c, i) % 7)::DOUBLE
    FROM range(1, 6) a(c), range(0, {MONTH_S // 300}) b(i)
    UNION ALL
    SELECT 7 + n, $start + to_milliseconds(i * $step + (n * 7919) % $step), (hash(n, i) % 10000)::INT / 100
    FROM range(0, {_OTHER}) a(n), range(0, $per) b(i)
) ORDER BY ts  -- live ingest appends in time order: series interleave in every row group
"""  # noqa: S608  (our constants)
_BUILD_LATEST = """
INSERT INTO latest SELECT series_id, max(ts), arg_max(value, ts), NULL, NULL, 'good', false, NULL, max(received), 0
FROM samples GROUP BY series_id
"""


def _build(path: Path, rows: int, now: datetime) -> dict[str, float]:
    start = now - timedelta(seconds=MONTH_S)
    per = (rows - MONTH_S - 5 * (MONTH_S // 300)) // _OTHER
    if per < 1:
        raise SystemExit(f"--rows must be at least {MONTH_S + 5 * MONTH_S // 300 + _OTHER}")
    params = {"start": start, "per": per, "step": MONTH_S * 1000 // per}
    with Database(path=path, memory_limit_mb=_BUILD_MEMORY_MB) as db:
        connection = db.connection
        t = time.perf_counter()
        connection.execute(_BUILD_SERIES, {"start": start})
        connection.execute(_BUILD_SAMPLES, params)
        connection.execute(_BUILD_LATEST)
        connection.execute("CHECKPOINT")
        build_s = time.perf_counter() - t
        t = time.perf_counter()
        report = Rollups().run(connection, now=now)
        rollup_s = time.perf_counter() - t
        count = connection.execute("SELECT count(*) FROM samples").fetchone()
    assert count is not None
    size = path.stat().st_size / 2**20
    print(f"built {count[0]:,} samples in {build_s:.1f} s ({size:.0f} MiB); first Rollups.run:")
    print(f"  {report.rows_1m:,} 1-minute and {report.rows_1h:,} 1-hour rows in {rollup_s:.1f} s")
    return {"samples": float(count[0]), "build_s": build_s, "rollup_s": rollup_s}


@dataclass
class Timing:
    """One query's time on a fresh connection, the median of the next runs, and the rows it answered."""

    cold: float
    median: float
    rows: int

    def __str__(self) -> str:
        return f"{self.cold * 1000:.0f} / {self.median * 1000:.0f}"


Work = Callable[[History, duckdb.DuckDBPyConnection], int]


def _time(path: Path, now: datetime, work: Work, runs: int) -> Timing:
    """First run on a fresh connection (DuckDB's buffers empty, the OS cache warm), then the median of ``runs``."""
    with Database(path=path, read_only=True) as db:
        history = History(db, clock=lambda: now)
        cursor = db.reader()
        try:
            times: list[float] = []
            for _ in range(1 + runs):
                t = time.perf_counter()
                rows = work(history, cursor)
                times.append(time.perf_counter() - t)
        finally:
            cursor.close()
    return Timing(times[0], statistics.median(times[1:] or times), rows)


def _fetch(sql: str, params: object) -> Work:
    return lambda _, cursor: len(cursor.execute(sql, params).fetchall())


_NAIVE_LAST_ARGMAX = """SELECT s.topic, max(x.ts), arg_max(x.value, x.ts) FROM samples x JOIN series s USING (series_id)
GROUP BY s.topic ORDER BY s.topic"""
_NAIVE_LAST_QUALIFY = """SELECT s.topic, x.ts, x.value FROM samples x JOIN series s USING (series_id)
QUALIFY row_number() OVER (PARTITION BY x.series_id ORDER BY x.ts DESC) = 1 ORDER BY s.topic"""
_NAIVE_BUCKETS = """SELECT time_bucket(INTERVAL 1 minute, x.ts) AS b, avg(x.value), min(x.value), max(x.value),
    arg_min(x.value, x.ts), arg_max(x.value, x.ts), count(x.value)
FROM samples x JOIN series s USING (series_id) WHERE s.topic = $topic AND x.ts >= $start AND x.ts < $end
GROUP BY b ORDER BY b"""
_NAIVE_STATES = """SELECT topic, value, sum(epoch_ms(coalesce(next_ts, $end)) - epoch_ms(ts)) / 1000 AS seconds FROM (
    SELECT s.topic, x.ts, x.value, lead(x.ts) OVER (PARTITION BY x.series_id ORDER BY x.ts) AS next_ts
    FROM samples x JOIN series s USING (series_id)
    WHERE s.topic LIKE 'acme/dallas/packaging/line1/%/data/State' AND x.ts >= $start AND x.ts < $end
) GROUP BY topic, value ORDER BY topic, seconds DESC"""
_NAIVE_RAW = """SELECT x.ts, x.value FROM samples x JOIN series s USING (series_id)
WHERE s.topic = $topic AND x.ts >= $start AND x.ts < $end ORDER BY x.ts"""
_NAIVE_ASOF = """SELECT m.ts, m.value, c.value AS state FROM (
    SELECT x.ts, x.value FROM samples x JOIN series s USING (series_id)
    WHERE s.topic = $topic AND x.ts >= $start AND x.ts < $end
) m ASOF LEFT JOIN (
    SELECT x.ts, x.value FROM samples x JOIN series s USING (series_id) WHERE s.topic = $context
) c ON m.ts >= c.ts ORDER BY m.ts"""


def _near(new: bytes, old: bytes) -> str:
    """Why two answers differ: only in avg's last bits (DuckDB's parallel sum varies from run to run), else fail."""
    a, b = orjson.loads(new), orjson.loads(old)
    rows_a, rows_b = a.pop("rows"), b.pop("rows")
    if a != b or len(rows_a) != len(rows_b):
        raise SystemExit("the columnar answer differs from the row path's")
    for x, y in zip(rows_a, rows_b, strict=True):
        avg_x, avg_y = x.pop("avg", None), y.pop("avg", None)
        if x != y or not (avg_x == avg_y or math.isclose(avg_x, avg_y, rel_tol=1e-12)):
            raise SystemExit(f"the columnar answer differs from the row path's: {x} != {y}")
    return "equal but for avg's last bits, which vary between runs of either path"


def _writer(endpoint: str, params: Params, written: dict[str, bytes], path: str) -> Work:
    """Writes one answer by the columnar (``new``) or the row (``old``) path, keeping its bytes in ``written``."""

    def work(history: History, _: duckdb.DuckDBPyConnection) -> int:
        answer = answer_bytes if path == "new" else lambda h, e, p: document_bytes(run_endpoint(h, e, p))
        written[path] = answer(history, endpoint, params)
        return len(written[path])

    return work


def part_b(args: argparse.Namespace, tmp: Path) -> list[tuple[str, Timing, Timing]]:
    """Build the database under ``tmp`` (``args.rows`` samples) and time each query ``1 + args.runs`` times."""
    print(f"\n== Part B: queries on a {args.rows:,}-sample database (History API vs naive SQL)")
    now = utc_now().replace(second=0, microsecond=0)
    month, day = now - timedelta(seconds=MONTH_S), now - timedelta(seconds=DAY_S)
    path, copy = tmp / "history.duckdb", tmp / "history-retained.duckdb"
    _build(path, args.rows, now)
    shutil.copy2(path, copy)
    with Database(path=copy) as db:  # rollups answer only where retention deleted the raw samples
        deleted = apply_retention(db.connection, HistorianSection(raw_retention_days=1), now=now).samples
    print(f"a copy with raw kept 1 day ({deleted:,} samples deleted by retention); 1-min avg plans:")
    print(f"  full database {_plan(path, now)}, copy {_plan(copy, now)}")
    month_args, day_args = {"topic": FAST, "start": month, "end": now}, {"topic": FAST, "start": day, "end": now}
    states_args, asof_args = {"start": month, "end": now}, {**day_args, "context": STATE_CELL1}
    ours: dict[str, Work] = {
        "last": lambda h, _: len(h.last("#")),
        "agg": lambda h, _: len(h.aggregate(FAST, month, now, bucket=timedelta(minutes=1), fill="none")),
        "states": lambda h, _: len(h.state_durations(STATES, month, now)),
        "raw": lambda h, _: len(h.raw(FAST, day, now, limit=100_000)),
        "asof": lambda h, _: len(h.asof(FAST, day, now, context=[STATE_CELL1], limit=100_000)),
    }
    # fmt: off
    cases: list[tuple[str, Path, Work, Work]] = [
        ("last values, 10k topics (naive arg_max)", path, ours["last"], _fetch(_NAIVE_LAST_ARGMAX, None)),
        ("last values, 10k topics (naive QUALIFY)", path, ours["last"], _fetch(_NAIVE_LAST_QUALIFY, None)),
        ("1-min avg, 30 days, from raw", path, ours["agg"], _fetch(_NAIVE_BUCKETS, month_args)),
        # the naive one runs on the full database: without our rollups a user keeps and scans raw
        ("1-min avg, 30 days, rollup_1m + 1 day raw", copy, ours["agg"], _fetch(_NAIVE_BUCKETS, month_args)),
        ("state durations, 5 cells, 30 days", path, ours["states"], _fetch(_NAIVE_STATES, states_args)),
        ("raw, 1 metric, 1 day", path, ours["raw"], _fetch(_NAIVE_RAW, day_args)),
        ("as-of join, 1 metric + state, 1 day", path, ours["asof"], _fetch(_NAIVE_ASOF, asof_args)),
    ]
    # fmt: on
    results: list[tuple[str, Timing, Timing]] = []
    for name, where, work, naive_work in cases:
        timing, naive = _time(where, now, work, args.runs), _time(path, now, naive_work, args.runs)
        results.append((name, timing, naive))
        print(f"  {name:<44} ours {timing} ({timing.rows} rows), naive {naive} ({naive.rows} rows)", flush=True)
    return results + answers(path, now, args.runs)


def answers(path: Path, now: datetime, runs: int) -> list[tuple[str, Timing, Timing]]:
    """The HTTP/CLI answers' bytes: columnar (``answer_bytes``) against the row path, checked byte for byte.

    Each path's first run is on a freshly opened file; the ``runs`` after alternate between the two
    paths on one connection, so a change of the shared box's load hits both alike. Besides the wall
    time, the process's CPU time (DuckDB's threads included) is printed: under load it moves less.
    """
    print("HTTP answers (JSON bytes): columnar vs the row path (run_endpoint + document_bytes), runs alternating")
    span = {"start": [(now - timedelta(seconds=DAY_S)).isoformat()], "end": [now.isoformat()], "limit": ["100000"]}
    month = {"start": [(now - timedelta(seconds=MONTH_S)).isoformat()], "end": [now.isoformat()]}
    cases: list[tuple[str, str, Params]] = [
        ("answer raw, 1 day (86,400 rows)", "raw", {"topic": [FAST], **span}),
        ("answer raw, 1 day, tz America/Chicago", "raw", {"topic": [FAST], **span, "tz": ["America/Chicago"]}),
        ("answer aggregate 1 min, 30 days", "aggregate", {"topic": [FAST], **month, "bucket": ["1m"]}),
        ("answer asof + cell state, 1 day", "asof", {"topic": [FAST], **span, "context": [STATE_CELL1]}),
    ]
    results: list[tuple[str, Timing, Timing]] = []
    for name, endpoint, params in cases:
        written: dict[str, bytes] = {}
        new, old = _writer(endpoint, params, written, "new"), _writer(endpoint, params, written, "old")
        load = os.getloadavg()[0]
        (columnar, rows), (cpu_new, cpu_old) = _alternating(path, now, (new, old), runs)
        same = "equal" if written["new"] == written["old"] else _near(written["new"], written["old"])
        results.append((name, columnar, rows))
        print(
            f"  {name:<44} columnar {columnar}, rows {rows}: {rows.median / columnar.median:.1f}x"
            f" (CPU {cpu_new * 1000:.0f} / {cpu_old * 1000:.0f} ms, {cpu_old / cpu_new:.1f}x;"
            f" load {load:.1f}-{os.getloadavg()[0]:.1f}; {columnar.rows:,} bytes, {same})",
            flush=True,
        )
    return results


def _alternating(path: Path, now: datetime, works: tuple[Work, Work], runs: int) -> tuple[list[Timing], list[float]]:
    """Each work's first run on a fresh connection, then ``runs`` of each in turn on one: timings and median CPU s."""
    firsts = [_time(path, now, work, 0).cold for work in works]
    walls: list[list[float]] = [[] for _ in works]
    cpus: list[list[float]] = [[] for _ in works]
    sizes = [0 for _ in works]
    with Database(path=path, read_only=True) as db:
        history = History(db, clock=lambda: now)
        cursor = db.reader()
        try:
            for _ in range(runs):
                for index, work in enumerate(works):
                    wall, cpu = time.perf_counter(), time.process_time()
                    sizes[index] = work(history, cursor)
                    walls[index].append(time.perf_counter() - wall)
                    cpus[index].append(time.process_time() - cpu)
        finally:
            cursor.close()
    timings = [
        Timing(first, statistics.median(wall), size) for first, wall, size in zip(firsts, walls, sizes, strict=True)
    ]
    return timings, [statistics.median(cpu) for cpu in cpus]


def _plan(path: Path, now: datetime) -> str:
    """Which tables answer the 30-day 1-minute aggregate, as the planner chose them."""
    with Database(path=path, read_only=True) as db, contextlib.closing(db.reader()) as cursor:
        row = cursor.execute("SELECT series_id FROM series WHERE topic = ?", [FAST]).fetchone()
        assert row is not None
        plan = plan_sources(cursor, row[0], now - timedelta(seconds=MONTH_S), now, timedelta(minutes=1), UTC_ZONE)
    return "[" + ", ".join(f"{table} {(hi - lo).total_seconds() / DAY_S:.1f} d" for table, lo, hi in plan) + "]"
