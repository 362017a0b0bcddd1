"""Counter baselines in ``mes_counter_state``: loaded at start, and only those that moved saved with each commit.

The Deriver holds every counter's last value; the adapter saves them in the transaction of the
counts derived from them, so a crash can neither lose nor double a count. Rewriting every baseline
at each commit (row by row) was ~40 % of an idle hub's CPU on the historian's only writer thread:
only the baselines that differ from what was last committed are written, as one Arrow insert, and
a commit with neither events nor moved baselines needs no writer call at all.
"""

from __future__ import annotations

from collections.abc import Mapping

import duckdb
import pyarrow as pa

from uns.mes.derive import CounterBaseline
from uns.store.database import ARROW_ROWS, insert_arrow

__all__ = ["SavedBaselines"]


class SavedBaselines:
    """What ``mes_counter_state`` holds, as last committed: the reference for what to save next."""

    def __init__(self) -> None:
        self._saved: dict[str, tuple[float, int]] = {}

    def load(self, connection: duckdb.DuckDBPyConnection) -> dict[str, tuple[float, int]]:
        """Every stored baseline, topic -> (value, ms); they become the committed state (call once, at start)."""
        rows = connection.execute("SELECT topic, value, epoch_ms(ts) FROM mes_counter_state").fetchall()
        self._saved = {str(topic): (float(value), int(ms)) for topic, value, ms in rows}
        return dict(self._saved)

    def moved(self, baselines: Mapping[str, CounterBaseline]) -> dict[str, CounterBaseline]:
        """The baselines that differ from the committed ones (new counters included)."""
        saved = self._saved
        return {topic: b for topic, b in baselines.items() if saved.get(topic) != (float(b.value), b.ts_ms)}

    def save(self, connection: duckdb.DuckDBPyConnection, baselines: Mapping[str, CounterBaseline]) -> None:
        """Write ``baselines`` in the caller's transaction: one Arrow insert, replacing each topic's row."""
        if not baselines:
            return
        table = pa.table(
            {
                "topic": pa.array(list(baselines), pa.string()),
                "value": pa.array([float(b.value) for b in baselines.values()], pa.float64()),
                "ts_ms": pa.array([b.ts_ms for b in baselines.values()], pa.int64()),
            }
        )
        rows = f"SELECT topic, value, make_timestamptz(ts_ms * 1000) FROM {ARROW_ROWS}"  # noqa: S608  (our name)
        insert_arrow(connection, table, f"INSERT OR REPLACE INTO mes_counter_state {rows}")

    def committed(self, baselines: Mapping[str, CounterBaseline]) -> None:
        """``baselines`` are in the database now (call after the transaction that saved them committed)."""
        self._saved.update((topic, (float(b.value), b.ts_ms)) for topic, b in baselines.items())
