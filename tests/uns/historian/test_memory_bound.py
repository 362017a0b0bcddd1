"""The historian's DuckDB memory is capped (its own default is 80 % of RAM), and queries past the cap still answer."""

from __future__ import annotations

from pathlib import Path

from model.config import HistorianSection
from tests.fixtures.broker import start_broker
from uns.connect import local_clients
from uns.historian.service import Historian
from uns.store.database import ALLOCATOR_FLUSH_MB, DEFAULT_MEMORY_LIMIT_MB, Database


def _limit_mib(db: Database) -> float:
    reader = db.reader()
    try:
        row = reader.execute("SELECT current_setting('memory_limit')").fetchone()
    finally:
        reader.close()
    assert row is not None
    number, unit = str(row[0]).split()
    return float(number) * {"KiB": 1 / 1024, "MiB": 1.0, "GiB": 1024.0}[unit]


def test_a_historian_file_is_opened_with_the_default_memory_cap(tmp_path: Path) -> None:
    with Database(path=tmp_path / "h.duckdb") as db:
        assert DEFAULT_MEMORY_LIMIT_MB == 512
        assert _limit_mib(db) == 512  # not DuckDB's own 80 % of RAM


def test_duckdb_hands_freed_pages_back_instead_of_keeping_up_to_128_mib(tmp_path: Path) -> None:
    with Database(path=tmp_path / "h.duckdb") as db:
        reader = db.reader()
        try:
            row = reader.execute(
                "SELECT current_setting('allocator_background_threads'), current_setting('allocator_flush_threshold')"
            ).fetchone()
        finally:
            reader.close()
    assert row == (True, f"{ALLOCATOR_FLUSH_MB}MiB")


def test_a_query_needing_more_than_the_cap_spills_to_disk_and_answers(tmp_path: Path) -> None:
    with Database(path=tmp_path / "h.duckdb", memory_limit_mb=32) as db:
        assert _limit_mib(db) < 40
        row = db.connection.execute(
            "SELECT count(*), sum(n) FROM (SELECT i % 1500000 AS k, count(*) AS n FROM range(3000000) t(i) GROUP BY k)"
        ).fetchone()
        assert row == (1_500_000, 3_000_000)


async def test_the_historian_part_opens_its_file_with_the_configured_cap(tmp_path: Path) -> None:
    assert HistorianSection().memory_limit_mb == DEFAULT_MEMORY_LIMIT_MB
    section = HistorianSection(memory_limit_mb=200)
    async with start_broker(tmp_path) as broker:
        historian = Historian(settings=section, enterprise="acme", clients=local_clients(broker), data_dir=tmp_path)
        async with historian:
            assert _limit_mib(historian.database) == 200


def _queue_nodes(db: Database) -> int:
    reader = db.reader()
    try:
        row = reader.execute("SELECT sum(approximate_size) FROM duckdb_eviction_queues()").fetchone()
    finally:
        reader.close()
    assert row is not None
    return int(row[0])


def test_releasing_memory_drops_the_eviction_queue_nodes_and_keeps_the_cap(tmp_path: Path) -> None:
    with Database(path=tmp_path / "h.duckdb", memory_limit_mb=200) as db:
        connection = db.connection
        connection.execute("CREATE TABLE t AS SELECT range AS a FROM range(1500)")
        for _ in range(3_000):  # each result's freed buffer leaves a dead node (below DuckDB's own purge at ~32k)
            assert connection.execute("SELECT count(*) FROM t").fetchall() == [(1500,)]
        piled = _queue_nodes(db)
        assert piled >= 3_000

        released = db.release_memory()

        assert _queue_nodes(db) < 50
        assert released >= piled - 50
        assert _limit_mib(db) == 200  # the cap is the configured one, not the unreachable one used to drain
        assert connection.execute("SELECT count(*), sum(a) FROM t").fetchall() == [(1500, 1500 * 1499 // 2)]
