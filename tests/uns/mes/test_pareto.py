"""The downtime Pareto (issue 15, point 2): one bar per reason, whatever its loss class, with the class.

Cell acme/dallas/bottling/line1/capper, 2026-11-24 UTC, no shifts (no planned windows), window 06:00-12:00.
    06:00  10000
    07:00  40000 with reason JAM, 60 s        -> microstop (performance), bar JAM
    07:01  10000
    07:30 180000 (no reason), 90 s            -> microstop (performance), bar "equipment failure"
    07:31:30 10000
    08:00  60000 starved, 30 min              -> iso22400 availability / umh performance
    08:30  10000
    09:00  40000 with reason JAM, 10 min      -> availability, bar JAM (with the 60 s microstop)
    09:10  10000
    10:00 180000 (no reason), 20 min          -> availability, bar "equipment failure"
    10:20  10000
    11:00  70000 blocked, 50 s                -> microstop (performance)
    11:00:50 10000
    11:30 160000 no order, 10 min             -> planned: not lost time, no bar
    11:40  10000
  Total lost time: 60 + 90 + 1800 + 600 + 1200 + 50 = 3800 s.
  Bars, longest first: starved 1800, equipment failure 1290 (1200 availability + 90 performance),
  JAM 660 (600 + 60), blocked 50.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from model.config import MesSection
from tests.uns.mes.mes_events import Feeder, at, ms
from uns.mes.downtime import downtime
from uns.mes.views_api import run_view
from uns.store.database import Database

CELL = "acme/dallas/bottling/line1/capper"


def _feed(feeder: Feeder) -> None:
    changes: list[tuple[datetime, int, str | None]] = [
        (at(24, 6), 10000, None),
        (at(24, 7), 40000, "JAM"),
        (at(24, 7, 1), 10000, None),
        (at(24, 7, 30), 180000, None),
        (at(24, 7, 31, 30), 10000, None),
        (at(24, 8), 60000, None),
        (at(24, 8, 30), 10000, None),
        (at(24, 9), 40000, "JAM"),
        (at(24, 9, 10), 10000, None),
        (at(24, 10), 180000, None),
        (at(24, 10, 20), 10000, None),
        (at(24, 11), 70000, None),
        (at(24, 11, 0, 50), 10000, None),
        (at(24, 11, 30), 170000, None),
        (at(24, 11, 40), 10000, None),
    ]
    items = []
    for when, state, reason in changes:
        body: dict[str, object] = {"timestamp_ms": ms(when), "state": state}
        if reason is not None:
            body["reason_code"] = reason
        items.append(feeder.incoming(CELL, "machine_state", body))
    assert all(o.status == "stored" for o in feeder.store.apply(items))


def _bars(db: Database, section: MesSection) -> list[tuple[object, ...]]:
    cursor = db.reader()
    try:
        rows = downtime(cursor, section, path=CELL, start=at(24, 6), end=at(24, 12))
    finally:
        cursor.close()
    assert sum(row.share for row in rows) == pytest.approx(1.0, rel=1e-12)
    assert rows[-1].cumulative_share == pytest.approx(1.0, rel=1e-12)
    return [(r.reason, r.state, r.loss, r.availability_s, r.performance_s, r.duration_s, r.count) for r in rows]


def test_one_bar_per_reason_whatever_its_loss_class(db: Database) -> None:
    section = MesSection(reasons={"JAM": "Cap jam"})
    _feed(Feeder(db, section))
    assert _bars(db, section) == [
        ("inlet jam / starved", 60000, "availability", 1800, 0, 1800, 1),
        ("equipment failure", 180000, "availability", 1200, 90, 1290, 2),
        ("JAM", 40000, "availability", 600, 60, 660, 2),
        ("outlet jam / blocked", 70000, "performance", 0, 50, 50, 1),
    ]
    cursor = db.reader()
    (first, *_rest) = downtime(cursor, section, path=CELL, start=at(24, 6), end=at(24, 12))
    assert first.share == pytest.approx(1800 / 3800, rel=1e-12)
    assert first.cumulative_share == pytest.approx(1800 / 3800, rel=1e-12)
    jam = [row for row in downtime(cursor, section, path=CELL, start=at(24, 6), end=at(24, 12)) if row.reason == "JAM"]
    assert (jam[0].reason_code, jam[0].text, jam[0].state_name) == ("JAM", "Cap jam", "stop")
    cursor.close()


def test_umh_classes_show_on_the_bars(db: Database) -> None:
    section = MesSection(loss_preset="umh")
    _feed(Feeder(db, section))
    # starved and blocked are performance loss under umh, whatever their length
    assert _bars(db, section) == [
        ("inlet jam / starved", 60000, "performance", 0, 1800, 1800, 1),
        ("equipment failure", 180000, "availability", 1200, 90, 1290, 2),
        ("JAM", 40000, "availability", 600, 60, 660, 2),
        ("outlet jam / blocked", 70000, "performance", 0, 50, 50, 1),
    ]


def test_the_view_answers_the_class_of_each_bar(db: Database) -> None:
    section = MesSection()
    _feed(Feeder(db, section))
    cursor = db.reader()
    params = {"path": [CELL], "start": ["2026-11-24T06:00:00Z"], "end": ["2026-11-24T12:00:00Z"]}
    answer = run_view(cursor, section, "downtime", params, now=datetime(2026, 11, 25, tzinfo=UTC))
    cursor.close()
    rows = answer["rows"]
    assert isinstance(rows, list)
    assert [(row.reason, row.loss) for row in rows] == [
        ("inlet jam / starved", "availability"),
        ("equipment failure", "availability"),
        ("JAM", "availability"),
        ("outlet jam / blocked", "performance"),
    ]
    assert "microstop" not in {row.reason for row in rows}
