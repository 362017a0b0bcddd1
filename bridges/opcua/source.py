"""OpcUaSource: subscriptions and polling against one OPC UA server, with liveness, reconnect and writes."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Sequence
from typing import Final, Self

from asyncua import ua
from asyncua.client.client import Client
from asyncua.client.ua_client import UaClientState
from asyncua.common.subscription import DataChangeEvent, StatusChangeEvent, Subscription
from asyncua.ua.attribute_ids import AttributeIds

from bridges.opcua.connection import CONNECTION_ERRORS, close_client, open_client, subscription_parameters
from bridges.opcua.mapping import REVOKED_CODES, converter_for, epoch_ms, quality_of, status_name, to_variant
from bridges.opcua.tags import OpcUaTag, parse_node_id, resolve_tags, static_tags
from bridges.source import DeviceDown, PollClock, Sample, Samples, SourceEvent, TagSpec
from model.bridges import OpcUaBridgeConfig
from model.envelope import Quality
from uns.backoff import Backoff
from uns.clock import now_ms
from uns.errors import BridgeError, ConfigError, DeviceUnreachable
from uns.sparkplug import MetricValue

__all__ = ["OpcUaSource", "OpcUaStats"]

log = logging.getLogger(__name__)

_BACKOFF_FIRST_S: Final = 0.5
_BACKOFF_CAP_S: Final = 30.0
_STABLE_S: Final = 30.0
"""A connection that lasted this long resets the backoff; a shorter one keeps growing it."""
_QUEUE_MAX: Final = 200_000
"""Notifications asyncua may hold for us: a few seconds of 10,000 tags at 100 ms."""
_READ_CHUNK: Final = 1000


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class OpcUaStats:
    """Counters of one OPC UA bridge, for its health metrics."""

    connected: bool
    connects: int
    """Sessions opened (the first one and every reconnect)."""
    losses: int
    """Connections lost (closed by the server, or no sign of life within ``timeout_s``)."""
    notifications: int
    """Data-change notifications received."""
    reads: int
    """Poll cycles completed."""
    revoked: tuple[str, ...]
    """Node ids the server currently says it does not know."""


class _Lost(Exception):
    """The connection is gone; the message says why."""


class OpcUaSource:
    """The OPC UA bridge's ``Source``: one server, its devices' nodes subscribed or polled.

    Example:
        ```python
        async with OpcUaSource(config=config) as source:
            specs = source.tags()
            async for event in source.events():
                ...
        ```
    """

    def __init__(self, *, config: OpcUaBridgeConfig) -> None:
        self.name = config.name
        self._config = config
        self._check_node_ids()
        self._tags: list[OpcUaTag] = []
        self._by_name: dict[tuple[str, str], OpcUaTag] = {}
        self._by_node: dict[ua.NodeId, list[OpcUaTag]] = {}
        self._client: Client | None = None
        self._sub: Subscription | None = None
        self._events: asyncio.Queue[SourceEvent | BaseException] = asyncio.Queue()
        self._pending: dict[str, list[Sample]] = {}
        self._flush_scheduled = False
        self._down = False
        self._stopping = False
        self._revoked: set[ua.NodeId] = set()
        self._unconvertible: set[ua.NodeId] = set()
        self._last_alive = 0.0
        self._connects = 0
        self._losses = 0
        self._notifications = 0
        self._reads = 0

    def _check_node_ids(self) -> None:
        for d, device in enumerate(self._config.devices):
            fields = [(f"nodes[{n}].node_id", node.node_id) for n, node in enumerate(device.nodes)]
            fields += [(f"browse[{b}].root", root.root) for b, root in enumerate(device.browse)]
            for path, text in fields:
                try:
                    parse_node_id(text)
                except ValueError as exc:
                    reason = "not an OPC UA node id (ns=2;s=Name or ns=2;i=1001)"
                    raise ConfigError(source=f"bridge {self.name}", path=f"devices[{d}].{path}", reason=reason,
                                      value=text) from exc  # fmt: skip

    @property
    def stats(self) -> OpcUaStats:
        """Counters since the source was created."""
        return OpcUaStats(
            connected=self._client is not None,
            connects=self._connects,
            losses=self._losses,
            notifications=self._notifications,
            reads=self._reads,
            revoked=tuple(sorted(node_id.to_string() for node_id in self._revoked)),
        )

    async def __aenter__(self) -> Self:
        """Connect and resolve the tags; a server that is down is retried later when the config alone names every tag.

        Raises:
            DeviceUnreachable: the server is down and the tags cannot be known without it (browse
                roots, or nodes without a configured datatype).
        """
        config = self._config
        try:
            client = await open_client(config)
        except DeviceUnreachable as exc:
            tags = static_tags(config)
            if tags is None:
                why = f"{exc.reason}; the server must answer at start to learn the tags"
                raise DeviceUnreachable(self.name, config.endpoint, why) from exc
            log.warning("opcua bridge %s: %s down at start (%s); retrying", self.name, config.endpoint, exc.reason)
            self._set_tags(tags)
            self._report_down(exc.reason)
            return self
        try:
            async with asyncio.timeout(config.timeout_s * 4):
                tags = await resolve_tags(client, config)
        except CONNECTION_ERRORS as exc:
            await close_client(client, timeout_s=config.timeout_s)
            raise DeviceUnreachable(self.name, config.endpoint, f"browsing the tags failed: {exc!r}") from exc
        self._set_tags(tags)
        self._client = client
        self._connects += 1
        log.info("opcua bridge %s: connected to %s; %d tags", self.name, config.endpoint, len(tags))
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Close the session (the server deletes our subscription with it)."""
        client, self._client = self._client, None
        if client is not None:
            await close_client(client, timeout_s=self._config.timeout_s)

    def _set_tags(self, tags: Sequence[OpcUaTag]) -> None:
        self._tags = list(tags)
        self._by_name = {(tag.spec.device, tag.spec.name): tag for tag in tags}
        self._by_node = {}
        for tag in tags:
            self._by_node.setdefault(tag.node_id, []).append(tag)

    def tags(self) -> Sequence[TagSpec]:
        """Every tag of every device, in config order (configured nodes, then browsed ones)."""
        return [tag.spec for tag in self._tags]

    async def events(self) -> AsyncIterator[SourceEvent]:
        """Samples and device failures until cancelled; reconnects on its own."""
        self._stopping = False
        runner = asyncio.create_task(self._run(), name=f"uns.bridge.opcua[{self.name}].run")
        runner.add_done_callback(self._runner_done)
        try:
            while True:
                item = await self._events.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self._stopping = True
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner

    def _runner_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled():
            self._events.put_nowait(task.exception() or RuntimeError(f"opcua bridge {self.name}: runner stopped"))

    async def write(self, device: str, name: str, value: MetricValue) -> None:
        """Write a DCMD value to the node, as the node's own variant type.

        Raises:
            BridgeError: unknown or read-only metric, a value that does not fit the node's type, or a
                write the server refused; the message names the node id.
            DeviceUnreachable: not connected, or the server did not answer.
        """
        config = self._config
        tag = self._by_name.get((device, name))
        if tag is None:
            raise BridgeError(self.name, config.endpoint, f"device {device} has no metric {name!r}")
        if not tag.spec.writable:
            raise BridgeError(self.name, config.endpoint, f"{device}/{name} ({tag.node}) is not writable in the config")
        try:
            variant = to_variant(value, tag.variant)
        except ValueError as exc:
            raise BridgeError(self.name, config.endpoint, f"write to {tag.node}: {exc}") from exc
        client = self._client
        if client is None:
            raise DeviceUnreachable(self.name, config.endpoint, f"write to {tag.node}: not connected")
        try:
            async with asyncio.timeout(config.timeout_s):
                (code,) = await client.uaclient.write_attributes([tag.node_id], [ua.DataValue(Value=variant)])
        except CONNECTION_ERRORS as exc:
            raise DeviceUnreachable(self.name, config.endpoint, f"write to {tag.node}: {exc!r}") from exc
        if not code.is_good():
            raise BridgeError(self.name, config.endpoint, f"write to {tag.node} refused: {status_name(code.value)}")
        log.debug("opcua bridge %s: wrote %r to %s", self.name, value, tag.node)

    # --- connection lifecycle -------------------------------------------------------------------

    async def _run(self) -> None:
        backoff = Backoff(min_s=_BACKOFF_FIRST_S, max_s=_BACKOFF_CAP_S)
        while True:
            client = self._client
            if client is None:
                try:
                    client = await open_client(self._config)
                except DeviceUnreachable as exc:
                    self._report_down(exc.reason)
                    await asyncio.sleep(backoff.failed())
                    continue
                self._client = client
                self._connects += 1
                log.info("opcua bridge %s: reconnected to %s", self.name, self._config.endpoint)
            started = time.monotonic()
            reason = await self._serve(client)
            if self._stopping:
                # the connection was lost in the step the stop came: Python 3.11's TaskGroup raised the _Lost,
                # not the cancel, so stop here (the client is left to __aexit__, as on any stop)
                raise asyncio.CancelledError
            self._client = None
            self._losses += 1
            log.warning("opcua bridge %s: connection to %s lost: %s; reconnecting", self.name,
                        self._config.endpoint, reason)  # fmt: skip
            self._report_down(reason)  # first: a hung server takes timeout_s more to fail the CloseSession
            await close_client(client, timeout_s=self._config.timeout_s)
            if time.monotonic() - started >= _STABLE_S:
                backoff.succeeded()  # a connection that held counts as a success: start over from the first delay
            await asyncio.sleep(backoff.failed())

    def _report_down(self, reason: str) -> None:
        """``DeviceDown`` for every device, once per outage, after any samples still pending."""
        self._flush()
        if self._down:
            return
        self._down = True
        for device in self._config.devices:
            self._events.put_nowait(DeviceDown(device=device.id, reason=reason))

    async def _serve(self, client: Client) -> str:
        """Subscribe, poll and watch until the connection is lost; returns why."""
        self._down = False
        self._last_alive = time.monotonic()
        subscribed = [tags[0] for tags in self._by_node.values() if tags[0].mode == "subscribe"]
        polled = [tags[0] for tags in self._by_node.values() if tags[0].mode == "poll"]
        reason = "stopped"
        try:
            async with asyncio.TaskGroup() as group:
                prefix = f"uns.bridge.opcua[{self.name}]"
                group.create_task(self._guard(self._watch(client)), name=f"{prefix}.watch")
                if subscribed:
                    group.create_task(self._guard(self._subscribe(client, subscribed)), name=f"{prefix}.subscribe")
                if polled:
                    group.create_task(self._guard(self._poll(client, polled)), name=f"{prefix}.poll")
        except* _Lost as lost:
            reason = str(lost.exceptions[0])
        finally:
            self._sub = None
        return reason

    @staticmethod
    async def _guard(work: Awaitable[None]) -> None:
        try:
            await work
        except CONNECTION_ERRORS as exc:
            raise _Lost(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__) from exc

    async def _watch(self, client: Client) -> None:
        """Raise ``_Lost`` when the socket closes, or when nothing arrives and a probe read fails.

        Notifications, keep-alives and poll replies all prove the server alive; only after
        ``timeout_s`` without any of them does a ServerState read (itself allowed ``timeout_s``) decide.
        It sleeps until the client's state changes or the quiet window would end, not on a fixed tick:
        on a live connection it wakes about once per window.
        """
        timeout = self._config.timeout_s
        async with client.uaclient.subscribe_state() as states:
            while True:
                if client.uaclient.state is not UaClientState.CONNECTED:
                    raise _Lost("connection closed")
                idle = time.monotonic() - self._alive_at()
                if idle < timeout:
                    # asyncio.timeout, not next_change(timeout): that is 3.11's wait_for, which returns a state
                    # change arriving with a cancel and swallows the cancel (the source would run on after a stop)
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(timeout - idle):
                            await states.next_change()
                    continue
                try:
                    async with asyncio.timeout(timeout):
                        await client.nodes.server_state.read_value()
                except CONNECTION_ERRORS as exc:
                    raise _Lost(f"no notification, keep-alive or reply for {idle + timeout:.1f} s") from exc
                self._last_alive = time.monotonic()

    def _alive_at(self) -> float:
        """When the server last showed it is alive: a publish (data or keep-alive), a poll reply or a probe."""
        last = self._last_alive
        if self._sub is not None and self._sub.last_publish_at is not None:
            last = max(last, self._sub.last_publish_at)
        return last

    # --- data -------------------------------------------------------------------------------------

    async def _subscribe(self, client: Client, tags: Sequence[OpcUaTag]) -> None:
        sub = await client.create_subscription(subscription_parameters(self._config), queue_maxsize=_QUEUE_MAX)
        self._sub = sub
        by_interval: dict[float, list[OpcUaTag]] = {}
        for tag in tags:
            by_interval.setdefault(tag.sampling_interval_ms, []).append(tag)
        received_ms = now_ms()
        for interval, group in by_interval.items():
            for start in range(0, len(group), _READ_CHUNK):
                chunk = group[start : start + _READ_CHUNK]
                nodes = [client.get_node(tag.node_id) for tag in chunk]
                results = await sub.subscribe_data_change(nodes, sampling_interval=ua.Double(interval))
                for tag, result in zip(chunk, results, strict=True):
                    if isinstance(result, ua.StatusCode):
                        self._feed(tag, ua.DataValue(StatusCode=result), received_ms)
        self._flush()
        log.debug("opcua bridge %s: %d monitored items", self.name, len(tags))
        async for event in sub:
            if isinstance(event, DataChangeEvent):
                self._on_change(event)
            elif isinstance(event, StatusChangeEvent):
                await self._on_status(client, tags, event.notification.Status)
        raise _Lost("subscription closed")

    def _on_change(self, event: DataChangeEvent) -> None:
        tags = self._by_node.get(event.node.nodeid)
        if tags is None:
            return
        self._notifications += 1
        received_ms = now_ms()
        for tag in tags:
            self._feed(tag, event.data.monitored_item.Value, received_ms)

    async def _on_status(self, client: Client, tags: Sequence[OpcUaTag], status: ua.StatusCode) -> None:
        if status.value not in REVOKED_CODES:
            raise _Lost(f"subscription status {status_name(status.value)}")
        # Some servers report a deleted node on the subscription, not the item: read to find which.
        await self._read_into(client, tags)

    async def _poll(self, client: Client, tags: Sequence[OpcUaTag]) -> None:
        clock = PollClock(self._config.poll_interval_s)  # an overrun skips the missed cycles rather than burst
        while True:
            async with asyncio.timeout(self._config.timeout_s):
                await self._read_into(client, tags)
            self._reads += 1
            self._last_alive = time.monotonic()
            await clock.wait()

    async def _read_into(self, client: Client, tags: Sequence[OpcUaTag]) -> None:
        for start in range(0, len(tags), _READ_CHUNK):
            chunk = tags[start : start + _READ_CHUNK]
            values = await client.uaclient.read_attributes([tag.node_id for tag in chunk], AttributeIds.Value)
            received_ms = now_ms()
            for tag, value in zip(chunk, values, strict=True):
                for same in self._by_node[tag.node_id]:
                    self._feed(same, value, received_ms)
        self._flush()

    def _feed(self, tag: OpcUaTag, value: ua.DataValue, now_ms: int) -> None:
        self._pending.setdefault(tag.spec.device, []).append(self._sample(tag, value, now_ms))
        if not self._flush_scheduled:
            # Runs once every notification of this publish response is in: one Samples per device.
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        pending, self._pending = self._pending, {}
        for device, samples in pending.items():
            self._events.put_nowait(Samples(device=device, samples=samples))

    def _sample(self, tag: OpcUaTag, value: ua.DataValue, now_ms: int) -> Sample:
        code = value.StatusCode.value if value.StatusCode is not None else 0
        moment = value.SourceTimestamp or value.ServerTimestamp
        timestamp_ms = epoch_ms(moment) if moment is not None else now_ms
        name = tag.spec.name
        if code in REVOKED_CODES:
            if tag.node_id not in self._revoked:
                self._revoked.add(tag.node_id)
                log.warning("opcua bridge %s: node %s (%s/%s) is unknown to the server (%s); quality bad until it "
                            "returns", self.name, tag.node, tag.spec.device, name, status_name(code))  # fmt: skip
            return Sample(name=name, value=None, timestamp_ms=timestamp_ms, quality=Quality.bad)
        if tag.node_id in self._revoked:
            self._revoked.discard(tag.node_id)
            log.info("opcua bridge %s: node %s is back", self.name, tag.node)
        quality = quality_of(code)
        variant = value.Value
        raw = variant.Value if variant is not None else None
        if quality is Quality.bad or variant is None or raw is None:
            return Sample(name=name, value=None, timestamp_ms=timestamp_ms, quality=Quality.bad)
        # the value's own type decides, not the one the config assumed (a Float node read as a Double)
        sent = variant.VariantType
        convert = tag.convert if sent is tag.variant else converter_for(tag.spec.datatype, sent)
        try:
            converted = convert(raw)
        except ValueError as exc:
            if tag.node_id not in self._unconvertible:
                self._unconvertible.add(tag.node_id)
                log.warning("opcua bridge %s: node %s: %s; sent as bad", self.name, tag.node, exc)
            return Sample(name=name, value=None, timestamp_ms=timestamp_ms, quality=Quality.bad)
        return Sample(name=name, value=converted, timestamp_ms=timestamp_ms, quality=quality)
