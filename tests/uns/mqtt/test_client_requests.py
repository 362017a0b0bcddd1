"""The client's SUBSCRIBE/UNSUBSCRIBE across a lost connection (``uns/mqtt/requests.py``), over a relay to Mosquitto."""

from __future__ import annotations

import asyncio
import itertools

from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.relay import OneWayRelay
from tests.uns.mqtt.helpers import take, url, wait_until
from uns.mqtt import MqttClient

_ids = itertools.count()


async def test_a_subscribe_whose_connection_drops_before_its_suback_is_answered_on_the_next(
    mosquitto: Mosquitto,
) -> None:
    n = next(_ids)
    topic = f"requests{n}/a"
    async with (
        OneWayRelay(mosquitto.port) as relay,
        MqttClient(url=url(relay.port), client_id=f"requests-{n}") as client,
        MqttClient(url=url(mosquitto.port), client_id=f"requests-pub-{n}") as publisher,
    ):
        relay.flowing.clear()  # the SUBSCRIBE is held: no SUBACK on this connection
        subscribing = asyncio.create_task(client.subscribe([topic], qos=1))
        await wait_until(lambda: relay.held == 1, what="the SUBSCRIBE held by the relay")
        relay.cut()
        relay.flowing.set()
        async with asyncio.timeout(5):
            await subscribing  # asked again on the new connection, not failed nor left waiting
        assert client.stats.reconnects == 1
        await publisher.publish(topic, b"after", qos=1)
        [got] = await take(client, 1)
        assert (got.topic, got.payload) == (topic, b"after")
