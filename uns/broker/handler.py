"""amqtt's per-connection protocol handler with a faster reader and MQTT keep-alive enforcement.

amqtt 0.12.1's reader wraps every packet read in ``asyncio.wait_for`` (a task per packet) and
handles every packet in a new task; on the Sparkplug host's ingest path those two tasks cost more
than the host's own work. It also never disconnects a client that stays silent past its keep-alive
(``handle_read_timeout`` does nothing), so a dead edge node's will never fires. This reader:
- takes whole packets from :class:`uns.broker.framing.GuardedReader` (many per socket read) and
  decodes QoS 0 and 1 PUBLISH with the hub's own codec (:func:`uns.mqtt.codec.decode_publish`):
  amqtt's stream decoder awaited the stream five times per PUBLISH and was most of the broker's CPU;
  other packets are still parsed by amqtt, from the packet's bytes;
- handles QoS 0 and 1 PUBLISH inline, in arrival order (QoS 2 and control packets keep a task each,
  because QoS 2 waits for PUBREL and must not stall the reader): the broker routes each as it is
  read (``deliver``), and the reader takes a buffered packet without an await
  (:meth:`~uns.broker.framing.GuardedReader.buffered_packet`), so a burst of small PUBLISHes costs
  no coroutine, queue or task switch per message;
- enforces MQTT-3.1.2-24 with one watchdog task per connection: no packet for 1.5 x keep-alive
  closes the connection as abnormal, so the broker publishes the will (time the broker holds the
  reader for back-pressure is not the client's silence);
- stops reading before that will (:meth:`FastBrokerHandler.stop_reading`): the packets already read
  are routed first, so the will comes after every message its client had sent before.
The rest is amqtt's behaviour. ``tests/uns/broker/test_amqtt_internals.py`` pins what it relies on.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from amqtt.adapters import BufferReader
from amqtt.errors import MQTTError, NoDataError
from amqtt.events import MQTTEvents
from amqtt.mqtt.connack import CONNECTION_ACCEPTED, NOT_AUTHORIZED, ConnackPacket
from amqtt.mqtt.connect import ConnectPacket
from amqtt.mqtt.constants import QOS_2
from amqtt.mqtt.packet import (
    CONNECT,
    PUBLISH,
    RESERVED_0,
    RESERVED_15,
    MQTTFixedHeader,
)
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.mqtt.protocol.handler import packet_class
from amqtt.mqtt.puback import PubackPacket

from uns.broker.framing import GuardedReader, MalformedLength
from uns.broker.packets import PacketGuard, Violation
from uns.logs import RateLimitedLog
from uns.mqtt.codec import Publish, PublishError, decode_publish

__all__ = ["KEEPALIVE_GRACE", "FastBrokerHandler"]

log = logging.getLogger(__name__)

KEEPALIVE_GRACE = 1.5
"""MQTT-3.1.2-24: a server disconnects a client silent for one and a half keep-alive periods."""

_HANDLERS = {
    2: "handle_connack",
    3: "handle_publish",
    4: "handle_puback",
    5: "handle_pubrec",
    6: "handle_pubrel",
    7: "handle_pubcomp",
    8: "handle_subscribe",
    9: "handle_suback",
    10: "handle_unsubscribe",
    11: "handle_unsuback",
    12: "handle_pingreq",
    13: "handle_pingresp",
    14: "handle_disconnect",
}


class FastBrokerHandler(BrokerProtocolHandler):  # type: ignore[misc]  # amqtt ships no type stubs
    """``BrokerProtocolHandler`` with the reader described in the module docstring."""

    _uns_last_read: float = 0.0
    packets: PacketGuard | None = None
    """Set by the broker: checks each packet's bytes before amqtt parses them (uns.broker.packets)."""
    _uns_warn = RateLimitedLog(log)
    deliver: Callable[[Publish], Coroutine[Any, Any, None] | None] | None = None
    """Set by the broker: handles a QoS 0/1 PUBLISH as it is read and returns what is left to await, if
    anything (``UnsBroker.deliver_now``); unset, such a PUBLISH goes to the session's queue as in amqtt."""
    _uns_delivering = False
    """True while the reader waits for a delivery to finish (a full in-process subscriber)."""
    _uns_stopping = False
    """Set by :meth:`stop_reading`: the reader ends once it routed the whole packets it had read."""

    async def mqtt_connack_authorize(self, authorize: bool) -> None:
        """CONNACK as amqtt sends it, but Session Present is always 0 for MQTT 3.1 (a reserved byte there)."""
        if getattr(self.reader, "protocol", "3.1.1") != "3.1" or self.session is None:
            await super().mqtt_connack_authorize(authorize)
            return
        await self._send_packet(ConnackPacket.build(0, CONNECTION_ACCEPTED if authorize else NOT_AUTHORIZED))

    async def _reader_loop(self) -> None:
        session, reader = self.session, self.reader
        if not isinstance(reader, GuardedReader):  # the broker always wraps its readers; anything else: amqtt's
            await super()._reader_loop()
            return
        client_id = session.client_id if session is not None else "?"
        loop = asyncio.get_running_loop()
        running: collections.deque[asyncio.Task[None]] = collections.deque()
        keepalive = session.keep_alive if session is not None and session.keep_alive else 0
        self._uns_last_read = loop.time()
        watchdog = (
            asyncio.create_task(
                self._uns_watchdog(keepalive * KEEPALIVE_GRACE, reader.gate), name=f"uns.broker.keepalive[{client_id}]"
            )
            if keepalive > 0
            else None
        )
        guard = self.packets
        received = MQTTEvents.PACKET_RECEIVED
        try:
            while True:
                self._reader_ready.set()
                while running and running[0].done():
                    self._uns_reap(running.popleft(), client_id)
                read = reader.buffered_packet()  # without an await while a burst is buffered
                if read is None:
                    if self._uns_stopping:
                        break  # closing (stop_reading): what was read is routed, nothing more is
                    try:
                        read = await reader.read_packet()
                    except MalformedLength as exc:
                        self._uns_refuse(client_id, Violation("MQTT-4.8", str(exc)))
                        break
                if read is None:
                    break  # EOF, or closed for an oversize packet
                first, body = read
                self._uns_last_read = loop.time()
                packet_type, flags = first >> 4, first & 0x0F
                if packet_type in (RESERVED_0, RESERVED_15):
                    log.warning("client %s sent reserved packet type %d: closing", client_id, packet_type)
                    break
                if guard is not None and guard.refuses_body(packet_type, flags, body, client_id):
                    break  # malformed: close, as MQTT 3.1.1 says
                # the hot path: QoS 0/1 PUBLISH with our codec (any plugin watching packets gets amqtt's objects)
                if packet_type == PUBLISH and not flags & 0b0100 and received not in self._uns_watched():
                    try:
                        publish = decode_publish(first, body, 0, len(body))
                    except PublishError as exc:
                        self._uns_refuse(client_id, Violation("MQTT-4.8", str(exc)))
                        break
                    deliver = self.deliver
                    if deliver is not None and not flags & 0b1010:  # QoS 0 without DUP: no coroutine at all
                        pending = deliver(publish)
                        if pending is not None:
                            await self._uns_finish(pending)
                    else:
                        await self._uns_publish(publish, client_id)
                    continue
                try:
                    header = MQTTFixedHeader(packet_type, flags, len(body))
                    packet = await packet_class(header).from_stream(BufferReader(body), fixed_header=header)
                    await self.plugins_manager.fire_event(received, packet=packet, session=session)
                    if packet_type == PUBLISH and (packet.qos or 0) < QOS_2:
                        await self.handle_publish(packet)
                        if flags & 0b1110 == 0b1000:  # QoS 0 with DUP: amqtt ignores it, read but never handled
                            reader.count_handled()
                    elif packet_type == CONNECT:
                        await self.handle_connect(packet)
                    elif packet_type in _HANDLERS:
                        handle: Coroutine[Any, Any, None] = getattr(self, _HANDLERS[packet_type])(packet)
                        running.append(asyncio.create_task(handle, name=f"uns.broker.packet[{client_id}]"))
                except (MQTTError, NoDataError) as exc:
                    log.debug("client %s: packet discarded: %s", client_id, exc)
        except asyncio.CancelledError:
            pass  # stop() cancels us: fall through to the same clean-up as EOF
        except Exception as exc:  # a broken connection must not take the broker down
            log.warning("client %s: reader stopped: %r", client_id, exc)
        finally:
            if watchdog is not None:
                watchdog.cancel()
            for task in running:
                if task.done():
                    self._uns_reap(task, client_id)
                else:
                    task.cancel()
        await self.handle_connection_closed()
        self._reader_stopped.set()
        await self.stop()

    def _uns_watched(self) -> Any:
        """The events some plugin listens to (amqtt's plugin manager; ours listen to none of the packet events)."""
        return self.plugins_manager._event_plugin_callbacks

    def _uns_refuse(self, client_id: str, violation: Violation) -> None:
        if self.packets is not None:
            self.packets.report(client_id, violation)
        else:
            log.warning("client %s: malformed packet, %s: closing", client_id, violation.what)

    async def _uns_publish(self, publish: Publish, client_id: str) -> None:
        """A QoS 0/1 PUBLISH handled (``deliver``) or queued for the client loop; a QoS 1 one is then acknowledged.

        Handled before the next packet is read, the client's messages keep their order whatever
        their QoS; the PUBACK follows the routing (amqtt's flow acknowledges after queueing).
        """
        session = self.session
        if session is None:
            return
        if not publish.qos and publish.dup:  # MQTT-3.3.1-2; amqtt ignores such a message too
            self._uns_warn.warning(
                f"dup0/{client_id}", "client %s: QoS 0 PUBLISH with DUP set on %r: ignored", client_id, publish.topic
            )
            reader = self.reader
            if isinstance(reader, GuardedReader):
                reader.count_handled()  # counted as read: unhandled, 1,000 of them would close its gate for good
            return
        deliver = self.deliver
        if deliver is not None:
            pending = deliver(publish)
            if pending is not None:
                await self._uns_finish(pending)
        elif not publish.qos:
            # the codec's Publish itself is queued: the broker's _deliver reads it as it reads amqtt's
            # IncomingApplicationMessage (QoS 2 and plugin-watched packets), without its ~1 us of slot setting
            session.delivered_message_queue.put_nowait(publish)
            return
        else:
            await session.delivered_message_queue.put(publish)
        if publish.qos:
            await self._send_packet(PubackPacket.build(publish.packet_id))

    async def _uns_finish(self, pending: Coroutine[Any, Any, None]) -> None:
        """Await the rest of a delivery; :meth:`stop_reading` lets it end instead of cancelling it."""
        self._uns_delivering = True
        try:
            await pending
        finally:
            self._uns_delivering = False

    async def stop_reading(self) -> None:
        """End the reader before the broker's last steps for a closing connection (the will), and wait for it.

        A close the reader did not ask for (take-over, keep-alive, a revoked account) can come while it
        waits for a full in-process subscriber: it then routes that message and the whole packets it
        had already read (as the queued path routed what it had queued), reads nothing more and ends,
        so the will comes after every message routed. Cancelled there instead, the message would reach
        some subscribers only; left running, the reader would route its next messages after the will
        (amqtt's stop() cancels it only once the will is out). Waiting for the socket, it holds no
        whole packet: it is cancelled.
        """
        self._uns_stopping = True
        task = self._reader_task
        if task is None or task.done() or task is asyncio.current_task() or self._reader_stopped.is_set():
            return
        if not self._uns_delivering:
            task.cancel()  # waiting for the socket, the gate or a write: nothing half done
        await self._reader_stopped.wait()

    def _uns_reap(self, task: asyncio.Task[None], client_id: str) -> None:
        """Take a finished packet task's exception, so none is ever left for asyncio's 'never retrieved' trace."""
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self._uns_warn.warning(
                f"packet/{client_id}/{type(exc).__name__}", "client %s: packet failed: %r", client_id, exc
            )

    async def handle_connect(self, connect: ConnectPacket) -> None:
        """A second CONNECT is a protocol violation (MQTT-3.1.0-2): close, warning once (amqtt logs an ERROR)."""
        client_id = self.session.client_id if self.session is not None else "?"
        self._uns_warn.warning(f"connect/{client_id}", "client %s sent a second CONNECT: closing", client_id)
        await self.handle_connection_closed()

    async def _uns_watchdog(self, limit_s: float, gate: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if self._uns_delivering or not gate.is_set():
                # the broker holds the reader (a full in-process subscriber, the backlog gate): the client's
                # packets wait unread in the socket, so this quiet is the broker's, not the client's
                self._uns_last_read = loop.time()
            idle = loop.time() - self._uns_last_read
            if idle >= limit_s:
                client_id = self.session.client_id if self.session is not None else "?"
                log.warning(
                    "client %s silent for %.1f s (1.5 x keep-alive): disconnecting it, its will is published",
                    client_id,
                    idle,
                )
                await self.handle_connection_closed()
                return
            await asyncio.sleep(limit_s - idle)
