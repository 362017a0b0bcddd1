"""Flow control of the client: publishes in flight within a window, reading never stuck, Nagle off."""

import asyncio
import contextlib
import itertools
import signal
import socket

import pytest

from tests.fixtures.mosquitto import Mosquitto, run_mosquitto
from tests.fixtures.waiting import until
from tests.uns.mqtt.helpers import take
from uns.mqtt import MqttClient
from uns.mqtt.types import BrokerUrl, Message

_ids = itertools.count()


def client(broker: Mosquitto, **kwargs: object) -> MqttClient:
    kwargs.setdefault("client_id", f"flow-{next(_ids)}")
    return MqttClient(url=BrokerUrl.from_str(broker.url), **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("qos", [0, 1])
async def test_a_full_queue_never_stops_reading_the_acks_a_consumer_awaits(
    mosquitto: Mosquitto, unique_topic: str, qos: int
) -> None:
    # The host's old shape: take a message, republish it at QoS 1 and await its PUBACK. With the
    # queue full, reading paused and the PUBACK was never read: republishing stopped for good.
    count = 2000
    source, relayed_topic = f"{unique_topic}/in", f"{unique_topic}/out"
    relayed: list[int] = []
    async with (
        client(mosquitto, max_queued=20) as relay,
        client(mosquitto) as pub,
        client(mosquitto) as sink,
    ):
        await relay.subscribe([source], qos=qos)
        await sink.subscribe([relayed_topic], qos=1)

        async def relay_loop() -> None:
            async for m in relay.messages():
                await relay.publish(relayed_topic, m.payload, qos=1)
                relayed.append(int(m.payload))

        task = asyncio.create_task(relay_loop())
        try:
            await pub.publish_many([Message(source, b"%d" % i, qos=qos) for i in range(count)])
            if qos == 1:  # held acknowledgements: the broker waits, nothing is lost
                await until(lambda: len(relayed) == count, within_s=20, what=f"all {count} relayed")
            else:  # QoS 0 past the bound while a PUBACK is awaited: dropped, and counted
                await until(
                    lambda: len(relayed) + relay.stats.dropped == count,
                    within_s=20,
                    what=f"{count} relayed or counted as dropped",
                )
            assert relayed == sorted(relayed)  # order kept
            if qos == 1:
                assert relayed == list(range(count))
                assert relay.stats.dropped == 0
            # and it goes on after the flood
            await pub.publish(source, b"%d" % count, qos=qos)
            await until(lambda: relayed[-1:] == [count], within_s=10, what="the message after the flood relayed")
            got = await take(sink, len(relayed))
            assert [int(m.payload) for m in got] == relayed
            assert relay.stats.inflight == 0
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def test_publish_many_without_wait_keeps_a_window_in_flight_in_order(
    mosquitto: Mosquitto, unique_topic: str
) -> None:
    count = 300
    async with client(mosquitto, max_inflight=100) as pub, client(mosquitto) as sub:
        await sub.subscribe([unique_topic], qos=1)
        await pub.publish_many([Message(unique_topic, b"%d" % i, qos=1) for i in range(count)], wait=False)
        # returned before the last window was acknowledged: more than one PUBACK outstanding
        assert 1 < pub.stats.inflight <= 100
        await pub.publish_many([Message(unique_topic, b"%d" % count, qos=1)], wait=False)
        got = await take(sub, count + 1)
        assert [int(m.payload) for m in got] == list(range(count + 1))
        await until(lambda: pub.stats.inflight == 0, what="every PUBACK read")
        assert pub.stats.oldest_unacked_s == 0.0
        assert pub.stats.sent == count + 1


async def test_oldest_unacknowledged_age_grows_while_the_broker_does_not_answer(unique_topic: str) -> None:
    with run_mosquitto() as broker:  # its own: stopped for a while below
        async with client(broker) as pub:
            broker.process.send_signal(signal.SIGSTOP)  # the broker holds every PUBACK
            try:
                await pub.publish_many([Message(unique_topic, b"x", qos=1)], wait=False)
                await until(lambda: pub.stats.oldest_unacked_s > 0.2, what="the unacknowledged publish aging")
                assert pub.stats.inflight == 1
            finally:
                broker.process.send_signal(signal.SIGCONT)
            await until(lambda: pub.stats.inflight == 0, what="the PUBACK after the broker resumed")
            assert pub.stats.oldest_unacked_s == 0.0


async def test_client_sockets_have_nagle_off(mosquitto: Mosquitto) -> None:
    async with client(mosquitto) as c:
        conn = c._conn  # the socket is not public API
        assert conn is not None
        sock = conn.transport.get_extra_info("socket")
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
