"""A component's health topic: its JSON health document, retained, every interval, whatever the broker does.

The Sparkplug host, the historian, the sinks, the computed tags and the rules publish
``<enterprise>/hub/<component>/health`` with this one loop (docs/namespace.md, "The hub's own topics").
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from typing import Protocol

import orjson

from uns.clock import now_ms

__all__ = ["HealthPublisher", "publish_health"]


class HealthPublisher(Protocol):
    """What the loop publishes through: a component's MQTT client (``PubSub``) or its owner's publish."""

    async def publish(self, topic: str, payload: bytes, *, qos: int = 0, retain: bool = False) -> None:
        """Publish one message (QoS 0: returns once the transport took it, awaiting only back-pressure)."""
        ...


async def publish_health(
    client: HealthPublisher, topic: str, document: Callable[[], Mapping[str, object]], *, interval_s: float
) -> None:
    """Publish ``{"online": true, "timestamp_ms": now, **document()}`` on ``topic``, retained, every ``interval_s``.

    Runs until cancelled. A broker that stops reading does not stop it: a QoS 0 write is buffered at
    once and only the wait for the buffer to drain is given up after ``interval_s``, so the next
    document is still built (and whatever ``document`` judges and logs still happens) on time. An
    in-process client's publish given up so (a full local subscriber) has stored the retained document
    but may not have reached every subscriber: the next one, an interval later, does.
    """
    while True:
        body = orjson.dumps({"online": True, "timestamp_ms": now_ms(), **document()})
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(interval_s):
                await client.publish(topic, body, qos=0, retain=True)
        await asyncio.sleep(interval_s)
