"""Small MES cases computed by hand from docs/mes.md, as an integrator checks a vendor.

Each case writes down its events, works out the figures from the documented definitions (ISO 22400-2:
PBT = window - planned downtime, A = APT / PBT, P = units x ideal cycle time / APT, Q = good / units,
OEE = A x P x Q; intervals half-open) in a comment, and asserts the views give exactly those numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import orjson
import pytest

from model.config import DeriveRule, MesSection
from tests.uns.mes.mes_events import Feeder, at, ms
from uns.errors import BadArgument
from uns.mes import facts, memo
from uns.mes.derive import Deriver
from uns.mes.downtime import current, downtime, state_timeline
from uns.mes.facts import FactBuilder
from uns.mes.maintenance_reliability import reliability
from uns.mes.oee import OeeRow, oee
from uns.mes.orders import order_progress
from uns.mes.views_api import run_view
from uns.query.args import document_bytes
from uns.store.database import Database

LINE = "acme/dallas/bottling/line1"
CELL = f"{LINE}/filler"
REL = 1e-12
BERLIN = ZoneInfo("Europe/Berlin")
NOW = at(25, 1)


class Rig:
    """The events of a case through the real store, read back one of three ways (``mode``).

    sql: the reference interval SQL (``facts.bypassed``); facts: per-hour facts built up to ``now`` and the
    adapter's memo attached, as ``uns up`` serves the views (the partial hours classified in Python).
    """

    def __init__(self, db: Database, section: MesSection, mode: str, now: datetime) -> None:
        self.db, self.mode, self.now = db, mode, now
        self.feeder = Feeder(db, section)
        self._builder: FactBuilder | None = None
        self.built = False
        self._detach = lambda: None
        if mode == "facts":
            views = memo.ViewMemo()
            self._builder = FactBuilder(db.connection, section, memo=views)
            self.feeder.store.changes.subscribe(self._builder.changed)
            self.feeder.store.changes.subscribe(views.changed)
            self._views = views
            self._attached = False

    def reader(self) -> duckdb.DuckDBPyConnection:
        """A read cursor, the facts built first (facts mode)."""
        cursor = self.db.reader()
        if self._builder is not None:
            while self._builder.build(self.now):
                self.built = True
            if not self._attached:
                self._detach, self._attached = memo.attach(cursor, self._views), True
        return cursor

    def close(self) -> None:
        self._detach()
        assert self.built == (self.mode == "facts")  # the facts mode did read facts


@pytest.fixture(params=["sql", "facts"])
def rig(request: pytest.FixtureRequest, db: Database) -> Iterator[Callable[..., Rig]]:
    """Makes the case's ``Rig`` (``rig(section, now=...)``) in each of the three modes."""
    made: list[Rig] = []

    def make(section: MesSection, now: datetime = NOW) -> Rig:
        made.append(Rig(db, section, request.param, now))
        return made[-1]

    if request.param == "sql":
        with facts.bypassed():
            yield make
    else:
        yield make
    for one in made:
        one.close()


def _document(
    cursor: duckdb.DuckDBPyConnection, section: MesSection, params: dict[str, list[str]], *, now: datetime
) -> dict[str, list[dict[str, Any]]]:
    """The ``oee`` view's JSON document, as ``GET /api/mes/oee`` and ``uns mes oee`` answer it."""
    loaded: dict[str, list[dict[str, Any]]] = orjson.loads(
        document_bytes(run_view(cursor, section, "oee", params, now=now))
    )
    return loaded


def _times(row: OeeRow) -> tuple[float, float, float, float, float]:
    """(window, planned, PBT, availability loss, APT) in seconds."""
    return (
        row.time_s,
        row.planned_downtime_s,
        row.planned_busy_time_s,
        row.availability_loss_s,
        row.actual_production_time_s,
    )


def _ratios(row: OeeRow, a: float | None, p: float | None, q: float | None) -> None:
    for got, want in ((row.availability, a), (row.performance, p), (row.quality, q)):
        if want is None:
            assert got is None
        else:
            assert got == pytest.approx(want, rel=REL)
    if a is None or p is None or q is None:
        assert row.oee is None
    else:
        assert row.oee == pytest.approx(a * p * q, rel=REL)


def _shift(
    feeder: Feeder,
    path: str,
    shift_id: str,
    start: datetime | str,
    end: datetime | str,
    *breaks: tuple[datetime | str, datetime | str],
    sent: datetime | None = None,
) -> None:
    """A shift at ``path`` (a break named "break" per pair), sent at ``sent`` (a later version replaces it: the
    latest by time), default long before."""

    def t(value: datetime | str) -> int:  # an ISO time with its offset, as an ERP sends it
        return ms(datetime.fromisoformat(value) if isinstance(value, str) else value)

    body = {
        "shift_id": shift_id, "start_ms": t(start), "end_ms": t(end),
        "breaks": [{"start_ms": t(a), "end_ms": t(b), "name": "break"} for a, b in breaks],
    }  # fmt: skip
    assert feeder.send(path, "shift", sent or at(1, 0), **body).status == "stored"


# Case 1: a failure spanning a shift boundary, a count exactly at the boundary.
#   shifts (UTC) early [06:00, 14:00), late [14:00, 22:00); ideal cycle 2.0 s (settings)
#   states 06:00 producing, 13:30 failure 180000, 14:20 producing
#   counts 13:29:59 800 total / 8 scrap, 14:00:00 200 / 0 (at the edge: late shift's), 14:25 100 / 1
#   query 13:00-15:00
#   early [13:00,14:00): window 3600, planned 0, failure 1800 -> APT 1800; P = 800*2/1800, Q = 792/800
#   late [14:00,15:00): window 3600, failure 1200 -> APT 2400; P = 300*2/2400, Q = 299/300
#   cell 13:00-15:00: window 7200, avail 3000, APT 4200; P = 1100*2/4200, Q = 1091/1100
#   Pareto: one bar "equipment failure", 3000 s availability, ONE stop (it is one interval, whatever the shifts)
#   current at 14:30: late shift's window 14:00-14:30: failure 1200, APT 600; P = 300*2/600 = 1.0, Q = 299/300
def test_case1_failure_across_a_shift_boundary(rig: Callable[..., Rig]) -> None:
    section = MesSection(ideal_cycle_time_s={LINE: 2.0})
    case = rig(section)
    feeder = case.feeder
    _shift(feeder, LINE, "early", at(24, 6), at(24, 14))
    _shift(feeder, LINE, "late", at(24, 14), at(24, 22))
    feeder.states(CELL, [(at(24, 6), 10000), (at(24, 13, 30), 180000), (at(24, 14, 20), 10000)])
    for when, total, scrap in ((at(24, 13, 29, 59), 800, 8), (at(24, 14), 200, 0), (at(24, 14, 25), 100, 1)):
        assert feeder.send(CELL, "production_count", when, total=total, scrap=scrap).status == "stored"
    cursor = case.reader()
    early, late = oee(cursor, section, path=CELL, start=at(24, 13), end=at(24, 15), by="shift")
    assert (early.group, early.start, early.end, late.group, late.start, late.end) == (
        "early", at(24, 13), at(24, 14), "late", at(24, 14), at(24, 15),
    )  # fmt: skip
    assert _times(early) == (3600, 0, 3600, 1800, 1800)
    _ratios(early, 1800 / 3600, 1600 / 1800, 792 / 800)
    assert _times(late) == (3600, 0, 3600, 1200, 2400)
    _ratios(late, 2400 / 3600, 600 / 2400, 299 / 300)
    (whole,) = oee(cursor, section, path=CELL, start=at(24, 13), end=at(24, 15))
    assert _times(whole) == (7200, 0, 7200, 3000, 4200)
    _ratios(whole, 4200 / 7200, 2200 / 4200, 1091 / 1100)
    (bar,) = downtime(cursor, section, path=CELL, start=at(24, 13), end=at(24, 15))
    assert (bar.reason, bar.loss, bar.availability_s, bar.performance_s, bar.count) == (
        "equipment failure", "availability", 3000, 0, 1,
    )  # fmt: skip
    rows = {row.path: row for row in current(cursor, section, now=at(24, 14, 30))}
    now = rows[CELL]
    assert (now.state, now.shift_id, now.since) == (10000, "late", at(24, 14, 20))
    assert _times(now.oee) == (1800, 0, 1800, 1200, 600)
    _ratios(now.oee, 600 / 1800, 600 / 600, 299 / 300)
    cursor.close()


# Case 2: a failure with a break inside it, and the microstop threshold at its edge (microstop_s 120).
#   shift [06:00, 14:00), break [10:00, 10:30); ideal cycle 2.0 s
#   states 06:00 producing; 09:59 failure 180000 to 10:31 (a 1920 s run: 60 s before the break, 60 s after);
#          10:40 stop 40000 for exactly 120 s; 10:50 stop 40000 for 60 s then 60000 starved for 70 s (one
#          130 s run of stops); 10:55 stop 40000 for 119 s
#   The whole run counts for the microstop rule: the failure is 1920 s, not two 60 s stops -> availability.
#   A 120 s stop is not shorter than 120 s -> availability; the 130 s run -> availability; 119 s -> microstop.
#   query 09:00-11:00: window 7200, planned 1800 (the break, though the machine was failed), PBT 5400
#   avail = 120 (failure outside the break) + 120 + 130 = 370; microstop 119; APT = 5400 - 370 = 5030
#   counts 10:45 2000 / 20 -> P = 4000/5030, Q = 1980/2000
#   MTTR: the failure's whole length, 1920 s, one failure; MTBF = operating time 5030 / 1
def test_case2_break_inside_a_failure_and_microstop_edges(rig: Callable[..., Rig]) -> None:
    section = MesSection(ideal_cycle_time_s={LINE: 2.0})
    case = rig(section)
    feeder = case.feeder
    _shift(feeder, LINE, "early", at(24, 6), at(24, 14), (at(24, 10), at(24, 10, 30)))
    feeder.states(
        CELL,
        [
            (at(24, 6), 10000), (at(24, 9, 59), 180000), (at(24, 10, 31), 10000),
            (at(24, 10, 40), 40000), (at(24, 10, 42), 10000),
            (at(24, 10, 50), 40000), (at(24, 10, 51), 60000), (at(24, 10, 52, 10), 10000),
            (at(24, 10, 55), 40000), (at(24, 10, 56, 59), 10000),
        ],
    )  # fmt: skip
    assert feeder.send(CELL, "production_count", at(24, 10, 45), total=2000, scrap=20).status == "stored"
    cursor = case.reader()
    (row,) = oee(cursor, section, path=CELL, start=at(24, 9), end=at(24, 11))
    assert _times(row) == (7200, 1800, 5400, 370, 5030)
    assert row.microstop_s == 119
    _ratios(row, 5030 / 5400, 4000 / 5030, 1980 / 2000)
    bars = {
        b.reason: (b.loss, b.availability_s, b.performance_s, b.count)
        for b in downtime(cursor, section, path=CELL, start=at(24, 9), end=at(24, 11))
    }
    assert bars == {
        "stop": ("availability", 180, 119, 3),
        "equipment failure": ("availability", 120, 0, 1),
        "inlet jam / starved": ("availability", 70, 0, 1),
    }
    (rel,) = reliability(cursor, section, path=CELL, start=at(24, 9), end=at(24, 11), now=at(24, 12))
    assert (rel.operating_s, rel.failures, rel.failure_downtime_s, rel.mttr_s, rel.mtbf_s) == (
        5030,
        1,
        1920,
        1920,
        5030,
    )
    cursor.close()


# Case 3: a night shift across midnight in Europe/Berlin on the DST day 2026-10-25 (02:00 CEST -> 02:00 CET twice).
#   night shift "2026-10-24T22:00:00+02:00" to "2026-10-25T06:00:00+01:00" = 20:00Z to 05:00Z: 9 real hours, 32400 s
#   break 00:00-00:30 local (CEST) = 22:00Z-22:30Z, the machine stopped (40000) for it
#   states 20:00Z producing; 22:00Z stop, 22:30Z producing; 00:30Z failure (02:30 CEST) to 01:30Z (02:30 CET)
#   counts: 00:59:59Z 1000 / 10, 01:00:00Z 1000 / 0 (the instant the clock goes back: the second 02:00 hour)
#   ideal 2.0 s
#   shift: window 32400, planned 1800, PBT 30600, avail 3600, APT 27000; P = 4000/27000, Q = 1990/2000
#   by day (Berlin): 2026-10-24 [20:00Z, 22:00Z) 7200 s; 2026-10-25 [22:00Z, 05:00Z) 25200 s (7 real hours)
#   by hour (Berlin): 9 rows, labels 22:00+02:00 ... 02:00+02:00, 02:00+01:00 ... 05:00+01:00, 3600 s each;
#     02:00+02:00 = [00:00Z, 01:00Z): failure 1800, 1000 units; 02:00+01:00 = [01:00Z, 02:00Z): failure 1800, 1000
#     00:00+02:00 = [22:00Z, 23:00Z): planned 1800
def test_case3_night_shift_over_the_dst_change_in_berlin(rig: Callable[..., Rig]) -> None:
    section = MesSection(ideal_cycle_time_s={LINE: 2.0})
    case = rig(section, now=datetime(2026, 10, 26, tzinfo=UTC))
    feeder = case.feeder
    _shift(
        feeder, LINE, "night", "2026-10-24T22:00:00+02:00", "2026-10-25T06:00:00+01:00",
        ("2026-10-25T00:00:00+02:00", "2026-10-25T00:30:00+02:00"),
    )  # fmt: skip
    z = lambda d, h, m=0, s=0: datetime(2026, 10, d, h, m, s, tzinfo=UTC)  # noqa: E731
    feeder.states(
        CELL,
        [(z(24, 20), 10000), (z(24, 22), 40000), (z(24, 22, 30), 10000), (z(25, 0, 30), 180000), (z(25, 1, 30), 10000)],
    )
    for when, total, scrap in ((z(25, 0, 59, 59), 1000, 10), (z(25, 1), 1000, 0)):
        assert feeder.send(CELL, "production_count", when, total=total, scrap=scrap).status == "stored"
    cursor = case.reader()
    (shift,) = oee(cursor, section, path=CELL, start=z(24, 12), end=z(25, 12), by="shift", tz=BERLIN)
    assert (shift.group, shift.start, shift.end) == ("night", z(24, 20), z(25, 5))
    assert _times(shift) == (32400, 1800, 30600, 3600, 27000)
    _ratios(shift, 27000 / 30600, 4000 / 27000, 1990 / 2000)
    days = oee(cursor, section, path=CELL, start=z(24, 20), end=z(25, 5), by="day", tz=BERLIN)
    assert [(d.group, d.start, d.end, d.time_s, d.total) for d in days] == [
        ("2026-10-24", z(24, 20), z(24, 22), 7200, 0),
        ("2026-10-25", z(24, 22), z(25, 5), 25200, 2000),
    ]
    hours = oee(cursor, section, path=CELL, start=z(24, 20), end=z(25, 5), by="hour", tz=BERLIN)
    assert [h.group for h in hours] == [
        "2026-10-24T22:00:00+02:00", "2026-10-24T23:00:00+02:00", "2026-10-25T00:00:00+02:00",
        "2026-10-25T01:00:00+02:00", "2026-10-25T02:00:00+02:00", "2026-10-25T02:00:00+01:00",
        "2026-10-25T03:00:00+01:00", "2026-10-25T04:00:00+01:00", "2026-10-25T05:00:00+01:00",
    ]  # fmt: skip
    assert all(h.time_s == 3600 for h in hours)
    by_label = {h.group: h for h in hours}
    first, second = by_label["2026-10-25T02:00:00+02:00"], by_label["2026-10-25T02:00:00+01:00"]
    assert (_times(first), first.total, first.good) == ((3600, 0, 3600, 1800, 1800), 1000, 990)
    assert (_times(second), second.total, second.good) == ((3600, 0, 3600, 1800, 1800), 1000, 1000)
    _ratios(second, 0.5, 2000 / 1800, 1.0)  # a whole hour's units in half an hour of run: P above 1, as documented
    assert _times(by_label["2026-10-25T00:00:00+02:00"]) == (3600, 1800, 1800, 0, 1800)
    cursor.close()


# Case 4: a line whose output cell is not its last cell, scrap counted at other cells, an order started before
#   the window. line2 cells capper, filler, labeler (labeler sorts last); mes.output_cells: line2 -> filler.
#   product P3 ideal 3.0 s; order W1 released, started 05:00 (before the 06:00-07:00 window), still running
#   states (no line states: the union of its cells, producing while any cell produces)
#     capper 06:00 producing, 06:30 failure 180000, 06:45 producing
#     filler 06:00 producing, 06:40 failure 180000, 06:50 producing
#     labeler 06:00 producing, 06:35 stop 40000, 06:55 producing
#   every cell stopped only in [06:40, 06:45): 300 s availability loss for the line
#   then from 06:58 the filler fails and the labeler stops (both past 07:00) while the capper stops for 90 s:
#   [06:58:00, 06:59:30) no cell produces, the capper is in a microstop: the line's 90 s microstop (it runs
#   again when the capper does); APT stays 3300 (microstops are production time)
#   counts: capper 1000 / 20 (upstream scrap), filler (output) 975 / 5, labeler 970 / 3 (scrap after the output)
#   line units = output's 975 + other cells' scrap 20 + 3 = 998, good = 970, scrap 28
#   window 3600, PBT 3600, APT 3300; P = 998 * 3.0 / 3300, Q = 970 / 998
#   by order W1, clipped to the window: the same; the orders view: W1 good 970, scrap 28
#   the ERP then corrects P3's ideal cycle time to 2.5 s: the latest product_type applies to every count of
#   the product, past ones included: P = 998 * 2.5 / 3300
def test_case4_output_cell_not_last_and_scrap_elsewhere(rig: Callable[..., Rig]) -> None:
    line = "acme/dallas/bottling/line2"
    capper, filler, labeler = f"{line}/capper", f"{line}/filler", f"{line}/labeler"
    section = MesSection(output_cells={line: filler})
    case = rig(section)
    feeder = case.feeder
    assert feeder.send(line, "product_type", at(24, 1), product_id="P3", ideal_cycle_time_s=3.0).status == "stored"
    release = {"order_id": "W1", "action": "release", "product_id": "P3", "quantity": 1000}
    assert feeder.send(line, "work_order", at(24, 2), **release).status == "stored"
    assert feeder.send(line, "work_order", at(24, 5), order_id="W1", action="start").status == "stored"
    feeder.states(
        capper,
        [
            (at(24, 6), 10000),
            (at(24, 6, 30), 180000),
            (at(24, 6, 45), 10000),
            (at(24, 6, 58), 40000),
            (at(24, 6, 59, 30), 10000),
        ],
    )
    feeder.states(
        filler,
        [
            (at(24, 6), 10000),
            (at(24, 6, 40), 180000),
            (at(24, 6, 50), 10000),
            (at(24, 6, 58), 180000),
            (at(24, 7, 30), 10000),
        ],
    )
    feeder.states(labeler, [(at(24, 6), 10000), (at(24, 6, 35), 40000), (at(24, 6, 55), 10000),
                            (at(24, 6, 58), 40000), (at(24, 7, 30), 10000)])  # fmt: skip
    for cell, total, scrap in ((capper, 1000, 20), (filler, 975, 5), (labeler, 970, 3)):
        assert feeder.send(cell, "production_count", at(24, 6, 58), total=total, scrap=scrap).status == "stored"
    cursor = case.reader()
    (row,) = oee(
        cursor, section, path=line, start=at(24, 6), end=at(24, 7), by="line", output_cells=section.output_cells
    )
    assert (_times(row), row.microstop_s) == ((3600, 0, 3600, 300, 3300), 90)
    assert (row.total, row.good, row.scrap) == (998, 970, 28)
    _ratios(row, 3300 / 3600, 998 * 3.0 / 3300, 970 / 998)
    (order,) = oee(
        cursor, section, path=line, start=at(24, 6), end=at(24, 7), by="order", output_cells=section.output_cells
    )
    assert (order.group, order.start, order.end, _times(order), order.total, order.good) == (
        "W1", at(24, 6), at(24, 7), (3600, 0, 3600, 300, 3300), 998, 970,
    )  # fmt: skip
    params = {"path": [line], "by": ["line"], "start": ["2026-11-24T06:00:00Z"], "end": ["2026-11-24T07:00:00Z"]}
    (doc,) = _document(cursor, section, params, now=at(24, 7))["rows"]
    assert (doc["total"], doc["good"], doc["scrap"], doc["availability"]) == (998, 970, 28, row.availability)
    (progress,) = order_progress(cursor, line=line, now=at(24, 7), output_cells=section.output_cells)
    assert (progress.order_id, progress.status, progress.good, progress.scrap) == ("W1", "running", 970, 28)
    assert progress.percent_complete == pytest.approx(97.0, rel=REL)
    cursor.close()
    assert feeder.send(line, "product_type", at(24, 9), product_id="P3", ideal_cycle_time_s=2.5).status == "stored"
    cursor = case.reader()
    (row,) = oee(
        cursor, section, path=line, start=at(24, 6), end=at(24, 7), by="line", output_cells=section.output_cells
    )
    _ratios(row, 3300 / 3600, 998 * 2.5 / 3300, 970 / 998)
    cursor.close()


# Case 5: late downtime labels reclassify a stop.
#   cell 08:00 stop 40000 reason "jam" (machine's), 08:30 producing; query 07:00-09:00, ideal 2.0 s
#   before labels: avail 1800, APT 5400; Pareto "jam" 1800 availability
#   label A [08:10, 08:20) state 150000 only (operator break: planned under iso22400), keeps reason "jam"
#   label B [08:20, 08:30) reason "material_shortage" only (state stays 40000: availability)
#   after: planned 600, PBT 6600, avail 08:00-08:10 600 (jam) + 08:20-08:30 600 (material_shortage) = 1200,
#     APT 5400; A = 5400/6600; Pareto jam 600, material_shortage 600 (both availability)
#   label C [08:00, 08:30) state 180000 posted later than A and B: the latest label wins where they overlap,
#     so the whole stop is a failure: planned 0, avail 1800, A = 5400/7200 again; reason stays "jam"? the newest
#     label (C) names no reason, so the machine's own reason "jam" for the whole stop.
def test_case5_late_labels_reclassify_a_stop(rig: Callable[..., Rig]) -> None:
    section = MesSection(ideal_cycle_time_s={LINE: 2.0})
    case = rig(section)
    feeder = case.feeder
    stop = feeder.incoming(CELL, "machine_state", {"timestamp_ms": ms(at(24, 8)), "state": 40000, "reason_code": "jam"})
    feeder.states(CELL, [(at(24, 7), 10000)])
    assert feeder.store.apply([stop])[0].status == "stored"
    feeder.states(CELL, [(at(24, 8, 30), 10000)])
    assert feeder.send(CELL, "production_count", at(24, 8, 45), total=2000, scrap=0).status == "stored"

    def views() -> tuple[OeeRow, dict[str, tuple[str, float, int]]]:
        cursor = case.reader()
        (row,) = oee(cursor, section, path=CELL, start=at(24, 7), end=at(24, 9))
        bars = {
            b.reason: (b.loss, b.duration_s, b.state)
            for b in downtime(cursor, section, path=CELL, start=at(24, 7), end=at(24, 9))
        }
        cursor.close()
        return row, bars

    row, bars = views()
    assert _times(row) == (7200, 0, 7200, 1800, 5400)
    assert bars == {"jam": ("availability", 1800, 40000)}
    a = {"start_ms": ms(at(24, 8, 10)), "end_ms": ms(at(24, 8, 20)), "state": 150000}
    b = {"start_ms": ms(at(24, 8, 20)), "end_ms": ms(at(24, 8, 30)), "reason_code": "material_shortage"}
    assert feeder.send(CELL, "downtime_reason", at(24, 10), **a).status == "stored"
    assert feeder.send(CELL, "downtime_reason", at(24, 10, 1), **b).status == "stored"
    row, bars = views()
    assert _times(row) == (7200, 600, 6600, 1200, 5400)
    _ratios(row, 5400 / 6600, 4000 / 5400, 1.0)
    assert bars == {"jam": ("availability", 600, 40000), "material_shortage": ("availability", 600, 40000)}
    c = {"start_ms": ms(at(24, 8)), "end_ms": ms(at(24, 8, 30)), "state": 180000}
    assert feeder.send(CELL, "downtime_reason", at(24, 11), **c).status == "stored"
    row, bars = views()
    assert _times(row) == (7200, 0, 7200, 1800, 5400)
    assert bars == {"jam": ("availability", 1800, 180000)}


# Case 6: counter rollover and a PLC reset through the derive path, stored and read back.
#   good counter (UInt32, rollover 2^32): 06:00 4294967000 (baseline), 06:10 4294967290 (+290),
#     06:20 4 (a wrap: 4 + 2^32 - 4294967290 = +10), 06:30 2 (a reset: +2)   -> 302 good
#   scrap counter: 06:00 0 (baseline), 06:20 3 (+3)                          -> 3 scrap
#   total = 305, good = 302; producing 06:00-07:00, ideal 2.0 s: P = 305*2/3600, Q = 302/305
@pytest.mark.parametrize("rig", ["facts"], indirect=True)  # derive is the point here, not how views read
def test_case6_counter_wrap_and_reset_through_derive(rig: Callable[..., Rig]) -> None:
    section = MesSection(ideal_cycle_time_s={LINE: 2.0})
    case = rig(section)
    feeder = case.feeder
    rules = [
        DeriveRule(match="acme/+/+/+/+/data/Production/GoodCount", kind="counter", counts="good"),
        DeriveRule(match="acme/+/+/+/+/data/Production/ScrapCount", kind="counter", counts="scrap"),
    ]
    deriver = Deriver(rules)
    good, scrap = f"{CELL}/data/Production/GoodCount", f"{CELL}/data/Production/ScrapCount"
    samples = [
        (good, at(24, 6), 4294967000), (scrap, at(24, 6), 0), (good, at(24, 6, 10), 4294967290),
        (good, at(24, 6, 20), 4), (scrap, at(24, 6, 20), 3), (good, at(24, 6, 30), 2),
    ]  # fmt: skip
    events = [e for topic, when, value in samples for e in deriver.offer(topic, ms(when), value, "good")]
    events += deriver.flush()
    items = [feeder.incoming(e.path, e.event, dict(e.body)) for e in events]
    assert all(o.status == "stored" for o in feeder.store.apply(items))
    feeder.states(CELL, [(at(24, 6), 10000)])
    (row,) = oee(case.reader(), section, path=CELL, start=at(24, 6), end=at(24, 7))
    assert (row.total, row.good, row.scrap) == (305, 302, 3)
    _ratios(row, 1.0, 610 / 3600, 302 / 305)


# Case 7: a window without planned busy time, time before the first state, production outside a shift, and
#   empty windows. shift [06:00, 14:00); ideal 2.0 s
#   filler: 05:00 stop 40000, 06:00 producing; a count of 100 at 05:30
#     query 04:00-06:00: 04:00-05:00 is before the filler's first state: no data, not in the window's time;
#     05:00-06:00 stopped outside every shift: planned. time 3600, planned 3600, PBT 0: A and P unknown (None),
#     not 0 or 1; the count is still counted (Q = 1.0)
#   capper: 05:00 producing (it ran before the shift): outside a shift, producing time stays production
#     query 05:00-06:00: time 3600, planned 0, PBT 3600, APT 3600, A = 1.0
#   by shift over 04:00-06:00: no shift in the window -> no rows
#   a zero-length window (start == end) is refused naming the field
def test_case7_no_busy_time_and_empty_windows(rig: Callable[..., Rig]) -> None:
    section = MesSection(ideal_cycle_time_s={LINE: 2.0})
    case = rig(section)
    feeder = case.feeder
    capper = f"{LINE}/capper"
    _shift(feeder, LINE, "early", at(24, 6), at(24, 14))
    feeder.states(CELL, [(at(24, 5), 40000), (at(24, 6), 10000)])
    feeder.states(capper, [(at(24, 5), 10000)])
    assert feeder.send(CELL, "production_count", at(24, 5, 30), total=100, scrap=0).status == "stored"
    cursor = case.reader()
    (row,) = oee(cursor, section, path=CELL, start=at(24, 4), end=at(24, 6))
    assert _times(row) == (3600, 3600, 0, 0, 0)
    assert row.total == 100
    _ratios(row, None, None, 1.0)
    (ran,) = oee(cursor, section, path=capper, start=at(24, 5), end=at(24, 6))
    assert _times(ran) == (3600, 0, 3600, 0, 3600)
    assert ran.availability == 1.0
    assert oee(cursor, section, path=CELL, start=at(24, 4), end=at(24, 6), by="shift") == []
    for view in (oee, downtime, state_timeline):
        with pytest.raises(BadArgument) as refused:
            view(cursor, section, path=CELL, start=at(24, 6), end=at(24, 6))
        assert refused.value.field in ("start", "end")
    cursor.close()


# Case 8: planned maintenance over a failure, and the timeline's pieces.
#   no shifts (all time is busy time); ideal 2.0 s; query 06:00-08:00
#   states 06:00 producing, 06:50 failure 180000, 07:20 producing
#   planned maintenance order PM-1 at the cell, window [07:00, 07:30) (scheduled), not cancelled
#   planned = failure inside the window 07:00-07:20 = 1200 (producing 07:20-07:30 stays production)
#   avail = 06:50-07:00 = 600; PBT = 7200 - 1200 = 6000; APT = 5400; counts 07:40 2400/0
#   A = 5400/6000, P = 4800/5400, Q = 1
#   timeline: [06:00,06:50) producing, [06:50,07:00) failure availability, [07:00,07:20) failure planned,
#     [07:20,08:00) producing
def test_case8_planned_maintenance_over_a_failure(rig: Callable[..., Rig]) -> None:
    section = MesSection(ideal_cycle_time_s={LINE: 2.0})
    case = rig(section)
    feeder = case.feeder
    feeder.states(CELL, [(at(24, 6), 10000), (at(24, 6, 50), 180000), (at(24, 7, 20), 10000)])
    order = {
        "maintenance_id": "PM-1", "status": "opened", "planned": True,
        "planned_start_ms": ms(at(24, 7)), "planned_end_ms": ms(at(24, 7, 30)),
    }  # fmt: skip
    assert feeder.send(CELL, "maintenance_order", at(24, 5), **order).status == "stored"
    assert feeder.send(CELL, "production_count", at(24, 7, 40), total=2400, scrap=0).status == "stored"
    cursor = case.reader()
    (row,) = oee(cursor, section, path=CELL, start=at(24, 6), end=at(24, 8))
    assert _times(row) == (7200, 1200, 6000, 600, 5400)
    _ratios(row, 5400 / 6000, 4800 / 5400, 1.0)
    pieces = [
        (p.start, p.end, p.state, p.loss)
        for p in state_timeline(cursor, section, path=CELL, start=at(24, 6), end=at(24, 8))
    ]
    assert [(a, b, s) for a, b, s, _ in pieces] == [
        (at(24, 6), at(24, 6, 50), 10000), (at(24, 6, 50), at(24, 7), 180000),
        (at(24, 7), at(24, 7, 20), 180000), (at(24, 7, 20), at(24, 8), 10000),
    ]  # fmt: skip
    assert [loss for *_, loss in pieces][1:3] == ["availability", "planned"]
    cursor.close()


# Case 9: hour groups in a zone with a half-hour offset (Asia/Kolkata, +05:30), counts at the hour edges.
#   query 06:00Z-08:00Z = 11:30-13:30 local; producing throughout, failure 06:45Z-07:00Z; ideal 2.0 s
#   hours: "11:00+05:30" clipped to [06:00Z, 06:30Z) 1800 s; "12:00+05:30" [06:30Z, 07:30Z) 3600 s, failure 900;
#          "13:00+05:30" [07:30Z, 08:00Z) 1800 s
#   counts 06:29:59Z 50 (first), 06:30:00Z 100 (second: the edge is the next hour's), 07:59:59Z 10 (third),
#          08:00:00Z 1000 (the query's end: in no group)
#   first: P = 100/1800; second: APT 2700, P = 200/2700; third: P = 20/1800
def test_case9_half_hour_zone_hours_and_counts_at_their_edges(rig: Callable[..., Rig]) -> None:
    section = MesSection(ideal_cycle_time_s={LINE: 2.0})
    case = rig(section)
    feeder = case.feeder
    feeder.states(CELL, [(at(24, 5), 10000), (at(24, 6, 45), 180000), (at(24, 7), 10000)])
    for when, total in ((at(24, 6, 29, 59), 50), (at(24, 6, 30), 100), (at(24, 7, 59, 59), 10), (at(24, 8), 1000)):
        assert feeder.send(CELL, "production_count", when, total=total).status == "stored"
    cursor = case.reader()
    rows = oee(cursor, section, path=CELL, start=at(24, 6), end=at(24, 8), by="hour", tz=ZoneInfo("Asia/Kolkata"))
    got = [(r.group, r.start, r.end, _times(r), r.total) for r in rows]
    assert got == [
        ("2026-11-24T11:00:00+05:30", at(24, 6), at(24, 6, 30), (1800, 0, 1800, 0, 1800), 50),
        ("2026-11-24T12:00:00+05:30", at(24, 6, 30), at(24, 7, 30), (3600, 0, 3600, 900, 2700), 100),
        ("2026-11-24T13:00:00+05:30", at(24, 7, 30), at(24, 8), (1800, 0, 1800, 0, 1800), 10),
    ]
    for row, p in zip(rows, (100 / 1800, 200 / 2700, 20 / 1800), strict=True):
        assert row.performance == pytest.approx(p, rel=REL)
    cursor.close()


# Case 10: a shift corrected by the planner (the same shift_id re-sent, ending at 12:00 instead of 14:00).
#   the latest version wins: [06:00, 12:00); the cell stops (40000) from 12:00 to 14:00, outside the shift now
#   query 06:00-14:00: window 28800, planned 7200 (stopped outside every shift), PBT 21600, avail 0,
#   APT 21600, A = 1.0; by shift: one row "early" [06:00, 12:00); counts 10:00 10800 -> P = 21600/21600 = 1.0
def test_case10_a_corrected_shift_replaces_the_first(rig: Callable[..., Rig]) -> None:
    section = MesSection(ideal_cycle_time_s={LINE: 2.0})
    case = rig(section)
    feeder = case.feeder
    _shift(feeder, LINE, "early", at(24, 6), at(24, 14))
    feeder.states(CELL, [(at(24, 6), 10000), (at(24, 12), 40000)])
    assert feeder.send(CELL, "production_count", at(24, 10), total=10800).status == "stored"
    _shift(feeder, LINE, "early", at(24, 6), at(24, 12), sent=at(24, 11))
    cursor = case.reader()
    (row,) = oee(cursor, section, path=CELL, start=at(24, 6), end=at(24, 14))
    assert _times(row) == (28800, 7200, 21600, 0, 21600)
    _ratios(row, 1.0, 1.0, 1.0)
    (shift,) = oee(cursor, section, path=CELL, start=at(24, 0), end=at(25, 0), by="shift")
    assert (shift.group, shift.start, shift.end, _times(shift)) == (
        "early", at(24, 6), at(24, 12), (21600, 0, 21600, 0, 21600),
    )  # fmt: skip
    assert downtime(cursor, section, path=CELL, start=at(24, 6), end=at(24, 14)) == []
    cursor.close()


# Case 11: a short stop that straddles the query's end (microstop_s 120).
#   states 07:00 producing, 07:59:00 stop 40000, 08:00:30 producing (a 90 s stop)
#   docs/mes.md: the view's data ends at the query's end, and a stop still running there is never a microstop
#   by length. query 07:00-08:00: 60 s of the stop, availability loss; APT 3540
#   query 07:00-09:00 (the stop's end is seen): 90 s microstop, performance; avail 0, APT 7200;
#   the same query by hour: the 07:00 group holds 60 s of microstop (not availability: the run is 90 s)
def test_case11_a_short_stop_across_the_query_end(rig: Callable[..., Rig]) -> None:
    section = MesSection()
    case = rig(section)
    case.feeder.states(CELL, [(at(24, 7), 10000), (at(24, 7, 59), 40000), (at(24, 8, 0, 30), 10000)])
    cursor = case.reader()
    (hour,) = oee(cursor, section, path=CELL, start=at(24, 7), end=at(24, 8))
    assert (_times(hour), hour.microstop_s) == ((3600, 0, 3600, 60, 3540), 0)
    (two,) = oee(cursor, section, path=CELL, start=at(24, 7), end=at(24, 9))
    assert (_times(two), two.microstop_s) == ((7200, 0, 7200, 0, 7200), 90)
    first, second = oee(cursor, section, path=CELL, start=at(24, 7), end=at(24, 9), by="hour")
    assert (_times(first), first.microstop_s, _times(second), second.microstop_s) == (
        (3600, 0, 3600, 0, 3600), 60, (3600, 0, 3600, 0, 3600), 30,
    )  # fmt: skip
    cursor.close()


# Case 12: a line whose cells count different units (mes.output_only_lines: cases, then pallets), in every view
#   that counts units. line3: case-packer (cases), palletizer (pallets, the output); order PAL-1 of product PAL
#   (240 s a pallet) started 06:00; producing 06:00-07:00
#   counts: case-packer 06:30 120 cases / 10 scrapped; palletizer 06:50 3 pallets / 1 scrapped
#   docs/mes.md: the output cell's count alone is the line's: 3 units, 2 good, 1 scrap (cases are not pallets)
#   OEE by line: P = 3 * 240 / 3600 = 0.2, Q = 2/3; the scrap view by line and by order: 3 / 2 / 1, rate 1/3;
#   the orders view: PAL-1 good 2, scrap 1; the case-packer by cell still counts its own 120 / 10
def test_case12_an_output_only_line_counts_pallets_in_every_view(rig: Callable[..., Rig]) -> None:
    line = "acme/dallas/packaging/line3"
    packer, palletizer = f"{line}/case-packer", f"{line}/palletizer"
    section = MesSection(output_cells={line: palletizer}, output_only_lines=[line])
    case = rig(section)
    feeder = case.feeder
    assert feeder.send(line, "product_type", at(24, 1), product_id="PAL", ideal_cycle_time_s=240.0).status == "stored"
    release = {"order_id": "PAL-1", "action": "release", "product_id": "PAL", "quantity": 4}
    assert feeder.send(line, "work_order", at(24, 2), **release).status == "stored"
    assert feeder.send(line, "work_order", at(24, 6), order_id="PAL-1", action="start").status == "stored"
    for cell in (packer, palletizer):
        feeder.states(cell, [(at(24, 6), 10000)])
    assert feeder.send(packer, "production_count", at(24, 6, 30), total=120, scrap=10).status == "stored"
    assert feeder.send(palletizer, "production_count", at(24, 6, 50), total=3, scrap=1).status == "stored"
    cursor = case.reader()
    (row,) = oee(
        cursor, section, path=line, start=at(24, 6), end=at(24, 7), by="line", output_cells=section.output_cells
    )
    assert (row.total, row.good, row.scrap) == (3, 2, 1)
    _ratios(row, 1.0, 0.2, 2 / 3)
    window = {"start": ["2026-11-24T06:00:00Z"], "end": ["2026-11-24T07:00:00Z"]}
    for by in ("line", "order"):
        doc = orjson.loads(document_bytes(run_view(cursor, section, "scrap", {"path": [line], "by": [by], **window},
                                                   now=at(24, 7))))  # fmt: skip
        assert [(r["total"], r["good"], r["scrap"]) for r in doc["rows"]] == [(3, 2, 1)], by
    cells = orjson.loads(document_bytes(run_view(cursor, section, "scrap", {"path": [line], "by": ["cell"], **window},
                                                 now=at(24, 7))))  # fmt: skip
    assert {r["group"]: (r["total"], r["scrap"]) for r in cells["rows"]} == {packer: (120, 10), palletizer: (3, 1)}
    orders = orjson.loads(document_bytes(run_view(cursor, section, "orders", {"line": [line]}, now=at(24, 7))))
    assert [(o["order_id"], o["good"], o["scrap"]) for o in orders["rows"]] == [("PAL-1", 2, 1)]
    cursor.close()


# Case 13: one shift_id at two levels: the site's calendar says "early" is 06:00-14:00, line1's own "early"
#   7:00-15:00. Both are shifts of the filler (docs/mes.md: a shift at the path or an ancestor), so by=shift
#   gives one row per shift, each over its own window:
#   states 05:00 producing, 06:00 failure, 06:30 producing; counts 06:45 100, 14:30 50; ideal 2.0 s
#   site's early [06:00, 14:00): time 28800, avail 1800, APT 27000, 100 units: P = 200/27000
#   line's early [07:00, 15:00): time 28800, avail 0, APT 28800, 50 units: P = 100/28800
#   (each window is 8 h: neither row may hold the other's time or counts)
def test_case13_one_shift_id_at_the_site_and_at_the_line(rig: Callable[..., Rig]) -> None:
    section = MesSection(ideal_cycle_time_s={LINE: 2.0})
    case = rig(section)
    feeder = case.feeder
    _shift(feeder, "acme/dallas", "early", at(24, 6), at(24, 14))
    _shift(feeder, LINE, "early", at(24, 7), at(24, 15))
    feeder.states(CELL, [(at(24, 5), 10000), (at(24, 6), 180000), (at(24, 6, 30), 10000)])
    for when, total in ((at(24, 6, 45), 100), (at(24, 14, 30), 50)):
        assert feeder.send(CELL, "production_count", when, total=total).status == "stored"
    cursor = case.reader()
    site, line = oee(cursor, section, path=CELL, start=at(24, 0), end=at(25, 0), by="shift")
    assert (site.group, site.start, site.end, _times(site), site.total) == (
        "early", at(24, 6), at(24, 14), (28800, 0, 28800, 1800, 27000), 100,
    )  # fmt: skip
    assert (line.group, line.start, line.end, _times(line), line.total) == (
        "early", at(24, 7), at(24, 15), (28800, 0, 28800, 0, 28800), 50,
    )  # fmt: skip
    _ratios(site, 27000 / 28800, 200 / 27000, 1.0)
    _ratios(line, 1.0, 100 / 28800, 1.0)
    cursor.close()
