"""A bench's view of the hub under test: its topics followed on their own MQTT client, in a named task."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from typing import Any

from uns.mqtt.client import MqttClient
from uns.mqtt.types import BrokerUrl

__all__ = ["following"]


@contextlib.asynccontextmanager
async def following(
    url: str, topics: Sequence[str], follow: Callable[[MqttClient], Coroutine[Any, Any, None]]
) -> AsyncIterator[MqttClient]:
    """Subscribe ``bench-monitor`` to ``topics`` at QoS 0 and run ``follow(client)`` until the block ends."""
    async with MqttClient(url=BrokerUrl.from_str(url), client_id="bench-monitor") as client:
        await client.subscribe(topics, qos=0)
        task = asyncio.create_task(follow(client), name="bench.monitor")
        try:
            yield client
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
