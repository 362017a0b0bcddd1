"""The web's Sparkplug status from the in-process host's state: the same answers, no second decode."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from tests.exports import assert_all_is_honest
from tests.fixtures.hub import plant_for
from tests.fixtures.waiting import until
from tests.uns.host.worker_run import serving, worker_config
from uns.host.core import HostCore
from uns.host.mirror import HostMirror
from uns.host.remote import HostWorker
from uns.mqtt.types import Message
from uns.sparkplug import DataType, Metric, Payload, SparkplugTopic, encode_payload, encode_state
from uns.web.sparkplug_view import SparkplugView

T0 = 1_764_000_000_000


def _spb(seq: int | None, *metrics: Metric) -> bytes:
    # no payload timestamp: the host stamps a birth with its receive time, as the decoding view does
    return encode_payload(Payload(seq=seq, metrics=list(metrics)))


def _bd(value: int) -> Metric:
    return Metric(name="bdSeq", datatype=DataType.Int64, value=value)


_LIFE = [
    ("spBv1.0/g/NBIRTH/n", _spb(0, _bd(0), Metric(name="Up", alias=1, datatype=DataType.Int64, value=1))),
    ("spBv1.0/g/DBIRTH/n/d", _spb(1, Metric(name="Temp", alias=2, datatype=DataType.Float, value=1.5))),
    ("spBv1.0/g/DDATA/n/d", _spb(2, Metric(alias=2, datatype=DataType.Float, value=2.5))),
    ("spBv1.0/g/NCMD/n", _spb(None, Metric(name="Node Control/Rebirth", datatype=DataType.Boolean, value=True))),
    ("spBv1.0/g/NDEATH/n", _spb(None, _bd(7))),  # an older session's will: the node stays online
    ("spBv1.0/g/NDEATH/n", _spb(None, _bd(0))),
    ("spBv1.0/g/NBIRTH/n", _spb(0, _bd(1))),
    ("spBv1.0/g/DBIRTH/n/d", _spb(1, Metric(name="Temp", alias=2, datatype=DataType.Float, value=1.5))),
    ("spBv1.0/g/DDEATH/n/d", _spb(2)),
    ("spBv1.0/STATE/scada", encode_state(True, T0)),
]


def test_exports() -> None:
    assert_all_is_honest("uns.web.sparkplug_sessions")


def test_status_from_the_host_equals_the_decoded_one() -> None:
    host = HostCore(plant=plant_for("acme", "g", "n"))
    from_host = SparkplugView(sessions=host)
    decoding = SparkplugView()
    for step, (topic, payload) in enumerate(_LIFE):
        now = T0 + step
        host.handle(topic, payload, now)
        from_host.observe(topic, payload, now)
        decoding.observe(topic, payload, now)
        assert from_host.edge_nodes() == decoding.edge_nodes(), topic
    (node,) = from_host.edge_nodes()
    assert (node.online, node.bd_seq, node.births, node.rebirths, node.stale_deaths, node.commands) == (
        True,
        1,
        2,
        1,
        1,
        1,
    )
    assert (node.last_death_ms, node.devices[0].last_death_ms, node.devices[0].rebirths) == (T0 + 5, T0 + 8, 1)
    assert from_host.hosts() == decoding.hosts()
    assert len(from_host) == 1


def test_without_commands_the_status_is_the_node_s_own_in_both_views() -> None:
    # what a reader the broker gives no NCMD/DCMD learns: not when the last command came, nor whom it was for
    host = HostCore(plant=plant_for("acme", "g", "n"))
    views = (SparkplugView(sessions=host), SparkplugView())
    command = _spb(None, Metric(name="Node Control/Rebirth", datatype=DataType.Boolean, value=True))
    steps = [*_LIFE[:3], ("spBv1.0/g/NCMD/n", command), ("spBv1.0/g/DCMD/n/d", command)]
    steps += [("spBv1.0/g/DCMD/n/valve", command), ("spBv1.0/g/NCMD/ghost", command)]
    for step, (topic, payload) in enumerate(steps):
        host.handle(topic, payload, T0 + step)
        for view in views:
            view.observe(topic, payload, T0 + step)
    for view in views:
        (node,) = view.edge_nodes(commands=False)
        assert (node.edge_node_id, node.last_seen_ms, node.commands) == ("n", T0 + 2, 0)
        assert [(device.device_id, device.last_seen_ms) for device in node.devices] == [("d", T0 + 2)]
        (every,) = (each for each in view.edge_nodes() if each.edge_node_id == "n")  # as before: host and admin
        assert (every.last_seen_ms, every.commands, every.devices[0].last_seen_ms) == (T0 + 5, 3, T0 + 4)
    assert [node.edge_node_id for node in views[1].edge_nodes()] == ["ghost", "n"]  # the decoding view's own
    assert [device.device_id for device in views[1].edge_nodes()[1].devices] == ["d", "valve"]


def test_with_the_host_state_no_payload_is_decoded_again() -> None:
    host = HostCore(plant=plant_for("acme", "g", "n"))
    view = SparkplugView(sessions=host)
    garbage = b"\x0a\xff"
    for topic, payload in [_LIFE[0], ("spBv1.0/g/NDATA/n", garbage)]:
        host.handle(topic, payload, T0)
        view.observe(topic, payload, T0)  # the decoding view raises PayloadDecodeError on the garbage
    (node,) = view.edge_nodes()
    assert node.bad_payloads == 1  # counted once, by the host
    assert "spBv1.0/g/NDATA/n" in (node.last_error or "")


def test_alias_lookup_reads_the_host_tables() -> None:
    host = HostCore(plant=plant_for("acme", "g", "n"))
    view = SparkplugView(sessions=host)
    for topic, payload in _LIFE[:2]:
        host.handle(topic, payload, T0)
    lookup = view.alias_lookup(SparkplugTopic.from_str("spBv1.0/g/DDATA/n/d"))
    assert lookup is not None
    assert lookup(None, 2) == ("Temp", DataType.Float)
    assert view.alias_lookup(SparkplugTopic.from_str("spBv1.0/g/NDATA/other")) is None
    # the view kept no names of its own
    assert dataclasses.asdict(view.edge_nodes()[0])["devices"][0]["births"] == 1


async def test_status_from_a_worker_process_equals_the_decoded_one() -> None:
    # host.worker: the core runs in a child process and the web reads the parent's mirror of it
    mirror = HostMirror()
    worker = HostWorker(config=worker_config(rebirth_min_interval_ms=5_000), mirror=mirror)
    published: list[Message] = []

    async def send(messages: Sequence[Message]) -> None:
        published.extend(messages)

    from_worker = SparkplugView(sessions=mirror)
    decoding = SparkplugView()
    async with serving(worker, send):
        for step, (topic, payload) in enumerate(_LIFE):
            now = T0 + step
            worker.put(topic, payload, now)
            from_worker.observe(topic, payload, now)
            decoding.observe(topic, payload, now)
            # births and deaths come with their batch's answer, other changes within 100 ms
            await until(lambda: from_worker.edge_nodes() == decoding.edge_nodes(), what=f"the mirror at {topic}")
        lookup = from_worker.alias_lookup(SparkplugTopic.from_str("spBv1.0/g/DDATA/n/d"))
        assert lookup is not None
        assert lookup(None, 2) == ("Temp", DataType.Float)
        await until(lambda: mirror.counters.messages == len(_LIFE), what="every message answered")
        assert mirror.counters.births == 4
        assert mirror.health()["nodes_online"] == 1
        assert [m.topic for m in published if m.topic.endswith("/data/Temp")]
