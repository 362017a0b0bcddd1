"""Who gets a PUBLISH: plain and shared subscriptions, the per-topic match cache, and subscription changes.

amqtt 0.12.1 spawns a task per message in its broadcast loop, sends one copy per matching
subscription, and treats ``$share/<group>/<filter>`` as a plain (never matching) filter. Here:

- a client whose subscriptions overlap gets ONE copy of a message, at the highest QoS granted among
  its matching subscriptions (MQTT-3.3.5-1), as Mosquitto 2.0.11 sends one copy;
- a shared subscription ``$share/<group>/<filter>`` (:mod:`uns.broker.shared`) gets each matching
  message once, at ONE member: round-robin over the connected members allowed to receive the
  topic; with none connected, the next offline persistent member queues it (QoS 1/2). A client
  gets one copy of a message however many of its subscriptions match, plain or a group that chose
  it (as from Mosquitto 2.0.11), at the highest QoS among them;
- QoS 1/2 messages in flight to (or queued for) a member that disconnects are handed to another
  connected member of the group; with none, a persistent member keeps them, a clean one loses them;
- retained messages are not sent on a shared subscribe; the ACL applies to the inner filter and
  topic; UNSUBSCRIBE takes the same ``$share/...`` string; persistent sessions keep their shared
  subscriptions across restarts (they are stored as that string).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass
from typing import Any

from amqtt.contexts import Action, BrokerConfig
from amqtt.mqtt.constants import QOS_1, QOS_2
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.session import OutgoingApplicationMessage, Session

from model.envelope import EnvelopeError, ReadingFields, read_fields, read_object
from uns.broker.acl import AclGuard
from uns.broker.local import LocalClient
from uns.broker.matcher import SubscriptionIndex, topic_matches
from uns.broker.persistence import PersistentBroker
from uns.broker.sessions import QueuedMessage, SessionHandler, SharedOutgoing
from uns.broker.shared import SharedSubscriptions, ShareGroup, parse_shared
from uns.mqtt.types import Message

__all__ = ["BROADCAST_HIGH", "RoutingBroker"]

log = logging.getLogger(__name__)

BROADCAST_HIGH = 20_000
"""Queued network broadcasts at which in-process publishers wait."""
_BROADCAST_LOW = 5_000
_CACHE_LIMIT = 100_000
_FAILURE = 0x80  # SUBACK failure return code
_BROADCAST = dict[str, Any]  # amqtt's broadcast queue item: {"session", "topic", "data", "qos"?}


@dataclass(frozen=True, slots=True)
class _Targets:
    """The network subscribers of one topic: one ``(session, highest granted QoS)`` per client, and the groups."""

    plain: tuple[tuple[Session, int], ...]
    shared: tuple[ShareGroup[str], ...]


_NOBODY = _Targets(plain=(), shared=())


def _reading(payload: bytes) -> ReadingFields | None:
    """The value envelope in ``payload`` by the hub's one reader; None when it is not one or has no time.

    Under ``uns up`` the historian and the web cache (and computed tags) each read every envelope;
    a network client's envelope is read here once and handed to them as ``Message.decoded``, as the
    host's are. One without ``timestamp_ms`` is not: each subscriber stamps it with its own receive
    time, as it stamps a retained copy or a message only it gets, so its stamps follow the order it
    reads them in (a broker stamp can be older than the one a lagging subscriber gave the value before).
    A payload that fails is passed on without a reading: each subscriber reads it itself and names
    the problem as before.
    """
    try:
        body = read_object(payload)
        if body.get("timestamp_ms") is None:  # null counts as absent, as in read_fields
            return None
        return read_fields(body, payload, now_ms=0)  # now_ms stamps only a missing time: there is one
    except EnvelopeError:
        return None


class RoutingBroker(PersistentBroker):
    """:class:`PersistentBroker` with the routing described in the module docstring (``UnsBroker`` builds on it)."""

    def __init__(self, config: BrokerConfig, *, guard: AclGuard) -> None:
        super().__init__(config)
        self.guard = guard
        self.local_index: SubscriptionIndex[LocalClient] = SubscriptionIndex()
        self.shared: SharedSubscriptions[str] = SharedSubscriptions()
        """Shared subscription groups; members are client ids."""
        self._generation = 0
        self._net_cache: dict[str, _Targets] = {}
        self._net_cache_generation = -1
        self._broadcast_room = asyncio.Event()
        self._broadcast_room.set()

    # --- routing -------------------------------------------------------------------------------

    async def _route(self, source: Session | None, topic: str, data: bytes, qos: int | None) -> None:
        """Deliver to local subscribers directly, and queue a network broadcast only if someone matches.

        A network publish, a will or a plugin's broadcast; an in-process publish takes these steps inline
        (``publish_local``).
        """
        waiting = self._offer_local(topic, data, qos, None)
        if waiting is not None:
            await self._route_after(waiting, source, topic, data, qos)
            return
        self._queue_broadcast(source, topic, data, qos)

    async def _route_after(
        self,
        waiting: list[tuple[LocalClient, Message]],
        source: Session | None,
        topic: str,
        data: bytes,
        qos: int | None,
    ) -> None:
        """The rest of a route whose offers found in-process subscribers full: wait for them, then the broadcast."""
        await self._wait_local(waiting)
        self._queue_broadcast(source, topic, data, qos)

    def _offer_local(
        self, topic: str, data: bytes, qos: int | None, decoded: ReadingFields | None
    ) -> list[tuple[LocalClient, Message]] | None:
        """Queue the message at each local subscriber with room; those whose queue is full, to wait for.

        Synchronous (no coroutine per message on the in-process hot path); a client whose queue is
        full gets the message from :meth:`_wait_local` before anything later is routed, so each
        client's order is kept.

        ``decoded``: the envelope as an in-process publisher read it, handed to local subscribers
        beside the same bytes (``Message.decoded``); network subscribers get the bytes alone. Without
        one (a network client's PUBLISH, or a publisher that did not read it), an envelope with its
        ``timestamp_ms`` that two or more local subscribers get is read here, once, instead of by each
        of them (:func:`_reading`).
        """
        matches = self.local_index.match(topic)
        if not matches:
            return None
        if (
            decoded is None
            and len(matches) > 1
            and data[:1] == b"{"
            and b'"value"' in data
            and b'"timestamp_ms"' in data
        ):
            decoded = _reading(data)
        waiting: list[tuple[LocalClient, Message]] | None = None
        level = qos or 0
        full = Message(topic, data, level, False, 0, decoded)  # shared by the subscribers granted ≥ level
        for client, sub_qos in matches:
            message = full if sub_qos >= level else Message(topic, data, sub_qos, False, 0, decoded)
            if not client.offer(message):
                if waiting is None:
                    waiting = []
                waiting.append((client, message))
        return waiting

    @staticmethod
    async def _wait_local(waiting: list[tuple[LocalClient, Message]]) -> None:
        for client, message in waiting:
            await client.put(message)  # back-pressure: wait for the reader

    def _queue_broadcast(self, source: Session | None, topic: str, data: bytes, qos: int | None) -> bool:
        """Queue a network broadcast if a network subscriber matches; whether one was queued."""
        if self._network_targets(topic) is not _NOBODY:
            item: _BROADCAST = {"session": source, "topic": topic, "data": data}
            if qos is not None:
                item["qos"] = qos
            self._broadcast_queue.put_nowait(item)
            return True
        return False

    def _network_targets(self, topic: str) -> _Targets:
        """Network subscribers of ``topic``, cached until subscriptions change."""
        if self._net_cache_generation != self._generation or len(self._net_cache) > _CACHE_LIMIT:
            self._net_cache.clear()
            self._net_cache_generation = self._generation
        found = self._net_cache.get(topic)
        if found is None:
            best: dict[str, tuple[Session, int]] = {}
            for topic_filter, subscribers in self._subscriptions.items():
                if subscribers and topic_matches(topic, topic_filter):
                    for session, qos in subscribers:
                        held = best.get(session.client_id)
                        if held is None or qos > held[1]:
                            best[session.client_id] = (session, qos)
            shared = self.shared.matching(topic)
            found = _Targets(plain=tuple(best.values()), shared=shared) if best or shared else _NOBODY
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
        targets = self._network_targets(topic)
        if not targets.shared:
            for target, sub_qos in targets.plain:
                qos = sub_qos if message_qos is None else min(message_qos, sub_qos)
                if self._allowed(target, topic, "receive"):
                    self._send(target, topic, data, qos, running_tasks)
            return
        # one copy per client, as Mosquitto: a member chosen by a group that also holds a plain
        # subscription (or is chosen by two groups) gets the message once, at the higher QoS
        chosen: dict[str, tuple[Session, int, str | None]] = {}
        for target, sub_qos in targets.plain:
            if self._allowed(target, topic, "receive"):
                chosen[target.client_id] = (target, sub_qos, None)
        for group in targets.shared:
            member = self._pick(group, topic, message_qos or 0)
            if member is not None:
                held = chosen.get(member[0].client_id)
                if held is None:
                    chosen[member[0].client_id] = (member[0], member[1], group.text)
                elif member[1] > held[1]:
                    chosen[member[0].client_id] = (held[0], member[1], held[2])
        for target, sub_qos, share in chosen.values():
            qos = sub_qos if message_qos is None else min(message_qos, sub_qos)
            self._send(target, topic, data, qos, running_tasks, share)

    def _send(
        self,
        target: Session,
        topic: str,
        data: bytes,
        qos: int,
        running_tasks: deque[asyncio.Task[Any]],
        share: str | None = None,
    ) -> None:
        """Send to one session now, or queue it (offline persistent, connecting, or behind)."""
        if target.transitions.state != "connected":
            # [MQTT-3.1.2-4]: queue QoS 1/2 for offline persistent sessions, anonymous or not;
            # QoS 0 is not queued for offline clients (MQTT lets a server drop it)
            if not target.clean_session and qos in (QOS_1, QOS_2):
                self.session_manager.enqueue(target, topic, data, qos, share=share)
            return
        handler = self._get_handler(target)
        if handler is None:
            return
        if self.session_manager.must_queue(target, qos):  # connecting, or older messages still wait
            self.session_manager.enqueue(target, topic, data, qos, share=share)
            return
        if qos and not target.clean_session:
            self.session_manager.mark(target)
        if share is not None and isinstance(handler, SessionHandler):
            running_tasks.append(asyncio.ensure_future(handler.publish(topic, data, qos, share=share)))
        else:  # the hot path: no extra coroutine layer
            running_tasks.append(asyncio.ensure_future(handler.mqtt_publish(topic, data, qos, retain=False)))

    def _pick(
        self, group: ShareGroup[str], topic: str, qos: int, exclude: str | None = None
    ) -> tuple[Session, int] | None:
        """The member of ``group`` to get a message: next connected one allowed to receive ``topic``.

        With none connected, a QoS 1/2 message goes to the next offline persistent member (queued).
        """

        def connected(client_id: str) -> bool:
            session = self._session(client_id)
            return (
                session is not None
                and session.transitions.state == "connected"
                and self._allowed(session, topic, "receive")
            )

        def persistent(client_id: str) -> bool:
            session = self._session(client_id)
            return session is not None and not session.clean_session and self._allowed(session, topic, "receive")

        found = group.pick(connected, exclude=exclude)
        if found is None and qos:
            found = group.pick(persistent, exclude=exclude)
        if found is None:
            return None
        session = self._session(found[0])
        return (session, found[1]) if session is not None else None

    def _session(self, client_id: str) -> Session | None:
        found = self._sessions.get(client_id)
        return found[0] if found is not None else None

    # --- shared messages of a member that leaves -----------------------------------------------

    async def _handle_disconnect(
        self, client_session: Session, handler: BrokerProtocolHandler, disconnect_waiter: asyncio.Future[Any]
    ) -> None:
        orphans = self._take_shared(client_session)
        await super()._handle_disconnect(client_session, handler, disconnect_waiter)
        if orphans:
            self._hand_over(client_session, orphans)

    def _take_shared(self, session: Session) -> list[QueuedMessage]:
        """Take out the messages sent or queued to ``session`` through a shared subscription, oldest first.

        A QoS 2 message whose PUBREC came stays: the client has it, only the PUBREL is owed.
        """
        taken: list[QueuedMessage] = []
        for packet_id, message in list(session.inflight_out.items()):
            if isinstance(message, SharedOutgoing) and message.pubrec_packet is None:
                del session.inflight_out[packet_id]
                taken.append(QueuedMessage(message.topic, bytes(message.data), message.qos or 0, message.share))
        queue = self.session_manager.state(session).queue
        if any(item.share is not None for item in queue):
            taken += [item for item in queue if item.share is not None]
            kept = [item for item in queue if item.share is None]
            queue.clear()
            queue.extend(kept)
        return taken

    def _hand_over(self, session: Session, orphans: list[QueuedMessage]) -> None:
        """Give each orphan to another connected member of its group; a persistent ``session`` keeps the rest."""
        client_id = str(session.client_id)
        kept = lost = 0
        for message in orphans:
            parsed = parse_shared(message.share or "")
            group = self.shared.get(*parsed) if isinstance(parsed, tuple) else None
            member = self._pick(group, message.topic, message.qos, client_id) if group is not None else None
            if member is not None and group is not None:
                qos = min(message.qos, member[1])
                self._send(member[0], message.topic, message.payload, qos, self._tasks_queue, group.text)
                continue
            if not session.clean_session and message.qos:
                self.session_manager.enqueue(session, message.topic, message.payload, message.qos, share=message.share)
                kept += 1
            else:
                lost += 1
        log.info(
            "client %s left with %d shared-subscription message(s) unacknowledged: %d handed to other members, "
            "%d kept in its session, %d lost (no other member connected)",
            client_id,
            len(orphans),
            len(orphans) - kept - lost,
            kept,
            lost,
        )

    # --- subscriptions and ACL ------------------------------------------------------------------

    async def add_subscription(self, subscription: tuple[str, int], session: Session) -> int:
        """Subscribe a network session (amqtt's checks and ACL, or a shared group), then invalidate the match cache."""
        text, qos = subscription
        parsed = parse_shared(text)
        if parsed is None:
            granted = int(await super().add_subscription(subscription, session))
        else:
            granted = self._add_shared(text, parsed, qos, session)
        self._generation += 1
        if granted != _FAILURE:
            if parsed is None:
                # MQTT-3.8.4-3: a repeated SUBSCRIBE replaces the existing subscription's QoS (amqtt keeps the old one)
                subscribers = self._subscriptions.get(text, [])
                for index, (subscriber, held) in enumerate(subscribers):
                    if subscriber.client_id == session.client_id and held != granted:
                        subscribers[index] = (subscriber, granted)
            self.session_manager.state(session).subscriptions[text] = granted
            self.session_manager.mark(session)
        return granted

    def _add_shared(self, text: str, parsed: tuple[str, str] | str, qos: int, session: Session) -> int:
        if isinstance(parsed, str):
            self._warn.warning(
                f"share/{session.client_id}", "client %s: SUBSCRIBE refused: %s", session.client_id, parsed
            )
            return _FAILURE
        group, topic_filter = parsed
        if not self._allowed(session, topic_filter, "subscribe"):  # the ACL judges the inner filter
            return _FAILURE
        granted = int(min(qos, QOS_2))
        self.shared.add(group, topic_filter, str(session.client_id), granted)
        log.debug("client %s joined shared subscription %s at QoS %d", session.client_id, text, granted)
        return granted

    def _del_subscription(self, a_filter: str, session: Session) -> int:
        parsed = parse_shared(a_filter)
        if parsed is None:
            deleted = int(super()._del_subscription(a_filter, session))
        else:
            deleted = isinstance(parsed, tuple) and self.shared.remove(*parsed, str(session.client_id))
        self._generation += 1
        if deleted:
            self.session_manager.state(session).subscriptions.pop(a_filter, None)
            self.session_manager.mark(session)
        return int(deleted)

    async def _del_all_subscriptions(self, session: Session) -> None:
        await super()._del_all_subscriptions(session)
        self.shared.remove_all(str(session.client_id))
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
            # a shared subscription gets no retained messages (as in Mosquitto; MQTT 5 4.8.2)
            if granted != _FAILURE and parse_shared(topic_filter) is None:
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
