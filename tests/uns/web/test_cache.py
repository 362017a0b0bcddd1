from __future__ import annotations

import asyncio
import gc
import math
import statistics
import time
from pathlib import Path

import pytest

from tests.fixtures.broker import start_broker
from tests.fixtures.running import running_task
from tests.fixtures.waiting import until
from tests.uns.web.offline import T0, Clock, offline_cache
from uns.connect import local_clients, network_clients
from uns.errors import PayloadDecodeError, SparkplugError
from uns.mqtt.types import Message
from uns.sparkplug import DataType, Metric, Payload, encode_payload, encode_state
from uns.web import cache as cache_module
from uns.web import search_index, sparkplug_view
from uns.web.cache import TopicCache, TreeFilter
from uns.web.sparkplug_view import SparkplugView


def _put(cache: TopicCache, topic: str, payload: bytes = b"1", *, retain: bool = False, now: int | None = None) -> None:
    cache.observe(Message(topic=topic, payload=payload, retain=retain), now_ms=now)


def _spb(seq: int | None, *metrics: Metric) -> bytes:
    return encode_payload(Payload(timestamp=T0, seq=seq, metrics=list(metrics)))


def test_exports() -> None:
    for module in (cache_module, sparkplug_view, search_index):
        for name in module.__all__:
            assert hasattr(module, name), name


def test_children_count_subtrees_and_put_equipment_levels_first() -> None:
    cache = offline_cache()
    for topic in ("acme/site/data/x", "acme/site/line1/data/t", "acme/site/line1/data/p", "acme", "spBv1.0/g/x"):
        _put(cache, topic)
    _put(cache, "acme/site/line1/data/t")
    _put(cache, "Zeta/a")
    top = cache.children("")
    assert [(n.name, n.topics, n.messages, n.is_topic) for n in top] == [
        ("acme", 4, 5, True),
        ("Zeta", 1, 1, False),
        ("spBv1.0", 1, 1, False),
    ]
    site = cache.children("acme/site")
    assert [(n.name, n.path, n.topics, n.messages, n.children) for n in site] == [
        ("line1", "acme/site/line1", 2, 3, 1),
        ("data", "acme/site/data", 1, 1, 1),
    ]
    leaf = cache.children("acme/site/line1/data")
    assert [(n.name, n.topic.count if n.topic else None) for n in leaf] == [("p", 1), ("t", 2)]
    assert cache.children("nothing/here") == []
    assert cache.children("acme/site/line1/data/t") == []
    assert cache.node("acme/site") is not None
    assert cache.node("acme/nothing") is None
    assert cache.children("acme/site", limit=1)[0].name == "line1"


@pytest.mark.parametrize(
    ("payload", "value", "quality", "stamp"),
    [
        (b'{"value": 72.5, "timestamp_ms": 5, "quality": "good", "datatype": "Float"}', 72.5, "good", 5),
        (b'{"value": "running", "timestamp_ms": 6, "quality": "stale"}', "running", "stale", 6),
        (b'{"value": [1, 2], "timestamp_ms": 7, "quality": "bad"}', None, "bad", 7),
        (b'{"value": 21.5}', 21.5, "good", T0),  # a plain publisher: good, as of its arrival
        # what the one reader (model.envelope) refuses is shown raw, as the historian dead-letters it
        (b'{"value": true, "quality": "weird"}', None, None, None),
        (b'{"value": 1, "timestamp_ms": true}', None, None, None),
        (b'{"value": "many", "timestamp_ms": 1, "datatype": "Int32"}', None, None, None),
        (b'{"value": oops', None, None, None),
        (b'{"other": 1}', None, None, None),
        (b"42", None, None, None),
    ],
)
def test_envelopes_are_read(payload: bytes, value: object, quality: str | None, stamp: int | None) -> None:
    cache = offline_cache()
    _put(cache, "a/data/x", payload)
    info = cache.info("a/data/x")
    assert info is not None
    assert (info.value, info.quality, info.timestamp_ms) == (value, quality, stamp)
    assert cache.payload("a/data/x") == payload


def test_long_string_values_are_cut_but_the_payload_is_kept() -> None:
    cache = offline_cache()
    body = b'{"value": "' + b"x" * 1000 + b'", "quality": "good"}'
    _put(cache, "a/data/s", body)
    info = cache.info("a/data/s")
    assert info is not None
    assert info.value == "x" * 256
    assert cache.payload("a/data/s") == body


def test_payloads_are_capped_per_topic_and_in_total() -> None:
    cache = offline_cache(max_payload_bytes=1000, payload_budget_bytes=1500)
    _put(cache, "big/1", b"a" * 5000)
    first = cache.info("big/1")
    assert first is not None
    assert (first.size, first.stored) == (5000, 1000)
    _put(cache, "big/2", b"b" * 900)  # would pass the budget: kept lean
    second = cache.info("big/2")
    assert second is not None
    assert (second.size, second.stored) == (900, 256)
    assert cache.stats.payloads_shortened == 1
    _put(cache, "big/1", b"c" * 10)  # room again
    _put(cache, "big/2", b"d" * 900)
    assert cache.payload("big/2") == b"d" * 900
    assert cache.stats.payload_bytes == 910


def test_topics_past_the_limit_are_counted_not_kept() -> None:
    cache = offline_cache(max_topics=2)
    for topic in ("a/x", "b", "c/d/e", "a/y/z", "a/x"):
        _put(cache, topic)
    assert cache.stats.topics == 2
    assert cache.stats.topics_refused == 2
    assert cache.info("c/d/e") is None
    assert [n.name for n in cache.children("")] == ["a", "b"]  # no empty levels left behind
    assert [n.name for n in cache.children("a")] == ["x"]
    info = cache.info("a/x")
    assert info is not None
    assert info.count == 2


def test_rate_decays_over_about_ten_seconds() -> None:
    clock = Clock()
    cache = offline_cache(clock)
    for step in range(200):  # 20 msgs/s for 10 s
        _put(cache, "r/x", now=T0 + step * 50)
    clock.ms = T0 + 199 * 50
    info = cache.info("r/x")
    assert info is not None
    assert 11.0 < info.rate < 20.0  # the 10 s window has not filled completely: 20 * (1 - e^-1) ≈ 12.6
    node = cache.node("r")
    assert node is not None
    assert node.rate == info.rate
    clock.ms += 30_000
    later = cache.info("r/x")
    assert later is not None
    assert later.rate < info.rate * 0.06
    assert (later.first_ms, later.last_ms, later.count) == (T0, T0 + 199 * 50, 200)


def test_retained_flag_follows_retained_messages_only() -> None:
    cache = offline_cache()
    _put(cache, "k/v", b"1", retain=True)
    _put(cache, "k/v", b"2")  # a live update of a retained topic
    assert cache.info("k/v").retained is True  # type: ignore[union-attr]
    _put(cache, "k/v", b"", retain=True)  # the retained value cleared
    assert cache.info("k/v").retained is False  # type: ignore[union-attr]


def test_search_any_case_with_limit_and_new_topics() -> None:
    cache = offline_cache()
    for index in range(5):
        _put(cache, f"acme/line{index}/data/Temp")
    _put(cache, "acme/line0/data/Speed")
    assert [i.topic for i in cache.search("temp", 3)] == [f"acme/line{i}/data/Temp" for i in range(3)]
    assert [i.topic for i in cache.search("LINE0")] == ["acme/line0/data/Temp", "acme/line0/data/Speed"]
    _put(cache, "other/temperature")
    assert [i.topic for i in cache.search("TEMPER")] == ["other/temperature"]
    assert cache.search("nope") == []
    assert len(cache.search("", 100)) == 7


def test_search_keeps_the_first_seen_order_across_first_levels_and_skips_those_asked() -> None:
    # the index is kept per first level (a reader skips one hidden from it whole): the order is still first seen
    cache = offline_cache()
    topics = ["b/x1", "a/x2", "b/x3", "c/x4", "a/x5", "b/x6"]
    for topic in topics:
        _put(cache, topic)
    assert [i.topic for i in cache.search("x")] == topics
    assert [i.topic for i in cache.search("X", 4)] == topics[:4]
    assert [i.topic for i in cache.search("x", 3, skip={"b"})] == ["a/x2", "c/x4", "a/x5"]
    assert [i.topic for i in cache.search("x", 2, keep=lambda topic: topic != "a/x2", skip={"c"})] == ["b/x1", "b/x3"]
    _put(cache, "a/x7")  # only a's index is made again
    assert [i.topic for i in cache.search("x", 10, skip=("a",))] == ["b/x1", "b/x3", "c/x4", "b/x6"]
    assert [i.topic for i in cache.search("7")] == ["a/x7"]


def test_search_over_thousands_of_first_levels_asks_only_up_to_the_limit_and_stays_fast() -> None:
    # 10,000 first levels (devices publishing outside the ISA-95 shape), each with one match seen late: the
    # first 100 matches are the first 100 devices'; only those are given to keep (a decide each for a restricted
    # reader; all 10,000 were) and the merge stays linear (it was sorted whole per first level: ~0.7 s)
    cache = offline_cache()
    devices = 10_000
    for name in ("status", "temp"):
        for device in range(devices):
            _put(cache, f"dev{device}/{name}")
    asked: list[str] = []

    def keep(topic: str) -> bool:
        asked.append(topic)
        return True

    found = [info.topic for info in cache.search("temp", 100, keep=keep)]
    assert found == [f"dev{device}/temp" for device in range(100)]
    assert asked == found
    runs = []
    for _ in range(5):
        began = time.perf_counter()
        cache.search("temp", 100, keep=keep)
        runs.append(time.perf_counter() - began)
    assert statistics.median(runs) < 0.2


# -- Sparkplug ------------------------------------------------------------------------------------


def test_sparkplug_node_and_device_lifecycle() -> None:
    view = SparkplugView()
    bd0 = Metric(name="bdSeq", datatype=DataType.Int64, value=0)
    view.observe("spBv1.0/g/NBIRTH/n", _spb(0, bd0, Metric(name="Up", alias=1, datatype=DataType.Int64, value=1)), T0)
    view.observe("spBv1.0/g/DBIRTH/n/d", _spb(1, Metric(name="Temp", alias=2, datatype=DataType.Float, value=1.5)), T0)
    view.observe("spBv1.0/g/DDATA/n/d", _spb(2, Metric(alias=2, datatype=DataType.Float, value=2.5)), T0 + 1)
    view.observe("spBv1.0/g/NCMD/n", _spb(None, Metric(name="Node Control/Rebirth", datatype=DataType.Boolean)), T0)
    (node,) = view.edge_nodes()
    assert (node.online, node.bd_seq, node.births, node.rebirths, node.last_seq, node.commands) == (
        True,
        0,
        1,
        0,
        2,
        1,
    )
    assert [(d.device_id, d.online, d.births) for d in node.devices] == [("d", True, 1)]
    # an NDEATH of an older session leaves this one online
    view.observe("spBv1.0/g/NDEATH/n", _spb(None, Metric(name="bdSeq", datatype=DataType.Int64, value=7)), T0 + 2)
    assert view.edge_nodes()[0].online is True
    assert view.edge_nodes()[0].stale_deaths == 1
    view.observe("spBv1.0/g/NDEATH/n", _spb(None, bd0), T0 + 3)
    dead = view.edge_nodes()[0]
    assert (dead.online, dead.last_death_ms, dead.devices[0].online) == (False, T0 + 3, False)
    # rebirth with the next bdSeq
    view.observe("spBv1.0/g/NBIRTH/n", _spb(0, Metric(name="bdSeq", datatype=DataType.Int64, value=1)), T0 + 4)
    view.observe("spBv1.0/g/DBIRTH/n/d", _spb(1), T0 + 5)
    view.observe("spBv1.0/g/DDEATH/n/d", _spb(2), T0 + 6)
    again = view.edge_nodes()[0]
    assert (again.online, again.bd_seq, again.births, again.rebirths, again.last_seq) == (True, 1, 2, 1, 2)
    assert (again.devices[0].online, again.devices[0].rebirths, again.devices[0].last_death_ms) == (False, 1, T0 + 6)


def test_sparkplug_alias_lookup_from_births() -> None:
    from uns.sparkplug import SparkplugTopic

    view = SparkplugView()
    view.observe("spBv1.0/g/NBIRTH/n", _spb(0, Metric(name="Up", alias=1, datatype=DataType.Int64, value=1)), T0)
    view.observe("spBv1.0/g/DBIRTH/n/d", _spb(1, Metric(name="Temp", alias=2, datatype=DataType.Float, value=1)), T0)
    lookup = view.alias_lookup(SparkplugTopic.from_str("spBv1.0/g/DDATA/n/d"))
    assert lookup is not None
    assert lookup(None, 2) == ("Temp", DataType.Float)
    assert lookup("Temp", None) == ("Temp", DataType.Float)
    assert lookup(None, 99) is None
    assert view.alias_lookup(SparkplugTopic.from_str("spBv1.0/g/NDATA/other")) is None


def test_sparkplug_state_and_bad_input() -> None:
    view = SparkplugView()
    view.observe("spBv1.0/STATE/scada", encode_state(True, T0), T0 + 1)
    assert [(h.host_id, h.online, h.timestamp) for h in view.hosts()] == [("scada", True, T0)]
    with pytest.raises(PayloadDecodeError) as caught:
        view.observe("spBv1.0/g/NDATA/n", b"\x0a\xff", T0)
    assert caught.value.offset >= 0
    assert view.edge_nodes()[0].bad_payloads == 1
    assert "spBv1.0/g/NDATA/n" in (view.edge_nodes()[0].last_error or "")
    with pytest.raises(SparkplugError, match="unknown message type"):
        view.observe("spBv1.0/g/NOPE/n", b"", T0)
    with pytest.raises(SparkplugError, match="online"):
        view.observe("spBv1.0/STATE/scada", b'{"online": 1}', T0)


def test_cache_counts_bad_sparkplug_and_keeps_the_payload() -> None:
    cache = offline_cache()
    _put(cache, "spBv1.0/g/NDATA/n", b"\x0a\xff")
    assert cache.stats.sparkplug_errors == 1
    assert cache.payload("spBv1.0/g/NDATA/n") == b"\x0a\xff"
    assert cache.health()["edge_nodes"] == 1


# -- update streams ---------------------------------------------------------------------------------


async def test_updates_coalesce_latest_per_topic_under_the_prefix() -> None:
    cache = offline_cache()
    stream = cache.updates("acme/line1", interval_s=0.2)
    first = asyncio.ensure_future(anext(stream))
    await until(lambda: cache.health()["streams"] == 1, what="the stream to subscribe")
    _put(cache, "acme/line1/data/t", b"0")
    assert [u.topic for u in await asyncio.wait_for(first, 5)] == ["acme/line1/data/t"]
    for index in range(1, 500):
        _put(cache, "acme/line1/data/t", str(index).encode())
        _put(cache, "acme/line1/data/p", str(index).encode())
        _put(cache, "acme/line10/data/t")  # another line with the same prefix text
        _put(cache, "acme/line2/data/t")
    batch = await asyncio.wait_for(anext(stream), 5)
    assert sorted((u.topic, u.count) for u in batch) == [("acme/line1/data/p", 499), ("acme/line1/data/t", 500)]
    await stream.aclose()
    assert cache.health()["streams"] == 0


async def test_updates_heartbeat_when_idle() -> None:
    cache = offline_cache()
    stream = cache.updates("", idle_s=0.05)
    assert await asyncio.wait_for(anext(stream), 5) == []
    await stream.aclose()


# -- against the real embedded broker ------------------------------------------------------------------


async def test_live_cache_over_the_embedded_broker_ends_streams_on_stop(tmp_path: Path) -> None:
    async with start_broker(tmp_path) as broker:
        async with local_clients(broker)(client_id="seed") as seed:
            # in-process: stored as retained before publish() returns (a network PUBACK comes a bit earlier)
            await seed.publish(
                "acme/site/data/kept", b'{"value": 1, "quality": "good", "timestamp_ms": 1}', retain=True
            )
        async with network_clients(broker.url)(client_id="pub") as pub:
            cache = TopicCache(clients=local_clients(broker))
            async with cache, running_task(cache, name="test.cache") as runner, asyncio.TaskGroup() as tasks:
                await until(lambda: cache.info("acme/site/data/kept") is not None, what="the retained message")
                kept = cache.info("acme/site/data/kept")
                assert kept is not None
                assert (kept.retained, kept.value, kept.quality) == (True, 1, "good")
                stream = cache.updates("acme")
                batches: list[list[str]] = []

                async def read() -> None:
                    async for batch in stream:
                        batches.append([u.topic for u in batch])

                reader = tasks.create_task(read(), name="test.reader")
                await until(lambda: cache.health()["streams"] == 1, what="the stream")
                await pub.publish("acme/site/data/live", b"7")
                await until(lambda: ["acme/site/data/live"] in batches, what="a batch with the live topic")
                live = cache.info("acme/site/data/live")
                assert live is not None
                assert (live.retained, live.count, live.size) == (False, 1, 1)
                runner.cancel()
                await asyncio.wait_for(reader, 5)  # the stream ended because the cache stopped
            assert cache.health()["streams"] == 0


# -- 100k topics --------------------------------------------------------------------------------------


def _rss_kib() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4


def test_hundred_thousand_topics_stay_fast_and_small() -> None:
    gc.collect()
    before = _rss_kib()
    cache = offline_cache()
    envelope = b'{"value": %d.5, "timestamp_ms": 1764000000123, "quality": "good", "datatype": "Float", "unit": "degC"}'
    started = time.perf_counter()
    for area in range(10):
        for line in range(10):
            for cell in range(20):
                base = f"acme/dallas/area{area}/line{line}/cell{cell}/data/"
                for metric in range(50):
                    payload = envelope % metric  # a payload object per topic, as from a broker
                    cache.observe(Message(topic=f"{base}m{metric}", payload=payload, retain=True), now_ms=T0)
    ingest_s = time.perf_counter() - started
    grown_mib = (_rss_kib() - before) / 1024
    assert cache.stats.topics == 100_000

    def timed(call: object) -> float:
        runs = []
        for _ in range(7):
            began = time.perf_counter()
            call()  # type: ignore[operator]
            runs.append(time.perf_counter() - began)
        return statistics.median(runs) * 1000

    top_ms = timed(lambda: cache.children(""))
    cell_ms = timed(lambda: cache.children("acme/dallas/area3/line4/cell5/data"))
    cache.search("x")  # builds the index once
    search_ms = timed(lambda: cache.search("area9/line9/cell19/data/m4", 20))
    print(
        f"\n100k topics: ingest {ingest_s:.2f} s ({100_000 / ingest_s:,.0f} msg/s), RSS +{grown_mib:.0f} MiB,"
        f" children(root) {top_ms:.3f} ms, children(50) {cell_ms:.3f} ms, search {search_ms:.2f} ms"
    )
    assert cache.children("")[0].topics == 100_000
    assert len(cache.children("acme/dallas/area3/line4/cell5/data")) == 50
    assert top_ms < 5
    assert cell_ms < 5
    assert search_ms < 50
    assert grown_mib < 300


def test_pages_follow_tree_order_and_count_what_is_left() -> None:
    cache = offline_cache()
    for index in range(10):
        _put(cache, f"acme/cell/data/m{index}")
    first = cache.page("acme/cell/data", limit=4)
    assert ([n.name for n in first.shown], first.more) == (["m0", "m1", "m2", "m3"], 6)
    second = cache.page("acme/cell/data", limit=4, after="m3")
    assert ([n.name for n in second.shown], second.more) == (["m4", "m5", "m6", "m7"], 2)
    _put(cache, "acme/cell/data/m35")  # a new child joins the order between pages
    third = cache.page("acme/cell/data", limit=4, after="m7")
    assert ([n.name for n in third.shown], third.more) == (["m8", "m9"], 0)
    assert [n.name for n in cache.page("acme/cell/data", after="m3", limit=1).shown] == ["m35"]
    assert cache.page("nothing").shown == ()


def _filtered_cache(clock: Clock) -> TopicCache:
    cache = offline_cache(clock)
    good, stale = b'{"value": 1, "quality": "good"}', b'{"value": 1, "quality": "stale"}'
    _put(cache, "acme/l1/c1/data/t", good, now=T0)
    _put(cache, "acme/l1/kpi/oee", good, now=T0)
    _put(cache, "acme/l2/c1/data/t", stale, now=T0)
    _put(cache, "acme/l2/c1/mes/state", b"{}", now=T0 + 50_000)
    _put(cache, "spBv1.0/g/NDATA/n", b"", now=T0)
    return cache


def test_the_class_filter_finds_the_rules_alarms() -> None:
    # a retained alarm document lives under <path>/alarm/<name> (docs/rules.md#alarms)
    clock = Clock()
    cache = _filtered_cache(clock)
    _put(cache, "acme/l2/c1/alarm/too-hot", b'{"state": "active"}', now=T0)
    wanted = TreeFilter(class_word="alarm")
    assert [n.name for n in cache.page("", wanted=wanted).shown] == ["acme"]
    assert [n.name for n in cache.page("acme", wanted=wanted).shown] == ["l2"]
    assert cache.admits("acme/l2/c1/alarm/too-hot", wanted)
    assert not cache.admits("acme/l2/c1/data/t", wanted)


@pytest.mark.parametrize(
    ("wanted", "top", "lines", "stale_topic_passes"),
    [
        (TreeFilter(), ["acme", "spBv1.0"], ["l1", "l2"], True),
        (TreeFilter(class_word="kpi"), ["acme"], ["l1"], False),
        (TreeFilter(class_word="mes"), ["acme"], ["l2"], False),
        (TreeFilter(class_word="cmd"), [], [], False),
        (TreeFilter(problems=True), ["acme"], ["l2"], True),
        (TreeFilter(changed_ms=20_000), ["acme"], ["l2"], False),  # the clock is at T0 + 60 s
        (TreeFilter(changed_ms=90_000), ["acme", "spBv1.0"], ["l1", "l2"], True),
        (TreeFilter(class_word="data", problems=True), ["acme"], ["l2"], True),
        # counts per field, not per topic: acme has a kpi and a problem, neither line has both
        (TreeFilter(class_word="kpi", problems=True), ["acme"], [], False),
    ],
)
def test_tree_filters(wanted: TreeFilter, top: list[str], lines: list[str], stale_topic_passes: bool) -> None:
    clock = Clock()
    cache = _filtered_cache(clock)
    clock.ms = T0 + 60_000
    assert [n.name for n in cache.page("", wanted=wanted).shown] == top
    assert [n.name for n in cache.page("acme", wanted=wanted).shown] == lines
    assert cache.admits("acme/l2/c1/data/t", wanted) is stale_topic_passes


def test_problem_counts_follow_quality_changes() -> None:
    clock = Clock()
    cache = _filtered_cache(clock)
    root = cache.node("acme")
    assert root is not None
    assert (root.problems, root.last_ms) == (1, T0 + 50_000)
    _put(cache, "acme/l1/c1/data/t", b'{"value": 1, "quality": "bad"}')
    _put(cache, "acme/l2/c1/data/t", b'{"value": 2, "quality": "good"}')
    assert [(n.name, n.problems) for n in cache.children("acme")] == [("l1", 1), ("l2", 0)]
    _put(cache, "acme/l1/c1/data/t", b"not an envelope")
    assert [n.problems for n in cache.children("")] == [0, 0]
    with pytest.raises(ValueError, match="class_word: one of data, kpi, mes, cmd, alarm"):
        TreeFilter(class_word="alarms")


def test_an_older_envelope_is_counted_but_never_replaces_the_latest() -> None:
    cache = offline_cache()
    topic = "acme/site/line1/cell/data/Temp"

    def env(value: float, ts: int, quality: str = "good") -> bytes:
        return b'{"value": %r, "timestamp_ms": %d, "quality": "%s", "datatype": "Double"}' % (
            value,
            ts,
            quality.encode(),
        )

    _put(cache, topic, env(2.0, T0), retain=True)
    _put(cache, topic, env(1.0, T0 - 1000))  # a late delivery of an older sample
    _put(cache, topic, env(0.5, T0 - 2000).replace(b"}", b', "historical": true}'))  # store-and-forward backfill
    info = cache.info(topic)
    assert info is not None
    assert (info.value, info.timestamp_ms, info.count, info.retained) == (2.0, T0, 3, True)
    assert cache.payload(topic) == env(2.0, T0)
    assert cache.stats.out_of_order == 2
    # the machine dies: its stale value is newer and shows; a good value from before the death does not
    _put(cache, topic, env(2.0, T0 + 5000, "stale"), retain=True)
    _put(cache, topic, env(3.0, T0 + 4000))
    info = cache.info(topic)
    assert info is not None
    assert (info.value, info.quality, info.timestamp_ms) == (2.0, "stale", T0 + 5000)
    node = cache.node("acme/site/line1")
    assert node is not None
    assert node.problems == 1
    # the same millisecond, and anything that is not an envelope, replace as before
    _put(cache, topic, env(4.0, T0 + 5000))
    assert (cache.info(topic).value, cache.info(topic).quality) == (4.0, "good")  # type: ignore[union-attr]
    _put(cache, topic, b"not an envelope")
    assert cache.info(topic).value is None  # type: ignore[union-attr]
    assert cache.payload(topic) == b"not an envelope"


def test_rates_asked_during_a_steady_stream_follow_the_ten_second_decay() -> None:
    # rates are computed when asked, from counts: asking often or rarely gives the same curve
    clock = Clock()
    cache = offline_cache(clock)
    seen: list[float] = []
    for step in range(400):  # 20 msgs/s for 20 s, the rate read every second
        _put(cache, "s/x", now=T0 + step * 50)
        if step % 20 == 19:
            clock.ms = T0 + step * 50
            info = cache.info("s/x")
            assert info is not None
            seen.append(info.rate)
    exact = [20 * (1 - math.exp(-(k * 1000 + 950) / 10_000)) for k in range(20)]
    assert all(abs(got - want) < 0.2 for got, want in zip(seen, exact, strict=True)), (seen, exact)
    node = cache.node("s")
    assert node is not None
    assert abs(node.rate - seen[-1]) < 0.2  # the parent, never asked before, agrees


def test_a_decoded_envelope_is_taken_as_read_and_its_payload_kept() -> None:
    # an in-process publisher (the host) hands its reading beside the JSON: the cache takes it as read
    cache = offline_cache()
    payload = b'{"value": 72.5, "timestamp_ms": 5, "quality": "good", "datatype": "Float"}'
    decoded = ("from the reading", 9, "uncertain", "String", None, False, False, None, False)
    cache.observe(Message("a/data/x", payload, decoded=decoded))
    info = cache.info("a/data/x")
    assert info is not None
    assert (info.value, info.quality, info.timestamp_ms) == ("from the reading", "uncertain", 9)
    assert cache.payload("a/data/x") == payload
    # an older reading is counted, not shown as the latest, as an older JSON envelope is
    cache.observe(Message("a/data/x", payload, decoded=(1.0, 8, "good", "Double", None, False, False, None, False)))
    assert cache.stats.out_of_order == 1
    info = cache.info("a/data/x")
    assert info is not None
    assert info.value == "from the reading"


def test_subtree_counts_and_times_add_up_when_read() -> None:
    # a message touches only its topic's own counts; the levels above take them when the tree is read
    cache = offline_cache()
    for now, topic in ((T0 + 1, "acme/a/data/x"), (T0 + 5, "acme/b/data/y"), (T0 + 3, "acme/a/data/x")):
        _put(cache, topic, b'{"value": 1, "quality": "bad"}', now=now)
    top = cache.node("acme")
    assert top is not None
    assert (top.topics, top.messages, top.last_ms, top.problems) == (2, 3, T0 + 5, 2)
    a = cache.node("acme/a")
    assert a is not None
    assert (a.messages, a.last_ms) == (2, T0 + 3)
    _put(cache, "acme/a/data/x", b'{"value": 2}', now=T0 + 9)  # good again: the problem count falls at once
    a = cache.node("acme/a")
    assert a is not None
    assert (a.messages, a.last_ms, a.problems) == (3, T0 + 9, 0)
    root = cache.node("")
    assert root is not None
    assert (root.messages, root.last_ms, root.problems) == (4, T0 + 9, 1)
