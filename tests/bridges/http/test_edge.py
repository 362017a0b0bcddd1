"""The HTTP source as a Sparkplug edge node: polled items become DDATA and MES events at QoS 1 with stable ids."""

from __future__ import annotations

from pathlib import Path

import httpx
import orjson

from bridges.edge import EdgeNode
from bridges.http import make_source
from bridges.http.signature import sign
from bridges.registry import build_edge_node
from model.bridges import HttpBridgeConfig
from tests.bridges.edge.spb_host import SpbHost, until
from tests.bridges.http.rest_api import RestApi
from tests.fixtures.asgi import serve
from tests.fixtures.recording import recording
from tests.fixtures.running import running, running_task
from uns.broker import EmbeddedBroker
from uns.connect import network_clients
from uns.mqtt.client import MqttClient


def _last(host: SpbHost, device: str, name: str) -> int:
    values = [v for v, _ in host.values(device, name, kinds=("DBIRTH", "DDATA")) if isinstance(v, int)]
    return values[-1] if values else 0


async def test_polled_items_as_metrics_and_mes_events(broker: EmbeddedBroker, tmp_path: Path) -> None:
    group, host_id = "biz", "http-host"
    rest = RestApi()
    rest.mixed = [
        {"id": "o1", "qty": 5.0, "product": "cola", "line": "acme/dallas/packaging/line1"},
        {"id": "o2", "qty": "many", "product": "lime", "line": "acme/dallas/packaging/line1"},
        {"id": "o3", "qty": 7.0, "product": "soda", "line": "acme/dallas/packaging/line2"},
    ]
    host = SpbHost(broker.url.port, group, host_id)
    await host.start(online=True)
    async with (
        serve(rest.app()) as url,
        MqttClient(url=broker.url, client_id="mes-listener") as listener,
        recording(listener, ["acme/+/+/+/mes/work_order"], name="test.mes-listener") as listened,
    ):
        seen = listened.messages
        config = HttpBridgeConfig.model_validate(
            {
                "name": "erp",
                "edge": {"group": group, "primary_host_id": host_id},
                "poll": {"url": f"{url}/mixed", "interval_s": 0.1},
                "key_path": "$.id",
                "devices": [
                    {
                        "id": "line1",
                        "where": {"path": "$.id", "equals": "o1"},
                        "metrics": [{"path": "$.qty", "name": "Qty"}],
                    }
                ],
                "events": [
                    {
                        "event": "work_order",
                        "equipment_path_from": "$.line",
                        "id_paths": ["$.id"],
                        "fields": {"order_id": "$.id", "product_id": "$.product", "quantity": "$.qty"},
                        "constants": {"action": "release", "timestamp_ms": 1_764_000_000_000},
                    }
                ],
            }
        )
        node = build_edge_node(config, network_clients(broker.url), tmp_path)
        try:
            async with running(node, name="test.http-node"):
                await until(
                    lambda: host.values("line1", "Qty", kinds=("DBIRTH", "DDATA")) != [],
                    what="Qty DDATA or DBIRTH value",
                )
                await until(lambda: len(seen) >= 2, what="the MES events")
                await until(lambda: _last(host, "api", "Status/EventsUnchanged") >= 4, what="two polls skipped")
        finally:
            host.stop()
    assert host.values("line1", "Qty", kinds=("DBIRTH", "DDATA"))[0][0] == 5.0
    assert host.count("DBIRTH") >= 2  # line1 and the status device api
    bodies = [(m.topic, orjson.loads(m.payload)) for m in seen]
    assert [(topic, body["event_id"]) for topic, body in bodies] == [
        ("acme/dallas/packaging/line1/mes/work_order", "erp:o1"),
        ("acme/dallas/packaging/line2/mes/work_order", "erp:o3"),
    ]  # published once: later polls find the same ids and bodies and skip them; o2 (quantity 'many') refused
    assert bodies[0][1] == {
        "action": "release", "timestamp_ms": 1_764_000_000_000, "event_id": "erp:o1", "source": "erp",
        "order_id": "o1", "product_id": "cola", "quantity": 5.0,
    }  # fmt: skip
    assert host.violations == []
    letters = (tmp_path / "http/erp/dead_letters.jsonl").read_bytes().splitlines()
    assert orjson.loads(letters[0])["key"] == "o2"


async def test_an_api_down_is_the_status_device_s_death_and_degraded_health(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    group, host_id = "biz", "http-host-2"
    rest = RestApi()
    host = SpbHost(broker.url.port, group, host_id)
    await host.start(online=True)
    async with serve(rest.app()) as url:
        config = HttpBridgeConfig.model_validate(
            {
                "name": "qms",
                "edge": {"group": group, "primary_host_id": host_id, "health_interval_s": 0.2},
                "poll": {"url": f"{url}/open/items", "interval_s": 0.05, "items_path": "$.items",
                         "backoff_min_s": 0.05, "backoff_max_s": 0.1},
                "devices": [{"id": "lab", "metrics": [{"path": "$.qty", "name": "Qty"}]}],
            }
        )  # fmt: skip
        node = build_edge_node(config, network_clients(broker.url), tmp_path)
        try:
            async with running(node, name="test.http-node"):
                await until(lambda: host.values("lab", "Qty", kinds=("DBIRTH",)), what="lab born with values")
                rest.fail_next = 10**6  # the API fails from now on
                await until(lambda: host.of("DDEATH", "api"), what="DDEATH of the api device")
                await until(
                    lambda: (True, False) in host.values(None, "Bridge/Degraded", kinds=("NBIRTH", "NDATA")),
                    what="Bridge/Degraded",
                )
                rest.fail_next = 0  # the API is back: the status device is born again
                await until(lambda: len(host.of("DBIRTH", "api")) >= 2, what="api re-born")
        finally:
            host.stop()
    assert host.violations == []


async def test_webhook_deliveries_become_mes_events(broker: EmbeddedBroker, tmp_path: Path) -> None:
    async with (
        MqttClient(url=broker.url, client_id="mes-listener-2") as listener,
        recording(listener, ["acme/+/+/+/mes/quality_inspection"], name="test.mes-listener") as listened,
    ):
        seen = listened.messages
        config = HttpBridgeConfig.model_validate(
            {
                "name": "qms",
                "edge": {"group": "biz", "primary_host_id": None},
                "webhook": {"secret": "k", "timestamp_header": None, "signature_header": "X-Hub-Signature-256"},
                "key_path": "$.sample",
                "events": [
                    {
                        "event": "quality_inspection",
                        "equipment_path": "acme/dallas/packaging/line1",
                        "id_paths": ["$.sample", "$.characteristic"],
                        "fields": {"characteristic": "$.characteristic", "value": "$.value", "timestamp_ms": "$.at",
                                   "sample_id": "$.sample"},
                        "constants": {"lower_limit": 0.0, "upper_limit": 10.0},
                    }
                ],
            }
        )  # fmt: skip
        clients = network_clients(broker.url)
        source = make_source(config, clients, tmp_path)
        node = EdgeNode(config=config.edge, node_id=config.node_id, source=source, clients=clients, data_dir=tmp_path)
        async with node, httpx.AsyncClient() as http, running_task(node, name="test.http-node"):
            assert source.webhook is not None  # bound on entering: its URL is known
            body = orjson.dumps(
                [
                    {"sample": "s1", "characteristic": "fill_ml", "value": 4.2, "at": "2026-12-06T10:00:00Z"},
                    {"sample": "s2", "characteristic": "fill_ml", "value": "n/a", "at": "2026-12-06T10:01:00Z"},
                ]
            )
            headers = {"X-Hub-Signature-256": "sha256=" + sign(b"k", body)}  # GitHub's way: the body alone
            answer = await http.post(source.webhook.url, content=body, headers=headers)
            assert (answer.status_code, answer.json()) == (
                200,
                {"status": "accepted", "items": 1, "refused": 1},
            )
            await until(lambda: len(seen) == 1, what="the inspection at the listener")
    [message] = seen
    assert message.topic == "acme/dallas/packaging/line1/mes/quality_inspection"
    assert orjson.loads(message.payload) == {
        "lower_limit": 0.0, "upper_limit": 10.0, "event_id": "qms:s1:fill_ml", "source": "qms",
        "characteristic": "fill_ml", "value": 4.2, "timestamp_ms": 1_796_551_200_000, "sample_id": "s1",
    }  # fmt: skip
