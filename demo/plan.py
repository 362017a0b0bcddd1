"""Pure planning core of the demo business: what the ERP, QMS and operators send, given the time and the counters.

No I/O and no clock: the shell (``demo.business``) calls ``begin`` once, ``tick`` with the
time, ``count`` with each output counter value and ``torque`` with each capper torque, and
publishes the ``Outgoing`` events it gets back, in order. Every event carries a stable
``event_id`` (order, lot, shift or sample based), so a re-sent event is stored once.

Time: recipe figures are plant seconds; the sim runs ``speed`` plant seconds per wall second,
so every duration here is divided by ``speed`` (an order planned for 30 min at x10 takes 3 min).
"""

from __future__ import annotations

import collections
import dataclasses
import random
from collections.abc import Sequence
from typing import Literal
from zoneinfo import ZoneInfo

import orjson

from bridges.sim.plant import COUNTER_MODULUS
from demo.catalog import BomLine, LineSetup
from demo.lots import LotIds, RawLots
from demo.quality import QualitySampler
from demo.shifts import ShiftDef, local_date, local_stamp, shift_at, shifts_around

__all__ = ["ORDER_MINUTES", "BusinessPlan", "Outgoing", "counter_delta"]

ORDER_MINUTES = (20.0, 40.0)
"""An order takes this long at the line's nominal rate (plant minutes)."""
_CHANGEOVER_S = 60.0
_CREW = 2

Body = dict[str, object]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Outgoing:
    """One MES event to publish: ``<path>/mes/<event>`` with a JSON body."""

    topic: str
    event: str
    body: Body
    retain: bool = False
    """Order start/complete are retained: the line's last order event survives a restart."""

    @property
    def payload(self) -> bytes:
        """The JSON body."""
        return orjson.dumps(self.body)


def counter_delta(previous: int | None, value: int, modulus: int = COUNTER_MODULUS) -> int:
    """Units counted from ``previous`` to ``value`` of a PLC counter.

    The first value is a baseline (0); a drop from the top tenth to the bottom tenth of the range
    is a wrap; any other drop is a reset, after which ``value`` units were counted.
    """
    if previous is None:
        return 0
    if value >= previous:
        return value - previous
    if previous > modulus * 0.9 and value < modulus * 0.1:
        return value + modulus - previous
    return value


@dataclasses.dataclass(slots=True, kw_only=True)
class _Order:
    order_id: str
    quantity: int
    planned_start_ms: int
    planned_end_ms: int
    duration_ms: int
    made: int = 0
    deadline_ms: int = 0


@dataclasses.dataclass(slots=True, kw_only=True)
class _Line:
    setup: LineSetup
    number: int
    quality: QualitySampler
    queue: collections.deque[_Order] = dataclasses.field(default_factory=collections.deque)
    running: _Order | None = None
    next_start_ms: int = 0
    planned_until_ms: int = 0
    last_count: int | None = None
    lot: str | None = None
    lot_count: int = 0
    syrup: tuple[str, float] | None = None
    """Current syrup batch and litres left."""
    fed: list[str] = dataclasses.field(default_factory=list)
    """Lots of ``feeds_from`` made since this line last consumed."""
    last_fed: str | None = None
    foreign: list[str] = dataclasses.field(default_factory=list)
    crew_shift: ShiftDef | None = None
    consumed: int = 0

    @property
    def tag(self) -> str:
        return self.setup.recipe.line_id.upper().replace("LINE", "L")


class BusinessPlan:
    """The demo plant's ERP, QMS and operator events for the lines in ``setups``.

    Args:
        setups: the lines (``demo.catalog.demo_line_setups``).
        tz: the site's time zone (shifts, ids).
        speed: plant seconds per wall second.
        seed: the same seed, times and counts give the same events.
        start_ms: wall time of ``begin``.
        queue_depth: orders released ahead per line.
        settle_ms: wall time before the first start (retained order events of a previous run arrive meanwhile).
    """

    def __init__(
        self,
        *,
        setups: Sequence[LineSetup],
        tz: ZoneInfo,
        speed: float,
        seed: int,
        start_ms: int,
        queue_depth: int = 3,
        settle_ms: int = 2000,
    ) -> None:
        self._tz = tz
        self._speed = speed
        self._start_ms = start_ms
        self._depth = queue_depth
        self._settle_ms = settle_ms
        self._rng = random.Random(f"{seed}:orders")  # noqa: S311 - a simulation, not crypto
        self._raw = RawLots(seed=seed, tz=tz)
        self._ids = LotIds(tz=tz)
        self._lines = {
            s.path: _Line(
                setup=s, number=i + 1, quality=QualitySampler(setup=s, seed=seed, speed=speed, start_ms=start_ms)
            )
            for i, s in enumerate(setups)
        }
        self._mine: set[str] = set()
        self._closed_foreign: set[str] = set()
        self._shifts_sent: set[tuple[str, str]] = set()
        self._day = local_date(start_ms, tz)

    # -- what to subscribe to ---------------------------------------------------------------------

    def count_topics(self) -> dict[str, str]:
        """Output counter topic -> line path."""
        return {f"{ln.setup.output_cell}/data/Production/GoodCount": p for p, ln in self._lines.items()}

    def torque_topics(self) -> dict[str, str]:
        """Capper torque topic -> line path."""
        return {
            f"{ln.setup.cell(ln.setup.recipe.torque_cell)}/data/Torque": p
            for p, ln in self._lines.items()
            if ln.setup.recipe.torque_cell
        }

    def order_topics(self) -> dict[str, str]:
        """Topics naming a line's running order (retained work orders, the MES ``kpi/order``) -> line path."""
        return {t: p for p in self._lines for t in (f"{p}/mes/work_order", f"{p}/kpi/order")}

    def running_order(self, line_path: str) -> str | None:
        """The order running on a line now."""
        order = self._lines[line_path].running
        return order.order_id if order else None

    # -- inputs -----------------------------------------------------------------------------------

    def begin(self) -> list[Outgoing]:
        """Product types, shifts, the first orders released and the crews clocked on."""
        now = self._start_ms
        out = [
            _event(
                ln.setup.path,
                "product_type",
                now,
                f"demo:product:{ln.setup.recipe.product_id}:{self._product_cycle_s(ln.setup)}",
                "erp",
                product_id=ln.setup.recipe.product_id,
                name=ln.setup.recipe.product_name,
                ideal_cycle_time_s=self._product_cycle_s(ln.setup),
                unit=ln.setup.recipe.unit,
            )
            for ln in self._lines.values()
        ]
        out += self._shifts(now)
        for line in self._lines.values():
            line.next_start_ms = line.planned_until_ms = now + self._settle_ms
            for _ in range(self._depth):
                out.append(self._release(line, now))
            out += self._crew(line, now)
        return out

    def tick(self, now_ms: int) -> list[Outgoing]:
        """Everything due by ``now_ms``: new days' shifts, crew changes, order starts and ends, samples."""
        out: list[Outgoing] = []
        if local_date(now_ms, self._tz) != self._day:
            self._day = local_date(now_ms, self._tz)
            out += self._shifts(now_ms)
        for line in self._lines.values():
            out += self._crew(line, now_ms)
            for order_id in line.foreign:
                self._closed_foreign.add(order_id)
                out.append(self._order_event(line, "complete", order_id, now_ms))
            line.foreign.clear()
            if line.running is not None and now_ms >= line.running.deadline_ms:
                out += self._complete(line, now_ms)
            if line.running is None and line.queue and now_ms >= line.next_start_ms:
                out += self._start(line, now_ms)
            if line.running is not None:
                for cell, body in line.quality.due(now_ms, line.running.order_id, line.lot):
                    out.append(Outgoing(topic=f"{cell}/mes/quality_inspection", event="quality_inspection", body=body))
        return out

    def count(self, line_path: str, value: int, now_ms: int) -> list[Outgoing]:
        """The line's output counter read ``value``: progress of the running order, lots, consumption."""
        line = self._lines.get(line_path)
        if line is None:
            return []
        delta = counter_delta(line.last_count, value)
        line.last_count = value
        order = line.running
        if order is None or delta <= 0:
            return []
        out: list[Outgoing] = []
        order.made += delta
        line.lot_count += delta
        size = line.setup.recipe.lot_size
        while line.lot_count >= size:
            line.lot_count -= size
            out += self._close_lot(line, size, now_ms)
        if order.made >= order.quantity:
            out += self._complete(line, now_ms)
        return out

    def torque(self, line_path: str, value: float) -> None:
        """The line's capper torque now."""
        line = self._lines.get(line_path)
        if line is not None:
            line.quality.torque(value)

    def order_seen(self, line_path: str, order_id: str) -> None:
        """Someone says ``order_id`` runs on the line: if it is not ours (a previous run's), complete it first."""
        line = self._lines.get(line_path)
        if line is None or line.running is not None or order_id in self._mine or order_id in self._closed_foreign:
            return
        if order_id not in line.foreign:
            line.foreign.append(order_id)

    # -- orders -----------------------------------------------------------------------------------

    def _wall_ms(self, plant_s: float) -> int:
        return round(plant_s * 1000 / self._speed)

    def _product_cycle_s(self, setup: LineSetup) -> float:
        """The product's ideal cycle time in wall seconds: MES times are wall times, the sim's are plant times."""
        return round(setup.product_cycle_time_s / self._speed, 6)

    def _release(self, line: _Line, now_ms: int) -> Outgoing:
        setup = line.setup
        minutes = self._rng.uniform(*ORDER_MINUTES)
        quantity = minutes * 60 / setup.nominal_cycle_time_s
        quantity = max(1, round(quantity / 100) * 100) if quantity >= 1000 else max(1, round(quantity))
        duration = self._wall_ms(quantity * setup.nominal_cycle_time_s)
        start = line.planned_until_ms
        order_id = f"WO-{line.tag}-{local_stamp(start, self._tz)}"
        while order_id in self._mine:
            start += 1000
            order_id = f"WO-{line.tag}-{local_stamp(start, self._tz)}"
        order = _Order(
            order_id=order_id,
            quantity=quantity,
            planned_start_ms=start,
            planned_end_ms=start + duration,
            duration_ms=duration,
        )
        line.planned_until_ms = order.planned_end_ms + self._wall_ms(_CHANGEOVER_S)
        line.queue.append(order)
        self._mine.add(order_id)
        bom = [
            {"material_id": b.material.material_id, "quantity_per_unit": b.per_unit, "unit": b.material.unit}
            for b in setup.recipe.bom
        ]
        return _event(
            setup.path,
            "work_order",
            now_ms,
            f"demo:wo:{order_id}:release",
            "erp",
            order_id=order_id,
            action="release",
            product_id=setup.recipe.product_id,
            quantity=quantity,
            unit=setup.recipe.unit,
            planned_start_ms=order.planned_start_ms,
            planned_end_ms=order.planned_end_ms,
            bom=bom,
        )

    def _order_event(self, line: _Line, action: Literal["start", "complete"], order_id: str, now_ms: int) -> Outgoing:
        event = _event(
            line.setup.path,
            "work_order",
            now_ms,
            f"demo:wo:{order_id}:{action}",
            "erp",
            order_id=order_id,
            action=action,
        )
        return dataclasses.replace(event, retain=True)

    def _start(self, line: _Line, now_ms: int) -> list[Outgoing]:
        order = line.queue.popleft()
        order.deadline_ms = max(order.planned_end_ms, now_ms + order.duration_ms)
        line.running = order
        out = [self._order_event(line, "start", order.order_id, now_ms)]
        recipe = line.setup.recipe
        if recipe.syrup is not None and (line.syrup is None or line.syrup[1] <= 0):
            out.append(self._syrup_batch(line, now_ms))
        line.lot, line.lot_count = self._ids.new(recipe.lot_prefix, now_ms), 0
        line.quality.restart(now_ms)
        return out

    def _complete(self, line: _Line, now_ms: int) -> list[Outgoing]:
        order = line.running
        if order is None:
            return []
        out = self._close_lot(line, line.lot_count, now_ms) if line.lot_count > 0 else []
        out.append(self._order_event(line, "complete", order.order_id, now_ms))
        line.running, line.lot, line.lot_count = None, None, 0
        line.next_start_ms = now_ms + self._wall_ms(_CHANGEOVER_S)
        line.planned_until_ms = max(line.planned_until_ms, line.next_start_ms)
        out.append(self._release(line, now_ms))
        return out

    # -- lots and material ------------------------------------------------------------------------

    def _close_lot(self, line: _Line, quantity: int, now_ms: int) -> list[Outgoing]:
        """Consume the BOM for ``quantity`` units and record the open lot as made from those lots."""
        order, lot = line.running, line.lot
        if order is None or lot is None:
            return []
        out: list[Outgoing] = []
        inputs: dict[tuple[str, str], float] = {}
        for bom in line.setup.recipe.bom:
            for lot_id, amount, made in self._take(line, bom, quantity * bom.per_unit, now_ms):
                out += made
                line.consumed += 1
                out.append(
                    _event(
                        line.setup.cell(bom.cell),
                        "material_consumption",
                        now_ms,
                        f"demo:mc:{order.order_id}:{line.consumed}",
                        "mes-terminal",
                        material_id=bom.material.material_id,
                        lot_id=lot_id,
                        quantity=amount,
                        unit=bom.material.unit,
                        order_id=order.order_id,
                    )
                )
                key = (lot_id, bom.material.material_id)
                inputs[key] = inputs.get(key, 0.0) + amount
        out.append(
            _event(
                line.setup.output_cell,
                "lot_production",
                now_ms,
                f"demo:lot:{lot}",
                "mes-terminal",
                lot_id=lot,
                product_id=line.setup.recipe.product_id,
                quantity=quantity,
                unit=line.setup.recipe.unit,
                order_id=order.order_id,
                input_lots=[
                    {"lot_id": lot_id, "material_id": material, "quantity": round(amount, 6)}
                    for (lot_id, material), amount in inputs.items()
                ],
            )
        )
        for other in self._lines.values():
            if other.setup.recipe.feeds_from == line.setup.recipe.line_id:
                other.fed.append(lot)
        line.lot = self._ids.new(line.setup.recipe.lot_prefix, now_ms)
        return out

    def _take(self, line: _Line, bom: BomLine, amount: float, now_ms: int) -> list[tuple[str, float, list[Outgoing]]]:
        """(lot id, amount, events made first) per lot ``amount`` of the BOM line came from."""
        if bom.made == "raw":
            return [(lot, used, []) for lot, used in self._raw.take(bom.material, amount, now_ms)]
        if bom.made == "bottled":
            lots = line.fed or ([line.last_fed] if line.last_fed else [])
            line.fed = []
            if lots:
                line.last_fed = lots[-1]
            return [(lot, round(amount / len(lots), 6), []) for lot in lots]
        out: list[tuple[str, float, list[Outgoing]]] = []
        while amount > 1e-9:
            made = [] if line.syrup is not None and line.syrup[1] > 0 else [self._syrup_batch(line, now_ms)]
            assert line.syrup is not None  # noqa: S101 - a batch was just made when none was left
            lot, left = line.syrup
            used = min(amount, left)
            line.syrup = (lot, left - used)
            amount -= used
            out.append((lot, round(used, 6), made))
        return out

    def _syrup_batch(self, line: _Line, now_ms: int) -> Outgoing:
        """A new syrup batch for the line, mixed from sugar, water and concentrate lots (level 1)."""
        syrup = line.setup.recipe.syrup
        assert syrup is not None  # noqa: S101 - only bottling lines have a syrup recipe
        lot = self._ids.new(f"SYR-{line.tag}", now_ms)
        inputs = [
            {"lot_id": raw, "material_id": material.material_id, "quantity": used}
            for material, per_batch in syrup.inputs
            for raw, used in self._raw.take(material, per_batch, now_ms)
        ]
        line.syrup = (lot, syrup.batch_size)
        body: Body = {"lot_id": lot, "product_id": syrup.material.material_id, "quantity": syrup.batch_size}
        body |= {"unit": syrup.material.unit, "input_lots": inputs}
        if line.running is not None:
            body["order_id"] = line.running.order_id
        return _event(line.setup.path, "lot_production", now_ms, f"demo:lot:{lot}", "syrup-room", **body)

    # -- calendar ---------------------------------------------------------------------------------

    def _shifts(self, now_ms: int) -> list[Outgoing]:
        out = []
        for site in sorted({ln.setup.site_path for ln in self._lines.values()}):
            for shift in shifts_around(now_ms, self._tz):
                if (site, shift.shift_id) in self._shifts_sent:
                    continue
                self._shifts_sent.add((site, shift.shift_id))
                breaks = [{"start_ms": shift.break_start_ms, "end_ms": shift.break_end_ms, "name": "break"}]
                out.append(
                    _event(
                        site,
                        "shift",
                        now_ms,
                        f"demo:shift:{shift.shift_id}",
                        "erp",
                        shift_id=shift.shift_id,
                        name=shift.name,
                        start_ms=shift.start_ms,
                        end_ms=shift.end_ms,
                        breaks=breaks,
                    )
                )
        return out

    def _crew(self, line: _Line, now_ms: int) -> list[Outgoing]:
        """Clock the crew of the shift running now on; the previous crew off at its shift's end."""
        shift = shift_at(now_ms, self._tz)
        old = line.crew_shift
        if old is not None and old.shift_id == shift.shift_id:
            return []
        out = []
        if old is not None:
            out += self._labor(line, old, "off", max(self._start_ms, min(now_ms, old.end_ms)))
        line.crew_shift = shift
        return out + self._labor(line, shift, "on", max(self._start_ms, shift.start_ms))

    def _labor(self, line: _Line, shift: ShiftDef, action: str, at_ms: int) -> list[Outgoing]:
        cells = [line.setup.cell(line.setup.recipe.bom[0].cell), line.setup.output_cell][:_CREW]
        out = []
        for slot, cell in enumerate(cells):
            operator = f"OP-{100 * line.number + 10 * shift.index + slot + 1}"
            body: Body = {"operator_id": operator, "action": action}
            if line.running is not None:
                body["order_id"] = line.running.order_id
            event_id = f"demo:labor:{shift.shift_id}:{operator}:{action}"
            out.append(_event(cell, "labor", at_ms, event_id, "operator", **body))
        return out


def _event(path: str, event: str, now_ms: int, event_id: str, source: str, **fields: object) -> Outgoing:
    body: Body = {"timestamp_ms": now_ms, "event_id": event_id, "source": source, **fields}
    return Outgoing(topic=f"{path}/mes/{event}", event=event, body=body)
