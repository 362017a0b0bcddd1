"""Test helpers for the MQTT client tests: collect messages and wait on conditions, with deadlines."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from uns.mqtt.client import MqttClient
from uns.mqtt.types import BrokerUrl, Message

__all__ = ["take", "url", "wait_until"]


def url(port: int, user: str | None = None, password: str | None = None) -> BrokerUrl:
    """The broker (or relay) listening on ``port`` on this host, as ``user`` if given."""
    return BrokerUrl(host="127.0.0.1", port=port, username=user, password=password)


async def take(client: MqttClient, count: int, timeout_s: float = 10.0) -> list[Message]:
    """The next ``count`` messages, or TimeoutError naming how many came."""
    got: list[Message] = []
    try:
        async with asyncio.timeout(timeout_s):
            async with contextlib.aclosing(client.messages()) as stream:  # type: ignore[type-var]
                async for message in stream:
                    got.append(message)
                    if len(got) == count:
                        return got
    except TimeoutError:
        raise TimeoutError(f"got {len(got)} of {count} messages within {timeout_s}s: {got[-3:]}") from None
    return got


async def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0, what: str = "condition") -> None:
    """Poll ``condition`` until true, failing after ``timeout_s``."""
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110  (polls state other parts own)
            await asyncio.sleep(0.01)
    if not condition():  # pragma: no cover
        raise AssertionError(what)
