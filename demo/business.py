"""The demo plant's business as a long-lived part: the plan writes into the ERP and QMS; operators publish over MQTT.

A thin async shell around ``demo.plan.BusinessPlan``: it reads the lines' output counters,
the cappers' torque and any running order a previous run left (retained ``work_order`` and the
MES adapter's ``kpi/order``), ticks the plan with the clock, and hands each of the plan's events,
in order, to whoever owns it: product types and order releases are written into the ERP,
inspections and a lab result of each syrup batch (``demo.lab``) into the QMS (the HTTP sources
bring them to the MES from there); what operators and machines say (order start and complete,
labor, material, lots, shifts) is published on the equipment topics (QoS 1), as terminals would.
The maintenance planner (``demo.maintenance``) follows the machines' ``State`` and ``FaultCode``
and writes work orders into the CMMS table.

An operator cannot start an order the shop floor has not been given: an event naming an order this
run released waits (and the events after it, so the order is kept) until the order's release has
come back over MQTT from the ``erp-orders`` connector, so the MES never sees a start before its release.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from types import TracebackType
from typing import Self
from zoneinfo import ZoneInfo

import orjson
from pydantic import ValidationError

from demo.catalog import demo_line_setups
from demo.lab import SyrupLab
from demo.maintenance import MaintenancePlanner, WorkOrderRow
from demo.plan import BusinessPlan, Outgoing
from demo.systems import DemoSystems
from model.config import SimSection
from model.envelope import USABLE_QUALITIES, EnvelopeError, Reading, read_envelope
from model.equipment import Plant
from model.mes import EVENT_MODELS, Inspection, LotProduction, MesEvent, OrderAction, ProductType, WorkOrder
from uns.clock import now_ms
from uns.connect import ClientFactory
from uns.event_wait import set_within
from uns.mqtt.types import Message, PubSub

__all__ = ["CLIENT_ID", "DemoBusiness"]

log = logging.getLogger(__name__)

CLIENT_ID = "uns-demo-business"
"""The MQTT client id of the demo's operators and terminals."""
_HOLD_WARN_S = 30.0


class DemoBusiness:
    """What the demo plant's planners, inspectors and operators do: products, orders, inspections, shifts, lots.

    ``async with DemoBusiness(...) as business:`` opens the client and subscribes; ``await
    business.run()`` releases the first orders and works until cancelled.

    Args:
        plant: the plant file (lines it shares with the simulated plant get business events).
        clients: opens the MQTT client (``uns-demo-business``).
        systems: the ERP and QMS (entered) the plan writes into.
        settings: the sim section (``speed`` scales every business interval like the machines).
        tz: the site's time zone (shifts).
        seed: the same seed gives the same orders, lots and samples for the same counts.
        clock: wall time in ms since 1970 UTC; tests pass a fast one.
        tick_s: real seconds between plan ticks (1 s: business events to the second, as the machines are read).
        settle_s: seconds of ``clock`` before the first order starts (a previous run's running order is
            completed first: its retained events arrive meanwhile).
    """

    name = "demo-business"

    def __init__(
        self,
        *,
        plant: Plant,
        clients: ClientFactory,
        systems: DemoSystems,
        settings: SimSection,
        tz: str,
        seed: int,
        clock: Callable[[], int] = now_ms,
        tick_s: float = 1.0,
        settle_s: float = 2.0,
    ) -> None:
        self._setups = demo_line_setups(plant)
        machines = sorted(
            path for path in plant.equipment_paths() if path.count("/") == 4 and plant.metric_meta(path, "State")
        )
        first = [setup.cell(setup.recipe.bom[0].cell) for setup in self._setups]
        self._lab = SyrupLab(seed=seed)
        self._maintenance = MaintenancePlanner(
            machines=machines, first_machines=first, tz=ZoneInfo(tz), speed=settings.speed
        )
        self._clients = clients
        self._systems = systems
        self._speed = settings.speed
        self._tz = ZoneInfo(tz)
        self._seed = seed
        self._clock = clock
        self._tick_s = tick_s
        self._settle_s = settle_s
        self._client: PubSub | None = None
        self._plan: BusinessPlan | None = None
        self._stack = contextlib.AsyncExitStack()
        self._outbox: asyncio.Queue[Outgoing | WorkOrderRow] = asyncio.Queue()
        self._awaiting: dict[str, asyncio.Event] = {}
        """Orders this run released into the ERP whose release has not come back over MQTT yet."""
        self.counters = {
            "published": 0,
            "erp": 0,
            "qms": 0,
            "lab": 0,
            "cmms": 0,
            "held": 0,
            "invalid": 0,
            "counts": 0,
            "other": 0,
        }

    def health(self) -> dict[str, object]:
        """Counters for ``/api/health``."""
        return dict(self.counters)

    @property
    def plan(self) -> BusinessPlan | None:
        """The running plan (None before ``run``)."""
        return self._plan

    def _new_plan(self, start_ms: int) -> BusinessPlan:
        return BusinessPlan(
            setups=self._setups,
            tz=self._tz,
            speed=self._speed,
            seed=self._seed,
            start_ms=start_ms,
            settle_ms=round(self._settle_s * 1000),
        )

    async def __aenter__(self) -> Self:
        probe = self._new_plan(self._clock())  # the topics only: the real plan starts with run()
        filters = sorted(self._handlers(probe))
        async with contextlib.AsyncExitStack() as stack:
            client = await stack.enter_async_context(self._clients(client_id=CLIENT_ID))
            if filters:
                await client.subscribe(filters, qos=1)
            self._client = client
            self._stack = stack.pop_all()
        log.info(
            "demo business: %d lines (%s), speed x%g",
            len(self._setups),
            ", ".join(s.recipe.line_id for s in self._setups),
            self._speed,
        )
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._client = None
        await self._stack.__aexit__(exc_type, exc, tb)

    async def run(self) -> None:
        """Release the first orders, then follow the counters and the clock until cancelled."""
        client = self._client
        if client is None:
            raise RuntimeError("DemoBusiness.run() needs `async with business:` first")
        now = self._clock()
        plan = self._plan = self._new_plan(now)
        self._emit(plan.begin())
        self._emit(self._maintenance.begin(now, await self._systems.cmms.open_orders()))
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._deliver(client), name="uns.demo-business.deliver")
            tasks.create_task(self._read(client, plan), name="uns.demo-business.read")
            tasks.create_task(self._tick(plan), name="uns.demo-business.tick")

    def _emit(self, events: list[Outgoing] | list[WorkOrderRow]) -> None:
        for event in events:
            self._outbox.put_nowait(event)

    async def _deliver(self, client: PubSub) -> None:
        while True:
            event = await self._outbox.get()
            if isinstance(event, WorkOrderRow):
                await self._systems.cmms.write(event)
                self.counters["cmms"] += 1
                continue
            try:
                body = EVENT_MODELS[event.event].model_validate(event.body)
            except ValidationError as exc:  # our own bug: say so, keep the rest flowing
                self.counters["invalid"] += 1
                log.error("demo business: invalid %s on %s: %s", event.event, event.topic, exc)
                continue
            path = event.topic.rsplit("/mes/", 1)[0]
            if isinstance(body, WorkOrder) and body.action is OrderAction.release:
                self._awaiting.setdefault(body.order_id, asyncio.Event())
                await self._systems.erp.release(path, body)
                self.counters["erp"] += 1
                continue
            await self._hold_until_released(body)
            if isinstance(body, ProductType):
                await self._systems.erp.put_product(path, body)
                self.counters["erp"] += 1
            elif isinstance(body, Inspection):
                await self._systems.qms.record((body.event_id or "").removeprefix("demo:"), "inspection", path, body)
                self.counters["qms"] += 1
            else:
                await client.publish(event.topic, event.payload, qos=1, retain=event.retain)
                self.counters["published"] += 1
                if isinstance(body, LotProduction):
                    await self._lab_result(path, body)

    async def _lab_result(self, path: str, lot: LotProduction) -> None:
        """A syrup batch goes to the lab: its Brix is a lab result in the QMS."""
        result = self._lab.result(lot)
        if result is not None:
            await self._systems.qms.record(result.event_id or lot.lot_id, "lab", path, result)
            self.counters["lab"] += 1

    async def _hold_until_released(self, body: MesEvent) -> None:
        """Wait while ``body`` names an order whose release the MES may not have yet."""
        order_id = getattr(body, "order_id", None)
        waiting = self._awaiting.get(order_id) if isinstance(order_id, str) else None
        if waiting is None:
            return
        self.counters["held"] += 1
        while not await set_within(waiting, _HOLD_WARN_S):
            log.warning(
                "demo business: the release of order %s has not come back from the erp-orders connector for %g s "
                "(is it up? see its api device): the events after it wait",
                order_id,
                _HOLD_WARN_S,
            )

    async def _tick(self, plan: BusinessPlan) -> None:
        while True:
            now = self._clock()
            self._emit(plan.tick(now))
            self._emit(self._maintenance.tick(now))
            await asyncio.sleep(self._tick_s)

    async def _read(self, client: PubSub, plan: BusinessPlan) -> None:
        handlers = self._handlers(plan)
        async for message in client.messages():
            handler = handlers.get(message.topic)
            if handler is None:
                self.counters["other"] += 1
            else:
                handler(message)

    def _handlers(self, plan: BusinessPlan) -> dict[str, Callable[[Message], None]]:
        """Topic -> what a message on it does to the plan: the topics the connector subscribes to."""
        return {
            **{topic: functools.partial(self._on_count, plan, line) for topic, line in plan.count_topics().items()},
            **{topic: functools.partial(self._on_torque, plan, line) for topic, line in plan.torque_topics().items()},
            **{topic: functools.partial(self._on_order, plan, line) for topic, line in plan.order_topics().items()},
            **{f"{path}/data/State": functools.partial(self._on_state, path) for path in self._maintenance.machines},
            **{
                f"{path}/data/FaultCode": functools.partial(self._on_fault, path) for path in self._maintenance.machines
            },
        }

    def _on_count(self, plan: BusinessPlan, line: str, message: Message) -> None:
        value = _number(message)
        if value is not None:
            self.counters["counts"] += 1
            self._emit(plan.count(line, int(value), self._clock()))

    @staticmethod
    def _on_torque(plan: BusinessPlan, line: str, message: Message) -> None:
        value = _number(message)
        if value is not None:
            plan.torque(line, value)

    def _on_state(self, path: str, message: Message) -> None:
        value = _number(message)
        if value is not None:
            self._emit(self._maintenance.state(path, int(value), self._clock()))

    def _on_fault(self, path: str, message: Message) -> None:
        value = _number(message)
        if value is not None:
            self._maintenance.fault_code(path, int(value))

    def _on_order(self, plan: BusinessPlan, line: str, message: Message) -> None:
        released = _released_order(message)
        if released is not None and released in self._awaiting:
            self._awaiting.pop(released).set()  # the shop floor (and the MES before us) has the order now
        order_id = _running_order(message)
        if order_id is not None:
            plan.order_seen(line, order_id)


def _body(message: Message) -> dict[str, object] | None:
    try:
        body = orjson.loads(message.payload)
    except orjson.JSONDecodeError:
        log.debug("demo business: %s is not JSON", message.topic)
        return None
    return body if isinstance(body, dict) else None


def _reading(message: Message) -> Reading | None:
    """The value envelope of a message by the hub's one reader; None (logged) when it is not one."""
    try:
        return read_envelope(message.payload, now_ms=0)  # its time is not used here
    except EnvelopeError as exc:
        log.debug("demo business: %s: %s", message.topic, exc)
        return None


def _number(message: Message) -> float | None:
    """The value of a good or uncertain value envelope; None for stale, bad or non-numeric ones."""
    read = _reading(message)
    if read is None or read.quality not in USABLE_QUALITIES:
        return None
    value = read.value
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _released_order(message: Message) -> str | None:
    """The order a live ``work_order`` release names (the ERP connector's, once the ERP has it)."""
    body = _body(message) if not message.retain and message.topic.endswith("/mes/work_order") else None
    if body is None or body.get("action") != "release":
        return None
    order_id = body.get("order_id")
    return order_id if isinstance(order_id, str) else None


def _running_order(message: Message) -> str | None:
    """The order a retained ``work_order`` start or a ``kpi/order`` envelope names as running."""
    if message.topic.endswith("/kpi/order"):
        read = _reading(message)
        value = None if read is None else read.value
        return value if isinstance(value, str) and value else None
    body = _body(message)
    if body is None or not message.retain or body.get("action") != "start":
        return None  # a live event: ours, or an operator's that the line follows
    order_id = body.get("order_id")
    return order_id if isinstance(order_id, str) else None
