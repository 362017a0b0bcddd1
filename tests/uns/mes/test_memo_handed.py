"""What the views' memo hands a reader never changes under it: drops and builds put changed copies in its place."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import duckdb
import pytest

from model.config import MesSection
from tests.uns.mes.mes_events import Feeder, at, ms
from uns.mes import memo
from uns.mes.facts import FactBuilder
from uns.mes.memo import ViewMemo
from uns.store.database import Database

CELL = "acme/dallas/bottling/line1/filler"
LINE = "acme/dallas/bottling/line1"
NOW = at(2, 0)
HOUR6 = int(at(1, 6).timestamp()) // 3600


@pytest.fixture
def world(db: Database, cursor: duckdb.DuckDBPyConnection) -> Iterator[tuple[Feeder, FactBuilder, ViewMemo]]:
    """A day of one cell producing, a count of 30 a minute, facts built, a memo attached (as test_memo's)."""
    section = MesSection(ideal_cycle_time_s={LINE: 1.0})
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
    yield feeder, builder, views_memo
    detach()


def test_hours_handed_out_stay_as_they_were_through_a_drop_and_a_rebuild(
    world: tuple[Feeder, FactBuilder, ViewMemo], cursor: duckdb.DuckDBPyConnection
) -> None:
    feeder, builder, views_memo = world
    handed = views_memo.hours(cursor, [CELL])[CELL]
    before = dict(handed)
    assert len(before) == 23  # the last hour ends within microstop_s of NOW: not built
    assert before[HOUR6][1] == (3_600_000_000, 0, 0, 0)  # all producing
    feeder.states(CELL, [(at(1, 6), 180000), (at(1, 6, 10), 10000)])  # a late stop: hours from 06:00 dropped
    assert dict(handed) == before
    assert HOUR6 not in views_memo.hours(cursor, [CELL])[CELL]  # the memo itself lost them
    assert builder.build(NOW) > 0
    again = views_memo.hours(cursor, [CELL])[CELL]  # rebuilt hours read in: the memo's path refreshed
    assert again[HOUR6][1] == (3_000_000_000, 0, 600_000_000, 0)  # 10 min lost to the stop
    assert dict(handed) == before


def test_counts_handed_out_stay_as_they_were_through_a_late_count(
    world: tuple[Feeder, FactBuilder, ViewMemo], cursor: duckdb.DuckDBPyConnection
) -> None:
    feeder, _, views_memo = world
    handed = views_memo.counts(cursor, [CELL])[CELL]
    before = dict(handed)
    assert before[HOUR6] == ((None, 30 * 60, 30 * 60),)
    feeder.send(CELL, "production_count", at(1, 6, 30, 30), total=50, scrap=5)  # drops 06:00's count facts
    assert HOUR6 not in views_memo.counts(cursor, [CELL])[CELL]
    assert dict(handed) == before
