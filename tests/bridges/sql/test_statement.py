"""The polling SELECT per dialect: quoting, keyset after the cursor, SQL Server datetime2 and rowversion."""

from __future__ import annotations

import datetime as dt
import decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mssql, mysql, postgresql, sqlite

from bridges.sql.statement import RowCursor, build_select, decode_value, encode_value
from model.bridges.sql import SqlQuery

_DIALECTS = {"sqlite": sqlite.dialect(), "postgresql": postgresql.dialect(), "mysql": mysql.dialect(),
             "mssql": mssql.dialect()}  # fmt: skip


def _query(**overrides: object) -> SqlQuery:
    data: dict[str, object] = {
        "name": "orders",
        "table": "Order",
        "schema_name": "dbo",
        "key": ["order no", "line"],
        "watermark": {"column": "updated_at"},
        "metrics": [{"name": "Qty", "column": "select"}],
        "batch_rows": 50,
    }
    data.update(overrides)
    return SqlQuery.model_validate(data)


def _sql(query: SqlQuery, dialect: str, after: RowCursor | None) -> str:
    select = build_select(query, dialect=dialect, after=after)
    return " ".join(str(select.compile(dialect=_DIALECTS[dialect])).split())


def test_mssql_quotes_reserved_and_spaced_names_and_limits_with_top() -> None:
    sql = _sql(_query(), "mssql", None)
    assert sql.startswith("SELECT TOP __[POSTCOMPILE_param_1] dbo.[Order].[order no], dbo.[Order].line,")
    assert "dbo.[Order].[select] FROM dbo.[Order]" in sql
    assert "WHERE dbo.[Order].updated_at IS NOT NULL AND dbo.[Order].[order no] IS NOT NULL" in sql
    assert sql.endswith("ORDER BY dbo.[Order].updated_at, dbo.[Order].[order no], dbo.[Order].line")


@pytest.mark.parametrize(
    ("dialect", "quoted_table", "quoted_column", "limit"),
    [
        ("postgresql", 'dbo."Order"', '"order no"', "LIMIT"),
        ("mysql", "dbo.`Order`", "`order no`", "LIMIT"),
        ("sqlite", 'dbo."Order"', '"order no"', "LIMIT"),
    ],
)
def test_other_dialects_quote_their_way(dialect: str, quoted_table: str, quoted_column: str, limit: str) -> None:
    sql = _sql(_query(), dialect, None)
    assert f"FROM {quoted_table}" in sql
    assert f"{quoted_table}.{quoted_column}" in sql
    assert f" {limit} " in sql


def test_datetime_cursor_is_a_microsecond_window_so_datetime2_7_rows_are_not_read_forever() -> None:
    after = RowCursor(watermark=dt.datetime(2026, 11, 24, 7, 0, 0, 123456), key=("A-1", 3))
    select = build_select(_query(), dialect="mssql", after=after)
    compiled = select.compile(dialect=_DIALECTS["mssql"])
    sql = " ".join(str(compiled).split())
    col = "dbo.[Order].updated_at"
    assert f"({col} >= :updated_at_1 OR {col} >= :updated_at_2 AND {col} < :updated_at_3 AND " in sql
    assert (
        "(dbo.[Order].[order no] > :order_no_1 OR dbo.[Order].[order no] = :order_no_2 AND dbo.[Order].line > :line_1)"
        in sql
    )
    params = compiled.params
    # a row at .1234567 (SQL Server keeps 100 ns) that the driver read back as .123456 is inside the window
    assert params["updated_at_1"] == dt.datetime(2026, 11, 24, 7, 0, 0, 123457)
    assert params["updated_at_2"] == dt.datetime(2026, 11, 24, 7, 0, 0, 123456)
    assert params["updated_at_3"] == dt.datetime(2026, 11, 24, 7, 0, 0, 123457)
    assert (params["order_no_1"], params["line_1"]) == ("A-1", 3)


def test_mssql_rowversion_reads_only_below_min_active_rowversion() -> None:
    query = _query(watermark={"column": "rv", "kind": "rowversion"}, time_column="updated_at")
    after = RowCursor(watermark=bytes.fromhex("00000000000007d1"), key=("A-1", 3))
    compiled = build_select(query, dialect="mssql", after=after).compile(dialect=_DIALECTS["mssql"])
    sql = " ".join(str(compiled).split())
    assert "dbo.[Order].rv < min_active_rowversion()" in sql
    assert "(dbo.[Order].rv > :rv_1 OR dbo.[Order].rv = :rv_2 AND" in sql
    assert compiled.params["rv_1"] == bytes.fromhex("00000000000007d1")
    # elsewhere a rowversion-like binary column has no such function
    assert "min_active_rowversion" not in _sql(query, "postgresql", after)


def test_a_select_is_read_as_a_subquery_with_its_parameters_bound() -> None:
    query = _query(
        table=None, schema_name=None, query="SELECT * FROM lab WHERE site = :site", params={"site": "dallas"}
    )
    compiled = build_select(query, dialect="mssql", after=None).compile(dialect=_DIALECTS["mssql"])
    sql = " ".join(str(compiled).split())
    assert "FROM (SELECT * FROM lab WHERE site = :site) AS q" in sql
    assert compiled.params["site"] == "dallas"


def test_id_cursor_is_a_plain_keyset() -> None:
    query = _query(key=["id"], watermark={"column": "id", "kind": "id"}, time_column="made_at")
    sql = _sql(query, "postgresql", RowCursor(watermark=41, key=(41,)))
    assert (
        'WHERE dbo."Order".id IS NOT NULL AND dbo."Order".id > %(id_1)s::INTEGER ORDER BY dbo."Order".id LIMIT' in sql
    )


@pytest.mark.parametrize(
    "value",
    [
        7,
        "2026-11-24 07:00:00",
        2.5,
        b"\x00\x00\x00\x00\x00\x00\x07\xd1",
        decimal.Decimal("12.500"),
        dt.datetime(2026, 11, 24, 7, 0, 0, 123456),
        dt.datetime(2026, 11, 24, 7, 0, tzinfo=dt.timezone(dt.timedelta(hours=1))),
        dt.date(2026, 11, 24),
    ],
)
def test_cursor_values_round_trip_with_their_type(value: object) -> None:
    back = decode_value(encode_value(value))
    assert back == value
    assert type(back) is type(value)


def test_a_boolean_cannot_be_a_cursor() -> None:
    with pytest.raises(TypeError, match="boolean"):
        encode_value(True)


def test_select_compiles_to_one_statement_object() -> None:
    assert isinstance(build_select(_query(), dialect="sqlite", after=None), sa.Select)
