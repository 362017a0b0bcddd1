"""The historian's MES event log (table ``mes_events``, every MES message as received) read by topic and time.

The narrow reader other components get instead of SQL over the historian's table: the Automation page's
replay (``uns.web.automation_sources``) takes its MES events from here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from uns.query.values import topic_condition
from uns.store.database import Database

__all__ = ["LoggedEvent", "MesEventLog"]

LoggedEvent = tuple[int, str, bytes]
"""One logged MES event: its time (epoch ms, the body's ``timestamp_ms``), its topic and its body as JSON."""

_SQL = (
    "SELECT epoch_ms(ts), topic, body::VARCHAR FROM mes_events WHERE {condition} AND ts >= ? AND ts < ?"
    " ORDER BY ts LIMIT ?"
)


class MesEventLog:
    """Reads the MES event log of ``database`` (opened by its owner); synchronous, so run it in a thread."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def read(self, filters: Sequence[str], start: datetime, end: datetime, *, limit: int) -> list[LoggedEvent]:
        """Events on a topic matching one of the MQTT ``filters`` in ``[start, end)``, oldest first, at most ``limit``.

        Raises:
            BadArgument: a malformed filter (field ``match``).
            StoreError: the file is not open or the read failed.
        """
        condition, params = topic_condition("topic", list(filters))
        sql = _SQL.format(condition=condition)  # only ? placeholders
        with self._database.reading("reading the MES event log") as cursor:
            rows = cursor.execute(sql, [*params, start, end, limit]).fetchall()
        return [(int(ms), str(topic), str(body).encode()) for ms, topic, body in rows]
