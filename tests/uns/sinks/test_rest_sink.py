"""The REST sink against a real ERP API (uvicorn) through a real broker: once each, outages, refusals, replay."""

from __future__ import annotations

import base64
import contextlib
import itertools
import time
from pathlib import Path

import orjson

from model.sinks import RestSinkConfig
from tests.fixtures.asgi import serve
from tests.fixtures.broker import publisher, start_broker
from tests.fixtures.running import running
from tests.fixtures.waiting import next_json, until
from tests.uns.sinks.rest_target import TOKEN, Erp
from tests.uns.sinks.test_postgres_sink import envelope
from uns.clock import now_ms
from uns.connect import network_clients
from uns.historian.rows import RowParser, SampleRow
from uns.mqtt.client import MqttClient
from uns.mqtt.types import BrokerUrl, Message
from uns.sinks.registry import build_sink
from uns.sinks.rest import ReplayReport, RestWriter, message_context
from uns.sinks.service import Sink

_ids = itertools.count()
DONE = "acme/dallas/bottling/line1/filler/mes/order_complete"
COUNT = "acme/dallas/bottling/line1/filler/data/Production/GoodCount"


def config(base: str, tmp_path: Path, **overrides: object) -> RestSinkConfig:
    data: dict[str, object] = {
        "kind": "rest",
        "name": "erp",
        "routes": [
            {
                "match": "+/+/+/+/+/mes/order_complete",
                "url": base + "/api/orders/${body.order_id}/complete",
                "body": {
                    "order": "${body.order_id}",
                    "quantity": "${body.quantity}",
                    "line": "at ${path}",
                    "at": "${timestamp}",
                    "reason": "${body.reason?}",
                },
            },
            {
                "match": "+/+/+/+/+/data/#",
                "url": base + "/api/counts",
                "body": {"topic": "${topic}", "n": "${body.value}"},
            },
        ],
        "auth": {"kind": "bearer", "token": TOKEN},
        "flush_interval_s": 0.05,
        "batch_rows": 100,
        "retry_min_s": 0.05,
        "retry_max_s": 0.3,
        "health_interval_s": 0.1,
        "client_id": f"test-rest-{next(_ids)}",
        "dead_letters_path": str(tmp_path / "dead.sqlite"),
    }
    data.update(overrides)
    return RestSinkConfig.model_validate(data)


def sink_of(cfg: RestSinkConfig, url: str) -> Sink:
    return build_sink(cfg, enterprise="acme", clients=network_clients(BrokerUrl.from_str(url)))


def order(i: int, quantity: int | None = None, **extra: object) -> bytes:
    body = {"order_id": f"WO-{i}", "quantity": i if quantity is None else quantity, "timestamp_ms": now_ms() - 1000}
    return orjson.dumps({**body, **extra})


def orders_stored(erp: Erp) -> dict[str, dict[str, object]]:
    return {str(body["order"]): body for body in erp.stored.values() if "order" in body}


async def _replayed(writer: RestWriter) -> ReplayReport:
    """What a replay of ``writer``'s dead letters did, connected for it (as ``uns sink NAME replay``)."""
    await writer.connect()
    try:
        return await writer.replay()
    finally:
        await writer.aclose()


async def test_every_event_and_sample_is_posted_once_with_its_templated_body(tmp_path: Path) -> None:
    erp = Erp()
    start = now_ms() - 60_000
    async with serve(erp.app()) as base, start_broker(tmp_path) as broker:
        cfg = config(base, tmp_path)
        async with running(sink_of(cfg, str(broker.url))) as sink, publisher(broker.url) as pub:
            payloads = [order(i, reason="end of run" if i == 7 else None) for i in range(300)]
            await pub.publish_many([Message(DONE, p, qos=1) for p in payloads])
            await pub.publish_many([Message(COUNT, envelope(i, start + i * 10), qos=1) for i in range(200)])
            # re-deliveries (a replay, a DUP): the same messages again are not stored twice
            await pub.publish_many([Message(DONE, p, qos=1) for p in payloads[:30]])
            await until(lambda: sink.stats.events + sink.stats.duplicate_events == 330, within_s=20,
                        what=f"all events: {sink.health()}")  # fmt: skip
            await until(lambda: sink.stats.stored == 200, within_s=20, what=f"all samples: {sink.health()}")
    orders = orders_stored(erp)
    assert sorted(orders) == sorted(f"WO-{i}" for i in range(300))
    assert orders["WO-7"]["quantity"] == 7  # a whole placeholder keeps the JSON type
    assert orders["WO-7"]["reason"] == "end of run"
    assert orders["WO-8"]["reason"] is None  # ${body.reason?}: missing is null
    assert orders["WO-7"]["line"] == "at acme/dallas/bottling/line1/filler"
    assert str(orders["WO-7"]["at"]).endswith("Z")
    assert sorted(p for p in erp.paths.values() if "orders" in p)[:2] == [
        "/api/orders/WO-0/complete", "/api/orders/WO-1/complete"]  # fmt: skip
    counts = sorted(int(str(b["n"])) for b in erp.stored.values() if b.get("topic") == COUNT)
    assert counts == list(range(200))
    assert len(erp.stored) == 500
    assert sink.stats.events == 300
    assert sink.stats.duplicate_events == 30  # the writer remembered them: not even posted again
    assert erp.repeats == 0
    assert erp.unauthorized == 0


async def test_a_target_failing_with_503_and_429_then_succeeding_loses_nothing_and_is_counted(
    tmp_path: Path,
) -> None:
    erp = Erp(fail_next=3, fail_status=503, retry_after="0")
    async with serve(erp.app()) as base, start_broker(tmp_path) as broker:
        sink = sink_of(config(base, tmp_path), str(broker.url))
        async with running(sink), publisher(broker.url) as pub:
            await pub.publish_many([Message(DONE, order(i), qos=1) for i in range(50)])
            await until(lambda: sink.stats.events == 50, within_s=20, what=f"50 delivered: {sink.health()}")
            assert sink.stats.write_failures == 3
            assert "HTTP 503" in str(sink.stats.last_error)
            erp.fail_next, erp.fail_status, erp.retry_after = 2, 429, "1"
            waited = time.monotonic()
            await pub.publish_many([Message(DONE, order(i), qos=1) for i in range(50, 60)])
            await until(lambda: sink.stats.events == 60, within_s=20, what=f"60 delivered: {sink.health()}")
            assert time.monotonic() - waited >= 1.0  # Retry-After: 1 honoured (backoff alone is < 0.3 s)
            assert sink.stats.write_failures == 5
    assert sorted(orders_stored(erp)) == sorted(f"WO-{i}" for i in range(60))


async def test_a_target_down_then_back_loses_nothing_and_is_counted_in_health(tmp_path: Path) -> None:
    erp = Erp()
    async with start_broker(tmp_path) as broker, contextlib.AsyncExitStack() as first:
        base = await first.enter_async_context(serve(erp.app()))
        port = int(base.rsplit(":", 1)[1])
        async with (
            running(sink_of(config(base, tmp_path), str(broker.url))) as sink,
            publisher(broker.url) as pub,
            MqttClient(url=broker.url, client_id=f"test-health-{next(_ids)}") as watcher,
        ):
            await watcher.subscribe([sink.health_topic], qos=0)
            await pub.publish_many([Message(DONE, order(i), qos=1) for i in range(100)])
            await until(lambda: sink.stats.events == 100, within_s=20)
            await first.aclose()  # the ERP goes away (connection refused) while orders keep completing
            await pub.publish_many([Message(DONE, order(i), qos=1) for i in range(100, 250)])
            await until(lambda: sink.stats.write_failures >= 2 and not sink.stats.database_online, within_s=20)
            health = await next_json(watcher, lambda body: body["write_failures"] >= 2, what="the sink's health")
            assert health["database_online"] is False
            assert "ConnectError" in str(health["last_error"])
            async with serve(erp.app(), port=port):
                await until(lambda: sink.stats.events == 250, within_s=20, what=f"backlog: {sink.health()}")
                health = await next_json(watcher, lambda body: body["events"] == 250, what="the sink's health")
                assert health["database_online"] is True
    assert sorted(orders_stored(erp)) == sorted(f"WO-{i}" for i in range(250))


async def test_a_refused_body_is_dead_lettered_with_its_status_and_the_rest_delivered_then_replayed(
    tmp_path: Path,
) -> None:
    erp = Erp()
    async with serve(erp.app()) as base, start_broker(tmp_path) as broker:
        cfg = config(base, tmp_path)
        async with running(sink_of(cfg, str(broker.url))) as sink, publisher(broker.url) as pub:
            messages = [Message(DONE, order(i, quantity=-5 if i == 37 else None), qos=1) for i in range(80)]
            messages.insert(50, Message(DONE, orjson.dumps({"quantity": 1}), qos=1))  # no order_id to fill the URL
            await pub.publish_many(messages)
            await until(lambda: sink.stats.events == 79 and sink.stats.rejected == 2, within_s=20,
                        what=f"79 delivered, 2 refused: {sink.health()}")  # fmt: skip
        assert sink.stats.rejected_by_field == {"http": 1, "template": 1}
        assert sorted(orders_stored(erp)) == sorted(f"WO-{i}" for i in range(80) if i != 37)
        assert erp.requests == 80  # the refused order was posted once: the split of the batch re-sent nothing
        writer = RestWriter(config=cfg)
        letters = writer.dead_letters.list()
        assert [(letter.topic, letter.field) for letter in letters] == [(DONE, "http"), (DONE, "template")]
        assert letters[0].reason.startswith(f"HTTP 422 from POST {base}/api/orders/WO-37/complete: ")
        assert "must be >= 0" in letters[0].reason
        assert "${body.order_id}" in letters[1].reason
        assert orjson.loads(letters[0].payload)["order_id"] == "WO-37"
        # the ERP is fixed to take it; the replay sends it again and forgets it, the bad one stays
        erp.refuse_negative = False
        report = await _replayed(writer)
        assert (report.delivered, report.refused, report.unavailable) == (1, 1, None)
        assert orders_stored(erp)["WO-37"]["quantity"] == -5
        remaining = writer.dead_letters.list()
        assert [(letter.field, letter.replays) for letter in remaining] == [("template", 1)]


async def test_a_refused_samples_dead_letter_replays_as_the_same_sample(tmp_path: Path) -> None:
    # the dead letter keeps the envelope (docs/sinks.md): exact digits, datatype and unit, and the same key
    erp = Erp()
    payload = envelope(-(2**63), now_ms() - 1000, "Int64", unit="pcs")
    async with serve(erp.app()) as base, start_broker(tmp_path) as broker:
        body = {"quantity": "${body.value}", "unit": "${body.unit}", "datatype": "${body.datatype}"}
        cfg = config(base, tmp_path, routes=[{"match": "+/+/+/+/+/data/#", "url": base + "/api/counts", "body": body}])
        writer = RestWriter(config=cfg)
        async with running(sink_of(cfg, str(broker.url))) as sink, publisher(broker.url) as pub:
            await pub.publish_many([Message(COUNT, payload, qos=1)])
            await until(lambda: len(writer.dead_letters.list()) == 1, within_s=20, what=f"a letter: {sink.health()}")
        erp.refuse_negative = False
        report = await _replayed(writer)
    assert (report.delivered, report.refused, report.not_replayable, report.unavailable) == (1, 0, 0, None)
    sample = RowParser(max_future_ms=60_000).parse(COUNT, payload, now_ms=now_ms())
    assert isinstance(sample, SampleRow)
    key = message_context(sample, "erp")["key"]
    assert erp.stored == {key: {"quantity": -(2**63), "unit": "pcs", "datatype": "Int64"}}


async def test_basic_auth_and_a_wrong_password_dead_letters_with_401_until_fixed_and_replayed(tmp_path: Path) -> None:
    erp = Erp(authorization="Basic " + base64.b64encode(b"uns:s3cret").decode())
    async with serve(erp.app()) as base, start_broker(tmp_path) as broker:
        wrong = config(base, tmp_path, auth={"kind": "basic", "username": "uns", "password": "wrong"})
        sink = sink_of(wrong, str(broker.url))
        async with running(sink), publisher(broker.url) as pub:
            await pub.publish_many([Message(DONE, order(i), qos=1) for i in range(3)])
            await until(lambda: sink.stats.rejected == 3, within_s=20, what=f"3 refused: {sink.health()}")
            # a row is counted refused before its dead letter is written: wait for the letters themselves
            dead = RestWriter(config=wrong).dead_letters
            await until(lambda: len(dead.list()) == 3, within_s=20, what=f"3 dead letters: {sink.health()}")
        assert erp.stored == {}
        letters = RestWriter(config=wrong).dead_letters.list()
        assert {letter.reason.split(" from ")[0] for letter in letters} == {"HTTP 401"}
        assert all("wrong" not in letter.reason for letter in letters)
        right = config(base, tmp_path, auth={"kind": "basic", "username": "uns", "password": "s3cret"})
        writer = RestWriter(config=right)
        report = await _replayed(writer)
        assert report.delivered == 3
    assert sorted(orders_stored(erp)) == ["WO-0", "WO-1", "WO-2"]
