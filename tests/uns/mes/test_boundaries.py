"""Boundaries (issue 15, point 6): every interval is half-open, [start, end).

A count stamped exactly at an end instant belongs to what starts there: the next order (an order
runs from its start, inclusive, to its complete, exclusive), the next shift, the next window or
group (day, hour); a window [start, end) holds a count at ``start`` and not one at ``end``. Time
works the same way: a state change, a break's end, a label's end or a shift's end at an instant
starts the next piece there.

One cell on line1, 2026-11-24 UTC: shifts early [06:00, 14:00) and late [14:00, 22:00);
order O1 runs [06:00, 10:00), O2 [10:00, ...); the cell produces 06:00-22:00.
Counts without an order (each 100 units, 1 scrap), at 06:00, 10:00 and 14:00 exactly, and 13:59:59.999.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from model.config import MesSection
from tests.uns.mes.mes_events import Feeder, at, ms
from uns.mes.downtime import current, downtime, state_timeline
from uns.mes.oee import oee
from uns.mes.orders import order_progress
from uns.store.database import Database

LINE = "acme/dallas/bottling/line1"
CELL = f"{LINE}/filler"
LAST_MS = at(24, 14) - timedelta(milliseconds=1)


def _plant(feeder: Feeder) -> dict[str, str | None]:
    send = feeder.send
    for product, ict in (("P1", 1.0), ("P2", 2.0)):
        assert send(LINE, "product_type", at(23, 12), product_id=product, ideal_cycle_time_s=ict).status == "stored"
    for order, product in (("O1", "P1"), ("O2", "P2")):
        release = {"order_id": order, "action": "release", "product_id": product, "quantity": 1000}
        assert send(LINE, "work_order", at(24, 5), **release).status == "stored"
    assert send(LINE, "work_order", at(24, 6), order_id="O1", action="start").status == "stored"
    assert send(LINE, "work_order", at(24, 10), order_id="O1", action="complete").status == "stored"
    assert send(LINE, "work_order", at(24, 10), order_id="O2", action="start").status == "stored"
    for shift, start, end in (("early", at(24, 6), at(24, 14)), ("late", at(24, 14), at(24, 22))):
        body = {"shift_id": shift, "start_ms": ms(start), "end_ms": ms(end)}
        assert send(LINE, "shift", at(23, 20), **body).status == "stored"
    feeder.states(CELL, [(at(24, 6), 10000), (at(24, 22), 160000)])
    orders: dict[str, str | None] = {}
    for when in (at(24, 6), at(24, 10), LAST_MS, at(24, 14)):
        outcome = send(CELL, "production_count", when, total=100, scrap=1)
        assert outcome.status == "stored"
        orders[when.isoformat()] = outcome.order_id
    return orders


def test_a_count_at_an_order_s_end_belongs_to_the_order_that_starts_there(db: Database) -> None:
    orders = _plant(Feeder(db, MesSection()))
    assert orders == {
        at(24, 6).isoformat(): "O1",  # O1's start instant: O1
        at(24, 10).isoformat(): "O2",  # O1's complete = O2's start: O2
        LAST_MS.isoformat(): "O2",
        at(24, 14).isoformat(): "O2",
    }
    cursor = db.reader()
    by_order = {
        row.group: row for row in oee(cursor, MesSection(), path=CELL, start=at(24, 0), end=at(25, 0), by="order")
    }
    assert {name: row.total for name, row in by_order.items()} == {"O1": 100, "O2": 300}
    # ideal cycle time per order's product: O1 1.0 s, O2 2.0 s (the 10:00 count is O2's)
    assert by_order["O1"].ideal_cycle_time_s == 1.0
    assert by_order["O2"].ideal_cycle_time_s == 2.0
    progress = {row.order_id: (row.good, row.scrap) for row in order_progress(cursor, now=at(24, 23))}
    assert progress == {"O1": (99, 1), "O2": (297, 3)}
    cursor.close()


def test_a_count_naming_its_order_at_the_order_s_end_stays_that_order_s(db: Database) -> None:
    feeder = Feeder(db, MesSection())
    _plant(feeder)
    # the ERP posts O1's final count stamped at O1's complete instant, naming O1
    outcome = feeder.send(CELL, "production_count", at(24, 10), total=50, scrap=0, order_id="O1")
    assert (outcome.status, outcome.order_id) == ("stored", "O1")
    cursor = db.reader()
    by_order = {
        row.group: row for row in oee(cursor, MesSection(), path=CELL, start=at(24, 0), end=at(25, 0), by="order")
    }
    assert {name: (row.total, row.good) for name, row in by_order.items()} == {"O1": (150, 149), "O2": (300, 297)}
    assert by_order["O1"].ideal_cycle_time_s == 1.0  # its own product's
    # O1's run [06:00, 10:00) = 14400 s producing; units 150 x 1.0 s
    assert by_order["O1"].performance == pytest.approx(150 / 14400, rel=1e-12)
    progress = {row.order_id: (row.good, row.scrap) for row in order_progress(cursor, now=at(24, 23))}
    assert progress == {"O1": (149, 1), "O2": (297, 3)}
    # grouped by time the count is at 10:00: the 10:00-11:00 hour's
    by_hour = {
        r.start: r.total for r in oee(cursor, MesSection(), path=CELL, start=at(24, 9), end=at(24, 11), by="hour")
    }
    assert by_hour == {at(24, 9): 0, at(24, 10): 150}
    cursor.close()


def test_a_count_at_a_shift_s_end_belongs_to_the_next_shift(db: Database) -> None:
    _plant(Feeder(db, MesSection()))
    cursor = db.reader()
    by_shift = {r.group: r for r in oee(cursor, MesSection(), path=CELL, start=at(24, 0), end=at(25, 0), by="shift")}
    assert {name: (row.start, row.end, row.total) for name, row in by_shift.items()} == {
        "early": (at(24, 6), at(24, 14), 300),  # 06:00, 10:00 and 13:59:59.999
        "late": (at(24, 14), at(24, 22), 100),  # 14:00
    }
    # the early shift: 28800 s, units 100 x 1.0 + 200 x 2.0 = 500 s of ideal time
    assert by_shift["early"].performance == pytest.approx(500 / 28800, rel=1e-12)
    # `current` at the shift change instant covers the late shift, which holds the 14:00 count
    (row,) = [r for r in current(cursor, MesSection(), now=at(24, 14, 0, 1)) if r.path == CELL]
    assert (row.shift_id, row.oee.total, row.order_id) == ("late", 100, "O2")
    (row,) = [r for r in current(cursor, MesSection(), now=at(24, 14)) if r.path == CELL]
    assert (row.shift_id, row.order_id, row.state) == ("late", "O2", 10000)
    assert (row.oee.total, row.oee.time_s, row.oee.availability) == (0, 0, None)  # [14:00, 14:00) is empty
    cursor.close()


@pytest.mark.parametrize(
    ("start", "end", "total"),
    [
        (at(24, 6), at(24, 10), 100),  # holds 06:00, not 10:00
        (at(24, 10), at(24, 14), 200),  # holds 10:00 and 13:59:59.999, not 14:00
        (at(24, 14), at(24, 22), 100),
        (at(24, 6), at(24, 6, 0, 0) + timedelta(milliseconds=1), 100),  # one millisecond holds its start
        (LAST_MS, at(24, 14), 100),
    ],
)
def test_a_window_holds_its_start_and_not_its_end(db: Database, start: datetime, end: datetime, total: int) -> None:
    _plant(Feeder(db, MesSection()))
    cursor = db.reader()
    (row,) = oee(cursor, MesSection(), path=CELL, start=start, end=end, by="cell")
    assert row.total == total
    assert row.time_s == (end - start).total_seconds()
    by_hour = {
        r.start: r.total for r in oee(cursor, MesSection(), path=CELL, start=at(24, 6), end=at(24, 15), by="hour")
    }
    assert (by_hour[at(24, 9)], by_hour[at(24, 10)], by_hour[at(24, 13)], by_hour[at(24, 14)]) == (0, 100, 100, 100)
    cursor.close()


def test_time_at_an_end_instant_starts_the_next_piece(db: Database) -> None:
    section = MesSection()
    feeder = Feeder(db, section)
    body = {
        "shift_id": "early", "start_ms": ms(at(24, 6)), "end_ms": ms(at(24, 14)),
        "breaks": [{"start_ms": ms(at(24, 10)), "end_ms": ms(at(24, 10, 30))}],
    }  # fmt: skip
    assert feeder.send(LINE, "shift", at(23, 20), **body).status == "stored"
    feeder.states(CELL, [(at(24, 6), 10000), (at(24, 10), 180000), (at(24, 11), 10000)])
    label = {"start_ms": ms(at(24, 10)), "end_ms": ms(at(24, 10, 45)), "reason_code": "JAM"}
    assert feeder.send(CELL, "downtime_reason", at(24, 12), **label).status == "stored"
    cursor = db.reader()
    got = [
        (i.start, i.end, i.reason_code, i.loss)
        for i in state_timeline(cursor, section, path=CELL, start=at(24, 9), end=at(24, 12))
    ]
    assert got == [
        (at(24, 9), at(24, 10), None, "none"),
        (at(24, 10), at(24, 10, 30), "JAM", "planned"),  # the break [10:00, 10:30)
        (at(24, 10, 30), at(24, 10, 45), "JAM", "availability"),  # the label [10:00, 10:45)
        (at(24, 10, 45), at(24, 11), None, "availability"),
        (at(24, 11), at(24, 12), None, "none"),
    ]
    bars = downtime(cursor, section, path=CELL, start=at(24, 6), end=at(24, 14))
    assert sorted((bar.reason, bar.duration_s) for bar in bars) == [("JAM", 900), ("equipment failure", 900)]
    (bar,) = downtime(cursor, section, path=CELL, start=at(24, 10, 45), end=at(24, 14))
    assert (bar.reason, bar.duration_s) == ("equipment failure", 900)
    cursor.close()
