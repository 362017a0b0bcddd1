from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from model.config import MesSection
from tests.uns.mes.mes_events import Feeder, at, ms, open_db
from uns.mes.paths import line_of
from uns.mes.store import MesStore, event_key
from uns.store.database import Database

LINE = "acme/dallas/bottling/line1"
FILLER = f"{LINE}/filler"


@pytest.fixture
def feeder(db: Database) -> Feeder:
    return Feeder(db)


def _release(feeder: Feeder, order_id: str, line: str = LINE) -> None:
    body = {"order_id": order_id, "action": "release", "product_id": "P", "quantity": 100}
    assert feeder.send(line, "work_order", at(24, 5), **body).status == "stored"


@pytest.mark.parametrize(
    ("path", "line"),
    [
        ("acme/dallas/bottling/line1/filler", "acme/dallas/bottling/line1"),
        ("acme/dallas/bottling/line1/filler/head3", "acme/dallas/bottling/line1"),
        ("acme/dallas/bottling/line1", "acme/dallas/bottling/line1"),
        ("acme/dallas", "acme/dallas"),
    ],
)
def test_line_of(path: str, line: str) -> None:
    assert line_of(path) == line


def test_event_key_uses_event_id_else_raw_body(feeder: Feeder) -> None:
    one = feeder.incoming(FILLER, "machine_state", {"timestamp_ms": 1, "state": 10000, "event_id": "x"})
    other_body = feeder.incoming(FILLER, "machine_state", {"timestamp_ms": 2, "state": 40000, "event_id": "x"})
    assert event_key(one.topic, one.body, one.raw) == event_key(other_body.topic, other_body.body, other_body.raw)
    bare = feeder.incoming(FILLER, "machine_state", {"timestamp_ms": 1, "state": 10000})
    key = event_key(bare.topic, bare.body, bare.raw)
    assert key != event_key(one.topic, one.body, one.raw)
    assert 0 <= key < 2**64
    assert key != event_key(f"{LINE}/capper/mes/machine_state", bare.body, bare.raw)


def test_duplicates_are_stored_once(feeder: Feeder, db: Database) -> None:
    first = feeder.incoming(FILLER, "machine_state", {"timestamp_ms": ms(at(24, 6)), "state": 10000, "event_id": "s1"})
    resent = feeder.incoming(FILLER, "machine_state", {"timestamp_ms": ms(at(24, 6)), "state": 10000, "event_id": "s1"})
    bare = feeder.incoming(FILLER, "machine_state", {"timestamp_ms": ms(at(24, 7)), "state": 40000})
    outcomes = feeder.store.apply([first, resent, bare, bare])
    assert [o.status for o in outcomes] == ["stored", "duplicate", "stored", "duplicate"]
    assert [o.status for o in feeder.store.apply([first, bare])] == ["duplicate", "duplicate"]
    rows = list(feeder.rows("SELECT state, ts, line FROM mes_states ORDER BY ts"))
    assert rows == [(10000, at(24, 6), LINE), (40000, at(24, 7), LINE)]
    # the key stored is the one event_key computes, as UBIGINT (values above 2^63 included)
    keys = {row[0] for row in feeder.rows("SELECT event_key FROM mes_states")}
    assert keys == {event_key(first.topic, first.body, first.raw), event_key(bare.topic, bare.body, bare.raw)}


@pytest.mark.parametrize(
    ("event", "body"),
    [
        ("production_count", {"total": 5, "order_id": "NOPE"}),
        ("labor", {"operator_id": "op1", "action": "on", "order_id": "NOPE"}),
        ("material_consumption", {"material_id": "m", "lot_id": "l", "quantity": 1.5, "order_id": "NOPE"}),
        ("lot_production", {"lot_id": "L1", "order_id": "NOPE"}),
        ("quality_inspection", {"characteristic": "fill_ml", "value": 500.0, "order_id": "NOPE"}),
    ],
)
def test_unknown_order_is_rejected_into_dead_letters(feeder: Feeder, event: str, body: dict[str, object]) -> None:
    outcome = feeder.send(FILLER, event, at(24, 7), **body)
    assert (outcome.status, outcome.field) == ("rejected", "order_id")
    assert outcome.reason is not None
    assert "NOPE" in outcome.reason
    dead = list(feeder.rows("SELECT topic, event, field, reason, body FROM mes_dead_letters"))
    assert len(dead) == 1
    topic, name, field, reason, stored_body = dead[0]
    assert (topic, name, field, reason) == (f"{FILLER}/mes/{event}", event, "order_id", outcome.reason)
    assert '"NOPE"' in str(stored_body)


def test_work_order_life_cycle_checks(feeder: Feeder) -> None:
    send = feeder.send
    start = {"action": "start"}
    assert send(LINE, "work_order", at(24, 6), order_id="A", **start).field == "order_id"  # never released
    _release(feeder, "A")
    _release(feeder, "B")
    assert send(LINE, "work_order", at(24, 6), order_id="A", **start).status == "stored"
    busy = send(LINE, "work_order", at(24, 7), order_id="B", **start)
    assert (busy.status, busy.field) == ("rejected", "order_id")
    assert busy.reason is not None
    assert "running order 'A'" in busy.reason
    assert send(LINE, "work_order", at(24, 7), order_id="A", **start).status == "rejected"  # already running
    assert send(LINE, "work_order", at(24, 8), order_id="A", action="complete").status == "stored"
    again = send(LINE, "work_order", at(24, 9), order_id="A", **start)
    assert (again.status, again.reason) == ("rejected", "order 'A' is already completed")
    assert send(LINE, "work_order", at(24, 9), order_id="A", action="complete").status == "rejected"
    assert send(LINE, "work_order", at(24, 9), order_id="B", **start).status == "stored"
    # another line runs its own order meanwhile
    _release(feeder, "C", "acme/dallas/bottling/line2")
    assert send("acme/dallas/bottling/line2", "work_order", at(24, 9), order_id="C", **start).status == "stored"
    assert feeder.store.running == {LINE: "B", "acme/dallas/bottling/line2": "C"}
    dead = [row[0] for row in feeder.rows("SELECT field FROM mes_dead_letters")]
    assert dead == ["order_id"] * 5


def test_running_order_is_filled_in(feeder: Feeder) -> None:
    send = feeder.send
    assert send(FILLER, "production_count", at(24, 5, 30), total=3).order_id is None  # nothing runs yet
    _release(feeder, "A")
    send(LINE, "work_order", at(24, 6), order_id="A", action="start")
    assert send(FILLER, "production_count", at(24, 7), total=10, scrap=1).order_id == "A"
    send(FILLER, "labor", at(24, 7), operator_id="op1", action="on")
    send(FILLER, "material_consumption", at(24, 7), material_id="cap", lot_id="L9", quantity=10.0)
    lot = {"lot_id": "OUT1", "input_lots": [{"lot_id": "L9", "material_id": "cap", "quantity": 10.0}]}
    send(LINE, "lot_production", at(24, 8), **lot)
    send(FILLER, "quality_inspection", at(24, 8), characteristic="fill_ml", value=480.0, lower_limit=490.0)
    assert list(feeder.rows("SELECT order_id, good, scrap FROM mes_counts ORDER BY ts")) == [(None, 3, 0), ("A", 9, 1)]
    for table in ("mes_labor", "mes_consumption", "mes_lots"):
        assert list(feeder.rows(f"SELECT order_id FROM {table}")) == [("A",)]  # noqa: S608
    assert list(feeder.rows("SELECT lot_id, input_lot_id, quantity FROM mes_lot_inputs")) == [("OUT1", "L9", 10.0)]
    # an inspection is not assigned to an order it did not name; it is judged against its limits
    assert list(feeder.rows("SELECT order_id, result FROM mes_inspections")) == [(None, "fail")]


def test_restart_rebuilds_order_state(tmp_path: Path) -> None:
    path = tmp_path / "historian.duckdb"
    database = open_db(path)
    feeder = Feeder(database)
    _release(feeder, "A")
    _release(feeder, "B")
    _release(feeder, "C")
    feeder.send(LINE, "work_order", at(24, 6), order_id="A", action="start")
    feeder.send(LINE, "work_order", at(24, 7), order_id="A", action="complete")
    feeder.send(LINE, "work_order", at(24, 8), order_id="B", action="start")
    database.close()

    reopened = open_db(path)
    try:
        store = MesStore(reopened.connection, MesSection())
        assert store.running == {LINE: "B"}
        again = Feeder(reopened)
        start_c = again.send(LINE, "work_order", at(24, 9), order_id="C", action="start")
        assert (start_c.status, start_c.field) == ("rejected", "order_id")
        assert again.send(LINE, "work_order", at(24, 9), order_id="A", action="start").status == "rejected"
        assert again.send(FILLER, "production_count", at(24, 9), total=4).order_id == "B"
        # a re-delivery after the restart is still a duplicate
        resent = again.incoming(LINE, "work_order", {"timestamp_ms": ms(at(24, 8)), "order_id": "B", "action": "start"})
        assert again.store.apply([resent])[0].status == "duplicate"
    finally:
        reopened.close()


def test_mismatched_body_and_all_tables(feeder: Feeder) -> None:
    state = feeder.incoming(FILLER, "machine_state", {"timestamp_ms": 1, "state": 10000})
    wrong = type(state)(
        topic=f"{FILLER}/mes/shift", path=FILLER, event="shift", body=state.body, received_ms=1, raw=state.raw
    )
    outcome = feeder.store.apply([wrong])[0]
    assert (outcome.status, outcome.field) == ("rejected", "event")
    shift = {"shift_id": "s", "start_ms": 0, "end_ms": 10, "breaks": [{"start_ms": 2, "end_ms": 3}]}
    assert feeder.send(LINE, "shift", at(24, 1), **shift).status == "stored"
    assert feeder.send(LINE, "product_type", at(24, 1), product_id="P", ideal_cycle_time_s=1.5).status == "stored"
    label = {"start_ms": 0, "end_ms": 5, "reason_code": "jam", "state": 60000}
    assert feeder.send(FILLER, "downtime_reason", at(24, 1), **label).status == "stored"
    assert list(feeder.rows("SELECT breaks::VARCHAR FROM mes_shifts")) == [
        ('[{"start_ms":2,"end_ms":3,"name":"break"}]',)
    ]
    assert list(feeder.rows("SELECT reason_code, state, end_ts FROM mes_reasons")) == [
        ("jam", 60000, datetime(1970, 1, 1, 0, 0, 0, 5000, tzinfo=UTC))
    ]
