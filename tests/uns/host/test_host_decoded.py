"""In-process, each republished envelope travels with its reading (``Message.decoded``): the one reader's
result on the JSON's own dict, so subscribers need not parse it again; over TCP only the bytes travel."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import orjson

from model.envelope import read_fields
from tests.fixtures.hub import RunningHub, plant_for
from tests.uns.host.raw_edge import DOUBLE, INT32, INT64, STRING, RawEdgeNode, metric, payload
from uns.host.core import HostCore
from uns.mqtt.client import MqttClient
from uns.mqtt.types import BrokerUrl, Message

_GROUP, _NODE = "g", "edge1"
_LINE = "acme/dallas/packaging/line1"
_T0 = 1_764_000_000_000


def _topic(kind: str, device: str | None = None) -> str:
    return f"spBv1.0/{_GROUP}/{kind}/{_NODE}" + (f"/{device}" if device else "")


def _session(core: HostCore) -> list[Message]:
    """Births, a DDATA with a live and a backfilled value, then the node's death (stale marks)."""
    out = core.handle(_topic("NBIRTH"), payload([metric("bdSeq", 0, INT64), metric("Uptime", 1, INT64)], 0), _T0)
    out += core.handle(
        _topic("DBIRTH", "filler"),
        payload([metric("Temp", 20.0, DOUBLE, alias=1), metric("Count", 7, INT32), metric("State", "run", STRING)], 1),
        _T0,
    )
    late = metric("Temp", 18.5, DOUBLE, alias=1)
    late.timestamp, late.is_historical = _T0 - 60_000, True
    out += core.handle(_topic("DDATA", "filler"), payload([metric("Temp", 21.5, DOUBLE, alias=1), late], 2), _T0 + 1)
    out += core.handle(_topic("NDEATH"), payload([metric("bdSeq", 0, INT64)], None), _T0 + 2)
    return [m for m in out if "/data/" in m.topic]


def test_each_envelope_carries_the_reading_its_json_gives() -> None:
    core = HostCore(plant=plant_for("acme", _GROUP, _NODE))
    core.hand_decoded = True
    sent = _session(core)
    assert len(sent) == 12  # bdSeq, Uptime, Temp, Count and State born; 2 Temp values; 5 stale marks
    qualities = set()
    for message in sent:
        assert message.decoded is not None, message.topic
        assert message.decoded == read_fields(orjson.loads(message.payload), message.payload, now_ms=0)
        qualities.add(message.decoded[2])
    assert qualities == {"good", "stale"}
    assert any(m.decoded is not None and m.decoded[6] for m in sent)  # the backfilled value says so


def test_without_in_process_subscribers_no_reading_is_made() -> None:
    core = HostCore(plant=plant_for("acme", _GROUP, _NODE))
    sent = _session(core)
    assert sent
    assert all(m.decoded is None for m in sent)


async def _first(messages: AsyncIterator[Message]) -> Message:
    async with asyncio.timeout(10):
        async for message in messages:
            return message
    raise AssertionError("no message")


async def test_in_process_subscribers_get_the_reading_network_ones_the_same_bytes(hub: RunningHub) -> None:
    embedded = hub.broker is not None
    assert hub.host.core.hand_decoded is embedded
    temp = f"{hub.cell}/data/Temp"
    async with contextlib.AsyncExitStack() as stack:
        net = await stack.enter_async_context(
            MqttClient(url=BrokerUrl.from_str(hub.url), client_id=f"test-net-{hub.enterprise}")
        )
        await net.subscribe([temp], qos=0)
        local = None
        if hub.broker is not None:
            local = await stack.enter_async_context(hub.broker.local_client(f"test-{hub.enterprise}"))
            await local.subscribe([temp], qos=0)
        edge = RawEdgeNode(hub.url, hub.group, hub.node)
        await edge.start()
        stack.callback(edge.client.disconnect)
        edge.nbirth([metric("Count", 1, INT32)])
        edge.send("DBIRTH", [metric("Temp", 20.0, DOUBLE)], device="filler")
        over_tcp = await _first(net.messages())
        assert orjson.loads(over_tcp.payload)["value"] == 20.0
        assert over_tcp.decoded is None  # nothing but the bytes crosses a socket
        if local is not None:
            in_process = await _first(local.messages())
            assert in_process.payload == over_tcp.payload
            assert in_process.decoded == read_fields(orjson.loads(over_tcp.payload), over_tcp.payload, now_ms=0)
