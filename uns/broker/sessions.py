"""MQTT 3.1.1 session state of the embedded broker: bounded offline queues, in-flight QoS 1/2 and redelivery.

amqtt 0.12.1 waits up to 5 s for each PUBACK/PUBREC/PUBCOMP and then (or when the connection drops)
forgets the message, so nothing is re-sent on reconnect (MQTT-4.4.0-1 broken). Here:

- an outgoing QoS 1/2 PUBLISH enters ``session.inflight_out`` and stays there until its PUBACK
  (QoS 1) or PUBCOMP (QoS 2) arrives: no timer, no drop on disconnect. On reconnect with
  clean_session=0 the in-flight messages are re-sent in their original order with DUP=1 (or their
  PUBREL, once PUBREC came), before anything queued and before new messages;
- a session that is offline, still connecting, or has :data:`MAX_INFLIGHT` messages in flight
  gets new messages in its queue, bounded by ``limits.max_queued_messages``: when full the OLDEST
  queued message is dropped, counted and logged (rate-limited) with the client id;
- QoS 0 messages are never queued for an offline client (MQTT lets a server drop them); they are
  only queued while the client is connecting or behind, to keep the order.

:class:`SessionBroker` (the Broker layer under ``UnsBroker``) adds Session Present and clean-session
handling (MQTT-3.1.2-6, 3.2.2-1..3) and closes the older connection of a client id that connects
again (MQTT-3.1.4-2) before the new one takes the session.
``tests/uns/broker/test_amqtt_internals.py`` pins the amqtt internals this relies on.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from amqtt.adapters import ReaderAdapter, WriterAdapter
from amqtt.broker import Broker
from amqtt.mqtt.constants import QOS_0, QOS_1, QOS_2
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.mqtt.puback import PubackPacket
from amqtt.mqtt.pubcomp import PubcompPacket
from amqtt.mqtt.pubrec import PubrecPacket
from amqtt.mqtt.pubrel import PubrelPacket
from amqtt.session import INCOMING, IncomingApplicationMessage, OutgoingApplicationMessage, Session

from uns.broker.handler import FastBrokerHandler
from uns.event_wait import set_within
from uns.logs import RateLimitedLog

__all__ = [
    "MAX_INFLIGHT",
    "QueuedMessage",
    "SessionBroker",
    "SessionHandler",
    "SessionManager",
    "SessionState",
    "SharedOutgoing",
]

log = logging.getLogger(__name__)

MAX_INFLIGHT = 1000
"""Unacknowledged QoS 1/2 messages per client; more wait in the session's queue (keeps packet ids free)."""

_STATE_KEY = "uns.session"
_TAKE_OVER_S = 5.0  # how long a reconnect waits for the older connection of its session to end
_CONNECT_FIELDS = (  # what a CONNECT sets on amqtt's Session
    "client_id",
    "will_flag",
    "will_message",
    "will_topic",
    "will_qos",
    "will_retain",
    "keep_alive",
    "username",
    "password",
    "remote_address",
    "remote_port",
    "ssl_object",
)


@dataclass(slots=True, frozen=True)
class QueuedMessage:
    """One message waiting in a session's queue."""

    topic: str
    payload: bytes
    qos: int
    share: str | None = None
    """The ``$share/...`` subscription it was chosen through; None for a plain subscription."""


class SharedOutgoing(OutgoingApplicationMessage):  # type: ignore[misc]  # amqtt ships no type information
    """An outgoing QoS 1/2 message sent to one member of a shared subscription group.

    It remembers the group, so the broker can hand it to another member if this one disconnects
    before acknowledging it.
    """

    __slots__ = ("share",)

    def __init__(self, packet_id: int, topic: str, qos: int, data: bytes, *, share: str) -> None:
        super().__init__(packet_id, topic, qos, data, False)
        self.share = share


@dataclass(slots=True)
class SessionState:
    """What we keep per amqtt ``Session`` (in ``session.attributes``)."""

    queue: deque[QueuedMessage] = field(default_factory=deque)
    subscriptions: dict[str, int] = field(default_factory=dict)
    dropped: int = 0
    """Queued messages dropped because the queue was full."""
    ready: bool = False
    """True once a connected client got its in-flight and queued messages; until then new ones queue."""
    offline: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when a connection of this session has ended (a take-over waits for it)."""


class SessionManager:
    """Queues, drop policy and change tracking (for persistence) of every session of one broker."""

    def __init__(self, *, max_queued: int, max_inflight: int = MAX_INFLIGHT) -> None:
        self.max_queued = max_queued
        self.max_inflight = max_inflight
        self.dropped_total = 0
        """Queued messages dropped by the bound, all sessions, since start."""
        self.dirty: set[str] = set()
        """Client ids of persistent sessions changed since the last flush to disk."""
        self._warn = RateLimitedLog(log)

    @staticmethod
    def state(session: Session) -> SessionState:
        """The state of ``session``, created on first use."""
        found = session.attributes.get(_STATE_KEY)
        if found is None:
            found = session.attributes[_STATE_KEY] = SessionState()
        assert isinstance(found, SessionState)  # noqa: S101  (only we write this key)
        return found

    def mark(self, session: Session) -> None:
        """Note that a persistent session changed (O(1); the flush writes it)."""
        if session.clean_session is False and session.client_id:
            self.dirty.add(session.client_id)

    def must_queue(self, session: Session, qos: int) -> bool:
        """Whether a message for a connected ``session`` has to wait in its queue to keep order."""
        state = self.state(session)
        return not state.ready or bool(state.queue) or (qos > QOS_0 and len(session.inflight_out) >= self.max_inflight)

    def enqueue(self, session: Session, topic: str, payload: bytes, qos: int, *, share: str | None = None) -> None:
        """Queue a message; when the queue is full drop the oldest one, count and log it."""
        state = self.state(session)
        if len(state.queue) >= self.max_queued:
            state.queue.popleft()
            state.dropped += 1
            self.dropped_total += 1
            self._warn.warning(
                f"queue-full/{session.client_id}",
                "session queue of client %s is full (%d messages): dropped its oldest message (%d dropped so far)",
                session.client_id,
                self.max_queued,
                state.dropped,
            )
        state.queue.append(QueuedMessage(topic=topic, payload=payload, qos=qos, share=share))
        self.mark(session)

    async def drain(self, session: Session, handler: SessionHandler) -> None:
        """Send queued messages in order while the client is connected and has in-flight room."""
        state = self.state(session)
        queue = state.queue
        while queue and not handler.closed and handler.session is session:
            head = queue[0]
            if head.qos > QOS_0 and len(session.inflight_out) >= self.max_inflight:
                break
            queue.popleft()
            # the QoS 1/2 flow puts it in inflight_out before its first await: it cannot get lost
            await handler.publish(head.topic, head.payload, head.qos, share=head.share)
        self.mark(session)

    async def connected(self, session: Session, handler: SessionHandler) -> None:
        """After CONNACK and the in-flight re-sends: deliver the queue, then let new messages through."""
        await self.drain(session, handler)
        self.state(session).ready = True


class SessionHandler(FastBrokerHandler):
    """The broker's protocol handler with the outgoing QoS 1/2 flows described in the module docstring."""

    sessions: SessionManager | None = None
    """Set by the broker right after it swaps this class in."""
    closed: bool = False

    def _changed(self) -> None:
        if self.sessions is not None and self.session is not None:
            self.sessions.mark(self.session)

    async def stop(self) -> None:
        """Stop as amqtt does; in-flight messages stay in the session."""
        self.closed = True
        await super().stop()

    async def handle_connection_closed(self) -> None:
        """The connection is gone: stop writing to it."""
        self.closed = True
        await super().handle_connection_closed()

    async def publish(self, topic: str, data: bytes, qos: int, *, share: str | None = None) -> None:
        """Send one message (not retained); a QoS 1/2 one chosen through ``share`` is marked as such."""
        session = self.session
        if share is None or qos == QOS_0 or session is None:
            await self.mqtt_publish(topic, data, qos, retain=False)
            return
        await self._handle_message_flow(SharedOutgoing(session.next_packet_id, topic, qos, data, share=share))

    async def _send_if_open(self, packet: object) -> None:
        if not self.closed:
            await self._send_packet(packet)

    async def _handle_qos1_message_flow(
        self, app_message: OutgoingApplicationMessage | IncomingApplicationMessage
    ) -> None:
        if app_message.direction == INCOMING:
            await super()._handle_qos1_message_flow(app_message)
            return
        await self._send_outgoing(app_message)

    async def _handle_qos2_message_flow(
        self, app_message: OutgoingApplicationMessage | IncomingApplicationMessage
    ) -> None:
        if app_message.direction == INCOMING:
            await super()._handle_qos2_message_flow(app_message)
            return
        if app_message.pubrel_packet is not None:  # PUBREC came before: only the PUBREL is owed
            await self._send_if_open(PubrelPacket.build(app_message.packet_id))
            return
        await self._send_outgoing(app_message)

    async def _send_outgoing(self, app_message: OutgoingApplicationMessage | IncomingApplicationMessage) -> None:
        """Send a QoS 1/2 PUBLISH and return; it stays in flight until acknowledged (no 5 s give-up)."""
        session = self.session
        assert session is not None  # noqa: S101  (amqtt attaches the session before any flow)
        packet_id = app_message.packet_id
        if packet_id not in session.inflight_out and isinstance(app_message, OutgoingApplicationMessage):
            session.inflight_out[packet_id] = app_message
        # a message sent before (this connection or an earlier one) goes out again with DUP=1 [MQTT-3.3.1-1]
        packet = app_message.build_publish_packet(dup=app_message.publish_packet is not None)
        app_message.publish_packet = packet
        await self._send_if_open(packet)

    async def _retry_deliveries(self) -> None:
        """[MQTT-4.4.0-1]: re-send unacknowledged PUBLISH (DUP=1) and PUBREL in their original order."""
        session = self.session
        if session is None:
            return
        for incoming in list(session.inflight_in.values()):
            # a QoS 2 PUBLISH from the client still waiting for its PUBREL: PUBREC again, in the background
            task = asyncio.create_task(
                self._handle_message_flow(incoming), name=f"uns.broker.pubrel-wait[{session.client_id}]"
            )
            self._uns_tasks.add(task)
            task.add_done_callback(self._uns_tasks.discard)
        for message in list(session.inflight_out.values()):
            await self._handle_message_flow(message)

    @property
    def _uns_tasks(self) -> set[asyncio.Task[None]]:
        tasks: set[asyncio.Task[None]] | None = self.__dict__.get("_uns_task_set")
        if tasks is None:
            tasks = self.__dict__["_uns_task_set"] = set()
        return tasks

    async def handle_puback(self, puback: PubackPacket) -> None:
        """QoS 1 delivery done: forget the message, then send what waits in the queue."""
        await self._acknowledged(puback.variable_header.packet_id, QOS_1)

    async def handle_pubrec(self, pubrec: PubrecPacket) -> None:
        """QoS 2 step 2: the client has the message; answer PUBREL and keep it until PUBCOMP."""
        session = self.session
        packet_id = pubrec.packet_id
        message = session.inflight_out.get(packet_id) if session is not None else None
        if message is None or message.qos != QOS_2:
            log.debug("client %s: PUBREC for unknown packet id %d", self._client_id(), packet_id)
            return
        message.pubrec_packet = pubrec
        message.pubrel_packet = PubrelPacket.build(packet_id)
        self._changed()
        await self._send_if_open(message.pubrel_packet)

    async def handle_pubcomp(self, pubcomp: PubcompPacket) -> None:
        """QoS 2 delivery done."""
        await self._acknowledged(pubcomp.packet_id, QOS_2)

    async def _acknowledged(self, packet_id: int, qos: int) -> None:
        session = self.session
        if session is None:
            return
        message = session.inflight_out.get(packet_id)
        if message is None or message.qos != qos:
            log.debug("client %s: ack for unknown packet id %d", self._client_id(), packet_id)
            return
        del session.inflight_out[packet_id]
        self._changed()
        manager = self.sessions
        if manager is not None and manager.state(session).queue and manager.state(session).ready:
            await manager.drain(session, self)

    def _client_id(self) -> str:
        return str(self.session.client_id) if self.session is not None else "?"


class SessionBroker(Broker):  # type: ignore[misc]  # amqtt ships no type information
    """amqtt's Broker with MQTT 3.1.1 session handling; :class:`uns.broker.core.UnsBroker` builds on it."""

    session_manager: SessionManager

    async def _initialize_client_session(
        self, reader: ReaderAdapter, writer: WriterAdapter, remote_address: str, remote_port: int
    ) -> tuple[BrokerProtocolHandler, Session]:
        handler, session = await super()._initialize_client_session(reader, writer, remote_address, remote_port)
        if session.parent == 1 and session.clean_session:
            # amqtt resumed a clean_session=1 session its monitor had not swept yet; that session ended
            # at its disconnect [MQTT-3.1.2-6], so this clean_session=0 CONNECT starts a new one
            fresh = Session()
            for name in _CONNECT_FIELDS:
                setattr(fresh, name, getattr(session, name))
            fresh.clean_session = False
            fresh.parent = 0
            await self._delete_session(str(session.client_id))
            return handler, fresh
        return handler, session

    async def _delete_session(self, client_id: str) -> None:
        old = self._sessions.get(client_id)
        if old is not None and old[0].transitions.state == "connected":
            await old[1].handle_connection_closed()  # [MQTT-3.1.4-2]: the older connection of this id ends
        await super()._delete_session(client_id)

    async def _take_over(self, session: Session) -> None:
        """[MQTT-3.1.4-2]: close the connection that still holds ``session`` and wait until it let go."""
        old = self._get_handler(session)
        if session.transitions.state != "connected" or old is None:
            return
        offline = self.session_manager.state(session).offline
        offline.clear()
        await old.handle_connection_closed()
        if not await set_within(offline, _TAKE_OVER_S):
            log.warning("client %s: older connection did not close in time; amqtt takes over", session.client_id)

    async def _handle_disconnect(
        self, client_session: Session, handler: BrokerProtocolHandler, disconnect_waiter: asyncio.Future[Any]
    ) -> None:
        await super()._handle_disconnect(client_session, handler, disconnect_waiter)
        state = self.session_manager.state(client_session)
        state.ready = False
        state.offline.set()
        self.session_manager.mark(client_session)

    async def _publish_session_retained_messages(self, session: Session) -> None:
        """Send the session's queue in order, after amqtt's handler re-sent the in-flight messages.

        amqtt would send them with the retain flag set and wait 5 s for each acknowledgement.
        """
        handler = self._get_handler(session)
        if isinstance(handler, SessionHandler):
            await self.session_manager.connected(session, handler)
        else:
            self.session_manager.state(session).ready = True
