"""The amqtt Broker subclass: the one place that touches amqtt internals (hot paths, limits, ACL, local clients)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import urllib.parse
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

from amqtt.adapters import ReaderAdapter, WriterAdapter
from amqtt.broker import RetainedApplicationMessage
from amqtt.contexts import ListenerConfig
from amqtt.mqtt.constants import QOS_2
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.session import Session
from websockets.asyncio.server import ServerConnection

from model.broker_config import BrokerFileConfig, is_loopback
from uns.broker.accounts import FILE_NAME as ACCOUNTS_FILE
from uns.broker.accounts import POLL_S as ACCOUNTS_POLL_S
from uns.broker.accounts import AccountStore
from uns.broker.acl import AclGuard, AclPolicy
from uns.broker.admission import CONNACK_SERVER_UNAVAILABLE, Handshake, PendingPool, Slots
from uns.broker.amqtt_config import amqtt_config
from uns.broker.auth import Authenticator
from uns.broker.framing import MAX_HEADERS, GuardedReader, Oversize
from uns.broker.handler import FastBrokerHandler
from uns.broker.matcher import topic_error, topic_matches
from uns.broker.packets import PacketGuard
from uns.broker.persistence import BrokerStore
from uns.broker.preface import Verdict, client_id_of, connack
from uns.broker.quiet import quieten_amqtt
from uns.broker.routing import BROADCAST_HIGH, RoutingBroker
from uns.broker.sessions import SessionHandler, SessionManager
from uns.broker.stats import Counters
from uns.errors import BrokerError
from uns.logs import RateLimitedLog
from uns.mqtt.codec import Publish
from uns.mqtt.types import Message

__all__ = ["UnsBroker"]

log = logging.getLogger(__name__)

_DRAIN_BATCH = 256  # PUBLISHes handled per wake-up of a client's loop; bounded for fairness
_HIGH_WATER = 1000  # queued PUBLISHes of one connection before we stop reading its socket
_LOW_WATER = 100


_CROSS_SITE = "cross-site websocket"
_POLICY_VIOLATION = 1008  # RFC 6455 close code


def _foreign_origin(websocket: ServerConnection) -> str | None:
    """The ``Origin`` of a browser page on another machine's site (DNS rebinding included), else None.

    Browsers always send the page's origin on a WebSocket handshake; other clients usually send none.
    """
    request = websocket.request
    if request is None:
        return None
    origin = request.headers.get("Origin")
    if origin is None:
        return None
    host = urllib.parse.urlsplit(origin).hostname  # "null" (sandboxed or file: pages) has none
    return None if host is not None and is_loopback(host) else origin


async def _answer(writer: WriterAdapter, packet: bytes) -> None:
    """Send ``packet`` to a client being refused; one already gone (reset, EPIPE) needs no answer."""
    try:
        writer.write(packet)
        await writer.drain()
    except OSError as exc:
        address, port = writer.get_peer_info() or ("?", 0)
        log.debug("client %s:%s was gone before its answer: %s", address, port, exc)


async def _close(writer: WriterAdapter) -> None:
    """Close a refused client's connection; its socket may already be gone (ENOTCONN at the FIN)."""
    try:
        await writer.close()
    except OSError as exc:
        address, port = writer.get_peer_info() or ("?", 0)
        log.debug("client %s:%s was gone before its close: %s", address, port, exc)


class UnsBroker(RoutingBroker):
    """amqtt's Broker with our auth/ACL, payload limit, fast routing and in-process clients.

    Overrides (each checked by tests/uns/broker/test_amqtt_internals.py against the pinned amqtt):

    - ``_client_connected``, ``_handle_client_session``: check the CONNECT's protocol first (MQTT 3.1
      let in, MQTT 5 refused at once, :mod:`uns.broker.preface`), wrap the reader (early oversize
      rejection, back-pressure, CONNECT deadline), swap in :class:`SessionHandler`, take over an open session;
    - ``_initialize_client_session``, ``_delete_session``, ``_handle_disconnect``,
      ``_publish_session_retained_messages``: Session Present, clean sessions, ordered queue delivery
      (see :mod:`uns.broker.sessions`);
    - ``start``, ``_start_listeners``: load retained messages and persistent sessions, flush behind
      (:mod:`uns.broker.persistence`);
    - ``stream_connected``, ``shutdown``: close every socket amqtt leaves open (and flush state to disk);
    - ``_authenticate``: count logins;
    - ``_client_message_loop``: no PUBLISH lost at DISCONNECT;
    - ``_handle_message_delivery``: limits, direct ACL, local delivery, no plugin events;
    - routing, shared and overlapping subscriptions, retained messages on SUBSCRIBE: see
      :class:`uns.broker.routing.RoutingBroker`.
    """

    def __init__(self, *, settings: BrokerFileConfig, data_dir: Path | None = None) -> None:
        self.counters = Counters()
        self.packets = PacketGuard(counters=self.counters)
        # enrolled edge agents (uns fleet enrol) beside broker.yaml's users, re-read while running
        self.accounts = AccountStore(path=data_dir / ACCOUNTS_FILE) if data_dir is not None else None
        if self.accounts is not None:
            self.accounts.refresh()
        guard = AclGuard(policy=AclPolicy(config=settings, accounts=self.accounts), counters=self.counters)
        self._authenticator = Authenticator(config=settings, counters=self.counters, accounts=self.accounts)
        self._accounts_watch: asyncio.Task[None] | None = None
        super().__init__(amqtt_config(settings, self._authenticator, guard), guard=guard)
        self.settings = settings
        self._max_payload = settings.limits.max_payload_bytes
        self._warn = RateLimitedLog(log)
        self._slots = Slots(limit=settings.limits.max_connections)
        self._pending: dict[str, PendingPool] = {}
        quieten_amqtt()
        self._writers: set[asyncio.StreamWriter] = set()
        self.session_manager = SessionManager(max_queued=settings.limits.max_queued_messages)
        persist = settings.persistence
        self.store = BrokerStore(data_dir=data_dir) if data_dir is not None and persist.enabled else None
        self._flush_interval_s = persist.flush_interval_s
        self._retained_dirty: set[str] = set()
        self._flusher: asyncio.Task[None] | None = None
        self.gate = asyncio.Event()
        """Network connections wait here before their CONNECT is read; set once in-process parts are subscribed."""
        self.gate.set()
        self._anonymous_loopback = settings.allow_anonymous and not settings.anonymous_on_network

    # --- lifecycle helpers --------------------------------------------------------------------

    def bound_port(self, listener_name: str) -> int:
        """The port a started listener really listens on (the chosen one when 0 was asked)."""
        server = self._servers[listener_name].instance
        return int(server.sockets[0].getsockname()[1])

    def started_listeners(self) -> tuple[str, ...]:
        """Names of the listeners that are open (``default`` is the TCP one)."""
        return tuple(self._servers)

    async def close_listeners(self) -> None:
        """Close whatever listeners started (a failed start leaves some open)."""
        for server in list(self._servers.values()):
            await server.close_instance()
        self._servers.clear()
        await self.plugins_manager.close()
        if self.store is not None:
            await asyncio.to_thread(self.store.close)

    def connected_count(self) -> int:
        """Network sessions connected now."""
        return sum(1 for session, _ in self._sessions.values() if session.transitions.state == "connected")

    def pending_count(self) -> int:
        """Network connections that have not sent a whole CONNECT yet."""
        return sum(len(pool) for pool in self._pending.values())

    # --- connection setup ---------------------------------------------------------------------

    async def ws_connected(self, websocket: ServerConnection, listener_name: str) -> None:
        """Refuse a browser page of another site while anonymous access is on (loopback only), then amqtt's.

        Anonymous access on loopback means "anyone on this machine", not "any web page its browser shows":
        without this, a page of any site could publish as the anonymous role (admin in the demo).
        """
        origin = _foreign_origin(websocket) if self._anonymous_loopback else None
        if origin is not None:
            failed = self.counters.handshake_failed
            failed[_CROSS_SITE] = failed.get(_CROSS_SITE, 0) + 1
            address, port = websocket.remote_address[:2]
            self._warn.warning(
                f"handshake/{_CROSS_SITE}/{origin}",
                "refused a WebSocket from %s:%s opened by a page of %r: anonymous access is for this machine only "
                "(broker.yaml anonymous_on_network, or sign in)",
                address,
                port,
                origin,
            )
            await websocket.close(code=_POLICY_VIOLATION, reason="anonymous access: pages of other sites refused")
            return
        await super().ws_connected(websocket, listener_name)

    async def _client_connected(self, listener_name: str, reader: ReaderAdapter, writer: WriterAdapter) -> None:
        await self.gate.wait()
        limits = self.settings.limits
        guarded = GuardedReader(
            reader,
            max_payload_bytes=self._max_payload,
            on_oversize=self._on_oversize,
            connect_timeout_s=limits.connect_timeout_s,
        )
        pool = self._pending.get(listener_name)
        if pool is None:
            pool = PendingPool(size=limits.max_pending_connections, timeout_s=limits.connect_timeout_s)
            self._pending[listener_name] = pool
        handshake = await pool.handshake(guarded.peek, max_size=self._max_payload + MAX_HEADERS)
        if handshake.cause is not None:
            self._handshake_failed(handshake.cause, writer)
            return  # stream_connected closes the socket
        verdict = handshake.verdict
        if verdict is not None and verdict.refuse:
            await self._refuse_protocol(guarded, writer, verdict)
            return
        if verdict is not None and verdict.rewrite is not None:
            guarded.rewrite_start(*verdict.rewrite)  # MQTT 3.1: amqtt reads it as 3.1.1
            guarded.protocol = verdict.protocol
        peer = writer.get_peer_info() or ("?", 0)
        if await self.packets.check_connect(guarded.peek, f"{peer[0]}:{peer[1]}") is not None:
            return  # a malformed CONNECT (MQTT 3.1.1 says close): reported; stream_connected closes the socket
        if not self._slots.take(listener_name):
            await self._refuse_slot(guarded, writer, handshake, listener_name)
            return
        try:
            await super()._client_connected(listener_name, guarded, writer)
        finally:
            self._slots.give(listener_name)

    def _handshake_failed(self, cause: str, writer: WriterAdapter) -> None:
        """Count a connection that ended before a whole CONNECT; a port check is routine, the rest warned once."""
        self.counters.handshake_failed[cause] = self.counters.handshake_failed.get(cause, 0) + 1
        if cause == "dropped (pending pool full)":
            self.counters.pending_dropped += 1
        address, port = writer.get_peer_info() or ("?", 0)
        if cause == "no data":
            log.debug("connection from %s:%s closed without sending anything (a port check?)", address, port)
            return
        self._warn.warning(
            f"handshake/{cause}/{address}",
            "connection from %s:%s closed before a whole CONNECT: %s",
            address,
            port,
            cause,
        )

    async def _refuse_slot(
        self, reader: GuardedReader, writer: WriterAdapter, handshake: Handshake, listener_name: str
    ) -> None:
        """All ``limits.max_connections`` slots are taken: CONNACK 3 (server unavailable), close, warn."""
        self.counters.slots_refused += 1
        client_id: str | None = None
        with contextlib.suppress(TimeoutError, OSError, asyncio.IncompleteReadError):
            async with asyncio.timeout(0.2):  # buffered unless oversize: only to name the client in the log
                packet = await reader.peek(handshake.size)
            verdict = handshake.verdict or Verdict(protocol="3.1.1", header_length=handshake.header_length)
            client_id = client_id_of(packet, verdict)
        address, port = writer.get_peer_info() or ("?", 0)
        self._warn.warning(
            f"slots/{listener_name}",
            "refused client %s from %s:%s with CONNACK 3: listener %s has its limits.max_connections (%d) clients",
            client_id or "<unknown id>",
            address,
            port,
            listener_name,
            self.settings.limits.max_connections,
        )
        await _answer(writer, connack(CONNACK_SERVER_UNAVAILABLE))
        await _close(writer)

    async def _refuse_protocol(self, reader: GuardedReader, writer: WriterAdapter, verdict: Verdict) -> None:
        """Answer a CONNECT we do not speak (CONNACK 1 or 2, or nothing), close, and log it once per client."""
        self.counters.protocol_refused += 1  # first: a client gone before the answer is still counted
        if verdict.code is not None:
            await _answer(writer, connack(verdict.code))
        peer = writer.get_peer_info() or ("?", 0)
        client_id: str | None = None
        try:  # the client id follows; read it (briefly) only to name the client in the log
            async with asyncio.timeout(0.2):
                packet = await reader.peek(verdict.header_length + verdict.remaining)
            client_id = client_id_of(packet, verdict)
        except (TimeoutError, OSError, asyncio.IncompleteReadError):
            pass
        hint = (
            "; the embedded broker speaks MQTT 3.1.1 and 3.1 only: use an external broker for MQTT 5 "
            "(docs/deployment.md)"
            if verdict.protocol == "5"
            else ""
        )
        self._warn.warning(
            f"protocol/{client_id or peer[0]}",
            "refused client %s from %s:%s speaking MQTT %s (%s) with %s%s",
            client_id or ("<empty id>" if client_id == "" else "<unknown id>"),
            peer[0],
            peer[1],
            verdict.protocol,
            verdict.reason,
            f"CONNACK {verdict.code}" if verdict.code is not None else "no CONNACK",
            hint,
        )
        await _close(writer)

    async def stream_connected(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, listener_name: str
    ) -> None:
        """A TCP (or TLS) connection: amqtt's handling, then the socket surely closed.

        amqtt leaves it open when the CONNECT was bad or never came, and its adapter's close()
        gives up for good when the final drain fails (peer reset).
        """
        self._writers.add(writer)
        try:
            await super().stream_connected(reader, writer, listener_name)
        finally:
            self._writers.discard(writer)
            writer.close()

    async def start(self) -> None:
        """Start amqtt (and persistence), then watch the runtime accounts for revocations."""
        await super().start()
        if self.accounts is not None:
            self._accounts_watch = asyncio.create_task(self._watch_accounts(), name="uns.broker.accounts")

    async def _watch_accounts(self) -> None:
        """Drop the open connections of an account revoked while they run (a new CONNECT is refused anyway)."""
        accounts = self.accounts
        assert accounts is not None  # noqa: S101  (start() checked)
        seen = -1
        while True:
            accounts.refresh()
            if accounts.generation != seen:
                seen = accounts.generation
                for session, handler in list(self._sessions.values()):
                    user = session.username
                    if user is None or user in self.settings.users or not accounts.revoked(user):
                        continue
                    if session.transitions.state == "connected" and handler is not None:
                        log.warning("account %s revoked: dropping its connection %s", user, session.client_id)
                        await handler.handle_connection_closed()
            await asyncio.sleep(ACCOUNTS_POLL_S)

    async def shutdown(self) -> None:
        """Write state to disk, stop amqtt, then close the connections it does not know (before CONNECT)."""
        watch, self._accounts_watch = self._accounts_watch, None
        if watch is not None:
            watch.cancel()
            await asyncio.gather(watch, return_exceptions=True)
        await self._stop_persistence()  # first: amqtt's shutdown clears sessions and retained messages
        await super().shutdown()
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    async def _handle_client_session(
        self,
        reader: ReaderAdapter,
        writer: WriterAdapter,
        client_session: Session,
        handler: BrokerProtocolHandler,
        server: Any,
        listener_name: str,
    ) -> None:
        if isinstance(reader, GuardedReader):
            reader.session = client_session
            reader.high_water, reader.low_water = _HIGH_WATER, _LOW_WATER
        await self._take_over(client_session)
        if type(handler) is BrokerProtocolHandler:
            handler.__class__ = SessionHandler  # amqtt builds the handler itself: swap in our reader and flows
            handler.sessions = self.session_manager
            handler.packets = self.packets  # checks each packet before amqtt parses it
        if isinstance(handler, FastBrokerHandler) and isinstance(reader, GuardedReader):
            handler.deliver = functools.partial(self.deliver_now, client_session, handler, reader)
        self.session_manager.state(client_session).ready = False  # new messages queue until the old ones are out
        await super()._handle_client_session(reader, writer, client_session, handler, server, listener_name)

    async def _authenticate(self, session: Session, listener: ListenerConfig) -> bool:
        ok = bool(await super()._authenticate(session, listener))
        if ok:
            self.counters.connections_total += 1
        return ok

    def _on_oversize(self, reader: GuardedReader, oversize: Oversize) -> None:
        self.counters.oversize_rejected += 1
        client_id = reader.session.client_id if reader.session is not None else "<connecting>"
        self._warn.warning(
            f"oversize/{client_id}",
            "dropped a %d-byte %s from client %s on %r (limit %d bytes): disconnecting it",
            oversize.size,
            "PUBLISH payload" if oversize.topic else f"packet (type {oversize.packet_type})",
            client_id,
            oversize.topic,
            self._max_payload,
        )

    # --- the hot path: one PUBLISH from a network client ----------------------------------------

    async def _client_message_loop(self, client_session: Session, handler: BrokerProtocolHandler) -> None:
        # amqtt's loop drops PUBLISHes still queued when DISCONNECT (or a dead socket) is seen, even
        # acknowledged QoS 1 ones; this one handles them first, so a will also comes after them
        disconnect_waiter = asyncio.ensure_future(handler.wait_disconnect())
        subscribe_waiter = asyncio.ensure_future(handler.get_next_pending_subscription())
        unsubscribe_waiter = asyncio.ensure_future(handler.get_next_pending_unsubscription())
        wait_deliver = asyncio.ensure_future(handler.mqtt_deliver_next_message())
        try:
            while True:
                done, _ = await asyncio.wait(
                    [disconnect_waiter, subscribe_waiter, unsubscribe_waiter, wait_deliver],
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if subscribe_waiter in done:
                    await self._handle_subscription(client_session, handler, subscribe_waiter)
                    subscribe_waiter = asyncio.ensure_future(handler.get_next_pending_subscription())
                if unsubscribe_waiter in done:
                    await self._handle_unsubscription(client_session, handler, unsubscribe_waiter)
                    unsubscribe_waiter = asyncio.ensure_future(handler.get_next_pending_unsubscription())
                if wait_deliver in done:
                    await self._deliver(client_session, handler, wait_deliver.result())
                    # drain what already arrived before paying for another future and wait()
                    queue = client_session.delivered_message_queue
                    for _ in range(_DRAIN_BATCH):
                        if queue.empty() or disconnect_waiter.done():
                            break
                        await self._deliver(client_session, handler, queue.get_nowait())
                    wait_deliver = asyncio.ensure_future(handler.mqtt_deliver_next_message())
                if disconnect_waiter in done:
                    if isinstance(handler, FastBrokerHandler):
                        await handler.stop_reading()  # the reader routes inline: nothing of it after the will
                    wait_deliver.cancel()  # a cancelled get takes nothing from the queue
                    await asyncio.gather(wait_deliver, return_exceptions=True)
                    if not wait_deliver.cancelled() and wait_deliver.exception() is None:
                        await self._deliver(client_session, handler, wait_deliver.result())
                    queue = client_session.delivered_message_queue
                    while not queue.empty():
                        await self._deliver(client_session, handler, queue.get_nowait())
                    await self._handle_disconnect(client_session, handler, disconnect_waiter)
                    return
        except asyncio.CancelledError:
            log.debug("message loop of client %s cancelled", client_session.client_id)
        finally:
            waiters = [disconnect_waiter, subscribe_waiter, unsubscribe_waiter, wait_deliver]
            for waiter in waiters:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)

    async def _handle_message_delivery(
        self, client_session: Session, handler: BrokerProtocolHandler, wait_deliver: asyncio.Future[Any]
    ) -> bool:
        await self._deliver(client_session, handler, wait_deliver.result())
        return True

    async def _deliver(self, client_session: Session, handler: BrokerProtocolHandler, app_message: Any) -> None:
        """Handle one PUBLISH a network client sent that was queued: QoS 2, or read while a plugin watches packets."""
        if app_message is None:
            return
        if app_message.__class__ is Publish:  # QoS 0/1 read by our codec, queued (see deliver_now for the rest)
            topic, data, qos, retain = app_message[0], app_message[1], app_message[2], app_message[3]
        else:  # amqtt's IncomingApplicationMessage: QoS 2, or a packet some plugin watches
            topic, data, qos, retain = (
                app_message.topic,
                bytes(app_message.data),
                app_message.qos or 0,
                app_message.retain,
            )
        reader = handler.reader
        if qos < QOS_2 and isinstance(reader, GuardedReader):
            reader.count_handled()
        pending = self._accept(client_session, handler, topic, data, qos, retain)
        if pending is not None:
            await pending

    def deliver_now(
        self, client_session: Session, handler: BrokerProtocolHandler, reader: GuardedReader, publish: Publish
    ) -> Coroutine[Any, Any, None] | None:
        """Handle a QoS 0/1 PUBLISH as the reader reads it (``FastBrokerHandler.deliver``); what is left to await.

        The reader awaits that before it reads the next packet, so a client's messages keep their order
        and a full in-process subscriber holds back its socket; without the session's queue, the client
        loop's wake-up and two coroutines a message that the queued path (:meth:`_deliver`) costs.
        """
        reader.count_handled()
        return self._accept(client_session, handler, publish[0], publish[1], publish[2], publish[3])

    def _accept(
        self, client_session: Session, handler: BrokerProtocolHandler, topic: str, data: bytes, qos: int, retain: bool
    ) -> Coroutine[Any, Any, None] | None:
        """Checks, retained store, local and network routing of a client's PUBLISH, inline; what is left to await."""
        client_id = client_session.client_id
        problem = topic_error(topic)  # a $-topic is the ACL's to refuse (dropped, like Mosquitto), not a bad packet
        if problem is not None:
            self._warn.warning(
                f"topic/{client_id}", "client %s: bad PUBLISH (%s): disconnecting it", client_id, problem
            )
            return handler.handle_connection_closed()  # type: ignore[no-any-return]
        if len(data) > self._max_payload:  # the reader guard normally stops these before they are read
            self._on_oversize_message(client_id, topic, len(data))
            return handler.handle_connection_closed()  # type: ignore[no-any-return]
        if not self.guard.allowed(client_id=client_id, user=client_session.username, action="publish", topic=topic):
            return None
        self.counters.messages_in += 1
        if retain:
            self._store_retained(client_session, topic, data, qos)
        # _route's steps inline: a coroutine only when an in-process subscriber's queue is full
        waiting = self._offer_local(topic, data, qos, None)
        if waiting is not None:
            return self._route_after(waiting, client_session, topic, data, qos)
        self._queue_broadcast(client_session, topic, data, qos)
        return None

    def _on_oversize_message(self, client_id: str, topic: str, size: int) -> None:
        self.counters.oversize_rejected += 1
        self._warn.warning(
            f"oversize/{client_id}",
            "dropped a %d-byte PUBLISH payload from client %s on %r (limit %d bytes): disconnecting it",
            size,
            client_id,
            topic,
            self._max_payload,
        )

    def _store_retained(self, source: Session | None, topic: str, data: bytes, qos: int) -> None:
        if self.store is not None:
            self._retained_dirty.add(topic)  # written behind by _flush_loop
        if data:
            held = self._retained_messages.get(topic)
            if held is None:
                self._retained_messages[topic] = RetainedApplicationMessage(source, topic, data, qos)
            else:  # replaced in place: one object per retained topic, not one per message (~0.5 us each)
                held.source_session, held.data, held.qos = source, data, qos
        else:
            self._retained_messages.pop(topic, None)  # [MQTT-3.3.1-10]: empty payload clears

    # --- in-process clients (LocalBackend) ------------------------------------------------------

    def retained_matching(self, topic_filter: str) -> list[Message]:
        """Retained messages matching ``topic_filter``, as Messages with ``retain=True``."""
        return [
            Message(topic=r.topic, payload=bytes(r.data), qos=r.qos or 0, retain=True)
            for r in list(self._retained_messages.values())
            if topic_matches(r.topic, topic_filter)
        ]

    async def publish_local(self, source: str, messages: Sequence[Message]) -> None:
        """Publish from an in-process client (admin role): retained store, local clients, network."""
        bad: list[str] = []
        for message in messages:
            problem = topic_error(message.topic)
            if problem is None and message.qos not in (0, 1, 2):
                problem = f"qos must be 0, 1 or 2 (got {message.qos})"
            if problem is not None:
                bad.append(problem)
                continue
            self.counters.messages_local += 1
            payload = message.payload
            if message.retain:
                # kept until replaced, here and in the subscribers' caches: an exact-size copy, as orjson's
                # bytes keep its ~4 KiB working buffer (bench/retained_memory.py)
                payload = bytes(memoryview(payload))
                self._store_retained(None, message.topic, payload, message.qos)
            # _route's steps inline: no coroutine per message unless a local client's queue is full
            waiting = self._offer_local(message.topic, payload, message.qos, message.decoded)
            if waiting is not None:
                await self._wait_local(waiting)
            queued = self._queue_broadcast(None, message.topic, payload, message.qos)
            if queued and self._broadcast_queue.qsize() >= BROADCAST_HIGH:
                self._broadcast_room.clear()
                await self._broadcast_room.wait()  # back-pressure: network subscribers are behind
        if bad:
            raise BrokerError(f"local:{source}", f"{len(bad)} message(s) not published: {bad[0]}")
