"""The demo CMMS planner (pure): breakdown orders from long faults, planned ones from planned stops and shift breaks."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from bridges.sim.plant import FAULT_CODES, MachineState
from demo.maintenance import CALL_AFTER_S, RESPONSE_S, MaintenancePlanner, WorkOrderRow
from demo.shifts import shifts_around

TZ = ZoneInfo("America/Chicago")
T0 = 1_764_000_000_000  # 2025-11-24 10:00 local, inside the early shift (break 10:00-10:30)
FILLER, CAPPER = "acme/dallas/bottling/line1/filler", "acme/dallas/bottling/line1/capper"


def planner(speed: float = 1.0) -> MaintenancePlanner:
    return MaintenancePlanner(machines=[FILLER, CAPPER], first_machines=[FILLER], tz=TZ, speed=speed)


def fault(plan: MaintenancePlanner, path: str, code: int, start: int, seconds: float) -> list[WorkOrderRow]:
    """The machine faulted for ``seconds`` of wall time, ticked every second, then running again."""
    plan.fault_code(path, code)
    out = plan.state(path, MachineState.FAULT, start)
    for second in range(1, int(seconds) + 1):
        out += plan.tick(start + second * 1000)
    return out + plan.state(path, MachineState.RUNNING, start + round(seconds * 1000))


@pytest.mark.parametrize("speed", [1.0, 10.0])
def test_a_long_fault_is_a_breakdown_order_opened_started_closed_with_its_fault_code(speed: float) -> None:
    plan = planner(speed)
    plan.state(CAPPER, MachineState.RUNNING, T0)
    down_s = (CALL_AFTER_S + RESPONSE_S + 20) / speed
    rows = fault(plan, CAPPER, 104, T0 + 1000, down_s)
    assert [(r.status, r.kind, r.fault_code, r.machine_path) for r in rows] == [
        ("opened", "corrective", "104", CAPPER),
        ("started", "corrective", "104", CAPPER),
        ("closed", "corrective", "104", CAPPER),
    ]
    assert len({r.wo_id for r in rows}) == 1
    assert rows[0].wo_id.startswith("CM-CAPPER-")
    assert rows[0].description == f"Breakdown: {FAULT_CODES[104]}"
    opened, started, closed = rows
    assert opened.opened_ms - (T0 + 1000) == pytest.approx(CALL_AFTER_S * 1000 / speed, abs=1000)
    assert started.started_ms is not None
    assert started.started_ms - opened.opened_ms == pytest.approx(RESPONSE_S * 1000 / speed, abs=1000)
    assert closed.closed_ms == T0 + 1000 + round(down_s * 1000)
    assert (closed.started_ms, closed.opened_ms, closed.technician) == (
        started.started_ms,
        opened.opened_ms,
        started.technician,
    )
    assert [r.changed_ms for r in rows] == sorted(r.changed_ms for r in rows)


def test_a_fault_an_operator_clears_is_no_order_and_one_ended_before_the_technician_came_closes_anyway() -> None:
    plan = planner()
    assert fault(plan, FILLER, 101, T0, CALL_AFTER_S - 2) == []
    rows = fault(plan, FILLER, 102, T0 + 60_000, CALL_AFTER_S + 3)
    assert [r.status for r in rows] == ["opened", "closed"]
    assert rows[1].started_ms == rows[1].closed_ms  # work began and ended as the machine came back


def test_a_planned_stop_is_a_planned_order_for_its_length() -> None:
    plan = planner()
    rows = plan.state(FILLER, MachineState.PLANNED_STOP, T0)
    rows += plan.tick(T0 + 600_000)
    rows += plan.state(FILLER, MachineState.RUNNING, T0 + 700_000)
    assert [(r.status, r.kind, r.started_ms, r.closed_ms) for r in rows] == [
        ("started", "preventive", T0, None),
        ("closed", "preventive", T0, T0 + 700_000),
    ]


def test_scheduled_orders_fall_in_the_next_break_and_follow_it() -> None:
    plan = planner()
    now = T0 + 60 * 60_000  # 11:00: the early shift's break is over, the late shift's is next
    (row,) = plan.begin(now)
    pause = next(s for s in shifts_around(now, TZ) if s.break_start_ms > now)
    assert pause.name == "late"
    assert (row.machine_path, row.status, row.kind) == (FILLER, "opened", "preventive")
    assert (row.planned_start_ms, row.planned_end_ms) == (pause.break_start_ms, pause.break_end_ms)
    assert plan.tick(pause.break_start_ms - 1) == []
    (started,) = plan.tick(pause.break_start_ms + 5)
    (closed,) = plan.tick(pause.break_end_ms)
    assert (started.status, started.started_ms) == ("started", pause.break_start_ms)
    assert (closed.status, closed.closed_ms, closed.wo_id) == ("closed", pause.break_end_ms, row.wo_id)
    assert plan.tick(pause.break_end_ms + 60_000) == []


def test_unknown_machines_and_repeated_states_change_nothing() -> None:
    plan = planner()
    assert plan.state("acme/dallas/bottling/line9/x", MachineState.FAULT, T0) == []
    assert plan.state(FILLER, MachineState.RUNNING, T0) == []
    assert plan.state(FILLER, MachineState.RUNNING, T0 + 1000) == []
    assert plan.machines == [FILLER, CAPPER]


def test_a_restart_takes_over_the_scheduled_orders_and_closes_what_the_machines_no_longer_show() -> None:
    first = planner()
    now = T0 + 60 * 60_000
    (scheduled,) = first.begin(now)
    first.state(CAPPER, MachineState.RUNNING, now)
    broken = fault(first, CAPPER, 103, now, CALL_AFTER_S + 1)[:1]  # opened; the hub stops before it is closed
    again = planner()
    later = now + 120_000
    rows = again.begin(later, [scheduled, *broken])
    assert [(r.wo_id, r.status, r.closed_ms, r.started_ms) for r in rows] == [(broken[0].wo_id, "closed", later, later)]
    assert again.begin(later + 1) == []  # the line has its scheduled order already: no second one
    pause = next(s for s in shifts_around(now, TZ) if s.break_start_ms > now)
    (started,) = again.tick(pause.break_start_ms)
    assert (started.wo_id, started.status) == (scheduled.wo_id, "started")
