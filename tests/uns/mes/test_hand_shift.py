"""A shift computed by hand (issue 15, "Done when"), under both loss presets, asserted to the ms and 1e-9.

Cell acme/dallas/bottling/line1/filler, shift "early" 06:00-14:00 UTC on 2026-11-24 (28800 s) with a
scheduled break 10:00-10:30. Products P1 (ideal 2.0 s) and P2 (ideal 2.5 s). Order O1 (P1) runs
06:00-10:00, order O2 (P2) from 10:45.

States (what the machine reported, and the class under iso22400 / umh):
    06:00      10000 producing
    07:00      40000 stop, 90 s              microstop (shorter than 120 s): performance / performance
    07:01:30   10000
    08:00      40000 stop, 20 min            availability / availability (40000 is availability in umh)
               ... relabelled at 15:00 (after the shift): [08:00, 08:20) reason starved_upstream,
               state 60000 starved           availability / performance (umh lists 60000 as performance)
    08:20      10000
    09:30     180000 failure, 10 min         availability / availability
    09:40      10000
    10:00      40000 stop during the break   planned (the break) / planned
    10:30     100000 changeover, 15 min      availability (changeover_planned false) / performance
    10:45      10000
    12:00     150000 operator break, 10 min  planned (150000-179999) / performance (umh: 150000 is a loss)
    12:10      10000
    14:00     160000 no shift

Counts (no order_id; each attributed by its own timestamp):
    07:00:00    1800 total, 18 scrap   O1
    08:00:00    1500, 15               O1
    09:59:59    2100, 21               O1, posted at 11:00 when O2 was already running
    12:00:00    1400, 14               O2
    13:00:00    1500, 15               O2
    13:59:59    1100, 11               O2, posted at 14:30
  O1: 5400 units, 54 scrap, ideal 5400 x 2.0 = 10800 s.  O2: 4000 units, 40 scrap, ideal 4000 x 2.5 = 10000 s.
  Shift: 9400 units, 94 scrap, 9306 good, ideal time 20800 s.  Q = 9306 / 9400.

iso22400, the shift:
  planned   = break 1800 + operator break 600                      =  2400 s
  PBT       = 28800 - 2400                                         = 26400 s
  avail     = relabelled stop 1200 + failure 600 + changeover 900  =  2700 s
  microstop = 90 s;  APT = 26400 - 2700                            = 23700 s
  A = 23700 / 26400 = 0.897727...; P = 20800 / 23700 = 0.877637...; OEE = A x P x Q = 20800/26400 x 9306/9400
  (the relabel changes only the Pareto bar: 40000 and 60000 are both availability loss here)
umh, the shift, after the relabel:
  planned   = break 1800 (150000 is performance loss in umh)       =  1800 s
  PBT       = 27000 s; avail = failure 600
  performance-class stops = 90 + 1200 (starved) + 900 (changeover) + 600 (operator break) = 2790 s
  APT = 27000 - 600 = 26400 s
  A = 26400 / 27000 = 0.977777...; P = 20800 / 26400 = 0.787878...; OEE = 20800/27000 x 9306/9400
umh, the shift, before the relabel (08:00 still 40000): avail 1800, performance 1590, APT 25200,
  A = 25200 / 27000, P = 20800 / 25200
By order (query 06:00-14:00; O1's window 06:00-10:00 = 14400 s, O2's 10:45-14:00 = 11700 s):
  iso O1: planned 0, PBT 14400, avail 1200 + 600 = 1800, APT 12600: A = 12600/14400, P = 10800/12600, Q = 5346/5400
  iso O2: planned 600, PBT 11100, avail 0, APT 11100: A = 1, P = 10000/11100, Q = 3960/4000
  umh O1: planned 0, PBT 14400, avail 600, APT 13800: A = 13800/14400, P = 10800/13800
  umh O2: planned 0, PBT 11700, avail 0, APT 11700: A = 1, P = 10000/11700
  (had the 09:59:59 count been credited to O2, the order it arrived under, O1 would show 3300 units
  and O2 6100 at P2's 2.5 s: O2's P above 1)
"""

from __future__ import annotations

from datetime import datetime

import pytest

from model.config import MesSection
from tests.uns.mes.mes_events import Feeder, at, ms
from uns.mes.downtime import downtime
from uns.mes.oee import OeeRow, oee
from uns.store.database import Database

LINE = "acme/dallas/bottling/line1"
CELL = f"{LINE}/filler"
REL = 1e-9
Q = 9306 / 9400


def _send(feeder: Feeder, path: str, event: str, when: datetime, received: datetime, **body: object) -> str | None:
    item = feeder.incoming(path, event, {"timestamp_ms": ms(when), **body}, received=received)
    (outcome,) = feeder.store.apply([item])
    assert outcome.status == "stored", outcome
    return outcome.order_id


def _shift(feeder: Feeder) -> None:
    send = feeder.send
    for product, ict in (("P1", 2.0), ("P2", 2.5)):
        assert send(LINE, "product_type", at(23, 12), product_id=product, ideal_cycle_time_s=ict).status == "stored"
    for order, product in (("O1", "P1"), ("O2", "P2")):
        release = {"order_id": order, "action": "release", "product_id": product, "quantity": 6000}
        assert send(LINE, "work_order", at(24, 5), **release).status == "stored"
    shift = {
        "shift_id": "early", "start_ms": ms(at(24, 6)), "end_ms": ms(at(24, 14)),
        "breaks": [{"start_ms": ms(at(24, 10)), "end_ms": ms(at(24, 10, 30)), "name": "lunch"}],
    }  # fmt: skip
    assert send(LINE, "shift", at(23, 20), **shift).status == "stored"
    states = [
        (at(24, 6), 10000), (at(24, 7), 40000), (at(24, 7, 1, 30), 10000), (at(24, 8), 40000),
        (at(24, 8, 20), 10000), (at(24, 9, 30), 180000), (at(24, 9, 40), 10000), (at(24, 10), 40000),
        (at(24, 10, 30), 100000), (at(24, 10, 45), 10000), (at(24, 12), 150000), (at(24, 12, 10), 10000),
        (at(24, 14), 160000),
    ]  # fmt: skip
    # events arrive in time order, live, except the two late counts
    timeline: list[tuple[datetime, str, dict[str, object]]] = [
        (at(24, 6), "start", {"order_id": "O1", "action": "start"}),
        (at(24, 10), "complete", {"order_id": "O1", "action": "complete"}),
        (at(24, 10, 45), "start", {"order_id": "O2", "action": "start"}),
    ]
    for when, _, body in timeline:
        assert send(LINE, "work_order", when, **body).status == "stored"
    feeder.states(CELL, states)
    live = [(at(24, 7), 1800, 18), (at(24, 8), 1500, 15), (at(24, 12), 1400, 14), (at(24, 13), 1500, 15)]
    for when, total, scrap in live:
        assert _send(feeder, CELL, "production_count", when, when, total=total, scrap=scrap) in ("O1", "O2")
    late = _send(feeder, CELL, "production_count", at(24, 9, 59, 59), at(24, 11), total=2100, scrap=21)
    assert late == "O1"  # posted while O2 ran: credited to the order running when it happened
    late = _send(feeder, CELL, "production_count", at(24, 13, 59, 59), at(24, 14, 30), total=1100, scrap=11)
    assert late == "O2"


def _relabel(feeder: Feeder) -> None:
    label = {
        "start_ms": ms(at(24, 8)), "end_ms": ms(at(24, 8, 20)), "reason_code": "starved_upstream", "state": 60000,
    }  # fmt: skip
    _send(feeder, CELL, "downtime_reason", at(24, 15), at(24, 15), **label)


def _check(row: OeeRow, *, a: float, p: float, q: float, time: tuple[float, float, float, float]) -> None:
    assert row.availability == pytest.approx(a, rel=REL)
    assert row.performance == pytest.approx(p, rel=REL)
    assert row.quality == pytest.approx(q, rel=REL)
    assert row.oee == pytest.approx(a * p * q, rel=REL)
    got = (row.planned_downtime_s, row.availability_loss_s, row.microstop_s, row.actual_production_time_s)
    assert got == time  # seconds to the ms: every instant above is a whole second


def _views(db: Database, section: MesSection) -> tuple[OeeRow, OeeRow, dict[str, OeeRow]]:
    cursor = db.reader()
    try:
        (cell,) = oee(cursor, section, path=CELL, start=at(24, 6), end=at(24, 14), by="cell")
        (shift,) = oee(cursor, section, path=CELL, start=at(24, 0), end=at(25, 0), by="shift")
        orders = oee(cursor, section, path=CELL, start=at(24, 6), end=at(24, 14), by="order")
    finally:
        cursor.close()
    return cell, shift, {row.group: row for row in orders}


def test_hand_computed_shift_under_iso22400(db: Database) -> None:
    section = MesSection()
    feeder = Feeder(db, section)
    _shift(feeder)
    for relabelled in (False, True):
        if relabelled:
            _relabel(feeder)
        cell, shift, orders = _views(db, section)
        for row in (cell, shift):
            _check(row, a=23700 / 26400, p=20800 / 23700, q=Q, time=(2400, 2700, 90, 23700))
            assert (row.total, row.good, row.scrap, row.planned_busy_time_s) == (9400, 9306, 94, 26400)
        assert (shift.group, shift.start, shift.end) == ("early", at(24, 6), at(24, 14))
        assert (orders["O1"].total, orders["O2"].total) == (5400, 4000)
        _check(orders["O1"], a=12600 / 14400, p=10800 / 12600, q=5346 / 5400, time=(0, 1800, 90, 12600))
        _check(orders["O2"], a=1.0, p=10000 / 11100, q=3960 / 4000, time=(600, 0, 0, 11100))
    cursor = db.reader()
    bars = {
        bar.reason: (bar.loss, bar.duration_s)
        for bar in downtime(cursor, section, path=CELL, start=at(24, 6), end=at(24, 14))
    }
    cursor.close()
    assert bars == {
        "starved_upstream": ("availability", 1200),
        "changeover": ("availability", 900),
        "equipment failure": ("availability", 600),
        "stop": ("performance", 90),
    }


def test_hand_computed_shift_under_umh(db: Database) -> None:
    section = MesSection(loss_preset="umh")
    feeder = Feeder(db, section)
    _shift(feeder)
    cell, shift, _ = _views(db, section)
    for row in (cell, shift):  # before the relabel: the 08:00 stop is 40000, availability loss
        _check(row, a=25200 / 27000, p=20800 / 25200, q=Q, time=(1800, 1800, 1590, 25200))
    _relabel(feeder)
    cell, shift, orders = _views(db, section)
    for row in (cell, shift):
        _check(row, a=26400 / 27000, p=20800 / 26400, q=Q, time=(1800, 600, 2790, 26400))
        assert (row.total, row.good, row.scrap, row.planned_busy_time_s) == (9400, 9306, 94, 27000)
    _check(orders["O1"], a=13800 / 14400, p=10800 / 13800, q=5346 / 5400, time=(0, 600, 1290, 13800))
    _check(orders["O2"], a=1.0, p=10000 / 11700, q=3960 / 4000, time=(0, 0, 600, 11700))
    cursor = db.reader()
    bars = {
        bar.reason: (bar.loss, bar.duration_s)
        for bar in downtime(cursor, section, path=CELL, start=at(24, 6), end=at(24, 14))
    }
    cursor.close()
    assert bars == {
        "starved_upstream": ("performance", 1200),
        "changeover": ("performance", 900),
        "operator break": ("performance", 600),
        "equipment failure": ("availability", 600),
        "stop": ("performance", 90),
    }
