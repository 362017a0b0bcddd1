"""The HTTP source: polled pages and webhook deliveries mapped to Sparkplug metrics and MES events.

Everything goes through one queue to ``events()``: a poll page or a webhook delivery is one unit.
Its MES events are published at QoS 1 and awaited (PUBACK), then its samples are yielded to the
edge node; the unit is done when the edge node asks for the next event (it has sent or buffered
them). Only then is the poll state (ETag, Last-Modified, cursor) saved, or a webhook answered 200.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Self

from bridges.http.dead_letters import DeadLetters
from bridges.http.mapping import MappedEvent, Mapper, MappingError, find_items
from bridges.http.poller import Poller, RetryLater
from bridges.http.state import PollState
from bridges.http.webhook import WebhookServer
from bridges.source import DeviceDown, Samples, SourceEvent, SourceTasks, TagSpec
from bridges.status import StatusDevice
from model.bridges.http import STATUS_DEVICE, HttpBridgeConfig
from uns.backoff import Backoff
from uns.clock import now_ms
from uns.connect import ClientFactory
from uns.errors import BridgeError
from uns.logs import RateLimitedLog
from uns.mqtt.types import Message, PubSub
from uns.sparkplug import MetricValue

__all__ = ["HttpSource"]

log = logging.getLogger(__name__)

_COUNTERS = (
    "requests", "items", "refused", "not_modified", "throttled", "failures", "events", "events_unchanged",
    "webhooks", "webhooks_rejected", "webhooks_replayed", "webhooks_failed",
)  # fmt: skip
"""The status device's counters (``Status/<CamelCase>``). events: MES events the broker acknowledged;
events_unchanged: skipped, sent before with the same body; webhooks: deliveries taken; webhooks_rejected: 401,
413 or 400; webhooks_replayed: seen before, not processed again; webhooks_failed: not taken (503, retried)."""
_STATUS_S = 1.0  # the status device is refreshed at least this often (unchanged values are not sent)
_SENT_KEPT = 50_000  # MES events remembered (id -> body) so a re-polled, unchanged one is not sent again
_QUEUE = 8  # status refreshes are skipped while this many units wait for the edge node


@dataclasses.dataclass(slots=True)
class _Unit:
    items: list[object]
    refused_page: tuple[MappingError, object] | None
    done: asyncio.Future[tuple[int, int]] | None


@dataclasses.dataclass(frozen=True, slots=True)
class _Down:
    reason: str


_Work = _Unit | _Down | None  # None: only the status changed


class HttpSource:
    """A ``Source`` for ``kind: http``.

    Args:
        config: the connector's config.
        clients: MQTT clients of the hub's broker, for MES events.
        data_dir: the hub's data directory; state and dead letters default to ``data_dir/http/<name>``.
    """

    def __init__(self, *, config: HttpBridgeConfig, clients: ClientFactory, data_dir: Path) -> None:
        self.name = config.name
        self._config = config
        self._clients = clients
        directory = config.state_dir or data_dir / "http" / config.name
        self._state_path = directory / "poll_state.json"
        self.dead_letters = DeadLetters(directory=directory)
        self._mapper = Mapper(config)
        self._poller = Poller(name=config.name, config=config.poll) if config.poll else None
        self.webhook = (
            WebhookServer(name=config.name, config=config.webhook, deliver=self._deliver) if config.webhook else None
        )
        # unbounded: each unit's producer waits for it to be done, so units in the queue are few
        self._work: SourceTasks[_Work] = SourceTasks(f"http[{config.name}]")
        self._stack = contextlib.AsyncExitStack()
        self._client: PubSub | None = None
        self._warn = RateLimitedLog(log)
        self._sent: collections.OrderedDict[str, bytes] = collections.OrderedDict()
        self._status_device = StatusDevice(device=STATUS_DEVICE, counters=_COUNTERS)
        self.counts = self._status_device.counts

    async def __aenter__(self) -> Self:
        async with contextlib.AsyncExitStack() as stack:
            if self._poller is not None:
                await stack.enter_async_context(self._poller)
            if self.webhook is not None:
                await stack.enter_async_context(self.webhook)
            if self._config.events:
                client_id = f"uns-http-{self._config.edge.group}-{self._config.node_id}"
                self._client = await stack.enter_async_context(self._clients(client_id=client_id))
            self._stack = stack.pop_all()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        # events() may be left suspended at a yield by a cancelled consumer: stop its producers here
        await self._work.stop()
        self._client = None
        await self._stack.aclose()

    def tags(self) -> Sequence[TagSpec]:
        """The mapped metrics, then the status device's counters."""
        return [*self._mapper.tags(), *self._status_device.tags()]

    async def events(self) -> AsyncIterator[SourceEvent]:
        """Samples of polled and pushed items, the status device, and ``DeviceDown`` while the API is down.

        The poll loop and the webhook server run as tasks of their own (a TaskGroup cannot span the
        yields of a generator its consumer may abandon): stopped when this generator closes or the
        source exits, and a crash of either is raised here.
        """
        if self._poller is not None:
            self._work.start(self._poll_loop(self._poller), "poll")
        if self.webhook is not None:
            self._work.start(self.webhook.run(), "webhook")
        try:
            yield self._status(now_ms())  # the status device is read at once: births need not wait for it
            while True:
                try:
                    # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation that
                    # arrives as the get completes, and the consumer would never stop
                    async with asyncio.timeout(_STATUS_S):
                        work = await self._work.get()
                except TimeoutError:
                    work = None  # idle: refresh the status (webhook refusals happen between units)
                if isinstance(work, _Down):
                    yield DeviceDown(STATUS_DEVICE, work.reason)
                    continue
                if work is None:
                    yield self._status(now_ms())
                    continue
                try:
                    batches, events, refused = self._map(work)
                    if events:
                        await self._publish(events)
                except BridgeError as exc:
                    if work.done is not None and not work.done.done():
                        work.done.set_exception(exc)
                    continue
                for batch in batches:
                    yield batch
                yield self._status(now_ms())
                # the edge node asked for more: it sent or buffered every sample above
                if work.done is not None and not work.done.done():
                    work.done.set_result((len(work.items) - refused, refused + (work.refused_page is not None)))
        finally:
            await self._work.stop()

    async def write(self, device: str, name: str, value: MetricValue) -> None:
        """HTTP items are read-only here."""
        raise BridgeError(self.name, device, f"{name}: the HTTP source is read-only")

    # -- mapping --------------------------------------------------------------------------------

    def _map(self, unit: _Unit) -> tuple[list[Samples], list[MappedEvent], int]:
        now = now_ms()
        batches: list[Samples] = []
        events: list[MappedEvent] = []
        refused = 0
        if unit.refused_page is not None:
            self._refuse(*unit.refused_page)
        for index, item in enumerate(unit.items):
            key = self._mapper.key(item, index)
            try:
                item_batches = self._mapper.samples(item, key, now_ms=now)
                item_events = self._mapper.events(item, key)
            except MappingError as exc:
                self._refuse(exc, item)
                refused += 1
                continue
            batches.extend(item_batches)
            events.extend(item_events)
        self.counts["items"] += len(unit.items) - refused
        return batches, events, refused

    def _refuse(self, error: MappingError, item: object) -> None:
        self._status_device.refused(str(error))
        self.dead_letters.add(error, item)
        self._warn.warning(f"refused|{error.path}", "http %s: refused and dead-lettered: %s", self.name, error)

    async def _publish(self, events: list[MappedEvent]) -> None:
        """Publish at QoS 1 and wait for the PUBACKs; an event sent before with the same body is skipped."""
        client = self._client
        if client is None:  # pragma: no cover  (entered with events configured)
            raise BridgeError(self.name, "mqtt", "no MQTT client for MES events")
        fresh = [event for event in events if self._sent.get(event.event_id) != event.body]
        self.counts["events_unchanged"] += len(events) - len(fresh)
        if not fresh:
            return
        try:
            await client.publish_many([Message(event.topic, event.body, 1, False) for event in fresh])
        except Exception as exc:  # the broker is away: the unit is retried (poll) or refused with 503 (webhook)
            raise BridgeError(self.name, "mqtt", f"MES events not acknowledged: {exc!r}") from exc
        self.counts["events"] += len(fresh)
        for event in fresh:
            self._sent[event.event_id] = event.body
            self._sent.move_to_end(event.event_id)
        while len(self._sent) > _SENT_KEPT:
            self._sent.popitem(last=False)

    def _status(self, now_ms: int) -> Samples:
        if self._poller is not None:
            self.counts["requests"], self.counts["not_modified"] = self._poller.requests, self._poller.not_modified
        if self.webhook is not None:
            hook = self.webhook.counts
            self.counts["webhooks_rejected"] = hook["unauthorized"] + hook["too_large"] + hook["bad_json"]
            self.counts["webhooks_replayed"] = hook["replays"]
        return self._status_device.samples(now_ms)

    # -- producers ------------------------------------------------------------------------------

    async def _run_unit(self, unit: _Unit) -> tuple[int, int]:
        unit.done = asyncio.get_running_loop().create_future()
        await self._work.put(unit)
        return await unit.done

    async def _deliver(self, document: object) -> tuple[int, int]:
        """A verified webhook body: its items, done once safe (the webhook answers then)."""
        config = self._config.webhook
        if config is None:  # pragma: no cover  (the listener exists only with its config)
            raise RuntimeError("no webhook configured")
        try:
            unit = _Unit(find_items(self.name, document, config.items_path), None, None)
        except MappingError as exc:
            unit = _Unit([], (exc, document), None)
        try:
            async with asyncio.timeout(config.answer_within_s):
                taken = await self._run_unit(unit)
        except TimeoutError:
            self.counts["webhooks_failed"] += 1
            raise BridgeError(self.name, "webhook", f"not safe within {config.answer_within_s:g} s") from None
        except BridgeError:
            self.counts["webhooks_failed"] += 1
            raise
        self.counts["webhooks"] += 1
        return taken

    async def _poll_loop(self, poller: Poller) -> None:
        config = self._config.poll
        if config is None:  # pragma: no cover
            return
        state = PollState.load(self._state_path)
        backoff = Backoff(min_s=config.backoff_min_s, max_s=max(config.backoff_min_s, config.backoff_max_s))
        down = False
        while True:
            delay = config.interval_s
            try:
                async for page in poller.pages(state):
                    await self._run_unit(
                        _Unit(page.items, (page.refused, page.document) if page.refused else None, None)
                    )
                    if page.state != state:
                        state = page.state
                        state.save(self._state_path)
                backoff.succeeded()
                down = False
            except RetryLater as exc:
                self.counts["throttled"] += 1
                told = exc.after_s if exc.after_s is not None else backoff.failed()
                delay = min(told, backoff.max_s)
                self._warn.warning("throttled", "http %s: %s: waiting %.1f s", self.name, exc, delay)
                if exc.status == 503 and not down:
                    down = True
                    await self._work.put(_Down(str(exc)))
            except BridgeError as exc:
                self.counts["failures"] += 1
                delay = backoff.failed()
                self._warn.warning("failed", "http %s: %s: retrying in %.1f s", self.name, exc, delay)
                if not down:
                    down = True
                    await self._work.put(_Down(str(exc)))
            if not down and self._work.qsize() < _QUEUE:  # a status refresh, skipped while the consumer lags
                self._work.put_nowait(None)
            await asyncio.sleep(delay)
