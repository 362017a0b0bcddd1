from __future__ import annotations

import pytest

from model.config import MesSection
from tests.uns.mes.mes_events import Feeder, at, ms
from uns.errors import BadArgument
from uns.mes.orders import order_progress
from uns.store.database import Database

LINE = "acme/dallas/bottling/line1"
FILLER, PACKER = f"{LINE}/filler", f"{LINE}/packer"
LINE2 = "acme/dallas/bottling/line2"


@pytest.fixture
def filled(db: Database) -> Database:
    feeder = Feeder(db, MesSection())
    send = feeder.send
    plan = {"planned_start_ms": ms(at(24, 6)), "planned_end_ms": ms(at(24, 14))}
    send(LINE, "work_order", at(24, 5), order_id="A", action="release", product_id="P", quantity=1000, **plan)
    send(LINE, "work_order", at(24, 5), order_id="B", action="release", product_id="P", quantity=500)
    send(LINE2, "work_order", at(24, 5), order_id="C", action="release", product_id="Q", quantity=10)
    send(LINE, "work_order", at(24, 6), order_id="A", action="start")
    for hour, filler, packer in ((7, (300, 10), (280, 5)), (8, (300, 0), (290, 10))):
        send(FILLER, "production_count", at(24, hour), total=filler[0], scrap=filler[1])
        send(PACKER, "production_count", at(24, hour), total=packer[0], scrap=packer[1])
    send(LINE, "work_order", at(24, 9), order_id="A", action="complete")
    send(LINE, "work_order", at(24, 9, 30), order_id="B", action="start")
    send(PACKER, "production_count", at(24, 10), total=100, scrap=0)
    return db


def test_progress_of_completed_running_and_released_orders(filled: Database) -> None:
    rows = order_progress(filled.reader(), now=at(24, 10, 30))
    assert [(o.order_id, o.status) for o in rows] == [("A", "completed"), ("B", "running"), ("C", "released")]
    done, running, released = rows
    # A: packer is the output (last by path): good 275 + 280 = 555; scrap at both cells 10 + 5 + 0 + 10 = 25
    assert (done.good, done.scrap, done.quantity, done.line) == (555, 25, 1000.0, LINE)
    assert done.percent_complete == pytest.approx(55.5)
    assert (done.planned_start, done.planned_end) == (at(24, 6), at(24, 14))
    assert (done.actual_start, done.actual_end, done.run_time_s) == (at(24, 6), at(24, 9), 3 * 3600.0)
    assert done.projected_end is None
    # B: 100 good in 1 h at 10:30; 400 to go at 100 per hour -> 4 h more
    assert (running.good, running.run_time_s) == (100, 3600.0)
    assert running.percent_complete == pytest.approx(20.0)
    assert running.projected_end == at(24, 14, 30)
    assert (released.good, released.actual_start, released.run_time_s, released.line) == (0, None, None, LINE2)


def test_progress_filters_and_output_cell(filled: Database) -> None:
    cursor = filled.reader()
    assert [o.order_id for o in order_progress(cursor, line=LINE, now=at(25, 0))] == ["A", "B"]
    assert [o.order_id for o in order_progress(cursor, status="released", now=at(25, 0))] == ["C"]
    (a,) = order_progress(cursor, status="completed", output_cells={LINE: FILLER}, now=at(25, 0))
    assert (a.good, a.scrap) == (590, 25)
    with pytest.raises(BadArgument, match="status"):
        order_progress(cursor, status="paused")  # type: ignore[arg-type]
