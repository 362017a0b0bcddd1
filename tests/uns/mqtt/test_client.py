import asyncio
import itertools
import threading

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.fixtures.mosquitto import Mosquitto
from tests.uns.mqtt.helpers import take, wait_until
from uns.errors import BrokerError
from uns.mqtt import MqttClient
from uns.mqtt.types import BrokerUrl, Message, PubSub

_ids = itertools.count()


def client(broker: Mosquitto, **kwargs: object) -> MqttClient:
    kwargs.setdefault("client_id", f"test-{next(_ids)}")
    return MqttClient(url=BrokerUrl.from_str(broker.url), **kwargs)  # type: ignore[arg-type]


def test_client_is_a_pubsub(mosquitto: Mosquitto) -> None:
    c: PubSub = client(mosquitto)
    assert c.client_id.startswith("test-")


@pytest.mark.parametrize("qos", [0, 1, 2])
async def test_publish_subscribe(mosquitto: Mosquitto, unique_topic: str, qos: int) -> None:
    async with client(mosquitto) as sub, client(mosquitto) as pub:
        await sub.subscribe([f"{unique_topic}/#"], qos=qos)
        await pub.publish(f"{unique_topic}/a", b"one", qos=qos)
        await pub.publish(f"{unique_topic}/b/c", b"two", qos=qos)
        got = await take(sub, 2)
        assert [(m.topic, m.payload, m.qos, m.retain) for m in got] == [
            (f"{unique_topic}/a", b"one", qos, False),
            (f"{unique_topic}/b/c", b"two", qos, False),
        ]
        assert all((m.packet_id != 0) == (qos > 0) for m in got)
        assert pub.stats.sent == 2
        assert pub.stats.inflight == 0
        assert sub.stats.received == 2
        assert sub.connected


async def test_retained_message_reaches_a_late_subscriber(mosquitto: Mosquitto, unique_topic: str) -> None:
    async with client(mosquitto) as pub:
        await pub.publish(unique_topic, b"last", qos=1, retain=True)
    async with client(mosquitto) as sub:
        await sub.subscribe([unique_topic])
        [got] = await take(sub, 1)
        assert (got.topic, got.payload, got.retain) == (unique_topic, b"last", True)
        await sub.publish(unique_topic, b"", qos=1, retain=True)  # clear it


async def test_publish_many_mixed_qos_arrives_in_order(mosquitto: Mosquitto, unique_topic: str) -> None:
    messages = [Message(f"{unique_topic}/{i % 7}", str(i).encode() * (i % 50), qos=i % 3) for i in range(600)]
    messages.append(Message(f"{unique_topic}/big", b"b" * 200_000))
    async with client(mosquitto) as sub, client(mosquitto, max_inflight=10) as pub:
        await sub.subscribe([f"{unique_topic}/#"], qos=2)
        await pub.publish_many(messages)
        assert pub.stats.inflight == 0
        got = await take(sub, len(messages))
        # MQTT orders messages per QoS level (QoS 2 is forwarded only on PUBREL)
        for qos in (0, 1, 2):
            sent = [(m.topic, m.payload) for m in messages if m.qos == qos]
            assert [(m.topic, m.payload) for m in got if m.qos == qos] == sent


async def test_10k_qos1_with_a_window_of_100_all_acked_and_received_in_order(
    mosquitto: Mosquitto, unique_topic: str
) -> None:
    count = 10_000
    async with client(mosquitto) as sub, client(mosquitto, max_inflight=100) as pub:
        await sub.subscribe([unique_topic], qos=1)
        peak = 0
        done = False

        async def watch() -> None:
            nonlocal peak
            while not done:
                peak = max(peak, pub.stats.inflight)
                await asyncio.sleep(0)

        watcher = asyncio.create_task(watch())
        await pub.publish_many([Message(unique_topic, str(i).encode(), qos=1) for i in range(count)])
        done = True
        await watcher
        assert pub.stats.inflight == 0
        assert pub.stats.sent == count
        assert 0 < peak <= 100
        got = await take(sub, count)
        assert [int(m.payload) for m in got] == list(range(count))


async def test_concurrent_qos1_publishes_never_share_a_packet_id(mosquitto: Mosquitto, unique_topic: str) -> None:
    async with client(mosquitto) as sub, client(mosquitto, max_inflight=5) as pub:
        await sub.subscribe([unique_topic], qos=1)
        await asyncio.gather(*(pub.publish(unique_topic, str(i).encode(), qos=1) for i in range(500)))
        got = await take(sub, 500)
        assert sorted(int(m.payload) for m in got) == list(range(500))


async def test_slow_consumer_pauses_reading_and_loses_nothing(mosquitto: Mosquitto, unique_topic: str) -> None:
    count = 3000
    async with client(mosquitto, max_queued=50) as sub, client(mosquitto) as pub:
        await sub.subscribe([unique_topic], qos=1)
        await pub.publish_many([Message(unique_topic, b"%d" % i + b"." * 500, qos=1) for i in range(count)])
        got: list[int] = []
        async with asyncio.timeout(15):
            async for m in sub.messages():
                got.append(int(m.payload.rstrip(b".")))
                if len(got) % 100 == 0:
                    await asyncio.sleep(0.005)  # slow consumer
                if len(got) == count:
                    break
        assert got == list(range(count))
        assert sub.stats.read_pauses >= 1
        assert sub.stats.received == count


async def test_will_is_published_when_the_socket_dies(mosquitto: Mosquitto, unique_topic: str) -> None:
    will = Message(f"{unique_topic}/will", b"gone", qos=1)
    async with client(mosquitto) as watcher:
        await watcher.subscribe([f"{unique_topic}/#"], qos=1)
        async with client(mosquitto, will=will, reconnect=False) as dying:
            assert dying._conn is not None
            dying._conn.transport.abort()  # as if the process died: no DISCONNECT
            [got] = await take(watcher, 1)
            assert (got.topic, got.payload) == (will.topic, will.payload)
            await wait_until(lambda: not dying.connected)
            with pytest.raises(BrokerError, match="connection lost"):
                await dying.publish(unique_topic, b"x")


async def test_clean_disconnect_does_not_publish_the_will(mosquitto: Mosquitto, unique_topic: str) -> None:
    async with client(mosquitto) as watcher:
        await watcher.subscribe([f"{unique_topic}/#"], qos=1)
        async with client(mosquitto, will=Message(f"{unique_topic}/will", b"gone")):
            pass
        await watcher.publish(f"{unique_topic}/sentinel", b"s", qos=1)
        [got] = await take(watcher, 1)
        assert got.topic == f"{unique_topic}/sentinel"


async def test_persistent_session_gets_qos1_messages_sent_while_offline(
    mosquitto: Mosquitto, unique_topic: str
) -> None:
    session = f"persist-{next(_ids)}"
    async with client(mosquitto, client_id=session, clean_session=False) as sub:
        await sub.subscribe([unique_topic], qos=1)
    async with client(mosquitto) as pub:
        for i in range(5):
            await pub.publish(unique_topic, b"%d" % i, qos=1)
    async with client(mosquitto, client_id=session, clean_session=False) as sub:
        got = await take(sub, 5)  # no subscribe: the broker kept the session
        assert [m.payload for m in got] == [b"0", b"1", b"2", b"3", b"4"]
        await sub.unsubscribe([unique_topic])


async def test_manual_ack_redelivers_until_acked(mosquitto: Mosquitto, unique_topic: str) -> None:
    session = f"manual-{next(_ids)}"
    opts = {"client_id": session, "clean_session": False, "manual_ack": True}
    async with client(mosquitto, **opts) as sub:
        await sub.subscribe([unique_topic], qos=1)
        await sub.publish(unique_topic, b"first", qos=1)
        [got] = await take(sub, 1)
        assert got.payload == b"first"  # not acked
    async with client(mosquitto, **opts) as sub:
        [again] = await take(sub, 1)
        assert again.payload == b"first"
        sub.ack(again)
        sub.ack(again)  # a second ack is a no-op
    async with client(mosquitto, **opts) as sub:
        await sub.publish(unique_topic, b"second", qos=1)
        [nxt] = await take(sub, 1)
        assert nxt.payload == b"second"
        sub.ack(nxt)
        await sub.unsubscribe([unique_topic])


async def test_qos2_is_delivered_exactly_once(mosquitto: Mosquitto, unique_topic: str) -> None:
    async with client(mosquitto) as sub, client(mosquitto) as pub:
        await sub.subscribe([unique_topic], qos=2)
        await pub.publish_many([Message(unique_topic, b"%d" % i, qos=2) for i in range(100)])
        await pub.publish(unique_topic, b"end", qos=2)
        got = await take(sub, 101)
        assert [m.payload for m in got] == [b"%d" % i for i in range(100)] + [b"end"]


async def test_unsubscribe_stops_delivery(mosquitto: Mosquitto, unique_topic: str) -> None:
    async with client(mosquitto) as sub:
        await sub.subscribe([f"{unique_topic}/a", f"{unique_topic}/b"], qos=1)
        await sub.unsubscribe([f"{unique_topic}/a"])
        await sub.publish(f"{unique_topic}/a", b"no", qos=1)
        await sub.publish(f"{unique_topic}/b", b"yes", qos=1)
        [got] = await take(sub, 1)
        assert got.payload == b"yes"


async def test_bad_topic_is_refused_naming_it(mosquitto: Mosquitto) -> None:
    async with client(mosquitto) as c:
        with pytest.raises(ValueError, match="'a/#'"):
            await c.publish("a/#", b"")
        with pytest.raises(ValueError, match="qos 5"):
            await c.publish("a", b"", qos=5)


def _paho(broker: Mosquitto, name: str) -> paho.Client:
    p = paho.Client(CallbackAPIVersion.VERSION2, client_id=name)
    p.connect("127.0.0.1", broker.port)
    p.loop_start()
    return p


async def test_interop_with_paho_both_ways(mosquitto: Mosquitto, unique_topic: str) -> None:
    received: list[tuple[str, bytes, int]] = []
    lock = threading.Lock()
    subscribed = threading.Event()

    def on_message(_c: paho.Client, _u: object, msg: paho.MQTTMessage) -> None:
        with lock:
            received.append((msg.topic, bytes(msg.payload), msg.qos))

    listener = _paho(mosquitto, f"paho-sub-{next(_ids)}")
    listener.on_message = on_message
    listener.on_subscribe = lambda *_args: subscribed.set()
    talker = _paho(mosquitto, f"paho-pub-{next(_ids)}")
    try:
        listener.subscribe(f"{unique_topic}/to-paho/#", qos=1)
        await asyncio.to_thread(subscribed.wait, 5)
        async with client(mosquitto) as ours:
            await ours.subscribe([f"{unique_topic}/from-paho/#"], qos=1)
            await ours.publish_many([Message(f"{unique_topic}/to-paho/{i}", b"%d" % i, qos=i % 2) for i in range(20)])
            for i in range(20):
                talker.publish(f"{unique_topic}/from-paho/{i}", b"p%d" % i, qos=i % 2)
            got = await take(ours, 20)
            assert [(m.topic, m.payload, m.qos) for m in got] == [
                (f"{unique_topic}/from-paho/{i}", b"p%d" % i, i % 2) for i in range(20)
            ]
            await wait_until(lambda: len(received) == 20, what="paho got 20")
            assert received == [(f"{unique_topic}/to-paho/{i}", b"%d" % i, i % 2) for i in range(20)]
    finally:
        for p in (listener, talker):
            p.disconnect()
            p.loop_stop()


async def test_publish_many_with_a_bad_message_sends_the_good_ones_before_it(
    mosquitto: Mosquitto, unique_topic: str
) -> None:
    async with client(mosquitto) as c:
        await c.subscribe([f"{unique_topic}/#"], qos=1)
        batch = [Message(f"{unique_topic}/0", b"a"), Message(f"{unique_topic}/1", b"b", qos=1), Message("bad/#", b"")]
        with pytest.raises(ValueError, match=r"messages\[2\]: .*'bad/#'"):
            await c.publish_many(batch)
        got = await take(c, 2)
        assert sorted(m.payload for m in got) == [b"a", b"b"]
