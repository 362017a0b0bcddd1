"""Hand-computed MES cases, round 2: maintenance (MTBF, MTTR, work orders), downtime and losses, genealogy.

Each case writes down the plant's events, works out every figure by hand from docs/mes.md (ISO 22400-2:
PBT = window - planned downtime, APT = PBT - availability loss, A = APT / PBT, P = units x ideal cycle
time / APT, Q = good / units; MTBF = operating time / FE, MTTR = sum of TTR / restored failures, IEC
60050-191 terms; intervals half-open) in a comment, and asserts the views give exactly those numbers,
through the reference interval SQL and through the per-hour facts with the adapter's memo (``Rig``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

import duckdb
import orjson
import pytest

from model.config import MesSection
from tests.uns.historian.fill import add_samples, add_series
from tests.uns.mes import test_hand_cases as first_round
from tests.uns.mes.mes_events import Feeder, at, ms
from tests.uns.mes.test_hand_cases import Rig, _ratios, _shift, _times
from uns.mes.downtime import DowntimeRow, current, downtime
from uns.mes.genealogy import process_values, trace
from uns.mes.maintenance_reliability import ReliabilityRow, reliability
from uns.mes.maintenance_views import MaintenanceRow, fault_pareto, maintenance_orders
from uns.mes.oee import oee
from uns.mes.resources import LotUse, material
from uns.mes.views_api import run_view
from uns.query.args import document_bytes
from uns.store.database import Database

LINE = "acme/dallas/bottling/line1"
CELL = f"{LINE}/filler"

# the first round's fixture: ``rig`` (each case through the interval SQL and through the facts and memo) on the
# MES tests' ``db``, a copy of one migrated file
rig = first_round.rig


def _mtbf(row: ReliabilityRow) -> tuple[object, ...]:
    """(operating, FE, open, sum of TTR, MTBF, MTTR) of one reliability row."""
    return (row.operating_s, row.failures, row.open_failures, row.failure_downtime_s, row.mtbf_s, row.mttr_s)


def _bars(rows: list[DowntimeRow]) -> list[tuple[object, ...]]:
    """(reason, loss, availability s, performance s, count, state) of each Pareto bar, in order."""
    return [(r.reason, r.loss, r.availability_s, r.performance_s, r.count, r.state) for r in rows]


# Case M1: a failure across a shift change and midnight; a day with no failure.
#   shifts at the line: late [24 14:00, 24 22:00), night [24 22:00, 25 06:00), early [25 06:00, 25 14:00)
#   filler: 24 14:00 producing, 24 21:30 failure 180000, 25 01:00 producing, 25 03:00 stop 40000,
#           25 03:01 producing; now 25 13:00
#   day 24 [24 00:00, 25 00:00): no state before 14:00 (left out): time 10 h = 36000, planned 0,
#     availability loss 21:30-24:00 = 9000 -> APT 27000; FE 1 (starts 21:30); TTR = its whole length,
#     21:30 -> 01:00 = 12600, restored before now: MTBF 27000 / 1, MTTR 12600
#   25 [00:00, 12:00): time 43200, failure 00:00-01:00 = 3600 availability, the 60 s stop a microstop (in APT):
#     APT 39600; the failure began in an earlier window: FE 0 -> MTBF None, MTTR None (no estimate; docs/mes.md),
#     null in the view's JSON
#   current at 24 22:30: the night shift's first half hour, all failed: state 180000 since 21:30, time 1800,
#     availability 1800, APT 0, A = 0
#   both days [24 00:00, 25 12:00): FE 1, APT 27000 + 39600 = 66600, MTBF 66600, MTTR 12600
#   Pareto [24 20:00, 25 04:00) (whole hours: every hour from facts in facts mode): equipment failure
#     12600 availability, ONE stop across 22:00 and midnight; stop 60 performance, 1 stop; [24 21:45, 25 00:45):
#     the failure's 10800 s there, still one stop
def test_m1_failure_across_shift_change_and_midnight(rig: Callable[..., Rig]) -> None:
    section = MesSection()
    case = rig(section, at(25, 13))
    feeder = case.feeder
    _shift(feeder, LINE, "late", at(24, 14), at(24, 22))
    _shift(feeder, LINE, "night", at(24, 22), at(25, 6))
    _shift(feeder, LINE, "early", at(25, 6), at(25, 14))
    feeder.states(CELL, [(at(24, 14), 10000), (at(24, 21, 30), 180000), (at(25, 1), 10000),
                         (at(25, 3), 40000), (at(25, 3, 1), 10000)])  # fmt: skip
    cursor = case.reader()

    def one(start: datetime, end: datetime) -> ReliabilityRow:
        (row,) = reliability(cursor, section, path=CELL, start=start, end=end, now=at(25, 13))
        return row

    assert _mtbf(one(at(24, 0), at(25, 0))) == (27000.0, 1, 0, 12600.0, 27000.0, 12600.0)
    assert _mtbf(one(at(25, 0), at(25, 12))) == (39600.0, 0, 0, 0.0, None, None)
    params = {"path": [CELL], "start": ["2026-11-25T00:00:00Z"], "end": ["2026-11-25T12:00:00Z"]}
    (answer,) = orjson.loads(document_bytes(run_view(cursor, section, "reliability", params, now=at(25, 13))))["rows"]
    assert (answer["operating_s"], answer["failures"], answer["mtbf_s"], answer["mttr_s"]) == (39600.0, 0, None, None)
    assert _mtbf(one(at(24, 0), at(25, 12))) == (66600.0, 1, 0, 12600.0, 66600.0, 12600.0)
    (now,) = (row for row in current(cursor, section, now=at(24, 22, 30)) if row.path == CELL)
    assert (now.state, now.since, now.shift_id, _times(now.oee), now.oee.availability) == (
        180000, at(24, 21, 30), "night", (1800, 0, 1800, 1800, 0), 0.0,
    )  # fmt: skip
    (day,) = oee(cursor, section, path=CELL, start=at(25, 0), end=at(25, 12))
    assert _times(day) == (43200, 0, 43200, 3600, 39600)
    assert day.microstop_s == 60
    assert _bars(downtime(cursor, section, path=CELL, start=at(24, 20), end=at(25, 4))) == [
        ("equipment failure", "availability", 12600.0, 0.0, 1, 180000),
        ("stop", "performance", 0.0, 60.0, 1, 40000),
    ]
    # cut inside hours (the edges computed directly, the hours between from facts): 21:45 -> 00:45 of the failure
    assert _bars(downtime(cursor, section, path=CELL, start=at(24, 21, 45), end=at(25, 0, 45))) == [
        ("equipment failure", "availability", 10800.0, 0.0, 1, 180000),
    ]
    cursor.close()


def _version(feeder: Feeder, when: datetime, mid: str, status: str, **body: object) -> None:
    """One version of maintenance order ``mid`` at the filler, stamped ``when`` (the CMMS row's change)."""
    outcome = feeder.send(CELL, "maintenance_order", when, maintenance_id=mid, status=status, **body)
    assert outcome.status == "stored"


# Case M2: work orders a CMMS really sends: defaults from the versions, a repair started before the order was
#   opened, an order opened and cancelled, a closed order reopened, a planned order cancelled.
#   window [24 06:00, 24 14:00), now 24 15:00; filler: 06:00 producing, 07:00 failure, 07:40 producing,
#   09:00 failure, 09:30 producing, 12:00 stop 40000, 12:30 producing
#   R1 corrective E-DRIVE: 07:00 opened, 07:10 started, 07:40 closed (times from the versions' timestamps)
#   R2 corrective E-SENSOR: the technician began at 09:00, the order was written at 09:05 (opened_ms 09:05,
#      started_ms 09:00, one version at 09:05 saying started), closed by a version at 09:30:
#      response = started - opened = -300 -> 0 (the machine had its technician before the report), repair 1800
#   X1 corrective E-DRIVE: opened 10:00, cancelled 10:15; R3 corrective E-DRIVE: closed 11:20 (opened and
#      started 11:00), reopened (started) 11:40: not closed
#   R4 corrective E-SENSOR written after the work: one version at 13:30 saying closed, started 13:00, closed 13:20
#      (opened = its timestamp, 13:30): response 0, repair 1200, duration (opened to closed) -600 -> 0
#   P1 planned, window [12:00, 13:00), opened 05:00, cancelled at 11:00
#   OEE with P1 alive: the 12:00 stop is planned 1800: PBT 27000, availability 2400 + 1800 = 4200, APT 22800;
#     after its cancel: planned 0, PBT 28800, availability 6000, APT 22800
#   reliability: FE 2 (TTR 2400, 1800): MTTR 2100, MTBF 22800 / 2 = 11400; repair orders closed in the window:
#     R1, R2, R4 (R3 reopened, X1 cancelled, P1 planned): mean repair (1800 + 1800 + 1200) / 3 = 1600,
#     mean response (600 + 0 + 0) / 3 = 200, the mean of the order list's response_s
#   order list (alive in the window, newest opened first): R4 closed (0, 1200), R3 started (age 15:00 - 11:00
#     = 14400), X1 cancelled, R2 closed (response 0, repair 1800), R1 closed (600, 1800), P1 cancelled
#   fault Pareto (corrective, opened in the window, cancelled left out): E-DRIVE R1 + R3: 2 orders, 1 closed,
#     1 open, duration (opened to closed) 2400, repair 1800; E-SENSOR R2 + R4: 2 orders, both closed, duration
#     1500 + 0, repair 1800 + 1200 (means 750, 1500); shares 2400 / 3900, 1500 / 3900, count shares 2/4, 2/4
def test_m2_cmms_orders_late_report_cancel_and_reopen(rig: Callable[..., Rig]) -> None:
    section = MesSection()
    case = rig(section, at(24, 15))
    feeder = case.feeder
    feeder.states(CELL, [(at(24, 6), 10000), (at(24, 7), 180000), (at(24, 7, 40), 10000), (at(24, 9), 180000),
                         (at(24, 9, 30), 10000), (at(24, 12), 40000), (at(24, 12, 30), 10000)])  # fmt: skip
    _version(feeder, at(24, 5), "P1", "opened", planned=True, planned_start_ms=ms(at(24, 12)),
             planned_end_ms=ms(at(24, 13)))  # fmt: skip
    _version(feeder, at(24, 7), "R1", "opened", fault_code="E-DRIVE")
    _version(feeder, at(24, 7, 10), "R1", "started")
    _version(feeder, at(24, 7, 40), "R1", "closed")
    _version(feeder, at(24, 9, 5), "R2", "started", fault_code="E-SENSOR", opened_ms=ms(at(24, 9, 5)),
             started_ms=ms(at(24, 9)))  # fmt: skip
    _version(feeder, at(24, 9, 30), "R2", "closed")
    _version(feeder, at(24, 10), "X1", "opened", fault_code="E-DRIVE")
    _version(feeder, at(24, 10, 15), "X1", "cancelled")
    _version(feeder, at(24, 11, 20), "R3", "closed", fault_code="E-DRIVE", opened_ms=ms(at(24, 11)),
             started_ms=ms(at(24, 11)), closed_ms=ms(at(24, 11, 20)))  # fmt: skip
    _version(feeder, at(24, 11, 40), "R3", "started")
    _version(feeder, at(24, 13, 30), "R4", "closed", fault_code="E-SENSOR", started_ms=ms(at(24, 13)),
             closed_ms=ms(at(24, 13, 20)))  # fmt: skip
    cursor = case.reader()
    (row,) = oee(cursor, section, path=CELL, start=at(24, 6), end=at(24, 14))
    assert _times(row) == (28800, 1800, 27000, 4200, 22800)
    cursor.close()
    _version(feeder, at(24, 11), "P1", "cancelled")
    cursor = case.reader()
    (row,) = oee(cursor, section, path=CELL, start=at(24, 6), end=at(24, 14))
    assert _times(row) == (28800, 0, 28800, 6000, 22800)
    (rel,) = reliability(cursor, section, path=CELL, start=at(24, 6), end=at(24, 14), now=at(24, 15))
    assert _mtbf(rel) == (22800.0, 2, 0, 4200.0, 11400.0, 2100.0)
    assert (rel.repair_orders, rel.mean_repair_s, rel.mean_response_s) == (3, 1600.0, 200.0)
    orders = maintenance_orders(cursor, path=CELL, start=at(24, 6), end=at(24, 14), now=at(24, 15))
    assert [(o.maintenance_id, o.status, o.planned, o.response_s, o.repair_s, o.age_s, o.versions) for o in orders] == [
        ("R4", "closed", False, 0.0, 1200.0, None, 1),
        ("R3", "started", False, 0.0, None, 14400.0, 2),
        ("X1", "cancelled", False, None, None, None, 2),
        ("R2", "closed", False, 0.0, 1800.0, None, 2),
        ("R1", "closed", False, 600.0, 1800.0, None, 3),
        ("P1", "cancelled", True, None, None, None, 2),
    ]
    assert [o.closed for o in orders] == [at(24, 13, 20), None, None, at(24, 9, 30), at(24, 7, 40), None]
    bars = fault_pareto(cursor, path=CELL, start=at(24, 6), end=at(24, 14))
    assert [(b.fault_code, b.orders, b.closed, b.open, b.duration_s, b.repair_s, b.mean_duration_s,
             b.mean_repair_s) for b in bars] == [
        ("E-DRIVE", 2, 1, 1, 2400.0, 1800.0, 2400.0, 1800.0),
        ("E-SENSOR", 2, 2, 0, 1500.0, 3000.0, 750.0, 1500.0),
    ]  # fmt: skip
    shares = [share for b in bars for share in (b.share, b.cumulative_share, b.count_share)]
    assert shares == pytest.approx([2400 / 3900, 2400 / 3900, 0.5, 1500 / 3900, 1.0, 0.5], rel=1e-12)
    cursor.close()


def _state(feeder: Feeder, when: datetime, state: int, reason: str | None = None) -> None:
    body: dict[str, object] = {"state": state} | ({"reason_code": reason} if reason else {})
    assert feeder.send(CELL, "machine_state", when, **body).status == "stored"


def _label(feeder: Feeder, when: datetime, start: datetime, end: datetime, **body: object) -> None:
    outcome = feeder.send(CELL, "downtime_reason", when, start_ms=ms(start), end_ms=ms(end), **body)
    assert outcome.status == "stored"


# Case M3: two overlapping failures on one cell, then overlapping operator labels.
#   filler 07:00 producing, 08:00 failure 180000 reason E-DRIVE, 08:10 (still down) failure 181000 reason
#   E-SENSOR (a second fault while the first is on), 08:30 producing; window [07:00, 09:00), now 10:00
#   time 7200, availability 1800, APT 5400; one failure event: the cell was down once (a run of consecutive
#   failure states), TTR 1800: MTBF 5400, MTTR 1800; Pareto: E-SENSOR 1200 (state 181000), E-DRIVE 600, one
#   stop each
#   labels: L1 (sent 09:10) [08:00, 08:20) reason MOTOR; L2 (09:20) [08:15, 08:30) reason BEARING: the latest
#   wins where they overlap: MOTOR [08:00, 08:15) = 600 at 180000 + 300 at 181000, two stops (both machine
#   state intervals), state of most time 180000; BEARING [08:15, 08:30) = 900, one stop; a tie on time goes
#   by name: BEARING, MOTOR; shares 0.5, 1.0. Reliability unchanged.
#   L3 (09:30) [08:10, 08:30) state 40000 only (the second "failure" was an operator stop): the newest label
#   names no reason, so the machine's own (E-SENSOR) for [08:10, 08:30); the failure run is now
#   [08:00, 08:10): FE 1, TTR 600 (the stop goes on as 40000, but the failure ended): MTTR 600, MTBF 5400;
#   the whole stop is still one 1800 s run of stops (no microstop): availability 1800
#   Pareto: E-SENSOR 1200 (state 40000), MOTOR 600 (180000)
def test_m3_overlapping_failures_and_labels(rig: Callable[..., Rig]) -> None:
    section = MesSection()
    case = rig(section, at(24, 10))
    feeder = case.feeder
    _state(feeder, at(24, 7), 10000)
    _state(feeder, at(24, 8), 180000, "E-DRIVE")
    _state(feeder, at(24, 8, 10), 181000, "E-SENSOR")
    _state(feeder, at(24, 8, 30), 10000)

    def read() -> tuple[tuple[object, ...], list[tuple[object, ...]], tuple[object, ...]]:
        cursor = case.reader()
        (row,) = oee(cursor, section, path=CELL, start=at(24, 7), end=at(24, 9))
        bars = _bars(downtime(cursor, section, path=CELL, start=at(24, 7), end=at(24, 9)))
        (rel,) = reliability(cursor, section, path=CELL, start=at(24, 7), end=at(24, 9), now=at(24, 10))
        cursor.close()
        return _times(row), bars, _mtbf(rel)

    times = (7200, 0, 7200, 1800, 5400)
    assert read() == (
        times,
        [("E-SENSOR", "availability", 1200.0, 0.0, 1, 181000), ("E-DRIVE", "availability", 600.0, 0.0, 1, 180000)],
        (5400.0, 1, 0, 1800.0, 5400.0, 1800.0),
    )
    _label(feeder, at(24, 9, 10), at(24, 8), at(24, 8, 20), reason_code="MOTOR")
    _label(feeder, at(24, 9, 20), at(24, 8, 15), at(24, 8, 30), reason_code="BEARING")
    assert read() == (
        times,
        [("BEARING", "availability", 900.0, 0.0, 1, 181000), ("MOTOR", "availability", 900.0, 0.0, 2, 180000)],
        (5400.0, 1, 0, 1800.0, 5400.0, 1800.0),
    )
    _label(feeder, at(24, 9, 30), at(24, 8, 10), at(24, 8, 30), state=40000)
    assert read() == (
        times,
        [("E-SENSOR", "availability", 1200.0, 0.0, 1, 40000), ("MOTOR", "availability", 600.0, 0.0, 1, 180000)],
        (5400.0, 1, 0, 600.0, 5400.0, 600.0),
    )


# Case M4: the six big losses of one shift (Nakajima's, as ISO 22400-2's OEE splits them), and a stop without a
#   reason relabelled. Shift [06:00, 14:00) with a break [10:00, 10:30); ideal cycle 1.0 s (settings); iso22400
#   06:00 setting up 130000 (setup and adjustment)          -> 06:20 producing      1200 availability
#   07:00 failure 180000 (breakdown)                        -> 07:30 producing      1800 availability
#   08:00 stop 40000, no reason, 90 s (minor stop)          -> 08:01:30 producing     90 performance (microstop)
#   08:30 microstop 50000 for 200 s (its class by code)     -> 08:33:20 producing    200 performance
#   09:00 stop 40000, no reason, 600 s                      -> 09:10 producing       600 availability
#   10:00 operator break 150000 in the break                -> 10:30 producing      1800 planned
#   12:00 producing below full speed 20000 (reduced speed)  -> 13:00 producing         production time
#   counts: 06:25 300 / 50 scrap (start-up rejects: reduced yield), 09:30 9000 / 90, 13:59 12000 / 60 (defects)
#   window 28800, planned 1800, PBT 27000, availability 1200 + 1800 + 600 = 3600, APT 23400, microstops 290
#   A = 23400 / 27000, P = 21300 x 1.0 / 23400, Q = 21100 / 21300, OEE = 21100 / 27000
#   the six in seconds of PBT: breakdowns 1800, setup 1200 (+ the unexplained stop 600: availability), minor
#   stops 290, reduced speed = APT - units x ideal - microstops = 23400 - 21300 - 290 = 1810, defects and
#   reduced yield = scrap x ideal = 200; value-adding 21100: 3600 + 290 + 1810 + 200 + 21100 = 27000
#   Pareto before the relabel: equipment failure 1800, setting up 1200, stop 690 (600 availability + 90
#     performance: availability, two stops), microstop 200 (performance); shares of 3890
#   the 09:00 stop labelled afterwards [09:00, 09:10) reason NO-BOTTLES state 60000 (starved): its own bar,
#     availability 600; "stop" keeps the 90 s microstop, performance; OEE unchanged (both availability)
#   under umh setting up (130000) and starved (60000) are performance loss, in APT: before the relabel
#     availability 1800 + 600 = 2400, microstops 1200 + 90 + 200 = 1490, APT 24600; after it availability 1800,
#     microstops 2090, APT 25200; the bars the same reasons with umh's classes; OEE and reduced speed (1810) the same
_M4_BARS = {
    "iso22400": (
        [("equipment failure", "availability", 1800.0, 0.0, 1, 180000),
         ("setting up", "availability", 1200.0, 0.0, 1, 130000),
         ("stop", "availability", 600.0, 90.0, 2, 40000),
         ("microstop", "performance", 0.0, 200.0, 1, 50000)],
        [("equipment failure", "availability", 1800.0, 0.0, 1, 180000),
         ("setting up", "availability", 1200.0, 0.0, 1, 130000),
         ("NO-BOTTLES", "availability", 600.0, 0.0, 1, 60000),
         ("microstop", "performance", 0.0, 200.0, 1, 50000),
         ("stop", "performance", 0.0, 90.0, 1, 40000)],
    ),
    "umh": (
        [("equipment failure", "availability", 1800.0, 0.0, 1, 180000),
         ("setting up", "performance", 0.0, 1200.0, 1, 130000),
         ("stop", "availability", 600.0, 90.0, 2, 40000),
         ("microstop", "performance", 0.0, 200.0, 1, 50000)],
        [("equipment failure", "availability", 1800.0, 0.0, 1, 180000),
         ("setting up", "performance", 0.0, 1200.0, 1, 130000),
         ("NO-BOTTLES", "performance", 0.0, 600.0, 1, 60000),
         ("microstop", "performance", 0.0, 200.0, 1, 50000),
         ("stop", "performance", 0.0, 90.0, 1, 40000)],
    ),
}  # fmt: skip
"""Case M4's Pareto per preset, before and after the relabel."""
_M4_TIME = {"iso22400": ((3600, 290), (3600, 290)), "umh": ((2400, 1490), (1800, 2090))}
"""Case M4's (availability loss, microstop_s) per preset, before and after the relabel."""


@pytest.mark.parametrize("preset", ["iso22400", "umh"])
def test_m4_six_big_losses_of_a_shift(rig: Callable[..., Rig], preset: Literal["iso22400", "umh"]) -> None:
    section = MesSection(ideal_cycle_time_s={LINE: 1.0}, loss_preset=preset)
    case = rig(section, at(24, 15))
    feeder = case.feeder
    _shift(feeder, LINE, "early", at(24, 6), at(24, 14), (at(24, 10), at(24, 10, 30)))
    feeder.states(CELL, [(at(24, 6), 130000), (at(24, 6, 20), 10000), (at(24, 7), 180000), (at(24, 7, 30), 10000),
                         (at(24, 8), 40000), (at(24, 8, 1, 30), 10000), (at(24, 8, 30), 50000),
                         (at(24, 8, 33, 20), 10000), (at(24, 9), 40000), (at(24, 9, 10), 10000),
                         (at(24, 10), 150000), (at(24, 10, 30), 10000), (at(24, 12), 20000),
                         (at(24, 13), 10000)])  # fmt: skip
    for when, total, scrap in ((at(24, 6, 25), 300, 50), (at(24, 9, 30), 9000, 90), (at(24, 13, 59), 12000, 60)):
        assert feeder.send(CELL, "production_count", when, total=total, scrap=scrap).status == "stored"

    def read(lost: int, microstops: int) -> list[tuple[object, ...]]:
        cursor = case.reader()
        (row,) = oee(cursor, section, path=CELL, start=at(24, 6), end=at(24, 14))
        apt = 27000 - lost
        assert (_times(row), row.microstop_s, row.total, row.good) == (
            (28800, 1800, 27000, lost, apt), microstops, 21300, 21100,
        )  # fmt: skip
        _ratios(row, apt / 27000, 21300 / apt, 21100 / 21300)
        assert row.oee == pytest.approx(21100 / 27000, rel=1e-12)  # the same under both presets
        reduced_speed = row.actual_production_time_s - row.total * 1.0 - row.microstop_s
        assert reduced_speed == 1810  # whatever the classification
        rows = downtime(cursor, section, path=CELL, start=at(24, 6), end=at(24, 14))
        cursor.close()
        assert [r.share for r in rows] == pytest.approx([r.duration_s / 3890 for r in rows], rel=1e-12)
        return _bars(rows)

    (before, after), (bars_before, bars_after) = _M4_TIME[preset], _M4_BARS[preset]
    assert read(*before) == bars_before
    _label(feeder, at(24, 11), at(24, 9), at(24, 9, 10), reason_code="NO-BOTTLES", state=60000)
    assert read(*after) == bars_after


# Case M5: a relabel makes a failure begin exactly at a window's start.
#   filler: 05:00 producing, 05:30 stop 40000 (no reason), 06:40 producing; the operator labels [06:00, 06:40)
#     as equipment failure (state 180000, reason E-DRIVE): the machine stood idle, then failed at 06:00
#   capper: 05:00 producing, 05:30 failure 180000, 06:40 producing; the operator labels [05:30, 06:00) state
#     40000 (it was stopped on purpose until 06:00): the failure starts at 06:00 in both cells
#   shift window [06:00, 08:00), now 09:00: each cell time 7200, availability 2400, APT 4800; the failure
#     starts at 06:00, in this window (the stop before it is no failure, so no earlier window has it):
#     FE 1, TTR 2400: MTBF 4800, MTTR 2400
#   [05:00, 06:00): APT 1800, the 1800 s stop is no failure: FE 0, MTBF None
def test_m5_relabelled_failure_begins_at_the_window_start(rig: Callable[..., Rig]) -> None:
    section = MesSection()
    case = rig(section, at(24, 9))
    feeder = case.feeder
    capper = f"{LINE}/capper"
    feeder.states(CELL, [(at(24, 5), 10000), (at(24, 5, 30), 40000), (at(24, 6, 40), 10000)])
    feeder.states(capper, [(at(24, 5), 10000), (at(24, 5, 30), 180000), (at(24, 6, 40), 10000)])
    _label(feeder, at(24, 7), at(24, 6), at(24, 6, 40), reason_code="E-DRIVE", state=180000)
    outcome = feeder.send(capper, "downtime_reason", at(24, 7), start_ms=ms(at(24, 5, 30)), end_ms=ms(at(24, 6)),
                          state=40000)  # fmt: skip
    assert outcome.status == "stored"
    cursor = case.reader()
    shift = reliability(cursor, section, path=LINE, start=at(24, 6), end=at(24, 8), now=at(24, 9))
    assert {r.path: _mtbf(r) for r in shift} == {
        capper: (4800.0, 1, 0, 2400.0, 4800.0, 2400.0),
        CELL: (4800.0, 1, 0, 2400.0, 4800.0, 2400.0),
    }
    before = reliability(cursor, section, path=LINE, start=at(24, 5), end=at(24, 6), now=at(24, 9))
    assert [_mtbf(r) for r in before] == [(1800.0, 0, 0, 0.0, None, None)] * 2
    cursor.close()


MIXER, ASSEMBLY, REWORK = f"{LINE}/mixer", f"{LINE}/assembly", f"{LINE}/rework"


def _genealogy_plant(db: Database) -> None:
    """The events of cases M6 and M7 (see M6), through the real store."""
    feeder = Feeder(db, MesSection())
    mixer, filler, pallets, assembly, rework = MIXER, f"{LINE}/filler", f"{LINE}/palletizer", ASSEMBLY, REWORK

    def send(path: str, event: str, when: datetime, **body: object) -> None:
        assert feeder.send(path, event, when, **body).status == "stored"

    for order, start, end in (("O1", at(24, 6), at(24, 8)), ("O2", at(24, 8), at(24, 10)),
                              ("R1", at(24, 10, 30), at(24, 11, 30))):  # fmt: skip
        send(LINE, "work_order", at(24, 5), order_id=order, action="release", product_id="P", quantity=100)
        send(LINE, "work_order", start, order_id=order, action="start")
        send(LINE, "work_order", end, order_id=order, action="complete")
    send(mixer, "material_consumption", at(24, 7), material_id="resin", lot_id="RM-1", quantity=40, unit="kg")
    send(mixer, "material_consumption", at(24, 9), material_id="resin", lot_id="RM-1", quantity=60, unit="kg")
    send(assembly, "material_consumption", at(24, 9, 50), material_id="screw", lot_id="SCR-1", quantity=4)

    def lot(path: str, when: datetime, lot_id: str, *inputs: tuple[str, str]) -> None:
        made = [{"lot_id": i, "material_id": m} for i, m in inputs]
        send(path, "lot_production", when, lot_id=lot_id, product_id="P-" + lot_id, quantity=1, input_lots=made)

    lot(mixer, at(24, 7, 30), "B-1", ("RM-1", "resin"))
    lot(mixer, at(24, 9, 30), "B-2", ("RM-1", "resin"))
    lot(filler, at(24, 9, 40), "B-1a", ("B-1", "batch"))
    lot(filler, at(24, 9, 45), "B-1b", ("B-1", "batch"))
    lot(pallets, at(24, 9, 50), "M-1", ("B-1a", "batch"), ("B-2", "batch"))
    lot(assembly, at(24, 9, 55), "SN-7", ("B-1b", "batch"))
    send(assembly, "quality_inspection", at(24, 10, 5), characteristic="visual", result="fail", defect_type="crack",
         lot_id="SN-7")  # fmt: skip
    lot(rework, at(24, 11), "SN-7", ("PART-9", "housing"))
    send(rework, "quality_inspection", at(24, 11, 10), characteristic="visual", result="pass", lot_id="SN-7")


# Case M6: genealogy of a lot consumed across two orders, split, merged, and a unit reworked (one path: the
#   trace reads the tables, no facts). Line1 orders: O1 [06:00, 08:00), O2 [08:00, 10:00), R1 (rework) [10:30, 11:30).
#   resin lot RM-1 consumed at the mixer 07:00 (40 kg, no order named: O1 ran) and 09:00 (60 kg: O2)
#   B-1 made at the mixer 07:30 (O1) from RM-1; B-2 at the mixer 09:30 (O2) from RM-1
#   split: B-1a (09:40) and B-1b (09:45) at the filler, each from B-1; merge: M-1 at the palletizer 09:50 from
#   B-1a and B-2; serial unit SN-7 made at the assembly cell 09:55 (O2) from B-1b, failed an inspection at 10:05,
#   reworked at the rework cell 11:00 (R1) with a new housing from lot PART-9, passed at 11:10
#   backward from M-1: M-1 0; B-1a, B-2 1; B-1, RM-1 2 (RM-1 once, at its shortest depth, though reached twice)
#   forward from RM-1: B-1, B-2 1; B-1a, B-1b, M-1 2 (M-1 through B-2, not 3 through B-1a); SN-7 3
#     RM-1: not produced, material resin, consumed at the mixer for O1 and O2
#   backward from SN-7: B-1b, PART-9 1; B-1 2; RM-1 3 (a recall of RM-1 finds SN-7, and so does PART-9's: forward
#     from PART-9: SN-7 1)
#     SN-7: made at assembly and rework; product, order, created and window of its latest lot event (R1's rework:
#     10:30-11:30), as the lots view shows the lot; both inspections
#   material view: O1 used RM-1 40, O2 RM-1 60 and SCR-1 4
#   screws SCR-1 consumed at assembly 09:50 (O2), named by no lot_production: a consumption links no lot, so the
#     forward trace from SCR-1 is SCR-1 alone (consumed for O2), though SN-7 was assembled in O2 at that cell
def test_m6_genealogy_split_merge_rework_and_a_lot_over_two_orders(db: Database) -> None:
    _genealogy_plant(db)
    mixer, assembly, rework = MIXER, ASSEMBLY, REWORK
    cursor = db.reader()
    back = trace(cursor, "M-1")
    assert [(n.lot_id, n.depth) for n in back.nodes] == [("M-1", 0), ("B-1a", 1), ("B-2", 1), ("B-1", 2), ("RM-1", 2)]
    assert {(e.lot_id, e.input_lot_id) for e in back.edges} == {
        ("M-1", "B-1a"), ("M-1", "B-2"), ("B-1a", "B-1"), ("B-2", "RM-1"), ("B-1", "RM-1")
    }  # fmt: skip
    assert (back.cycles, back.truncated) == ((), False)
    forward = trace(cursor, "RM-1", direction="forward")
    assert [(n.lot_id, n.depth) for n in forward.nodes] == [
        ("RM-1", 0), ("B-1", 1), ("B-2", 1), ("B-1a", 2), ("B-1b", 2), ("M-1", 2), ("SN-7", 3),
    ]  # fmt: skip
    raw = forward.node("RM-1")
    assert (raw.produced, raw.material_id, raw.consumed_at, raw.consumed_for, raw.order_id) == (
        False, "resin", (mixer,), ("O1", "O2"), None,
    )  # fmt: skip
    first = forward.node("B-1")
    assert (first.order_id, first.made_from, first.made_to, first.created) == (
        "O1",
        at(24, 6),
        at(24, 8),
        at(24, 7, 30),
    )
    unit = trace(cursor, "SN-7")
    assert [(n.lot_id, n.depth) for n in unit.nodes] == [("SN-7", 0), ("B-1b", 1), ("PART-9", 1), ("B-1", 2),
                                                         ("RM-1", 3)]  # fmt: skip
    sn = unit.node("SN-7")
    assert (sn.made_at, sn.order_id, sn.created, sn.made_from, sn.made_to) == (
        (assembly, rework), "R1", at(24, 11), at(24, 10, 30), at(24, 11, 30),
    )  # fmt: skip
    screws = trace(cursor, "SCR-1", direction="forward")
    assert ([(n.lot_id, n.consumed_for) for n in screws.nodes], screws.edges) == ([("SCR-1", ("O2",))], ())
    recall = trace(cursor, "PART-9", direction="forward")
    assert [(n.lot_id, n.depth) for n in recall.nodes] == [("PART-9", 0), ("SN-7", 1)]
    assert [(i.result, i.path, i.defect_type) for i in sn.inspections] == [("fail", assembly, "crack"),
                                                                          ("pass", rework, None)]  # fmt: skip
    used = {report_row.material_id: report_row.lots for report_row in material(cursor, order_id="O1").materials}
    assert used == {"resin": (LotUse(lot_id="RM-1", quantity=40.0),)}
    used = {report_row.material_id: report_row.lots for report_row in material(cursor, order_id="O2").materials}
    assert used == {"resin": (LotUse(lot_id="RM-1", quantity=60.0),), "screw": (LotUse(lot_id="SCR-1", quantity=4.0),)}
    cursor.close()


# Case M7: the process values a reworked unit saw, each cell over its own production of it (the plant of M6).
#   assembly Torque: 08:30 5.0, 09:50 6.0, 10:45 9.0 (another unit, during the rework); rework Torque: 10:40 7.0,
#   11:20 8.0. SN-7 was made at assembly at 09:55 under O2 [08:00, 10:00], at rework at 11:00 under R1
#   [10:30, 11:30] (window ends included, as for every lot)
#   assembly: 5.0, 6.0 -> 2 samples, min 5, avg 5.5, max 6; as of its making there (09:55): 6.0 (09:50)
#   rework: 7.0, 8.0 -> 2 samples, avg 7.5; as of 11:00: 7.0 (10:40)
#   (read over the rework's window at both cells, assembly would show the other unit's 9.0)
def test_m7_process_values_of_a_reworked_unit(db: Database) -> None:
    _genealogy_plant(db)
    connection = db.connection
    add_series(connection, 1, f"{ASSEMBLY}/data/Torque")
    add_samples(connection, 1, [(at(24, 8, 30), 5.0, "good"), (at(24, 9, 50), 6.0, "good"),
                                (at(24, 10, 45), 9.0, "good")])  # fmt: skip
    add_series(connection, 2, f"{REWORK}/data/Torque")
    add_samples(connection, 2, [(at(24, 10, 40), 7.0, "good"), (at(24, 11, 20), 8.0, "good")])
    cursor = db.reader()
    values = process_values(cursor, "SN-7", metrics=[f"{LINE}/+/data/Torque"])
    cursor.close()
    assert [(v.path, v.samples, v.min, v.avg, v.max, v.at_creation, v.at_creation_ts) for v in values] == [
        (ASSEMBLY, 2, 5.0, 5.5, 6.0, 6.0, at(24, 9, 50)),
        (REWORK, 2, 7.0, 7.5, 8.0, 7.0, at(24, 10, 40)),
    ]


# Case M8: planned maintenance at the line, started early and overrunning, with a failure found during it.
#   PM-7 at line1 (covers its cells), planned, scheduled [06:00, 07:00); started 05:50 (a version saying started),
#   closed 07:10: planned windows [06:00, 07:00) and [05:50, 07:10), their union [05:50, 07:10)
#   filler: 05:00 producing, 05:50 preventive maintenance 210000, 06:30 failure 180000 (found during the work),
#     07:30 producing; capper: 05:00 producing, 05:50 210000, 07:10 producing; no line states; query [05:00, 09:00)
#   filler: time 14400, planned 05:50-07:10 = 4800, availability 07:10-07:30 = 1200 (the stop runs 05:50-07:30,
#     6000 s: no microstop), PBT 9600, APT 8400; failure event 06:30-07:30: some of it availability loss, so it
#     counts, TTR its whole 3600 s: MTBF 8400, MTTR 3600
#   capper: planned 4800, PBT 9600, APT 9600, FE 0
#   line (its cells' union): [05:50, 07:10) no cell produces, both planned: planned 4800; [07:10, 07:30) the capper
#     produces: production; APT 9600, availability 0; FE = the cells' failures: 1 (TTR 3600), MTBF 9600
#   Pareto at the line (its cells' stops): equipment failure 1200 availability, one stop
def test_m8_planned_maintenance_at_the_line_early_and_overrunning(rig: Callable[..., Rig]) -> None:
    section = MesSection()
    case = rig(section, at(24, 10))
    feeder = case.feeder
    capper = f"{LINE}/capper"
    feeder.states(CELL, [(at(24, 5), 10000), (at(24, 5, 50), 210000), (at(24, 6, 30), 180000), (at(24, 7, 30), 10000)])
    feeder.states(capper, [(at(24, 5), 10000), (at(24, 5, 50), 210000), (at(24, 7, 10), 10000)])
    for when, status in ((at(24, 5), "opened"), (at(24, 5, 50), "started"), (at(24, 7, 10), "closed")):
        outcome = feeder.send(LINE, "maintenance_order", when, maintenance_id="PM-7", status=status, planned=True,
                              planned_start_ms=ms(at(24, 6)), planned_end_ms=ms(at(24, 7)))  # fmt: skip
        assert outcome.status == "stored"
    cursor = case.reader()
    a, b = at(24, 5), at(24, 9)
    cells = {r.path: _times(r) for r in oee(cursor, section, path=LINE, by="cell", start=a, end=b)}
    assert cells == {CELL: (14400, 4800, 9600, 1200, 8400), capper: (14400, 4800, 9600, 0, 9600)}
    (line,) = oee(cursor, section, path=LINE, by="line", start=a, end=b)
    assert _times(line) == (14400, 4800, 9600, 0, 9600)
    by_cell = {r.path: _mtbf(r) for r in reliability(cursor, section, path=LINE, now=at(24, 10), start=a, end=b)}
    assert by_cell == {CELL: (8400.0, 1, 0, 3600.0, 8400.0, 3600.0), capper: (9600.0, 0, 0, 0.0, None, None)}
    (whole,) = reliability(cursor, section, path=LINE, by="line", now=at(24, 10), start=a, end=b)
    assert _mtbf(whole) == (9600.0, 1, 0, 3600.0, 9600.0, 3600.0)
    assert _bars(downtime(cursor, section, path=LINE, start=a, end=b)) == [
        ("equipment failure", "availability", 1200.0, 0.0, 1, 180000)
    ]
    cursor.close()


# Case M9: MTBF of the running shift, asked in the middle of it (a window that ends after now).
#   filler: 06:00 producing, 08:00 failure, 08:30 producing; shift window [06:00, 14:00) asked at 10:00
#   what has happened: operating 06:00-08:00 + 08:30-10:00 = 12600 (the 4 h after now have no data: not
#   operating time), FE 1, TTR 1800: MTBF 12600, MTTR 1800; the window [11:00, 14:00), all after now: nothing
#   operated, no failure: operating 0, MTBF None
def test_m9_mtbf_of_the_running_shift_counts_no_time_after_now(rig: Callable[..., Rig]) -> None:
    section = MesSection()
    case = rig(section, at(24, 10))
    case.feeder.states(CELL, [(at(24, 6), 10000), (at(24, 8), 180000), (at(24, 8, 30), 10000)])
    cursor = case.reader()
    (shift,) = reliability(cursor, section, path=CELL, start=at(24, 6), end=at(24, 14), now=at(24, 10))
    assert (shift.start, shift.end, _mtbf(shift)) == (at(24, 6), at(24, 14), (12600.0, 1, 0, 1800.0, 12600.0, 1800.0))
    (later,) = reliability(cursor, section, path=CELL, start=at(24, 11), end=at(24, 14), now=at(24, 10))
    assert _mtbf(later) == (0.0, 0, 0, 0.0, None, None)
    cursor.close()


def _the_order(db: Database) -> MaintenanceRow:
    """The one maintenance order at the filler in the list of [06:00, 14:00) at 15:00 (cases M10)."""
    cursor = db.reader()
    (order,) = maintenance_orders(cursor, path=CELL, start=at(24, 6), end=at(24, 14), now=at(24, 15))
    cursor.close()
    return order


# Case M10: an order closed, reopened and closed again, then re-sent closed (a description edited afterwards).
#   versions of R9 at the filler, no explicit times: 09:00 started, 09:10 closed, 09:20 started (reopened: the fix
#   did not hold), 09:30 closed, 09:40 closed (the same row re-sent with a longer description)
#   work ended when it was closed for good: 09:30, the first "closed" after the last reopen (the 09:40 re-send
#   does not move it; neither should the 09:10 close that the reopen undid): repair 09:00 -> 09:30 = 1800 s
#   The default lives in the view mes_maintenance (uns/mes/schema.py, version 4: the first version saying closed
#   after the last saying otherwise; version 3 took the first ever, 09:10).
def test_m10_an_order_reopened_and_closed_again_closes_at_its_last_close(db: Database) -> None:
    feeder = Feeder(db, MesSection())
    versions = ((0, "started", None), (10, "closed", None), (20, "started", None), (30, "closed", None),
                (40, "closed", "bearing replaced, shaft aligned"))  # fmt: skip
    for minute, status, text in versions:
        _version(feeder, at(24, 9, minute), "R9", status, **({"description": text} if text else {}))
    order = _the_order(db)
    assert (order.status, order.started, order.closed, order.repair_s) == ("closed", at(24, 9), at(24, 9, 30), 1800.0)


# Case M10, a CMMS that sends closed_ms the first time only: R10 09:00 started, 09:10 closed with closed_ms 09:08,
#   09:20 started (reopened), 09:30 closed with no closed_ms: the 09:08 close was undone by the reopen, so the
#   order closes at 09:30 (the version saying so), repair 1800 s; re-closed at 09:45 with closed_ms 09:40: 09:40
def test_m10_a_close_time_given_before_a_reopen_is_undone_by_it(db: Database) -> None:
    feeder = Feeder(db, MesSection())
    _version(feeder, at(24, 9), "R10", "started")
    _version(feeder, at(24, 9, 10), "R10", "closed", closed_ms=ms(at(24, 9, 8)))
    _version(feeder, at(24, 9, 20), "R10", "started")
    _version(feeder, at(24, 9, 30), "R10", "closed")

    def closed() -> tuple[object, ...]:
        order = _the_order(db)
        return order.status, order.closed, order.repair_s

    assert closed() == ("closed", at(24, 9, 30), 1800.0)
    _version(feeder, at(24, 9, 45), "R10", "closed", closed_ms=ms(at(24, 9, 40)))
    assert closed() == ("closed", at(24, 9, 40), 2400.0)


# Case M10, an old close time re-sent after the reopen and the second close: R10 as above (closed 09:40), then
#   09:50 closed with closed_ms 09:08 (the row re-sent with the close time the reopen undid, and a longer
#   description): 09:08 is before the reopen at 09:20, when the order was not closed, so it is not when the work
#   ended: left out, the order stays closed at 09:40 (repair 2400 s), the description is the new one (MES schema
#   version 5; version 4 took the newest version's closed_ms: closed 09:08, repair 480 s, a close before the
#   reopen); the maintenance view counts it, closes_left_out 1. A close time after the reopen still corrects it:
#   09:55 closed_ms 09:35 -> 09:35, repair 2100 s (still one left out).
def test_m10_an_old_close_time_re_sent_after_the_reopen_is_left_out(db: Database) -> None:
    feeder = Feeder(db, MesSection())
    _version(feeder, at(24, 9), "R10", "started")
    _version(feeder, at(24, 9, 10), "R10", "closed", closed_ms=ms(at(24, 9, 8)))
    _version(feeder, at(24, 9, 20), "R10", "started")
    _version(feeder, at(24, 9, 45), "R10", "closed", closed_ms=ms(at(24, 9, 40)))

    def closed() -> tuple[object, ...]:
        order = _the_order(db)
        return order.status, order.closed, order.repair_s, order.description, order.closes_left_out

    assert closed() == ("closed", at(24, 9, 40), 2400.0, None, 0)
    _version(feeder, at(24, 9, 50), "R10", "closed", closed_ms=ms(at(24, 9, 8)), description="bearing replaced")
    assert closed() == ("closed", at(24, 9, 40), 2400.0, "bearing replaced", 1)
    _version(feeder, at(24, 9, 55), "R10", "closed", closed_ms=ms(at(24, 9, 35)))
    assert closed() == ("closed", at(24, 9, 35), 2100.0, "bearing replaced", 1)


# Case M10, an update while the order is open again is no reopen: R11 09:00 started, 09:10 closed with closed_ms
#   09:08, 09:20 started (the reopen: the version right after a close), 09:40 started naming technician B (the
#   row changed, the order still open), 09:50 closed with closed_ms 09:35 (work ended at 09:35, entered at 09:50)
#   09:35 is after the last reopen (09:20), so it is the close: closed 09:35, repair 09:00 -> 09:35 = 2100 s,
#   response 0 (opened and started at 09:00), nothing left out (MES schema version 6; version 5 took the 09:40
#   update for the reopen and left 09:35 out: closed 09:50, repair 3000 s, closes_left_out 1).
#   R12, the same without the 09:10 close and the reopen: 09:35, 2100 s, as version 5 already had it.
#   reliability [06:00, 14:00), now 15:00: 2 repair orders closed, mean repair (2100 + 2100) / 2 = 2100, mean
#   response 0; fault Pareto (both without a code): 2 orders, duration (opened to closed) 4200, repair 4200
def test_m10_an_update_while_reopened_does_not_move_the_reopen(db: Database) -> None:
    feeder = Feeder(db, MesSection())
    _version(feeder, at(24, 9), "R11", "started")
    _version(feeder, at(24, 9, 10), "R11", "closed", closed_ms=ms(at(24, 9, 8)))
    _version(feeder, at(24, 9, 20), "R11", "started")
    _version(feeder, at(24, 9), "R12", "started")
    for mid in ("R11", "R12"):
        _version(feeder, at(24, 9, 40), mid, "started", technician="B")
        _version(feeder, at(24, 9, 50), mid, "closed", closed_ms=ms(at(24, 9, 35)))
    cursor = db.reader()
    orders = maintenance_orders(cursor, path=CELL, start=at(24, 6), end=at(24, 14), now=at(24, 15))
    assert [
        (o.maintenance_id, o.closed, o.repair_s, o.response_s, o.technician, o.closes_left_out) for o in orders
    ] == [
        ("R11", at(24, 9, 35), 2100.0, 0.0, "B", 0),
        ("R12", at(24, 9, 35), 2100.0, 0.0, "B", 0),
    ]
    (rel,) = reliability(cursor, MesSection(), path=CELL, start=at(24, 6), end=at(24, 14), now=at(24, 15))
    assert (rel.repair_orders, rel.mean_repair_s, rel.mean_response_s) == (2, 2100.0, 0.0)
    (bar,) = fault_pareto(cursor, path=CELL, start=at(24, 6), end=at(24, 14))
    assert (bar.fault_code, bar.orders, bar.closed, bar.duration_s, bar.repair_s) == (None, 2, 2, 4200.0, 4200.0)
    cursor.close()


# Case M11: a failure shorter than microstop_s at the end of a long stop (microstop_s 120).
#   filler 06:00 producing, 07:00 stop 40000, 07:10 failure 180000, 07:11 producing; window [06:00, 08:00)
#   the run of consecutive stops is 07:00-07:11, 660 s: no microstop, all of it availability loss; APT 6540
#   the failure's 60 s are availability loss, so it is a failure event: FE 1, TTR 60: MTBF 6540, MTTR 60
#   (the microstop rule is the run's, not the failure's own length)
def test_m11_a_short_failure_ending_a_long_stop_is_a_failure(rig: Callable[..., Rig]) -> None:
    section = MesSection()
    case = rig(section, at(24, 9))
    case.feeder.states(CELL, [(at(24, 6), 10000), (at(24, 7), 40000), (at(24, 7, 10), 180000), (at(24, 7, 11), 10000)])
    cursor = case.reader()
    (row,) = oee(cursor, section, path=CELL, start=at(24, 6), end=at(24, 8))
    assert (_times(row), row.microstop_s) == ((7200, 0, 7200, 660, 6540), 0)
    (rel,) = reliability(cursor, section, path=CELL, start=at(24, 6), end=at(24, 8), now=at(24, 9))
    assert _mtbf(rel) == (6540.0, 1, 0, 60.0, 6540.0, 60.0)
    cursor.close()


def _document(cursor: duckdb.DuckDBPyConnection, view: str, params: dict[str, list[str]], now: datetime) -> Any:
    """A view's document as ``GET /api/mes/<view>`` answers it."""
    return orjson.loads(document_bytes(run_view(cursor, MesSection(), view, params, now=now)))


def _view(cursor: duckdb.DuckDBPyConnection, view: str, params: dict[str, list[str]], now: datetime) -> Any:
    """A view's rows as ``GET /api/mes/<view>`` answers them."""
    return _document(cursor, view, params, now)["rows"]


# Case M12: the running shift asked over HTTP with its planned end (after now).
#   filler 06:00 producing, 09:00 stop 40000 (still stopped at now, 10:00); ?start=06:00&end=14:00
#   what has happened: 4 h of data, 3 h producing, the stop's 3600 s so far; the 4 h after now are not known
#   (no state says the stop goes on): downtime 3600 s, OEE window 14400 s, availability 3600 s, A = 0.75; the
#   timeline's stop ends at 10:00; reliability: operating 10800, no failure; each document says its window was cut:
#   start 06:00, end 10:00, asked_end 14:00; the window [11:00, 14:00) has not begun: no rows, end = start
_SHIFT_SO_FAR = {"path": [CELL], "start": ["2026-11-24T06:00:00Z"], "end": ["2026-11-24T14:00:00Z"]}


def test_m12_downtime_of_the_running_shift_counts_no_time_after_now(db: Database) -> None:
    Feeder(db).states(CELL, [(at(24, 6), 10000), (at(24, 9), 40000)])
    cursor = db.reader()
    (bar,) = _view(cursor, "downtime", _SHIFT_SO_FAR, at(24, 10))
    cursor.close()
    assert (bar["reason"], bar["availability_s"]) == ("stop", 3600.0)


def test_m12_oee_of_the_running_shift_counts_no_time_after_now(db: Database) -> None:
    Feeder(db).states(CELL, [(at(24, 6), 10000), (at(24, 9), 40000)])
    cursor = db.reader()
    (row,) = _view(cursor, "oee", _SHIFT_SO_FAR, at(24, 10))
    cursor.close()
    assert (row["time_s"], row["availability_loss_s"], row["availability"]) == (14400.0, 3600.0, 0.75)


def test_m12_every_view_in_time_says_its_window_was_cut_at_now(db: Database) -> None:
    Feeder(db).states(CELL, [(at(24, 6), 10000), (at(24, 9), 40000)])
    cursor = db.reader()

    def answer(view: str, params: dict[str, list[str]]) -> Any:
        return _document(cursor, view, params, at(24, 10))

    cut = {"start": "2026-11-24T06:00:00+00:00", "end": "2026-11-24T10:00:00+00:00",
           "asked_end": "2026-11-24T14:00:00+00:00"}  # fmt: skip
    for view in ("oee", "downtime", "timeline", "reliability"):
        document = answer(view, _SHIFT_SO_FAR)
        assert {key: document[key] for key in cut} == cut, view
    timeline = answer("timeline", _SHIFT_SO_FAR)["rows"]
    assert [(r["state"], r["start"], r["end"]) for r in timeline] == [
        (10000, "2026-11-24T06:00:00+00:00", "2026-11-24T09:00:00+00:00"),
        (40000, "2026-11-24T09:00:00+00:00", "2026-11-24T10:00:00+00:00"),
    ]
    (rel,) = answer("reliability", _SHIFT_SO_FAR)["rows"]
    assert (rel["operating_s"], rel["failures"], rel["end"]) == (10800.0, 0, "2026-11-24T10:00:00+00:00")
    later = {**_SHIFT_SO_FAR, "start": ["2026-11-24T11:00:00Z"]}
    for view in ("oee", "downtime", "timeline", "reliability"):
        document = answer(view, later)
        assert (document["rows"], document["end"]) == ([], "2026-11-24T11:00:00+00:00"), view
    cursor.close()


# Case M12, an edge device whose clock is 2 minutes ahead of the hub's (or a third party sending a case stamped after
#   the hub's now): filler 06:00 producing, counts stamped 09:30 (100, scrap 4) and 10:01 (10), a stop stamped 10:02;
#   hub now 10:00, ?start=06:00&end=14:00. The device's 10:01 and 10:02 have happened (they are stored): the window
#   is cut just after the newest event in scope (10:02:00.001, the events' millisecond), not at the hub's now, so
#   OEE has all 110 units, as the scrap view over the same window has; time 14520.001 s, the stop's 0.001 s a
#   microstop. Asked to 10:01:30 (before the stop): cut there, the 10:01 count in. At a path with nothing after now
#   (the line's other cell), the cut is at now.
def test_m12_events_stamped_after_the_hubs_now_are_in_the_window(db: Database) -> None:
    feeder = Feeder(db)
    feeder.states(CELL, [(at(24, 6), 10000), (at(24, 10, 2), 40000)])
    feeder.states(f"{LINE}/capper", [(at(24, 6), 10000)])
    for when, total, scrap in ((at(24, 9, 30), 100, 4), (at(24, 10, 1), 10, 0)):
        assert feeder.send(CELL, "production_count", when, total=total, scrap=scrap).status == "stored"
    cursor = db.reader()

    def answer(view: str, params: dict[str, list[str]]) -> Any:
        return _document(cursor, view, params, at(24, 10))

    oee_doc = answer("oee", _SHIFT_SO_FAR)
    (row,) = oee_doc["rows"]
    (made,) = answer("scrap", _SHIFT_SO_FAR)["rows"]
    assert (oee_doc["end"], oee_doc["asked_end"]) == ("2026-11-24T10:02:00.001000+00:00", "2026-11-24T14:00:00+00:00")
    assert (
        (row["total"], row["good"], row["time_s"]) == (made["total"], made["good"], 14520.001) == (110, 106, 14520.001)
    )
    for view in ("downtime", "timeline", "reliability"):
        assert answer(view, _SHIFT_SO_FAR)["end"] == oee_doc["end"], view
    timeline = answer("timeline", _SHIFT_SO_FAR)
    assert [(r["state"], r["start"]) for r in timeline["rows"]][-1] == (40000, "2026-11-24T10:02:00+00:00")
    before_stop = answer("oee", {**_SHIFT_SO_FAR, "end": ["2026-11-24T10:01:30Z"]})
    assert (before_stop["end"], before_stop["rows"][0]["total"]) == ("2026-11-24T10:01:30+00:00", 110)
    capper = answer("downtime", {**_SHIFT_SO_FAR, "path": [f"{LINE}/capper"]})
    assert capper["end"] == "2026-11-24T10:00:00+00:00"
    cursor.close()


# Case M13: an edge node's backfill splits a failure in two after the hours were built (store-and-forward).
#   filler 07:00 producing, 08:00 failure, 09:00 producing; window [07:00, 10:00), now 11:00
#   first: availability 3600, APT 7200, FE 1 (TTR 3600): MTBF 7200, MTTR 3600
#   then the states the edge buffered arrive: 08:20 producing, 08:25 failure (the machine ran 5 minutes)
#   availability 1200 + 2100 = 3300, APT 7500; FE 2 (TTR 1200, 2100): MTBF 3750, MTTR 1650; the Pareto's
#   equipment failure: 3300 s, 2 stops
def test_m13_a_backfilled_restart_splits_a_failure(rig: Callable[..., Rig]) -> None:
    section = MesSection()
    case = rig(section, at(24, 11))
    feeder = case.feeder
    feeder.states(CELL, [(at(24, 7), 10000), (at(24, 8), 180000), (at(24, 9), 10000)])

    def read() -> tuple[tuple[object, ...], list[tuple[object, ...]]]:
        cursor = case.reader()
        (rel,) = reliability(cursor, section, path=CELL, start=at(24, 7), end=at(24, 10), now=at(24, 11))
        bars = _bars(downtime(cursor, section, path=CELL, start=at(24, 7), end=at(24, 10)))
        cursor.close()
        return _mtbf(rel), bars

    assert read() == ((7200.0, 1, 0, 3600.0, 7200.0, 3600.0), [("equipment failure", "availability", 3600.0, 0.0, 1,
                                                                 180000)])  # fmt: skip
    feeder.states(CELL, [(at(24, 8, 20), 10000), (at(24, 8, 25), 180000)])
    assert read() == ((7500.0, 2, 0, 3300.0, 3750.0, 1650.0), [("equipment failure", "availability", 3300.0, 0.0, 2,
                                                                 180000)])  # fmt: skip


# Case M14: two cells of a line (no line states) fail at once.
#   filler 06:00 producing, 07:00 failure, 07:30 producing; capper 06:00 producing, 07:10 failure, 07:20 producing
#   window [06:00, 08:00), now 09:00
#   cells: filler availability 1800, APT 5400, FE 1 (TTR 1800): MTBF 5400; capper 600, APT 6600, FE 1 (600)
#   line (its cells' union): only 07:10-07:20 has no cell producing: availability 600, APT 6600; its failures are
#   every cell's (docs/mes.md: a failure anywhere stops a series line), overlapping or not, each needing its
#   repair: FE 2, TTR 1800 + 600: MTTR 1200, MTBF 6600 / 2 = 3300
def test_m14_two_cells_of_a_line_fail_at_once(rig: Callable[..., Rig]) -> None:
    section = MesSection()
    case = rig(section, at(24, 9))
    capper = f"{LINE}/capper"
    case.feeder.states(CELL, [(at(24, 6), 10000), (at(24, 7), 180000), (at(24, 7, 30), 10000)])
    case.feeder.states(capper, [(at(24, 6), 10000), (at(24, 7, 10), 180000), (at(24, 7, 20), 10000)])
    cursor = case.reader()
    cells = reliability(cursor, section, path=LINE, start=at(24, 6), end=at(24, 8), now=at(24, 9))
    assert {r.path: _mtbf(r) for r in cells} == {
        CELL: (5400.0, 1, 0, 1800.0, 5400.0, 1800.0),
        capper: (6600.0, 1, 0, 600.0, 6600.0, 600.0),
    }
    (line,) = reliability(cursor, section, path=LINE, start=at(24, 6), end=at(24, 8), now=at(24, 9), by="line")
    assert _mtbf(line) == (6600.0, 2, 0, 2400.0, 3300.0, 1200.0)
    cursor.close()


# Case M15: a machine the CMMS knows before its PLC is connected (repair orders, no states or counts).
#   labeler: corrective orders L1 opened 07:00, started 07:15, closed 08:00; L2 09:00 / 09:00 / 09:30; no states
#   filler: producing from 06:00; window [06:00, 14:00), now 15:00
#   labeler: no machine data, so nothing operated and no failure event: operating 0, FE 0, MTBF and MTTR None;
#     from its orders: 2 repairs, mean repair (2700 + 1800) / 2 = 2250, mean response (900 + 0) / 2 = 450
#   filler: operating 28800, FE 0, no orders; the line (its filler's time): operating 28800, 2 repair orders
def test_m15_repair_orders_of_a_machine_without_states(rig: Callable[..., Rig]) -> None:
    section = MesSection()
    case = rig(section, at(24, 15))
    feeder = case.feeder
    labeler = f"{LINE}/labeler"
    feeder.states(CELL, [(at(24, 6), 10000)])
    for mid, opened, started, closed in (("L1", at(24, 7), at(24, 7, 15), at(24, 8)),
                                         ("L2", at(24, 9), at(24, 9), at(24, 9, 30))):  # fmt: skip
        times = {"opened_ms": ms(opened), "started_ms": ms(started), "closed_ms": ms(closed)}
        outcome = feeder.send(labeler, "maintenance_order", closed, maintenance_id=mid, status="closed", **times)
        assert outcome.status == "stored"
    cursor = case.reader()

    def rows(path: str, by: Literal["cell", "line"]) -> dict[str, tuple[object, ...]]:
        found = reliability(cursor, section, path=path, start=at(24, 6), end=at(24, 14), now=at(24, 15), by=by)
        return {r.path: (*_mtbf(r), r.repair_orders, r.mean_repair_s, r.mean_response_s) for r in found}

    alone = (0.0, 0, 0, 0.0, None, None, 2, 2250.0, 450.0)
    assert rows(labeler, "cell") == {labeler: alone}
    assert rows(LINE, "cell") == {CELL: (28800.0, 0, 0, 0.0, None, None, 0, None, None), labeler: alone}
    assert rows(LINE, "line") == {LINE: (28800.0, 0, 0, 0.0, None, None, 2, 2250.0, 450.0)}
    cursor.close()


# Case M16: an operator labels a 60 s stop the PLC did not report (it stayed "producing"): microstop_s 120.
#   filler producing 07:00-09:00; label [07:30, 07:31) state 40000 reason MANUAL; window [07:00, 09:00)
#   the stop is 60 s, a run of stops shorter than microstop_s: a microstop, performance loss inside APT:
#   availability 0, APT 7200, microstop_s 60; Pareto: MANUAL 60 s performance
def test_m16_a_short_stop_labelled_into_production_is_a_microstop(rig: Callable[..., Rig]) -> None:
    section = MesSection()
    case = rig(section, at(24, 10))
    case.feeder.states(CELL, [(at(24, 7), 10000)])
    _label(case.feeder, at(24, 9, 30), at(24, 7, 30), at(24, 7, 31), reason_code="MANUAL", state=40000)
    cursor = case.reader()
    (row,) = oee(cursor, section, path=CELL, start=at(24, 7), end=at(24, 9))
    bars = _bars(downtime(cursor, section, path=CELL, start=at(24, 7), end=at(24, 9)))
    cursor.close()
    assert ((_times(row), row.microstop_s), bars) == (
        ((7200, 0, 7200, 0, 7200), 60),
        [("MANUAL", "performance", 0.0, 60.0, 1, 40000)],
    )


# Case M17: what `current` shows of a stop an operator labels a failure from part of the way in.
#   filler 06:00 producing, 09:00 stop 40000; labels: L1 (sent 09:32) [09:40, 09:50) state 150000, hidden by
#   L2 (sent 09:35) [09:30, 11:00) state 180000 reason E-DRIVE (newer, covering it); window of current: its state
#   at 10:00: failure 180000, E-DRIVE, since 09:30 (the label's start: before it the cell was a stop, not a
#   failure; L1's edges change nothing shown); at 11:30: the stop again (L2 ended), since 11:00; at 09:15: the
#   stop since 09:00 (no label yet)
def test_m17_current_state_since_is_the_labelled_state_s(rig: Callable[..., Rig]) -> None:
    section = MesSection()
    case = rig(section, at(24, 12))
    case.feeder.states(CELL, [(at(24, 6), 10000), (at(24, 9), 40000)])
    _label(case.feeder, at(24, 9, 32), at(24, 9, 40), at(24, 9, 50), reason_code="CLEAN", state=150000)
    _label(case.feeder, at(24, 9, 35), at(24, 9, 30), at(24, 11), reason_code="E-DRIVE", state=180000)
    cursor = case.reader()

    def shown(now: datetime) -> tuple[object, ...]:
        (row,) = (row for row in current(cursor, section, now=now) if row.path == CELL)
        return row.state, row.reason_code, row.since

    assert shown(at(24, 10)) == (180000, "E-DRIVE", at(24, 9, 30))
    assert shown(at(24, 11, 30)) == (40000, None, at(24, 11))
    assert shown(at(24, 9, 15)) == (40000, None, at(24, 9))
    cursor.close()


# Case M17, a label that starts before the machine's latest state: filler 06:00 producing, 09:00 stop 40000;
#   labels: L1 (sent 09:35) [08:30, 11:00) state 180000 reason E-DRIVE, covering the stop's row and the half hour
#   of production before it; L2 (sent 09:36) [08:40, 08:50) state 10000 reason RUN (newer, inside L1, before the
#   row). The failure shown at 10:00 began at 08:50 (L2's end; the timeline's last failure starts there): since 08:50,
#   not the machine's 09:00; without L2: since 08:30. At 11:30 the stop again, since 11:00.
@pytest.mark.parametrize("newer_inside", [True, False])
def test_m17_a_label_begun_before_the_machine_s_state_is_shown_since_it_began(
    rig: Callable[..., Rig], newer_inside: bool
) -> None:
    section = MesSection()
    case = rig(section, at(24, 12))
    case.feeder.states(CELL, [(at(24, 6), 10000), (at(24, 9), 40000)])
    _label(case.feeder, at(24, 9, 35), at(24, 8, 30), at(24, 11), reason_code="E-DRIVE", state=180000)
    if newer_inside:
        _label(case.feeder, at(24, 9, 36), at(24, 8, 40), at(24, 8, 50), reason_code="RUN", state=10000)
    cursor = case.reader()

    def shown(now: datetime) -> tuple[object, ...]:
        (row,) = (row for row in current(cursor, section, now=now) if row.path == CELL)
        return row.state, row.reason_code, row.since

    began = at(24, 8, 50) if newer_inside else at(24, 8, 30)
    assert shown(at(24, 10)) == (180000, "E-DRIVE", began)
    assert shown(at(24, 11, 30)) == (40000, None, at(24, 11))
    params = {"path": [CELL], "start": ["2026-11-24T06:00:00Z"], "end": ["2026-11-24T10:00:00Z"]}
    timeline = _view(cursor, "timeline", params, at(24, 10))
    last = max(i for i, r in enumerate(timeline) if r["state"] != 180000)  # the failure shown now follows it
    assert (timeline[last]["end"], timeline[last + 1]["start"], timeline[-1]["end"]) == (
        began.isoformat(),
        began.isoformat(),
        "2026-11-24T10:00:00+00:00",
    )
    cursor.close()
