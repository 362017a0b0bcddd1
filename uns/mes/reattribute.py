"""After a late work order event: move the rows whose order the MES filled in to the order that ran then.

Runs on the store's one writer thread inside the store's transaction. Only rows stored with
``order_given = false`` move (an order the event named is never overridden; rows from before the MES
tables' version 2 (old schema version 5), NULL, are left as they are). A ``start`` or ``complete``
at instant T can only change which order ran at T and after, so only rows of the line from T on are
read: an event on time reads the few rows stamped after it.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from uns.mes.attribution import OrderRuns
from uns.mes.changes import Change
from uns.store.database import ARROW_ROWS, insert_arrow

__all__ = ["ORDER_FILLED_TABLES", "reattribute"]

ORDER_FILLED_TABLES = {
    "production_count": "mes_counts",
    "labor": "mes_labor",
    "material_consumption": "mes_consumption",
    "lot_production": "mes_lots",
}
"""Events whose ``order_id`` defaults to the order running at their time, and their tables."""


def reattribute(connection: duckdb.DuckDBPyConnection, runs: OrderRuns, line: str, since_ms: int) -> list[Change]:
    """Re-attribute the filled-in rows of ``line`` stamped at or after ``since_ms``; returns what moved."""
    changes: list[Change] = []
    for event, table in ORDER_FILLED_TABLES.items():
        rows = connection.execute(
            f"""SELECT event_key, path, epoch_ms(ts), order_id FROM {table}
                WHERE line = ? AND order_given = false AND ts >= make_timestamptz(? * 1000) ORDER BY ts""",  # noqa: S608 - fixed map
            [line, since_ms],
        ).fetchall()
        keys: list[int] = []
        orders: list[str | None] = []
        for key, path, ts_ms, stored in rows:
            now = runs.at(line, int(ts_ms))
            if now != stored:
                keys.append(int(key))
                orders.append(now)
                changes.append(Change(event=event, path=str(path), start_ms=int(ts_ms), end_ms=int(ts_ms) + 1))
        if keys:
            moved = pa.table({"event_key": pa.array(keys, pa.uint64()), "order_id": pa.array(orders, pa.string())})
            sql = f"UPDATE {table} SET order_id = m.order_id FROM {ARROW_ROWS} m WHERE {table}.event_key = m.event_key"  # noqa: S608
            insert_arrow(connection, moved, sql)
    return changes
