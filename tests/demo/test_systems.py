"""The demo ERP, QMS and CMMS against the real HTTP and SQL sources under their edge nodes, on a real broker.

Their edge nodes pass an independent Sparkplug host on Mosquitto (``tests/bridges/edge/spb_host.py``).

Rows written into the systems arrive as MES events with their BOM, ISO times in milliseconds and
stable ids; a changed order or work order comes again as a new version; a restarted hub (systems and
connectors, the same data directory) sends what was written while it was down and nothing it sent before.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import pytest

from bridges.registry import build_edge_node
from bridges.sim.layout import GROUP
from demo.connectors import CMMS, CONNECTORS
from demo.maintenance import WorkOrderRow
from demo.systems import DemoSystems
from model.mes import Inspection, ProductType, WorkOrder
from tests.bridges.edge.spb_host import SpbHost
from tests.fixtures.broker import start_broker
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.waiting import until
from uns.broker import EmbeddedBroker
from uns.connect import local_clients, network_clients
from uns.errors import ConfigError
from uns.mqtt.types import BrokerUrl
from uns.settings import load_plant

L1 = "acme/dallas/bottling/line1"
T0 = 1_764_000_000_000
POLL_S = 0.25
"""How often the connectors poll here (the demo's 5 s; the ERP's products feed every 2 x POLL_S): a row written
after a poll waits for the next one."""
BOM = [
    {"material_id": "PREFORM", "quantity_per_unit": 1.0, "unit": "pcs"},
    {"material_id": "SYRUP", "quantity_per_unit": 0.09, "unit": "l"},
]


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


class Events:
    """Every MES event on the broker, in arrival order."""

    def __init__(self) -> None:
        self.got: list[tuple[str, dict[str, object]]] = []

    def of(self, event: str) -> list[dict[str, object]]:
        return [body for topic, body in self.got if topic.endswith(f"/mes/{event}")]

    def ids(self) -> list[str]:
        return [str(body["event_id"]) for _, body in self.got]


@contextlib.asynccontextmanager
async def listening(broker: EmbeddedBroker) -> AsyncIterator[Events]:
    events = Events()
    async with local_clients(broker)(client_id="mes-listener") as client:
        await client.subscribe(["acme/#"], qos=1)

        async def listen() -> None:
            async for message in client.messages():
                if "/mes/" in message.topic:
                    events.got.append((message.topic, orjson.loads(message.payload)))

        task = asyncio.get_running_loop().create_task(listen())
        try:
            yield events
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@contextlib.asynccontextmanager
async def hub(broker: EmbeddedBroker, data_dir: Path) -> AsyncIterator[DemoSystems]:
    """The systems and their connectors (edge nodes publishing regardless of any host), as ``uns up`` runs them."""
    async with contextlib.AsyncExitStack() as stack:
        systems = await stack.enter_async_context(DemoSystems(directory=data_dir / "demo"))
        nodes = [
            await stack.enter_async_context(build_edge_node(config, local_clients(broker), data_dir))
            for config in systems.connectors(None, poll_s=POLL_S)
        ]
        async with asyncio.TaskGroup() as tasks:
            running = [tasks.create_task(systems.run()), *(tasks.create_task(node.run()) for node in nodes)]
            try:
                yield systems
            finally:
                for task in running:
                    task.cancel()


def order(order_id: str, quantity: float, at: int) -> WorkOrder:
    return WorkOrder.model_validate(
        {"timestamp_ms": at, "order_id": order_id, "action": "release", "product_id": "COLA", "quantity": quantity,
         "unit": "bottles", "planned_start_ms": at + 60_000, "planned_end_ms": at + 3_600_000, "bom": BOM}
    )  # fmt: skip


def sample(value: float, at: int) -> Inspection:
    return Inspection.model_validate(
        {"timestamp_ms": at, "characteristic": "fill_volume_ml", "value": value, "lower_limit": 495.0,
         "upper_limit": 505.0, "unit": "ml", "order_id": "WO-1", "sample_id": f"S{at}"}
    )  # fmt: skip


def breakdown(status: str, at: int) -> WorkOrderRow:
    started = T0 + 20_000 if status != "opened" else None
    return WorkOrderRow(
        wo_id="CM-CAPPER-1", machine_path=f"{L1}/capper", kind="corrective", status=status, description="jam",
        priority=2, fault_code="101", opened_ms=T0, started_ms=started, closed_ms=at if status == "closed" else None,
        changed_ms=at,
    )  # fmt: skip


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[EmbeddedBroker]:
    async with start_broker(tmp_path / "broker") as running:
        yield running


async def test_business_rows_reach_the_uns_as_mes_events_and_a_restart_neither_loses_nor_repeats_them(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    product = ProductType(timestamp_ms=T0, product_id="COLA", name="Cola", ideal_cycle_time_s=0.13, unit="bottles")
    async with listening(broker) as events:
        async with hub(broker, tmp_path) as systems:
            await systems.erp.put_product(L1, product)
            await systems.erp.release(L1, order("WO-1", 1200, T0))
            await systems.qms.record("qi-1", "inspection", f"{L1}/filler", sample(500.4, T0 + 1000))
            await systems.cmms.write(breakdown("opened", T0 + 5000))
            await until(lambda: len(events.got) == 4, within_s=15, what="product, order, inspection, maintenance order")
            # a changed order and a work order moving on are read again as new versions
            await systems.erp.release(L1, order("WO-1", 1500, T0 + 9000))
            await systems.cmms.write(breakdown("started", T0 + 20_000))
            await until(lambda: len(events.got) == 6, within_s=15, what="the two updates")
        first = list(events.got)
        # while the hub is down the systems go on (the plan writes into their files)
        async with DemoSystems(directory=tmp_path / "demo") as down:
            await down.erp.release(L1, order("WO-2", 800, T0 + 30_000))
            await down.qms.record("qi-2", "inspection", f"{L1}/filler", sample(507.0, T0 + 31_000))
            await down.cmms.write(breakdown("closed", T0 + 40_000))
        async with hub(broker, tmp_path) as systems:
            await until(lambda: len(events.got) >= 9, within_s=15, what="what was written while the hub was down")
            await asyncio.sleep(2 * 2 * POLL_S)  # two more polls of every connector: nothing else may come
            assert systems.erp.counters == {"products": 0, "releases": 0}  # nothing new written in this run
    ids = events.ids()
    assert len(ids) == len(set(ids)) == 9  # nothing repeated, nothing lost
    assert sorted(topic for topic, _ in first) == [  # four connectors: in order per connector only
        f"{L1}/capper/mes/maintenance_order",
        f"{L1}/capper/mes/maintenance_order",
        f"{L1}/filler/mes/quality_inspection",
        f"{L1}/mes/product_type",
        f"{L1}/mes/work_order",
        f"{L1}/mes/work_order",
    ]
    releases = [WorkOrder.model_validate(body) for body in events.of("work_order")]
    assert [(o.order_id, o.quantity, o.timestamp_ms) for o in releases] == [
        ("WO-1", 1200, T0),
        ("WO-1", 1500, T0 + 9000),
        ("WO-2", 800, T0 + 30_000),
    ]
    assert releases[0].planned_start_ms == T0 + 60_000  # ISO 8601 in the feed, milliseconds in the UNS
    assert [(b.material_id, b.quantity_per_unit, b.unit) for b in releases[0].bom] == [
        ("PREFORM", 1.0, "pcs"),
        ("SYRUP", 0.09, "l"),
    ]
    assert [body["source"] for body in events.of("work_order")] == ["erp-orders"] * 3
    assert events.of("product_type")[0] == {
        "product_id": "COLA", "name": "Cola", "ideal_cycle_time_s": 0.13, "unit": "bottles", "timestamp_ms": T0,
        "event_id": "erp-products:COLA:1", "source": "erp-products",
    }  # fmt: skip
    inspections = [Inspection.model_validate(body) for body in events.of("quality_inspection")]
    assert [(i.value, i.outcome.value, i.timestamp_ms) for i in inspections] == [
        (500.4, "pass", T0 + 1000),
        (507.0, "fail", T0 + 31_000),
    ]
    maintenance = events.of("maintenance_order")
    assert [(m["maintenance_id"], m["status"], m["fault_code"], m["timestamp_ms"]) for m in maintenance] == [
        ("CM-CAPPER-1", "opened", "101", T0 + 5000),
        ("CM-CAPPER-1", "started", "101", T0 + 20_000),
        ("CM-CAPPER-1", "closed", "101", T0 + 40_000),
    ]
    assert maintenance[2]["planned"] is False
    assert (maintenance[2]["started_ms"], maintenance[2]["closed_ms"]) == (T0 + 20_000, T0 + 40_000)


async def test_the_feeds_page_after_a_cursor_answer_304_when_unchanged_and_name_a_bad_parameter(tmp_path: Path) -> None:
    async with DemoSystems(directory=tmp_path) as systems, asyncio.TaskGroup() as tasks:
        serving = tasks.create_task(systems.run())
        for n in range(5):
            await systems.erp.release(L1, order(f"WO-{n}", 100 + n, T0 + n))
        await systems.erp.release(L1, order("WO-1", 999, T0 + 10))  # a change moves the order to the end
        async with httpx.AsyncClient(base_url=systems.erp_url) as client:
            page = (await client.get("/api/orders", params={"after": "2", "limit": "2"})).json()
            assert [(i["order_id"], i["seq"]) for i in page["items"]] == [("WO-2", 3), ("WO-3", 4)]
            assert page["next_cursor"] == "4"
            last = await client.get("/api/orders", params={"after": "4"})
            items = [(i["order_id"], i["seq"], i["revision"], i["quantity"]) for i in last.json()["items"]]
            assert items == [("WO-4", 5, 1, 104), ("WO-1", 6, 2, 999)]  # WO-1 left seq 2 when it changed
            empty = await client.get("/api/orders", params={"after": "6"})
            assert empty.json() == {"items": [], "next_cursor": "6"}
            again = await client.get(
                "/api/orders", params={"after": "6"}, headers={"If-None-Match": empty.headers["etag"]}
            )
            assert (again.status_code, again.content) == (304, b"")
            bad = await client.get("/api/orders", params={"limit": "5000"})
            assert (bad.status_code, bad.json()) == (400, {"error": "limit: 5000 is outside 1..1000"})
            bad = await client.get("/api/orders", params={"after": "x"})
            assert (bad.status_code, bad.json()) == (400, {"error": "after: 'x' is not an integer"})
        assert not await systems.erp.release(L1, order("WO-1", 999, T0 + 10))  # written again unchanged: no change
        serving.cancel()


async def test_the_connectors_pass_an_independent_sparkplug_host_on_mosquitto(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """Every message of the four business edge nodes is checked against Sparkplug 3.0 by a host none of our code runs
    (raw paho-mqtt and the generated protobuf); their MES events reach Mosquitto; a rebirth is answered."""
    host = SpbHost(mosquitto.port, GROUP, "uns-hub")
    await host.start()
    clients = network_clients(BrokerUrl(port=mosquitto.port))
    got: list[str] = []
    try:
        async with (
            DemoSystems(directory=tmp_path / "demo") as systems,
            clients(client_id="mes-listener") as listener,
            contextlib.AsyncExitStack() as stack,
            asyncio.TaskGroup() as tasks,
        ):
            await listener.subscribe(["acme/#"], qos=1)

            async def listen() -> None:
                async for message in listener.messages():
                    if not message.retain:  # what earlier tests left retained on the session's Mosquitto is not ours
                        got.append(message.topic)

            running = [tasks.create_task(listen()), tasks.create_task(systems.run())]
            for config in systems.connectors("uns-hub", poll_s=POLL_S):
                node = await stack.enter_async_context(build_edge_node(config, clients, tmp_path))
                running.append(tasks.create_task(node.run()))
            await until(lambda: {r.node for r in host.of("NBIRTH")} == set(CONNECTORS), within_s=15, what="births")
            await systems.erp.release(L1, order("WO-1", 1200, T0))
            await systems.qms.record("qi-1", "inspection", f"{L1}/filler", sample(500.4, T0 + 1000))
            await systems.cmms.write(breakdown("opened", T0 + 5000))
            await until(lambda: len(got) == 3, within_s=15, what="three MES events at Mosquitto")
            births = host.count("NBIRTH")
            host.rebirth(CMMS)
            await until(lambda: host.count("NBIRTH") == births + 1, what="the cmms node born again")
            for task in running:
                task.cancel()
    finally:
        host.stop()
    assert sorted(got) == sorted(
        [f"{L1}/mes/work_order", f"{L1}/filler/mes/quality_inspection", f"{L1}/capper/mes/maintenance_order"]
    )
    assert {r.device for r in host.of("DBIRTH")} == {"api", "work-orders"}  # each connector's status device
    # the demo plant file places each node and status device on its connector's line of the business area
    plant = load_plant(None)
    born = [(r.node, r.device) for r in host.of("NBIRTH") + host.of("DBIRTH")]
    placed = {(node, device, *dataclasses.astuple(plant.resolve(GROUP, node, device))) for node, device in born}
    assert placed == {
        (node, device, f"acme/dallas/business/{node}", True)
        for node in CONNECTORS
        for device in (None, "work-orders" if node == CMMS else "api")
    }
    assert host.violations == []


async def test_the_cmms_gives_back_its_open_orders_as_written(tmp_path: Path) -> None:
    async with DemoSystems(directory=tmp_path) as systems:
        scheduled = dataclasses.replace(
            breakdown("opened", T0 + 6000), wo_id="PM-FILLER-1", kind="preventive", fault_code=None,
            planned_start_ms=T0 + 3_600_000, planned_end_ms=T0 + 5_400_000,
        )  # fmt: skip
        for row in (breakdown("opened", T0 + 5000), scheduled, breakdown("started", T0 + 20_000)):
            await systems.cmms.write(row)
        assert await systems.cmms.open_orders() == [scheduled, breakdown("started", T0 + 20_000)]
        await systems.cmms.write(breakdown("closed", T0 + 40_000))
        assert await systems.cmms.open_orders() == [scheduled]


@pytest.mark.parametrize("name", ["erp", "qms"])
async def test_a_taken_port_names_its_own_setting_not_the_web_uis(tmp_path: Path, name: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError) as refused:
            async with DemoSystems(directory=tmp_path, **{f"{name}_port": port}):
                pass
    assert (refused.value.source, refused.value.path) == (f"demo {name}", f"sim.{name}_port")
    assert f"127.0.0.1:{port} is in use: choose another port with UNS_SIM__{name.upper()}_PORT" in str(refused.value)
