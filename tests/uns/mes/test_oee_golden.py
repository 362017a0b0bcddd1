"""Golden OEE cases computed by hand (issue 6, point 6): every number below is worked out in the comments.

Golden 1: one cell, one 8-hour shift 06:00-14:00 UTC on 2026-11-24, break 10:00-10:30.
  States of acme/dallas/bottling/line1/filler:
    06:00      10000 producing
    07:00      40000 stop, 90 s  -> a microstop (90 < microstop_s 120): performance loss, inside APT
    07:01:30   10000
    08:00      40000 stop, 20 min; at 15:00 (after the shift) an operator labels [08:00, 08:20)
               reason motor_overload, state 180000 equipment failure (availability loss either way)
    08:20      10000
    10:00      40000 stop for the whole break -> planned downtime (the break is planned)
    10:30      10000
    12:00     100000 changeover, 15 min -> availability loss (changeover_planned is False)
    12:15      10000
    14:00     160000 no shift
  Time:  window 06:00-14:00                    = 28800 s
         planned downtime (break)              =  1800 s
         PBT = 28800 - 1800                    = 27000 s
         availability loss = 1200 + 900        =  2100 s
         microstops                            =    90 s
         producing = 28800 - 1800 - 2100 - 90  = 24810 s
         APT = producing + microstops          = 24900 s
  Units: 8 counts of 1375 (scrap 27, 28, 27, ...) = 11000 total, 220 scrap, 10780 good.
         Ideal cycle time 2.0 s from product P1 of order O1 (the config fallback 3.0 s must lose).
  A = APT / PBT           = 24900 / 27000           = 0.922222
  P = 11000 * 2.0 / APT   = 22000 / 24900           = 0.883534
  Q = 10780 / 11000                                 = 0.980000
  OEE = A * P * Q = 10780 * 2.0 / 27000 = 21560 / 27000 = 0.798519
  Downtime Pareto (losses only, one bar per reason): motor_overload 1200 s (0.547945), changeover 900 s
  (cum 0.958904), stop 90 s (performance, cum 1.0); before the late label "stop" (state 40000) has both
  stops, 1290 s (1200 availability + 90 performance).

Golden 2: line acme/dallas/bottling/line2 with cells filler and packer (the output), changeover_planned,
  2026-11-25, shifts early 06:00-14:00 (break 10:00-10:30) and late 14:00-22:00 (break 18:00-18:30),
  grouped by day and by shift. Both cells: 00:00 160000 no shift, 06:00 10000, 10:00 150000 break,
  10:30 10000, 12:00 100000 changeover, 12:15 10000, 18:00 150000, 18:30 10000, 22:00 160000.
  Filler only: 16:00 180000 failure -> 16:10 10000; 20:00:30 40000 -> 20:01:30 10000 (60 s microstop).
  Packer only: 09:00 60000 starved -> 09:05 10000; 16:05 70000 blocked -> 16:20 10000;
               20:00 40000 -> 20:01 10000 (60 s microstop).
  Line time is the union view (producing when any cell produces):
    starved 09:00-09:05 and failure 16:00-16:05, blocked 16:10-16:20: the other cell produces -> producing
    16:05-16:10 both down -> availability loss 300 s; 20:00:30-20:01:00 both in microstops -> 30 s microstop
  Early (06-14): planned = break 1800 + changeover 900 (planned) = 2700; PBT = 28800 - 2700 = 26100;
    no loss: APT = 26100, A = 1.
    Units: packer (output) 11500 total, 100 scrap; filler scrap 100 adds to produced:
    PQ = 11500 + 100 = 11600, GQ = 11400, ideal 2.2 s (product P2 of order O2):
    P = 11600 * 2.2 / 26100 = 25520 / 26100 = 0.977778; Q = 11400 / 11600 = 0.982759
    OEE = 11400 * 2.2 / 26100 = 25080 / 26100 = 0.960920
  Late (14-22): planned = 1800; PBT = 27000; availability loss 300; APT = 26700 (with the 30 s microstop)
    A = 26700 / 27000 = 0.988889; packer 11800 total, 140 scrap; filler scrap 150:
    PQ = 11950, GQ = 11660; P = 11950 * 2.2 / 26700 = 26290 / 26700 = 0.984644
    Q = 11660 / 11950 = 0.975732; OEE = 11660 * 2.2 / 27000 = 25652 / 27000 = 0.950074
  Day (00-24): planned = 21600 (00-06) + 2 * 1800 + 900 + 7200 (22-24) = 33300; PBT = 86400 - 33300 = 53100
    APT = 53100 - 300 = 52800; A = 52800 / 53100 = 0.994350
    PQ = 23550, GQ = 23060; P = 23550 * 2.2 / 52800 = 51810 / 52800 = 0.981250; Q = 23060 / 23550 = 0.979193
    OEE = 23060 * 2.2 / 53100 = 50732 / 53100 = 0.955405
"""

from __future__ import annotations

import pytest

from model.config import MesSection
from tests.uns.mes.mes_events import Feeder, at, ms
from uns.mes.downtime import current, downtime, state_timeline
from uns.mes.oee import OeeRow, oee
from uns.store.database import Database

LINE1 = "acme/dallas/bottling/line1"
FILLER = f"{LINE1}/filler"
LINE2 = "acme/dallas/bottling/line2"
FILLER2, PACKER2 = f"{LINE2}/filler", f"{LINE2}/packer"
REL = 1e-3  # 0.1 %


def _check(row: OeeRow, a: float, p: float, q: float, o: float) -> None:
    assert row.availability == pytest.approx(a, rel=REL)
    assert row.performance == pytest.approx(p, rel=REL)
    assert row.quality == pytest.approx(q, rel=REL)
    assert row.oee == pytest.approx(o, rel=REL)
    assert row.oee == pytest.approx(row.availability * row.performance * row.quality, rel=1e-9)  # type: ignore[operator]


def _golden1(feeder: Feeder) -> None:
    send = feeder.send
    assert send(LINE1, "product_type", at(23, 12), product_id="P1", ideal_cycle_time_s=2.0).status == "stored"
    release = {"order_id": "O1", "action": "release", "product_id": "P1", "quantity": 12000}
    assert send(LINE1, "work_order", at(24, 5), **release).status == "stored"
    assert send(LINE1, "work_order", at(24, 6), order_id="O1", action="start").status == "stored"
    assert (
        send(
            LINE1,
            "shift",
            at(23, 20),
            shift_id="2026-11-24-early",
            start_ms=ms(at(24, 6)),
            end_ms=ms(at(24, 14)),
            breaks=[{"start_ms": ms(at(24, 10)), "end_ms": ms(at(24, 10, 30)), "name": "lunch"}],
        ).status
        == "stored"
    )
    feeder.states(
        FILLER,
        [
            (at(24, 6), 10000),
            (at(24, 7), 40000),
            (at(24, 7, 1, 30), 10000),
            (at(24, 8), 40000),
            (at(24, 8, 20), 10000),
            (at(24, 10), 40000),
            (at(24, 10, 30), 10000),
            (at(24, 12), 100000),
            (at(24, 12, 15), 10000),
            (at(24, 14), 160000),
        ],
    )
    counts = [(at(24, h), 1375, 27 if h % 2 else 28) for h in range(7, 14)] + [(at(24, 13, 59, 59), 1375, 28)]
    for when, total, scrap in counts:
        outcome = send(FILLER, "production_count", when, total=total, scrap=scrap)
        assert (outcome.status, outcome.order_id) == ("stored", "O1")


def _late_label(feeder: Feeder) -> None:
    outcome = feeder.send(
        FILLER,
        "downtime_reason",
        at(24, 15),
        start_ms=ms(at(24, 8)),
        end_ms=ms(at(24, 8, 20)),
        reason_code="motor_overload",
        state=180000,
        operator_id="op7",
    )
    assert outcome.status == "stored"


def test_golden_shift_on_one_cell(db: Database) -> None:
    section = MesSection(ideal_cycle_time_s={LINE1: 3.0}, reasons={"motor_overload": "Main motor overload"})
    feeder = Feeder(db, section)
    _golden1(feeder)
    cursor = db.reader()

    def views() -> tuple[OeeRow, OeeRow, list[object]]:
        (by_cell,) = oee(cursor, section, path=FILLER, start=at(24, 6), end=at(24, 14), by="cell")
        (by_shift,) = oee(cursor, section, path=FILLER, start=at(24, 0), end=at(25, 0), by="shift")
        pareto = downtime(cursor, section, path=LINE1, start=at(24, 6), end=at(24, 14))
        return by_cell, by_shift, list(pareto)

    before_cell, before_shift, before = views()
    _late_label(feeder)
    after_cell, after_shift, after = views()

    for row in (before_cell, before_shift, after_cell, after_shift):
        _check(row, 24900 / 27000, 22000 / 24900, 10780 / 11000, 21560 / 27000)
        assert row.planned_downtime_s == pytest.approx(1800)
        assert row.planned_busy_time_s == pytest.approx(27000)
        assert row.availability_loss_s == pytest.approx(2100)
        assert row.microstop_s == pytest.approx(90)
        assert row.actual_production_time_s == pytest.approx(24900)
        assert row.performance_loss_s == pytest.approx(24900 - 22000)
        assert (row.total, row.good, row.scrap) == (11000, 10780, 220)
        assert row.ideal_cycle_time_s == pytest.approx(2.0)
    assert after_shift.group == "2026-11-24-early"
    assert (after_shift.start, after_shift.end) == (at(24, 6), at(24, 14))

    def bars(pareto: list[object]) -> list[tuple[object, ...]]:
        return [(b.reason, b.state, b.loss, round(b.duration_s), b.count, round(b.cumulative_share, 6)) for b in pareto]  # type: ignore[attr-defined]

    # one bar per reason whatever its class: the 90 s microstop and the 20 min stop are both "stop"
    assert bars(before) == [
        ("stop", 40000, "availability", 1290, 2, round(1290 / 2190, 6)),
        ("changeover", 100000, "availability", 900, 1, 1.0),
    ]
    assert (before[0].availability_s, before[0].performance_s) == (1200, 90)  # type: ignore[attr-defined]
    assert bars(after) == [
        ("motor_overload", 180000, "availability", 1200, 1, round(1200 / 2190, 6)),
        ("changeover", 100000, "availability", 900, 1, round(2100 / 2190, 6)),
        ("stop", 40000, "performance", 90, 1, 1.0),
    ]
    assert after[0].state_name == "equipment failure"  # type: ignore[attr-defined]
    assert after[0].text == "Main motor overload"  # type: ignore[attr-defined]
    assert after[0].share == pytest.approx(1200 / 2190)  # type: ignore[attr-defined]


def test_golden_timeline_and_current(db: Database) -> None:
    section = MesSection()
    feeder = Feeder(db, section)
    _golden1(feeder)
    _late_label(feeder)
    cursor = db.reader()
    timeline = state_timeline(cursor, section, path=FILLER, start=at(24, 6), end=at(24, 14))
    got = [(i.start.time().isoformat(), i.end.time().isoformat(), i.state, i.reason_code, i.loss) for i in timeline]
    assert got == [
        ("06:00:00", "07:00:00", 10000, None, "none"),
        ("07:00:00", "07:01:30", 40000, None, "performance"),
        ("07:01:30", "08:00:00", 10000, None, "none"),
        ("08:00:00", "08:20:00", 180000, "motor_overload", "availability"),
        ("08:20:00", "10:00:00", 10000, None, "none"),
        ("10:00:00", "10:30:00", 40000, None, "planned"),
        ("10:30:00", "12:00:00", 10000, None, "none"),
        ("12:00:00", "12:15:00", 100000, None, "availability"),
        ("12:15:00", "14:00:00", 10000, None, "none"),
    ]
    assert timeline[3].name == "equipment failure"

    rows = {row.path: row for row in current(cursor, section, now=at(24, 14))}
    cell = rows[FILLER]
    assert (cell.kind, cell.state, cell.order_id, cell.shift_id) == ("cell", 160000, "O1", None)
    # no shift runs at 14:00, so the last kpi_window_h = 8 hours: the whole shift again
    _check(cell.oee, 24900 / 27000, 22000 / 24900, 10780 / 11000, 21560 / 27000)
    assert rows[LINE1].kind == "line"
    _check(rows[LINE1].oee, 24900 / 27000, 22000 / 24900, 10780 / 11000, 21560 / 27000)
    mid = {row.path: row for row in current(cursor, section, now=at(24, 8, 10))}[FILLER]
    assert (mid.state, mid.reason_code, mid.shift_id) == (180000, "motor_overload", "2026-11-24-early")
    # 06:00-08:10: PBT 7800, failure 600, microstop 90, APT 7200; 4 counts (07:00 and 08:00): 2750 units
    assert mid.oee.availability == pytest.approx(7200 / 7800, rel=REL)
    assert mid.oee.total == 2750


def _golden2(feeder: Feeder) -> None:
    send = feeder.send
    assert send(LINE2, "product_type", at(24, 12), product_id="P2", ideal_cycle_time_s=2.2).status == "stored"
    release = {"order_id": "O2", "action": "release", "product_id": "P2", "quantity": 30000}
    assert send(LINE2, "work_order", at(25, 5), **release).status == "stored"
    assert send(LINE2, "work_order", at(25, 6), order_id="O2", action="start").status == "stored"
    for shift_id, first, brk in (("early", 6, 10), ("late", 14, 18)):
        body = {
            "shift_id": shift_id,
            "start_ms": ms(at(25, first)),
            "end_ms": ms(at(25, first + 8)),
            "breaks": [{"start_ms": ms(at(25, brk)), "end_ms": ms(at(25, brk, 30))}],
        }
        assert send(LINE2, "shift", at(24, 20), **body).status == "stored"
    common = [
        (at(25, 0), 160000),
        (at(25, 6), 10000),
        (at(25, 10), 150000),
        (at(25, 10, 30), 10000),
        (at(25, 12), 100000),
        (at(25, 12, 15), 10000),
        (at(25, 18), 150000),
        (at(25, 18, 30), 10000),
        (at(25, 22), 160000),
    ]
    filler = [(at(25, 16), 180000), (at(25, 16, 10), 10000), (at(25, 20, 0, 30), 40000), (at(25, 20, 1, 30), 10000)]
    packer = [
        (at(25, 9), 60000),
        (at(25, 9, 5), 10000),
        (at(25, 16, 5), 70000),
        (at(25, 16, 20), 10000),
        (at(25, 20), 40000),
        (at(25, 20, 1), 10000),
    ]
    feeder.states(FILLER2, sorted(common + filler))
    feeder.states(PACKER2, sorted(common + packer))
    counts = {
        FILLER2: [(8, 6000, 50), (13, 6000, 50), (17, 6100, 75), (21, 6100, 75)],
        PACKER2: [(8, 5750, 50), (13, 5750, 50), (17, 5900, 70), (21, 5900, 70)],
    }
    for cell, rows in counts.items():
        for hour, total, scrap in rows:
            assert send(cell, "production_count", at(25, hour), total=total, scrap=scrap).status == "stored"
    assert send(LINE2, "work_order", at(25, 22), order_id="O2", action="complete").status == "stored"


def test_golden_line_of_two_cells_by_day_and_shift(db: Database) -> None:
    section = MesSection(changeover_planned=True)
    _golden2(Feeder(db, section))
    cursor = db.reader()

    (day,) = oee(cursor, section, path=LINE2, start=at(25, 0), end=at(26, 0), by="day")
    assert (day.group, day.path) == ("2026-11-25", LINE2)
    _check(day, 52800 / 53100, 51810 / 52800, 23060 / 23550, 50732 / 53100)
    assert day.planned_downtime_s == pytest.approx(33300)
    assert day.availability_loss_s == pytest.approx(300)
    assert day.microstop_s == pytest.approx(30)
    assert (day.total, day.good, day.scrap) == (23550, 23060, 490)

    early, late = oee(cursor, section, path=LINE2, start=at(25, 0), end=at(26, 0), by="shift")
    assert (early.group, late.group) == ("early", "late")
    _check(early, 1.0, 25520 / 26100, 11400 / 11600, 25080 / 26100)
    _check(late, 26700 / 27000, 26290 / 26700, 11660 / 11950, 25652 / 27000)

    # the output cell named explicitly gives the same; by line gives the day's numbers
    (named,) = oee(
        cursor, section, path=LINE2, start=at(25, 0), end=at(26, 0), by="line", output_cells={LINE2: PACKER2}
    )
    _check(named, 52800 / 53100, 51810 / 52800, 23060 / 23550, 50732 / 53100)
    (by_order,) = oee(cursor, section, path=LINE2, start=at(25, 0), end=at(26, 0), by="order")
    assert (by_order.group, by_order.start, by_order.end) == ("O2", at(25, 6), at(25, 22))
    _check(by_order, 52800 / 53100, 51810 / 52800, 23060 / 23550, 50732 / 53100)


def test_golden_line_cells_and_changeover_as_loss(db: Database) -> None:
    _golden2(Feeder(db, MesSection(changeover_planned=True)))
    cursor = db.reader()
    section = MesSection()  # changeover_planned False: the 900 s changeover becomes availability loss
    cells = {row.path: row for row in oee(cursor, section, path=LINE2, start=at(25, 6), end=at(25, 14), by="cell")}
    # filler early: PBT 28800 - 1800 = 27000; changeover 900 lost: APT 26100; 12000 units, 100 scrap
    _check(cells[FILLER2], 26100 / 27000, 12000 * 2.2 / 26100, 11900 / 12000, 11900 * 2.2 / 27000)
    # packer early: also starved 300 s: APT 25800; 11500 units, 100 scrap
    _check(cells[PACKER2], 25800 / 27000, 11500 * 2.2 / 25800, 11400 / 11500, 11400 * 2.2 / 27000)
    (line,) = oee(cursor, section, path=LINE2, start=at(25, 6), end=at(25, 14), by="line")
    # union: only the common changeover is lost: APT 26100 of PBT 27000
    _check(line, 26100 / 27000, 11600 * 2.2 / 26100, 11400 / 11600, 11400 * 2.2 / 27000)


@pytest.mark.parametrize(
    ("tz", "groups"),
    [("UTC", ["2026-11-25"]), ("Europe/Berlin", ["2026-11-25", "2026-11-26"])],
)
def test_day_groups_follow_the_time_zone(db: Database, tz: str, groups: list[str]) -> None:
    from zoneinfo import ZoneInfo

    section = MesSection(changeover_planned=True)
    _golden2(Feeder(db, section))
    rows = oee(db.reader(), section, path=LINE2, start=at(25, 0), end=at(26, 0), by="day", tz=ZoneInfo(tz))
    assert [row.group for row in rows] == groups
    assert sum(row.good for row in rows) == 23060
    assert sum(row.planned_busy_time_s for row in rows) == pytest.approx(53100)
