"""The alarm history in the store's DuckDB file (table ``alarm_history``, ``uns/rules/schema.py``): write and read.

``insert_alarms`` runs on the store's one writer thread (``uns.store.writer``); ``AlarmHistory`` is the
narrow reader other components get (the web's ``GET /api/alarms/history``): each read on its own reader
cursor, so no caller writes SQL over this table.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import orjson

from uns.rules.alarms import Alarm
from uns.store.database import Database

__all__ = ["MAX_HISTORY", "AlarmHistory", "insert_alarms"]

MAX_HISTORY = 10_000
"""The most changes one read returns."""

_TS = "to_timestamp(0) + to_milliseconds(CAST(? AS BIGINT))"  # epoch ms -> TIMESTAMPTZ, exact
_COLUMNS = (
    "ts, path, name, rule, state, acknowledged, priority, message, value, raised, cleared, acked, acked_by, ack_comment"
)
_INSERT = (
    f"INSERT INTO alarm_history ({_COLUMNS}) VALUES "  # noqa: S608 - our constants
    f"({_TS}, ?, ?, ?, ?, ?, ?, ?, ?, {_TS}, {_TS}, {_TS}, ?, ?)"
)


def _row(alarm: Alarm) -> tuple[object, ...]:
    body = alarm.to_json()
    return (
        body["timestamp_ms"],
        alarm.path,
        alarm.name,
        alarm.rule,
        alarm.state,
        alarm.acknowledged,
        alarm.priority,
        alarm.message,
        None if alarm.value is None else orjson.dumps(alarm.value, default=str).decode(),
        alarm.raised_ms,
        alarm.cleared_ms,
        alarm.acked_ms,
        alarm.acked_by,
        alarm.ack_comment,
    )


def insert_alarms(connection: duckdb.DuckDBPyConnection, alarms: Sequence[Alarm]) -> None:
    """Store alarm changes, in one transaction."""
    if alarms:
        connection.executemany(_INSERT, [_row(alarm) for alarm in alarms])


def _read(connection: duckdb.DuckDBPyConnection, path: str | None, limit: int) -> list[dict[str, object]]:
    where, args = "", list[object]([limit])
    if path:
        where = "WHERE path = ? OR starts_with(path, ?)"
        args = [path, path + "/", limit]
    rows = connection.execute(
        f"""SELECT epoch_ms(ts), path, name, rule, state, acknowledged, priority, message, value,
                   epoch_ms(raised), epoch_ms(cleared), epoch_ms(acked), acked_by, ack_comment
            FROM alarm_history {where} ORDER BY ts DESC, raised DESC LIMIT ?""",  # noqa: S608 - our constants
        args,
    ).fetchall()
    keys = ("timestamp_ms", "path", "name", "rule", "state", "acknowledged", "priority", "message", "value",
            "raised_ms", "cleared_ms", "acked_ms", "acked_by", "ack_comment")  # fmt: skip
    out: list[dict[str, object]] = []
    for row in rows:
        item = dict(zip(keys, row, strict=True))
        item["value"] = None if item["value"] is None else orjson.loads(str(item["value"]))
        out.append(item)
    return out


class AlarmHistory:
    """Reads the alarm history of ``database`` (opened by its owner): synchronous, so run it in a thread."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def read(self, *, path: str | None = None, limit: int = 500) -> list[dict[str, object]]:
        """The newest changes first, at or under ``path`` (all when None), ``limit`` kept within 1..MAX_HISTORY.

        Raises:
            StoreError: the file is not open or the read failed.
        """
        with self._database.reading("reading the alarm history") as cursor:
            return _read(cursor, path, min(max(limit, 1), MAX_HISTORY))
