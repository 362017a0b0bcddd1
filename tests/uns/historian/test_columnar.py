"""The columnar answers of raw, aggregate and asof are the row path's bytes, on data of every kind."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from tests.uns.historian.history_data import LINE, Filler, open_database
from uns.historian.queries import History
from uns.historian.query_api import answer_bytes, run_endpoint
from uns.query.args import Params, document_bytes
from uns.store.database import Database

T0 = datetime(2026, 3, 28, 23, 0, tzinfo=UTC)  # Europe/Berlin moves to summer time 26 h later
NOW = T0 + timedelta(days=3)
ZONES = ["UTC", "Europe/Berlin", "America/Chicago", "Asia/Kathmandu", "Australia/Lord_Howe"]

FLOAT = f"{LINE}/filler/data/Temp"
BOOL = f"{LINE}/filler/data/Running"
INT = f"{LINE}/filler/data/Count"
BIG = f"{LINE}/filler/data/Serial"
TEXT = f"{LINE}/filler/data/Recipe"
TABLE = f"{LINE}/filler/data/Table"
ORDER = f"{LINE}/mes/work_order"

_FLOATS = [
    20.5, -0.0, 0.1 + 0.2, 1e16, 1e-7, 1.5e300, -3.25, float("nan"), float("inf"), float("-inf"), None, 7.0, 2.0**60,
]  # fmt: skip
_TEXTS = ["cola", 'say "hi"\\', "tab\there\nline", "\u2028 é 😀 日本", "", "\x00\x1f", None, "a,b", '","']
_QUALITIES = ["good", "uncertain", "bad", "stale"]


def _insert(db: Database, series_id: int, rows: list[tuple[datetime, float | None, str | None, str | None]]) -> None:
    """Samples with varied quality, historical flags and several values in one millisecond (seq)."""
    ts, value, text, json_text = (list(column) for column in zip(*rows, strict=True))
    batch = pa.table({
        "series_id": [series_id] * len(rows), "ts": ts, "value": pa.array(value, pa.float64()),
        "value_text": pa.array(text, pa.string()), "value_json": pa.array(json_text, pa.string()),
        "quality": [_QUALITIES[i % 4] for i in range(len(rows))], "historical": [i % 3 == 0 for i in range(len(rows))],
        "received": ts, "seq": [i % 2 for i in range(len(rows))],
    })  # fmt: skip
    db.connection.register("_batch", batch)
    try:
        db.connection.execute(
            "INSERT INTO samples (series_id, ts, value, value_text, value_json, quality, historical, received, seq)"
            " SELECT series_id, ts, value, value_text, value_json, quality, historical, received, seq FROM _batch"
        )
    finally:
        db.connection.unregister("_batch")


def _times(count: int, step: timedelta) -> Iterator[datetime]:
    for i in range(count):
        yield T0 + i * step + timedelta(milliseconds=(0, 1, 999, 120, 500)[i % 5])


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """One database for every read-only case here: building it is most of the time."""
    database = open_database(tmp_path_factory.mktemp("columnar") / "historian.duckdb")
    _fill(database, Filler(database.connection))
    yield database
    database.close()


@pytest.fixture
def history(stored: Database) -> History:
    return History(stored, clock=lambda: NOW)


def _fill(db: Database, fill: Filler) -> None:
    step = timedelta(minutes=7)
    floats = fill.series(FLOAT, "Double", unit="degC", first_seen=T0)
    _insert(db, floats, [(t, _FLOATS[i % len(_FLOATS)], None, None) for i, t in enumerate(_times(700, step))])
    booleans = fill.series(BOOL, "Boolean", first_seen=T0)
    _insert(db, booleans, [(t, (1.0, 0.0, None)[i % 3], None, None) for i, t in enumerate(_times(300, step))])
    integers = fill.series(INT, "Int32", first_seen=T0)
    counts = [float(i * 37 - 900) if i % 11 else None for i in range(400)]
    _insert(db, integers, [(t, counts[i], None, None) for i, t in enumerate(_times(400, step))])
    big = fill.series(BIG, "UInt64", first_seen=T0)
    bigs = [2**53 + 1, 2**64 - 1, 2**63 + 5, 12]
    digits = [str(bigs[i % 4]) if i % 4 < 3 else None for i in range(200)]  # 12 fits a double: no digits kept
    _insert(db, big, [(t, float(bigs[i % 4]), digits[i], None) for i, t in enumerate(_times(200, step))])
    texts = fill.series(TEXT, "String", first_seen=T0)
    _insert(db, texts, [(t, None, _TEXTS[i % len(_TEXTS)], None) for i, t in enumerate(_times(300, step))])
    table = fill.series(TABLE, "DataSet", first_seen=T0)
    bodies = ['{"columns": ["a", "b"], "rows": [[1, "x"], [2.50, null]]}', "[1, 2,  3]", '{"k": "ü"}']
    _insert(db, table, [(t, None, None, bodies[i % 3]) for i, t in enumerate(_times(100, step))])
    for i, t in enumerate(_times(12, timedelta(hours=5))):
        fill.mes_event(ORDER, t, {"order_id": f"O{i}", "qty": i * 1.5, "note": 'über "x"'})


def _both(history: History, endpoint: str, params: Params) -> tuple[bytes, bytes]:
    old = document_bytes(run_endpoint(history, endpoint, params))
    return old, answer_bytes(history, endpoint, params)


def _span(**more: list[str]) -> Params:
    return {"start": [(T0 - timedelta(hours=1)).isoformat()], "end": [NOW.isoformat()], **more}


@pytest.mark.parametrize("tz", ZONES)
@pytest.mark.parametrize("topic", [FLOAT, BOOL, INT, BIG, TEXT, TABLE])
def test_raw_answers_the_same_bytes(history: History, topic: str, tz: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="uns.historian.query_api")
    for limit in ("100000", "37"):
        old, new = _both(history, "raw", _span(topic=[topic], tz=[tz], limit=[limit]))
        assert new == old
    assert b'"rows":[{"ts":"2026-03-2' in new
    assert "row by row" not in caplog.text  # the columnar writer answered, not the fallback


@pytest.mark.parametrize("tz", ZONES)
@pytest.mark.parametrize("topic", [FLOAT, BOOL, INT])
@pytest.mark.parametrize("fill_mode", ["none", "null", "previous"])
@pytest.mark.parametrize(
    ("bucket", "agg"), [("1m", "avg,min,max,first,last,count"), ("1h", "last,avg,last"), ("1d", "count,first")]
)
def test_aggregate_answers_the_same_bytes(
    history: History, topic: str, tz: str, fill_mode: str, bucket: str, agg: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="uns.historian.query_api")
    params = {"start": [(T0 + timedelta(hours=2)).isoformat()], "end": [NOW.isoformat()]}
    params |= {"topic": [topic], "tz": [tz], "fill": [fill_mode], "bucket": [bucket], "agg": [agg]}
    old, new = _both(history, "aggregate", params)
    assert new == old
    assert b'"filled":' in new
    assert "row by row" not in caplog.text


@pytest.mark.parametrize("tz", ZONES)
@pytest.mark.parametrize("topic", [FLOAT, TEXT, BIG])
def test_asof_answers_the_same_bytes(history: History, topic: str, tz: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="uns.historian.query_api")
    contexts = [ORDER, TEXT, BOOL, TABLE, ORDER, BIG]
    for limit in ("100000", "5"):
        old, new = _both(history, "asof", _span(topic=[topic], tz=[tz], limit=[limit], context=contexts))
        assert new == old
    assert b'"order_id":"O' in new
    assert "row by row" not in caplog.text


def test_empty_answers_are_the_same(history: History) -> None:
    empty = {"start": [(T0 - timedelta(days=9)).isoformat()], "end": [(T0 - timedelta(days=8)).isoformat()]}
    for endpoint, more in [("raw", {}), ("asof", {"context": [ORDER]}), ("aggregate", {"fill": ["none"]})]:
        old, new = _both(history, endpoint, {**empty, "topic": [FLOAT], **more})
        assert new == old
        assert new.endswith(b'"rows":[]}')


def test_what_it_does_not_cover_is_answered_row_by_row(
    db: Database, fill: Filler, caplog: pytest.LogCaptureFixture
) -> None:
    fill.series(FLOAT, "Double", first_seen=T0)
    history = History(db, clock=lambda: NOW)
    caplog.set_level(logging.DEBUG, logger="uns.historian.query_api")
    monrovia = {**_span(topic=[FLOAT]), "start": ["1971-12-01T00:00:00Z"], "tz": ["Africa/Monrovia"]}
    _insert(db, 1, [(datetime(1972, 1, 7, 0, 44, 40, tzinfo=UTC), 1.0, None, None)])  # offset -0:44:30 -> 0:00
    old, new = _both(history, "raw", monrovia)
    assert new == old
    assert "changes within a quarter hour" in caplog.text
    odd = fill.series(f"{LINE}/filler/data/Odd", "Int32", first_seen=T0)
    _insert(db, odd, [(T0, math.inf, None, None)])
    with pytest.raises(OverflowError):  # the row path fails the same way: int(inf)
        answer_bytes(history, "raw", _span(topic=[f"{LINE}/filler/data/Odd"]))
