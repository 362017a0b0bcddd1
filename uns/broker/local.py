"""In-process MQTT clients of the embedded broker: the PubSub seam without a socket, with back-pressure."""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import AsyncIterator, Sequence
from types import TracebackType
from typing import Protocol, Self

from uns.broker.matcher import SubscriptionIndex, filter_error
from uns.broker.shared import SHARE_PREFIX
from uns.errors import BrokerError
from uns.mqtt.types import Message

__all__ = ["LocalBackend", "LocalClient"]

log = logging.getLogger(__name__)


class LocalBackend(Protocol):
    """What a local client needs from the broker it lives in."""

    def retained_matching(self, topic_filter: str) -> list[Message]:
        """Retained messages whose topic matches ``topic_filter`` (``retain=True``)."""
        ...

    async def publish_local(self, source: str, messages: Sequence[Message]) -> None:
        """Store, route and broadcast messages published in-process by client ``source``."""
        ...


class LocalClient:
    """An in-process client with the ``admin`` role; implements :class:`uns.mqtt.types.PubSub`.

    Messages for it wait in a bounded queue. When the queue is full the broker waits for room
    instead of dropping, which holds back the publisher (a TCP client stops being read).
    Like any MQTT client it also receives its own publishes when it subscribes to their topics.
    """

    def __init__(
        self, *, name: str, backend: LocalBackend, index: SubscriptionIndex[LocalClient], queue_size: int
    ) -> None:
        if queue_size < 1:
            raise ValueError(f"local client {name}: queue_size must be ≥ 1 (got {queue_size})")
        self._name = name
        self._backend = backend
        self._index = index
        self._limit = queue_size
        # a deque and an event, not asyncio.Queue: half the cost per message on the broker's hot path;
        # unbounded underneath so close() can always enqueue its end marker; the bound is ours
        self._queue: collections.deque[Message | None] = collections.deque()
        self._ready = asyncio.Event()
        """Set while the queue holds something (the reader waits on it when empty)."""
        self._room = asyncio.Event()
        self._room.set()
        self._closed = False
        self._closed_event = asyncio.Event()

    def __repr__(self) -> str:
        return f"LocalClient({self._name!r})"

    @property
    def client_id(self) -> str:
        """The in-process name given to ``EmbeddedBroker.local_client``."""
        return self._name

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    @property
    def pending(self) -> int:
        """Messages queued and not yet read from :meth:`messages`."""
        return len(self._queue)

    async def publish(self, topic: str, payload: bytes, *, qos: int = 0, retain: bool = False) -> None:
        """Publish one message to network and local subscribers (and the retained store when ``retain``)."""
        self._check_open()
        await self._backend.publish_local(self._name, (Message(topic=topic, payload=payload, qos=qos, retain=retain),))

    async def publish_many(self, messages: Sequence[Message]) -> None:
        """Publish many messages in order with one await."""
        self._check_open()
        await self._backend.publish_local(self._name, messages)

    def ack(self, message: Message) -> None:
        """Nothing to acknowledge: an in-process client loses messages only with its broker."""
        del message

    async def subscribe(self, filters: Sequence[str], *, qos: int = 1) -> None:
        """Subscribe; retained messages matching each filter are queued first, as MQTT does."""
        self._check_open()
        for topic_filter in filters:
            problem = filter_error(topic_filter)
            if topic_filter.startswith(SHARE_PREFIX):  # in-process parts each want the whole stream
                problem = f"{topic_filter!r}: shared subscriptions are for network clients only"
            if problem is not None:
                raise BrokerError(f"local:{self._name}", f"subscribe refused: {problem}")
        if qos not in (0, 1, 2):
            raise BrokerError(f"local:{self._name}", f"subscribe refused: qos must be 0, 1 or 2 (got {qos})")
        for topic_filter in filters:
            retained = self._backend.retained_matching(topic_filter)
            self._index.add(topic_filter, self, qos)
            for message in retained:
                await self.put(
                    Message(topic=message.topic, payload=message.payload, qos=min(qos, message.qos), retain=True)
                )

    async def unsubscribe(self, filters: Sequence[str]) -> None:
        """Stop receiving messages for these filters."""
        for topic_filter in filters:
            self._index.remove(topic_filter, self)

    async def messages(self) -> AsyncIterator[Message]:
        """Every message delivered to this client's subscriptions, in arrival order; ends when closed."""
        queue, ready = self._queue, self._ready
        while True:
            if not queue:
                ready.clear()
                await ready.wait()
                continue
            message = queue.popleft()
            if message is None:
                return
            if not self._room.is_set() and len(queue) < self._limit:
                self._room.set()
            yield message

    def offer(self, message: Message) -> bool:
        """Queue ``message`` if there is room (the broker's fast path); False when full."""
        queue = self._queue
        if len(queue) >= self._limit:
            return False
        queue.append(message)
        if not self._ready.is_set():
            self._ready.set()
        return True

    async def put(self, message: Message) -> None:
        """Queue ``message``, waiting for room; a closed client discards it (nobody is left to read it)."""
        while len(self._queue) >= self._limit and not self._closed:
            self._room.clear()
            await self._room.wait()
        if not self._closed:
            self._queue.append(message)
            self._ready.set()

    async def close(self) -> None:
        """Unsubscribe from everything and end :meth:`messages` once the queued messages are read."""
        if self._closed:
            return
        self._closed = True
        self._closed_event.set()
        self._index.remove_all(self)
        self._queue.append(None)
        self._ready.set()
        self._room.set()  # release publishers waiting for room
        log.debug("local client %s closed", self._name)

    async def disconnected(self) -> str:
        """An in-process client has no connection to lose: this waits until it is closed."""
        await self._closed_event.wait()
        return "closed"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise BrokerError(f"local:{self._name}", "this local client is closed")
