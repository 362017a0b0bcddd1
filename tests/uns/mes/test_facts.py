"""Per-hour facts give every MES view exactly the direct answer, also after relabels and late events."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import duckdb
import orjson
import pytest

from model.config import MesSection
from tests.uns.mes.mes_events import Feeder, at, ms
from uns.clock import HOUR_US, epoch_us
from uns.mes import facts
from uns.mes.facts import FactBuilder
from uns.mes.intervals import pieces
from uns.mes.views_api import run_view
from uns.query.args import document_bytes
from uns.store.database import Database

L1, L2 = "acme/dallas/bottling/line1", "acme/dallas/bottling/line2"
CELLS = (f"{L1}/filler", f"{L1}/capper", f"{L2}/rinser")
NOW = at(4, 0)
_CODES = (10000, 10000, 10000, 20000, 40100, 50000, 60000, 70000, 100000, 150000, 180000, 30000)


def _history(feeder: Feeder, seed: int) -> None:
    """Three days of states (many microstops), shifts with breaks, orders, counts and labels."""
    rng = random.Random(seed)
    for path in (*CELLS, L2):
        t, changes = at(1, 0, rng.randrange(60)), []
        while t < NOW:
            changes.append((t, rng.choice(_CODES)))
            t += timedelta(seconds=rng.choice((5, 30, 90, 119, 121, 600, 1800, 3000)) + rng.randrange(1000) / 1000)
        feeder.states(path, changes)
    feeder.send("acme/dallas", "product_type", at(1, 0), product_id="cola", ideal_cycle_time_s=0.5)
    for day in (1, 2, 3):
        for index, hour in enumerate((6, 14)):
            start = at(day, hour)
            breaks = [
                {"start_ms": ms(start + timedelta(hours=4)), "end_ms": ms(start + timedelta(hours=4, minutes=30))}
            ]
            feeder.send(L1, "shift", start - timedelta(hours=1), shift_id=f"d{day}s{index}", start_ms=ms(start),
                        end_ms=ms(start + timedelta(hours=8)), breaks=breaks)  # fmt: skip
        order = f"O{day}"
        feeder.send(L1, "work_order", at(day, 5), order_id=order, action="release", product_id="cola", quantity=1000)
        feeder.send(L1, "work_order", at(day, 6, 10), order_id=order, action="start")
        feeder.send(L1, "work_order", at(day, 20, 5), order_id=order, action="complete")
    counts = [
        feeder.incoming(path, "production_count", {"timestamp_ms": ms(at(1, 0) + timedelta(minutes=minute)) + i,
                                                   "total": rng.randrange(1, 40), "scrap": rng.randrange(2)})
        for minute in range(0, 3 * 24 * 60, 17)
        for i, path in enumerate(CELLS)
    ]  # fmt: skip
    assert {o.status for o in feeder.store.apply(counts)} == {"stored"}
    feeder.send(CELLS[0], "downtime_reason", at(2, 9), start_ms=ms(at(1, 8, 3)), end_ms=ms(at(1, 9, 47, 30)),
                reason_code="JAM")  # fmt: skip


def _params(path: str, start: datetime, end: datetime, **more: str) -> dict[str, list[str]]:
    return {"path": [path], "start": [start.isoformat()], "end": [end.isoformat()], **{k: [v] for k, v in more.items()}}


_CASES = [
    ("oee", _params("acme/dallas", at(1, 0), NOW, by="cell")),
    ("oee", _params("acme/dallas", at(1, 2, 17, 5), at(3, 21, 40), by="line")),
    ("oee", _params(L1, at(1, 0), NOW, by="shift")),
    ("oee", _params(L1, at(1, 0), NOW, by="order")),
    ("oee", _params(L1, at(1, 0), NOW, by="day", tz="America/Chicago")),
    ("oee", _params(CELLS[0], at(2, 0), at(2, 23, 59, 30), by="hour")),
    ("oee", _params(L1, at(1, 0), NOW, by="day", tz="Asia/Kolkata")),  # day edges cut hours at :30
    ("downtime", _params("acme/dallas", at(1, 0), NOW)),
    ("downtime", _params(L1, at(1, 3, 30), at(3, 4, 1))),
    ("timeline", _params(L1, at(2, 0), at(3, 0))),
    ("current", {}),
]


def _answers(cursor: duckdb.DuckDBPyConnection, section: MesSection) -> list[bytes]:
    return [document_bytes(run_view(cursor, section, view, params, now=NOW)) for view, params in _CASES]


def _direct(cursor: duckdb.DuckDBPyConnection, section: MesSection) -> list[bytes]:
    with facts.bypassed():
        return _answers(cursor, section)


def _build(builder: FactBuilder) -> int:
    total = 0
    while built := builder.build(NOW, hours=100):
        total += built
    return total


@pytest.fixture(params=["iso22400", "umh"])
def section(request: pytest.FixtureRequest) -> MesSection:
    return MesSection(loss_preset=request.param, output_cells={L1: CELLS[1]})


@pytest.fixture
def world(db: Database, section: MesSection) -> tuple[Feeder, FactBuilder]:
    feeder = Feeder(db, section)
    _history(feeder, seed=7)
    builder = FactBuilder(db.connection, section)
    feeder.store.changes.subscribe(builder.changed)
    return feeder, builder


def _from_facts(cursor: duckdb.DuckDBPyConnection, section: MesSection) -> int:
    segments = facts.plan(cursor, section, [*CELLS, L2], at(1, 0), NOW)
    return sum(round((s.end - s.start).total_seconds()) // 3600 for s in segments if s.from_facts)


def test_views_from_facts_equal_the_direct_answers(
    world: tuple[Feeder, FactBuilder], cursor: duckdb.DuckDBPyConnection, section: MesSection
) -> None:
    _, builder = world
    direct = _direct(cursor, section)
    assert _build(builder) >= 3 * 24 - 1
    assert _from_facts(cursor, section) >= 70  # three days but the last hours before NOW
    assert _answers(cursor, section) == direct
    rows = orjson.loads(direct[0])["rows"]
    assert {row["path"] for row in rows} == set(CELLS)
    assert all(row["time_s"] > 0 for row in rows)


def test_relabels_and_late_events_change_the_numbers_at_once(
    world: tuple[Feeder, FactBuilder], cursor: duckdb.DuckDBPyConnection, section: MesSection
) -> None:
    feeder, builder = world
    _build(builder)
    before = _answers(cursor, section)
    # a relabel of a past stretch (planned), a late state in the middle of day 2, a late shift on day 3
    feeder.send(CELLS[0], "downtime_reason", at(3, 23), start_ms=ms(at(2, 1, 0, 30)), end_ms=ms(at(2, 3, 12)),
                reason_code="CLEAN", state=150000)  # fmt: skip
    feeder.send(CELLS[1], "machine_state", at(2, 13, 7, 12), state=180000)
    feeder.send(CELLS[1], "machine_state", at(2, 13, 8, 2), state=10000)
    feeder.send(L2, "shift", at(3, 23, 30), shift_id="late-l2", start_ms=ms(at(3, 2)), end_ms=ms(at(3, 10)))
    after = _answers(cursor, section)
    assert after == _direct(cursor, section)  # stale facts are gone before the next read
    changed = [i for i, (old, new) in enumerate(zip(before, after, strict=True)) if old != new]
    assert {0, 1, 7, 9} <= set(changed)  # site OEE by cell and line, the Pareto, the timeline of day 2
    assert _from_facts(cursor, section) < 70  # dropped hours are answered directly until rebuilt
    _build(builder)
    assert _from_facts(cursor, section) >= 70
    assert _answers(cursor, section) == after


def test_labels_that_make_or_break_short_stops_give_the_same_answers_both_ways(
    world: tuple[Feeder, FactBuilder], cursor: duckdb.DuckDBPyConnection, section: MesSection
) -> None:
    """The runs of stops are of the labelled states: short labels, many across hour edges, after the facts are built.

    Each label may turn a microstop into availability loss (or back) up to ``microstop_s`` from it, also in the
    hour next to it: the facts must be dropped that far, and the edges (Python) must cut runs as the SQL does.
    """
    feeder, builder = world
    _build(builder)
    rng = random.Random(11)
    for index in range(120):
        hour = at(1, 1) + timedelta(hours=rng.randrange(3 * 24 - 4))
        start = hour + timedelta(seconds=rng.choice((-150, -90, -60, -30, -5, 0, 5, 30, 1700)) + rng.randrange(60))
        length = timedelta(seconds=rng.choice((1, 20, 60, 110, 130, 400)))
        state = rng.choice((10000, 40000, 180000, 150000, 30000, None))
        feeder.send(CELLS[index % 2], "downtime_reason", at(3, 23), start_ms=ms(start), end_ms=ms(start + length),
                    reason_code=f"R{index % 5}", **({} if state is None else {"state": state}))  # fmt: skip
    after = _answers(cursor, section)
    assert after == _direct(cursor, section)
    _build(builder)  # hours rebuilt through the SQL, the edges still classified in Python
    assert _from_facts(cursor, section) >= 70
    assert _answers(cursor, section) == after


@pytest.mark.parametrize("section", ["iso22400"], indirect=True)
def test_a_label_joining_a_stop_in_the_next_hour_drops_that_hour(
    db: Database, cursor: duckdb.DuckDBPyConnection, section: MesSection
) -> None:
    """A 60 s microstop at 02:00 becomes 120 s of availability loss when 01:59-02:00 is labelled a stop."""
    feeder = Feeder(db, section)
    builder = FactBuilder(db.connection, section)
    feeder.store.changes.subscribe(builder.changed)
    feeder.states(CELLS[0], [(at(1, 0), 10000), (at(1, 2), 40000), (at(1, 2, 1), 10000)])
    _build(builder)
    params = {"path": [CELLS[0]], "start": [at(1, 0).isoformat()], "end": [at(1, 6).isoformat()]}

    def bars() -> list[tuple[object, ...]]:
        rows = orjson.loads(document_bytes(run_view(cursor, section, "downtime", params, now=NOW)))["rows"]
        return [(row["reason"], row["availability_s"], row["performance_s"]) for row in rows]

    assert bars() == [("stop", 0.0, 60.0)]
    feeder.send(CELLS[0], "downtime_reason", at(1, 5), start_ms=ms(at(1, 1, 59)), end_ms=ms(at(1, 2)),
                reason_code="JAM", state=40000)  # fmt: skip
    assert bars() == [("JAM", 60.0, 0.0), ("stop", 60.0, 0.0)]
    with facts.bypassed():
        assert bars() == [("JAM", 60.0, 0.0), ("stop", 60.0, 0.0)]


def test_other_classification_settings_do_not_read_these_facts(
    world: tuple[Feeder, FactBuilder], db: Database, section: MesSection
) -> None:
    _, builder = world
    _build(builder)
    other = section.model_copy(update={"microstop_s": 30.0})
    with db.reader() as cursor:
        assert _from_facts(cursor, other) == 0
        assert _answers(cursor, other) == _direct(cursor, other)


def _count_hours(cursor: duckdb.DuckDBPyConnection, table: str = "mes_fact_count_hours") -> int:
    row = cursor.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608 (ours)
    return 0 if row is None else int(row[0])


@pytest.mark.parametrize("section", ["iso22400"], indirect=True)  # counts do not depend on loss classes
def test_late_counts_orders_and_product_types_change_oee_at_once(
    world: tuple[Feeder, FactBuilder], cursor: duckdb.DuckDBPyConnection, section: MesSection
) -> None:
    feeder, builder = world
    _build(builder)
    built = _count_hours(cursor)
    assert built >= 3 * 24 - 1  # every closed hour since the first count
    before = _answers(cursor, section)
    # a count posted two days late, and an order started and completed a day late in a gap between
    # orders (its counts were unattributed: they move to it) with a product of its own, sent late
    feeder.send(CELLS[1], "production_count", at(2, 10, 3, 7), total=700, scrap=40)
    feeder.send(L1, "work_order", at(3, 22), order_id="O9", action="release", product_id="slow", quantity=10)
    feeder.send(L1, "work_order", at(2, 20, 30), order_id="O9", action="start")
    feeder.send(L1, "work_order", at(3, 2, 0), order_id="O9", action="complete")
    after_orders = _answers(cursor, section)
    assert after_orders == _direct(cursor, section)
    assert _count_hours(cursor) < built  # the hours those events touch are read directly until rebuilt
    feeder.send("acme/dallas", "product_type", at(3, 23), product_id="slow", ideal_cycle_time_s=2.0)
    after = _answers(cursor, section)
    assert after == _direct(cursor, section)  # a product type needs no rebuild: joined at read time
    changed = [i for i, (old, new) in enumerate(zip(before, after, strict=True)) if old != new]
    assert {0, 1, 3} <= set(changed)  # OEE by cell, by line, by order
    orders = {row["group"]: row for row in orjson.loads(after[3])["rows"]}
    assert orders["O9"]["total"] > 0
    assert orders["O9"]["ideal_cycle_time_s"] == 2.0
    assert after_orders[3] != after[3]  # the product's ideal cycle time moved O9's performance
    _build(builder)
    assert _count_hours(cursor) >= built
    assert _answers(cursor, section) == after


@pytest.mark.parametrize("section", ["iso22400"], indirect=True)
def test_a_builder_started_on_built_facts_drops_late_events_and_nothing_for_the_open_hour(
    world: tuple[Feeder, FactBuilder], db: Database, cursor: duckdb.DuckDBPyConnection, section: MesSection
) -> None:
    """Hours past the newest built hold no facts: events there drop nothing; a late one still drops its hours."""
    _, builder = world
    _build(builder)

    def built() -> tuple[int, int]:
        return _count_hours(cursor), _count_hours(cursor, "mes_fact_hours")

    before = built()
    again = Feeder(db, section)  # a hub started again on this file: its builder learns what is built from it
    again.store.changes.subscribe(FactBuilder(db.connection, section).changed)
    again.send(CELLS[1], "production_count", NOW + timedelta(minutes=10), total=5, scrap=0)  # the open hour
    again.send(CELLS[1], "machine_state", NOW + timedelta(minutes=20), state=180000)
    assert built() == before
    again.send(CELLS[1], "production_count", at(2, 10, 3, 7), total=700, scrap=40)  # two days late
    again.send(CELLS[1], "machine_state", at(3, 13, 7, 12), state=180000)
    counts, states = built()
    assert (counts, states < before[1]) == (before[0] - 1, True)
    assert _answers(cursor, section) == _direct(cursor, section)


@pytest.mark.parametrize("section", ["iso22400"], indirect=True)
def test_a_late_event_in_the_newest_built_hour_drops_it(
    world: tuple[Feeder, FactBuilder], cursor: duckdb.DuckDBPyConnection, section: MesSection
) -> None:
    """The newest hour built is the edge of what the builder skips: a state or a count landing in it drops it."""
    feeder, builder = world
    _build(builder)
    newest = {
        table: cursor.execute(f"SELECT max(hour) FROM {table}").fetchall()[0][0]  # noqa: S608 (ours)
        for table in ("mes_fact_hours", "mes_fact_count_hours")
    }
    # states: the last hour ending microstop_s before NOW; counts: the last closed hour
    assert newest == {
        "mes_fact_hours": epoch_us(at(3, 22)) // HOUR_US,
        "mes_fact_count_hours": epoch_us(at(3, 23)) // HOUR_US,
    }
    before = _answers(cursor, section)
    feeder.send(CELLS[1], "machine_state", at(3, 22, 40), state=180000)  # late, in the newest state hour
    feeder.send(CELLS[1], "machine_state", at(3, 22, 50), state=10000)
    after_states = _answers(cursor, section)
    assert after_states == _direct(cursor, section)
    assert after_states != before
    feeder.send(CELLS[1], "production_count", at(3, 23, 30), total=900, scrap=0)  # late, in the newest count hour
    after = _answers(cursor, section)
    assert after == _direct(cursor, section)
    assert after != after_states


def test_edges_find_a_state_set_days_before_them(db: Database, cursor: duckdb.DuckDBPyConnection) -> None:
    """A bounded edge looks for each path's state in the day before it first; one set days earlier is still found."""
    section = MesSection()
    feeder = Feeder(db, section)
    feeder.states(CELLS[0], [(at(1, 0), 10000), (at(1, 5), 40100)])  # stopped since day 1, 05:00
    feeder.states(CELLS[1], [(at(3, 22, 10), 10000), (at(3, 23, 30), 20000)])
    start, end = at(3, 23), NOW
    bounded = pieces(cursor, section, paths=CELLS[:2], start=start, end=end, bounded=True)
    assert bounded == pieces(cursor, section, paths=CELLS[:2], start=start, end=end)
    assert [(p.path, p.start, p.state, p.stop_start) for p in bounded if p.path == CELLS[0]] == [
        (CELLS[0], start, 40100, at(1, 5))
    ]
    assert {p.path for p in bounded} == set(CELLS[:2])


@pytest.mark.parametrize("section", ["iso22400"], indirect=True)
def test_a_stop_broken_by_a_break_at_the_hour_edge_is_one_stop_both_ways(
    db: Database, cursor: duckdb.DuckDBPyConnection, section: MesSection
) -> None:
    """An inlet jam 09:46-10:36 across a break 10:00-10:30: one stop, though no loss of it touches 10:00.

    Asked 09:07:33-12:00, 09:46-10:00 is answered directly and 10:30-10:36 from the 10:00 fact: the stop's
    loss pieces meet nowhere, the planned break between them. One bar, 1200 s (793 + 407), count 1.
    """
    feeder = Feeder(db, section)
    builder = FactBuilder(db.connection, section)
    feeder.store.changes.subscribe(builder.changed)
    breaks = [{"start_ms": ms(at(1, 10)), "end_ms": ms(at(1, 10, 30))}]
    feeder.send(L1, "shift", at(1, 5), shift_id="early", start_ms=ms(at(1, 6)), end_ms=ms(at(1, 14)), breaks=breaks)
    feeder.states(CELLS[0], [(at(1, 9), 10000), (at(1, 9, 46, 47), 60000), (at(1, 10, 36, 47), 10000)])
    _build(builder)
    params = {"path": [CELLS[0]], "start": [at(1, 9, 7, 33).isoformat()], "end": [at(1, 12).isoformat()]}

    def bars() -> list[tuple[object, ...]]:
        rows = orjson.loads(document_bytes(run_view(cursor, section, "downtime", params, now=NOW)))["rows"]
        return [(row["reason"], row["availability_s"], row["count"]) for row in rows]

    segments = facts.plan(cursor, section, [CELLS[0]], at(1, 9, 7, 33), at(1, 12))
    assert [(s.start, s.from_facts) for s in segments][:2] == [(at(1, 9, 7, 33), False), (at(1, 10), True)]
    assert bars() == [("inlet jam / starved", 1200.0, 1)]
    with facts.bypassed():
        assert bars() == [("inlet jam / starved", 1200.0, 1)]
