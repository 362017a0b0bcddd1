"""Pure core of the demo CMMS's work: maintenance work orders from what the machines do and the shift calendar.

No I/O and no clock: the shell (``demo.business``) calls ``begin`` once, ``state`` and
``fault_code`` with each machine's ``data/State`` and ``data/FaultCode`` values, ``tick`` with
the time, and writes the ``WorkOrderRow`` versions it gets back into the CMMS table. Every
duration is plant seconds divided by the sim's ``speed``, as in ``demo.plan``.

- **Breakdowns** (unplanned): a machine in ``FAULT`` for longer than an operator can clear
  (``CALL_AFTER_S``) gets a corrective order: opened then, with the fault code the PLC shows (the
  demo reason catalog's codes, ``bridges.sim.plant.FAULT_CODES``), started when the technician
  arrives (``RESPONSE_S`` later, if it is still down), closed when the machine leaves ``FAULT``.
- **Planned stops**: a machine entering ``PLANNED_STOP`` (the sim's preventive maintenance) gets a
  planned order, opened and started then, closed when the stop ends.
- **Scheduled**: at ``begin``, one planned order per production line for its first machine, in the
  next shift break (already planned downtime, so the OEE does not change): opened now, started and
  closed with the break.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from zoneinfo import ZoneInfo

from bridges.sim.plant import FAULT_CODES, MachineState
from demo.lots import LotIds
from demo.shifts import shifts_around

__all__ = ["CALL_AFTER_S", "RESPONSE_S", "MaintenancePlanner", "WorkOrderRow"]

CALL_AFTER_S = 30.0
"""A fault longer than this (plant seconds) is more than an operator clears: maintenance is called."""
RESPONSE_S = 15.0
"""Plant seconds from the call to the technician at the machine."""
_TECHNICIANS = ("T-11", "T-12", "T-21")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class WorkOrderRow:
    """One version of a CMMS work order row (times in ms since 1970 UTC)."""

    wo_id: str
    machine_path: str
    kind: str
    """``corrective`` or ``preventive``."""
    status: str
    """opened, started or closed."""
    description: str
    priority: int
    fault_code: str | None = None
    technician: str | None = None
    opened_ms: int
    started_ms: int | None = None
    closed_ms: int | None = None
    planned_start_ms: int | None = None
    planned_end_ms: int | None = None
    changed_ms: int
    """When this version was written (the row's ``updated_at``)."""


@dataclasses.dataclass(slots=True)
class _Machine:
    state: int | None = None
    fault_code: int = 0
    since_ms: int = 0
    """When the current state began."""
    order: WorkOrderRow | None = None


class MaintenancePlanner:
    """The CMMS's work orders for ``machines`` (cell paths reporting ``State``) and ``lines`` (their first machine).

    Args:
        machines: equipment paths of the machines followed.
        first_machines: per production line, the machine whose scheduled order the line gets.
        tz: the site's time zone (shift breaks, ids).
        speed: plant seconds per wall second.
    """

    def __init__(self, *, machines: Sequence[str], first_machines: Sequence[str], tz: ZoneInfo, speed: float) -> None:
        self._machines = {path: _Machine() for path in machines}
        self._first = list(first_machines)
        self._tz = tz
        self._speed = speed
        self._scheduled: list[WorkOrderRow] = []
        self._ids = LotIds(tz=tz)  # ids from a prefix and the local time, unique within the run
        self._calls = 0

    @property
    def machines(self) -> list[str]:
        """The machines followed (their ``data/State`` and ``data/FaultCode`` are wanted)."""
        return list(self._machines)

    def _wall_ms(self, plant_s: float) -> int:
        return round(plant_s * 1000 / self._speed)

    def _id(self, prefix: str, now_ms: int) -> str:
        return self._ids.new(prefix, now_ms)

    def begin(self, now_ms: int, still_open: Sequence[WorkOrderRow] = ()) -> list[WorkOrderRow]:
        """The scheduled orders: one per line in the next shift break that starts after ``now_ms``.

        ``still_open``: the CMMS's orders a previous run left open. Scheduled ones are taken over (a
        line that has one gets no other); any other is closed now, since the machines started afresh.
        """
        out: list[WorkOrderRow] = []
        for row in still_open:
            if row.kind == "preventive" and row.planned_start_ms is not None and row.planned_end_ms is not None:
                self._scheduled.append(row)
            else:
                started = row.started_ms if row.started_ms is not None else now_ms
                out.append(self._version(row, "closed", now_ms, started_ms=started, closed_ms=now_ms))
        pause = next(s for s in shifts_around(now_ms, self._tz) if s.break_start_ms > now_ms)
        planned = {row.machine_path for row in self._scheduled}
        for path in self._first:
            if path in planned:
                continue
            row = WorkOrderRow(
                wo_id=self._id(f"PM-{path.rsplit('/', 1)[-1].upper()}", now_ms),
                machine_path=path,
                kind="preventive",
                status="opened",
                description="Lubrication and visual inspection, in the shift break",
                priority=4,
                opened_ms=now_ms,
                planned_start_ms=pause.break_start_ms,
                planned_end_ms=pause.break_end_ms,
                changed_ms=now_ms,
            )
            self._scheduled.append(row)
            out.append(row)
        return out

    def fault_code(self, path: str, code: int) -> None:
        """The machine's ``FaultCode`` now."""
        machine = self._machines.get(path)
        if machine is not None:
            machine.fault_code = code

    def state(self, path: str, state: int, now_ms: int) -> list[WorkOrderRow]:
        """The machine's ``State`` now: a planned stop opens a planned order; leaving one closes what was open."""
        machine = self._machines.get(path)
        if machine is None or state == machine.state:
            return []
        out: list[WorkOrderRow] = []
        order = machine.order
        if order is not None and order.status != "closed":
            started = order.started_ms if order.started_ms is not None else now_ms
            out.append(self._version(order, "closed", now_ms, started_ms=started, closed_ms=now_ms))
            machine.order = None
        machine.state, machine.since_ms = state, now_ms
        if state == MachineState.PLANNED_STOP:
            row = WorkOrderRow(
                wo_id=self._id(f"PM-{path.rsplit('/', 1)[-1].upper()}", now_ms),
                machine_path=path,
                kind="preventive",
                status="started",
                description="Preventive maintenance (planned stop)",
                priority=3,
                technician=self._technician(),
                opened_ms=now_ms,
                started_ms=now_ms,
                changed_ms=now_ms,
            )
            machine.order = row
            out.append(row)
        return out

    def tick(self, now_ms: int) -> list[WorkOrderRow]:
        """Calls for long faults, technicians arriving, scheduled orders starting and ending."""
        out: list[WorkOrderRow] = []
        for path, machine in self._machines.items():
            if machine.state != MachineState.FAULT:
                continue
            order = machine.order
            if order is None and now_ms - machine.since_ms >= self._wall_ms(CALL_AFTER_S):
                code = machine.fault_code
                machine.order = order = WorkOrderRow(
                    wo_id=self._id(f"CM-{path.rsplit('/', 1)[-1].upper()}", now_ms),
                    machine_path=path,
                    kind="corrective",
                    status="opened",
                    description=f"Breakdown: {FAULT_CODES.get(code, 'unknown fault')}",
                    priority=2,
                    fault_code=str(code) if code else None,
                    opened_ms=now_ms,
                    changed_ms=now_ms,
                )
                out.append(order)
            elif (
                order is not None and order.status == "opened" and now_ms - order.opened_ms >= self._wall_ms(RESPONSE_S)
            ):
                machine.order = order = self._version(
                    order, "started", now_ms, started_ms=now_ms, technician=self._technician()
                )
                out.append(order)
        for index, row in enumerate(self._scheduled):
            start, end = row.planned_start_ms or 0, row.planned_end_ms or 0
            if row.status == "opened" and now_ms >= start:
                row = self._version(row, "started", now_ms, started_ms=start, technician=self._technician())
                out.append(row)
            if row.status == "started" and now_ms >= end:
                row = self._version(row, "closed", now_ms, closed_ms=end)
                out.append(row)
            self._scheduled[index] = row
        self._scheduled = [row for row in self._scheduled if row.status != "closed"]
        return out

    def _technician(self) -> str:
        self._calls += 1
        return _TECHNICIANS[self._calls % len(_TECHNICIANS)]

    @staticmethod
    def _version(row: WorkOrderRow, status: str, now_ms: int, **changes: object) -> WorkOrderRow:
        return dataclasses.replace(row, status=status, changed_ms=now_ms, **changes)  # type: ignore[arg-type]
