"""The amqtt Broker subclass: the one place that touches amqtt internals (hot paths, limits, ACL, local clients)."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from amqtt.adapters import ReaderAdapter, WriterAdapter
from amqtt.broker import RetainedApplicationMessage
from amqtt.contexts import Action, BrokerConfig, ListenerConfig, ListenerType
from amqtt.mqtt.constants import QOS_1, QOS_2
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.session import OutgoingApplicationMessage, Session

from model.broker_config import BrokerFileConfig, Listener
from uns.broker.acl import AclGuard, AclPolicy, AclTopicPlugin
from uns.broker.auth import Authenticator, UnsAuthPlugin
from uns.broker.framing import GuardedReader, Oversize
from uns.broker.local import LocalClient
from uns.broker.matcher import SubscriptionIndex, topic_error, topic_matches
from uns.broker.persistence import BrokerStore, PersistentBroker
from uns.broker.sessions import SessionHandler, SessionManager
from uns.broker.stats import Counters, RateLimitedLog
from uns.errors import BrokerError
from uns.mqtt.types import Message

__all__ = ["LISTENERS", "UnsBroker"]

log = logging.getLogger(__name__)

LISTENERS = {"default": "tcp", "ws": "ws", "tls": "tls"}
"""amqtt listener name -> broker.yaml listener; amqtt requires one named "default"."""

_DRAIN_BATCH = 256  # PUBLISHes handled per wake-up of a client's loop; bounded for fairness
_HIGH_WATER = 1000  # queued PUBLISHes of one connection before we stop reading its socket
_LOW_WATER = 100
_CONNECT_TIMEOUT_S = 10.0  # a connection must send its CONNECT within this
_BROADCAST_HIGH = 20_000  # queued network broadcasts at which in-process publishers wait
_BROADCAST_LOW = 5_000
_CACHE_LIMIT = 100_000
_BROADCAST = dict[str, Any]  # amqtt's broadcast queue item: {"session", "topic", "data", "qos"?}


def _listener_config(kind: str, listener: Listener, max_connections: int) -> ListenerConfig:
    host = f"[{listener.bind}]" if ":" in listener.bind else listener.bind
    bind = f"{host}:{listener.port}"
    if kind == "ws":
        return ListenerConfig(type=ListenerType.WS, bind=bind, max_connections=max_connections)
    if kind == "tls":
        tls = listener
        return ListenerConfig(
            type=ListenerType.TCP,
            bind=bind,
            max_connections=max_connections,
            ssl=True,
            certfile=getattr(tls, "certfile", None),
            keyfile=getattr(tls, "keyfile", None),
            cafile=getattr(tls, "cafile", None),
        )
    return ListenerConfig(type=ListenerType.TCP, bind=bind, max_connections=max_connections)


def _amqtt_config(settings: BrokerFileConfig, authenticator: Authenticator, guard: AclGuard) -> BrokerConfig:
    """An explicit amqtt config: our listeners and our two plugins only (no $SYS, no packet logging)."""
    limit = settings.limits.max_connections
    listeners = {"default": _listener_config("tcp", settings.listeners.tcp, limit)}
    if settings.listeners.ws is not None:
        listeners["ws"] = _listener_config("ws", settings.listeners.ws, limit)
    if settings.listeners.tls is not None:
        listeners["tls"] = _listener_config("tls", settings.listeners.tls, limit)
    plugins = {
        f"{UnsAuthPlugin.__module__}.{UnsAuthPlugin.__qualname__}": {"authenticator": authenticator},
        f"{AclTopicPlugin.__module__}.{AclTopicPlugin.__qualname__}": {"guard": guard},
    }
    return BrokerConfig(
        listeners=listeners,
        plugins=plugins,
        timeout_disconnect_delay=0,
        session_expiry_interval=settings.limits.session_expiry_s,  # amqtt's monitor expires them
    )


class UnsBroker(PersistentBroker):
    """amqtt's Broker with our auth/ACL, payload limit, fast routing and in-process clients.

    Overrides (each checked by tests/uns/broker/test_amqtt_internals.py against the pinned amqtt):

    - ``_client_connected``, ``_handle_client_session``: wrap the reader (early oversize rejection,
      back-pressure, CONNECT deadline), swap in :class:`SessionHandler`, take over an open session;
    - ``_initialize_client_session``, ``_delete_session``, ``_handle_disconnect``,
      ``_publish_session_retained_messages``: Session Present, clean sessions, ordered queue delivery
      (see :mod:`uns.broker.sessions`);
    - ``start``, ``_start_listeners``: load retained messages and persistent sessions, flush behind
      (:mod:`uns.broker.persistence`);
    - ``stream_connected``, ``shutdown``: close every socket amqtt leaves open (and flush state to disk);
    - ``_authenticate``: count logins;
    - ``_client_message_loop``: no PUBLISH lost at DISCONNECT;
    - ``_handle_message_delivery``: limits, direct ACL, local delivery, no plugin events;
    - ``_broadcast_message``, ``_broadcast_loop``, ``_run_broadcast``: route through a per-topic
      match cache, no task per message, deliver at QoS = min(message, subscription);
    - ``add_subscription``, ``_del_subscription``, ``_del_all_subscriptions``: invalidate that cache;
    - ``_topic_filtering``: the ACL without a task per check;
    - ``_handle_subscription``, ``_publish_retained_messages_for_subscription``: retained messages
      with RECEIVE checks, sent on SUBSCRIBE only (never replayed on reconnect).
    """

    def __init__(self, *, settings: BrokerFileConfig, data_dir: Path | None = None) -> None:
        self.counters = Counters()
        self.guard = AclGuard(policy=AclPolicy(config=settings), counters=self.counters)
        self._authenticator = Authenticator(config=settings, counters=self.counters)
        super().__init__(_amqtt_config(settings, self._authenticator, self.guard))
        self.settings = settings
        self.local_index: SubscriptionIndex[LocalClient] = SubscriptionIndex()
        self._max_payload = settings.limits.max_payload_bytes
        self._generation = 0
        self._net_cache: dict[str, tuple[str, ...]] = {}
        self._net_cache_generation = -1
        self._warn = RateLimitedLog(log)
        self._writers: set[asyncio.StreamWriter] = set()
        self._broadcast_room = asyncio.Event()
        self._broadcast_room.set()
        self.session_manager = SessionManager(max_queued=settings.limits.max_queued_messages)
        persist = settings.persistence
        self.store = BrokerStore(data_dir=data_dir) if data_dir is not None and persist.enabled else None
        self._flush_interval_s = persist.flush_interval_s
        self._retained_dirty: set[str] = set()
        self._flusher: asyncio.Task[None] | None = None
        self.gate = asyncio.Event()
        """Network connections wait here before their CONNECT is read; set once in-process parts are subscribed."""
        self.gate.set()

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

    # --- connection setup ---------------------------------------------------------------------

    async def _client_connected(self, listener_name: str, reader: ReaderAdapter, writer: WriterAdapter) -> None:
        await self.gate.wait()
        guarded = GuardedReader(
            reader,
            max_payload_bytes=self._max_payload,
            on_oversize=self._on_oversize,
            connect_timeout_s=_CONNECT_TIMEOUT_S,
        )
        await super()._client_connected(listener_name, guarded, writer)

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

    async def shutdown(self) -> None:
        """Write state to disk, stop amqtt, then close the connections it does not know (before CONNECT)."""
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
            reader.high_water = _HIGH_WATER
        await self._take_over(client_session)
        if type(handler) is BrokerProtocolHandler:
            handler.__class__ = SessionHandler  # amqtt builds the handler itself: swap in our reader and flows
            handler.sessions = self.session_manager
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
        """Handle one PUBLISH a network client sent: checks, retained store, local and network routing."""
        if app_message is None:
            return
        reader = handler.reader
        if isinstance(reader, GuardedReader) and (app_message.qos or 0) < QOS_2:
            reader.handled += 1
            if not reader.gate.is_set() and reader.backlog <= _LOW_WATER:
                reader.gate.set()  # the backlog drained: read the client's socket again
        topic: str = app_message.topic
        client_id = client_session.client_id
        problem = topic_error(topic) or ("topic starts with $" if topic.startswith("$") else None)
        if problem is not None:
            self._warn.warning(
                f"topic/{client_id}", "client %s: bad PUBLISH (%s): disconnecting it", client_id, problem
            )
            await handler.handle_connection_closed()
            return
        data = bytes(app_message.data)
        if len(data) > self._max_payload:  # the reader guard normally stops these before they are read
            self._on_oversize_message(client_id, topic, len(data))
            await handler.handle_connection_closed()
            return
        if not self.guard.allowed(client_id=client_id, user=client_session.username, action="publish", topic=topic):
            return
        self.counters.messages_in += 1
        qos = app_message.qos or 0
        packet = app_message.publish_packet
        if packet is not None and packet.retain_flag:
            self._store_retained(client_session, topic, data, qos)
        await self._route(client_session, topic, data, qos)

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
            self._retained_messages[topic] = RetainedApplicationMessage(source, topic, data, qos)
        else:
            self._retained_messages.pop(topic, None)  # [MQTT-3.3.1-10]: empty payload clears

    async def _route(self, source: Session | None, topic: str, data: bytes, qos: int | None) -> None:
        """Deliver to local subscribers directly, and queue a network broadcast only if someone matches."""
        matches = self.local_index.match(topic)
        if matches:
            level = qos or 0
            for client, sub_qos in matches:
                message = Message(topic=topic, payload=data, qos=min(level, sub_qos))
                if not client.offer(message):
                    await client.put(message)  # back-pressure: wait for the reader
        if self._network_filters(topic):
            item: _BROADCAST = {"session": source, "topic": topic, "data": data}
            if qos is not None:
                item["qos"] = qos
            self._broadcast_queue.put_nowait(item)

    def _network_filters(self, topic: str) -> tuple[str, ...]:
        """Network subscription filters matching ``topic``, cached until subscriptions change."""
        if self._net_cache_generation != self._generation or len(self._net_cache) > _CACHE_LIMIT:
            self._net_cache.clear()
            self._net_cache_generation = self._generation
        found = self._net_cache.get(topic)
        if found is None:
            found = tuple(f for f, subs in self._subscriptions.items() if subs and topic_matches(topic, f))
            self._net_cache[topic] = found
        return found

    async def _broadcast_message(
        self,
        session: Session | None,
        topic: str | None,
        data: bytes | bytearray | None,
        force_qos: int | None = None,
    ) -> None:
        # wills and BrokerContext.broadcast_message come here: route them to local clients too
        if topic is None or data is None:
            return
        await self._route(session, topic, bytes(data), force_qos)

    async def _broadcast_loop(self) -> None:
        # amqtt spawns a task and an asyncio.wait per message here; this takes queued items in a row
        running = self._tasks_queue
        queue = self._broadcast_queue
        stop = self._broadcast_shutdown_waiter
        try:
            while True:
                while running and running[0].done():
                    self._reap(running.popleft())
                if queue.empty():
                    self._broadcast_room.set()
                    getter = asyncio.ensure_future(queue.get())
                    await asyncio.wait([getter, stop], return_when=asyncio.FIRST_COMPLETED)
                    if stop.done():
                        getter.cancel()
                        await asyncio.gather(getter, return_exceptions=True)
                        return
                    item = getter.result()
                else:
                    item = queue.get_nowait()
                    if not self._broadcast_room.is_set() and queue.qsize() <= _BROADCAST_LOW:
                        self._broadcast_room.set()
                await self._broadcast_one(item, running)
        finally:
            self._broadcast_room.set()  # never leave an in-process publisher waiting on a stopped loop
            for task in running:
                task.cancel()
            if running:
                await asyncio.wait(list(running), timeout=1.0)
            running.clear()

    @staticmethod
    def _reap(task: asyncio.Task[OutgoingApplicationMessage]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:  # a subscriber that went away or did not ack in time
            log.debug("delivery failed: %r", exc)

    async def _run_broadcast(self, running_tasks: deque[asyncio.Task[OutgoingApplicationMessage]]) -> None:
        await self._broadcast_one(await self._broadcast_queue.get(), running_tasks)

    async def _broadcast_one(self, broadcast: _BROADCAST, running_tasks: deque[asyncio.Task[Any]]) -> None:
        topic: str = broadcast["topic"]
        data: bytes = broadcast["data"]
        message_qos: int | None = broadcast.get("qos")
        for topic_filter in self._network_filters(topic):
            for target, sub_qos in list(self._subscriptions.get(topic_filter, ())):
                qos = sub_qos if message_qos is None else min(message_qos, sub_qos)
                if not self._allowed(target, topic, "receive"):
                    continue
                if target.transitions.state != "connected":
                    # [MQTT-3.1.2-4]: queue QoS 1/2 for offline persistent sessions, anonymous or not;
                    # QoS 0 is not queued for offline clients (MQTT lets a server drop it)
                    if not target.clean_session and qos in (QOS_1, QOS_2):
                        self.session_manager.enqueue(target, topic, data, qos)
                    continue
                handler = self._get_handler(target)
                if handler is None:
                    continue
                if self.session_manager.must_queue(target, qos):  # connecting, or older messages still wait
                    self.session_manager.enqueue(target, topic, data, qos)
                    continue
                if qos and not target.clean_session:
                    self.session_manager.mark(target)
                running_tasks.append(asyncio.ensure_future(handler.mqtt_publish(topic, data, qos, retain=False)))

    # --- subscriptions and ACL ------------------------------------------------------------------

    async def add_subscription(self, subscription: tuple[str, int], session: Session) -> int:
        """Subscribe a network session (amqtt's checks and ACL), then invalidate the match cache."""
        granted = int(await super().add_subscription(subscription, session))
        self._generation += 1
        if granted != 0x80:  # SUBACK failure code
            # MQTT-3.8.4-3: a repeated SUBSCRIBE replaces the existing subscription's QoS (amqtt keeps the old one)
            subscribers = self._subscriptions.get(subscription[0], [])
            for index, (subscriber, qos) in enumerate(subscribers):
                if subscriber.client_id == session.client_id and qos != granted:
                    subscribers[index] = (subscriber, granted)
            self.session_manager.state(session).subscriptions[subscription[0]] = granted
            self.session_manager.mark(session)
        return granted

    def _del_subscription(self, a_filter: str, session: Session) -> int:
        deleted = int(super()._del_subscription(a_filter, session))
        self._generation += 1
        if deleted:
            self.session_manager.state(session).subscriptions.pop(a_filter, None)
            self.session_manager.mark(session)
        return deleted

    async def _del_all_subscriptions(self, session: Session) -> None:
        await super()._del_all_subscriptions(session)
        self._generation += 1

    def _allowed(self, session: Session, topic: str, action: str) -> bool:
        return self.guard.allowed(client_id=str(session.client_id), user=session.username, action=action, topic=topic)

    async def _topic_filtering(self, session: Session, topic: str, action: Action) -> bool:
        return self._allowed(session, topic, str(action))

    async def _handle_subscription(
        self, client_session: Session, handler: BrokerProtocolHandler, subscribe_waiter: asyncio.Future[Any]
    ) -> None:
        subscriptions = subscribe_waiter.result()
        codes = [await self.add_subscription(item, client_session) for item in subscriptions.topics]
        await handler.mqtt_acknowledge_subscription(subscriptions.packet_id, codes)
        for (topic_filter, _qos), granted in zip(subscriptions.topics, codes, strict=True):
            if granted != 0x80:  # SUBACK failure code
                await self._send_retained(topic_filter, granted, client_session, handler)

    async def _send_retained(
        self, topic_filter: str, qos: int, session: Session, handler: BrokerProtocolHandler
    ) -> None:
        tasks = [
            asyncio.ensure_future(handler.mqtt_publish(r.topic, r.data, min(qos, r.qos or 0), retain=True))
            for r in list(self._retained_messages.values())
            if topic_matches(r.topic, topic_filter) and self._allowed(session, r.topic, "receive")
        ]
        if tasks:
            await asyncio.wait(tasks)

    async def _publish_retained_messages_for_subscription(
        self, subscription: tuple[str, int], session: Session
    ) -> None:
        """Do nothing: amqtt calls this on reconnect for every filter of every client.

        MQTT sends retained messages only on SUBSCRIBE, which :meth:`_handle_subscription` does.
        """

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
            if message.retain:
                self._store_retained(None, message.topic, message.payload, message.qos)
            await self._route(None, message.topic, message.payload, message.qos)
            if self._broadcast_queue.qsize() >= _BROADCAST_HIGH:
                self._broadcast_room.clear()
                await self._broadcast_room.wait()  # back-pressure: network subscribers are behind
        if bad:
            raise BrokerError(f"local:{source}", f"{len(bad)} message(s) not published: {bad[0]}")
