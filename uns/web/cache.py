"""The web layer's live topic cache: last payload, counts and rates per topic, a lazy tree, Sparkplug status."""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import math
import sys
import time
from collections.abc import AsyncGenerator, Callable, Collection
from types import TracebackType
from typing import Self

from model.envelope import EnvelopeError, ReadingFields, read_fields, read_object
from uns.connect import ClientFactory
from uns.errors import SparkplugError
from uns.event_wait import set_within
from uns.logs import RateLimitedLog
from uns.mqtt.types import Message, PubSub
from uns.sparkplug import NAMESPACE
from uns.web.cache_types import (
    CLASS_BITS,
    CLASS_WORDS,
    PROBLEMS,
    CacheStats,
    JsonScalar,
    Node,
    Page,
    TopicInfo,
    TreeFilter,
    Update,
    class_bit,
)
from uns.web.roles import UNRESTRICTED, TopicAccess
from uns.web.search_index import Haystack
from uns.web.sparkplug_view import SparkplugView

# the value types live in uns.web.cache_types; re-exported for the cache's users
__all__ = ["CLASS_WORDS", "CacheStats", "Node", "Page", "TopicCache", "TopicInfo", "TreeFilter", "Update"]

log = logging.getLogger(__name__)

_TAU_MS = 10_000.0  # rates decay with a 10 s time constant: "msgs/s over the last ~10 s"
_PER_MSG = 1000.0 / _TAU_MS  # what one message adds to a rate in msgs/s
_LEAN_BYTES = 256  # what a payload keeps once the cache's payload budget is spent
_MAX_VALUE_CHARS = 256  # string values kept from envelopes (the payload has the rest)
_WARN_EVERY_S = 10.0
_LAST_RANKS = {NAMESPACE: 2, "$SYS": 2}
_SPARKPLUG = NAMESPACE + "/"


class _Entry:
    """A topic's last message and counters (slots: 100k of these must stay small)."""

    __slots__ = ("count", "first_ms", "last_ms", "payload", "quality", "retained", "size", "timestamp_ms", "value")

    def __init__(self, now_ms: int) -> None:
        self.payload = b""
        self.size = 0
        self.retained = False
        self.count = 0
        self.first_ms = now_ms
        self.last_ms = now_ms
        self.value: JsonScalar = None
        self.quality: str | None = None
        self.timestamp_ms: int | None = None


class _Level:
    """One trie level; its counts, rate, ``problems``, ``last_ms`` and ``classes`` cover the subtree.

    A topic's messages reach its ancestors' ``messages`` and ``last_ms`` when the tree is next read
    (``TopicCache._settle``), not one by one: per message only the topic's own level is touched.
    """

    # fmt: off
    __slots__ = ("children", "classes", "entry", "last_ms", "messages", "order", "parent",
                 "problems", "rate", "rate_at", "rate_count", "topics", "unsettled")
    # fmt: on

    def __init__(self, parent: _Level | None = None) -> None:
        self.parent = parent
        self.unsettled = 0
        """This topic's messages not yet added to its ancestors' counts."""
        self.children: dict[str, _Level] | None = None
        self.entry: _Entry | None = None
        self.topics = 0
        self.messages = 0
        self.rate = 0.0  # the decayed rate as of rate_at, over the first rate_count messages (computed when asked)
        self.rate_at = 0
        self.rate_count = 0
        self.problems = 0
        self.last_ms = 0
        self.classes = 0  # bit per class word found below, for the class filter
        self.order: list[str] | None = None  # children's names in tree order, until a child is added


class _Subscriber:
    __slots__ = ("closed", "keep", "pending", "prefix", "under", "wake")

    def __init__(self, prefix: str, keep: Callable[[str], bool] | None) -> None:
        self.prefix = prefix
        self.under = prefix + "/"
        self.keep = keep
        self.pending: dict[str, _Entry] = {}
        self.wake = asyncio.Event()
        self.closed = False

    def ended(self) -> bool:
        # a method, not the attribute: another task sets it while this one awaits
        return self.closed


def _read_envelope(
    payload: bytes, decoded: ReadingFields | None, now_ms: int
) -> tuple[JsonScalar, str | None, int | None] | None:
    """(value, quality, timestamp_ms) of a value envelope by the hub's one reader; None when it is not one.

    ``decoded``: the reading its in-process publisher made (``Message.decoded``), taken instead of
    parsing the JSON again.
    """
    if decoded is not None:
        if decoded[0].__class__ is float:  # the usual process value: nothing to trim or drop
            return decoded[0], decoded[2], decoded[1]
        read = decoded
    else:
        try:
            read = read_fields(read_object(payload), payload, now_ms=now_ms)
        except EnvelopeError:
            return None  # shown as its raw payload, as the historian dead-letters it
    value = read[0]
    if isinstance(value, str):
        value = value[:_MAX_VALUE_CHARS]
    elif not isinstance(value, int | float | bool):
        value = None  # lists and objects: the payload has them
    return value, read[2], read[1]


def _decayed(rate: float, at_ms: int, now_ms: int) -> float:
    return rate * math.exp((at_ms - now_ms) / _TAU_MS) if now_ms > at_ms else rate


def _rate(level: _Level, now_ms: int) -> float:
    """The level's decayed msgs/s now, brought up to date from its message count (rates cost nothing per message).

    The messages since the last look are taken as spread evenly between that look and the latest
    one: exact for a steady stream, and the past decays away within ~10 s either way.
    """
    new = level.messages - level.rate_count
    now = max(now_ms, level.last_ms)
    rate = _decayed(level.rate, level.rate_at, now)
    if new:
        start, end = level.rate_at, level.last_ms
        if end > start:
            spread = _TAU_MS / (end - start) * (math.exp((end - now) / _TAU_MS) - math.exp((start - now) / _TAU_MS))
        else:
            spread = math.exp((end - now) / _TAU_MS)
        rate += new * _PER_MSG * spread
    level.rate, level.rate_at, level.rate_count = rate, now, level.messages
    return round(rate, 3)


def _order(name: str) -> tuple[int, str]:
    # equipment levels first, then class words, then Sparkplug and broker internals
    rank = _LAST_RANKS.get(name, 1 if name in CLASS_BITS else 0)
    return rank, name.casefold()


class TopicCache:
    """Every topic's last message, counters and rate; a lazy tree over them; Sparkplug status; batched updates.

    Subscribes to ``#`` as client ``uns-web``. Memory stays bounded: a payload keeps at most
    ``max_payload_bytes`` (its real size is kept too), all payloads together at most
    ``payload_budget_bytes`` (past it, new payloads keep their first 256 bytes), and topics past
    ``max_topics`` are counted and not kept.

    Args:
        clients: opens the MQTT client.
        client_id: the MQTT client id.
        max_payload_bytes: bytes kept of one payload.
        payload_budget_bytes: bytes kept of all payloads together.
        max_topics: topics kept.
        clock: seconds since the epoch (tests pass their own).
        sparkplug: the Sparkplug view to feed (its bounds); a default-bounded one if None.
    """

    name = "web-cache"

    def __init__(
        self,
        *,
        clients: ClientFactory,
        client_id: str = "uns-web",
        max_payload_bytes: int = 65_536,
        payload_budget_bytes: int = 256 * 1024 * 1024,
        max_topics: int = 1_000_000,
        clock: Callable[[], float] = time.time,
        sparkplug: SparkplugView | None = None,
    ) -> None:
        self._clients = clients
        self._client_id = client_id
        self._max_payload = max_payload_bytes
        self._budget = payload_budget_bytes
        self._max_topics = max_topics
        self._clock = clock
        self.stats = CacheStats()
        self._root = _Level()
        self._root.rate_at = int(clock() * 1000)
        self._haystacks: dict[str, Haystack] = {}
        """Each first level's topics, for search: a reader skips a first level hidden from it whole."""
        self._leaves: dict[str, _Level] = {}
        """Each kept topic's level, by topic: one lookup per message instead of a walk down the tree."""
        self._unsettled: list[_Level] = []
        """Topic levels with messages their ancestors have not counted yet."""
        self.sparkplug = SparkplugView() if sparkplug is None else sparkplug  # empty is falsy: it has __len__
        self._subscribers: list[_Subscriber] = []
        self._client: PubSub | None = None
        self._stack = contextlib.AsyncExitStack()
        self._stopped = False
        self._warn = RateLimitedLog(log, interval_s=_WARN_EVERY_S, clock=clock)

    @property
    def max_payload_bytes(self) -> int:
        """Bytes kept of one payload."""
        return self._max_payload

    async def __aenter__(self) -> Self:
        async with contextlib.AsyncExitStack() as stack:
            client = await stack.enter_async_context(self._clients(client_id=self._client_id))
            await client.subscribe(["#"], qos=0)
            self._client = client
            self._stack = stack.pop_all()
        self._stopped = False
        log.info("web cache subscribed to # as %s", self._client_id)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._end_streams()
        self._client = None
        await self._stack.__aexit__(exc_type, exc, tb)
        log.info("web cache stopped: %s", self.stats.as_dict())

    async def run(self) -> None:
        """Read every message into the cache until cancelled; then end every update stream."""
        if self._client is None:
            raise RuntimeError("TopicCache.run() needs `async with TopicCache(...)` first")
        try:
            async for message in self._client.messages():
                self.observe(message)
        finally:
            self._end_streams()

    def health(self, access: TopicAccess = UNRESTRICTED) -> dict[str, object]:
        """Counters, for ``/api/health``; for a reader with topics hidden from it, only ``streams``.

        The others count every topic and message held, hidden ones too (and ``edge_nodes`` nodes known only
        from commands): its count less its tree root's would tell a viewer how many topics are hidden from it.
        """
        if not access.everything:
            return {"streams": len(self._subscribers)}
        return {**self.stats.as_dict(), "streams": len(self._subscribers), "edge_nodes": len(self.sparkplug)}

    # -- ingest ------------------------------------------------------------------------------------

    def observe(self, message: Message, *, now_ms: int | None = None) -> None:
        """Take one message into the cache (what ``run`` does with each one received)."""
        now = int(self._clock() * 1000) if now_ms is None else now_ms
        topic = message.topic
        self.stats.messages += 1
        level = self._leaves.get(topic)
        if level is None:
            level = self._new_topic(topic, now)
            if level is None:
                return
        entry = level.entry
        if entry is None:  # never: every kept topic's level has its entry
            return
        was_problem = entry.quality in PROBLEMS
        self._store(entry, message, now)
        change = (entry.quality in PROBLEMS) - was_problem
        level.messages += 1
        level.last_ms = now
        if not level.unsettled:
            self._unsettled.append(level)
        level.unsettled += 1
        step: _Level | None = level
        while change and step is not None:
            step.problems += change
            step = step.parent
        if topic.startswith(_SPARKPLUG):
            try:
                self.sparkplug.observe(topic, message.payload, now)
            except SparkplugError as exc:
                self.stats.sparkplug_errors += 1
                self._warn.warning("payload", "web cache: %s", exc)  # the raw payload stays in the cache for inspection
        for sub in self._subscribers:
            if (not sub.prefix or topic.startswith(sub.under) or topic == sub.prefix) and (
                sub.keep is None or sub.keep(topic)
            ):
                sub.pending[topic] = entry
                sub.wake.set()

    def _new_topic(self, topic: str, now: int) -> _Level | None:
        """The level of a topic seen first, with its entry; None when the cache is full (counted)."""
        level = self._root
        path: list[_Level] = [level]
        names = topic.split("/")
        for name in names:
            children = level.children
            if children is None:
                children = level.children = {}
            child = children.get(name)
            if child is None:
                child = children[name] = _Level(level)
                child.rate_at = now
                level.order = None
            path.append(child)
            level = child
        if self.stats.topics >= self._max_topics:
            self.stats.topics_refused += 1
            self._warn.warning("full", "web cache: full (%d topics): not keeping %s", self._max_topics, topic)
            for depth in range(len(names), 0, -1):  # drop the levels just made for it
                parent = path[depth - 1].children
                if path[depth].topics or parent is None:
                    break
                del parent[names[depth - 1]]
            return None
        level.entry = _Entry(now)
        self.stats.topics += 1
        self._leaves[topic] = level
        haystack = self._haystacks.get(names[0])
        if haystack is None:
            haystack = self._haystacks[names[0]] = Haystack()
        haystack.add(topic, self.stats.topics)
        bit = class_bit(names)
        for step in path:
            step.topics += 1
            step.classes |= bit
        return level

    def _settle(self) -> None:
        """Add the messages topics got since the last read to their ancestors' counts and times."""
        unsettled = self._unsettled
        if not unsettled:
            return
        self._unsettled = []
        for level in unsettled:
            count, last = level.unsettled, level.last_ms
            level.unsettled = 0
            step = level.parent
            while step is not None:
                step.messages += count
                if step.last_ms < last:
                    step.last_ms = last
                step = step.parent

    def _store(self, entry: _Entry, message: Message, now: int) -> None:
        payload = message.payload
        size = len(payload)
        keep = min(size, self._max_payload)
        stats = self.stats
        entry.count += 1
        entry.last_ms = now
        if message.retain:
            entry.retained = size > 0  # an empty retained message clears the retained value
        decoded = message.decoded
        read = (
            _read_envelope(payload, decoded, now)
            if keep == size and (decoded is not None or (payload[:1] == b"{" and b'"value"' in payload))
            else None
        )
        if read is not None and read[2] is not None and entry.timestamp_ms is not None and read[2] < entry.timestamp_ms:
            # backfill or a late delivery: counted, but the newer value stays the topic's latest
            stats.out_of_order += 1
            return
        if stats.payload_bytes - len(entry.payload) + keep > self._budget and keep > _LEAN_BYTES:
            keep = _LEAN_BYTES
            stats.payloads_shortened += 1
        stats.payload_bytes += keep - len(entry.payload)
        entry.payload = payload if keep == size else payload[:keep]
        entry.size = size
        entry.value, entry.quality, entry.timestamp_ms = read if read is not None else (None, None, None)

    # -- reading -----------------------------------------------------------------------------------

    def now_ms(self) -> int:
        """The cache's clock in Unix ms: the time its ``last_ms`` figures and ``TreeFilter.changed_ms`` are read by."""
        return int(self._clock() * 1000)

    def _find(self, path: str) -> _Level | None:
        self._settle()  # every read finds its level here first
        level: _Level | None = self._root
        if not path:
            return level
        for name in path.split("/"):
            children = level.children if level is not None else None
            if children is None:
                return None
            level = children.get(name)
        return level

    def _info(self, topic: str, entry: _Entry, rate: float) -> TopicInfo:
        return TopicInfo(
            topic=topic,
            size=entry.size,
            stored=len(entry.payload),
            retained=entry.retained,
            count=entry.count,
            rate=rate,
            first_ms=entry.first_ms,
            last_ms=entry.last_ms,
            value=entry.value,
            quality=entry.quality,
            timestamp_ms=entry.timestamp_ms,
        )

    def _node(self, name: str, path: str, level: _Level, now: int) -> Node:
        rate = _rate(level, now)
        entry = level.entry
        return Node(
            name=name,
            path=path,
            topics=level.topics,
            messages=level.messages,
            rate=rate,
            children=len(level.children) if level.children else 0,
            topic=None if entry is None else self._info(path, entry, rate),
            problems=level.problems,
            last_ms=level.last_ms,
        )

    def node(self, path: str) -> Node | None:
        """The tree node at ``path`` (``""`` is the root), or None when nothing was seen under it."""
        level = self._find(path)
        if level is None:
            return None
        return self._node(path.rsplit("/", 1)[-1], path, level, self.now_ms())

    def names(self, prefix: str = "") -> list[str]:
        """The names of the children of ``prefix`` (any order; none for unknown prefixes), with no figures."""
        level = self._find(prefix)
        return list(level.children) if level is not None and level.children else []

    def children(self, prefix: str = "", *, limit: int | None = None) -> list[Node]:
        """The next level under ``prefix`` (``""`` for the top), equipment levels first; none for unknown prefixes."""
        return list(self.page(prefix, limit=limit).shown)

    def page(
        self, prefix: str = "", *, limit: int | None = None, after: str | None = None, wanted: TreeFilter | None = None
    ) -> Page:
        """A page of the children of ``prefix`` in tree order: those after the child named ``after``, up to ``limit``.

        The order is kept per node until a child is added, so a page costs O(limit) without a
        filter and O(children) with one; each node keeps its subtree's counts.
        """
        level = self._find(prefix)
        if level is None or not level.children:
            return Page(shown=(), more=0)
        children = level.children
        order = level.order
        if order is None:
            order = level.order = sorted(children, key=_order)
        start = 0 if after is None else bisect.bisect_right(order, _order(after), key=_order)
        now = self.now_ms()
        names = order[start:]
        if wanted is not None and not wanted.empty:
            (bit, since), passes = wanted.criteria(now), wanted.passes
            names = [name for name in names if passes(children[name], bit, since)]
        end = len(names) if limit is None else min(limit, len(names))
        base = prefix + "/" if prefix else ""
        shown = tuple(self._node(name, base + name, children[name], now) for name in names[:end])
        return Page(shown=shown, more=len(names) - end)

    def admits(self, topic: str, wanted: TreeFilter) -> bool:
        """Whether the topic (or subtree) at ``topic`` passes ``wanted``, e.g. for a search result."""
        level = self._find(topic)
        if level is None:
            return False
        return wanted.passes(level, *wanted.criteria(self.now_ms()))

    def classes(self, parent: str, name: str) -> int:
        """The class bits (``class_bit`` of each topic) of the subtree of ``parent``'s child ``name``; 0 if unseen.

        By parent and name, so the root's child named ``""`` (topics ``/x``), whose path is the root's, has its own.
        """
        level = self._find(parent)
        child = level.children.get(name) if level is not None and level.children else None
        return 0 if child is None else child.classes

    def info(self, topic: str) -> TopicInfo | None:
        """What the cache holds for ``topic``, or None when no message was seen on it."""
        level = self._find(topic)
        if level is None or level.entry is None or not topic:
            return None
        entry = level.entry
        now = self.now_ms()
        return self._info(topic, entry, _rate(level, now))

    def payload(self, topic: str) -> bytes | None:
        """The stored (maybe shortened: compare with ``info().size``) last payload of ``topic``."""
        level = self._find(topic) if topic else None
        return None if level is None or level.entry is None else level.entry.payload

    def search(
        self,
        text: str,
        limit: int = 100,
        *,
        keep: Callable[[str], bool] | None = None,
        skip: Collection[str] = (),
    ) -> list[TopicInfo]:
        """Topics whose name contains ``text`` (any case), in the order they were first seen; only those ``keep``s.

        ``skip``: first levels whose topics are not looked at (hidden whole from the reader: no ``keep`` asked
        about each of them). Each first level is searched on its own, for at most ``limit`` topics.
        """
        needle = text.replace("\n", "").casefold()
        found: list[tuple[int, str]] = []  # (when first seen, topic)
        before = sys.maxsize  # a topic seen after the limit-th found so far cannot be among the first limit
        for first, haystack in self._haystacks.items():  # in the order their first topics were seen
            if haystack.first > before:
                break  # all its topics, and all later first levels', were seen after the ones found
            if first not in skip:
                found += haystack.find(needle, limit, keep, before)
                # sorted and cut when limit are first found, then at twice that: linear over many first levels
                if len(found) >= limit > 0 and (before == sys.maxsize or len(found) >= 2 * limit):
                    found.sort()
                    del found[limit:]
                    before = found[-1][0]
        found.sort()
        infos = (self.info(name) for _, name in found[:limit])
        return [info for info in infos if info is not None]

    # -- streams ------------------------------------------------------------------------------------

    async def updates(
        self,
        prefix: str = "",
        *,
        interval_s: float = 0.25,
        idle_s: float | None = None,
        greet: bool = False,
        keep: Callable[[str], bool] | None = None,
    ) -> AsyncGenerator[list[Update], None]:
        """Batches of changed topics under ``prefix``, at most one batch per ``interval_s``, latest per topic.

        Yields an empty batch after ``idle_s`` without changes (a heartbeat), and ends when the cache stops.
        With ``greet``, the first batch is an empty one as soon as the stream is subscribed: a
        caller may send a snapshot then, knowing no later change can slip between the two.
        ``keep``: only topics it answers True for (asked once per message: make it cheap); the others
        do not even wake the stream.
        """
        sub = _Subscriber(prefix.rstrip("/"), keep)
        sub.closed = self._stopped
        self._subscribers.append(sub)
        if greet:
            yield []
        loop = asyncio.get_running_loop()
        last = -interval_s
        try:
            while not sub.ended():
                if not await set_within(sub.wake, idle_s):
                    yield []
                    continue
                delay = last + interval_s - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)  # coalesce: later messages replace earlier ones meanwhile
                if sub.ended():
                    break
                sub.wake.clear()
                pending, sub.pending = sub.pending, {}
                last = loop.time()
                if pending:
                    now = self.now_ms()
                    yield [self._update(topic, entry, now) for topic, entry in pending.items()]
        finally:
            self._subscribers.remove(sub)

    def _update(self, topic: str, entry: _Entry, now: int) -> Update:
        level = self._find(topic)
        rate = _rate(level, now) if level is not None else 0.0
        return self._info(topic, entry, rate)

    def _end_streams(self) -> None:
        self._stopped = True
        for sub in self._subscribers:
            sub.closed = True
            sub.wake.set()
