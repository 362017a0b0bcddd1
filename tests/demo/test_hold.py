"""An operator's event waits for its order's release: with the ERP connector down, no start reaches the UNS before it.

The demo planners run on a fast clock against a real broker and real ERP/QMS/CMMS, first without
the ``erp-orders`` connector: the first order's start is held (counted), nothing naming it is
published. Once the connector runs, each line's release arrives and only then its start.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import orjson

from bridges.registry import build_edge_node
from demo.business import DemoBusiness
from demo.connectors import ERP_ORDERS
from demo.systems import DemoSystems
from model.config import SimSection
from tests.demo.test_business import FastClock
from tests.fixtures.broker import start_broker
from tests.fixtures.waiting import until
from uns.connect import local_clients
from uns.settings import load_plant


async def test_starts_wait_until_their_release_is_back_from_the_erp_connector(tmp_path: Path) -> None:
    plant = load_plant(None)
    orders: list[tuple[str, str]] = []  # (action, order id) of every work_order on the broker, in arrival order
    async with (
        start_broker(tmp_path / "broker") as broker,
        DemoSystems(directory=tmp_path / "demo") as systems,
        local_clients(broker)(client_id="listener") as listener,
        contextlib.AsyncExitStack() as stack,
        asyncio.TaskGroup() as tasks,
    ):
        await listener.subscribe(["acme/+/+/+/mes/work_order"], qos=1)

        async def listen() -> None:
            async for message in listener.messages():
                body = orjson.loads(message.payload)
                orders.append((body["action"], body["order_id"]))

        business = DemoBusiness(
            plant=plant,
            clients=local_clients(broker),
            systems=systems,
            settings=SimSection(speed=1.0),
            tz="America/Chicago",
            seed=42,
            clock=FastClock(),
            tick_s=0.05,
            settle_s=2.0,
        )
        await stack.enter_async_context(business)
        running = [tasks.create_task(listen()), tasks.create_task(systems.run()), tasks.create_task(business.run())]
        await until(lambda: systems.erp.counters["releases"] >= 3 * 3, what="three orders per line in the ERP")
        await until(lambda: business.counters["held"] >= 1, what="a start held")
        assert orders == []  # the start waits, and nothing names an order the MES does not have
        erp = next(config for config in systems.connectors(None) if config.name == ERP_ORDERS)
        node = await stack.enter_async_context(build_edge_node(erp, local_clients(broker), tmp_path))
        running.append(tasks.create_task(node.run()))
        await until(lambda: sum(a == "start" for a, _ in orders) >= 3, within_s=15, what="a start on every line")
        for task in running:
            task.cancel()
    for index, (action, order_id) in enumerate(orders):
        if action == "start":
            assert ("release", order_id) in orders[:index], f"{order_id} started before its release came: {orders}"
