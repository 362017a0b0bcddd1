"""The one health loop: a component's document, retained, every interval, even when the broker stops reading."""

from __future__ import annotations

import asyncio
import contextlib
import itertools

import orjson

from tests.exports import assert_all_is_honest
from tests.fixtures.waiting import next_messages, until
from uns.broker.embedded import EmbeddedBroker
from uns.connect import network_clients
from uns.health import publish_health

_TOPIC = "acme/hub/test/health"


def test_exports() -> None:
    assert_all_is_honest("uns.health")


async def test_the_document_is_published_retained_with_online_and_time(broker: EmbeddedBroker) -> None:
    ticks = itertools.count(1)
    async with network_clients(broker.url)(client_id="health-test") as client:
        loop = asyncio.create_task(
            publish_health(client, _TOPIC, lambda: {"tick": next(ticks)}, interval_s=0.05), name="test.health"
        )
        try:
            async with network_clients(broker.url)(client_id="health-reader") as reader:
                await reader.subscribe([_TOPIC])
                (first,) = await next_messages(reader, within_s=10, what="the health document")
        finally:
            loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loop
    body = orjson.loads(first.payload)
    assert first.retain
    assert list(body) == ["online", "timestamp_ms", "tick"]
    assert body["online"] is True
    assert isinstance(body["timestamp_ms"], int)


class _BrokerNotReading:
    """Stands in for a broker that stopped reading: a QoS 0 publish waits for its buffer to drain, forever."""

    def __init__(self) -> None:
        self.publishes = 0

    async def publish(self, topic: str, payload: bytes, *, qos: int = 0, retain: bool = False) -> None:
        self.publishes += 1
        await asyncio.Event().wait()


async def test_a_broker_that_stops_reading_does_not_stop_the_documents() -> None:
    """Each interval a new document is built (what it judges and logs happens on time) and offered again."""
    built = itertools.count(1)
    stuck = _BrokerNotReading()
    documents: list[dict[str, object]] = []

    def document() -> dict[str, object]:
        documents.append({"n": next(built)})
        return documents[-1]

    loop = asyncio.create_task(publish_health(stuck, _TOPIC, document, interval_s=0.05), name="test.health")
    try:
        await until(lambda: len(documents) >= 3 and stuck.publishes >= 3, within_s=5, what="three documents")
    finally:
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop
