"""The Sparkplug host's async shell: STATE, subscriptions, the message loop and the health topic."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Self

from model.config import HostSection
from model.equipment import Plant
from uns.clock import now_ms
from uns.connect import ClientFactory
from uns.errors import BrokerError
from uns.event_wait import set_within
from uns.health import publish_health
from uns.host.bounds import HostBounds
from uns.host.core import HostCore, hub_topic, node_status_prefix
from uns.host.counters import Lag, RepublishLag
from uns.host.mirror import HostMirror
from uns.host.remote import HostWorker
from uns.host.seeding import StatusDocuments
from uns.host.state_guard import StateGuard
from uns.host.worker import WorkerConfig
from uns.mqtt.client import MqttClient
from uns.mqtt.filters import topic_matches
from uns.mqtt.types import Message, PubSub
from uns.sparkplug import encode_state

__all__ = ["SparkplugHost"]

log = logging.getLogger(__name__)

_STATE_PREFIX = "spBv1.0/STATE/"
BROKER_DROPPED_TOPIC = "$SYS/broker/publish/messages/dropped"
"""Mosquitto's count of publishes it dropped (queue or in-flight limits), sent every ``sys_interval``."""
_BROKER_DROPPED_WAIT_S = 30.0  # Mosquitto's sys_interval is 10 s by default
_MARKS_QUIET_S = 0.25
"""How long no retained node status came for the host to take it that the broker sent them all (``_read_marks``)."""
_MARKS_QUIET_LOCAL_S = 0.01
"""The same in-process, where the subscribe has queued every retained one when it returns."""
_MARKS_MAX_S = 3.0
"""The longest the host reads its retained node status at start: past it, it starts with those read."""


class SparkplugHost:
    """Primary host application: tracks every edge node and republishes its metrics to the UNS."""

    name = "host"

    def __init__(
        self,
        *,
        settings: HostSection,
        plant: Plant,
        clients: ClientFactory,
        max_payload_bytes: int = 1_048_576,
        lag: RepublishLag | None = None,
    ) -> None:
        self._settings = settings
        self._clients = clients
        self._enterprise = plant.enterprise.id
        self._core_config = WorkerConfig(
            plant=plant,
            max_payload_bytes=max_payload_bytes,
            rebirth_min_interval_ms=int(settings.rebirth_min_interval_s * 1000),
            republish_qos=settings.republish_qos,
            bounds=HostBounds(
                max_metrics_per_birth=settings.max_metrics_per_birth,
                max_devices_per_node=settings.max_devices_per_node,
                max_nodes=settings.max_nodes,
                max_series=settings.max_series,
            ),
            dbirth_grace_ms=round(settings.dbirth_grace_s * 1000),
            hand_decoded=False,  # both set once the client is known (``_start_worker``)
            log_level=logging.NOTSET,
        )
        """What the core is built from, here or in the worker process: one place for the settings' mapping."""
        self.core: HostCore | HostMirror = HostMirror() if settings.worker else self._core_config.core()
        """The host's state: its core, or with ``host.worker`` the mirror of the worker process's core."""
        self._worker: HostWorker | None = None
        self._state_topic = _STATE_PREFIX + settings.host_id
        self._status_prefix = node_status_prefix(self._enterprise)
        """Where the host publishes each node's status, retained (``HostCore``); read back at start."""
        self.lag = lag or RepublishLag()
        """Whether republishing keeps up (``ok``/``lagging``/``stalled``), judged at each health tick."""
        self.broker_dropped: int | None = None
        """Publishes the broker says it dropped since it started (Mosquitto's $SYS); None if unknown."""
        self._drops_since_s: float | None = None  # when we began to wait for the broker's drop count
        self._state = StateGuard(topic=self._state_topic, session_ms=0, counters=self.core.counters)
        self._client: PubSub | None = None
        self._stopping = False  # the stop's offline STATE is (being) published: a reconnect's birth says offline
        self._stack = contextlib.AsyncExitStack()
        self._ready = asyncio.Event()
        self._due = asyncio.Event()
        """Set when a message changed the inline core's ``due_ms`` from what the tick task sleeps until."""
        self._tick_at: int | None = None  # the due_ms the tick task sleeps until (None: until woken)

    @property
    def state_topic(self) -> str:
        """``spBv1.0/STATE/<host_id>``."""
        return self._state_topic

    @property
    def worker(self) -> HostWorker | None:
        """The worker process running the core (``host.worker``), once entered; None inline."""
        return self._worker

    @property
    def health_topic(self) -> str:
        """``<enterprise>/hub/host/health``."""
        return hub_topic(self._enterprise, "host", "health")

    async def __aenter__(self) -> Self:
        # Sparkplug 3.0: the STATE birth and its will carry the same timestamp (``_will`` stamps each CONNECT)
        self._state = StateGuard(topic=self._state_topic, session_ms=now_ms(), counters=self.core.counters)
        self._stopping = False
        filters = [f"spBv1.0/{group}/#" for group in self._settings.groups]
        if not any(topic_matches(self._state_topic, f) for f in filters):
            filters.append(self._state_topic)  # we answer anything published there (StateGuard)
        async with contextlib.AsyncExitStack() as stack:
            client = await stack.enter_async_context(
                self._clients(
                    client_id=f"uns-host-{self._settings.host_id}",
                    will=self._will,
                    birth=self._birth_state,
                    max_inflight=self._settings.republish_window,
                )
            )
            # in-process (uns up), the subscribers take each envelope's reading instead of parsing it again;
            # over a socket nothing but the bytes travels, so it is not made
            self.core.hand_decoded = not isinstance(client, MqttClient)
            seeds = await self._read_marks(client)  # before any Sparkplug message: a birth sorts after them
            if isinstance(self.core, HostMirror):
                self._worker = await self._start_worker(stack, self.core, seeds)
            elif seeds:
                self.core.seed(seeds, now_ms())
            await client.subscribe(filters, qos=1)
            await self._watch_broker_drops(client)
            self._stack = stack.pop_all()
        self._client = client
        log.info("Sparkplug host %s online, tracking %s", self._settings.host_id, ", ".join(filters))
        return self

    def _will(self) -> Message:
        """The will of the CONNECT being sent: stamped now, and the online STATE after it carries the same time.

        Made for every CONNECT, reconnects included (tck-id-host-topic-phid-death-payload-connect: the
        will's timestamp is the UTC time of its CONNECT; the birth repeats it,
        tck-id-host-topic-phid-birth-payload-timestamp).
        """
        stamp = now_ms()
        self._state.new_session(stamp)
        return Message(self._state_topic, encode_state(False, stamp), qos=1, retain=True)

    async def _read_marks(self, client: PubSub) -> StatusDocuments:
        """The host's own retained node status documents (their stale marks, ``uns.host.seeding``), read at start.

        Subscribed, the broker sends the retained ones (MQTT 3.1.1: RETAIN set on those alone); read until no retained
        one came for a moment (a live one, another hub's status on the broker, is not waited for) or ``_MARKS_MAX_S``
        passed, then unsubscribed. A subscription the broker refuses is a warning, and the host starts without the marks
        (Mosquitto grants one its ACL forbids reading, and sends nothing: no marks, no warning).
        """
        status_filters = [f"{self._status_prefix}{group}/+" for group in self._settings.groups]  # the groups tracked
        try:
            await client.subscribe(status_filters, qos=1)
        except BrokerError as err:
            log.warning("retained node status not readable (%s): stale marks from before the start not kept", err)
            return ()
        # an in-process client has queued every retained message when subscribe returns
        quiet_s = _MARKS_QUIET_S if isinstance(client, MqttClient) else _MARKS_QUIET_LOCAL_S
        documents: dict[str, bytes] = {}
        messages = aiter(client.messages())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _MARKS_MAX_S
        quiet_until = loop.time() + quiet_s
        while (left_s := min(quiet_until, deadline) - loop.time()) > 0:
            try:
                async with asyncio.timeout(left_s):
                    message = await anext(messages)
            except (TimeoutError, StopAsyncIteration):
                break
            if not message.retain:
                continue  # a live one (another hub's status on this broker) is not a mark of ours, nor a reason to wait
            quiet_until = loop.time() + quiet_s
            if message.payload and message.topic.startswith(self._status_prefix):
                documents[message.topic] = message.payload
        ended = "at the cap" if loop.time() >= deadline else "quiet"  # the cap: retained ones still coming
        log.debug("retained node statuses read back: %d, ended %s", len(documents), ended)
        await client.unsubscribe(status_filters)
        return tuple(documents.items())

    async def _start_worker(
        self, stack: contextlib.AsyncExitStack, mirror: HostMirror, seeds: StatusDocuments
    ) -> HostWorker:
        config = dataclasses.replace(
            self._core_config,
            seeds=seeds,
            hand_decoded=mirror.hand_decoded,
            log_level=logging.getLogger("uns").getEffectiveLevel(),
        )
        worker = HostWorker(config=config, mirror=mirror, hang_s=self._settings.worker_hang_s)
        stack.push_async_callback(worker.close)
        await worker.start()
        return worker

    async def _watch_broker_drops(self, client: PubSub) -> None:
        # what the broker drops (a slow subscriber's full queue) is lost without a trace on our side
        try:
            await client.subscribe([BROKER_DROPPED_TOPIC], qos=0)
        except BrokerError as err:
            log.info("broker drop count not readable (%s): health reports broker_dropped null", err)
            return
        self._drops_since_s = time.monotonic()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        client = self._client
        self._client = None
        if client is None:
            return
        self._stopping = True  # from now on a reconnect's birth is offline too (``_birth_state``)
        try:
            async with asyncio.timeout(1.0):
                await client.publish(self._state_topic, self._offline_state(), qos=1, retain=True)
        except (TimeoutError, OSError) as err:
            log.warning("could not publish offline STATE on %s: %s", self._state_topic, err)
        finally:
            await self._stack.__aexit__(exc_type, exc, tb)
        log.info("Sparkplug host %s offline", self._settings.host_id)

    def _birth_state(self) -> Message:
        """The online STATE a reconnect publishes first, before anything held or re-sent (the client writes it).

        Sparkplug 3.0: it is the first message of every MQTT session the host establishes
        (tck-id-operational-behavior-primary-application-state-with-multiple-servers-state), after the
        subscriptions (restored by the client). The first connect's is published by ``run`` once subscribed.
        Once the host is stopping it is the offline STATE: the client's birth replaces the STATE publishes
        still unacknowledged (the stop's offline one among them), and the clean DISCONNECT after it discards
        the will, so an online birth would stay retained for a host that is gone.
        """
        payload = self._offline_state() if self._stopping else self._state.online()
        return Message(self._state_topic, payload, qos=1, retain=True)

    def _offline_state(self) -> bytes:
        """The stop's offline STATE, stamped now.

        The time the disconnect occurs (tck-id-host-topic-phid-death-payload-disconnect-clean), and never
        older than the online STATE asserted last, so edge nodes honour it.
        """
        return encode_state(False, max(now_ms(), self._state.timestamp_ms))

    async def run(self) -> None:
        """Publish online STATE, then process messages and publish health until cancelled."""
        client = self._require_client()
        await client.publish(self._state_topic, self._state.online(), qos=1, retain=True)
        self._ready.set()
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(
                publish_health(client, self.health_topic, self._health, interval_s=self._settings.health_interval_s),
                name="uns.host.health",
            )
            tasks.create_task(self._message_loop(client), name="uns.host.messages")
            if self._worker is not None:
                tasks.create_task(self._worker.run(self._sender(client)), name="uns.host.worker")
            if isinstance(self.core, HostCore):
                tasks.create_task(self._ticks(self.core, client), name="uns.host.ticks")

    async def _ticks(self, core: HostCore, client: PubSub) -> None:
        """Publish what the core makes by time alone (``HostCore.tick``; in a worker process, the worker ticks).

        Asleep until the core's ``due_ms``, or until a message changes it (``_message_loop`` sets ``_due``):
        with nothing due the task never wakes (an idle hub's wake-ups, docs/benchmarks.md).
        """
        send = self._sender(client)
        while True:
            due, now = core.due_ms, now_ms()
            if due is not None and due <= now:
                if out := core.tick(now):  # tick takes everything due by now: due_ms moves on
                    await send(out)
                continue
            self._tick_at = due
            self._due.clear()
            await set_within(self._due, None if due is None else (due - now) / 1000)

    async def wait_ready(self) -> None:
        """Until the online STATE is published."""
        await self._ready.wait()

    @staticmethod
    def _sender(client: PubSub) -> Callable[[Sequence[Message]], Awaitable[None]]:
        if isinstance(client, MqttClient):
            # QoS 1 republishes stay in flight (up to host.republish_window) while the next
            # message is read: one broker round trip per DDATA was the throughput limit
            return functools.partial(client.publish_many, wait=False)
        return client.publish_many

    async def _message_loop(self, client: PubSub) -> None:
        core, worker, due, status_prefix = self.core, self._worker, self._due, self._status_prefix
        inline = core if isinstance(core, HostCore) else None
        handle = inline.handle if inline is not None else None
        send = self._sender(client)
        async for message in client.messages():
            topic = message.topic
            if topic == BROKER_DROPPED_TOPIC:
                self._on_broker_dropped(message.payload)
                continue
            if topic.startswith(status_prefix):
                continue  # a retained node status read at start, delivered before the unsubscribe took
            if topic.startswith(_STATE_PREFIX):
                if topic == self._state_topic and (state := self._state.on_message(message.payload, now_ms())):
                    await client.publish(self._state_topic, state, qos=1, retain=True)
                continue
            if worker is not None:
                worker.put(topic, message.payload, now_ms())
                if worker.full:
                    await worker.room()  # the worker is behind: read no more (the broker holds the senders back)
                continue
            if handle is not None and inline is not None:
                out = handle(topic, message.payload, now_ms())
                if inline.due_ms != self._tick_at:
                    due.set()  # something is due sooner, or no longer: the tick task looks again
                if out:
                    await send(out)

    def _on_broker_dropped(self, payload: bytes) -> None:
        try:
            dropped = int(payload)
        except ValueError:
            log.warning("%s: not a count: %r", BROKER_DROPPED_TOPIC, payload[:40])
            return
        before = self.broker_dropped
        self.broker_dropped = dropped
        if before is not None and dropped > before:
            log.warning(
                "the broker dropped %d publishes (%d since it started): a subscriber's queue or in-flight"
                " limit was reached (see docs/deployment.md)",
                dropped - before,
                dropped,
            )

    def republish_health(self) -> dict[str, object]:
        """The republish path's state for the health topic; logs each change of state once."""
        client = self._require_client()
        if not isinstance(client, MqttClient):
            return {"state": self.lag.state.value}  # in-process: a call into the broker, nothing awaited
        waited = self._drops_since_s
        if self.broker_dropped is None and waited is not None and time.monotonic() - waited > _BROKER_DROPPED_WAIT_S:
            # Mosquitto grants a $SYS subscription its ACL denies, then sends nothing; other brokers lack it
            log.info("no drop count from the broker on %s: health reports broker_dropped null", BROKER_DROPPED_TOPIC)
            self._drops_since_s = None
        stats = client.stats
        changed = self.lag.update(
            now_s=time.monotonic(),
            messages=self.core.counters.messages,
            backlog=stats.queued + (self._worker.backlog if self._worker is not None else 0),
            oldest_unacked_s=stats.oldest_unacked_s,
        )
        if changed is not None:
            detail = (
                f"{stats.queued} received messages waiting, {stats.inflight} republishes unacknowledged"
                f" (oldest {stats.oldest_unacked_s:.1f} s), {stats.dropped} dropped"
            )
            level = logging.INFO if changed is Lag.ok else logging.WARNING
            log.log(level, "Sparkplug host %s republishing is %s: %s", self._settings.host_id, changed.value, detail)
        return {
            "state": self.lag.state.value,
            "backlog": stats.queued,
            "inflight": stats.inflight,
            "oldest_unacked_s": round(stats.oldest_unacked_s, 3),
            "dropped": stats.dropped,
            "read_pauses": stats.read_pauses,
        }

    def _health(self) -> dict[str, object]:
        return {
            "host_id": self._settings.host_id,
            **self.core.health(),
            "republish": self.republish_health(),
            "broker_dropped": self.broker_dropped,
        }

    def _require_client(self) -> PubSub:
        if self._client is None:
            raise RuntimeError("SparkplugHost.run() needs `async with host:` first")
        return self._client
