"""The demo business on a real embedded broker with the real historian and MES adapter (tmp DuckDB), on a fast clock.

A stand-in PLC publishes the lines' output counters and capper torques; after a few simulated
minutes the MES views show started orders, lot trees down to raw lots and an SPC chart, with no
dead letter; a restarted demo completes the order the previous run left running and goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest

from bridges.registry import build_edge_node
from demo.business import DemoBusiness
from demo.catalog import demo_line_setups
from demo.shifts import shifts_around
from demo.systems import DemoSystems
from hub.app import mes_section
from model.config import HistorianSection, MesSection, Settings, SimSection
from model.equipment import Plant
from tests.fixtures.broker import start_broker
from tests.fixtures.reading import reading, rows
from tests.fixtures.running import running
from tests.fixtures.waiting import until
from uns.broker import EmbeddedBroker
from uns.clock import now_ms
from uns.connect import local_clients
from uns.errors import BadArgument
from uns.historian.service import Historian
from uns.mes.genealogy import trace
from uns.mes.orders import order_progress
from uns.mes.quality import spc
from uns.mes.service import MesAdapter
from uns.settings import load_plant

FACTOR = 60  # one real second is one plant minute
L1 = "acme/dallas/bottling/line1"
# output units per plant second at each output cell (the wrapper a bit quicker than the sim, for the test)
OUTPUTS = {
    f"{L1}/labeler": 400 / 60,
    "acme/dallas/bottling/line2/capper2": 300 / 60,
    "acme/dallas/packaging/line3/wrapper": 1 / 60,
}
TORQUES = {f"{L1}/capper/data/Torque": 1.8, "acme/dallas/bottling/line2/capper2/data/Torque": 2.2}
CAPPER2 = "acme/dallas/bottling/line2/capper2"
FAULT_S = 90  # plant seconds capper2 stands in fault 105 (low air pressure) once the test says so


SITE_ZONE = ZoneInfo("America/Chicago")  # the demo site's (model/demo/plant.yaml), the business's tz below
CLEAR_MS = 90 * 60_000  # plant time a test may run on the fast clock (90 s of wall time): no shift break in it


def clear_of_shift_events(now_ms: int) -> int:
    """``now_ms``, or a minute after the shift break or shift change that runs then or comes within ``CLEAR_MS``.

    The CMMS opens the preventive orders for the next break and starts them when it comes, and a shift change
    clocks the next shift's operators on: a test that ran into either would see them. Starting clear of both
    keeps the test's plant hour the same at any wall time.
    """
    moved = True
    while moved:  # a new start may bring the next event within reach: look again from it
        moved = False
        for shift in shifts_around(now_ms, SITE_ZONE):
            if shift.break_start_ms - CLEAR_MS < now_ms < shift.break_end_ms:
                now_ms, moved = shift.break_end_ms + 60_000, True
                break
            if now_ms < shift.start_ms < now_ms + CLEAR_MS:
                now_ms, moved = shift.start_ms + 60_000, True
                break
    return now_ms


class FastClock:
    """Wall time ``FACTOR`` times faster than real time, from now (or just after a shift break or change near it)."""

    def __init__(self) -> None:
        self._wall, self._mono = clear_of_shift_events(now_ms()), time.monotonic()

    def __call__(self) -> int:
        return self._wall + int((time.monotonic() - self._mono) * 1000 * FACTOR)


def envelope(value: float, ts: int, datatype: str) -> bytes:
    return orjson.dumps({"value": value, "timestamp_ms": ts, "quality": "good", "datatype": datatype})


async def plc(broker: EmbeddedBroker, clock: Callable[[], int], faults: list[int]) -> None:
    """Counters rising at the nominal rates (of the fast clock), steady torques and a fault of capper2, every 50 ms."""
    async with local_clients(broker)(client_id="test-plc") as client:
        made = dict.fromkeys(OUTPUTS, 1000.0)
        last = clock()
        while True:
            now = clock()
            down = any(start <= now < start + FAULT_S * 1000 for start in faults)
            await client.publish(f"{CAPPER2}/data/State", envelope(5 if down else 1, now, "Int32"))
            await client.publish(f"{CAPPER2}/data/FaultCode", envelope(105 if down else 0, now, "Int32"))
            for cell, rate in OUTPUTS.items():
                made[cell] += rate * (now - last) / 1000
                topic = f"{cell}/data/Production/GoodCount"
                await client.publish(topic, envelope(int(made[cell]), now, "Int64"), retain=True)
            for topic, value in TORQUES.items():
                await client.publish(topic, envelope(value, now, "Float"))
            last = now
            await asyncio.sleep(0.05)


class Rig:
    def __init__(
        self, broker: EmbeddedBroker, historian: Historian, mes: MesAdapter, plant: Plant, systems: DemoSystems
    ) -> None:
        self.broker, self.historian, self.mes, self.plant, self.systems = broker, historian, mes, plant, systems
        self.clock = FastClock()
        self.faults: list[int] = []
        """When capper2 fell into a fault (the stand-in PLC reads it)."""

    def rows(self, sql: str) -> list[tuple[object, ...]]:
        return rows(self.historian, sql)

    def lot_depth(self, lot: str) -> int:
        with reading(self.historian) as cursor:
            return max(node.depth for node in trace(cursor, lot).nodes)

    def fill_points(self) -> int:
        far = datetime.fromtimestamp(self.clock() / 1000 + 3600, UTC)
        with reading(self.historian) as cursor:
            try:
                chart = spc(cursor, characteristic="fill_volume_ml", start=datetime(2000, 1, 1, tzinfo=UTC), end=far)
            except BadArgument:
                return 0
        return len(chart.points)

    @contextlib.asynccontextmanager
    async def business(self) -> AsyncIterator[DemoBusiness]:
        part = DemoBusiness(
            plant=self.plant,
            clients=local_clients(self.broker),
            systems=self.systems,
            settings=SimSection(speed=1.0),
            tz=SITE_ZONE.key,
            seed=42,
            clock=self.clock,
            tick_s=0.05,
        )
        async with running(part):
            yield part


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    plant = load_plant(None)
    clients = local_clients
    # the outputs as uns up carries them (hub.app.mes_section): no setting, the plant file's last cells as defaults
    section = mes_section(Settings(demo=False, mes=MesSection(kpi_interval_s=0.5)), plant)
    async with start_broker(tmp_path) as broker, contextlib.AsyncExitStack() as stack:
        historian = await stack.enter_async_context(
            Historian(
                settings=HistorianSection(flush_interval_s=0.05),
                enterprise="acme",
                clients=clients(broker),
                data_dir=tmp_path,
            )
        )
        mes = await stack.enter_async_context(
            MesAdapter(settings=section, enterprise="acme", clients=clients(broker), writer=historian.writer)
        )
        systems = await stack.enter_async_context(DemoSystems(directory=tmp_path / "demo"))
        nodes = [
            await stack.enter_async_context(build_edge_node(config, clients(broker), tmp_path))
            # the business clock runs x60: polled at the shipped 5 s, one CMMS row would change a dozen times
            # between two reads; at 1 s the rig reads about as many versions as the demo does at x1
            for config in systems.connectors(None, poll_s=1.0)
        ]
        made = Rig(broker, historian, mes, plant, systems)
        parts = [
            historian.run(),
            mes.run(),
            systems.run(),
            *(node.run() for node in nodes),
            plc(broker, made.clock, made.faults),
        ]
        async with asyncio.TaskGroup() as tasks:
            running = [tasks.create_task(coro) for coro in parts]
            try:
                yield made
            finally:
                for task in running:
                    task.cancel()


def _maintenance(rig: Rig, like: str) -> list[tuple[object, ...]]:
    return rig.rows(
        "SELECT status, planned, fault_code, versions >= 2 AND started <= closed FROM mes_maintenance "  # noqa: S608
        f"WHERE maintenance_id LIKE '{like}' ORDER BY maintenance_id"
    )


def _pallets(rig: Rig) -> list[str]:
    return [str(lot) for (lot,) in rig.rows("SELECT lot_id FROM mes_lots WHERE lot_id LIKE 'PAL-%' ORDER BY ts")]


async def test_the_demo_business_feeds_orders_genealogy_and_spc(rig: Rig) -> None:
    async with rig.business() as business:
        await until(lambda: business.plan is not None and business.plan.running_order(L1), what="a running order")
        await until(lambda: _pallets(rig), within_s=10, what="a pallet lot")
        await until(lambda: rig.fill_points() >= 5, within_s=10, what="fill volume samples")
        # one CMMS row rewritten as opened, started, closed; at x60 two changes may fall between two polls of
        # the SQL source (1 s), which then reads the newer one only: at least the first and the last come
        rig.faults.append(rig.clock())
        breakdown = [("closed", False, "105", True)]
        await until(lambda: _maintenance(rig, "CM-CAPPER2-%") == breakdown, within_s=10, what="the breakdown")
        first = business.plan.running_order(L1) if business.plan else None
    with reading(rig.historian) as cursor:
        now = datetime.fromtimestamp(rig.clock() / 1000, UTC)
        orders = order_progress(cursor, now=now, plant_outputs=rig.plant.line_outputs())
    started = {o.line: o for o in orders if o.actual_start is not None}
    production = {setup.path for setup in demo_line_setups(rig.plant)}  # the lines with a recipe make something
    assert set(started) == production  # every production line runs an order
    assert started[L1].order_id == first
    assert started[L1].quantity
    assert started[L1].planned_end
    assert {o.status for o in orders} >= {"released", "running"}
    assert rig.lot_depth(_pallets(rig)[0]) == 3  # pallet <- bottled lot <- syrup batch <- sugar lot
    bottled = rig.rows("SELECT lot_id FROM mes_lots WHERE lot_id LIKE 'B1-%' LIMIT 1")[0][0]
    assert rig.lot_depth(str(bottled)) == 2
    kinds = {str(e) for (e,) in rig.rows("SELECT DISTINCT characteristic FROM mes_inspections")}
    assert {"fill_volume_ml", "cap_torque_nm", "syrup_brix"} <= kinds  # the line's checks and the lab's results
    assert rig.rows("SELECT count(*) FROM mes_labor")[0][0] == 6  # two operators per line clocked on
    # the product types come through their own connector (erp-products), in parallel with the orders' one
    await until(lambda: rig.rows("SELECT count(*) FROM mes_products")[0][0] == 3, within_s=10, what="3 products")
    assert rig.rows("SELECT count(*) > 0 FROM mes_consumption") == [(True,)]
    # what the business systems own came through their connectors; the operators' events over MQTT
    assert rig.rows("SELECT DISTINCT source FROM mes_products") == [("erp-products",)]
    assert rig.rows("SELECT DISTINCT source FROM mes_work_orders WHERE action = 'release'") == [("erp-orders",)]
    assert rig.rows("SELECT DISTINCT source FROM mes_work_orders WHERE action <> 'release'") == [("erp",)]
    assert rig.rows("SELECT DISTINCT source FROM mes_inspections") == [("qms-results",)]
    released = rig.rows("SELECT count(*) FROM mes_work_orders WHERE action = 'release'")[0][0]
    assert released == rig.systems.erp.counters["releases"]
    assert _maintenance(rig, "PM-%") == [("opened", True, None, False)] * 3  # one scheduled per line, in a break
    assert rig.rows("SELECT DISTINCT source FROM mes_maintenance_orders") == [("sql:cmms",)]
    assert rig.rows("SELECT count(*) FROM mes_dead_letters") == [(0,)]
    assert rig.mes.counters["rejected"] == 0

    # a restart: the order the first run left running is completed, then the new run's first order starts
    async with rig.business() as again:
        await until(lambda: again.plan is not None and again.plan.running_order(L1), what="a new order")
        renewed = again.plan.running_order(L1) if again.plan else None
        await until(
            lambda: (
                rig.rows(f"SELECT count(*) FROM mes_work_orders WHERE order_id = '{renewed}' AND action = 'start'")  # noqa: S608
                == [(1,)]
            ),
            what="the new start stored",
        )
    assert renewed != first
    actions = rig.rows(f"SELECT action FROM mes_work_orders WHERE order_id = '{first}' ORDER BY ts")  # noqa: S608
    assert [a for (a,) in actions] == ["release", "start", "complete"]
    assert rig.rows("SELECT count(*) FROM mes_labor")[0][0] == 6  # the same shift's clock-ons: stored once
    assert rig.rows("SELECT count(*) FROM mes_dead_letters") == [(0,)]
    assert rig.mes.counters["rejected"] == 0
