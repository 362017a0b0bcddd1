"""The MES adapter on a real broker and a real DuckDB file: MQTT and HTTP intake, derived events,
KPIs back into the UNS, refusals on the errors topic, and a restart that loses and doubles nothing."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson

from model.config import DeriveRule, HistorianSection, MesSection
from model.envelope import read_fields
from tests.fixtures.broker import start_broker
from tests.fixtures.reading import reading, rows
from tests.fixtures.running import running_task
from tests.fixtures.waiting import next_messages, until
from uns.broker import EmbeddedBroker
from uns.clock import now_ms
from uns.connect import local_clients
from uns.historian.service import Historian
from uns.mes.downtime import current
from uns.mes.service import MesAdapter
from uns.mqtt.client import MqttClient
from uns.mqtt.types import BrokerUrl, Message
from uns.web import WebServer
from uns.web.mes_api import mes_routes

LINE = "acme/dallas/bottling/line1"
CELL = f"{LINE}/filler"
SECTION = MesSection(
    kpi_interval_s=0.2,
    ideal_cycle_time_s={CELL: 0.5},
    derive=[
        DeriveRule(match="acme/+/+/+/+/data/State", kind="state", state_map={1: 10000, 5: 180000}),
        DeriveRule(match="acme/+/+/+/+/data/GoodCount", kind="counter", counts="good"),
    ],
)


def envelope(value: object, ts: int, datatype: str = "Int32") -> bytes:
    return orjson.dumps({"value": value, "timestamp_ms": ts, "quality": "good", "datatype": datatype})


@dataclass
class Hub:
    broker: EmbeddedBroker
    historian: Historian
    mes: MesAdapter
    http: str

    def rows(self, sql: str) -> list[tuple[object, ...]]:
        return rows(self.historian, sql)


@contextlib.asynccontextmanager
async def mes_hub(broker: EmbeddedBroker, data_dir: Path, settings: MesSection = SECTION) -> AsyncIterator[Hub]:
    clients = local_clients(broker)
    section = HistorianSection(flush_interval_s=0.05)
    async with contextlib.AsyncExitStack() as stack:
        historian = await stack.enter_async_context(
            Historian(settings=section, enterprise="acme", clients=clients, data_dir=data_dir)
        )
        mes = await stack.enter_async_context(
            MesAdapter(settings=settings, enterprise="acme", clients=clients, writer=historian.writer)
        )
        web = await stack.enter_async_context(
            WebServer(bind="127.0.0.1", port=0, health={}, history=None, routes=mes_routes(mes))
        )
        for part in (historian, mes, web):
            _ = await stack.enter_async_context(running_task(part))
        yield Hub(broker, historian, mes, web.url)


@contextlib.asynccontextmanager
async def client(broker: EmbeddedBroker, name: str) -> AsyncIterator[MqttClient]:
    async with MqttClient(url=BrokerUrl.from_str(str(broker.url)), client_id=name) as mqtt:
        yield mqtt


async def test_events_over_mqtt_and_http_are_validated_stored_and_refusals_announced(tmp_path: Path) -> None:
    async with start_broker(tmp_path) as broker, mes_hub(broker, tmp_path) as hub, client(broker, "erp") as erp:
        await erp.subscribe(["acme/hub/mes/errors"], qos=0)
        now = now_ms()
        release = {
            "timestamp_ms": now - 60_000,
            "order_id": "WO-1",
            "action": "release",
            "product_id": "P1",
            "quantity": 100,
        }
        await erp.publish(f"{LINE}/mes/work_order", orjson.dumps(release), qos=1)
        await erp.publish(f"{LINE}/mes/work_order", orjson.dumps(release), qos=1)  # re-sent: stored once
        await until(lambda: hub.rows("SELECT count(*) FROM mes_work_orders") == [(1,)], what="the release")
        # over HTTP, as an ERP connector or an operator terminal would
        async with httpx.AsyncClient(base_url=hub.http) as http:
            start = {"timestamp_ms": now - 50_000, "order_id": "WO-1", "action": "start"}
            created = await http.post(f"/api/mes/events/{LINE}/mes/work_order", content=orjson.dumps(start))
            assert created.status_code == 201, created.text
            bad = {"timestamp_ms": now, "total": 5, "scrap": 7}
            refused = await http.post(f"/api/mes/events/{CELL}/mes/production_count", content=orjson.dumps(bad))
            assert refused.status_code == 422
            assert refused.json()["detail"] == [{"field": "scrap", "reason": "scrap (7) is above total (5)"}]
            unknown = {"timestamp_ms": now, "total": 5, "order_id": "WO-404"}
            missing = await http.post(f"/api/mes/events/{CELL}/mes/production_count", content=orjson.dumps(unknown))
            assert missing.status_code == 422
            assert missing.json()["detail"][0]["field"] == "order_id"
        # a bad event over MQTT: dead-lettered and announced, the good ones around it kept
        await erp.publish(f"{CELL}/mes/labor", b'{"timestamp_ms": 1, "action": "sideways"}', qos=1)
        count = {"timestamp_ms": now - 1000, "total": 10, "scrap": 1}
        await erp.publish(f"{CELL}/mes/production_count", orjson.dumps(count), qos=1)
        await until(lambda: hub.rows("SELECT count(*) FROM mes_counts") == [(1,)], what="the count")
        assert hub.rows("SELECT order_id, good FROM mes_counts") == [("WO-1", 9)]  # the running order filled in
        assert hub.rows("SELECT count(*), count(DISTINCT action) FROM mes_work_orders") == [(2, 2)]
        await until(lambda: hub.rows("SELECT count(*) FROM mes_dead_letters") == [(3,)], what="3 dead letters")
        fields = hub.rows("SELECT field FROM mes_dead_letters ORDER BY field")
        assert [f for (f,) in fields] == ["operator_id", "order_id", "scrap"]  # the first problem of each
        errors = [orjson.loads(m.payload) for m in await next_messages(erp, 3, what="three refusals")]
        assert {e["field"] for e in errors} == {"operator_id", "order_id", "scrap"}
        labor = next(e for e in errors if e["field"] == "operator_id")
        assert {p["field"] for p in labor["problems"]} == {"operator_id", "action"}  # every problem listed


async def test_machine_data_becomes_mes_events_and_kpis_and_survives_a_restart(tmp_path: Path) -> None:
    t0 = (now_ms() // 1000 - 600) * 1000  # ten minutes ago
    async with start_broker(tmp_path) as broker:
        async with mes_hub(broker, tmp_path) as hub, client(broker, "plc") as plc:
            kpis = {}
            await plc.subscribe([f"{LINE}/+/kpi/#", f"{LINE}/kpi/#"], qos=0)
            await plc.publish(f"{CELL}/data/State", envelope(1, t0), retain=True)
            for i in range(0, 11):  # a counter that wraps nowhere: 1000 .. 1100 over 5 minutes
                await plc.publish(f"{CELL}/data/GoodCount", envelope(1000 + i * 10, t0 + i * 30_000, "UInt32"))
            await plc.publish(f"{CELL}/data/State", envelope(5, t0 + 300_000))
            await plc.publish(f"{CELL}/data/State", envelope(1, t0 + 480_000))  # a 3 min fault (no microstop)
            await until(lambda: hub.rows("SELECT sum(total) FROM mes_counts") == [(100,)], what="100 counted")
            assert hub.rows("SELECT state FROM mes_states ORDER BY ts") == [(10000,), (180000,), (10000,)]

            async def collect() -> None:
                async for message in plc.messages():
                    kpis[message.topic] = orjson.loads(message.payload)

            reader = asyncio.get_running_loop().create_task(collect())
            oee = f"{CELL}/kpi/oee"
            await until(lambda: oee in kpis and kpis[oee]["value"] is not None, what="oee KPI")
            reader.cancel()
            assert kpis[f"{CELL}/kpi/state"]["value"] == 10000
            assert kpis[f"{CELL}/kpi/state_name"]["value"] == "producing at full speed"
            assert 0 < kpis[f"{CELL}/kpi/availability"]["value"] < 1  # the 3 min fault
            assert kpis[f"{CELL}/kpi/availability"]["unit"] == "ratio"
            assert f"{LINE}/kpi/oee" in kpis
        # restart: the counter kept counting while the adapter was away; nothing lost, nothing twice
        async with mes_hub(broker, tmp_path) as hub, client(broker, "plc2") as plc:
            await plc.publish(f"{CELL}/data/GoodCount", envelope(1150, t0 + 400_000, "UInt32"))
            await until(lambda: hub.rows("SELECT sum(total) FROM mes_counts") == [(150,)], what="150 counted")


async def test_dashboards_share_one_computation_of_the_live_picture_and_see_operator_input_at_once(
    tmp_path: Path,
) -> None:
    """Ten pages reading ``current`` cost one computation; an operator's input shows on the next read."""
    quiet = SECTION.model_copy(update={"kpi_interval_s": 60.0})  # no KPI tick during the test: every read is a page's
    t0 = now_ms() - 120_000
    async with (
        start_broker(tmp_path) as broker,
        mes_hub(broker, tmp_path, quiet) as hub,
        client(broker, "plc") as plc,
        httpx.AsyncClient(base_url=hub.http) as http,
    ):
        await plc.publish(f"{CELL}/data/State", envelope(1, t0))
        await until(lambda: hub.rows("SELECT count(*) FROM mes_states") == [(1,)], what="the derived state")

        async def page() -> dict[str, object]:
            answer = await http.get("/api/mes/current")
            assert answer.status_code == 200, answer.text
            body: dict[str, object] = answer.json()
            return body

        pages = await asyncio.gather(*(page() for _ in range(10)))
        assert hub.mes.live.computations == 1
        assert len({str(p["as_of"]) for p in pages}) == 1
        rows = {row["path"]: row for row in pages[0]["rows"]}  # type: ignore[attr-defined]
        assert rows[CELL]["state"] == 10000
        # machine data (derived events) is what the KPI tick is for: the picture stays until it is due
        await plc.publish(f"{CELL}/data/State", envelope(5, t0 + 60_000))
        await until(lambda: hub.rows("SELECT count(*) FROM mes_states") == [(2,)], what="the derived stop")
        assert (await page())["as_of"] == pages[0]["as_of"]
        # an operator's input is shown at once
        stop = {"timestamp_ms": t0 + 60_000, "state": 140000, "source": "terminal"}
        posted = await http.post(f"/api/mes/events/{CELL}/mes/machine_state", content=orjson.dumps(stop))
        assert posted.status_code == 201, posted.text
        after = await page()
        assert after["as_of"] != pages[0]["as_of"]
        assert {row["path"]: row for row in after["rows"]}[CELL]["state"] == 140000  # type: ignore[attr-defined]
        assert hub.mes.live.computations == 2
        # asking with parameters is a view of its own, refused like any other (current takes none)
        assert (await http.get("/api/mes/current?now=1")).status_code == 400


async def test_an_older_sample_or_event_never_replaces_the_current_state(tmp_path: Path) -> None:
    t0 = now_ms() - 120_000
    async with start_broker(tmp_path) as broker, mes_hub(broker, tmp_path) as hub, client(broker, "plc") as plc:

        def state_now() -> int | None:
            with reading(hub.historian) as cursor:
                found = {row.path: row.state for row in current(cursor, SECTION, now=datetime.now(UTC))}
            return found.get(CELL)

        # machine data: the fault at t0 + 60 s, then a late sample from t0 + 30 s saying "running"
        await plc.publish(f"{CELL}/data/State", envelope(5, t0 + 60_000), qos=1)
        await plc.publish(f"{CELL}/data/State", envelope(1, t0 + 30_000), qos=1)
        await until(lambda: hub.mes.health()["received"] == 2, what="both samples read")
        await until(lambda: state_now() == 180000, what="the fault derived")
        assert hub.rows("SELECT state FROM mes_states") == [(180000,)]  # the late sample derives nothing
        # MES events: an operator's state at t0 + 90 s, then one from t0 + 80 s arriving late
        for ts, state in ((t0 + 90_000, 140000), (t0 + 80_000, 10000)):
            body = {"timestamp_ms": ts, "state": state, "source": "terminal"}
            await plc.publish(f"{CELL}/mes/machine_state", orjson.dumps(body), qos=1)
        await until(lambda: hub.rows("SELECT count(*) FROM mes_states") == [(3,)], what="both events stored")
        assert state_now() == 140000  # history keeps the late one; the current state is the newest


async def test_an_in_process_publishers_decoded_form_is_taken_instead_of_its_json(tmp_path: Path) -> None:
    ts = now_ms() - 1_000
    body = envelope(5, ts)
    decoded = read_fields(orjson.loads(body), body, now_ms=ts)
    async with start_broker(tmp_path) as broker, mes_hub(broker, tmp_path) as hub:
        async with broker.local_client("host") as host:
            # as the Sparkplug host hands it under uns up; bytes no reader could parse show it is not read again
            await host.publish_many([Message(f"{CELL}/data/State", b"not json", 1, False, 0, decoded)])
            await until(lambda: hub.rows("SELECT count(*) FROM mes_states") == [(1,)], what="the derived stop")
        assert hub.rows("SELECT state, epoch_ms(ts) FROM mes_states") == [(180000, ts)]


async def test_plain_json_machine_values_without_time_or_datatype_derive_events(tmp_path: Path) -> None:
    async with start_broker(tmp_path) as broker, mes_hub(broker, tmp_path) as hub, client(broker, "node-red") as flow:
        before = now_ms()
        await flow.publish(f"{CELL}/data/State", b'{"value": 5}', qos=1)  # what a Node-RED flow publishes
        await until(lambda: hub.rows("SELECT count(*) FROM mes_states") == [(1,)], what="the derived stop")
        ((state, ts),) = hub.rows("SELECT state, epoch_ms(ts) FROM mes_states")
        assert state == 180000
        assert isinstance(ts, int)
        assert before <= ts <= now_ms()  # as of its arrival
