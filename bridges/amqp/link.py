"""The source's AMQP link: aio-pika's robust connection, our backoff, the topology, deliveries into one inbox.

The first connection is retried with ``uns.backoff`` until RabbitMQ answers (a broker down at start
is not an error: the status device is dead meanwhile). Once connected, aio-pika's robust connection
reconnects by itself and restores the channel, its prefetch, the exchanges, the queue, its bindings
and the consumer; while it is away this link paces its attempts with the same backoff (it sets the
connection's ``reconnect_interval`` before each wait). Losing or regaining the connection is put in
the inbox (``LinkDown``/``LinkUp``) beside the deliveries, so the source reports it in order.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

import aio_pika
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from bridges.source import SourceTasks
from model.bridges.amqp import AmqpBridgeConfig, redact_amqp_url
from uns.backoff import Backoff
from uns.logs import RateLimitedLog

__all__ = ["Inbox", "Link", "LinkDown", "LinkUp"]

log = logging.getLogger(__name__)

_CONNECT_TIMEOUT_S: Final = 10.0


class LinkDown:
    """The connection to RabbitMQ is lost (or was never made): why."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


class LinkUp:
    """The connection is (back) up and consuming."""

    __slots__ = ()


Inbox = SourceTasks[AbstractIncomingMessage | LinkDown | LinkUp]
"""The source's queue: deliveries and link changes in order; the link's task runs on it, its crash raised by ``get``."""


class Link:
    """Connects, declares the topology and consumes the source's queue into ``inbox``.

    Args:
        config: the source's config.
        inbox: where deliveries and link changes go (unbounded: ``prefetch`` bounds the deliveries).
    """

    def __init__(self, *, config: AmqpBridgeConfig, inbox: Inbox) -> None:
        self._config = config
        self._inbox = inbox
        self._backoff = Backoff(min_s=config.reconnect_min_s, max_s=max(config.reconnect_min_s, config.reconnect_max_s))
        self._warn = RateLimitedLog(log)
        self._connection: AbstractRobustConnection | None = None
        self._pacer: asyncio.Task[None] | None = None
        self.up = False
        self._told_down = False
        self.reconnects = 0
        self.failed_attempts = 0
        self.target = f"{redact_amqp_url(config.url)} queue {config.queue}"

    async def run(self) -> None:
        """Connect (retrying), consume, and keep the robust connection paced until cancelled."""
        try:
            self._connection = await self._first_connection()
            await asyncio.Event().wait()  # aio-pika's robust connection does the rest; callbacks report it
        finally:
            if self._pacer is not None:
                self._pacer.cancel()
            connection, self._connection = self._connection, None
            if connection is not None:
                await connection.close()

    async def _first_connection(self) -> AbstractRobustConnection:
        config = self._config
        while True:
            connection: AbstractRobustConnection | None = None
            try:
                connection = await aio_pika.connect_robust(
                    config.url.get_secret_value(),
                    timeout=_CONNECT_TIMEOUT_S,
                    heartbeat=config.heartbeat_s,
                    reconnect_interval=config.reconnect_min_s,
                    client_properties={"connection_name": f"uns-amqp-{config.edge.group}-{config.node_id}"},
                )
                await self._declare(connection)
            except asyncio.CancelledError:
                if connection is not None:
                    await connection.close()
                raise
            except Exception as exc:  # refused, DNS, login, a queue declared with other arguments: retry
                if connection is not None:
                    await connection.close()
                delay = self._backoff.failed()
                self.failed_attempts += 1
                self._down(f"{self.target}: {type(exc).__name__}: {exc}")
                self._warn.warning(
                    "connect", "amqp %s: cannot connect to %s (%s: %s); retrying in %.1f s",
                    config.name, self.target, type(exc).__name__, exc, delay,
                )  # fmt: skip
                await asyncio.sleep(delay)
                continue
            self._backoff.succeeded()
            connection.close_callbacks.add(self._closed)
            connection.reconnect_callbacks.add(self._reconnected)
            self._set_up()
            log.info("amqp %s: consuming %s", config.name, self.target)
            return connection

    async def _declare(self, connection: AbstractRobustConnection) -> None:
        config = self._config
        channel = await connection.channel(publisher_confirms=False)
        await channel.set_qos(prefetch_count=config.prefetch)
        exchange = await channel.declare_exchange(
            config.exchange, aio_pika.ExchangeType(config.exchange_type), durable=config.durable
        )
        arguments: dict[str, object] = {"x-dead-letter-exchange": config.dead_letters_to}
        if config.dead_letter_exchange is None:  # our own: a fanout and a queue keeping what it gets
            dead = await channel.declare_exchange(config.dead_letters_to, aio_pika.ExchangeType.FANOUT, durable=True)
            dead_queue = await channel.declare_queue(config.dead_letters_to, durable=True)
            await dead_queue.bind(dead)
        queue = await channel.declare_queue(config.queue, durable=config.durable, arguments=arguments)
        for key in config.binding_keys:
            await queue.bind(exchange, routing_key=key)
        await queue.consume(self._inbox.put)

    def _set_up(self) -> None:
        self.up = True
        self._told_down = False
        self._inbox.put_nowait(LinkUp())

    def _down(self, reason: str) -> None:
        if self.up or not self._told_down:  # once per outage (and once while the first connect fails)
            self._inbox.put_nowait(LinkDown(reason))
        self._told_down = True
        self.up = False

    def _closed(self, _connection: object, exc: BaseException | None = None) -> None:
        if self._connection is None:  # our own close
            return
        reason = f"{self.target}: connection lost: {exc!r}" if exc is not None else f"{self.target}: connection closed"
        was_up = self.up
        self._down(reason)
        if was_up:
            log.warning("amqp %s: %s; reconnecting", self._config.name, reason)
        if self._pacer is None or self._pacer.done():
            self._pacer = asyncio.get_running_loop().create_task(self._pace(), name=f"amqp[{self._config.name}].pace")

    def _reconnected(self, _connection: object) -> None:
        self.reconnects += 1
        self._backoff.succeeded()
        if self._pacer is not None:
            self._pacer.cancel()
        log.info("amqp %s: reconnected to %s", self._config.name, self.target)
        self._set_up()

    async def _pace(self) -> None:
        """While reconnecting, make the robust connection's waits follow our backoff (doubling, jittered)."""
        connection = self._connection
        while connection is not None and not self.up:
            delay = self._backoff.failed()
            connection.reconnect_interval = delay  # type: ignore[attr-defined]
            await asyncio.sleep(delay)
