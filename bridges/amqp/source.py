"""The AMQP 0-9-1 source: a RabbitMQ queue's JSON messages as Sparkplug metrics and MES events.

One delivery is one unit. Its MES events are published at QoS 1 and awaited (PUBACK), then its samples are
yielded to the edge node; only when the edge node asks for the next event (it sent or buffered them) is the
delivery acknowledged to RabbitMQ (one ``basic.ack`` with ``multiple`` per burst), so a crash or an outage of
either side loses nothing: RabbitMQ delivers again what was not acknowledged. A message that does not map (not
JSON, no items, an item the mapping refuses) is rejected without requeue, so RabbitMQ dead-letters it to the
queue's dead-letter exchange (the original bytes, with ``x-death``), and its reasons are written to the
connector's dead-letter file; the good items beside a refused one are still mapped.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncGenerator, Sequence
from pathlib import Path
from typing import Self

import aio_pika.exceptions
import aiormq.exceptions
import orjson
from aio_pika.abc import AbstractIncomingMessage

from bridges.amqp.keys import key_matches
from bridges.amqp.link import Inbox, Link, LinkDown, LinkUp
from bridges.http.dead_letters import DeadLetters
from bridges.http.mapping import MappedEvent, Mapper, MappingError, find_items
from bridges.source import DeviceDown, Samples, SourceEvent, SourceTasks, TagSpec
from bridges.status import StatusDevice
from model.bridges.amqp import STATUS_DEVICE, AmqpBridgeConfig, AmqpRoute
from model.bridges.http import HttpDevice, HttpEvent
from uns.backoff import Backoff
from uns.clock import now_ms
from uns.connect import ClientFactory
from uns.errors import BridgeError
from uns.logs import RateLimitedLog
from uns.mqtt.types import Message, PubSub
from uns.sparkplug import MetricValue

__all__ = ["COUNTERS", "AmqpSource"]

log = logging.getLogger(__name__)

COUNTERS = ("messages", "items", "refused", "dead_lettered", "unrouted", "events", "redelivered", "reconnects")
"""The status device's counters (``Status/<CamelCase>``). messages: deliveries acknowledged; refused: items or
bodies that did not map; dead_lettered: deliveries rejected to the dead-letter exchange; unrouted: messages no
route fits (acknowledged, nothing mapped); events: MES events the MQTT broker acknowledged; redelivered:
deliveries RabbitMQ flagged as sent before; reconnects: connections regained."""
_STATUS_S = 1.0  # the status device is refreshed at most (and, when idle, at least) this often
_ACK_ERRORS = (aio_pika.exceptions.AMQPError, aiormq.exceptions.AMQPError, ConnectionError, RuntimeError)


@dataclasses.dataclass(frozen=True, slots=True)
class _RouteMapping:
    """A route as the HTTP source's ``Mapper`` reads it."""

    name: str
    key_path: str | None
    devices: Sequence[HttpDevice]
    events: Sequence[HttpEvent]


@dataclasses.dataclass(frozen=True, slots=True)
class _Route:
    config: AmqpRoute
    mapper: Mapper


class AmqpSource:
    """A ``Source`` for ``kind: amqp``.

    Args:
        config: the connector's config.
        clients: MQTT clients of the hub's broker, for MES events.
        data_dir: the hub's data directory; dead letters default to ``data_dir/amqp/<name>``.
    """

    def __init__(self, *, config: AmqpBridgeConfig, clients: ClientFactory, data_dir: Path) -> None:
        self.name = config.name
        self._config = config
        self._clients = clients
        self.dead_letters = DeadLetters(directory=config.state_dir or data_dir / "amqp" / config.name)
        self._routes = [
            _Route(route, Mapper(_RouteMapping(config.name, route.key_path, route.devices, route.events)))
            for route in config.routes
        ]
        self._inbox: Inbox = SourceTasks(f"amqp[{config.name}]")
        self.link = Link(config=config, inbox=self._inbox)
        self._stack = contextlib.AsyncExitStack()
        self._client: PubSub | None = None
        self._warn = RateLimitedLog(log)
        self._status_at = 0.0
        self._held: AbstractIncomingMessage | None = None  # the last delivery taken and not yet acknowledged
        self._held_count = 0
        self._ack_every = max(1, config.prefetch // 2)
        self._status_device = StatusDevice(device=STATUS_DEVICE, counters=COUNTERS)
        self.counts = self._status_device.counts

    async def __aenter__(self) -> Self:
        async with contextlib.AsyncExitStack() as stack:
            if any(route.events for route in self._config.routes):
                client_id = f"uns-amqp-{self._config.edge.group}-{self._config.node_id}"
                self._client = await stack.enter_async_context(self._clients(client_id=client_id))
            self._stack = stack.pop_all()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._inbox.stop()  # events() may be left suspended at a yield by a cancelled consumer
        self._client = None
        await self._stack.aclose()

    def tags(self) -> Sequence[TagSpec]:
        """The mapped metrics of every route, then the status device's counters."""
        mapped = [tag for route in self._routes for tag in route.mapper.tags()]
        return [*mapped, *self._status_device.tags()]

    async def write(self, device: str, name: str, value: MetricValue) -> None:
        """AMQP messages are read-only here."""
        raise BridgeError(self.name, device, f"{name}: the AMQP source is read-only")

    async def events(self) -> AsyncGenerator[SourceEvent, None]:
        """Samples of each delivery, the status device, and ``DeviceDown`` while RabbitMQ is away.

        The link runs as a task of its own (a TaskGroup cannot span the yields of a generator its
        consumer may abandon), stopped when this generator closes or the source exits; its crash is raised here.
        """
        self._inbox.start(self.link.run(), "link")
        backoff = Backoff(min_s=0.1, max_s=5.0)
        try:
            while True:
                try:
                    async with asyncio.timeout(_STATUS_S):
                        work = await self._inbox.get()
                except TimeoutError:
                    if self.link.up:  # while RabbitMQ is away the status device stays dead
                        yield self._status()
                    continue
                if isinstance(work, LinkDown):
                    self._held, self._held_count = None, 0  # their channel is gone: RabbitMQ delivers them again
                    yield DeviceDown(STATUS_DEVICE, work.reason)
                    continue
                if isinstance(work, LinkUp):
                    self.counts["reconnects"] = self.link.reconnects
                    yield self._status()
                    continue
                if _stale(work):
                    continue  # its channel is gone with the connection: RabbitMQ delivers it again
                batches, events, refusals = self._map(work)
                try:
                    await self._publish(events)
                except BridgeError as exc:  # the MQTT broker is away: give the delivery back, try again later
                    self._warn.warning("mqtt", "amqp %s: %s; the delivery is requeued", self.name, exc)
                    await _settle(work.nack(requeue=True))
                    await asyncio.sleep(backoff.failed())
                    continue
                backoff.succeeded()
                for batch in batches:
                    yield batch
                # the edge node asked for more: it sent or buffered every sample above
                await self._settle(work, refusals)
                if self._held is not None and (self._held_count >= self._ack_every or self._inbox.qsize() == 0):
                    await self._ack_held()
                if time.monotonic() - self._status_at >= _STATUS_S:
                    yield self._status()
        finally:
            await self._inbox.stop()

    # -- one delivery ---------------------------------------------------------------------------

    def _map(self, message: AbstractIncomingMessage) -> tuple[list[Samples], list[MappedEvent], list[str]]:
        """The delivery's samples and events, and why anything in it was refused."""
        if message.redelivered:
            self.counts["redelivered"] += 1
        key = message.routing_key or ""
        route = next((r for r in self._routes if key_matches(key, r.config.routing_key)), None)
        if route is None:
            self.counts["unrouted"] += 1
            return [], [], []
        where = f"routing key {key!r}"
        try:
            document = orjson.loads(message.body)
        except orjson.JSONDecodeError as exc:
            return [], [], [self._refuse(MappingError(self.name, where, "$", f"not JSON: {exc}"), message.body)]
        try:
            items = find_items(self.name, document, route.config.items_path)
        except MappingError as exc:
            return [], [], [self._refuse(MappingError(self.name, where, exc.path, exc.reason), document)]
        now = now_ms()
        batches: list[Samples] = []
        events: list[MappedEvent] = []
        refusals: list[str] = []
        for index, item in enumerate(items):
            item_key = f"{key}/{route.mapper.key(item, index)}"
            try:
                item_batches = route.mapper.samples(item, item_key, now_ms=now)
                item_events = route.mapper.events(item, item_key)
            except MappingError as exc:
                refusals.append(self._refuse(exc, item))
                continue
            batches.extend(item_batches)
            events.extend(item_events)
        self.counts["items"] += len(items) - len(refusals)
        return batches, events, refusals

    def _refuse(self, error: MappingError, item: object) -> str:
        self._status_device.refused(str(error))
        self.dead_letters.add(error, item if not isinstance(item, bytes) else item[:4096].decode(errors="replace"))
        self._warn.warning(f"refused|{error.path}", "amqp %s: refused and dead-lettered: %s", self.name, error)
        return str(error)

    async def _publish(self, events: list[MappedEvent]) -> None:
        """Publish at QoS 1 and wait for the PUBACKs (the MES takes an event id once)."""
        if not events:
            return
        client = self._client
        if client is None:  # pragma: no cover  (entered with events configured)
            raise BridgeError(self.name, "mqtt", "no MQTT client for MES events")
        try:
            await client.publish_many([Message(event.topic, event.body, 1, False) for event in events])
        except Exception as exc:
            raise BridgeError(self.name, "mqtt", f"MES events not acknowledged: {exc!r}") from exc
        self.counts["events"] += len(events)

    async def _settle(self, message: AbstractIncomingMessage, refusals: list[str]) -> None:
        """Reject a refused delivery now; hold a taken one for the next acknowledgement."""
        if refusals:  # rejected without requeue: RabbitMQ moves it to the dead-letter exchange
            if await _settle(message.reject(requeue=False)):
                self.counts["dead_lettered"] += 1
            return
        self._held = message
        self._held_count += 1

    async def _ack_held(self) -> None:
        """Acknowledge every delivery taken so far in one ``basic.ack`` (``multiple``: up to the last one's tag).

        Deliveries are handled in order, so every one up to that tag was handed over or already rejected.
        It is sent at once when no delivery waits, else every ``prefetch // 2``: one frame per burst, not per message.
        """
        held, count = self._held, self._held_count
        self._held, self._held_count = None, 0
        if held is not None and await _settle(held.ack(multiple=True)):
            self.counts["messages"] += count

    # -- status ---------------------------------------------------------------------------------

    def _status(self) -> Samples:
        self._status_at = time.monotonic()
        return self._status_device.samples(now_ms())


def _stale(message: AbstractIncomingMessage) -> bool:
    try:
        message.channel  # noqa: B018  (raises once the delivery's channel is closed)
    except aio_pika.exceptions.ChannelInvalidStateError:
        return True
    return False


async def _settle(outcome: object) -> bool:
    """Await an ack/nack/reject; False when the channel went away meanwhile (RabbitMQ delivers it again)."""
    try:
        await outcome  # type: ignore[misc]
    except _ACK_ERRORS as exc:
        log.debug("amqp: acknowledgement not sent (%r): the message will be delivered again", exc)
        return False
    return True
