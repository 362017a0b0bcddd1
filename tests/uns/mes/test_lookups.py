"""The dashboards' pick lists over a real DuckDB file fed through MesStore: characteristics in scope, recent lots."""

from __future__ import annotations

from datetime import timedelta

import duckdb
import pytest

from tests.uns.mes.mes_events import Feeder, at
from uns.errors import BadArgument
from uns.mes.lookups import characteristics, lots
from uns.mes.views_api import run_view
from uns.store.database import Database

LINE1 = "acme/dallas/bottling/line1"
FILLER = f"{LINE1}/filler"
CAPPER = f"{LINE1}/capper"
PALLETIZER = "acme/dallas/packaging/line3/palletizer"
DAY = (at(24, 0), at(25, 0))


@pytest.fixture
def fed(db: Database) -> None:
    """Inspections of two characteristics on line1, one on line3; a three-level lot chain on two lines."""
    feed = Feeder(db)
    for minute, value in enumerate([500.2, 499.8, 500.1]):
        outcome = feed.send(FILLER, "quality_inspection", at(24, 8, minute), characteristic="fill_ml", value=value,
                            lower_limit=495.0, upper_limit=505.0, unit="ml")  # fmt: skip
        assert outcome.status == "stored"
    feed.send(FILLER, "quality_inspection", at(24, 8, 5), characteristic="fill_ml", value=507.0, upper_limit=506.0)
    feed.send(CAPPER, "quality_inspection", at(24, 9), characteristic="cap_torque", result="fail", defect_type="loose")
    feed.send(PALLETIZER, "quality_inspection", at(24, 9), characteristic="wrap", result="pass")
    feed.send(f"{LINE1}/mixer", "lot_production", at(24, 7), lot_id="BATCH-1", product_id="syrup", quantity=200.0,
              input_lots=[{"lot_id": "SUGAR-9", "material_id": "sugar"}, {"lot_id": "WATER-2"}])  # fmt: skip
    feed.send(FILLER, "lot_production", at(24, 10), lot_id="BOTTLE-1", product_id="cola-05", quantity=1200.0,
              unit="pcs", input_lots=[{"lot_id": "BATCH-1"}])  # fmt: skip
    feed.send(PALLETIZER, "lot_production", at(24, 11), lot_id="PAL-1", product_id="pallet", quantity=1.0,
              input_lots=[{"lot_id": "BOTTLE-1"}])  # fmt: skip
    # a corrected lot event: the latest one is the lot's row
    feed.send(FILLER, "lot_production", at(24, 10, 30), lot_id="BOTTLE-1", product_id="cola-05", quantity=1150.0,
              unit="pcs", input_lots=[{"lot_id": "BATCH-1"}])  # fmt: skip


@pytest.mark.usefixtures("fed")
@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (None, ["cap_torque", "fill_ml", "wrap"]),
        (LINE1, ["cap_torque", "fill_ml"]),
        (FILLER, ["fill_ml"]),
        ("acme/dallas/packaging", ["wrap"]),
        ("acme/austin", []),
    ],
)
def test_characteristics_in_scope(cursor: duckdb.DuckDBPyConnection, path: str | None, expected: list[str]) -> None:
    rows = characteristics(cursor, path=path, start=DAY[0], end=DAY[1])
    assert [row.characteristic for row in rows] == expected


@pytest.mark.usefixtures("fed")
def test_characteristic_counts_latest_value_and_limits(cursor: duckdb.DuckDBPyConnection) -> None:
    by_name = {row.characteristic: row for row in characteristics(cursor, path=LINE1, start=DAY[0], end=DAY[1])}
    fill = by_name["fill_ml"]
    assert (fill.count, fill.measured, fill.failed) == (4, 4, 1)  # 507 is above its upper limit 506
    assert fill.last_value == 507.0
    assert fill.last_ts == at(24, 8, 5)
    assert (fill.unit, fill.lower_limit, fill.upper_limit) == ("ml", 495.0, 506.0)
    torque = by_name["cap_torque"]
    assert (torque.count, torque.measured, torque.failed, torque.last_value) == (1, 0, 1, None)
    # the window is half-open: an inspection at its end is out
    assert characteristics(cursor, path=CAPPER, start=at(24, 8), end=at(24, 9)) == []


@pytest.mark.usefixtures("fed")
@pytest.mark.parametrize(
    ("path", "query", "expected"),
    [
        (None, "", ["PAL-1", "BOTTLE-1", "BATCH-1"]),
        (LINE1, "", ["BOTTLE-1", "BATCH-1"]),
        (None, "bottle", ["BOTTLE-1"]),
        (None, "SYRUP", ["BATCH-1"]),  # by product, case-insensitive
        (None, "nothing", []),
    ],
)
def test_lots_newest_first_in_scope(
    cursor: duckdb.DuckDBPyConnection, path: str | None, query: str, expected: list[str]
) -> None:
    rows = lots(cursor, path=path, start=DAY[0], end=DAY[1], query=query)
    assert [row.lot_id for row in rows] == expected


@pytest.mark.usefixtures("fed")
def test_lot_row_is_its_latest_event(cursor: duckdb.DuckDBPyConnection) -> None:
    (bottle,) = lots(cursor, path=FILLER, start=DAY[0], end=DAY[1])
    assert (bottle.lot_id, bottle.product_id, bottle.quantity, bottle.unit) == ("BOTTLE-1", "cola-05", 1150.0, "pcs")
    assert (bottle.path, bottle.line, bottle.ts, bottle.inputs) == (FILLER, LINE1, at(24, 10, 30), 1)
    (batch,) = lots(cursor, path=f"{LINE1}/mixer", start=DAY[0], end=DAY[1])
    assert batch.inputs == 2
    assert [row.lot_id for row in lots(cursor, path=None, start=DAY[0], end=DAY[1], limit=1)] == ["PAL-1"]


@pytest.mark.usefixtures("fed")
def test_views_answer_rows_and_refuse_bad_arguments(cursor: duckdb.DuckDBPyConnection, db: Database) -> None:
    now = at(25, 0)
    window = {"start": ["2026-11-24T00:00:00Z"], "path": [LINE1]}
    section = Feeder(db).section
    found = run_view(cursor, section, "characteristics", window, now=now)["rows"]
    assert isinstance(found, list)
    assert [row.characteristic for row in found] == ["cap_torque", "fill_ml"]
    found = run_view(cursor, section, "lots", {**window, "q": ["bat"]}, now=now)["rows"]
    assert isinstance(found, list)
    assert [row.lot_id for row in found] == ["BATCH-1"]
    # defaults: the last 7 days, every path
    found = run_view(cursor, section, "lots", {}, now=now)["rows"]
    assert isinstance(found, list)
    assert len(found) == 3
    with pytest.raises(BadArgument, match="limit"):
        run_view(cursor, section, "lots", {"limit": ["5000"]}, now=now)
    with pytest.raises(BadArgument, match="unknown parameter"):
        run_view(cursor, section, "characteristics", {"lot": ["x"]}, now=now)
    with pytest.raises(BadArgument, match="end"):
        characteristics(cursor, path=None, start=DAY[1], end=DAY[1] - timedelta(hours=1))
