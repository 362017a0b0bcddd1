"""Delete historian rows older than their retention, never before the rollups that still need them ran.

Cutoffs are aligned down to the hour so that rollup buckets stay whole, and each is capped by the
watermark of the rollup built from that table:

- ``samples`` before ``min(now - raw_retention_days, rollup_1m watermark)``: raw the 1-minute
  rollups have not covered yet is kept however old it is (nothing is deleted before the first run);
- ``rollup_1m`` before ``min(now - rollup_1m_retention_days, rollup_1h watermark)``;
- ``rollup_1h`` before ``now - rollup_1h_retention_days``;
- ``dead_letters`` received before ``now - raw_retention_days``.

A retention of 0 days keeps that table forever. MES events are records, not measurements: they are
never deleted here. Each cutoff used is stored in ``maintenance`` (``retention.<table>``) so the
rollups never recompute a bucket whose raw rows are gone. Call it after ``Rollups.run``, from the
writer thread.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from datetime import datetime, timedelta

import duckdb

from model.config import HistorianSection
from uns.historian.rollups import (
    HOUR,
    TASK_RETENTION_ROLLUP_1M,
    TASK_RETENTION_SAMPLES,
    TASK_ROLLUP_1H,
    TASK_ROLLUP_1M,
    floor_time,
    read_watermarks,
    write_watermark,
)

__all__ = ["TASK_RETENTION_ROLLUP_1H", "RetentionReport", "apply_retention"]

log = logging.getLogger(__name__)

TASK_RETENTION_ROLLUP_1H = "retention.rollup_1h"


@dataclasses.dataclass(frozen=True, slots=True)
class RetentionReport:
    """Rows deleted per table by one ``apply_retention``, and the cutoffs used (None: kept all).

    Attributes:
        samples: raw samples deleted.
        rollup_1m: 1-minute rollup rows deleted.
        rollup_1h: 1-hour rollup rows deleted.
        dead_letters: dead letters deleted.
        cutoffs: table → the time before which its rows were deleted.
    """

    samples: int = 0
    rollup_1m: int = 0
    rollup_1h: int = 0
    dead_letters: int = 0
    cutoffs: Mapping[str, datetime] = dataclasses.field(default_factory=dict)

    @property
    def total(self) -> int:
        """Rows deleted in all tables."""
        return self.samples + self.rollup_1m + self.rollup_1h + self.dead_letters


def _age_cutoff(now: datetime, days: float) -> datetime | None:
    return None if days <= 0 else floor_time(now - timedelta(days=days), HOUR)


def _capped(cutoff: datetime | None, done: datetime | None) -> datetime | None:
    if cutoff is None or done is None:
        return None  # keep forever, or the rollup built from this table never ran: keep everything
    return min(cutoff, done)


def _delete(connection: duckdb.DuckDBPyConnection, table: str, column: str, cutoff: datetime | None) -> int:
    if cutoff is None:
        return 0
    rows = connection.execute(f"DELETE FROM {table} WHERE {column} < ?", [cutoff]).fetchall()  # noqa: S608 (fixed names)
    return int(rows[0][0]) if rows else 0


def apply_retention(
    connection: duckdb.DuckDBPyConnection, section: HistorianSection, *, now: datetime
) -> RetentionReport:
    """Delete what is past retention in one transaction; ``CHECKPOINT`` afterwards when anything went.

    Args:
        connection: the historian's read-write connection.
        section: the retention settings (``*_retention_days``).
        now: the current time, timezone-aware.

    Returns:
        Rows deleted per table.
    """
    floor_time(now, HOUR)  # rejects a naive ``now`` before anything is deleted
    connection.execute("BEGIN TRANSACTION")
    try:
        marks = read_watermarks(connection)
        cutoffs = {
            "samples": _capped(_age_cutoff(now, section.raw_retention_days), marks.get(TASK_ROLLUP_1M)),
            "rollup_1m": _capped(_age_cutoff(now, section.rollup_1m_retention_days), marks.get(TASK_ROLLUP_1H)),
            "rollup_1h": _age_cutoff(now, section.rollup_1h_retention_days),
            "dead_letters": None
            if section.raw_retention_days <= 0
            else now - timedelta(days=section.raw_retention_days),
        }
        report = RetentionReport(
            samples=_delete(connection, "samples", "ts", cutoffs["samples"]),
            rollup_1m=_delete(connection, "rollup_1m", "bucket", cutoffs["rollup_1m"]),
            rollup_1h=_delete(connection, "rollup_1h", "bucket", cutoffs["rollup_1h"]),
            dead_letters=_delete(connection, "dead_letters", "received", cutoffs["dead_letters"]),
            cutoffs={table: cutoff for table, cutoff in cutoffs.items() if cutoff is not None},
        )
        for table, task in (
            ("samples", TASK_RETENTION_SAMPLES),
            ("rollup_1m", TASK_RETENTION_ROLLUP_1M),
            ("rollup_1h", TASK_RETENTION_ROLLUP_1H),
        ):
            cutoff = cutoffs[table]
            if cutoff is not None and (task not in marks or marks[task] < cutoff):
                write_watermark(connection, task, cutoff)
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    if report.total:
        log.info(
            "retention: deleted %d samples, %d 1-minute and %d 1-hour rollup rows, %d dead letters",
            report.samples,
            report.rollup_1m,
            report.rollup_1h,
            report.dead_letters,
        )
        _checkpoint(connection)
    return report


def _checkpoint(connection: duckdb.DuckDBPyConnection) -> None:
    """Give the deleted rows' space back; DuckDB checkpoints on its own later if a reader is busy now."""
    try:
        connection.execute("CHECKPOINT")
    except duckdb.Error as exc:
        log.warning("retention: CHECKPOINT deferred: %s", exc)
