"""Asyncio MQTT 3.1.1 client: the one ``PubSub`` every component talks to the broker through."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import ssl
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from types import TracebackType
from typing import Self

from uns.backoff import Backoff
from uns.errors import BrokerError, BrokerUnreachable
from uns.mqtt.codec import (
    Packet,
    PubAck,
    PubComp,
    PubRec,
    PubRel,
    SubAck,
    UnsubAck,
    encode_connect,
    encode_disconnect,
    encode_publish_raw,
    encode_subscribe,
    encode_topic,
    encode_unsubscribe,
)
from uns.mqtt.connection import Connection, open_connection
from uns.mqtt.incoming import Incoming
from uns.mqtt.inflight import Inflight, Outgoing
from uns.mqtt.requests import ConnectionLost, Requests
from uns.mqtt.types import BrokerUrl, Message, OnConnect, Will

__all__ = ["ClientStats", "MqttClient"]

log = logging.getLogger(__name__)

_TOPIC_CACHE_MAX = 65_536
_BACKOFF_FIRST_S = 0.1
_BACKOFF_CAP_S = 10.0
_PUB0 = tuple(tuple(bytes((0x30 | r, n)) for n in range(128)) for r in (0, 1))  # QoS 0 headers, 1-byte lengths


@dataclasses.dataclass(frozen=True, slots=True)
class ClientStats:
    """A snapshot of one client's counters."""

    sent: int
    """PUBLISH packets written (first transmissions; re-sends are not counted)."""
    received: int
    """PUBLISH packets received and queued."""
    reconnects: int
    inflight: int
    """QoS 1/2 publishes waiting for their acknowledgement."""
    queued: int
    """Received messages not yet taken by ``messages()``."""
    read_pauses: int
    """Times reading stopped because the queue was full (back-pressure to the broker)."""
    protocol_errors: int
    dropped: int = 0
    """QoS 0 messages dropped: the queue was full while an answer of ours was awaited (reading cannot pause)."""
    oldest_unacked_s: float = 0.0
    """Age of the oldest QoS 1/2 publish still waiting for its acknowledgement (0 when none)."""


class MqttClient:
    """MQTT 3.1.1 client over asyncio; implements ``uns.mqtt.types.PubSub``.

    ``async with MqttClient(url=..., client_id=...) as client:`` connects (raising
    ``BrokerUnreachable`` or ``BrokerError``), keeps the connection alive, reconnects with
    back-off, restores subscriptions and re-sends unacknowledged QoS 1/2 publishes.

    Args:
        url: the broker; ``mqtts://`` uses TLS.
        client_id: MQTT client id; also names this client's tasks and log lines.
        keepalive_s: PINGREQ after this long idle; no PINGRESP within it means the link is dead (0 = off).
        clean_session: False keeps subscriptions and queued QoS 1/2 messages at the broker while away.
        will: published by the broker if this client vanishes without DISCONNECT; a callable is called
            for every CONNECT packet (first and each reconnect), once the TCP/TLS connection is up and
            right before the CONNECT is written, and its message registered by that CONNECT.
        ssl_context: TLS settings (default: the system trust store when the url is ``mqtts://``).
        max_inflight: QoS 1/2 publishes awaiting acknowledgement at once; more wait for a free slot.
        max_queued: received messages held for ``messages()``; when full the socket is not read
            (TCP back-pressure reaches the broker) unless an answer of ours is awaited: then reading
            goes on, QoS 1/2 acknowledgements wait until the consumer takes the message and QoS 0
            messages past the bound are dropped and counted (``stats.dropped``), so an awaited
            PUBACK is never stuck behind a full queue. Also bounds QoS 0 publishes held while offline.
        manual_ack: acknowledge received QoS 1/2 messages only when the consumer calls ``ack``.
        reconnect: reconnect after a lost connection instead of failing.
        on_connect: awaited after the first connect and after every reconnect.
        birth: made on every reconnect and written first on the new connection, once its subscriptions
            are restored and before anything re-sent or held while offline: a Sparkplug host's STATE
            birth must be the first message of each MQTT session it establishes
            (tck-id-operational-behavior-primary-application-state-with-multiple-servers-state). QoS 0
            or 1 (2 is sent as 1); never re-sent, as the next connection makes its own. Not made on the
            first connect, where the owner subscribes and then publishes it. It replaces the QoS 1
            publishes to its topic left unacknowledged by the last connection: they are not re-sent
            after it (an older STATE would follow the new one) and their ``publish`` returns. If it
            raises, the new connection is dropped and the client fails (its waiters get ``BrokerError``).
        connect_timeout_s: deadline for TCP + CONNACK.
    """

    def __init__(
        self,
        *,
        url: BrokerUrl,
        client_id: str,
        keepalive_s: float = 30.0,
        clean_session: bool = True,
        will: Will | None = None,
        ssl_context: ssl.SSLContext | None = None,
        max_inflight: int = 1000,
        max_queued: int = 100_000,
        manual_ack: bool = False,
        reconnect: bool = True,
        on_connect: OnConnect | None = None,
        connect_timeout_s: float = 10.0,
        birth: Callable[[], Message] | None = None,
    ) -> None:
        self._endpoint = url.redacted()
        if url.scheme not in ("mqtt", "mqtts"):
            raise BrokerError(self.endpoint, f"scheme {url.scheme}:// is not supported here: use mqtt:// or mqtts://")
        self._url = url
        self._client_id = client_id
        self._keepalive_s = keepalive_s
        self._clean_session = clean_session
        self._ssl = ssl_context if ssl_context is not None or url.scheme != "mqtts" else ssl.create_default_context()
        self._max_queued = max_queued
        self._manual_ack = manual_ack
        self._reconnect = reconnect
        self._on_connect = on_connect
        self._birth = birth
        self._connect_timeout_s = connect_timeout_s
        self._will_factory = will if callable(will) else None
        self._connect_packet = self._encode_connect(will if isinstance(will, Message) else None)
        self._conn: Connection | None = None  # set while connected (after CONNACK)
        self._connected = asyncio.Event()
        self._lost: asyncio.Future[str] | None = None  # resolved with the reason when the current connection ends
        self._failure: BrokerError | None = BrokerError(
            self.endpoint, "not connected: use `async with MqttClient(...)`"
        )
        self._closing = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._topics: dict[str, bytes] = {}
        # outgoing QoS 1/2
        self._inflight = Inflight(max_inflight=max_inflight)
        self._offline: list[bytes] = []
        self._offline_count = 0
        self._incoming = Incoming(max_queued=max_queued, manual_ack=manual_ack, write=self._write_control)
        self._requests = Requests(inflight=self._inflight, resume=self._incoming.resume, connected=self._wait_connected)
        self._control = self._requests.pending  # the ids publishes must not take, read per QoS 1/2 publish
        self._subscriptions: dict[str, int] = {}
        # counters
        self._sent = 0
        self._reconnects = 0
        self._protocol_errors = 0

    # -- PubSub --------------------------------------------------------------------------------

    @property
    def client_id(self) -> str:
        """The MQTT client id."""
        return self._client_id

    @property
    def endpoint(self) -> str:
        """The broker url without its password, for logs and errors."""
        return self._endpoint

    @property
    def connected(self) -> bool:
        """True while a connection is up and accepted."""
        return self._conn is not None

    async def disconnected(self) -> str:
        """Wait until the connection in use now is lost or the client is closed; returns why.

        Returns at once when not connected. With ``reconnect`` on the client then reconnects by
        itself; with it off the client is finished and its owner opens a new one.
        """
        lost = self._lost
        if lost is None or self._conn is None:
            return str(self._failure.reason) if self._failure is not None else "not connected"
        return await asyncio.shield(lost)

    @property
    def stats(self) -> ClientStats:
        """Counters so far."""
        incoming = self._incoming
        return ClientStats(
            sent=self._sent,
            received=incoming.received,
            reconnects=self._reconnects,
            inflight=len(self._inflight),
            queued=len(incoming.queue),
            read_pauses=incoming.read_pauses,
            protocol_errors=self._protocol_errors,
            dropped=incoming.dropped,
            oldest_unacked_s=self._inflight.oldest_age(time.monotonic()),
        )

    async def publish(self, topic: str, payload: bytes, *, qos: int = 0, retain: bool = False) -> None:
        """Publish one message: QoS 0 returns once written, QoS 1/2 once acknowledged (across reconnects)."""
        tf = self._topics.get(topic) or self._topic_field(topic)
        if qos == 0:
            conn = self._conn
            if conn is None:
                await self._send_offline(encode_publish_raw(tf, payload, 0, retain), 1)
                return
            conn.write(encode_publish_raw(tf, payload, 0, retain))
            self._sent += 1
            if conn.write_paused:
                await conn.drain()
            return
        entry = await self._inflight.add(tf, payload, qos, retain, self._control)
        await self._flush([entry.packet], [entry], 0)
        await entry.future

    async def publish_many(self, messages: Sequence[Message], *, wait: bool = True) -> None:
        """Encode every message into one buffer and write it at once; QoS 1/2 ones are awaited together.

        With ``wait=False`` QoS 1/2 messages are left in flight: this returns once each is written
        (or held for the reconnect), waiting only for a free slot of the ``max_inflight`` window.
        They are still re-sent after a reconnect until acknowledged, in their order.
        """
        parts: list[bytes] = []
        entries: list[Outgoing] = []
        waits: list[asyncio.Future[None]] = []
        n0 = 0
        topics = self._topics
        small = _PUB0
        i = 0
        try:
            for i, m in enumerate(messages):  # noqa: B007  (i names a bad message below)
                tf = topics.get(m.topic) or self._topic_field(m.topic)
                if m.qos == 0:
                    n = len(tf) + len(m.payload)
                    if n < 128:
                        parts += (small[m.retain][n], tf, m.payload)
                    else:
                        parts.append(encode_publish_raw(tf, m.payload, 0, m.retain))
                    n0 += 1
                    continue
                if self._inflight.full(m.qos):  # window full: send what we have, then wait for a slot
                    await self._flush(parts, entries, n0)
                    parts, entries, n0 = [], [], 0
                entry = await self._inflight.add(tf, m.payload, m.qos, m.retain, self._control)
                parts.append(entry.packet)
                entries.append(entry)
                if wait:
                    waits.append(entry.future)
        except ValueError as exc:
            await self._flush(parts, entries, n0)  # the good messages before the bad one still go out
            raise ValueError(f"messages[{i}]: {exc}") from exc
        await self._flush(parts, entries, n0)
        for fut in waits:
            await fut

    async def subscribe(self, filters: Sequence[str], *, qos: int = 1) -> None:
        """Subscribe and wait for SUBACK; raises ``BrokerError`` naming every refused filter."""
        if not filters or qos not in (0, 1, 2):
            raise ValueError(f"subscribe needs filters and qos 0, 1 or 2 (got {list(filters)!r}, qos {qos})")
        for f in filters:
            self._subscriptions[f] = qos  # remembered first: a reconnect meanwhile restores it
        pairs = [(f, qos) for f in filters]
        ack = await self._requests.request(lambda pid: encode_subscribe(pid, pairs))
        if not isinstance(ack, SubAck) or len(ack.return_codes) != len(filters):
            raise BrokerError(self.endpoint, f"bad answer to SUBSCRIBE of {len(filters)} filter(s): {ack!r}")
        refused = [f for f, code in zip(filters, ack.return_codes, strict=True) if code == 0x80]
        if refused:
            for f in refused:
                self._subscriptions.pop(f, None)
            names = ", ".join(repr(f) for f in refused)
            raise BrokerError(self.endpoint, f"subscription refused for {names}: check the topic ACL for this user")
        log.debug("mqtt %s subscribed to %s", self._client_id, list(filters))

    async def unsubscribe(self, filters: Sequence[str]) -> None:
        """Unsubscribe and wait for UNSUBACK; the filters are no longer restored after a reconnect."""
        if not filters:
            raise ValueError("unsubscribe needs at least one filter")
        for f in filters:
            self._subscriptions.pop(f, None)
        names = list(filters)
        await self._requests.request(lambda pid: encode_unsubscribe(pid, names))

    async def messages(self) -> AsyncIterator[Message]:
        """Every message delivered to this client's subscriptions, in arrival order (one consumer)."""
        incoming = self._incoming
        queue = incoming.queue
        pop = incoming.pop
        while True:
            while queue:
                msg = pop()
                if msg is not None:
                    yield msg
            if self._failure is not None:
                if self._closing:
                    return
                raise self._failure
            incoming.event.clear()
            await incoming.event.wait()

    def ack(self, message: Message) -> None:
        """Acknowledge a received QoS 1/2 message (only with ``manual_ack=True``; otherwise a no-op).

        A message whose connection is gone is not acknowledged: the broker re-delivers it.
        """
        self._incoming.ack(message)

    # -- lifecycle -----------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        self._failure = None
        self._inflight.failure = None
        self._closing = False
        try:
            await self._connect()
        except BaseException:
            self._failure = BrokerError(self.endpoint, "not connected")
            raise
        self._spawn(self._supervise(), "supervisor")
        if self._on_connect is not None:
            try:
                await self._on_connect()
            except BaseException:
                await self.__aexit__(None, None, None)
                raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._closing = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        caller_cancelled: asyncio.CancelledError | None = None
        for task in tasks:
            try:
                await task
            except asyncio.CancelledError as cancelled:
                # ours, just cancelled; a cancel of the caller itself propagates once the socket is closed
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    caller_cancelled = cancelled
            except Exception:
                log.exception("mqtt %s: task %s failed", self._client_id, task.get_name())
        conn = self._conn
        self._deactivate("client closed")
        try:
            if conn is not None:
                await conn.close(encode_disconnect(), self._connect_timeout_s)
        finally:
            self._fail(BrokerError(self.endpoint, "client closed"))
            log.info("mqtt %s disconnected from %s", self._client_id, self.endpoint)
        if caller_cancelled is not None:
            raise caller_cancelled

    # -- internals: connection ------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[object, object, None], what: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=f"mqtt[{self._client_id}].{what}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _encode_connect(self, will: Message | None) -> bytes:
        url = self._url
        return encode_connect(
            client_id=self._client_id,
            clean_session=self._clean_session,
            keepalive_s=math.ceil(self._keepalive_s),
            will_topic=will.topic if will else None,
            will_payload=will.payload if will else b"",
            will_qos=will.qos if will else 0,
            will_retain=will.retain if will else False,
            username=url.username,
            password=url.password,
        )

    async def _connect(self, *, again: bool = False) -> None:
        """Open, restore subscriptions, re-send unacknowledged publishes, then what waited offline.

        ``again``: a reconnect, whose first publish is the ``birth`` if there is one.
        """
        will = self._will_factory
        conn, connack = await open_connection(
            url=self._url,
            # a will made for this CONNECT, once the connection is up (no CONNECT, no will made)
            connect_packet=self._connect_packet if will is None else lambda: self._encode_connect(will()),
            on_packets=self._handle,
            ssl_context=self._ssl,
            timeout_s=self._connect_timeout_s,
        )
        try:
            if not connack.session_present:
                self._incoming.new_session()
                if self._subscriptions:
                    await self._resubscribe(conn)
            # a birth that cannot be made fails the client (the supervisor), its connection dropped, not left open
            birth = self._birth_packet(self._birth()) if again and self._birth is not None else None
        except BaseException:
            conn.abort("connect abandoned")
            raise
        parts, first = self._inflight.resend()
        self._sent += first
        if birth is not None:
            parts.insert(0, birth)
            self._sent += 1
        parts += self._offline
        self._sent += self._offline_count
        self._offline, self._offline_count = [], 0
        if parts:
            conn.write(b"".join(parts))
        self._conn = conn  # only now: publishes meanwhile waited, so nothing overtakes the re-sends
        self._lost = asyncio.get_running_loop().create_future()
        self._connected.set()
        log.info(
            "mqtt %s connected to %s (session present: %s)", self._client_id, self.endpoint, connack.session_present
        )

    def _birth_packet(self, birth: Message) -> bytes:
        """The birth's PUBLISH; the publishes to its topic still unacknowledged are replaced by it, not re-sent."""
        self._inflight.forget_reserved()
        field = self._topic_field(birth.topic)
        self._inflight.supersede(field)
        if birth.qos == 0:
            return encode_publish_raw(field, birth.payload, 0, birth.retain)
        pid = self._inflight.reserve_pid(self._control)
        return encode_publish_raw(field, birth.payload, 1, birth.retain, False, pid)

    async def _resubscribe(self, conn: Connection) -> None:
        pairs = list(self._subscriptions.items())
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                ack = await self._requests.ask(conn, lambda pid: encode_subscribe(pid, pairs))
        except (ConnectionLost, TimeoutError) as exc:
            conn.abort("resubscribe failed")
            raise BrokerUnreachable(self.endpoint, f"restoring subscriptions failed: {exc or 'no SUBACK'}") from None
        codes = ack.return_codes if isinstance(ack, SubAck) else ()
        for (f, _), code in zip(pairs, codes, strict=False):
            if code == 0x80:
                log.warning("mqtt %s: broker %s refused filter %r on resubscribe", self._client_id, self.endpoint, f)
                self._subscriptions.pop(f, None)

    def _deactivate(self, reason: str) -> None:
        """Forget the current connection: publishes now wait or are held until the next one."""
        self._conn = None
        lost = self._lost
        if lost is not None and not lost.done():
            lost.set_result(reason)
        self._connected.clear()
        self._incoming.forget_lost()

    def _fail(self, error: BrokerError) -> None:
        """No more connections: wake every waiter with ``error``."""
        self._failure = error
        self._deactivate(error.reason)
        self._connected.set()
        self._incoming.event.set()
        self._inflight.fail(error)

    async def _supervise(self) -> None:
        """Keep-alive while connected; on loss, back off and reconnect (or fail if reconnect is off)."""
        try:
            while True:
                conn = self._conn
                if conn is None:  # pragma: no cover  (the supervisor runs only once connected)
                    raise RuntimeError("supervisor without a connection")
                reason = await conn.keepalive(self._keepalive_s)
                self._protocol_errors += conn.protocol_error is not None
                self._deactivate(reason)
                log.warning("mqtt %s: connection to %s lost: %s", self._client_id, self.endpoint, reason)
                if not self._reconnect:
                    self._fail(BrokerError(self.endpoint, f"connection lost ({reason}) and reconnect is off"))
                    return
                await self._reconnect_loop()
        except Exception as exc:
            log.exception("mqtt %s: supervisor failed", self._client_id)
            self._fail(BrokerError(self.endpoint, f"client failed: {exc}"))
            raise

    async def _reconnect_loop(self) -> None:
        backoff = Backoff(min_s=_BACKOFF_FIRST_S, max_s=_BACKOFF_CAP_S)
        while True:
            await asyncio.sleep(backoff.failed())
            try:
                await self._connect(again=True)
            except BrokerError as exc:
                log.warning("mqtt %s: reconnect attempt %d failed: %s", self._client_id, backoff.failures, exc)
                continue
            self._reconnects += 1
            log.info("mqtt %s reconnected to %s after %d attempt(s)", self._client_id, self.endpoint, backoff.failures)
            if self._on_connect is not None:
                self._spawn(self._call_on_connect(self._on_connect), "on_connect")
            return

    async def _call_on_connect(self, on_connect: OnConnect) -> None:
        # its own task: on_connect may publish at QoS 1, which needs the supervisor free to reconnect
        try:
            await on_connect()
        except Exception:
            log.exception("mqtt %s: on_connect failed", self._client_id)

    # -- internals: sending ----------------------------------------------------------------------

    def _topic_field(self, topic: str) -> bytes:
        field = encode_topic(topic)
        if len(self._topics) >= _TOPIC_CACHE_MAX:
            self._topics.clear()
        self._topics[topic] = field
        return field

    def _write_control(self, data: bytes) -> None:
        if self._conn is not None:
            self._conn.write(data)

    async def _flush(self, parts: list[bytes], entries: list[Outgoing], n0: int) -> None:
        """Write ``parts`` now, or hold them while offline (QoS 1/2 entries are sent on reconnect)."""
        if not parts:
            return
        conn = self._conn
        # QoS 1/2 packets wait for the reconnect while offline, and one may already have re-sent them
        skip = {id(e.packet) for e in entries if conn is None or e.sent}
        if skip:
            parts = [p for p in parts if id(p) not in skip]
        if conn is None:
            if parts:
                await self._send_offline(b"".join(parts), n0)
            return
        conn.write(b"".join(parts))
        if entries:
            self._incoming.resume()  # their acknowledgements must be read, whatever the queue holds
        for entry in entries:
            self._sent += not entry.sent
            entry.sent = True
        self._sent += n0
        if conn.write_paused:
            await conn.drain()

    async def _send_offline(self, data: bytes, count: int) -> None:
        """QoS 0 while disconnected: hold up to ``max_queued`` messages, then wait for the connection."""
        while True:
            if self._failure is not None:
                raise self._failure
            conn = self._conn
            if conn is not None:
                conn.write(data)
                self._sent += count
                return
            if self._offline_count == 0 or self._offline_count + count <= self._max_queued:
                self._offline.append(data)
                self._offline_count += count
                return
            await self._connected.wait()

    async def _wait_connected(self) -> Connection:
        while self._conn is None:
            if self._failure is not None:
                raise self._failure
            await self._connected.wait()
        return self._conn

    # -- internals: receiving --------------------------------------------------------------------

    def _handle(self, packets: list[Packet], conn: Connection) -> None:
        """Queue publishes (``Incoming``), settle acknowledgements and answers."""
        self._incoming.handle(packets, conn, self._handle_control, self._awaiting)

    def _awaiting(self) -> bool:
        """True while an answer of ours is outstanding: reading must go on to get it."""
        return bool(len(self._inflight) or self._control)

    def _handle_control(self, p: Packet, out: list[bytes]) -> None:
        if isinstance(p, PubAck | PubComp):
            if not self._inflight.complete(p.packet_id, 1 if type(p) is PubAck else 2):
                log.debug("mqtt %s: ignoring %s for an unknown packet id", self._client_id, p)
        elif isinstance(p, PubRec):
            self._inflight.received(p.packet_id)
            out.append(bytes((0x62, 2, p.packet_id >> 8, p.packet_id & 0xFF)))
        elif isinstance(p, PubRel):
            self._incoming.in_qos2.pop(p.packet_id, None)
            out.append(bytes((0x70, 2, p.packet_id >> 8, p.packet_id & 0xFF)))
        elif isinstance(p, SubAck | UnsubAck):
            self._requests.answer(p)
