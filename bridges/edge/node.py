"""The async EdgeNode: one Source published as a Sparkplug B 3.0 edge node, with store-and-forward on disk.

Reconnecting: the will (NDEATH) carries the bdSeq of its connection, so each MQTT connection is one
Sparkplug session. The node opens its client with ``reconnect=False`` and waits on
``PubSub.disconnected()``: when the connection drops it leaves the client's context and opens a new
client with the next bdSeq, backing off with jitter up to a cap (``uns.backoff``). While no
session is live every reading goes to the disk buffer, so nothing produced while the broker was away
is lost.

What was already published is not safe yet either: at QoS 0 a socket the broker just dropped eats
it, and a hub killed with kill -9 loses what its historian had not committed. So the node keeps a
replay window (``bridges.edge.journal``): when a session ends by connection loss, what it sent in
the last ``replay_window_s`` goes into the buffer ahead of everything buffered after the loss, and
is sent again as ``is_historical`` after the births. The journal is on disk, so a node killed itself
replays it on start; a deliberate stop empties it.

After the births the buffer is replayed in chunks, and a reading taken meanwhile goes out live between
them (Sparkplug's ``is_historical`` marks a value that is not current; one read after the births is),
so the host's live value never waits for the backlog. It is journaled as any live send, never
buffered: a connection lost mid-replay puts the window (replayed and live samples alike) ahead of the
backlog not yet sent, and consumers dedupe what they already have. A device's death during the replay goes
out ahead of the backlog too, after that device's own history still queued (a host takes no DATA of a dead
device), sent in steps between which readings get in as between chunks.

The primary host going offline ends the session too (Sparkplug 3.0): NDEATH, DISCONNECT, reconnect,
then wait for its STATE to be online again before the births.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Self

from bridges.edge.backlog import Backlog
from bridges.edge.buffer import BufferedBatch, DiskBuffer, load_bd_seq, save_bd_seq
from bridges.edge.commands import Rebirth, Refused, Write
from bridges.edge.health import EdgeHealth, EdgeStats
from bridges.edge.journal import Journal
from bridges.edge.session import EdgeSession
from bridges.source import DeviceDown, Samples, Source
from model.bridges.common import EdgeNodeConfig
from uns.backoff import Backoff
from uns.clock import now_ms
from uns.connect import ClientFactory
from uns.errors import BridgeError, BrokerError, SparkplugError
from uns.mqtt.types import Message, PubSub
from uns.sparkplug import NAMESPACE, MessageType, SparkplugTopic, decode_state
from uns.sparkplug.node_control import next_seq

__all__ = ["EdgeNode", "EdgeStats"]  # EdgeStats: from bridges.edge.health, re-exported

log = logging.getLogger(__name__)

_BACKOFF_FIRST_S = 0.2
_BACKOFF_CAP_S = 5.0
_DEATH_TIMEOUT_S = 2.0


class EdgeNode:
    """A Sparkplug B edge node that publishes what one ``Source`` reads.

    ``async with EdgeNode(...) as node:`` enters the source and opens the buffer; ``await node.run()``
    connects, births, publishes and reconnects until cancelled, then publishes NDEATH.

    Args:
        config: the edge node section of the bridge's config.
        node_id: the Sparkplug edge node id (``BridgeBase.node_id``).
        source: the machines; the EdgeNode enters and exits it.
        clients: opens MQTT clients (``uns.connect.network_clients`` or ``local_clients``).
        data_dir: the hub's data directory; the buffer defaults to ``data_dir/bridges/<node_id>``.
    """

    def __init__(
        self, *, config: EdgeNodeConfig, node_id: str, source: Source, clients: ClientFactory, data_dir: Path
    ) -> None:
        self.name = node_id
        self._config = config
        self._source = source
        self._clients = clients
        self._dir = config.buffer_dir or data_dir / "bridges" / node_id
        self._buffer = DiskBuffer(directory=self._dir, max_bytes=config.buffer_max_bytes, name=node_id)
        # the window ends up in the buffer, so the buffer's cap is all the journal can usefully hold
        self._journal = Journal(
            directory=self._dir / "journal",
            window_ms=round(config.replay_window_s * 1000),
            max_bytes=config.buffer_max_bytes,
            name=node_id,
        )
        self._window_due: int | None = None  # when the connection was lost, until the window is put back
        self._session: EdgeSession | None = None
        self._lock = asyncio.Lock()
        self._reading = asyncio.Event()  # set on every reading, for the births to wait on
        self._writes: asyncio.Queue[Write] = asyncio.Queue()
        self._client: PubSub | None = None
        self._born = False  # births out on this connection: readings go out live
        self._live = False  # ... and the buffer replayed: a device's death needs no history sent ahead of it
        self._replay: Backlog | None = None
        self._ended = asyncio.Event()
        self._end_reason = ""
        self._host_online = asyncio.Event()
        self._host_ts = -1
        self._bd_seq: int | None = None
        self._health = EdgeHealth(name=node_id, health_interval_s=config.health_interval_s, buffer=self._buffer)
        self._c = self._health.counts

    # -- public ---------------------------------------------------------------------------------

    @property
    def online(self) -> bool:
        """True while births are out on a live connection."""
        return self._born

    @property
    def stats(self) -> EdgeStats:
        """Counters so far."""
        return self._health.stats(online=self._born, bd_seq=self._bd_seq)

    async def __aenter__(self) -> Self:
        await self._source.__aenter__()
        try:
            self._session = EdgeSession(
                group=self._config.group,
                node_id=self.name,
                tags=self._source.tags(),
                heartbeat_ms=round(self._config.heartbeat_s * 1000),
                transient=self._config.transient_tags,
            )
            self._replay = Backlog(core=self._session, buffer=self._buffer, journal=self._journal, health=self._health)
            for pattern in self._session.transient_unmatched:
                log.warning("edge %s: edge.transient_tags %r matches no tag", self.name, pattern)
            self._buffer.__enter__()
            self._bd_seq = load_bd_seq(self._dir)
            self._journal.__enter__()
            self._window_due = now_ms()  # a journal left on disk means the last run was killed
            self._put_back_window("found on start (the last run did not stop cleanly)")
        except BaseException:
            self._journal.close()
            self._buffer.close()
            await self._source.__aexit__(None, None, None)
            raise
        log.info(
            "edge %s ready: group %s, %d devices, buffer %s",
            self.name,
            self._config.group,
            len(self._session.devices),
            self._dir,
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        try:
            if self._window_due is not None:  # stopped before a lost connection's window was put back
                self._put_back_window("connection lost")
            elif exc_info[0] is None or exc_info[0] is asyncio.CancelledError:
                self._journal.clear()  # a deliberate stop: what was sent reached a live hub
            self._journal.close()
        finally:
            self._buffer.close()
            await self._source.__aexit__(*exc_info)

    async def run(self) -> None:
        """Read the source and publish until cancelled."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._read_source(), name=f"edge[{self.name}].source")
            tg.create_task(self._write_commands(), name=f"edge[{self.name}].writes")
            tg.create_task(self._tick(), name=f"edge[{self.name}].health")
            tg.create_task(self._connections(), name=f"edge[{self.name}].mqtt")

    # -- connections ----------------------------------------------------------------------------

    @property
    def _core(self) -> EdgeSession:
        if self._session is None:
            raise BridgeError(self.name, "edge", "not entered: use `async with EdgeNode(...)`")
        return self._session

    @property
    def _backlog(self) -> Backlog:
        if self._replay is None:
            raise BridgeError(self.name, "edge", "not entered: use `async with EdgeNode(...)`")
        return self._replay

    @staticmethod
    def _usable(client: PubSub) -> bool:
        # ``MqttClient`` says whether its socket is up; an in-process client has no such attribute. A plain
        # getattr: a runtime_checkable Protocol's isinstance cost ~15 us at every send
        return bool(getattr(client, "connected", True))

    def _end(self, reason: str, *, lost: bool = True) -> None:
        """End the current session now: from here on every reading goes to the buffer.

        ``lost``: the connection is gone, so what was sent recently may not have been stored; the
        replay window is put back into the buffer before the next reading is buffered.
        """
        if not self._ended.is_set():
            self._end_reason = reason
            self._ended.set()
            if lost and self._journal.enabled and self._window_due is None:
                self._window_due = now_ms()
        self._born = self._live = False

    def _put_back_window(self, why: str) -> None:
        """If a window is due, move it from the journal to the head of the buffer (call with the lock held)."""
        due, self._window_due = self._window_due, None
        if due is None:
            return
        window = self._journal.take(now_ms=due)
        if not window.samples:
            return
        self._buffer.prepend(window.records, window.samples)
        self._c["replayed_window"] += window.samples
        self._c["window_replays"] += 1
        log.info(
            "edge %s: %s: %d samples sent in the last %.1f s go out again as historical "
            "(the hub may not have stored them)",
            self.name,
            why,
            window.samples,
            self._config.replay_window_s,
        )

    async def _connections(self) -> None:
        backoff = Backoff(min_s=_BACKOFF_FIRST_S, max_s=_BACKOFF_CAP_S)
        stopping = False
        while not stopping:
            sent: list[int] = []  # the bdSeq of the CONNECT written (an in-process client writes none)
            self._ended, self._end_reason = asyncio.Event(), ""
            self._host_online.clear()
            client_id = f"spb-{self._config.group}-{self.name}"
            try:
                async with self._clients(
                    client_id=client_id,
                    will=functools.partial(self._will, sent),
                    keepalive_s=self._config.keepalive_s,
                    reconnect=False,
                ) as client:
                    bd_seq = sent[-1] if sent else self._next_bd_seq()
                    self._c["connects"] += 1
                    backoff.succeeded()
                    log.info("edge %s connected as %s, bdSeq %d", self.name, client_id, bd_seq)
                    try:
                        await self._serve(client, bd_seq)
                    except asyncio.CancelledError:
                        await self._say_death(client, bd_seq, "stopping")
                        stopping = self._uncancel()
                    else:
                        await self._say_death(client, bd_seq, self._end_reason)
            except BrokerError as exc:
                log.warning("edge %s: broker: %s; retrying", self.name, exc)
            finally:
                self._end(self._end_reason or "closed", lost=not stopping)
                self._client = None
            log.info("edge %s session bdSeq %s ended: %s", self.name, self._bd_seq, self._end_reason or "broker error")
            if stopping:
                raise asyncio.CancelledError  # the cancel taken back in _uncancel, now that the socket is closed
            async with self._lock:
                self._put_back_window(self._end_reason or "broker error")
            await asyncio.sleep(backoff.failed())

    def _next_bd_seq(self) -> int:
        """The bdSeq of a new CONNECT: one more than the last (0 at the very first), saved before it is used."""
        bd_seq = 0 if self._bd_seq is None else next_seq(self._bd_seq)
        self._bd_seq = bd_seq
        save_bd_seq(self._dir, bd_seq)
        return bd_seq

    def _will(self, sent: list[int]) -> Message:
        """The NDEATH will of the CONNECT about to be written: its own bdSeq.

        Called by the client right before it writes CONNECT, so the count follows CONNECT packets
        (tck-id-topics-nbirth-bdseq-increment): one the broker refuses or never answers used its bdSeq too,
        and a broker that cannot be reached (no CONNECT written) uses none.
        """
        bd_seq = self._next_bd_seq()
        sent.append(bd_seq)
        return self._core.death(bd_seq=bd_seq, now_ms=now_ms())

    @staticmethod
    def _uncancel() -> bool:
        """Take back a pending cancel so leaving the client closes its socket; the caller raises it again.

        ``MqttClient.__aexit__`` re-raises a cancel of its caller before it closes the connection,
        which would leak the socket on every stop.
        """
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
        return True

    async def _say_death(self, client: PubSub, bd_seq: int, reason: str) -> None:
        """A deliberate end: publish NDEATH ourselves (a clean DISCONNECT discards the will).

        Births out or not: an edge node that disconnects intentionally MUST publish NDEATH before its
        DISCONNECT (tck-id-operational-behavior-edge-node-intentional-disconnect-ndeath,
        tck-id-payloads-ndeath-will-message-publisher-disconnect-mqtt311), also while it still waits for
        its primary host or its first readings; a host that saw no birth of this bdSeq ignores it.
        """
        self._born = self._live = False
        if not self._usable(client):
            return
        try:
            async with asyncio.timeout(_DEATH_TIMEOUT_S):
                msg = self._core.death(bd_seq=bd_seq, now_ms=now_ms())
                await client.publish(msg.topic, msg.payload, qos=1)
            self._c["messages"] += 1
            log.info("edge %s published NDEATH bdSeq %d (%s)", self.name, bd_seq, reason)
        except (TimeoutError, BrokerError) as exc:
            log.warning("edge %s: NDEATH bdSeq %d not confirmed: %s", self.name, bd_seq, exc or "timeout")

    async def _serve(self, client: PubSub, bd_seq: int) -> None:
        core = self._core
        filters = [core.topic(MessageType.NCMD), f"{NAMESPACE}/{self._config.group}/DCMD/{self.name}/+"]
        host = self._config.primary_host_id
        if host is not None:
            filters.append(str(SparkplugTopic.state(host)))
        else:
            self._host_online.set()
        await client.subscribe(filters, qos=1)
        self._client = client
        async with asyncio.TaskGroup() as tg:
            tasks = [
                tg.create_task(self._read_commands(client, bd_seq), name=f"edge[{self.name}].commands"),
                tg.create_task(self._watch(client), name=f"edge[{self.name}].watch"),
                tg.create_task(self._birth_and_replay(client, bd_seq), name=f"edge[{self.name}].birth"),
            ]
            await self._ended.wait()
            for task in tasks:
                task.cancel()

    async def _watch(self, client: PubSub) -> None:
        reason = await client.disconnected()
        self._end(f"connection lost: {reason}")

    async def _send(self, client: PubSub, messages: Sequence[Message]) -> bool:
        """Publish in order (call with the lock held); False, and the session ended, if the link is gone."""
        if not messages:
            return True
        if not self._usable(client):
            self._end("connection lost")
            return False
        try:
            await client.publish_many(messages)
        except BrokerError as exc:
            self._end(f"connection lost: {exc}")
            return False
        self._c["messages"] += len(messages)
        return True

    async def _first_readings(self) -> None:
        """Hold the births briefly until every device has been read once.

        A DBIRTH sent before the first reading carries nulls stamped with the birth time, and the
        reading that follows is then older than the birth: consumers would keep the null.
        """
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._config.first_reading_wait_s):
                while self._core.awaiting_first_reading():
                    self._reading.clear()
                    await self._reading.wait()

    async def _birth_and_replay(self, client: PubSub, bd_seq: int) -> None:
        if not self._host_online.is_set():
            log.info("edge %s waiting for primary host %s to be online", self.name, self._config.primary_host_id)
        await self._host_online.wait()
        await self._first_readings()
        async with self._lock:
            births = self._core.births(
                bd_seq=bd_seq, now_ms=now_ms(), health=self._health.metrics(self._core, now_ms=now_ms())
            )
            if not await self._send(client, births):
                return
            self._backlog.restart()
            self._born = True
            self._c["births"] += 1
        log.info("edge %s born: NBIRTH bdSeq %d and %d DBIRTH", self.name, bd_seq, len(births) - 1)
        replayed = 0
        while True:
            async with self._lock:
                if not self._born:
                    return
                now = now_ms()
                step = self._backlog.next(now_ms=now)
                if step is None:
                    self._live = await self._send(client, self._core.settle(now_ms=now))
                    break
                if not await self._send(client, step.messages):
                    return
                step.sent()
                replayed += step.samples
            await asyncio.sleep(0)  # let readings in (the lock is fair): they go out live between the steps
        if replayed:
            log.info("edge %s sent %d buffered samples as historical; now live", self.name, replayed)

    # -- host state and commands ----------------------------------------------------------------

    async def _read_commands(self, client: PubSub, bd_seq: int) -> None:
        try:
            async for message in client.messages():
                try:
                    topic = SparkplugTopic.from_str(message.topic)
                    if topic.message_type is MessageType.STATE:
                        self._on_state(message)
                    else:
                        await self._on_command(client, bd_seq, message)
                except SparkplugError as exc:
                    self._health.count_problem(f"bad message on {message.topic}: {exc.reason}")
                    self._c["refused"] += 1
        except BrokerError as exc:
            self._end(f"connection lost: {exc}")

    def _on_state(self, message: Message) -> None:
        text = message.payload.strip()
        if text in (b"ONLINE", b"OFFLINE"):  # Sparkplug 2.x hosts
            online, stamp = text == b"ONLINE", self._host_ts
        else:
            online, stamp = decode_state(message.payload, topic=message.topic)
        if stamp < self._host_ts:
            log.info("edge %s: ignoring an older STATE on %s", self.name, message.topic)
            return
        self._host_ts = stamp
        if online:
            self._host_online.set()
            return
        self._host_online.clear()
        if self._born:
            log.warning("edge %s: primary host %s went offline: buffering", self.name, self._config.primary_host_id)
            # the host may have died before handling (or storing) what we sent last: replay the window too
            self._end("host offline", lost=True)

    async def _on_command(self, client: PubSub, bd_seq: int, message: Message) -> None:
        for command in self._core.commands(message):
            if isinstance(command, Rebirth):
                async with self._lock:
                    if not self._born:
                        continue  # the births come anyway once the host is online
                    log.info("edge %s: Rebirth requested", self.name)
                    # a device that died during the replay is born again: its history still queued and its DDEATH
                    # follow (the backlog goes on burying it), as a host holds it online until that DDEATH
                    owed = [device for device in self._core.devices if self._backlog.dying(device)]
                    if await self._send(
                        client,
                        self._core.births(
                            bd_seq=bd_seq,
                            now_ms=now_ms(),
                            health=self._health.metrics(self._core, now_ms=now_ms()),
                            owed=owed,
                        ),
                    ):
                        self._c["births"] += 1
            elif isinstance(command, Write):
                self._writes.put_nowait(command)
            elif isinstance(command, Refused):
                self._c["refused"] += 1
                self._health.count_problem(f"command refused on {message.topic}: {command.reason}")

    async def _write_commands(self) -> None:
        while True:
            write = await self._writes.get()
            try:
                await self._source.write(write.device, write.name, write.value)
            except BridgeError as exc:
                self._c["errors"] += 1
                log.warning(
                    "edge %s: write of %r to device %s metric %s failed: %s",
                    self.name,
                    write.value,
                    write.device,
                    write.name,
                    exc,
                )
                continue
            self._c["writes"] += 1
            log.info("edge %s: wrote %r to device %s metric %s", self.name, write.value, write.device, write.name)

    # -- readings -------------------------------------------------------------------------------

    async def _read_source(self) -> None:
        async for event in self._source.events():
            if isinstance(event, Samples):
                await self._on_samples(event)
            elif isinstance(event, DeviceDown):
                await self._on_down(event)

    async def _on_samples(self, samples: Samples) -> None:
        core = self._core
        # accepted under the lock: a reading is either in the births being built, or stamped and sent after them
        async with self._lock:
            now = now_ms()
            accepted = core.accept(samples, now_ms=now)
            self._reading.set()
            self._c["samples"] += accepted.samples
            self._health.reading(samples.samples, accepted.problems, now_ms=now)
            # born: a reading is current, so it goes out live at once, also while the buffer is replayed (read after
            # the births, it is newer than all of the buffer): the host's live value is the newest reading
            client = self._client if self._born else None
            if not accepted.metrics:
                if client is not None:
                    rebirth = core.birth_after_outage(samples.device, now_ms=now)
                    if rebirth:
                        await self._send(client, rebirth)
                return
            out = core.data(samples.device, accepted.metrics, now_ms=now) if client is not None else []
            lasting = core.lasting(samples.device, accepted.metrics)  # transient tags: live only, never kept
            batch = BufferedBatch(samples.device, lasting)
            if client is not None and out and await self._send(client, out):
                self._c["sent"] += len(accepted.metrics)
                if lasting:
                    self._journal.record(batch, now_ms=now)
                return
            self._put_back_window(self._end_reason or "connection lost")  # ahead of what is buffered from now on
            if lasting:
                self._buffer.append(batch)
                self._c["buffered"] += len(lasting)

    async def _on_down(self, event: DeviceDown) -> None:
        core = self._core
        if not core.is_down(event.device):
            if event.awaited:  # not up yet since the source started: expected, not lost
                log.info("edge %s: device %s not up yet: %s", self.name, event.device, event.reason)
            else:
                log.warning("edge %s: device %s down: %s", self.name, event.device, event.reason)
        async with self._lock:
            client = self._client if self._born else None
            # during the replay its history still queued goes first (a host takes no DATA after a DDEATH): the
            # backlog sends it, then its DDEATH, ahead of the rest
            replaying = client is not None and not self._live
            live = client is not None and not replaying and self._usable(client)
            death = core.device_down(event.device, now_ms=now_ms(), publish=live)
            if replaying and self._backlog.dying(event.device):
                self._backlog.bury(event.device)
            if death is not None and client is not None:
                await self._send(client, [death])

    # -- health ---------------------------------------------------------------------------------

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self._config.health_interval_s)
            async with self._lock:
                client = self._client
                if not self._born or client is None:  # health and heartbeats are live data: also during a replay
                    continue
                now = now_ms()
                health = self._core.health(self._health.metrics(self._core, now_ms=now), now_ms=now)
                out = ([health] if health is not None else []) + self._core.heartbeat(now_ms=now)
                await self._send(client, out)
