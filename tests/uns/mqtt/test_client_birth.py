"""The client's ``birth`` on a reconnect, over a relay to Mosquitto that can hold what the client writes."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator

import pytest

from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.recording import recorder_on
from tests.fixtures.relay import OneWayRelay
from tests.uns.mqtt.helpers import url, wait_until
from uns.errors import BrokerError
from uns.mqtt import MqttClient
from uns.mqtt.types import Message

_ids = itertools.count()


@contextlib.asynccontextmanager
async def _watching(port: int, topics: list[str]) -> AsyncIterator[list[Message]]:
    async with recorder_on(url(port), topics, client_id=f"birth-watch-{next(_ids)}") as got:
        yield got.messages


async def test_a_birth_replaces_the_unacknowledged_publishes_to_its_topic_and_the_others_are_re_sent(
    mosquitto: Mosquitto,
) -> None:
    n = next(_ids)
    state, other = f"birth{n}/state", f"birth{n}/other"
    births = 0

    def birth() -> Message:
        nonlocal births
        births += 1
        return Message(state, b"new", qos=1, retain=True)

    async with (
        OneWayRelay(mosquitto.port) as relay,
        _watching(mosquitto.port, [state, other]) as received,
        MqttClient(url=url(relay.port), client_id=f"birth-{n}", birth=birth) as client,
    ):
        relay.flowing.clear()  # nothing the client writes now is acknowledged
        waiting = [
            asyncio.create_task(client.publish(state, b"old", qos=1, retain=True)),
            asyncio.create_task(client.publish(other, b"x1", qos=1)),
            asyncio.create_task(client.publish(other, b"x2", qos=1)),
        ]
        await wait_until(lambda: client.stats.inflight == 3, what="three publishes in flight")
        relay.cut()
        relay.flowing.set()
        async with asyncio.timeout(5):
            await asyncio.gather(*waiting)  # the replaced one returns too; none hangs
        await wait_until(lambda: len(received) >= 3, what="the birth and the re-sent publishes")
        await asyncio.sleep(0.1)  # nothing more comes
        assert [(m.topic, m.payload) for m in received] == [(state, b"new"), (other, b"x1"), (other, b"x2")]
        assert births == 1
        assert client.stats.inflight == 0


async def test_a_birth_that_cannot_be_made_ends_the_client_and_its_connection(mosquitto: Mosquitto) -> None:
    # the new connection is dropped (the broker publishes the will at once), not left open and unused until the
    # broker's keep-alive gives up on it, and what waited fails instead of hanging
    n = next(_ids)
    will_topic = f"birthfail{n}/will"

    def birth() -> Message:
        raise ValueError("no birth")

    async with OneWayRelay(mosquitto.port) as relay, _watching(mosquitto.port, [will_topic]) as received:
        client = MqttClient(
            url=url(relay.port),
            client_id=f"birthfail-{n}",
            birth=birth,
            keepalive_s=60,
            will=Message(will_topic, b"gone", qos=1),
        )
        async with client:
            relay.cut()  # the first will
            await wait_until(lambda: len(received) == 1, what="the first connection's will")
            with pytest.raises(BrokerError, match="no birth"):
                async with asyncio.timeout(5):
                    await client.publish(f"birthfail{n}/x", b"1", qos=1)
            await wait_until(lambda: len(received) == 2, timeout_s=3, what="the second connection's will")
            assert [m.payload for m in received] == [b"gone", b"gone"]
