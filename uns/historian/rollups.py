"""Roll raw numeric samples up into 1-minute and 1-hour buckets, incrementally from stored watermarks.

What a rollup counts: samples with a numeric ``value`` (numbers, and booleans as 0/1) whose quality
is ``good`` or ``uncertain``. ``bad`` and ``stale`` samples carry a last-known or meaningless value
and would bend averages, so they are left out; so are strings and JSON values.

Watermarks live in the ``maintenance`` table, one row per task:

- ``rollup_1m``: every 1-minute bucket before it is computed.
- ``rollup_1h``: every 1-hour bucket before it is computed (from ``rollup_1m``, never from raw).
- ``rollup_1m.received``: the newest ``received`` the last run saw. Samples received after it with
  a ``ts`` below ``rollup_1m`` are late (store-and-forward backfill): the next run recomputes from
  the oldest of them, even when nobody called ``mark_late`` (e.g. the process restarted).
- ``retention.samples`` / ``retention.rollup_1m`` (written by ``uns.historian.retention``): raw
  samples (1-minute rollups) before it were deleted, so buckets there are never recomputed: doing
  so would replace a complete rollup with one built from what is left.

Late data is tracked for all series at once: one low mark, and the next run recomputes every
series from there. Recomputing is set-based and cheap next to the bookkeeping a per-series mark
would need; backfills are rare and usually cover many series of one edge node anyway.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from datetime import UTC, datetime, timedelta

import duckdb

from model.envelope import USABLE_QUALITIES
from uns.clock import EPOCH

__all__ = [
    "HOUR",
    "MINUTE",
    "TASK_RECEIVED",
    "TASK_RETENTION_ROLLUP_1M",
    "TASK_RETENTION_SAMPLES",
    "TASK_ROLLUP_1H",
    "TASK_ROLLUP_1M",
    "RollupReport",
    "Rollups",
    "floor_time",
    "read_watermarks",
    "write_watermark",
]

log = logging.getLogger(__name__)

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)

TASK_ROLLUP_1M = "rollup_1m"
TASK_ROLLUP_1H = "rollup_1h"
TASK_RECEIVED = "rollup_1m.received"
TASK_RETENTION_SAMPLES = "retention.samples"
TASK_RETENTION_ROLLUP_1M = "retention.rollup_1m"


_INSERT_1M = f"""
INSERT INTO rollup_1m
SELECT series_id, time_bucket(INTERVAL 1 minute, ts, 'UTC') AS bucket, count(*), avg(value), min(value),
       max(value), arg_min(value, (ts, seq)), arg_max(value, (ts, seq)), min(ts), max(ts)
FROM samples
WHERE ts >= $lo AND ts < $hi AND value IS NOT NULL AND quality IN {USABLE_QUALITIES!r}
GROUP BY series_id, bucket
"""  # noqa: S608 (formats a constant tuple)

# n-weighted mean of the minute means is the mean of the raw samples
_INSERT_1H = """
INSERT INTO rollup_1h
SELECT series_id, time_bucket(INTERVAL 1 hour, bucket, 'UTC') AS hour, sum(n), sum(avg * n) / sum(n), min(min),
       max(max), arg_min(first, first_ts), arg_max(last, last_ts), min(first_ts), max(last_ts)
FROM rollup_1m
WHERE bucket >= $lo AND bucket < $hi
GROUP BY series_id, hour
"""


def floor_time(moment: datetime, step: timedelta) -> datetime:
    """The start of the UTC-aligned ``step`` bucket holding ``moment`` (which must be timezone-aware)."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment.isoformat()}: pass a timezone-aware one (UTC)")
    return EPOCH + ((moment.astimezone(UTC) - EPOCH) // step) * step


def read_watermarks(connection: duckdb.DuckDBPyConnection) -> dict[str, datetime]:
    """Every ``maintenance`` row as task name → watermark (UTC)."""
    rows = connection.execute("SELECT task, watermark FROM maintenance").fetchall()
    return {str(task): _utc(mark) for task, mark in rows}


def write_watermark(connection: duckdb.DuckDBPyConnection, task: str, watermark: datetime) -> None:
    """Set ``task``'s watermark (inside the caller's transaction)."""
    connection.execute(
        "INSERT OR REPLACE INTO maintenance (task, watermark) VALUES (?, ?)", [task, watermark]
    ).fetchall()


def _utc(value: object) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"expected a timestamp, got {value!r}")
    return value.astimezone(UTC)


def _scalar(connection: duckdb.DuckDBPyConnection, sql: str, params: object = None) -> datetime | None:
    rows = connection.execute(sql, params).fetchall()  # drain it: DuckDB refuses other work on an open result
    return None if not rows or rows[0][0] is None else _utc(rows[0][0])


def _count(connection: duckdb.DuckDBPyConnection, sql: str, params: object) -> int:
    rows = connection.execute(sql, params).fetchall()
    return int(rows[0][0]) if rows else 0


@dataclasses.dataclass(frozen=True, slots=True)
class RollupReport:
    """What one ``Rollups.run`` did; the ranges are half-open ``[start, end)``, None when untouched.

    Attributes:
        rows_1m: 1-minute buckets written (one per series and minute holding samples).
        rows_1h: 1-hour buckets written.
        range_1m: the minutes recomputed.
        range_1h: the hours recomputed.
        seconds: how long the run took.
    """

    rows_1m: int = 0
    rows_1h: int = 0
    range_1m: tuple[datetime, datetime] | None = None
    range_1h: tuple[datetime, datetime] | None = None
    seconds: float = 0.0

    @property
    def did_work(self) -> bool:
        """Whether any bucket was recomputed."""
        return self.range_1m is not None or self.range_1h is not None


class Rollups:
    """Incremental 1-minute and 1-hour rollups, run from the store's one writer thread.

    Each ``run`` recomputes, in one transaction, the minutes from the lowest pending mark (the
    ``rollup_1m`` watermark, a ``mark_late`` call, or late samples found by ``received``) up to the
    last minute closed ``settle`` before ``now`` (DELETE + INSERT of those buckets), then the hours
    those minutes touch, and advances both watermarks. The first run on a database starts from
    its oldest sample.

    Args:
        settle: how long after a minute ends it counts as closed, so samples still in the
            historian's batch (``flush_interval_s``) land before their bucket is computed.
    """

    def __init__(self, *, settle: timedelta = timedelta(seconds=10)) -> None:
        if settle < timedelta(0):
            raise ValueError(f"settle must not be negative (got {settle})")
        self._settle = settle
        self._late: datetime | None = None
        self._lock = threading.Lock()

    @property
    def pending_late(self) -> datetime | None:
        """The oldest late sample time not yet rolled up, from ``mark_late``."""
        with self._lock:
            return self._late

    def mark_late(self, series_ts_min: datetime) -> None:
        """Tell the next run that samples as old as ``series_ts_min`` were stored.

        Cheap and idempotent: the historian may call it with every batch's oldest timestamp; a
        time at or after the watermark changes nothing.
        """
        moment = floor_time(series_ts_min, MINUTE)
        with self._lock:
            if self._late is None or moment < self._late:
                self._late = moment

    def run(self, connection: duckdb.DuckDBPyConnection, *, now: datetime) -> RollupReport:
        """Recompute every pending closed bucket up to ``now - settle``; see the class docstring.

        Raises:
            duckdb.Error: the database failed; the transaction is rolled back and the late mark kept.
        """
        started = time.perf_counter()
        with self._lock:
            late, self._late = self._late, None
        connection.execute("BEGIN TRANSACTION")
        try:
            report = self._run(connection, floor_time(now - self._settle, MINUTE), late)
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            if late is not None:
                self.mark_late(late)
            raise
        report = dataclasses.replace(report, seconds=time.perf_counter() - started)
        if report.did_work:
            log.info(
                "rollups: %d minute buckets over %s, %d hour buckets over %s in %.2f s",
                report.rows_1m,
                _span(report.range_1m),
                report.rows_1h,
                _span(report.range_1h),
                report.seconds,
            )
        return report

    def _run(self, connection: duckdb.DuckDBPyConnection, closed: datetime, late: datetime | None) -> RollupReport:
        marks = read_watermarks(connection)
        done_1m = marks.get(TASK_ROLLUP_1M)
        seen = marks.get(TASK_RECEIVED)
        newest_received = _scalar(connection, "SELECT max(received) FROM samples")
        if newest_received is not None:
            write_watermark(connection, TASK_RECEIVED, max(newest_received, seen or newest_received))

        if done_1m is None:
            oldest = _scalar(connection, "SELECT min(ts) FROM samples")
            if oldest is None:
                return RollupReport()  # an empty database: nothing to start from yet
            low = floor_time(oldest, MINUTE)
            high = closed
        else:
            found = None
            if seen is not None:
                found = _scalar(
                    connection, "SELECT min(ts) FROM samples WHERE received > ? AND ts < ?", [seen, done_1m]
                )
            low = min(m for m in (done_1m, late, found) if m is not None)
            low = floor_time(low, MINUTE)
            high = max(closed, done_1m)  # a clock stepping back never un-closes a bucket
        purged = marks.get(TASK_RETENTION_SAMPLES)
        if purged is not None and low < purged:
            low = purged  # raw before it is gone: keep those rollups as they are

        rows_1m, range_1m = 0, None
        if low < high:
            connection.execute("DELETE FROM rollup_1m WHERE bucket >= ? AND bucket < ?", [low, high]).fetchall()
            rows_1m = _count(connection, _INSERT_1M, {"lo": low, "hi": high})
            range_1m = (low, high)
            write_watermark(connection, TASK_ROLLUP_1M, high)
        elif done_1m is None:
            return RollupReport()  # only an open minute so far

        done = high if range_1m else (done_1m or high)
        rows_1h, range_1h = self._hours(connection, marks, low if range_1m else None, done)
        return RollupReport(rows_1m=rows_1m, rows_1h=rows_1h, range_1m=range_1m, range_1h=range_1h)

    def _hours(
        self,
        connection: duckdb.DuckDBPyConnection,
        marks: dict[str, datetime],
        changed_from: datetime | None,
        done_1m: datetime,
    ) -> tuple[int, tuple[datetime, datetime] | None]:
        done_1h = marks.get(TASK_ROLLUP_1H)
        high = floor_time(done_1m, HOUR)  # an hour is closed when all its minutes are
        if done_1h is not None:
            high = max(high, done_1h)
            starts = [done_1h] if changed_from is None else [done_1h, floor_time(changed_from, HOUR)]
            low = min(starts)
        else:
            oldest = _scalar(connection, "SELECT min(bucket) FROM rollup_1m")
            if oldest is None:
                return 0, None
            low = floor_time(oldest, HOUR)
        purged = marks.get(TASK_RETENTION_ROLLUP_1M)
        if purged is not None and low < purged:
            low = purged
        if low >= high:
            return 0, None
        connection.execute("DELETE FROM rollup_1h WHERE bucket >= ? AND bucket < ?", [low, high]).fetchall()
        rows = _count(connection, _INSERT_1H, {"lo": low, "hi": high})
        write_watermark(connection, TASK_ROLLUP_1H, high)
        return rows, (low, high)


def _span(span: tuple[datetime, datetime] | None) -> str:
    if span is None:
        return "nothing"
    return f"[{span[0].isoformat()}, {span[1].isoformat()})"
