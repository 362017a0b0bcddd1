"""The AMQP sink's writer: each row of a batch published to a topic exchange, done once RabbitMQ confirmed all.

The routing key is the UNS topic with '/' as '.' (``uns.sinks.amqp_keys``: a '.', '*', '#' or '%'
inside a level is percent-escaped). The body is the message as the REST sink sends it without a
template: an MES event as published, a sample's envelope (``value``, ``timestamp_ms``, ``quality``,
``datatype``, ``unit``). Properties: ``message_id`` is the hub's key of the message (the same on
every re-delivery, so a consumer can drop repeats), ``content_type`` ``application/json``, delivery
mode 2 unless ``persistent: false``, header ``uns-topic`` the topic itself.

The channel runs in publisher-confirm mode: a batch is written once every one of its messages was
confirmed (``Basic.Ack``); only then does the framework acknowledge its MQTT messages. A connection
lost, a negative confirm (``Basic.Nack``) or ``confirm_timeout_s`` without a single confirm is
``SinkUnavailable``: the framework retries the same batch with backoff, so a message whose confirm
was lost is published again (at least once). A topic whose routing key exceeds 255 bytes is
``RowsRefused`` (field ``routing_key``) naming those rows, dead-lettered to a local SQLite file.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from typing import TypeVar

import aio_pika
import orjson
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange

from model.sinks import AmqpSinkConfig
from uns.errors import RowsRefused, SinkUnavailable
from uns.historian.rows import EventRow, SampleRow
from uns.historian.store import Batch
from uns.sinks.amqp_keys import routing_key
from uns.sinks.dead_letters import DeadLetters
from uns.sinks.rest import message_context
from uns.sinks.writer import WriteReport

__all__ = ["AmqpWriter", "wait_confirms"]

_T = TypeVar("_T")
_CONNECTION_ERRORS = (aio_pika.exceptions.AMQPError, ConnectionError, OSError, RuntimeError, TimeoutError)


class AmqpWriter:
    """Publishes UNS rows to a RabbitMQ topic exchange with publisher confirms (see the module docstring).

    Args:
        config: the sink's config (URL, exchange, delivery mode, timeouts, dead-letter file).
    """

    def __init__(self, *, config: AmqpSinkConfig) -> None:
        self._config = config
        self._connection: AbstractConnection | None = None
        self._channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None
        self.dead_letters = DeadLetters(config.dead_letters_file)
        self._mode = aio_pika.DeliveryMode.PERSISTENT if config.persistent else aio_pika.DeliveryMode.NOT_PERSISTENT

    @property
    def target(self) -> str:
        """The broker (no password) and exchange."""
        return self._config.target

    def _unavailable(self, what: str, exc: BaseException) -> SinkUnavailable:
        return SinkUnavailable(
            sink=self._config.name, target=self.target, reason=f"{what}: {type(exc).__name__}: {exc}"
        )

    async def connect(self) -> None:
        """Connect, open a confirming channel and declare (or check) the exchange; raises ``SinkUnavailable``."""
        await self.aclose()
        config = self._config
        try:
            connection = await aio_pika.connect(
                config.url.get_secret_value(),
                timeout=config.connect_timeout_s,
                heartbeat=config.heartbeat_s,
                client_properties={"connection_name": f"uns-sink-{config.name}"},
            )
        except _CONNECTION_ERRORS as exc:
            raise self._unavailable("cannot connect", exc) from exc
        try:
            channel = await connection.channel(publisher_confirms=True)
            if config.declare:
                exchange = await channel.declare_exchange(config.exchange, aio_pika.ExchangeType.TOPIC, durable=True)
            else:
                exchange = await channel.get_exchange(config.exchange, ensure=True)
        except _CONNECTION_ERRORS as exc:
            await connection.close()
            raise self._unavailable(f"cannot use exchange {config.exchange}", exc) from exc
        self._connection, self._channel, self._exchange = connection, channel, exchange

    async def aclose(self) -> None:
        """Close the connection."""
        connection, self._connection, self._channel, self._exchange = self._connection, None, None, None
        if connection is not None and not connection.is_closed:
            with contextlib.suppress(*_CONNECTION_ERRORS):  # already gone: nothing to release
                await connection.close()

    def _message(self, row: EventRow | SampleRow) -> aio_pika.Message:
        context = message_context(row, self._config.name)
        return aio_pika.Message(
            orjson.dumps(context["body"]),
            content_type="application/json",
            delivery_mode=self._mode,
            message_id=str(context["key"]),
            timestamp=row.ts_ms / 1000,
            headers={"uns-topic": row.topic},
        )

    async def write(self, batch: Batch, *, sink: str) -> WriteReport:
        """Publish every row, wait for all confirms, then store the batch's dead letters (``SinkWriter.write``)."""
        started = time.perf_counter()
        rows: list[EventRow | SampleRow] = [*batch.samples, *batch.events]  # the batch's row order
        keys: list[str] = []
        refused: list[int] = []
        reasons: list[str] = []
        for index, row in enumerate(rows):
            try:
                keys.append(routing_key(row.topic))
            except ValueError as exc:
                refused.append(index)
                reasons.append(str(exc))
        if refused:
            raise RowsRefused(
                sink=sink, target=self.target, reason=reasons[0], field="routing_key", rows=tuple(refused)
            )
        if rows:
            await self._publish(rows, keys)
        if batch.rejected:
            await asyncio.to_thread(self.dead_letters.add, sink, batch.rejected)
        return WriteReport(
            inserted=len(batch.samples),
            duplicates=0,
            events=len(batch.events),
            dead_letters=len(batch.rejected),
            seconds=time.perf_counter() - started,
        )

    async def _publish(self, rows: list[EventRow | SampleRow], keys: list[str]) -> None:
        if self._exchange is None or self._connection is None or self._connection.is_closed:
            await self.connect()
        exchange = self._exchange
        assert exchange is not None  # noqa: S101  (connect sets it or raises)
        confirms = [
            asyncio.ensure_future(exchange.publish(self._message(row), key, mandatory=False))
            for row, key in zip(rows, keys, strict=True)
        ]
        try:
            await wait_confirms(confirms, quiet_s=self._config.confirm_timeout_s)
        except aio_pika.exceptions.DeliveryError as exc:  # Basic.Nack: RabbitMQ could not take it now
            await self.aclose()
            raise self._unavailable("negative publisher confirm", exc) from exc
        except _CONNECTION_ERRORS as exc:
            await self.aclose()
            raise self._unavailable(f"publishing {len(rows)} messages", exc) from exc
        finally:
            for confirm in confirms:
                confirm.cancel()  # the done ones ignore it; a failed batch leaves none running


async def wait_confirms(confirms: Sequence[asyncio.Future[_T]], *, quiet_s: float) -> None:
    """Wait for every confirm; ``TimeoutError`` once ``quiet_s`` passed without a single one.

    A deadline per batch would fail a large batch on a slow disk for ever; a silent broker is what it means.
    """
    done = 0

    def count(_: asyncio.Future[_T]) -> None:
        nonlocal done
        done += 1

    for confirm in confirms:
        confirm.add_done_callback(count)
    everything = asyncio.gather(*confirms)
    seen = 0
    while True:
        try:
            async with asyncio.timeout(quiet_s):
                await asyncio.shield(everything)
            return
        except TimeoutError:
            if done == seen:
                everything.cancel()
                raise TimeoutError(f"no confirm for {quiet_s:g} s") from None
            seen = done
