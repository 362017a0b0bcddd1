"""The Sparkplug host's async shell: STATE, subscriptions, the message loop and the health topic."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from types import TracebackType
from typing import Self

import orjson

from model.config import HostSection
from model.equipment import Plant
from uns.connect import ClientFactory
from uns.host.bounds import HostBounds
from uns.host.core import HostCore, hub_topic
from uns.host.state_guard import StateGuard
from uns.mqtt.filters import topic_matches
from uns.mqtt.types import Message, PubSub
from uns.sparkplug import encode_state

__all__ = ["SparkplugHost"]

log = logging.getLogger(__name__)

_STATE_PREFIX = "spBv1.0/STATE/"


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class SparkplugHost:
    """Primary host application: tracks every edge node and republishes its metrics to the UNS."""

    name = "host"

    def __init__(
        self, *, settings: HostSection, plant: Plant, clients: ClientFactory, max_payload_bytes: int = 1_048_576
    ) -> None:
        self._settings = settings
        self._clients = clients
        self._enterprise = plant.enterprise.id
        self.core = HostCore(
            plant=plant,
            max_payload_bytes=max_payload_bytes,
            rebirth_min_interval_ms=int(settings.rebirth_min_interval_s * 1000),
            republish_qos=settings.republish_qos,
            bounds=HostBounds(
                max_metrics_per_birth=settings.max_metrics_per_birth,
                max_devices_per_node=settings.max_devices_per_node,
                max_nodes=settings.max_nodes,
                max_series=settings.max_series,
            ),
        )
        self._state_topic = _STATE_PREFIX + settings.host_id
        self._session_ms = 0
        self._state = StateGuard(topic=self._state_topic, session_ms=0, counters=self.core.counters)
        self._client: PubSub | None = None
        self._stack = contextlib.AsyncExitStack()
        self._ready = asyncio.Event()

    @property
    def state_topic(self) -> str:
        """``spBv1.0/STATE/<host_id>``."""
        return self._state_topic

    @property
    def health_topic(self) -> str:
        """``<enterprise>/hub/host/health``."""
        return hub_topic(self._enterprise, "host", "health")

    async def __aenter__(self) -> Self:
        # Sparkplug 3.0: the STATE birth and its will carry the same timestamp
        self._session_ms = _now_ms()
        self._state = StateGuard(topic=self._state_topic, session_ms=self._session_ms, counters=self.core.counters)
        will = Message(self._state_topic, encode_state(False, self._session_ms), qos=1, retain=True)
        filters = [f"spBv1.0/{group}/#" for group in self._settings.groups]
        if not any(topic_matches(self._state_topic, f) for f in filters):
            filters.append(self._state_topic)  # we answer anything published there (StateGuard)
        async with contextlib.AsyncExitStack() as stack:
            client = await stack.enter_async_context(
                self._clients(client_id=f"uns-host-{self._settings.host_id}", will=will, on_connect=self._on_connect)
            )
            await client.subscribe(filters, qos=1)
            self._stack = stack.pop_all()
        self._client = client
        log.info("Sparkplug host %s online, tracking %s", self._settings.host_id, ", ".join(filters))
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        client = self._client
        self._client = None
        if client is None:
            return
        try:
            async with asyncio.timeout(1.0):
                await client.publish(self._state_topic, encode_state(False, self._session_ms), qos=1, retain=True)
        except (TimeoutError, OSError) as err:
            log.warning("could not publish offline STATE on %s: %s", self._state_topic, err)
        finally:
            await self._stack.__aexit__(exc_type, exc, tb)
        log.info("Sparkplug host %s offline", self._settings.host_id)

    async def _on_connect(self) -> None:
        # on every (re)connect: the broker may have fired our will, so say we are online again
        client = self._client
        if client is None:
            return  # first connect: __aenter__ publishes once subscribed (births must not arrive unseen)
        await client.publish(self._state_topic, self._state.online(), qos=1, retain=True)

    async def run(self) -> None:
        """Publish online STATE, then process messages and publish health until cancelled."""
        client = self._require_client()
        await client.publish(self._state_topic, self._state.online(), qos=1, retain=True)
        self._ready.set()
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._health_loop(client), name="uns.host.health")
            tasks.create_task(self._message_loop(client), name="uns.host.messages")

    async def wait_ready(self) -> None:
        """Until the online STATE is published."""
        await self._ready.wait()

    async def _message_loop(self, client: PubSub) -> None:
        core = self.core
        async for message in client.messages():
            if message.topic.startswith(_STATE_PREFIX):
                if message.topic == self._state_topic and (state := self._state.on_message(message.payload, _now_ms())):
                    await client.publish(self._state_topic, state, qos=1, retain=True)
                continue
            out = core.handle(message.topic, message.payload, _now_ms())
            if out:
                await client.publish_many(out)

    async def _health_loop(self, client: PubSub) -> None:
        while True:
            health = {
                "host_id": self._settings.host_id,
                "online": True,
                "timestamp_ms": _now_ms(),
                **self.core.health(),
            }
            await client.publish(self.health_topic, orjson.dumps(health), qos=0, retain=True)
            await asyncio.sleep(self._settings.health_interval_s)

    def _require_client(self) -> PubSub:
        if self._client is None:
            raise RuntimeError("SparkplugHost.run() needs `async with host:` first")
        return self._client
