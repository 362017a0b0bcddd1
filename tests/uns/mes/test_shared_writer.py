"""The MES and the historian share one DuckDB writer: what one reads must never break the other's insert."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from model.config import MesSection
from uns.mes.store import MesStore
from uns.store.database import Database, register_arrow


def test_a_dead_letter_after_a_one_row_read_on_the_shared_writer_is_stored(tmp_path: Path) -> None:
    # DuckDB 2 refuses register() while a fetchone() left a result open: before, this stopped `uns up`
    with Database(path=tmp_path / "h.duckdb") as db:
        writer = db.connection
        store = MesStore(writer, MesSection())
        assert writer.execute("SELECT count(*) FROM mes_dead_letters").fetchone() == (0,)  # left unfinished
        store.dead_letters([(1_700_000_000_000, "acme/x/mes/state", "state", "event", "unknown MES event", "{}")])
        assert writer.execute("SELECT topic, field FROM mes_dead_letters").fetchall() == [("acme/x/mes/state", "event")]


def test_register_settles_what_an_earlier_read_left_open() -> None:
    connection = duckdb.connect()
    connection.execute("SELECT * FROM range(10)").fetchone()
    with pytest.raises(duckdb.Error, match="unfinished result"):
        connection.register("t", pa.table({"x": [1]}))  # DuckDB's own rule, which the helper works around
    register_arrow(connection, "t", pa.table({"x": [1]}))
    assert connection.execute("SELECT x FROM t").fetchall() == [(1,)]
