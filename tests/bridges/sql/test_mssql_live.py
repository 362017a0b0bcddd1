"""The SQL source on a live SQL Server: datetime2(7) and rowversion watermarks, a naive time zone, quoted names.

SQL Server cannot run on this machine, so this runs only when ``UNS_TEST_MSSQL_URL`` names one
(``mssql+aioodbc://user:pw@host:1433/db?driver=ODBC+Driver+18+for+SQL+Server&TrustServerCertificate=yes``,
which needs the aioodbc package and Microsoft's ODBC driver). The compiled SQL is checked on every
run by test_statement.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from bridges.source import Samples
from bridges.sql import SqlSource
from model.bridges.sql import SqlBridgeConfig
from tests.bridges.sql.scenario import Driver

_URL = os.environ.get("UNS_TEST_MSSQL_URL", "")

pytestmark = pytest.mark.skipif(
    not _URL, reason="set UNS_TEST_MSSQL_URL to a SQL Server (mssql+aioodbc://...) to run the live SQL Server tests"
)

_DDL = [
    "IF OBJECT_ID('dbo.[Lab Result]') IS NOT NULL DROP TABLE dbo.[Lab Result]",
    "CREATE TABLE dbo.[Lab Result] ([order no] INT NOT NULL PRIMARY KEY, updated_at DATETIME2(7) NOT NULL, "
    "[select] FLOAT NULL, rv ROWVERSION)",
    # three rows inside one microsecond and one a tick later: a driver reads all as .123456
    "INSERT INTO dbo.[Lab Result] ([order no], updated_at, [select]) VALUES "
    "(1, '2026-11-24 07:00:00.1234561', 1.5), (2, '2026-11-24 07:00:00.1234567', 3.0), "
    "(3, '2026-11-24 07:00:00.1234569', 4.5), (4, '2026-11-24 07:00:00.1234571', 6.0)",
]


def _config(watermark: dict[str, str], **extra: object) -> SqlBridgeConfig:
    query: dict[str, object] = {"name": "lab", "table": "Lab Result", "schema_name": "dbo", "key": ["order no"],
                                "watermark": watermark, "batch_rows": 2, "interval_s": 0.05,
                                "metrics": [{"name": "Lab/Value", "column": "select"}], **extra}  # fmt: skip
    return SqlBridgeConfig.model_validate(
        {"name": "lims", "edge": {"group": "g"}, "url": _URL, "timezone": "Europe/Berlin", "queries": [query]}
    )


async def _setup() -> None:
    engine = create_async_engine(_URL)
    try:
        async with engine.begin() as conn:
            for statement in _DDL:
                await conn.execute(sa.text(statement))
    finally:
        await engine.dispose()


async def _values(config: SqlBridgeConfig, tmp_path: Path) -> list[tuple[object, int]]:
    async with SqlSource(config=config, clients=None, state_path=tmp_path / "state.sqlite") as source:
        run = Driver(source)
        batches: list[Samples] = await run.batches(limit=10)
        await run.crash()
    return [(s.value, s.timestamp_ms) for b in batches for s in b.samples if s.name == "Lab/Value"]


async def test_datetime2_rows_inside_one_microsecond_are_read_once(tmp_path: Path) -> None:
    await _setup()
    values = await _values(_config({"column": "updated_at"}), tmp_path)
    assert [v for v, _t in values] == [1.5, 3.0, 4.5, 6.0]
    # naive datetime2 in Europe/Berlin (CET, UTC+1): 07:00 there is 06:00 UTC
    assert values[0][1] == 1795500000123


async def test_rowversion_watermark_reads_each_row_once(tmp_path: Path) -> None:
    await _setup()
    config = _config({"column": "rv", "kind": "rowversion"}, time_column="updated_at")
    values = await _values(config, tmp_path)
    assert sorted(float(str(v)) for v, _t in values) == [1.5, 3.0, 4.5, 6.0]
