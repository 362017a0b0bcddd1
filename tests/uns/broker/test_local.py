import asyncio
import gc
import re
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from model.envelope import read_fields, read_object
from tests.fixtures.broker import start_broker
from tests.fixtures.waiting import next_messages, until
from tests.uns.broker.paho_client import Paho
from uns.broker import EmbeddedBroker, LocalClient
from uns.clock import now_ms
from uns.errors import BrokerError
from uns.mqtt.types import Message, PubSub


def test_local_client_is_a_pubsub() -> None:
    def needs(_: PubSub) -> None: ...

    needs(LocalClient.__new__(LocalClient))  # mypy checks the protocol; this checks the names exist
    for name in ("client_id", "publish", "publish_many", "subscribe", "messages"):
        assert hasattr(LocalClient, name)


async def test_network_to_local_and_back(broker: EmbeddedBroker) -> None:
    host = broker.local_client("host")
    await host.subscribe(["spBv1.0/#"], qos=1)
    paho = Paho(broker.url, "edge")
    try:
        await paho.connect()
        await paho.subscribe("acme/#", qos=1)
        await paho.publish("spBv1.0/g/NDATA/n", b"\x08\x01", qos=1)
        await paho.publish("spBv1.0/g/NDATA/n", b"\x08\x02", qos=0)
        assert await next_messages(host, 2) == [
            Message(topic="spBv1.0/g/NDATA/n", payload=b"\x08\x01", qos=1),
            Message(topic="spBv1.0/g/NDATA/n", payload=b"\x08\x02", qos=0),
        ]
        await host.publish("acme/dallas/data/temp", b'{"value": 1}', qos=1, retain=True)
        await host.publish("acme/dallas/data/rpm", b'{"value": 2}', qos=0)
        got = await paho.wait_messages(2)
        assert got == [
            Message(topic="acme/dallas/data/temp", payload=b'{"value": 1}', qos=1),
            Message(topic="acme/dallas/data/rpm", payload=b'{"value": 2}', qos=0),
        ]
    finally:
        paho.close()
    assert broker.stats.messages_local == 2


async def test_local_to_local_and_to_itself(broker: EmbeddedBroker) -> None:
    one = broker.local_client("one")
    two = broker.local_client("two")
    await one.subscribe(["x/#"], qos=0)
    await two.subscribe(["x/+"], qos=1)
    await one.publish_many([Message(topic="x/a", payload=b"1", qos=1), Message(topic="x/b/c", payload=b"2")])
    assert await next_messages(two, 1) == [Message(topic="x/a", payload=b"1", qos=1)]
    assert await next_messages(one, 2) == [Message(topic="x/a", payload=b"1"), Message(topic="x/b/c", payload=b"2")]
    assert two.pending == 0


async def test_retained_messages_come_first_on_subscribe(broker: EmbeddedBroker) -> None:
    paho = Paho(broker.url, "plc")
    try:
        await paho.connect()
        await paho.publish("acme/line1/state", b"run", qos=1, retain=True)
        writer = broker.local_client("writer")
        await writer.publish_many(
            [
                Message(topic="acme/line1/count", payload=b"7", qos=1, retain=True),
                Message(topic="acme/line2/count", payload=b"9", retain=True),
            ]
        )
        reader = broker.local_client("reader")
        await until(lambda: broker.stats.messages_in == 1, what="the paho publish to be handled")
        await reader.subscribe(["acme/line1/#"], qos=0)
        await writer.publish("acme/line1/live", b"now")
        got = await next_messages(reader, 3)
        assert sorted(got[:2], key=lambda m: m.topic) == [
            Message(topic="acme/line1/count", payload=b"7", qos=0, retain=True),
            Message(topic="acme/line1/state", payload=b"run", qos=0, retain=True),
        ]
        assert got[2] == Message(topic="acme/line1/live", payload=b"now")
    finally:
        paho.close()


async def test_back_pressure_never_drops(broker: EmbeddedBroker) -> None:
    slow = broker.local_client("slow", queue_size=10)
    await slow.subscribe(["load/#"], qos=0)
    paho = Paho(broker.url, "fast")
    count = 3000
    try:
        await paho.connect()
        for index in range(count):
            paho.client.publish(f"load/{index % 7}", str(index).encode(), qos=0)
        await until(lambda: slow.pending == 10, what="the small queue to fill")
        await asyncio.sleep(0.05)  # let the broker try to push more: it must wait, not drop
        assert slow.pending == 10
        got = await next_messages(slow, count)
    finally:
        paho.close()
    assert [int(m.payload) for m in got] == list(range(count))


async def test_local_publisher_waits_for_a_full_local_queue(broker: EmbeddedBroker) -> None:
    slow = broker.local_client("slow", queue_size=2)
    await slow.subscribe(["t"])
    fast = broker.local_client("fast")
    publishing = asyncio.create_task(fast.publish_many([Message(topic="t", payload=bytes([i])) for i in range(5)]))
    await until(lambda: slow.pending == 2, what="the queue to fill")
    assert not publishing.done()
    got = await next_messages(slow, 5)
    await publishing
    assert [m.payload for m in got] == [bytes([i]) for i in range(5)]


async def test_a_full_subscriber_holds_the_publisher_after_the_others_have_the_message(
    broker: EmbeddedBroker,
) -> None:
    # docs/broker.md: a full queue holds the publisher before anything later is routed; one with room may
    # have the message already. The full subscriber subscribes first, so it is met first.
    slow = broker.local_client("slow", queue_size=2)
    await slow.subscribe(["t"])
    roomy = broker.local_client("roomy")
    await roomy.subscribe(["t"])
    fast = broker.local_client("fast")
    publishing = asyncio.create_task(fast.publish_many([Message(topic="t", payload=bytes([i])) for i in range(5)]))
    await until(lambda: slow.pending == 2 and roomy.pending == 3, what="message 2 with roomy, slow full")
    for _ in range(20):  # the loop's turns: nothing after message 2 may reach roomy while slow is full
        await asyncio.sleep(0)
    assert (slow.pending, roomy.pending, publishing.done()) == (2, 3, False)
    got_slow = await next_messages(slow, 5)
    await publishing
    assert [m.payload for m in got_slow] == [bytes([i]) for i in range(5)]
    assert [m.payload for m in await next_messages(roomy, 5)] == [bytes([i]) for i in range(5)]


@pytest.mark.parametrize(
    ("filters", "fragment"),
    [(["a/#/b"], "'#'"), ([""], "empty"), (["ok", "bad+"], "'+'"), (["$share/g/a/#"], "shared subscriptions")],
)
async def test_bad_subscribe_is_refused(broker: EmbeddedBroker, filters: list[str], fragment: str) -> None:
    client = broker.local_client("c")
    with pytest.raises(BrokerError, match=re.escape(fragment)):
        await client.subscribe(filters)


async def test_bad_topics_are_refused_but_good_ones_delivered(broker: EmbeddedBroker) -> None:
    sink = broker.local_client("sink")
    await sink.subscribe(["#"])
    source = broker.local_client("source")
    with pytest.raises(BrokerError, match=r"1 message\(s\) not published: topic 'a/\+' holds a wildcard"):
        await source.publish_many(
            [
                Message(topic="good/1", payload=b"1"),
                Message(topic="a/+", payload=b"x"),
                Message(topic="good/2", payload=b"2"),
            ]
        )
    assert [m.topic for m in await next_messages(sink, 2)] == ["good/1", "good/2"]


async def test_close_ends_messages_and_frees_the_name(broker: EmbeddedBroker) -> None:
    client = broker.local_client("host")
    with pytest.raises(BrokerError, match="exists already"):
        broker.local_client("host")
    await client.subscribe(["a"])
    await client.publish("a", b"1")
    await client.close()
    assert [m.payload async for m in client.messages()] == [b"1"]
    with pytest.raises(BrokerError, match="closed"):
        await client.publish("a", b"2")
    assert broker.local_client("host") is not client


async def test_broker_exit_ends_local_iterators(tmp_path: Path) -> None:
    async def drain(client: LocalClient) -> AsyncIterator[Message]:
        async for message in client.messages():
            yield message

    async with start_broker(tmp_path) as broker:
        client = broker.local_client("host")
        await client.subscribe(["#"])
        reading = asyncio.create_task(anext(aiter(drain(client)), None))
    assert await asyncio.wait_for(reading, 2) is None


def _connect(*, keepalive: int) -> bytes:
    """A CONNECT of client ``raw``, clean session, with ``keepalive`` seconds (0: off)."""
    return b"\x10\x0f\x00\x04MQTT\x04\x02" + keepalive.to_bytes(2, "big") + b"\x00\x03raw"


async def _connected(broker: EmbeddedBroker, connect: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A raw TCP connection to ``broker`` whose ``connect`` was accepted (CONNACK 0)."""
    reader, writer = await asyncio.open_connection(broker.url.host, broker.url.port)
    writer.write(connect)
    assert await reader.readexactly(4) == b"\x20\x02\x00\x00"
    return reader, writer


async def test_nothing_is_lost_when_a_fast_publisher_disconnects(broker: EmbeddedBroker) -> None:
    host = broker.local_client("host", queue_size=50)  # small: the broker must hold back, not drop
    await host.subscribe(["fast/#"], qos=0)
    count = 5000
    _, writer = await _connected(broker, _connect(keepalive=60))
    for index in range(count):
        body = b"\x00\x06fast/x" + index.to_bytes(4, "big")
        writer.write(bytes([0x30, len(body)]) + body)
    writer.write(b"\xe0\x00")  # DISCONNECT right behind the last PUBLISH
    await writer.drain()
    writer.close()
    got = await next_messages(host, count)
    assert [int.from_bytes(m.payload, "big") for m in got] == list(range(count))


async def test_a_retained_orjson_payload_is_kept_at_its_own_size(broker: EmbeddedBroker) -> None:
    # orjson's bytes keep its ~4 KiB working buffer; kept as they are, 100k retained topics cost 400 MiB
    publisher = broker.local_client("kpi")
    reader = broker.local_client("cache")
    await reader.subscribe(["kept/#"], qos=0)
    topics = [f"kept/t{n}" for n in range(200)]
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n, topic in enumerate(topics):
            await publisher.publish(topic, orjson.dumps({"value": n, "quality": "good"}), retain=True)
        gc.collect()
        per_topic = (tracemalloc.get_traced_memory()[0] - before) / len(topics)
    finally:
        tracemalloc.stop()
    assert per_topic < 2048, f"{per_topic:.0f} bytes per retained topic"
    got = await next_messages(reader, len(topics))
    assert got[7].payload == b'{"value":7,"quality":"good"}'  # what subscribers get is the same exact copy
    assert [m.payload for m in broker._require().retained_matching("kept/t7")] == [got[7].payload]


async def test_a_decoded_form_reaches_local_subscribers_beside_the_same_bytes(broker: EmbeddedBroker) -> None:
    publisher = broker.local_client("publisher")
    reader = broker.local_client("reader")
    await reader.subscribe(["acme/#"], qos=1)
    paho = Paho(broker.url, "network-reader")
    try:
        await paho.connect()
        await paho.subscribe("acme/#", qos=1)
        reading = (1.5, 7, "good", "Double", None, False, False, None, False)
        await publisher.publish_many([Message("acme/d/data/x", b'{"value":1.5}', 1, True, decoded=reading)])
        (got,) = await next_messages(reader, 1)
        assert (got.payload, got.qos, got.decoded) == (b'{"value":1.5}', 1, reading)
        assert await paho.wait_messages(1) == [Message("acme/d/data/x", b'{"value":1.5}', 1)]
        # a retained copy is the bytes alone: a late subscriber parses them, as any other publisher's
        late = broker.local_client("late")
        await late.subscribe(["acme/#"], qos=1)
        (kept,) = await next_messages(late, 1)
        assert (kept.payload, kept.retain, kept.decoded) == (b'{"value":1.5}', True, None)
        # a network client's envelope that two local subscribers get is read once, by the broker
        await paho.publish("acme/d/data/y", b'{"value":2,"timestamp_ms":9}', qos=1)
        (network,) = await next_messages(reader, 1)
        (same,) = await next_messages(late, 1)
        assert (network.topic, network.decoded) == (
            "acme/d/data/y",
            (2, 9, "good", "Int64", None, False, False, None, False),
        )
        assert same.decoded is network.decoded
        # not an envelope (a string in a Float): no reading; each subscriber reads it and names the problem itself
        await paho.publish("acme/d/data/z", b'{"value":"x","datatype":"Float"}', qos=1)
        assert [m.decoded for m in await next_messages(reader, 1) + await next_messages(late, 1)] == [None, None]
        # no timestamp_ms: no reading, so each subscriber stamps it at its own receive time, as it stamps
        # a retained copy or a message it alone gets (a broker stamp could precede one it made for an older value)
        await paho.publish("acme/d/data/y", b'{"value":4}', qos=1)
        assert [m.decoded for m in await next_messages(reader, 1) + await next_messages(late, 1)] == [None, None]
        await paho.publish("acme/d/data/y", b'{"value":5,"timestamp_ms":null}', qos=1)
        assert [m.decoded for m in await next_messages(reader, 1) + await next_messages(late, 1)] == [None, None]
        # one local subscriber reads the bytes itself: nothing is read for it in the broker
        await late.close()
        await paho.publish("acme/d/data/y", b'{"value":3,"timestamp_ms":10}', qos=1)
        (alone,) = await next_messages(reader, 1)
        assert (alone.payload, alone.decoded) == (b'{"value":3,"timestamp_ms":10}', None)
    finally:
        paho.close()


async def test_a_subscriber_stamps_envelopes_without_time_in_the_order_it_reads_them(broker: EmbeddedBroker) -> None:
    # each in-process subscriber takes Message.decoded, else reads the bytes at its own receive time
    def stamp(message: Message) -> int:
        fields = message.decoded or read_fields(read_object(message.payload), message.payload, now_ms=now_ms())
        return fields[1]

    first = broker.local_client("first")
    await first.subscribe(["acme/#"], qos=1)
    publisher = broker.local_client("publisher")
    await publisher.publish("acme/d/data/x", b'{"value":1}', qos=1, retain=True)
    await next_messages(first, 1)
    late = broker.local_client("late")
    await late.subscribe(["acme/#"], qos=1)  # the retained value waits in its queue, unread
    await publisher.publish("acme/d/data/x", b'{"value":2}', qos=1)  # newer, to two local subscribers now
    sent = now_ms()
    await until(lambda: now_ms() > sent, what="the clock past the publish")  # the late reader lags a little
    kept, live = await next_messages(late, 2)
    assert (kept.retain, live.retain) == (True, False)
    kept_ms = stamp(kept)
    assert stamp(live) >= kept_ms  # a broker stamp made at the publish would put the newer value first


async def test_a_clients_qos_0_and_1_publishes_keep_their_order_through_a_full_subscriber(
    broker: EmbeddedBroker,
) -> None:
    # the reader routes each PUBLISH as it reads it and waits while the subscriber's queue is full:
    # QoS 0 and 1 come out in the order sent, and every QoS 1 one is acknowledged once
    host = broker.local_client("host", queue_size=5)
    await host.subscribe(["mixed/#"], qos=1)
    count = 2000
    reader, writer = await _connected(broker, _connect(keepalive=60))
    try:
        for index in range(count):
            topic = b"\x00\x07mixed/" + bytes([0x61 + index % 3])
            if index % 4:
                body = topic + index.to_bytes(4, "big")
                writer.write(bytes([0x30, len(body)]) + body)
            else:  # QoS 1, packet id index + 1
                body = topic + (index + 1).to_bytes(2, "big") + index.to_bytes(4, "big")
                writer.write(bytes([0x32, len(body)]) + body)
        await writer.drain()
        got = await next_messages(host, count)
        acks = await reader.readexactly(4 * (count // 4))
    finally:
        writer.close()
    assert [int.from_bytes(m.payload, "big") for m in got] == list(range(count))
    assert acks == b"".join(b"\x40\x02" + (index + 1).to_bytes(2, "big") for index in range(0, count, 4))


def _connect_with_will(client_id: bytes, keepalive: int) -> bytes:
    """A clean-session CONNECT whose will is ``gone`` on ``w/will``, QoS 0."""
    body = b"\x00\x04MQTT\x04\x06" + keepalive.to_bytes(2, "big") + len(client_id).to_bytes(2, "big") + client_id
    body += b"\x00\x06w/will\x00\x04gone"
    return bytes([0x10, len(body)]) + body


async def _held_burst(
    broker: EmbeddedBroker, keepalive: int, count: int
) -> tuple[LocalClient, LocalClient, asyncio.StreamWriter]:
    """A raw client with a will sends ``count`` QoS 0 messages a 2-slot subscriber holds: (slow, fast, its socket)."""
    slow = broker.local_client("slow", queue_size=2)  # holds the client's reader after two messages
    fast = broker.local_client("fast")
    for subscriber in (slow, fast):
        await subscriber.subscribe(["w/#"], qos=0)
    _, writer = await _connected(broker, _connect_with_will(b"edge", keepalive))
    writer.write(b"".join(b"\x30\x07\x00\x03w/d" + index.to_bytes(2, "big") for index in range(count)))
    await writer.drain()
    await until(lambda: slow.pending == 2 and fast.pending >= 3, what="the burst to be held by the slow subscriber")
    return slow, fast, writer


def _payloads(messages: list[Message]) -> list[bytes]:
    return [m.payload for m in messages]


@pytest.mark.parametrize("trigger", ["take-over", "keep-alive", "socket closed"])
async def test_a_will_comes_after_every_message_read_while_a_subscriber_held_the_reader(
    broker: EmbeddedBroker, trigger: str
) -> None:
    # the connection ends while its reader waits for a full in-process subscriber: the messages it had
    # read (all, when the socket closed) reach every subscriber, in order, and the will after them
    count = 200
    slow, fast, writer = await _held_burst(broker, 1 if trigger == "keep-alive" else 0, count)
    again: list[asyncio.StreamWriter] = []
    try:
        if trigger == "take-over":  # the same client id again, without a will
            again_reader, again_writer = await asyncio.open_connection(broker.url.host, broker.url.port)
            again.append(again_writer)
            again_writer.write(b"\x10\x10\x00\x04MQTT\x04\x02\x00\x00\x00\x04edge")
            connack = asyncio.create_task(again_reader.readexactly(4))
        if trigger == "socket closed":  # right behind the burst, without a DISCONNECT
            writer.close()
        # held past 1.5 x a keep-alive of 1 s: the watchdog counts the client's silence only once the hold
        # ends; a take-over closes the old connection while held, and waits for it
        await asyncio.sleep(1.8)
        slow_got = await next_messages(slow, 2)
        async for message in slow.messages():  # read on until the will: the held reader goes on as room comes
            slow_got.append(message)
            if message.topic == "w/will":
                break
        fast_got = await next_messages(fast, fast.pending)
        if trigger == "take-over":
            assert await asyncio.wait_for(connack, 5) == b"\x20\x02\x00\x00"
    finally:
        for open_writer in (writer, *again):
            open_writer.close()
    for got in (slow_got, fast_got):
        assert _payloads(got)[-1] == b"gone"
        # the burst was one 1,400-byte write, read at once: all of it, in order, none after the will
        assert [int.from_bytes(payload, "big") for payload in _payloads(got)[:-1]] == list(range(count))


async def test_ignored_qos_0_dup_publishes_never_close_the_readers_gate(broker: EmbeddedBroker) -> None:
    # a QoS 0 PUBLISH with DUP set is ignored (MQTT-3.3.1-2): it must count as handled, or 1,000 of them
    # (the reader's high water) stop the client's reader for good
    host = broker.local_client("host")
    await host.subscribe(["dup/#"], qos=1)
    reader, writer = await _connected(broker, _connect(keepalive=0))
    try:
        writer.write(b"\x38\x07\x00\x05dup/x" * 1200)
        writer.write(b"\x30\x08\x00\x05dup/yA" + b"\x32\x0a\x00\x05dup/z\x00\x07B")
        await writer.drain()
        assert [m.payload for m in await next_messages(host, 2)] == [b"A", b"B"]
        assert await asyncio.wait_for(reader.readexactly(4), 5) == b"\x40\x02\x00\x07"
    finally:
        writer.close()


async def test_a_plugin_watching_received_packets_sees_every_publish_and_they_still_flow(
    broker: EmbeddedBroker,
) -> None:
    # with a PACKET_RECEIVED watcher, QoS 0/1 PUBLISHes take amqtt's objects and the session's queue
    # instead of the inline route: the watcher sees each, and order, PUBACKs and the reader's gate
    # (more than its high water of 1,000 queued behind a full 5-slot subscriber; ignored DUP ones) still hold
    seen: list[int] = []

    async def watch(*, packet: object, session: object) -> None:
        seen.append(type(packet).__name__ == "PublishPacket")

    core = broker._require()
    core.plugins_manager._event_plugin_callbacks["mqtt_packet_received"].append(watch)  # as a plugin's on_ does
    host = broker.local_client("host", queue_size=5)
    await host.subscribe(["watched/#"], qos=1)
    count = 2000
    reader, writer = await _connected(broker, _connect(keepalive=0))
    try:
        writer.write(b"\x38\x0a\x00\x08watched/" * 1200)  # QoS 0 with DUP: seen, ignored, not held against the gate
        for index in range(count):
            if index % 4:
                writer.write(b"\x30\x0e\x00\x08watched/" + index.to_bytes(4, "big"))
            else:  # QoS 1, packet id index + 1
                writer.write(b"\x32\x10\x00\x08watched/" + (index + 1).to_bytes(2, "big") + index.to_bytes(4, "big"))
        await writer.drain()
        got = await next_messages(host, count, within_s=20)
        acks = await asyncio.wait_for(reader.readexactly(4 * (count // 4)), 5)
    finally:
        writer.close()
    assert [int.from_bytes(m.payload, "big") for m in got] == list(range(count))
    assert acks == b"".join(b"\x40\x02" + (index + 1).to_bytes(2, "big") for index in range(0, count, 4))
    assert seen == [True] * (1200 + count)


async def test_a_qos_1_publish_is_acknowledged_only_once_it_was_routed(broker: EmbeddedBroker) -> None:
    # the reader routes a QoS 1 PUBLISH before its PUBACK: while a full in-process subscriber holds it,
    # no PUBACK (the queued path acknowledged at once, before routing)
    host = broker.local_client("host", queue_size=1)
    await host.subscribe(["acked/#"], qos=1)
    await broker.local_client("filler").publish("acked/first", b"1")  # fills the subscriber's one slot
    reader, writer = await _connected(broker, _connect(keepalive=0))
    try:
        writer.write(b"\x32\x0b\x00\x06acked/\x00\x09" + b"2")
        await writer.drain()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.readexactly(4), 0.5)
        assert [m.payload for m in await next_messages(host, 2)] == [b"1", b"2"]
        assert await asyncio.wait_for(reader.readexactly(4), 5) == b"\x40\x02\x00\x09"
    finally:
        writer.close()
