"""Planned maintenance is planned downtime in OEE, computed by hand; facts follow every new version of an order.

Window 06:00-14:00 UTC on 2026-11-24 (28800 s), no shifts, iso22400.
  filler: 06:00 10000, 08:00 40000 stop, 09:00 10000, 11:00 180000 failure, 11:30 10000,
          13:00 40000 stop, 13:20 10000.
    P1 planned at the filler, scheduled 08:00-08:45, started 08:10, closed 09:00: the union of both
       windows, 08:00-09:00, covers the stop -> planned 3600 s.
    P2 planned at the filler, scheduled 12:00-12:30, never started: the filler produced then ->
       producing stays production (the window was not taken).
    P3 planned at the filler 13:00-13:30, cancelled: plans nothing -> the 13:00 stop stays availability loss.
    C1 corrective (unplanned) at the filler 11:00-11:30: the failure stays availability loss.
    planned 3600; availability 1800 + 1200 = 3000; PBT = 28800 - 3600 = 25200; APT = 22200
    A = 22200 / 25200 = 0.880952 (without maintenance: 22200 / 28800 = 0.770833)
  capper: 06:00 10000, 10:00 40000, 10:30 10000, 13:50 40000 (until the end).
    L1 planned at the line (line-wide work covers its cells), scheduled 10:00-10:20 -> planned 1200,
       the stop's last 600 s availability loss.
    P4 planned at the capper, started 13:50, still running: open until the query's end -> planned 600.
    planned 1800; availability 600; PBT 27000; APT 26400; A = 26400 / 27000 = 0.977778
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import orjson
import pytest

from model.config import MesSection
from tests.uns.mes.mes_events import Feeder, at, ms
from uns.mes import facts
from uns.mes.facts import FactBuilder
from uns.mes.oee import oee
from uns.mes.views_api import run_view
from uns.query.args import document_bytes
from uns.store.database import Database

LINE = "acme/dallas/bottling/line1"
FILLER, CAPPER = f"{LINE}/filler", f"{LINE}/capper"
NOW = at(25, 0)


def _maintenance(feeder: Feeder, path: str, event_id: str, *, when: datetime | None = None, **body: object) -> None:
    assert feeder.send(path, "maintenance_order", when or at(24, 5), event_id=event_id, **body).status == "stored"


@pytest.fixture
def feeder(db: Database) -> Feeder:
    feeder = Feeder(db, MesSection())
    feeder.states(FILLER, [(at(24, 6), 10000), (at(24, 8), 40000), (at(24, 9), 10000), (at(24, 11), 180000),
                           (at(24, 11, 30), 10000), (at(24, 13), 40000), (at(24, 13, 20), 10000)])  # fmt: skip
    feeder.states(CAPPER, [(at(24, 6), 10000), (at(24, 10), 40000), (at(24, 10, 30), 10000), (at(24, 13, 50), 40000)])
    _maintenance(feeder, FILLER, "p1", maintenance_id="P1", status="closed", planned=True,
                 planned_start_ms=ms(at(24, 8)), planned_end_ms=ms(at(24, 8, 45)),
                 started_ms=ms(at(24, 8, 10)), closed_ms=ms(at(24, 9)))  # fmt: skip
    _maintenance(feeder, FILLER, "p2", maintenance_id="P2", status="opened", planned=True,
                 planned_start_ms=ms(at(24, 12)), planned_end_ms=ms(at(24, 12, 30)))  # fmt: skip
    _maintenance(feeder, FILLER, "p3", maintenance_id="P3", status="cancelled", planned=True,
                 planned_start_ms=ms(at(24, 13)), planned_end_ms=ms(at(24, 13, 30)))  # fmt: skip
    _maintenance(feeder, FILLER, "c1", maintenance_id="C1", status="closed", fault_code="E-DRIVE",
                 started_ms=ms(at(24, 11)), closed_ms=ms(at(24, 11, 30)))  # fmt: skip
    _maintenance(feeder, LINE, "l1", maintenance_id="L1", status="opened", planned=True,
                 planned_start_ms=ms(at(24, 10)), planned_end_ms=ms(at(24, 10, 20)))  # fmt: skip
    _maintenance(feeder, CAPPER, "p4", maintenance_id="P4", status="started", planned=True,
                 started_ms=ms(at(24, 13, 50)))  # fmt: skip
    return feeder


def _by_cell(cursor: duckdb.DuckDBPyConnection) -> dict[str, tuple[float, float, float, float | None]]:
    rows = oee(cursor, MesSection(), path=LINE, start=at(24, 6), end=at(24, 14), by="cell")
    return {r.path: (r.planned_downtime_s, r.availability_loss_s, r.actual_production_time_s, r.availability)
            for r in rows}  # fmt: skip


def test_planned_orders_windows_are_planned_downtime_by_hand(feeder: Feeder, cursor: duckdb.DuckDBPyConnection) -> None:
    found = _by_cell(cursor)
    assert found[FILLER][:3] == (3600.0, 3000.0, 22200.0)
    assert found[FILLER][3] == pytest.approx(22200 / 25200, rel=1e-9)
    assert found[CAPPER][:3] == (1800.0, 600.0, 26400.0)
    assert found[CAPPER][3] == pytest.approx(26400 / 27000, rel=1e-9)


def test_a_new_version_moves_the_planned_downtime(feeder: Feeder, cursor: duckdb.DuckDBPyConnection) -> None:
    # P1 turns out corrective (the CMMS row corrected): its hour is availability loss again
    _maintenance(feeder, FILLER, "p1b", maintenance_id="P1", status="closed", planned=False, when=at(24, 15))
    assert _by_cell(cursor)[FILLER][:3] == (0.0, 6600.0, 22200.0)
    # P3 un-cancelled and rescheduled to 13:00-13:20: the 13:00 stop becomes planned
    _maintenance(feeder, FILLER, "p3b", maintenance_id="P3", status="opened", when=at(24, 15, 1),
                 planned_end_ms=ms(at(24, 13, 20)))  # fmt: skip
    assert _by_cell(cursor)[FILLER][:3] == (1200.0, 5400.0, 22200.0)


def _answers(cursor: duckdb.DuckDBPyConnection, section: MesSection) -> list[bytes]:
    cases = [("oee", {"path": [LINE], "start": [at(24, 0).isoformat()], "end": [NOW.isoformat()], "by": [by]})
             for by in ("cell", "line", "hour")]  # fmt: skip
    cases.append(("downtime", {"path": [LINE], "start": [at(24, 0).isoformat()], "end": [NOW.isoformat()]}))
    return [document_bytes(run_view(cursor, section, view, params, now=NOW)) for view, params in cases]


def test_facts_drop_what_a_new_version_changes(db: Database, feeder: Feeder, cursor: duckdb.DuckDBPyConnection) -> None:
    section = feeder.section
    builder = FactBuilder(db.connection, section)
    feeder.store.changes.subscribe(builder.changed)
    while builder.build(NOW, hours=100):
        pass
    with facts.bypassed():
        direct = _answers(cursor, section)
    assert _answers(cursor, section) == direct
    # the running P4 closes at 13:55 and L1 is rescheduled an hour later: the old facts are stale at once
    _maintenance(feeder, CAPPER, "p4b", maintenance_id="P4", status="closed", closed_ms=ms(at(24, 13, 55)),
                 when=at(24, 16))  # fmt: skip
    _maintenance(feeder, LINE, "l1b", maintenance_id="L1", status="opened", when=at(24, 16),
                 planned_start_ms=ms(at(24, 11)), planned_end_ms=ms(at(24, 11, 20)))  # fmt: skip
    after = _answers(cursor, section)
    with facts.bypassed():
        assert after == _answers(cursor, section)
    assert after != direct
    capper = next(r for r in orjson.loads(after[0])["rows"] if r["path"] == CAPPER)
    # capper now: P4 13:50-13:55 planned 300 s, the 10:00 stop all availability (1800), the rest of the
    # day from 13:55 a stop (36300 s to midnight) availability loss
    assert capper["planned_downtime_s"] == 300.0
    assert capper["availability_loss_s"] == 1800.0 + 36300.0
