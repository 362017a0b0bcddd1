"""Late and backfilled events are attributed by their own timestamp: the order and shift running when they
happened, not when they arrived (store-and-forward backfill, an ERP posting hours later)."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import orjson
import pytest

from model.config import DeriveRule, MesSection
from tests.exports import assert_all_is_honest
from tests.fixtures.waiting import until
from tests.uns.mes.intake_hub import intake_hub
from tests.uns.mes.mes_events import Feeder, at, ms, open_db
from uns.clock import now_ms
from uns.mes.attribution import OrderRuns
from uns.mes.changes import Change
from uns.mes.downtime import current, state_timeline
from uns.mes.oee import oee
from uns.mes.orders import order_progress
from uns.store.database import Database

LINE = "acme/dallas/bottling/line1"
CELL = f"{LINE}/filler"
SECTION = MesSection(output_cells={LINE: CELL})


def _plan(feed: Feeder) -> None:
    """P1 (1 s a unit) for O1, P5 (5 s a unit) for O2; O1 runs 06:00-07:30, O2 from 07:30; shifts 06-14, 14-22."""
    feed.send("acme/dallas", "product_type", at(1, 0), product_id="P1", ideal_cycle_time_s=1.0)
    feed.send("acme/dallas", "product_type", at(1, 0), product_id="P5", ideal_cycle_time_s=5.0)
    for order, product in (("O1", "P1"), ("O2", "P5")):
        feed.send(LINE, "work_order", at(1, 0), order_id=order, action="release", product_id=product, quantity=1000)
    feed.send(LINE, "shift", at(1, 0), shift_id="early", start_ms=ms(at(24, 6)), end_ms=ms(at(24, 14)))
    feed.send(LINE, "shift", at(1, 0), shift_id="late", start_ms=ms(at(24, 14)), end_ms=ms(at(24, 22)))
    feed.states(CELL, [(at(24, 6), 10000)])
    feed.send(LINE, "work_order", at(24, 6), order_id="O1", action="start")
    feed.send(LINE, "work_order", at(24, 7, 30), order_id="O1", action="complete")
    feed.send(LINE, "work_order", at(24, 7, 30), order_id="O2", action="start")


def _stored_orders(feed: Feeder) -> list[tuple[object, ...]]:
    return list(feed.rows("SELECT epoch_ms(ts), order_id, order_given FROM mes_counts ORDER BY ts"))


def test_a_count_posted_after_the_next_order_started_is_credited_to_the_order_running_when_it_happened(
    tmp_path: Path,
) -> None:
    database = open_db(tmp_path / "mes.duckdb")
    try:
        feed = Feeder(database, SECTION)
        _plan(feed)
        # the 07:00 count of O1 arrives at 09:00, while O2 runs: an ERP (or a backfilling edge node) catching up
        late = feed.incoming(CELL, "production_count", {"timestamp_ms": ms(at(24, 7)), "total": 1800},
                             received=at(24, 9))  # fmt: skip
        outcome = feed.store.apply([late])[0]
        assert outcome.status == "stored"
        assert outcome.order_id == "O1"
        assert _stored_orders(feed) == [(ms(at(24, 7)), "O1", False)]
        cursor = database.reader()
        try:
            rows = oee(cursor, SECTION, path=CELL, start=at(24, 6), end=at(24, 8), by="order")
            by_order = {row.group: row for row in rows}
            # 1800 units x 1 s (P1) in O1's 90 producing minutes, not x 5 s (P2): performance 1/3, not 5/3
            assert by_order["O1"].total == 1800
            assert by_order["O1"].ideal_cycle_time_s == 1.0
            assert by_order["O1"].performance is not None
            assert abs(by_order["O1"].performance - 1800 / 5400) < 1e-9
            assert by_order["O2"].total == 0
            progress = {o.order_id: o for o in order_progress(cursor, line=LINE, output_cells=SECTION.output_cells)}
            assert (progress["O1"].good, progress["O2"].good) == (1800, 0)
        finally:
            cursor.close()
    finally:
        database.close()


def test_a_backfilled_batch_across_an_order_and_a_shift_change_lands_in_both_by_timestamp(tmp_path: Path) -> None:
    database = open_db(tmp_path / "mes.duckdb")
    try:
        feed = Feeder(database, SECTION)
        _plan(feed)
        feed.send(LINE, "work_order", at(24, 13, 55), order_id="O2", action="complete")
        feed.send(LINE, "work_order", at(1, 0), order_id="O3", action="release", product_id="P1", quantity=10)
        feed.send(LINE, "work_order", at(24, 14, 5), order_id="O3", action="start")
        # an edge node was offline 13:00-15:00 and now sends its buffered counts in one batch (is_historical)
        stamps = [at(24, 13, 50), at(24, 14), at(24, 14, 10)]
        batch = [
            feed.incoming(CELL, "production_count", {"timestamp_ms": ms(t), "total": 10}, received=at(24, 15))
            for t in stamps
        ]
        assert [o.order_id for o in feed.store.apply(batch)] == ["O2", None, "O3"]
        cursor = database.reader()
        try:
            shifts = oee(cursor, SECTION, path=CELL, start=at(24, 6), end=at(24, 22), by="shift")
            assert {row.group: row.total for row in shifts} == {"early": 10, "late": 20}
            progress = {
                o.order_id: o.good for o in order_progress(cursor, line=LINE, output_cells=SECTION.output_cells)
            }
            assert (progress["O2"], progress["O3"]) == (10, 10)
        finally:
            cursor.close()
    finally:
        database.close()


def test_a_late_complete_moves_the_counts_the_mes_filled_in_but_never_one_that_named_its_order(
    tmp_path: Path,
) -> None:
    database = open_db(tmp_path / "mes.duckdb")
    heard: list[Sequence[Change]] = []
    try:
        feed = Feeder(database, SECTION)
        feed.send(LINE, "work_order", at(1, 0), order_id="O1", action="release", product_id="P1", quantity=1000)
        feed.send(LINE, "work_order", at(1, 0), order_id="O2", action="release", product_id="P5", quantity=1000)
        feed.send(LINE, "work_order", at(24, 6), order_id="O1", action="start")
        feed.send(CELL, "production_count", at(24, 7, 10), total=5)
        feed.send(CELL, "production_count", at(24, 7, 15), total=7, order_id="O1")
        feed.send(CELL, "production_count", at(24, 7, 20), total=9)
        feed.send(CELL, "labor", at(24, 7, 25), operator_id="OP-1", action="on")
        assert [r[1] for r in _stored_orders(feed)] == ["O1", "O1", "O1"]
        feed.store.changes.subscribe(heard.append)
        # the ERP posts at 08:00 that O1 ended and O2 began at 07:05
        feed.send(LINE, "work_order", at(24, 7, 5), order_id="O1", action="complete")
        assert [r[1] for r in _stored_orders(feed)] == [None, "O1", None]  # between the two: no order ran
        feed.send(LINE, "work_order", at(24, 7, 5), order_id="O2", action="start")
        assert _stored_orders(feed) == [
            (ms(at(24, 7, 10)), "O2", False),
            (ms(at(24, 7, 15)), "O1", True),  # named by the event: never overridden
            (ms(at(24, 7, 20)), "O2", False),
        ]
        assert list(feed.rows("SELECT order_id FROM mes_labor")) == [("O2",)]
        # the invalidation point: each commit says which path and which stretch of time changed
        moved = [c for batch in heard for c in batch if c.event in ("production_count", "labor")]
        assert (moved[0].path, moved[0].start_ms) == (CELL, ms(at(24, 7, 10)))
        assert {(c.event, c.start_ms) for c in moved} >= {
            ("production_count", ms(at(24, 7, 20))),
            ("labor", ms(at(24, 7, 25))),
        }
        orders = [c for batch in heard for c in batch if c.event == "work_order"]
        assert [(c.path, c.start_ms, c.end_ms) for c in orders] == [(LINE, ms(at(24, 7, 5)), None)] * 2
    finally:
        database.close()


def test_an_erp_may_post_an_earlier_orders_start_and_complete_after_the_next_order_began(tmp_path: Path) -> None:
    database = open_db(tmp_path / "mes.duckdb")
    try:
        feed = Feeder(database, SECTION)
        _plan(feed)  # O1 06:00-07:30, O2 from 07:30 (running)
        feed.send(LINE, "work_order", at(1, 0), order_id="O0", action="release", product_id="P1", quantity=10)
        feed.send(CELL, "production_count", at(24, 5, 10), total=4)  # a count before any order: none yet
        # at 09:00 the ERP catches up on the night's order O0, 04:00-05:30
        started = feed.send(LINE, "work_order", at(24, 4), order_id="O0", action="start")
        assert started.status == "stored", started.reason
        assert feed.store.running == {LINE: "O2"}  # the backfilled order does not displace the running one
        assert feed.send(LINE, "work_order", at(24, 5, 30), order_id="O0", action="complete").status == "stored"
        assert _stored_orders(feed) == [(ms(at(24, 5, 10)), "O0", False)]  # re-attributed by its timestamp
        # a start at an instant another order ran is refused, naming it; so is a complete before its start
        feed.send(LINE, "work_order", at(1, 0), order_id="O9", action="release", product_id="P1", quantity=10)
        overlap = feed.send(LINE, "work_order", at(24, 7), order_id="O9", action="start")
        assert (overlap.status, overlap.field) == ("rejected", "order_id")
        assert overlap.reason == f"line {LINE} was running order 'O1' at 2026-11-24T07:00:00+00:00: complete it first"
        early = feed.send(LINE, "work_order", at(24, 7), order_id="O2", action="complete")
        assert (early.status, early.field) == ("rejected", "timestamp_ms")
        assert early.reason == "before the order's start at 2026-11-24T07:30:00+00:00"
    finally:
        database.close()


def test_changes_name_the_stretch_each_event_touches(tmp_path: Path) -> None:
    database = open_db(tmp_path / "mes.duckdb")
    heard: list[Change] = []
    try:
        feed = Feeder(database, SECTION)
        feed.store.changes.subscribe(lambda changes: heard.extend(changes))
        feed.send(CELL, "machine_state", at(24, 6), state=10000)
        feed.send(CELL, "downtime_reason", at(24, 9), start_ms=ms(at(24, 7)), end_ms=ms(at(24, 8)), reason_code="J")
        feed.send(CELL, "production_count", at(24, 6, 30), total=3)
        feed.send("acme/dallas", "product_type", at(24, 6), product_id="P1", ideal_cycle_time_s=1.0)
        assert [(c.event, c.path, c.start_ms, c.end_ms) for c in heard] == [
            ("machine_state", CELL, ms(at(24, 6)), None),
            ("downtime_reason", CELL, ms(at(24, 7)), ms(at(24, 8))),
            ("production_count", CELL, ms(at(24, 6, 30)), ms(at(24, 6, 30)) + 1),
            ("product_type", "acme/dallas", None, None),
        ]
    finally:
        database.close()


def test_order_runs_answer_by_instant_with_the_latest_started_run_winning() -> None:
    runs = OrderRuns()
    runs.started("A", LINE, 100)
    runs.completed("A", 200)
    runs.started("B", LINE, 200)
    runs.started("C", "other", 0)
    assert [runs.at(LINE, t) for t in (99, 100, 199, 200, 10_000)] == [None, "A", "A", "B", "B"]
    runs.completed("B", 300)
    runs.started("D", LINE, 150)  # overlaps A: the later start wins where both run
    assert [runs.at(LINE, t) for t in (120, 160, 250, 300)] == ["A", "D", "B", "D"]
    assert runs.at("other", 5) == "C"
    assert runs.at("nowhere", 5) is None


def test_of_two_orders_started_at_one_instant_the_greater_id_runs() -> None:
    """As the views' SQL and memo break the tie (``count_facts``, ``count_memo``, ``downtime.current``)."""
    for first, second in (("A", "B"), ("B", "A")):
        runs = OrderRuns()
        runs.started(first, LINE, 100)
        runs.started(second, LINE, 100)
        assert (runs.at(LINE, 100), runs.at(LINE, 150), runs.running()) == ("B", "B", {LINE: "B"})


def test_current_names_the_greater_of_two_orders_started_at_one_instant(tmp_path: Path) -> None:
    database = open_db(tmp_path / "mes.duckdb")
    try:
        feed = Feeder(database, SECTION)
        feed.states(CELL, [(at(24, 6), 10000)])
        for order in ("O2", "O1"):  # as a file may hold them: the store refuses the second start while one runs
            database.connection.execute(
                "INSERT INTO mes_work_orders (event_key, path, ts, received, source, order_id, action, line)"
                " VALUES (hash($o), $p, $t, $t, 'erp', $o, 'start', $p)",
                {"o": order, "p": LINE, "t": at(24, 6)},
            )
        with contextlib.closing(database.reader()) as cursor:
            rows = current(cursor, SECTION, now=at(24, 7))
        assert {row.path: row.order_id for row in rows}[CELL] == "O2"
    finally:
        database.close()


def test_a_restarted_store_attributes_as_before(tmp_path: Path) -> None:
    database = open_db(tmp_path / "mes.duckdb")
    try:
        _plan(Feeder(database, SECTION))
        again = Feeder(database, SECTION)  # a new store reads the runs back from mes_work_orders
        assert again.send(CELL, "production_count", at(24, 7), total=1).order_id == "O1"
        assert again.send(CELL, "production_count", at(24, 5), total=1).order_id is None
        assert again.send(CELL, "production_count", at(24, 8), total=1).order_id == "O2"
    finally:
        database.close()


@pytest.mark.parametrize("module", ["uns.mes.attribution", "uns.mes.changes", "uns.mes.reattribute"])
def test_all_is_honest(module: str) -> None:
    assert_all_is_honest(module)


async def test_counts_derived_from_backfilled_machine_data_land_in_the_order_that_ran_then(tmp_path: Path) -> None:
    # an edge node buffered its counter while the host was away and sends it as is_historical after the
    # ERP already switched the line to O2: the derived count belongs to O1, whose time it was
    section = MesSection(
        kpi_interval_s=60,
        derive=[DeriveRule(match="acme/+/+/+/+/data/GoodCount", kind="counter", counts="good")],
    )
    now = now_ms()
    minute = 60_000
    async with intake_hub(tmp_path, settings=section) as hub:
        orders: list[dict[str, object]] = [
            {"timestamp_ms": now - 60 * minute, "order_id": "O1", "action": "release", "product_id": "P1",
             "quantity": 100},
            {"timestamp_ms": now - 60 * minute, "order_id": "O2", "action": "release", "product_id": "P5",
             "quantity": 100},
            {"timestamp_ms": now - 10 * minute, "order_id": "O1", "action": "start"},
            {"timestamp_ms": now - 5 * minute, "order_id": "O1", "action": "complete"},
            {"timestamp_ms": now - 5 * minute, "order_id": "O2", "action": "start"},
        ]  # fmt: skip
        for body in orders:
            reply = await hub.http.post(f"/api/mes/events/{LINE}/mes/work_order", content=orjson.dumps(body))
            assert reply.status_code == 201, reply.text
        for ts, value in ((now - 8 * minute, 100), (now - 7 * minute, 150), (now - 2 * minute, 170)):
            sample = {"value": value, "timestamp_ms": ts, "quality": "good", "datatype": "UInt32"}
            await hub.erp.publish(f"{CELL}/data/GoodCount", orjson.dumps(sample), qos=1)
        await until(lambda: hub.rows("SELECT count(*) FROM mes_counts") == [(2,)], what="two derived counts")
        assert hub.rows("SELECT epoch_ms(ts), good, order_id, order_given FROM mes_counts ORDER BY ts") == [
            (now - 7 * minute, 50, "O1", False),
            (now - 2 * minute, 20, "O2", False),
        ]


@pytest.mark.parametrize("seed", range(6))
def test_current_s_since_is_where_the_timeline_s_last_stretch_begins_under_random_labels(
    db: Database, seed: int
) -> None:
    """Labels sent late over random states (some begun before the state they cover, some hidden by newer ones):
    at every instant, ``current`` shows the timeline's state and reason, since its last stretch of them began."""
    rng = random.Random(seed)
    feed = Feeder(db)
    t, changes, last = at(24, 6), [], 0
    while t < at(24, 12):
        last = rng.choice([code for code in (10000, 40000, 180000, 60000) if code != last])
        changes.append((t, last))
        t += timedelta(minutes=rng.choice((1, 5, 20, 45)))
    feed.states(CELL, changes)
    for k in range(rng.randrange(1, 6)):
        start = at(24, 6) + timedelta(minutes=rng.randrange(360))
        end = start + timedelta(minutes=rng.choice((1, 10, 30, 90, 200)))
        state = rng.choice((None, 10000, 40000, 180000))
        body: dict[str, object] = {"start_ms": ms(start), "end_ms": ms(end)}
        if state is not None:
            body["state"] = state
        if state is None or rng.random() < 0.5:
            body["reason_code"] = rng.choice(("R1", "R2"))
        assert feed.send(CELL, "downtime_reason", at(24, 12, k), **body).status == "stored"
    cursor = db.reader()
    for minute in range(0, 360, 11):
        now = at(24, 6, 1, 30) + timedelta(minutes=minute)
        (row,) = (r for r in current(cursor, SECTION, now=now) if r.path == CELL)
        timeline = state_timeline(cursor, SECTION, path=CELL, start=at(24, 6), end=now)
        first = len(timeline) - 1
        shown = (timeline[first].state, timeline[first].reason_code)
        while first > 0 and (timeline[first - 1].state, timeline[first - 1].reason_code) == shown:
            first -= 1
        assert (row.state, row.reason_code, row.since) == (*shown, timeline[first].start), now
    cursor.close()
