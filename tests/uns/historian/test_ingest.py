"""The historian against real brokers: in-process under the embedded one, a persistent QoS 1 session
over TCP to the embedded broker and to Mosquitto, and behind the Sparkplug host."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import orjson

from model.config import HistorianSection
from tests.fixtures.broker import publisher, start_broker
from tests.fixtures.hub import RunningHub
from tests.fixtures.reading import rows
from tests.fixtures.running import running
from tests.fixtures.waiting import until
from tests.uns.host.raw_edge import DOUBLE, INT32, RawEdgeNode, metric, payload
from uns.broker import EmbeddedBroker
from uns.clock import now_ms
from uns.connect import ClientFactory, local_clients, network_clients
from uns.historian.service import Historian
from uns.mqtt.types import BrokerUrl, Message

_ids = itertools.count()
SECTION = HistorianSection(flush_interval_s=0.05, batch_rows=500)


def envelope(value: object, ts: int, datatype: str = "Double", **extra: object) -> bytes:
    return orjson.dumps({"value": value, "timestamp_ms": ts, "quality": "good", "datatype": datatype, **extra})


def count(historian: Historian, sql: str = "SELECT count(*) FROM samples", params: list[object] | None = None) -> int:
    found = rows(historian, sql, params)
    return int(found[0][0]) if found else 0  # type: ignore[call-overload]


async def test_in_process_ingest_keeps_every_good_sample_and_dead_letters_the_bad(tmp_path: Path) -> None:
    async with start_broker(tmp_path) as broker:
        historian = Historian(settings=SECTION, enterprise="acme", clients=local_clients(broker), data_dir=tmp_path)
        async with running(historian), publisher(broker.url) as pub:
            now = now_ms()
            good = [
                Message(f"acme/dallas/bottling/line1/c{i % 10}/data/Temp", envelope(float(i), now - 3000 + i))
                for i in range(2000)
            ]
            bad = [
                Message("acme/dallas/bottling/line1/c1/data/Temp", b"{garbage"),
                Message("acme/dallas/bottling/line1/c1/data/Count", envelope("many", now, "Int32")),
                Message("acme/dallas/bottling/line1/c1/data/Count", envelope(1, now + 86_400_000, "Int32")),
                Message("acme/Dallas/data/x", envelope(1, now)),
            ]
            await pub.publish_many(good[:1000] + bad + good[1000:])
            await pub.publish("acme/dallas/bottling/line1/mes/work_order", b'{"order":"WO-7"}', qos=1)
            await pub.publish("acme/hub/host/health", b'{"not": "history"}', qos=1)
            await until(lambda: count(historian) == 2000 and count(historian, "SELECT count(*) FROM dead_letters") == 4)
            await until(lambda: count(historian, "SELECT count(*) FROM mes_events") == 1)
            assert rows(historian, "SELECT field FROM dead_letters ORDER BY field") == [
                ("payload",),
                ("timestamp_ms",),
                ("topic",),
                ("value",),
            ]
            assert count(historian, "SELECT count(*) FROM series") == 10
            assert count(historian, "SELECT sum(value)::BIGINT FROM samples") == sum(range(2000))
            assert historian.stats.rejected == 4
            assert historian.stats.rejected_by_field == {"payload": 1, "value": 1, "timestamp_ms": 1, "topic": 1}


def _tcp(url: str) -> ClientFactory:
    return network_clients(BrokerUrl.from_str(url))


def hub_clients(hub: RunningHub) -> ClientFactory:
    """Clients of the hub's broker: in-process under the embedded one, over TCP otherwise."""
    return local_clients(hub.broker) if hub.broker is not None else _tcp(hub.url)


@contextlib.asynccontextmanager
async def born_edge(hub: RunningHub) -> AsyncIterator[RawEdgeNode]:
    """The hub's raw edge node after its births (Count on the node, Temp on device ``filler``); disconnected on exit."""
    edge = RawEdgeNode(hub.url, hub.group, hub.node)
    await edge.start()
    try:
        edge.nbirth([metric("Count", 1, INT32)])
        edge.send("DBIRTH", [metric("Temp", 20.0, DOUBLE)], device="filler")
        yield edge
    finally:
        edge.client.disconnect()


async def test_persistent_session_gets_what_was_published_while_it_was_away(tmp_path: Path, broker_url: str) -> None:
    enterprise = f"ent{next(_ids)}"
    section = SECTION.model_copy(update={"client_id": f"hist-{enterprise}"})
    topic = f"{enterprise}/dallas/bottling/line1/filler/data/Count"
    now = now_ms()
    async with publisher(broker_url) as pub:
        historian = Historian(settings=section, enterprise=enterprise, clients=_tcp(broker_url), data_dir=tmp_path)
        async with running(historian):
            for i in range(100):
                await pub.publish(topic, envelope(i, now - 10_000 + i, "Int32"), qos=1)
            await until(lambda: count(historian) == 100)
        # the historian is gone; its persistent session keeps collecting QoS 1 messages
        for i in range(100, 300):
            await pub.publish(topic, envelope(i, now - 10_000 + i, "Int32"), qos=1)
        again = Historian(settings=section, enterprise=enterprise, clients=_tcp(broker_url), data_dir=tmp_path)
        async with running(again):
            await until(lambda: count(again) == 300, within_s=10)
            assert count(again, "SELECT count(DISTINCT value) FROM samples") == 300


async def test_sparkplug_values_land_with_source_and_backfill_is_marked(tmp_path: Path, hub: RunningHub) -> None:
    section = SECTION.model_copy(update={"client_id": f"hist-{hub.enterprise}"})
    historian = Historian(settings=section, enterprise=hub.enterprise, clients=hub_clients(hub), data_dir=tmp_path)
    async with running(historian), born_edge(hub) as edge:
        temp = f"{hub.cell}/data/Temp"
        latest = "SELECT count(*) FROM latest JOIN series USING (series_id) WHERE topic = ?"
        await until(lambda: count(historian, latest, [temp]) == 1)
        # three backfilled values from a minute ago, newest first on the wire
        old = now_ms() - 60_000
        late = []
        for i in (3, 1, 2):
            m = metric("Temp", 10.0 + i, DOUBLE)
            m.timestamp = old + i * 1000
            m.is_historical = True
            late.append(m)
        edge.publish("DDATA", payload(late, edge.next_seq()), device="filler")
        await until(lambda: count(historian, "SELECT count(*) FROM samples WHERE historical") == 3)
        got = rows(
            historian,
            "SELECT epoch_ms(ts) - ?, value, historical, source FROM samples JOIN series USING (series_id)"
            " WHERE topic = ? ORDER BY ts",
            [old, temp],
        )
        source = f"{hub.group}/{hub.node}/filler"
        assert got[:3] == [(1000, 11.0, True, source), (2000, 12.0, True, source), (3000, 13.0, True, source)]
        assert got[3][1:] == (20.0, False, source)
        # the live value stays the latest
        value = "SELECT value FROM latest JOIN series USING (series_id) WHERE topic = ?"
        assert rows(historian, value, [temp]) == [(20.0,)]
        unit = rows(historian, "SELECT unit, datatype FROM series WHERE topic = ?", [temp])
        assert unit == [("degC", "Double")]


async def test_back_pressure_holds_reading_instead_of_dropping(tmp_path: Path) -> None:
    section = HistorianSection(flush_interval_s=0.05, batch_rows=100, max_pending_rows=150)
    async with start_broker(tmp_path) as broker:
        broker_: EmbeddedBroker = broker
        historian = Historian(settings=section, enterprise="acme", clients=local_clients(broker_), data_dir=tmp_path)
        async with running(historian), publisher(broker_.url) as pub:
            now = now_ms()
            await pub.publish_many(
                [Message(f"acme/s/a/l/c/data/m{i % 50}", envelope(float(i), now - 20_000 + i)) for i in range(20_000)]
            )
            await until(lambda: count(historian) == 20_000, within_s=20)
            assert historian.stats.commits >= 20_000 // 150


async def test_compression_and_rollups_run_inside_the_service(tmp_path: Path) -> None:
    section = HistorianSection(
        flush_interval_s=0.05,
        maintenance_interval_s=0.2,
        compression=[{"match": "acme/+/+/+/+/data/Temp", "method": "deadband", "deviation": 0.5}],  # type: ignore[list-item]
    )
    minute = (now_ms() // 60_000 - 3) * 60_000  # three minutes ago, a closed bucket
    async with start_broker(tmp_path) as broker:
        historian = Historian(settings=section, enterprise="acme", clients=local_clients(broker), data_dir=tmp_path)
        async with running(historian), publisher(broker.url) as pub:
            temps = [20.0, 20.1, 20.2, 21.0, 21.1, 19.0]  # deadband 0.5 keeps 20.0, 21.0, 19.0
            await pub.publish_many(
                [Message("acme/s/a/l/c/data/Temp", envelope(v, minute + i * 1000)) for i, v in enumerate(temps)]
                + [Message("acme/s/a/l/c/data/Speed", envelope(float(i), minute + i * 1000)) for i in range(6)]
            )
            await until(lambda: count(historian, "SELECT count(*) FROM rollup_1m") == 2, what="rollups")
            kept = rows(
                historian, "SELECT value FROM samples JOIN series USING (series_id) WHERE metric = 'Temp' ORDER BY ts"
            )
            assert [v for (v,) in kept] == [20.0, 21.0, 19.0]
            assert (
                count(historian, "SELECT count(*) FROM samples JOIN series USING (series_id) WHERE metric = 'Speed'")
                == 6
            )
            speed = rows(
                historian,
                "SELECT n, avg, min, max, first, last FROM rollup_1m JOIN series USING (series_id)"
                " WHERE metric = 'Speed'",
            )
            assert speed == [(6, 2.5, 0.0, 5.0, 0.0, 5.0)]


async def test_plain_json_values_without_datatype_or_time_are_stored(tmp_path: Path, broker_url: str) -> None:
    enterprise = f"ent{next(_ids)}"
    section = SECTION.model_copy(update={"client_id": f"hist-{enterprise}"})
    cell = f"{enterprise}/dallas/bottling/line1/filler/data"
    sent = {  # what a Node-RED MQTT-out node publishes with a JSON msg.payload
        "Temp": (b'{"value": 21.5}', "Double", 21.5),
        "Count": (b'{"value": 42}', "Int64", 42),
        "Running": (b'{"value": true}', "Boolean", True),
        "Mode": (b'{"value": "AUTO", "unit": "mode"}', "String", "AUTO"),
        "Profile": (b'{"value": [1, 2.5]}', "Json", [1, 2.5]),
    }
    historian = Historian(settings=section, enterprise=enterprise, clients=_tcp(broker_url), data_dir=tmp_path)
    async with running(historian), publisher(broker_url) as pub:
        before = now_ms()
        for name, (raw, _, _) in sent.items():
            await pub.publish(f"{cell}/{name}", raw, qos=1)
        await pub.publish(f"{cell}/Bad", b'{"value": "x", "datatype": "Int32"}', qos=1)  # a contradiction
        await until(
            lambda: count(historian) == len(sent) and count(historian, "SELECT count(*) FROM dead_letters") == 1
        )
        after = now_ms()
        got = rows(
            historian,
            "SELECT metric, datatype, epoch_ms(ts), value, value_text, value_json"
            " FROM samples JOIN series USING (series_id)",
        )
        by_name = {name: rest for name, *rest in got}
        assert set(by_name) == set(sent)
        for name, (_, datatype, value) in sent.items():
            stored_type, ts, number, text, json_text = by_name[name]
            assert stored_type == datatype, name
            assert isinstance(ts, int)
            assert before <= ts <= after, name  # no timestamp_ms: the receive time
            stored = orjson.loads(str(json_text)) if json_text is not None else text if text is not None else number
            assert stored == value, name
        assert rows(historian, "SELECT field, reason FROM dead_letters") == [
            ("value", "a string, but the datatype is Int32")
        ]
