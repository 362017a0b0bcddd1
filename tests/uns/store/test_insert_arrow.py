"""insert_arrow: Arrow rows into a table by name, with no registration, whatever ran on the connection before."""

from __future__ import annotations

import duckdb
import pyarrow as pa

from uns.store.database import ARROW_ROWS, insert_arrow


def test_each_statement_reads_the_rows_and_an_unfinished_read_before_does_not_stop_it() -> None:
    connection = duckdb.connect()
    connection.execute("CREATE TABLE kept (k INTEGER PRIMARY KEY, v VARCHAR)")
    connection.execute("CREATE TABLE newest (k INTEGER PRIMARY KEY, v VARCHAR)")
    connection.execute("INSERT INTO newest VALUES (1, 'old')")
    connection.execute("SELECT * FROM range(10)").fetchone()  # left unfinished, as a one-row read on the writer
    rows = pa.table({"k": [1, 2, 3], "v": ["a", "b", "c"], "last": [False, True, True]})
    insert_arrow(
        connection,
        rows,
        f"INSERT INTO kept SELECT k, v FROM {ARROW_ROWS}",  # noqa: S608  (our names)
        f"INSERT OR REPLACE INTO newest SELECT k, v FROM {ARROW_ROWS} WHERE last",  # noqa: S608
    )
    assert connection.execute("SELECT * FROM kept ORDER BY k").fetchall() == [(1, "a"), (2, "b"), (3, "c")]
    assert connection.execute("SELECT * FROM newest ORDER BY k").fetchall() == [(1, "old"), (2, "b"), (3, "c")]
    # nothing is left registered under the name
    assert connection.execute("SELECT count(*) FROM duckdb_views() WHERE view_name = ?", [ARROW_ROWS]).fetchall() == [
        (0,)
    ]
