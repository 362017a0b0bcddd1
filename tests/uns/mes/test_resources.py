"""Labor hours from clock on/off, and material consumed against the order's BOM, over a real DuckDB file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import duckdb
import orjson
import pytest

from tests.uns.mes.mes_rows import put
from uns.errors import BadArgument
from uns.mes.orders import order_progress
from uns.mes.quality import scrap
from uns.mes.resources import ClockEvent, LotUse, labor, material, pair_sessions
from uns.store.database import Database

LINE = "acme/dallas/packaging/line1"
FILLER = f"{LINE}/filler"
CAPPER = f"{LINE}/capper"
OTHER = "acme/dallas/packaging/line2/filler"
T0 = datetime(2026, 11, 24, tzinfo=UTC)
H = timedelta(hours=1)


def clock(
    connection: duckdb.DuckDBPyConnection, path: str, hour: float, who: str, action: str, order: str | None
) -> None:
    put(connection, "mes_labor", path=path, ts=T0 + hour * H, operator_id=who, action=action, order_id=order)


# --- labor -------------------------------------------------------------------------------------


@pytest.fixture
def shift(db: Database) -> None:
    """A 06:00-12:00 window; hours inside it are worked out per line below."""
    c = db.connection
    clock(c, FILLER, 6, "alice", "on", "o1")  # 06:00-08:00 o1: 2 h
    clock(c, FILLER, 8, "alice", "off", "o1")
    clock(c, FILLER, 9, "alice", "on", "o2")  # 09:00-open o2: runs to min(end, now)
    clock(c, CAPPER, 5, "bob", "on", "o1")  # 05:00-07:00 o1: 1 h inside the window
    clock(c, CAPPER, 7, "bob", "off", "o1")
    clock(c, CAPPER, 10, "bob", "off", "o1")  # an off without an on: ignored and reported
    clock(c, CAPPER, 7, "carol", "on", "o1")  # 07:00-07:30 o1: 0.5 h
    clock(c, CAPPER, 7.5, "carol", "on", "o2")  # switches order: 07:30-08:30 o2: 1 h
    clock(c, CAPPER, 8.5, "carol", "off", "o2")
    clock(c, OTHER, 6, "dave", "on", "o9")  # another line
    clock(c, CAPPER, 5.5, "eve", "off", None)  # unmatched but before the window: not reported
    clock(c, FILLER, 12, "frank", "on", "o1")  # at the window's end: outside
    clock(c, CAPPER, 13, "carol", "off", "o2")  # after the window, unseen


@pytest.mark.parametrize(
    ("by", "now_hour", "expected"),
    [
        ("order", 11, [("o1", 3.5, 3, ("alice", "bob", "carol")), ("o2", 3.0, 2, ("alice", "carol"))]),
        ("operator", 11, [("alice", 4.0, 2, ("alice",)), ("bob", 1.0, 1, ("bob",)), ("carol", 1.5, 2, ("carol",))]),
        ("cell", 11, [(CAPPER, 2.5, 3, ("bob", "carol")), (FILLER, 4.0, 2, ("alice",))]),
        ("cell", 14, [(CAPPER, 2.5, 3, ("bob", "carol")), (FILLER, 5.0, 2, ("alice",))]),  # open: to the window end
    ],
)
def test_labor_hours_per_group(cursor, shift, by, now_hour, expected) -> None:
    report = labor(cursor, path=LINE, start=T0 + 6 * H, end=T0 + 12 * H, by=by, now=T0 + now_hour * H)
    got = [(r.group, r.hours, r.sessions, r.operators) for r in report.rows]
    assert [(g, s, o) for g, _, s, o in got] == [(g, s, o) for g, _, s, o in expected]
    assert [h for _, h, _, _ in got] == pytest.approx([h for _, h, _, _ in expected])
    assert [(e.operator_id, e.path, e.ts) for e in report.unmatched_offs] == [("bob", CAPPER, T0 + 10 * H)]


def test_labor_times_come_back_in_the_asked_zone(cursor, shift) -> None:
    zone = ZoneInfo("America/Chicago")
    report = labor(cursor, path=CAPPER, start=T0, end=T0 + 12 * H, by="operator", now=T0 + 12 * H, tz=zone)
    assert report.unmatched_offs[0].ts.tzinfo == zone
    assert [(r.group, r.hours) for r in report.rows] == [("bob", 2.0), ("carol", 1.5)]
    assert [e.operator_id for e in report.unmatched_offs] == ["eve", "bob"]


def test_time_on_no_order_groups_under_none(db, cursor) -> None:
    clock(db.connection, FILLER, 1, "gina", "on", None)
    clock(db.connection, FILLER, 2, "gina", "off", None)
    report = labor(cursor, path=FILLER, start=T0, end=T0 + 3 * H, now=T0 + 3 * H)
    assert [(r.group, r.hours) for r in report.rows] == [(None, 1.0)]


def test_labor_hours_are_summed_in_whole_microseconds(db, cursor) -> None:
    # three 6-minute sessions are 18 minutes, 0.3 h as a hand sums them (in float hours 0.1 + 0.1 + 0.1 is
    # 0.30000000000000004)
    for hour in (1, 2, 3):
        clock(db.connection, FILLER, hour, "hana", "on", "o1")
        clock(db.connection, FILLER, hour + 0.1, "hana", "off", "o1")
    report = labor(cursor, path=FILLER, start=T0, end=T0 + 4 * H, by="operator", now=T0 + 4 * H)
    assert [(r.group, r.hours, r.sessions) for r in report.rows] == [("hana", 0.3, 3)]


def test_labor_refuses_an_unknown_grouping(cursor) -> None:
    with pytest.raises(BadArgument) as caught:
        labor(cursor, path=LINE, start=T0, end=T0 + H, by="shift")  # type: ignore[arg-type]
    assert caught.value.field == "by"


def _event(hour: float, who: str, action: str, path: str = FILLER) -> ClockEvent:
    return ClockEvent(ts=T0 + hour * H, path=path, operator_id=who, action=action, order_id=None)


@pytest.mark.parametrize(
    ("events", "sessions", "unmatched"),
    [
        ([_event(1, "a", "on"), _event(2, "a", "off")], [(1, 2, False)], []),
        ([_event(2, "a", "off"), _event(1, "a", "on")], [(1, 2, False)], []),  # any input order
        ([_event(1, "a", "off")], [], [1]),
        ([_event(1, "a", "on"), _event(3, "a", "on")], [(1, 3, False), (3, 5, True)], []),
        ([_event(1, "a", "on"), _event(2, "a", "off"), _event(2, "a", "off")], [(1, 2, False)], [2]),
        ([_event(1, "a", "on"), _event(1, "a", "off", CAPPER)], [(1, 5, True)], [1]),  # per cell
        ([_event(6, "a", "on")], [(6, 6, True)], []),  # on after the cut-off: empty
        # at one instant an off comes before an on (a hand-over), so this off finds nothing open
        ([_event(1, "a", "on"), _event(1, "a", "off"), _event(1, "a", "on")], [(1, 1, False), (1, 5, True)], [1]),
    ],
)
def test_pair_sessions(events, sessions, unmatched) -> None:
    got, lost = pair_sessions(events, cutoff=T0 + 5 * H)
    assert [((s.start - T0) / H, (s.end - T0) / H, s.open) for s in got] == sessions
    assert [(e.ts - T0) / H for e in lost] == unmatched


# --- material against the BOM ------------------------------------------------------------------


def release(connection: duckdb.DuckDBPyConnection, hour: float, order: str, quantity: float, bom: object) -> None:
    put(
        connection, "mes_work_orders", path=LINE, ts=T0 + hour * H, order_id=order, action="release",
        product_id="cola-05", quantity=quantity, unit="pcs", bom=orjson.dumps(bom).decode(),
    )  # fmt: skip


def consume(connection: duckdb.DuckDBPyConnection, order: str, material_id: str, lot: str, quantity: float) -> None:
    put(
        connection, "mes_consumption", path=FILLER, ts=T0, material_id=material_id, lot_id=lot,
        quantity=quantity, unit="pcs", order_id=order,
    )  # fmt: skip


def count(connection: duckdb.DuckDBPyConnection, path: str, order: str, total: int, good: int) -> None:
    put(connection, "mes_counts", path=path, ts=T0, total=total, scrap=total - good, good=good, order_id=order)


def test_good_units_follow_the_line_output(db, cursor) -> None:
    c = db.connection
    release(c, 0, "o1", 100, [{"material_id": "bottle", "quantity_per_unit": 1.0}])
    count(c, FILLER, "o1", 63, 60)
    count(c, CAPPER, "o1", 57, 55)
    plant = {LINE: CAPPER}  # the hub's default (the plant file's last cell), not a setting
    assert material(cursor, order_id="o1").good_units == 60  # 4. no output: the cell whose path sorts last
    assert material(cursor, order_id="o1", plant_outputs=plant).good_units == 55  # 3. the plant's default
    assert material(cursor, order_id="o1", output_cells={LINE: CAPPER}).good_units == 55  # 1. the setting
    count(c, LINE, "o1", 54, 54)  # a line-level counter
    # 1. the setting wins: a count on the line path is stray while it names a cell
    assert material(cursor, order_id="o1", output_cells={LINE: CAPPER}, plant_outputs=plant).good_units == 55
    assert material(cursor, order_id="o1", output_cells={LINE: LINE}).good_units == 54  # the line as its output
    # 2. no setting: the line's own counts, over the plant's default and over the last cell by path
    assert material(cursor, order_id="o1", plant_outputs=plant).good_units == 54
    assert material(cursor, order_id="o1").good_units == 54


def test_good_units_are_the_orders_and_scrap_views(db, cursor) -> None:
    """One rule (uns.mes.line_output) in three views: each order's good units, worked out by hand, in each."""
    c = db.connection
    line3 = "acme/dallas/packaging/line3"  # output-only: its cells count cases, then pallets
    packer, palletizer = f"{line3}/case-packer", f"{line3}/palletizer"
    for order, line in (("o1", LINE), ("o2", LINE), ("o3", line3), ("o4", line3)):
        put(
            c, "mes_work_orders", path=line, ts=T0, order_id=order, action="release",
            product_id="cola-05", quantity=100, unit="pcs", bom="[]",
        )  # fmt: skip
    count(c, FILLER, "o1", 63, 60)
    count(c, CAPPER, "o1", 57, 55)  # the configured output, though it sorts first: 55
    count(c, FILLER, "o2", 20, 20)  # o2 only upstream of the configured output: 0
    count(c, packer, "o3", 40, 38)  # cases are not pallets
    count(c, palletizer, "o3", 4, 3)  # line3's output by default, its last cell by path: 3
    count(c, packer, "o4", 10, 10)  # o4 only at the case packer; the palletizer counted (o3): 0
    outputs, only = {LINE: CAPPER}, [line3]
    expected = {"o1": 55, "o2": 0, "o3": 3, "o4": 0}
    assert {o: material(cursor, order_id=o, output_cells=outputs).good_units for o in expected} == expected
    progress = order_progress(cursor, output_cells=outputs, output_only=only)
    assert {p.order_id: p.good for p in progress} == expected
    rows = scrap(cursor, path="acme", start=T0, end=T0 + H, by="order", output_cells=outputs, output_only=only)
    # the scrap view lists an order with any of the line's units: o4's cases are none of line3's
    assert {r.group: r.good for r in rows} == {"o1": 55, "o2": 0, "o3": 3}


def test_material_against_bom_of_the_latest_release(db, cursor) -> None:
    c = db.connection
    bom = [
        {"material_id": "bottle", "quantity_per_unit": 1.0, "unit": "pcs"},
        {"material_id": "cap", "quantity_per_unit": 1.0, "unit": "pcs"},
        {"material_id": "syrup", "quantity_per_unit": 0.25, "unit": "l"},
    ]
    release(c, 0, "o1", 80, bom[:1])
    release(c, 1, "o1", 100, bom)  # re-released: this one counts
    count(c, FILLER, "o1", 32, 30)
    count(c, FILLER, "o1", 31, 30)
    count(c, CAPPER, "o1", 57, 55)  # the line's output: 55 finished good units
    count(c, FILLER, "o2", 500, 500)
    consume(c, "o1", "bottle", "B1", 40)
    consume(c, "o1", "bottle", "B2", 12)
    consume(c, "o1", "bottle", "B2", 10)
    consume(c, "o1", "cap", "C1", 57)
    consume(c, "o1", "syrup", "S1", 14.5)
    consume(c, "o1", "glue", "G1", 1.0)  # not on the BOM
    consume(c, "o2", "bottle", "B9", 500)  # another order
    report = material(cursor, order_id="o1", output_cells={LINE: CAPPER})
    assert (report.product_id, report.planned_quantity, report.good_units) == ("cola-05", 100, 55)
    rows = {r.material_id: r for r in report.materials}
    assert [r.material_id for r in report.materials] == ["bottle", "cap", "syrup", "glue"]
    expected = {
        "bottle": (62.0, 55.0, 100.0, 7.0),
        "cap": (57.0, 55.0, 100.0, 2.0),
        "syrup": (14.5, 13.75, 25.0, 0.75),
        "glue": (1.0, None, None, None),
    }
    for material_id, (used, for_produced, for_order, variance) in expected.items():
        row = rows[material_id]
        assert (row.consumed, row.planned_for_produced, row.planned_for_order) == (used, for_produced, for_order)
        assert row.variance == (pytest.approx(variance) if variance is not None else None)
    assert rows["bottle"].variance_pct == pytest.approx(7 / 55)
    assert rows["bottle"].lots == (LotUse(lot_id="B1", quantity=40.0), LotUse(lot_id="B2", quantity=22.0))
    assert rows["syrup"].unit == "l"


def test_material_quantities_are_the_decimals_a_hand_computes(db, cursor) -> None:
    # quantities are decimals (kg, l): 0.4 kg x 7 is 2.8 kg and 0.1 + 0.2 kg is 0.3 kg, as on paper (in binary floats
    # 2.8000000000000003 and 0.30000000000000004; the demo's line3 answered planned_for_order 2.8000000000000003)
    c = db.connection
    release(c, 0, "o4", 7, [{"material_id": "film", "quantity_per_unit": 0.4, "unit": "kg"}])
    count(c, CAPPER, "o4", 3, 3)
    consume(c, "o4", "film", "F1", 0.1)
    consume(c, "o4", "film", "F1", 0.2)
    consume(c, "o4", "film", "F2", 1.0)
    (row,) = material(cursor, order_id="o4", output_cells={LINE: CAPPER}).materials
    assert (row.consumed, row.planned_for_produced, row.planned_for_order, row.variance) == (1.3, 1.2, 2.8, 0.1)
    assert row.variance_pct == 0.1 / 1.2
    assert row.lots == (LotUse(lot_id="F2", quantity=1.0), LotUse(lot_id="F1", quantity=0.3))


def test_material_of_an_order_with_nothing_made_yet(db, cursor) -> None:
    release(db.connection, 0, "o3", 10, [{"material_id": "bottle", "quantity_per_unit": 2.0}])
    report = material(cursor, order_id="o3")
    assert report.good_units == 0
    (row,) = report.materials
    assert (row.consumed, row.planned_for_produced, row.planned_for_order, row.variance) == (0.0, 0.0, 20.0, 0.0)
    assert row.variance_pct is None
    assert row.lots == ()


def test_material_of_an_unknown_order_names_the_field(cursor) -> None:
    with pytest.raises(BadArgument, match="nope") as caught:
        material(cursor, order_id="nope")
    assert caught.value.field == "order_id"


def test_a_stored_bom_quantity_that_is_no_number_is_named_not_counted_as_zero(db, cursor) -> None:
    # intake refuses one (model/mes.py); a file written otherwise (by hand, an older version) is said, not read as 0
    release(db.connection, 0, "o5", 10, [{"material_id": "film", "quantity_per_unit": "lots", "unit": "kg"}])
    with pytest.raises(ValueError, match="no finite number") as caught:
        material(cursor, order_id="o5")
    assert str(caught.value) == "work order 'o5': bom material 'film': quantity_per_unit: 'lots' is no finite number"
