"""OEE's time ratios from the whole microseconds the times are summed in, not from their float seconds.

One cell, a window of 21,963,832 ms from 06:00 with a planned break of 6,369,886 ms inside and production
around it: no loss at all, so availability is exactly 1 (docs/mes.md: the KPIs are 0..1). In float seconds
PBT = covered - planned is 15593.945999999998 while APT = producing is 15593.946, and availability was
1.0000000000000002, published so on ``<path>/kpi/availability`` (seen on the demo's capper2).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from model.config import MesSection
from tests.uns.mes.mes_events import Feeder, at
from uns.mes.oee import OeeRow, oee
from uns.store.database import Database

CELL = "acme/dallas/bottling/line1/filler"
COVERED_MS = 21_963_832
PLANNED_MS = 6_369_886


def _cell_row(db: Database, section: MesSection, start: datetime, end: datetime) -> OeeRow:
    """The cell's one OEE row over ``start`` .. ``end``."""
    cursor = db.reader()
    try:
        (row,) = oee(cursor, section, path=CELL, start=start, end=end, by="cell")
    finally:
        cursor.close()
    return row


def test_no_loss_is_an_availability_of_exactly_one(db: Database) -> None:
    section = MesSection()
    start = at(24, 6)
    end = start + timedelta(milliseconds=COVERED_MS)
    back = at(24, 7) + timedelta(milliseconds=PLANNED_MS)
    Feeder(db, section).states(CELL, [(start, 10000), (at(24, 7), 150000), (back, 10000)])  # 150000: a break
    row = _cell_row(db, section, start, end)
    assert (row.time_s, row.planned_downtime_s) == (21_963.832, 6_369.886)
    assert row.planned_busy_time_s == row.actual_production_time_s == 15_593.946
    assert row.availability == 1.0


def test_availability_is_the_ratio_of_the_whole_microseconds(db: Database) -> None:
    # 2700.003 s of production and a 900.001 s failure: availability 2700.003 / 3600.004 = 0.75 exactly, as a hand
    # divides it; divided as float seconds it was 0.7500000000000001
    section = MesSection()
    start = at(24, 6)
    failed = start + timedelta(milliseconds=2_700_003)
    end = start + timedelta(milliseconds=3_600_004)
    Feeder(db, section).states(CELL, [(start, 10000), (failed, 180000)])
    row = _cell_row(db, section, start, end)
    assert (row.planned_busy_time_s, row.actual_production_time_s, row.availability_loss_s) == (
        3600.004,
        2700.003,
        900.001,
    )
    assert row.availability == 0.75


def test_the_ideal_cycle_time_of_one_product_is_the_products(db: Database) -> None:
    # two orders of one product (ideal cycle time 0.1786 s) at one cell, 1968 and 32 units: the ideal cycle time used
    # is the product's 0.1786 s, as a hand takes it; worked back from the ideal time, 2000 x 0.1786 / 2000, it was
    # 0.17859999999999998 s
    section = MesSection()
    feeder = Feeder(db, section)
    line = CELL.rsplit("/", 1)[0]
    assert feeder.send(line, "product_type", at(23, 12), product_id="P", ideal_cycle_time_s=0.1786).status == "stored"
    for order, start, complete in (("O1", at(24, 6), at(24, 7)), ("O2", at(24, 7), at(24, 8))):
        release = {"order_id": order, "action": "release", "product_id": "P", "quantity": 3000}
        assert feeder.send(line, "work_order", at(24, 5), **release).status == "stored"
        assert feeder.send(line, "work_order", start, order_id=order, action="start").status == "stored"
        assert feeder.send(line, "work_order", complete, order_id=order, action="complete").status == "stored"
    feeder.states(CELL, [(at(24, 6), 10000)])
    for order, total in (("O1", 1968), ("O2", 32)):
        assert feeder.send(CELL, "production_count", at(24, 6, 30), total=total, scrap=0, order_id=order).status == (
            "stored"
        )
    row = _cell_row(db, section, at(24, 6), at(24, 8))
    assert (row.total, row.ideal_cycle_time_s) == (2000, 0.1786)
    # 2000 x 0.1786 = 357.2 s of ideal time in 7200 s, as a hand multiplies; as binary floats 357.20000000000005 s
    # and a performance of 0.04961111111111112
    assert (row.performance_loss_s, row.performance) == (7200 - 357.2, 357.2 / 7200)


def test_a_product_without_units_leaves_the_other_products_ideal_cycle_time(db: Database) -> None:
    # 2000 units of P (0.1786 s) and a count of 0 units of Q (0.25 s) in the window: the units are all P's, so the
    # ideal cycle time is P's 0.1786 s; with Q's empty count taken for a second product it was the mean worked back,
    # 2000 x 0.1786 / 2000 = 0.17860000000000004
    section = MesSection()
    feeder = Feeder(db, section)
    line = CELL.rsplit("/", 1)[0]
    for product, ideal in (("P", 0.1786), ("Q", 0.25)):
        sent = feeder.send(line, "product_type", at(23, 12), product_id=product, ideal_cycle_time_s=ideal)
        assert sent.status == "stored"
    for order, product, start, complete in (("O1", "P", at(24, 6), at(24, 7)), ("O2", "Q", at(24, 7), at(24, 8))):
        release = {"order_id": order, "action": "release", "product_id": product, "quantity": 3000}
        assert feeder.send(line, "work_order", at(24, 5), **release).status == "stored"
        assert feeder.send(line, "work_order", start, order_id=order, action="start").status == "stored"
        assert feeder.send(line, "work_order", complete, order_id=order, action="complete").status == "stored"
    feeder.states(CELL, [(at(24, 6), 10000)])
    for order, when, total in (("O1", at(24, 6, 30), 2000), ("O2", at(24, 7, 30), 0)):
        assert feeder.send(CELL, "production_count", when, total=total, scrap=0, order_id=order).status == "stored"
    row = _cell_row(db, section, at(24, 6), at(24, 8))
    assert (row.total, row.ideal_cycle_time_s) == (2000, 0.1786)
