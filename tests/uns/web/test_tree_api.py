from __future__ import annotations

import asyncio
import base64
import dataclasses
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest

from tests.fixtures.running import running_task
from tests.fixtures.waiting import until
from tests.uns.web.serving import serving
from uns.broker.embedded import EmbeddedBroker
from uns.connect import local_clients, network_clients
from uns.mqtt.types import PubSub
from uns.sparkplug import DataType, Metric, Payload, encode_payload, encode_state
from uns.sparkplug import sparkplug_b_pb2 as pb
from uns.web import WebServer
from uns.web import tree_api as tree_api_module
from uns.web.cache import TopicCache
from uns.web.tree_api import render_payload, tree_routes, visible_paths

T0 = 1_764_000_000_000


@dataclasses.dataclass
class Rig:
    cache: TopicCache
    http: httpx.AsyncClient
    pub: PubSub
    cache_task: asyncio.Task[None]

    async def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        before = self.cache.stats.messages
        await self.pub.publish(topic, payload, qos=1, retain=retain)
        await until(lambda: self.cache.stats.messages > before, what=f"the cache to see {topic}")


@pytest.fixture
async def rig(broker: EmbeddedBroker) -> AsyncIterator[Rig]:
    cache = TopicCache(clients=local_clients(broker))
    routes = tree_routes(cache, heartbeat_s=30, interval_s=0.05)
    web = WebServer(bind="127.0.0.1", port=0, health={"web-cache": cache.health}, history=None, routes=routes)
    async with (
        cache,
        running_task(cache, name="test.cache") as cache_task,
        serving(web) as http,
        network_clients(broker.url)(client_id="test-pub") as pub,
    ):
        yield Rig(cache=cache, http=http, pub=pub, cache_task=cache_task)


def test_exports() -> None:
    for name in tree_api_module.__all__:
        assert hasattr(tree_api_module, name), name


async def test_tree_counts_and_errors(rig: Rig) -> None:
    for topic in ("acme/site/line1/data/t", "acme/site/line1/data/t", "acme/site/line2/data/p", "acme/site/kpi/oee"):
        await rig.publish(topic, b"1")
    body = (await rig.http.get("/api/tree", params={"prefix": "acme/site"})).json()
    assert body["prefix"] == "acme/site"
    assert (body["node"]["topics"], body["node"]["messages"], body["node"]["is_topic"]) == (3, 4, False)
    assert [(c["name"], c["topics"], c["messages"]) for c in body["children"]] == [
        ("line1", 1, 2),
        ("line2", 1, 1),
        ("kpi", 1, 1),
    ]
    assert body["truncated"] is False
    limited = (await rig.http.get("/api/tree", params={"prefix": "acme/site", "limit": "1"})).json()
    assert ([c["name"] for c in limited["children"]], limited["truncated"]) == (["line1"], True)
    leaf = (await rig.http.get("/api/tree", params={"prefix": "acme/site/line1/data"})).json()
    assert leaf["children"][0]["topic"]["count"] == 2
    root = (await rig.http.get("/api/tree")).json()
    assert [c["path"] for c in root["children"]] == ["acme"]
    missing = await rig.http.get("/api/tree", params={"prefix": "nope"})
    assert (missing.status_code, missing.json()["field"]) == (404, "prefix")
    bad = await rig.http.get("/api/tree", params={"limit": "lots"})
    assert bad.status_code == 400
    assert bad.json() == {"error": "limit: must be an integer from 1 to 100000 (got 'lots')", "field": "limit"}
    health = (await rig.http.get("/api/health")).json()
    assert health["web-cache"]["topics"] == 3


async def test_topic_payloads_and_the_truncation_marker(rig: Rig) -> None:
    envelope = b'{"value": 21.5, "timestamp_ms": 5, "quality": "good", "datatype": "Float"}'
    await rig.publish("acme/data/env", envelope, retain=True)
    await rig.publish("acme/data/text", "grüße".encode() * 20)
    await rig.publish("acme/data/bin", bytes(range(256)))
    env = (await rig.http.get("/api/topic", params={"topic": "acme/data/env"})).json()
    assert (env["encoding"], env["payload"], env["truncated"]) == ("json", orjson.loads(envelope), False)
    assert env["size"] == len(envelope)
    assert (env["info"]["value"], env["info"]["quality"], env["info"]["count"]) == (21.5, "good", 1)
    cut = (await rig.http.get("/api/topic", params={"topic": "acme/data/text", "max_bytes": "8"})).json()
    # 8 bytes end inside "ü" of the second word: the broken character is dropped, never garbled
    assert (cut["encoding"], cut["payload"], cut["truncated"], cut["size"]) == ("text", "grüßeg", True, 140)
    whole = (await rig.http.get("/api/topic", params={"topic": "acme/data/text"})).json()
    assert (whole["payload"], whole["truncated"]) == ("grüße" * 20, False)
    binary = (await rig.http.get("/api/topic", params={"topic": "acme/data/bin", "max_bytes": "16"})).json()
    assert (binary["encoding"], binary["truncated"], binary["size"]) == ("base64", True, 256)
    assert base64.b64decode(binary["payload"]) == bytes(range(16))
    missing = await rig.http.get("/api/topic", params={"topic": "acme/data/none"})
    assert (missing.status_code, missing.json()["field"]) == (404, "topic")
    bad = await rig.http.get("/api/topic", params={"topic": "acme/data/env", "max_bytes": "0"})
    assert (bad.status_code, bad.json()["field"]) == (400, "max_bytes")


@pytest.mark.parametrize(
    ("topic", "raw", "size", "max_bytes", "expected"),
    [
        ("a/b", b'{"x": 1}', 8, 100, {"encoding": "json", "payload": {"x": 1}, "truncated": False}),
        ("a/b", b'{"x": 1}', 8, 4, {"encoding": "text", "payload": '{"x"', "truncated": True}),
        ("a/b", b"plain", 5, 100, {"encoding": "text", "payload": "plain", "truncated": False}),
        ("a/b", b"ab\x00c", 4, 100, {"encoding": "base64", "payload": "YWIAYw==", "truncated": False}),
        ("a/b", b"\xff\xfe", 2, 100, {"encoding": "base64", "payload": "//4=", "truncated": False}),
        ("a/b", b"abc", 10, 100, {"encoding": "text", "payload": "abc", "truncated": True}),  # stored shorter
        ("a/b", b"", 0, 100, {"encoding": "text", "payload": "", "truncated": False}),
        (
            "spBv1.0/STATE/h",
            b'{"online": true, "timestamp": 1}',
            32,
            100,
            {"encoding": "json", "payload": {"online": True, "timestamp": 1}, "truncated": False},
        ),
    ],
)
def test_render_payload_table(topic: str, raw: bytes, size: int, max_bytes: int, expected: dict[str, object]) -> None:
    assert render_payload(topic, raw, size=size, max_bytes=max_bytes) == expected


def test_render_sparkplug_problems_and_limits() -> None:
    data = encode_payload(
        Payload(
            timestamp=T0,
            seq=3,
            metrics=[
                Metric(name="Blob", datatype=DataType.Bytes, value=b"\x01\x02"),
                Metric(name="NaN", datatype=DataType.Double, value=float("nan")),
                Metric(name="Arr", datatype=DataType.Int32Array, value=[1, -2]),
            ],
        )
    )
    shown = render_payload("spBv1.0/g/NDATA/n", data, size=len(data), max_bytes=10_000)
    assert shown["encoding"] == "sparkplug"
    metrics = shown["payload"]["metrics"]  # type: ignore[index]
    assert [m["value"] for m in metrics] == [{"base64": "AQI="}, "nan", [1, -2]]
    assert (shown["payload"]["seq"], shown["metrics_total"], shown["truncated"]) == (3, 3, False)  # type: ignore[index]
    few = render_payload("spBv1.0/g/NDATA/n", data, size=len(data), max_bytes=100)
    assert (len(few["payload"]["metrics"]), few["truncated"]) == (1, True)  # type: ignore[index]
    broken = render_payload("spBv1.0/g/NDATA/n", b"\x0a\xff", size=2, max_bytes=100)
    assert (broken["encoding"], broken["payload"]) == ("base64", "Cv8=")
    assert "spBv1.0/g/NDATA/n" in str(broken["error"])
    assert isinstance(broken["offset"], int)
    partial = render_payload("spBv1.0/g/NDATA/n", data[:5], size=len(data), max_bytes=100)
    assert (partial["encoding"], partial["truncated"]) == ("base64", True)
    assert "not decoded" in str(partial["error"])
    bad_topic = render_payload("spBv1.0/g/NOPE/n", b"hi", size=2, max_bytes=100)
    assert (bad_topic["encoding"], bad_topic["payload"]) == ("text", "hi")
    assert "unknown message type" in str(bad_topic["error"])


def _spb(seq: int | None, *metrics: Metric) -> bytes:
    return encode_payload(Payload(timestamp=T0, seq=seq, metrics=list(metrics)))


def _without_datatypes(data: bytes) -> bytes:
    message = pb.Payload.FromString(data)
    for metric in message.metrics:
        metric.ClearField("datatype")
    return message.SerializeToString()


async def test_sparkplug_births_alias_data_and_death(rig: Rig) -> None:
    bd_seq = Metric(name="bdSeq", datatype=DataType.Int64, value=4)
    await rig.publish("spBv1.0/STATE/scada", encode_state(True, T0), retain=True)
    await rig.publish(
        "spBv1.0/plant/NBIRTH/edge1", _spb(0, bd_seq, Metric(name="Up", datatype=DataType.Int64, value=1))
    )
    birth = _spb(1, Metric(name="Production/Temp", alias=7, datatype=DataType.Float, value=70.5))
    await rig.publish("spBv1.0/plant/DBIRTH/edge1/filler", birth)
    # DATA by alias only, no name and no datatype, as Sparkplug recommends
    data = _without_datatypes(_spb(2, Metric(alias=7, datatype=DataType.Float, value=72.25)))
    await rig.publish("spBv1.0/plant/DDATA/edge1/filler", data)

    shown = (await rig.http.get("/api/topic", params={"topic": "spBv1.0/plant/DDATA/edge1/filler"})).json()
    assert (shown["encoding"], shown["message_type"], shown["truncated"], shown["problems"]) == (
        "sparkplug",
        "DDATA",
        False,
        [],
    )
    assert shown["payload"]["seq"] == 2
    assert shown["payload"]["metrics"] == [
        {"name": "Production/Temp", "alias": 7, "timestamp": None, "datatype": "Float", "value": 72.25}
    ]
    nbirth = (await rig.http.get("/api/topic", params={"topic": "spBv1.0/plant/NBIRTH/edge1"})).json()
    assert [(m["name"], m["value"]) for m in nbirth["payload"]["metrics"]] == [("bdSeq", 4), ("Up", 1)]

    status = (await rig.http.get("/api/sparkplug/nodes")).json()
    (node,) = status["nodes"]
    assert (node["group_id"], node["edge_node_id"], node["online"], node["bd_seq"], node["births"]) == (
        "plant",
        "edge1",
        True,
        4,
        1,
    )
    assert (node["rebirths"], node["last_seq"], node["devices"][0]["device_id"], node["devices"][0]["online"]) == (
        0,
        2,
        "filler",
        True,
    )
    assert [(h["host_id"], h["online"]) for h in status["hosts"]] == [("scada", True)]

    await rig.publish("spBv1.0/plant/NDEATH/edge1", _spb(None, bd_seq))
    dead = (await rig.http.get("/api/sparkplug/nodes")).json()["nodes"][0]
    assert (dead["online"], dead["devices"][0]["online"]) == (False, False)
    assert dead["last_death_ms"] is not None
    await rig.publish("spBv1.0/plant/NBIRTH/edge1", _spb(0, Metric(name="bdSeq", datatype=DataType.Int64, value=5)))
    again = (await rig.http.get("/api/sparkplug/nodes")).json()["nodes"][0]
    assert (again["online"], again["births"], again["rebirths"], again["bd_seq"]) == (True, 2, 1, 5)


async def test_search_route(rig: Rig) -> None:
    for line in range(3):
        await rig.publish(f"acme/line{line}/data/Temp", b"1")
    await rig.publish("acme/line0/data/Speed", b"1")
    found = (await rig.http.get("/api/search", params={"q": "TEMP", "limit": "2"})).json()
    assert ([t["topic"] for t in found["topics"]], found["more"]) == (
        ["acme/line0/data/Temp", "acme/line1/data/Temp"],
        True,
    )
    everything = (await rig.http.get("/api/search", params={"q": "line0"})).json()
    assert ([t["topic"] for t in everything["topics"]], everything["more"]) == (
        ["acme/line0/data/Temp", "acme/line0/data/Speed"],
        False,
    )
    assert (await rig.http.get("/api/search", params={"limit": "-1"})).status_code == 400


async def _events(response: httpx.Response, into: list[dict[str, object]]) -> None:
    async for line in response.aiter_lines():
        if line.startswith("data: "):
            into.extend(orjson.loads(line[6:])["updates"])


async def test_stream_sends_coalesced_batches_and_ends_when_the_client_goes(rig: Rig) -> None:
    seen: list[dict[str, object]] = []
    async with rig.http.stream("GET", "/api/stream", params={"prefix": "acme/line1"}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        reader = asyncio.create_task(_events(response, seen), name="test.sse")
        await until(lambda: rig.cache.health()["streams"] == 1, what="the stream to subscribe")
        for index in range(1, 201):
            await rig.pub.publish("acme/line1/data/t", str(index).encode())
            await rig.pub.publish("acme/line2/data/t", str(index).encode())  # outside the prefix
        await until(lambda: any(u["count"] == 200 for u in seen), what="the last count in a batch")
        assert {u["topic"] for u in seen} == {"acme/line1/data/t"}
        assert len(seen) < 200  # coalesced: far fewer updates than messages
        counts = [int(str(u["count"])) for u in seen]
        assert counts == sorted(counts)
        reader.cancel()
    await until(lambda: rig.cache.health()["streams"] == 0, what="the stream to end after the client left")


async def test_stream_ends_cleanly_when_the_cache_stops(rig: Rig) -> None:
    seen: list[dict[str, object]] = []
    async with rig.http.stream("GET", "/api/stream") as response:
        reader = asyncio.create_task(_events(response, seen), name="test.sse")
        await until(lambda: rig.cache.health()["streams"] == 1, what="the stream to subscribe")
        await rig.publish("acme/x", b"1")
        await until(lambda: len(seen) == 1, what="one update")
        rig.cache_task.cancel()
        await asyncio.wait_for(reader, 5)  # the response body ended: no hang, no error
    assert seen[0]["topic"] == "acme/x"


@pytest.mark.parametrize(
    ("topic", "watched", "rows"),
    [
        ("a/b/c", {""}, ["a"]),
        ("a/b/c", {"", "a"}, ["a", "a/b"]),
        ("a/b/c", {"", "a", "a/b"}, ["a", "a/b", "a/b/c"]),
        ("a/b/c", {"a/b"}, ["a/b/c"]),  # a search row's parent, say: only what is shown
        ("a/b/c", {"x", "a/b/c"}, []),  # a topic's own children: none
        ("x/b", {"a"}, []),
    ],
)
def test_visible_paths(topic: str, watched: set[str], rows: list[str]) -> None:
    assert list(visible_paths(topic, frozenset(watched))) == rows


async def test_tree_pages_and_filters(rig: Rig) -> None:
    for index in range(5):
        await rig.publish(f"acme/l1/data/m{index}", b'{"value": 1, "quality": "good"}')
    await rig.publish("acme/l1/data/m2", b'{"value": 1, "quality": "stale"}')
    await rig.publish("acme/l1/kpi/oee", b'{"value": 0.5, "quality": "good"}')
    first = (await rig.http.get("/api/tree", params={"prefix": "acme/l1/data", "limit": "2"})).json()
    assert ([c["name"] for c in first["children"]], first["more"], first["truncated"]) == (["m0", "m1"], 3, True)
    assert isinstance(first["now_ms"], int)
    rest = (await rig.http.get("/api/tree", params={"prefix": "acme/l1/data", "after": "m1"})).json()
    assert ([c["name"] for c in rest["children"]], rest["more"]) == (["m2", "m3", "m4"], 0)
    assert [(c["problems"], c["topic"]["quality"]) for c in rest["children"]] == [
        (1, "stale"),
        (0, "good"),
        (0, "good"),
    ]
    stale = (await rig.http.get("/api/tree", params={"prefix": "acme/l1", "quality": "problem"})).json()
    assert ([c["name"] for c in stale["children"]], stale["node"]["problems"]) == (["data"], 1)
    kpi = (await rig.http.get("/api/tree", params={"prefix": "acme/l1", "class": "kpi"})).json()
    assert [c["name"] for c in kpi["children"]] == ["kpi"]
    recent = (await rig.http.get("/api/tree", params={"prefix": "acme/l1", "changed_s": "60"})).json()
    assert [c["name"] for c in recent["children"]] == ["data", "kpi"]
    found = (await rig.http.get("/api/search", params={"q": "acme/l1", "quality": "problem"})).json()
    assert [t["topic"] for t in found["topics"]] == ["acme/l1/data/m2"]
    for params, field in (
        ({"class": "alarms"}, "class"),  # alarm is a class word now; its plural is not
        ({"quality": "good"}, "quality"),
        ({"changed_s": "-1"}, "changed_s"),
    ):
        bad = await rig.http.get("/api/tree", params={"prefix": "acme", **params})
        assert (bad.status_code, bad.json()["field"]) == (400, field)


async def test_topic_raw_bytes_share_the_size_limit(rig: Rig) -> None:
    envelope = b'{"value": 21.5, "quality": "good"}'
    await rig.publish("acme/data/env", envelope)
    whole = (await rig.http.get("/api/topic", params={"topic": "acme/data/env", "raw": "base64"})).json()
    assert (base64.b64decode(whole["raw_base64"]), whole["raw_truncated"], whole["encoding"]) == (
        envelope,
        False,
        "json",
    )
    cut = (
        await rig.http.get("/api/topic", params={"topic": "acme/data/env", "raw": "base64", "max_bytes": "8"})
    ).json()
    assert (base64.b64decode(cut["raw_base64"]), cut["raw_truncated"], cut["truncated"]) == (envelope[:8], True, True)
    plain = (await rig.http.get("/api/topic", params={"topic": "acme/data/env"})).json()
    assert "raw_base64" not in plain
    bad = await rig.http.get("/api/topic", params={"topic": "acme/data/env", "raw": "hex"})
    assert (bad.status_code, bad.json()["field"]) == (400, "raw")


async def _node_events(response: httpx.Response, into: list[dict[str, object]]) -> None:
    async for line in response.aiter_lines():
        if line.startswith("data: "):
            into.extend(orjson.loads(line[6:])["nodes"])


async def test_watched_stream_sends_only_shown_rows(rig: Rig) -> None:
    await rig.publish("acme/l1/data/t", b"0")
    since = (await rig.http.get("/api/tree")).json()["now_ms"] - 60_000
    seen: list[dict[str, object]] = []
    params = [("watch", ""), ("watch", "acme"), ("topic", "other/x/y"), ("since", str(since))]
    async with rig.http.stream("GET", "/api/stream", params=tuple(params)) as response:
        reader = asyncio.create_task(_node_events(response, seen), name="test.sse")
        await until(lambda: len(seen) == 2, what="the rows changed since `since`")
        assert {row["path"] for row in seen} == {"acme", "acme/l1"}
        seen.clear()
        for index in range(1, 51):
            await rig.pub.publish("acme/l1/data/t", str(index).encode())
            await rig.pub.publish("acme/l2/data/t", b"1")
            await rig.pub.publish("other/x/y", b"1")
            await rig.pub.publish("other/x/z", b"1")  # neither watched nor followed
        await until(lambda: any(row["messages"] == 51 for row in seen if row["path"] == "acme/l1"), what="51")
        assert {row["path"] for row in seen} == {"acme", "acme/l1", "acme/l2", "other", "other/x/y"}
        followed = [row for row in seen if row["path"] == "other/x/y"]
        assert all(row["is_topic"] and row["topic"] is not None for row in followed)
        assert len(seen) < 5 * 50  # coalesced per row
        reader.cancel()
    too_many = await rig.http.get("/api/stream", params=[("watch", f"a{i}") for i in range(201)])
    assert (too_many.status_code, too_many.json()["field"]) == (400, "watch")


async def test_a_filtered_search_cut_before_its_answers_ran_out_says_more(rig: Rig) -> None:
    # limit 1 looks at 20 names: the one stale topic is the 25th, so the answer may not say "nothing more"
    for index in range(24):
        await rig.publish(f"acme/l2/data/m{index:02}", b'{"value": 1, "quality": "good"}')
    await rig.publish("acme/l2/data/m24", b'{"value": 1, "quality": "stale"}')
    cut = (await rig.http.get("/api/search", params={"q": "acme/l2", "quality": "problem", "limit": "1"})).json()
    assert (cut["topics"], cut["more"]) == ([], True)
    whole = (await rig.http.get("/api/search", params={"q": "acme/l2", "quality": "problem", "limit": "2"})).json()
    assert ([t["topic"] for t in whole["topics"]], whole["more"]) == (["acme/l2/data/m24"], False)
