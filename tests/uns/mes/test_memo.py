"""The views' memory (``uns.mes.memo``): every answer stays the direct one, and a change shows at once."""

from __future__ import annotations

import contextlib
import logging
import random
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Literal

import duckdb
import pytest

from model.config import MesSection
from tests.uns.mes import test_facts as reference
from tests.uns.mes.mes_events import Feeder, at, ms
from uns.clock import HOUR_US, at_epoch_us, epoch_us
from uns.mes import facts, memo
from uns.mes.count_facts import CountFacts, CountPath, count_rows
from uns.mes.downtime import current, downtime
from uns.mes.facts import FactBuilder
from uns.mes.intervals import Window
from uns.mes.memo import ViewMemo
from uns.mes.oee import OeeRow, oee
from uns.mes.paths import line_of
from uns.store.database import Database

CELL = "acme/dallas/bottling/line1/filler"
LINE = "acme/dallas/bottling/line1"
NOW = at(2, 0)


@pytest.fixture
def section() -> MesSection:
    return MesSection(ideal_cycle_time_s={LINE: 1.0})


@pytest.fixture
def world(db: Database, cursor: duckdb.DuckDBPyConnection, section: MesSection) -> Iterator[tuple[Feeder, ViewMemo]]:
    """A day of one cell producing without a stop, a count of 30 a minute, facts built, a memo attached."""
    feeder = Feeder(db, section)
    feeder.states(CELL, [(at(1, 0), 10000)])
    counts = [
        feeder.incoming(CELL, "production_count", {"timestamp_ms": ms(at(1, 0) + timedelta(minutes=m)), "total": 30})
        for m in range(24 * 60)
    ]
    assert {o.status for o in feeder.store.apply(counts)} == {"stored"}
    views_memo = ViewMemo()
    builder = FactBuilder(db.connection, section, memo=views_memo)
    feeder.store.changes.subscribe(builder.changed)
    feeder.store.changes.subscribe(views_memo.changed)
    while builder.build(NOW):
        pass
    detach = memo.attach(cursor, views_memo)
    yield feeder, views_memo
    detach()


def _day(cursor: duckdb.DuckDBPyConnection, section: MesSection, start: datetime, end: datetime) -> OeeRow:
    rows = oee(cursor, section, path=CELL, start=start, end=end)
    direct = _direct(cursor, section, start, end)
    assert rows == direct  # the memo's answer is exactly the direct one
    return rows[0]


def _direct(cursor: duckdb.DuckDBPyConnection, section: MesSection, start: datetime, end: datetime) -> list[OeeRow]:
    with facts.bypassed():
        return oee(cursor, section, path=CELL, start=start, end=end)


def test_answers_come_from_memory_and_equal_the_direct_ones(
    world: tuple[Feeder, ViewMemo], cursor: duckdb.DuckDBPyConnection, section: MesSection
) -> None:
    _, views_memo = world
    assert memo.of(cursor) is views_memo
    row = _day(cursor, section, at(1, 0), NOW)
    assert (row.time_s, row.availability, row.total) == (86400.0, 1.0, 30 * 24 * 60)
    loads = views_memo.loads
    assert loads > 0
    again = _day(cursor, section, at(1, 3), at(1, 21))
    assert views_memo.loads == loads  # the paths and the hours' sums came from memory
    assert (again.time_s, again.total) == (18 * 3600.0, 30 * 18 * 60)
    assert [r.path for r in current(cursor, section, now=NOW)] == [CELL, LINE]
    assert views_memo.loads == loads


def test_a_relabel_changes_the_memorised_answer_at_once(
    world: tuple[Feeder, ViewMemo], cursor: duckdb.DuckDBPyConnection, section: MesSection
) -> None:
    feeder, _ = world
    assert _day(cursor, section, at(1, 0), NOW).planned_downtime_s == 0.0
    feeder.send(CELL, "downtime_reason", at(1, 23), start_ms=ms(at(1, 2)), end_ms=ms(at(1, 4)), reason_code="CLEAN",
                state=150000)  # fmt: skip
    row = _day(cursor, section, at(1, 0), NOW)
    assert (row.planned_downtime_s, row.planned_busy_time_s) == (7200.0, 86400.0 - 7200.0)
    bars = downtime(cursor, section, path=CELL, start=at(1, 0), end=NOW)
    assert bars == []  # planned downtime is not lost time


def test_a_backfilled_state_changes_the_memorised_answer_at_once(
    world: tuple[Feeder, ViewMemo], cursor: duckdb.DuckDBPyConnection, section: MesSection
) -> None:
    feeder, _ = world
    _day(cursor, section, at(1, 0), NOW)
    feeder.states(CELL, [(at(1, 6), 180000), (at(1, 6, 10), 10000)])  # store-and-forward, a day late
    row = _day(cursor, section, at(1, 0), NOW)
    assert (row.availability_loss_s, row.actual_production_time_s) == (600.0, 86400.0 - 600.0)
    bars = downtime(cursor, section, path=CELL, start=at(1, 0), end=NOW)
    assert [(b.state, b.duration_s, b.count) for b in bars] == [(180000, 600.0, 1)]


def test_a_late_count_changes_the_memorised_answer_at_once(
    world: tuple[Feeder, ViewMemo], cursor: duckdb.DuckDBPyConnection, section: MesSection
) -> None:
    feeder, _ = world
    before = _day(cursor, section, at(1, 0), NOW)
    feeder.send(CELL, "production_count", at(1, 8, 30, 30), total=50, scrap=5)
    row = _day(cursor, section, at(1, 0), NOW)
    assert (row.total - before.total, row.good - before.good) == (50, 45)


def test_counts_read_directly_take_the_order_running_at_their_instant(
    world: tuple[Feeder, ViewMemo], db: Database, cursor: duckdb.DuckDBPyConnection, section: MesSection
) -> None:
    """The open hour is read directly, summed between cuts: where a window ends and an order starts or completes."""
    feeder, _ = world
    counts = [
        feeder.incoming(CELL, "production_count", {"timestamp_ms": ms(at(2, 0, m)), "total": 30}) for m in range(60)
    ]
    assert {o.status for o in feeder.store.apply(counts)} == {"stored"}
    feeder.send("acme/dallas", "product_type", NOW, product_id="cola", ideal_cycle_time_s=0.5)
    feeder.send(LINE, "work_order", NOW, order_id="O1", action="release", product_id="cola", quantity=600)
    feeder.send(LINE, "work_order", at(2, 0, 20), order_id="O1", action="start")  # posted after the counts
    feeder.send(LINE, "work_order", at(2, 0, 40), order_id="O1", action="complete")
    # as a file from before orders were filled in keeps its counts: no order, attributed by their instant at read
    db.connection.execute("UPDATE mes_counts SET order_id = NULL, order_given = NULL WHERE ts >= ?", [NOW])
    hour = _day(cursor, section, NOW, at(2, 1))  # O1 ran for the counts of minutes 20-39, at 0.5 s a unit
    assert (hour.total, hour.performance_loss_s) == (1800, 3600.0 - (20 * 30 * 0.5 + 40 * 30 * 1.0))
    half_hours = timezone(timedelta(minutes=30))  # local hours end at :30, inside the stretch read directly
    rows = oee(cursor, section, path=CELL, start=NOW, end=at(2, 1), by="hour", tz=half_hours)
    with facts.bypassed():
        assert rows == oee(cursor, section, path=CELL, start=NOW, end=at(2, 1), by="hour", tz=half_hours)
    assert [(r.total, r.performance_loss_s) for r in rows] == [(900, 1800.0 - (10 * 30 * 0.5 + 20 * 30 * 1.0))] * 2


def test_counts_read_directly_whose_sums_pass_bigint_are_summed_as_the_sql_sums_them(
    world: tuple[Feeder, ViewMemo], cursor: duckdb.DuckDBPyConnection, section: MesSection
) -> None:
    """A count may be any BIGINT: two in the open hour sum past 2**63, as the SQL's HUGEINT ``sum`` keeps them."""
    feeder, _ = world
    big = 2**63 - 1
    feeder.send(CELL, "production_count", at(2, 0, 5), total=big, scrap=1)
    feeder.send(CELL, "production_count", at(2, 0, 6), total=big, scrap=1)
    hour = _day(cursor, section, NOW, at(2, 1))  # the memo's answer is the direct one (it raised: BIGINT overflow)
    assert (hour.total, hour.good) == (2 * big, 2 * (big - 1))


@pytest.mark.parametrize("fact_table", ["new", "of an older hub"])
def test_an_hour_whose_counts_sum_past_bigint_is_built_and_read_as_the_raw_counts(
    db: Database,
    cursor: duckdb.DuckDBPyConnection,
    section: MesSection,
    fact_table: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Counts of one closed hour sum past 2**63 (a counter that wraps, a bad device): the hour's count facts are built,
    summed as the views sum the raw counts, and the day through the facts, with and without the memo, is the day
    from the raw counts. A file whose fact table an older hub made (BIGINT sums) takes them too, and the log says
    each column was widened, once."""
    if fact_table != "new":
        db.connection.execute(
            """CREATE TABLE mes_fact_counts (path VARCHAR NOT NULL, hour BIGINT NOT NULL, oid VARCHAR,
                                             total BIGINT NOT NULL, good BIGINT NOT NULL)"""
        )
    feeder = Feeder(db, section)
    feeder.states(CELL, [(at(1, 0), 10000)])
    big = 2**63 - 1
    for minute in (10, 20, 30):
        feeder.send(CELL, "production_count", at(1, 5, minute), total=big, scrap=1)
    feeder.send(CELL, "production_count", at(1, 6, 0), total=30)
    with caplog.at_level(logging.INFO, logger="uns.mes.count_facts"):
        builder = FactBuilder(db.connection, section)
        FactBuilder(db.connection, section)  # the next start: nothing left to widen
    widened = [r.getMessage() for r in caplog.records if "widened" in r.getMessage()]
    assert widened == (
        []
        if fact_table == "new"
        else [
            f"mes: count facts' {c} widened from BIGINT to HUGEINT (a table an older uns-hub made)"
            for c in ("total", "good")
        ]
    )
    while builder.build(NOW):  # raised at hour 05:00 (INT128 out of range for INT64): no count fact after it either
        pass
    hour5, hour6 = (epoch_us(at(1, h)) // HOUR_US for h in (5, 6))
    built = {int(h) for (h,) in cursor.execute("SELECT hour FROM mes_fact_count_hours").fetchall()}
    assert {hour5, hour6} <= built
    facts_of = cursor.execute("SELECT hour, total, good FROM mes_fact_counts ORDER BY hour").fetchall()
    assert facts_of == [(hour5, 3 * big, 3 * (big - 1)), (hour6, 30, 30)]
    direct = _direct(cursor, section, at(1, 0), NOW)
    assert (direct[0].total, direct[0].good) == (3 * big + 30, 3 * (big - 1) + 30)
    assert oee(cursor, section, path=CELL, start=at(1, 0), end=NOW) == direct  # the SQL over the facts
    views_memo = ViewMemo()
    detach = memo.attach(cursor, views_memo)
    try:
        assert oee(cursor, section, path=CELL, start=at(1, 0), end=NOW) == direct  # the memo over the facts
        assert {hour5, hour6} <= views_memo.count_hours(cursor)
    finally:
        detach()


def test_a_new_path_shows_at_once(
    world: tuple[Feeder, ViewMemo], cursor: duckdb.DuckDBPyConnection, section: MesSection
) -> None:
    feeder, _ = world
    assert [r.path for r in oee(cursor, section, path=LINE, start=at(1, 0), end=NOW)] == [CELL]
    other = f"{LINE}/capper"
    feeder.states(other, [(at(1, 12), 40100)])
    rows = oee(cursor, section, path=LINE, start=at(1, 0), end=NOW)
    assert [(r.path, r.availability_loss_s) for r in rows] == [(other, 12 * 3600.0), (CELL, 0.0)]


def test_a_restart_reads_what_was_stored_meanwhile(
    world: tuple[Feeder, ViewMemo], cursor: duckdb.DuckDBPyConnection, section: MesSection
) -> None:
    feeder, _ = world
    _day(cursor, section, at(1, 0), NOW)
    feeder.states(CELL, [(at(1, 9), 40100), (at(1, 9, 30), 10000)])
    restarted = ViewMemo()  # what a restarted adapter starts with: nothing, read again from DuckDB
    detach = memo.attach(cursor, restarted)
    try:
        row = _day(cursor, section, at(1, 0), NOW)
        assert restarted.loads > 0
        assert row.availability_loss_s == 1800.0
    finally:
        detach()
    assert memo.of(cursor) is None  # the old adapter's memo is not served again


@pytest.mark.parametrize("preset", ["iso22400", "umh"])
def test_every_view_through_the_memo_is_the_direct_answer(
    db: Database, cursor: duckdb.DuckDBPyConnection, preset: Literal["iso22400", "umh"]
) -> None:
    """``test_facts``' three days (microstops, shifts, orders, labels) and its views, now through a memo."""
    section = MesSection(loss_preset=preset, output_cells={reference.L1: reference.CELLS[1]})
    feeder = Feeder(db, section)
    reference._history(feeder, seed=7)
    views_memo = ViewMemo()
    builder = FactBuilder(db.connection, section, memo=views_memo)
    feeder.store.changes.subscribe(builder.changed)
    feeder.store.changes.subscribe(views_memo.changed)
    reference._build(builder)
    detach = memo.attach(cursor, views_memo)
    try:
        assert reference._answers(cursor, section) == reference._direct(cursor, section)
        loads = views_memo.loads
        feeder.send(reference.CELLS[0], "downtime_reason", at(3, 23), start_ms=ms(at(2, 1, 0, 30)),
                    end_ms=ms(at(2, 3, 12)), reason_code="CLEAN", state=150000)  # fmt: skip
        feeder.send(reference.CELLS[1], "machine_state", at(2, 13, 7, 12), state=180000)
        feeder.send(reference.CELLS[1], "machine_state", at(2, 13, 8, 2), state=10000)
        feeder.send(reference.L2, "shift", at(3, 23, 30), shift_id="late-l2", start_ms=ms(at(3, 2)),
                    end_ms=ms(at(3, 10)))  # fmt: skip
        assert reference._answers(cursor, section) == reference._direct(cursor, section)
        assert views_memo.loads <= loads + 1  # the L2 shift's first shift drops every hour of L2: read once again
    finally:
        detach()


def test_hours_built_later_are_read_into_the_memo(
    world: tuple[Feeder, ViewMemo], db: Database, cursor: duckdb.DuckDBPyConnection, section: MesSection
) -> None:
    feeder, views_memo = world
    _day(cursor, section, at(1, 0), NOW)  # the memo holds day 1's hours
    feeder.states(CELL, [(at(2, 1), 40100), (at(2, 2), 10000)])
    builder = FactBuilder(db.connection, section, memo=views_memo)
    assert builder.build(at(2, 6)) > 0  # day 2 up to 05:00: into the memo on next use
    segments = facts.plan(cursor, section, [CELL], at(1, 0), at(2, 6))
    assert [(s.end, s.from_facts) for s in segments] == [(at(2, 5), True), (at(2, 6), False)]  # the memo knows
    row = _day(cursor, section, at(1, 0), at(2, 6))
    assert (row.time_s, row.availability_loss_s) == (30 * 3600.0, 3600.0)


def test_an_in_memory_database_is_served_no_memo() -> None:
    """Two in-memory databases cannot be told apart by a file: neither gets a memo, so none gets another's."""
    with contextlib.closing(duckdb.connect(":memory:")) as connection, contextlib.closing(connection.cursor()) as cur:
        detach = memo.attach(cur, ViewMemo())
        assert memo.of(cur) is None
        detach()


def test_reads_racing_with_stored_events_and_builds_end_on_the_direct_answer(
    world: tuple[Feeder, ViewMemo], db: Database, cursor: duckdb.DuckDBPyConnection, section: MesSection
) -> None:
    """A dashboard reads on while late states, relabels and builds change the memo under it."""
    feeder, views_memo = world
    failures: list[BaseException] = []
    done = threading.Event()

    def read() -> None:
        with contextlib.closing(db.reader()) as reader:
            while not done.is_set():
                try:
                    oee(reader, section, path=CELL, start=at(1, 0), end=at(2, 6))
                    current(reader, section, now=at(2, 6))
                except BaseException as exc:  # reported below, in the test's thread
                    failures.append(exc)
                    return

    reader_thread = threading.Thread(target=read, name="dashboard")
    reader_thread.start()
    builder = FactBuilder(db.connection, section, memo=views_memo)
    try:
        for k in range(12):
            at_k = at(1, 1 + k)
            feeder.states(CELL, [(at_k, 180000), (at_k + timedelta(minutes=5), 10000)])
            feeder.send(CELL, "downtime_reason", at(2, 5), start_ms=ms(at_k + timedelta(minutes=20)),
                        end_ms=ms(at_k + timedelta(minutes=30)), reason_code="CLEAN", state=150000)  # fmt: skip
            builder.build(at(2, 6))
    finally:
        done.set()
        reader_thread.join(timeout=60)
    assert failures == []
    row = _day(cursor, section, at(1, 0), at(2, 6))
    assert (row.availability_loss_s, row.planned_downtime_s) == (12 * 300.0, 12 * 600.0)


def test_hours_rebuilt_twice_before_a_read_count_once(
    world: tuple[Feeder, ViewMemo], db: Database, cursor: duckdb.DuckDBPyConnection, section: MesSection
) -> None:
    feeder, views_memo = world
    _day(cursor, section, at(1, 0), NOW)
    builder = FactBuilder(db.connection, section, memo=views_memo)
    feeder.store.changes.subscribe(builder.changed)
    for hour in (10, 15):  # each drops the hours from it on; the two rebuilt ranges overlap
        feeder.states(CELL, [(at(1, hour), 40100), (at(1, hour, 6), 10000)])
        assert builder.build(NOW) > 0
    row = _day(cursor, section, at(1, 0), NOW)
    assert (row.time_s, row.availability_loss_s) == (86400.0, 720.0)


def test_count_reads_racing_with_late_counts_keep_no_hour_duckdb_dropped(
    world: tuple[Feeder, ViewMemo], db: Database, cursor: duckdb.DuckDBPyConnection, section: MesSection
) -> None:
    """A late count drops its built hour in DuckDB and in the memo; a load between the two keeps nothing stale.

    Each build empties the memo's counts, so the dashboard's reads load them again while the next late count lands.
    """
    feeder, views_memo = world
    builder = FactBuilder(db.connection, section, memo=views_memo)  # the fixture's one drops, this one builds
    done = threading.Event()

    def read() -> None:
        with contextlib.closing(db.reader()) as reader:
            while not done.is_set():
                views_memo.count_hours(reader)
                views_memo.counts(reader, [CELL])

    def stored_hours() -> set[int]:
        return {int(str(row[0])) for row in feeder.rows("SELECT DISTINCT hour FROM mes_fact_count_hours")}

    reader_thread = threading.Thread(target=read, name="dashboard")
    reader_thread.start()
    try:
        for k in range(40):
            feeder.send(CELL, "production_count", at(1, k % 24, 30, k % 60), total=10, scrap=1)
            assert set(views_memo.count_hours(cursor)) == stored_hours(), f"late count {k}"
            assert builder.build(NOW) > 0
    finally:
        done.set()
        reader_thread.join(timeout=60)
    row = _day(cursor, section, at(1, 0), NOW)
    assert (row.total, row.good) == (24 * 60 * 30 + 400, 24 * 60 * 30 + 360)


def test_what_a_read_was_handed_stays_as_it_was_through_drops_and_rebuilds(
    world: tuple[Feeder, ViewMemo], db: Database, cursor: duckdb.DuckDBPyConnection, section: MesSection
) -> None:
    """A view may loop over the hours' sums and counts it was handed while the writer drops and builds."""
    feeder, views_memo = world
    hour6 = int(at(1, 6).timestamp()) // 3600
    sums, counts = views_memo.hours(cursor, [CELL])[CELL], views_memo.counts(cursor, [CELL])[CELL]
    before = (dict(sums), dict(counts))
    assert (len(sums), sums[hour6][1], counts[hour6]) == (23, (3_600_000_000, 0, 0, 0), ((None, 1800, 1800),))
    feeder.states(CELL, [(at(1, 6), 180000), (at(1, 6, 10), 10000)])  # a late stop: its hours dropped
    feeder.send(CELL, "production_count", at(1, 6, 30, 30), total=50, scrap=5)  # and its hour's counts
    assert hour6 not in views_memo.hours(cursor, [CELL])[CELL]
    assert hour6 not in views_memo.counts(cursor, [CELL])[CELL]
    assert FactBuilder(db.connection, section, memo=views_memo).build(NOW) > 0
    assert views_memo.hours(cursor, [CELL])[CELL][hour6][1] == (3_000_000_000, 0, 600_000_000, 0)  # read in again
    assert (dict(sums), dict(counts)) == before


def test_hours_built_while_a_read_fails_are_read_by_the_next_one(
    world: tuple[Feeder, ViewMemo], db: Database, cursor: duckdb.DuckDBPyConnection, section: MesSection
) -> None:
    """A read of the memo that DuckDB refuses (here a closed cursor) keeps the built ranges for the next read."""
    feeder, views_memo = world
    six = epoch_us(at(1, 6)) // HOUR_US
    built = {h for h in views_memo.hours(cursor, [CELL])[CELL] if h >= six}  # in memory: 06:00 to the last built
    assert len(built) > 10
    feeder.states(CELL, [(at(1, 6), 180000), (at(1, 6, 10), 10000)])  # drops 06:00 on, ...
    builder = FactBuilder(db.connection, section, memo=views_memo)
    assert builder.build(NOW) > 0  # ... built again: the memo is to read those hours on next use
    closed = db.reader()
    closed.close()
    with pytest.raises(duckdb.Error):
        views_memo.hours(closed, [CELL])
    assert built <= set(views_memo.hours(cursor, [CELL])[CELL])


L2 = "acme/dallas/bottling/line2"
_CELLS = (f"{LINE}/filler", f"{LINE}/capper", f"{L2}/rinser")
_IDEAL = {"cola": 0.5, "water": 2.0}  # "dry" is released but has no product type: the path's fallback
_Order = tuple[str, str, str, int, str | None]
"""(order, action, line, instant µs, product of a release)."""
_Count = tuple[str, int, int, int, str | None]
"""(path, instant µs, total, good, order named)."""


def _random_plant(rng: random.Random) -> tuple[list[_Count], list[_Order], list[Window], tuple[int, int]]:
    """Counts, orders and windows stamped at a few instants (and 1 µs either side), so every cut has counts on it."""
    lo, hi = epoch_us(at(2, 0, 15)), epoch_us(at(2, 3, 20))
    hour1, hour2 = epoch_us(at(2, 1)), epoch_us(at(2, 2))
    drawn = (rng.randrange(epoch_us(at(2, 0)), epoch_us(at(2, 3, 30))) for _ in range(40))
    pool = sorted({lo, hi, hour1, hour2, epoch_us(at(2, 3)), *drawn})
    starts = rng.sample(pool, 8)  # distinct: two orders started at one instant on one line are a tie either way

    def complete_after(start: int) -> int | None:
        return rng.choice([None, *(p for p in pool if p > start)])

    s1, s2, s3, s3_again, s4, s4_again, s5, s7 = starts
    s3, s3_again = sorted((s3, s3_again))
    before5 = [p for p in pool if p <= s5]
    releases = rng.sample(pool, 7)
    orders: list[_Order] = [
        ("O1", "release", LINE, releases[0], "cola"),
        ("O1", "start", LINE, s1, None),
        ("O2", "release", LINE, releases[1], "water"),
        ("O2", "start", LINE, s2, None),  # may overlap O1: the later started runs
        ("O3", "release", L2, releases[2], "cola"),
        ("O3", "start", L2, s3, None),
        ("O3", "start", LINE, s3_again, None),  # started again on another line: its first start's line counts
        ("O4", "release", LINE, releases[3], "dry"),
        ("O4", "start", LINE, s4, None),
        ("O4", "start", LINE, s4_again, None),  # started twice, never completed
        ("O5", "release", L2, releases[4], "water"),
        ("O5", "start", L2, s5, None),
        ("O5", "complete", L2, rng.choice(before5), None),  # completed before (or as) it started: never runs
        ("O6", "release", LINE, min(releases[5:7]), "cola"),
        ("O6", "release", LINE, max(releases[5:7]), "water"),  # the latest release's product
        ("O6", "complete", LINE, rng.choice(pool), None),  # never started
        ("O7", "start", L2, s7, None),  # never released: no product
    ]
    for order, start in (("O1", s1), ("O2", s2), ("O3", s3), ("O4", s4), ("O7", s7)):
        end = complete_after(start) if order != "O4" else None
        if end is not None:
            orders.append((order, "complete", LINE if order != "O7" else L2, end, None))
    counts: list[_Count] = []
    for _ in range(300):
        total = rng.randrange(40)
        named = rng.choice([None, None, None, None, None, None, "O1", "O3", "O6", "X9"])  # X9: no such order
        counts.append((rng.choice(_CELLS), rng.choice(pool) + rng.choice((-1, 0, 0, 1)), total,
                       total - rng.randrange(min(total, 3) + 1), named))  # fmt: skip
    edges = [p for p in pool if not hour1 < p < hour2]  # 01:00-02:00 stays uncut: from the built facts
    windows = [
        Window(LINE, "span", at_epoch_us(lo), at_epoch_us(hi)),
        Window(_CELLS[0], "hour 1", at(2, 1), at(2, 2)),
        Window(_CELLS[1], "cut", at(2, 2, 30), at(2, 4)),  # 02:00-03:00 is read directly
        Window(_CELLS[2], "before", at(2, 0), at_epoch_us(lo)),  # ends where the span starts
        Window(LINE, "by O1", at(2, 0), at(2, 0), order="O1"),
        Window(LINE, "by O3", at(2, 0), at(2, 0), order="O3"),
        Window(L2, "by O3", at(2, 0), at(2, 0), order="O3"),
        Window(_CELLS[2], "by O7", at(2, 0), at(2, 0), order="O7"),
        Window(_CELLS[0], "by X9", at(2, 0), at(2, 0), order="X9"),
    ]
    for k in range(12):  # overlapping, repeated groups, some inverted (empty)
        a, b = rng.choice(edges), rng.choice(edges)
        a, b = (a, b) if k % 5 else (max(a, b), min(a, b))
        windows.append(Window(rng.choice([*_CELLS, LINE, L2]), f"w{k % 4}", at_epoch_us(a), at_epoch_us(b)))
    return counts, orders, windows, (lo, hi)


def _by_hand(
    counts: list[_Count], orders: list[_Order], paths: list[CountPath], windows: list[Window], span: tuple[int, int]
) -> list[tuple[str, str, float | None, int, int]]:
    """``count_rows`` count by count: its order (named, else the latest started running on its line), ideal, windows."""
    product: dict[str, tuple[int, str | None]] = {}
    first: dict[tuple[str, str], tuple[int, str]] = {}  # (order, start or complete) -> the earliest, its line
    for order, action, line, ts, prod in orders:
        if action == "release" and (order not in product or ts > product[order][0]):
            product[order] = (ts, prod)
        elif action != "release" and ((order, action) not in first or ts < first[order, action][0]):
            first[order, action] = (ts, line)
    sums: dict[tuple[str, str, float | None], list[int]] = {}
    for path, ts, total, good, named in counts:
        if not span[0] <= ts < span[1]:
            continue
        running = [
            (start, order)
            for (order, action), (start, line) in first.items()
            if action == "start" and line == line_of(path) and start <= ts
            and ((order, "complete") not in first or first[order, "complete"][0] > ts)
        ]  # fmt: skip
        oid = named if named is not None else max(running)[1] if running else None
        for entity, count_path, output, fallback, by_product in paths:
            prod = product.get(oid, (0, None))[1] if by_product and oid is not None else None
            ideal = _IDEAL.get(prod) if prod is not None else None
            ideal = fallback if ideal is None else ideal
            units, kept = (total, good) if output else (total - good, 0)
            for w in windows:
                inside = w.order == oid if w.order is not None else epoch_us(w.start) <= ts < epoch_us(w.end)
                if count_path == path and w.entity == entity and inside:
                    entry = sums.setdefault((entity, w.group, ideal), [0, 0])
                    entry[0] += units
                    entry[1] += kept
    return sorted(((e, g, ideal, t, k) for (e, g, ideal), (t, k) in sums.items()), key=repr)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_counts_orders_and_windows_through_the_memo_are_the_sql_answer(
    db: Database, cursor: duckdb.DuckDBPyConnection, seed: int
) -> None:
    """Counts named and not, on and 1 µs beside every window edge and order start and complete, read through the
    memo (two direct stretches summed between cuts, a built hour between them), the SQL with and without facts and
    by hand: the same rows."""
    counts, orders, windows, (lo, hi) = _random_plant(random.Random(seed))
    con = db.connection  # rows as stored: the store refuses a second start, not a file that holds one
    con.executemany(
        """INSERT INTO mes_counts (event_key, path, line, ts, received, total, scrap, good, order_id, order_given)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, false)""",
        [[k, p, line_of(p), at_epoch_us(ts), NOW, t, t - g, g, o] for k, (p, ts, t, g, o) in
         enumerate(counts)],
    )  # fmt: skip
    con.executemany(
        """INSERT INTO mes_work_orders (event_key, path, line, ts, received, order_id, action, product_id)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
        [[k, line, line, at_epoch_us(ts), NOW, o, a, p] for k, (o, a, line, ts, p) in enumerate(orders)],
    )
    con.executemany(
        """INSERT INTO mes_products (event_key, path, line, ts, received, product_id, ideal_cycle_time_s)
           VALUES (?, 'acme/dallas', 'acme/dallas', ?, ?, ?, ?)""",
        [[k, NOW, NOW, p, ict] for k, (p, ict) in enumerate(_IDEAL.items())],
    )
    paths: list[CountPath] = [
        (_CELLS[0], _CELLS[0], True, 1.0, True),
        (_CELLS[1], _CELLS[1], False, 2.0, True),  # counts its scrap
        (_CELLS[2], _CELLS[2], True, 0.25, True),
        (LINE, _CELLS[1], True, 1.5, False),  # the product's ideal does not apply
        (LINE, _CELLS[0], True, 3.0, True),
        (L2, _CELLS[2], True, None, True),  # no fallback
    ]
    assert CountFacts(con).build(at(2, 3, 30), 100) > 0
    views_memo = ViewMemo()
    detach = memo.attach(cursor, views_memo)
    span = (at_epoch_us(lo), at_epoch_us(hi))
    try:
        through_memo = sorted(count_rows(cursor, paths, windows, span=span), key=repr)
        assert {epoch_us(at(2, h)) // HOUR_US for h in (0, 1, 2)} <= views_memo.count_hours(cursor)
    finally:
        detach()
    with_facts = sorted(count_rows(cursor, paths, windows, span=span), key=repr)
    direct = sorted(count_rows(cursor, paths, windows, span=span, use_facts=False), key=repr)
    expected = _by_hand(counts, orders, paths, windows, (lo, hi))
    assert through_memo == direct == with_facts == expected
    assert len(expected) > 10


@pytest.mark.parametrize("first", ["A7", "B2"])
def test_two_orders_started_at_one_instant_on_a_line_give_the_greater_id_both_ways(
    db: Database, cursor: duckdb.DuckDBPyConnection, first: str
) -> None:
    """A file may hold two starts at one instant on a line (the store refuses the second): the greater order id runs.

    The SQL kept whichever its scan met first and the memo the other one (each way of inserting them)."""
    con = db.connection
    for key, order in enumerate((first, "B2" if first == "A7" else "A7")):
        con.execute(
            """INSERT INTO mes_work_orders (event_key, path, line, ts, received, order_id, action)
               VALUES (?, ?, ?, ?, ?, ?, 'start')""",
            [key, LINE, LINE, at(2, 0, 10), at(2, 0, 10), order],
        )
    for key, minute in enumerate((5, 10, 20, 70)):  # before the starts, at them, after, in the next hour
        con.execute(
            """INSERT INTO mes_counts (event_key, path, line, ts, received, total, scrap, good, order_id)
               VALUES (?, ?, ?, ?, ?, ?, 1, ?, NULL)""",
            [key, CELL, LINE, NOW + timedelta(minutes=minute), NOW, 10 + key, 9 + key],
        )
    assert CountFacts(con).build(at(2, 1, 30), 10) == 1  # 00:00-01:00 from facts, 01:00-02:00 read directly
    paths: list[CountPath] = [(CELL, CELL, True, 1.0, True)]
    windows = [Window(CELL, order, at(2, 0), at(2, 0), order=order) for order in ("A7", "B2")]
    windows.append(Window(CELL, "span", at(2, 0), at(2, 2)))
    span = (at(2, 0), at(2, 2))
    views_memo = ViewMemo()
    detach = memo.attach(cursor, views_memo)
    try:
        through_memo = sorted(count_rows(cursor, paths, windows, span=span))
    finally:
        detach()
    direct = sorted(count_rows(cursor, paths, windows, span=span, use_facts=False))
    with_facts = sorted(count_rows(cursor, paths, windows, span=span))
    assert (
        through_memo
        == direct
        == with_facts
        == [(CELL, "B2", 1.0, 11 + 12 + 13, 10 + 11 + 12), (CELL, "span", 1.0, 46, 42)]
    )
