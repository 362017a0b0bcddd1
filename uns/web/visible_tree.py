"""What one reader sees of the topic cache: the topics the broker would deliver to it, and figures without the rest.

The broker cuts few subtrees out of a reader of ``#`` (``spBv1.0``, a group's ``NCMD`` and ``DCMD``, each edge
agent's ``config``: ``AclPolicy.read_exceptions``). They are found per request by matching those filters
against the tree's levels, whose ``+`` levels are few names each (enterprises, Sparkplug groups, agents), and
each one found is confirmed with the broker's own ``decide`` (kept per reader until a topic is added:
:class:`HiddenIndex`), with the nodes left without a visible topic. A node's counts are then the cache's less
those of the hidden subtrees under it, its rate, latest time and class bits its visible children's down the
branches that hold hidden topics, and the tree filter passes it on those: nothing walks the whole tree, and a
reader from whom nothing is hidden (host, admin) reads the cache as it is.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable

from uns.broker.acl import Principal
from uns.web.cache import Node, Page, TopicCache, TreeFilter
from uns.web.cache_types import PROBLEMS, class_bit
from uns.web.roles import TopicAccess

__all__ = ["Cut", "HiddenIndex", "VisibleTree"]

_MEMO_LIMIT = 100_000  # topics remembered per reader before its answers start over


def _ancestors(path: str) -> list[str]:
    """The nodes above ``path``, the root ``""`` first, each once.

    A root child named ``""`` (topics such as ``/x``) has the root's path: it is not listed apart.
    """
    if not path:
        return []
    names = path.split("/")
    start = 2 if names[0] == "" else 1
    return ["", *("/".join(names[:depth]) for depth in range(start, len(names)))]


@dataclasses.dataclass(slots=True)
class _Less:
    """Counts of hidden topics to take off a node's (its rate and latest time are summed instead: ``_walk``)."""

    topics: int = 0
    messages: int = 0
    problems: int = 0

    def add(self, other: _Less) -> None:
        self.topics += other.topics
        self.messages += other.messages
        self.problems += other.problems


@dataclasses.dataclass(frozen=True, slots=True)
class _Figures:
    """A node's figures as one reader sees them, for ``TreeFilter.passes``."""

    classes: int
    problems: int
    last_ms: int


def _parent(path: str) -> str | None:
    """The node ``path`` is listed under; None under the root's child named ``""`` (``/x``: not addressable)."""
    if "/" not in path:
        return ""
    parent = path.rpartition("/")[0]
    return parent if parent else None


def _inside(path: str, whole: set[str]) -> bool:
    """Whether ``path`` is one of the ``whole`` subtrees or under one."""
    return bool(whole) and (path in whole or any(ancestor in whole for ancestor in _ancestors(path)))


Cut = tuple[tuple[str, bool], ...]
"""Where a reader's tree is cut: (path, whole) for each hidden subtree (True) or hidden topic alone (False)."""


class HiddenIndex:
    """Where the tree is cut for each reader, found again only when a topic was added (its shape is the same).

    One per cache, shared by its routes: a request then pays for the figures of the few hidden nodes,
    not for finding them (a node per ``+`` match, a ``decide`` per candidate).
    """

    def __init__(self, cache: TopicCache) -> None:
        self.cache = cache
        self._found: dict[Principal, tuple[int, Cut]] = {}
        self._answers: dict[Principal, dict[str, bool]] = {}
        self._skipped: dict[Principal, tuple[int, frozenset[str]]] = {}

    def reader(self, access: TopicAccess) -> Callable[[str], bool] | None:
        """``access.may_read`` remembered per topic, for search and every stream's message; None: reads everything.

        The answers are kept per reader (role and ``read_sparkplug``: a few), shared by its requests and
        streams, at most ``_MEMO_LIMIT`` each: not a copy per open stream, and a search pays again only
        for topics no one of its kind asked about yet.
        """
        if access.everything:
            return None
        memo = self._answers.setdefault(access.principal, {})

        def may_read(topic: str) -> bool:
            known = memo.get(topic)
            if known is None:
                if len(memo) >= _MEMO_LIMIT:
                    memo.clear()
                known = memo[topic] = access.may_read(topic)
            return known

        return may_read

    def skipped(self, access: TopicAccess) -> frozenset[str]:
        """First levels hidden whole from ``access`` (``$SYS``, ``spBv1.0`` without ``read_sparkplug``); none for admin.

        A search does not look at their topics at all, instead of asking ``reader`` about each one (the first
        time, a ``decide`` each: 40,000 hidden Sparkplug topics cost a viewer's first search ~150 ms). Asked of
        the broker once per first level and kind of reader, again when a first level was added.
        """
        if access.everything:
            return frozenset()
        firsts = self.cache.names("")
        known = self._skipped.get(access.principal)
        if known is None or known[0] != len(firsts):
            # the root's child named "" (topics /x) has the root's path: never skipped, its topics are asked one by one
            hidden = frozenset(name for name in firsts if name and access.hides_subtree(name))
            known = self._skipped[access.principal] = (len(firsts), hidden)
        return known[1]

    def cut(self, access: TopicAccess) -> Cut:
        """Where ``access``'s tree is cut now (parents before their insides)."""
        topics = self.cache.stats.topics  # levels are only ever added with a topic
        found = self._found.get(access.principal)
        if found is None or found[0] != topics:
            found = self._found[access.principal] = (topics, self._find(access))
        return found[1]

    def _find(self, access: TopicAccess) -> Cut:
        cache = self.cache
        candidates = {name for name in cache.names("") if name.startswith("$")}  # refused by their own rule
        for topic_filter in access.hidden_filters:
            candidates.update(self._levels(topic_filter))
        whole: set[str] = set()
        cut: list[tuple[str, bool]] = []
        hidden: collections.Counter[str] = collections.Counter()  # hidden topics at and under each node but the root
        for path in sorted(candidates, key=lambda path: (path.count("/"), path)):  # a subtree before its insides
            node = None if _inside(path, whole) else cache.node(path)
            if node is None:
                continue
            if access.hides_subtree(path):
                whole.add(path)
                cut.append((path, True))
            elif node.topic is not None and not access.may_read(path):
                cut.append((path, node.children == 0))  # a hidden leaf is a hidden subtree
            else:
                continue
            for above in [*_ancestors(path)[1:], path]:
                hidden[above] += node.topics if cut[-1][1] else 1
        return self._without_topics(cut, hidden)

    def _without_topics(self, cut: list[tuple[str, bool]], hidden: collections.Counter[str]) -> Cut:
        """``cut`` with each node all of whose topics are hidden made a hidden subtree, in place of its insides.

        No message the broker delivers names such a node (a Sparkplug group that only ever got commands, an
        agent with a desired config and no status yet), so it is not listed either. The root stays.
        """
        emptied: set[str] = set()
        for path in sorted(hidden, key=lambda path: (path.count("/"), path)):  # parents before their insides
            if _inside(path, emptied):
                continue
            node = self.cache.node(path)
            if node is not None and node.topics <= hidden[path]:
                emptied.add(path)
        if not emptied:
            return tuple(cut)
        kept = [(path, whole) for path, whole in cut if not _inside(path, emptied)]
        return tuple(sorted([*kept, *((path, True) for path in emptied)], key=lambda item: item[0].count("/")))

    def _levels(self, topic_filter: str) -> list[str]:
        """The nodes of the tree ``topic_filter`` reaches, without its trailing ``#`` (it names them and below)."""
        names = topic_filter.split("/")
        if names[-1] == "#":
            names.pop()
        paths = [""]
        for depth, name in enumerate(names):
            found: list[str] = []
            for parent in paths:
                # joined by depth: under the root's child named "" (whose path is the root's) the next is "/name";
                # a "+" right below that child would list the root's names (no broker filter has "+/+")
                if name == "+":  # a first-level wildcard never matches $ topics
                    found += [
                        f"{parent}/{child}" if depth else child
                        for child in self.cache.names(parent)
                        if depth or child[:1] != "$"
                    ]
                elif self.cache.node(f"{parent}/{name}" if depth else name) is not None:
                    found.append(f"{parent}/{name}" if depth else name)
            paths = found
        return paths


class VisibleTree:
    """The topic tree as ``access`` may see it, now: build one per request (or stream batch), use it at once.

    A hidden subtree is not listed and its figures (topics, messages, rate, problems, latest time) are
    not in its ancestors', the root's included; a hidden topic with visible topics under it shows as a
    node without its own message. ``index``: the cache's shared :class:`HiddenIndex` (a fresh one if None).
    """

    def __init__(self, cache: TopicCache, access: TopicAccess, *, index: HiddenIndex | None = None) -> None:
        self._cache = cache
        self._open = access.everything
        self._whole: set[str] = set()
        """Hidden subtrees: the node and everything under it."""
        self._alone: set[str] = set()
        """Hidden topics with visible topics under them."""
        self._less: dict[str, _Less] = {}
        """Per node: what its hidden topics add to its figures."""
        self._hidden_children: collections.Counter[str] = collections.Counter()
        self._walks: dict[str, tuple[float, int, int]] = {}
        """Per node with hidden topics under it: the rate, latest time and class bits of its visible ones."""
        self._top_cut = False
        """Something is hidden under the root's child named ``""`` (``/x``), whose path is the root's: left out."""
        if self._open:
            return
        if index is None or index.cache is not cache:
            index = HiddenIndex(cache)
        cut = index.cut(access)
        for path, whole in cut:
            node = cache.node(path)
            if node is not None:
                self._hide(node, whole=whole)
        self._top_cut = any(path[:1] == "/" for path, _ in cut)
        if self._top_cut:
            self._hidden_children[""] += 1

    def _hide(self, node: Node, *, whole: bool) -> None:
        path = node.path
        if whole:
            self._whole.add(path)
            parent = _parent(path) if path else None
            if parent is not None:
                self._hidden_children[parent] += 1
            less = _Less(node.topics, node.messages, node.problems)
            above = _ancestors(path)
        else:
            info = node.topic
            if info is None:
                return
            self._alone.add(path)
            less = _Less(1, info.count, int(info.quality in PROBLEMS))
            above = [*_ancestors(path), path]
        for ancestor in above:
            self._less.setdefault(ancestor, _Less()).add(less)

    def _inside_whole(self, path: str) -> bool:
        return _inside(path, self._whole)

    # -- reading ----------------------------------------------------------------------------------

    def node(self, path: str) -> Node | None:
        """The node at ``path`` as this reader sees it; None when hidden or never seen (alike)."""
        if self._inside_whole(path):
            return None
        node = self._cache.node(path)
        return node if node is None or self._open else self._seen(node)

    def page(
        self, prefix: str = "", *, limit: int | None = None, after: str | None = None, wanted: TreeFilter | None = None
    ) -> Page:
        """``TopicCache.page`` as this reader sees it (a prefix with hidden topics below costs O(children))."""
        if self._inside_whole(prefix):
            return Page(shown=(), more=0)
        if prefix not in self._less:  # nothing hidden below: the cache's page as it is
            return self._cache.page(prefix, limit=limit, after=after, wanted=wanted)
        every = self._cache.page(prefix, after=after, wanted=wanted).shown
        shown = [self._seen(node) if node.path != prefix else node for node in every if self._listed(node, prefix)]
        if wanted is not None and not wanted.empty:
            # the cache passed them on figures with the hidden topics in: pass those with hidden topics below
            # again on what is shown (the others' figures, and the root's child "" listed, are the reader's)
            bit, since = wanted.criteria(self._cache.now_ms())
            shown = [
                node
                for node in shown
                if node.path == prefix or node.path not in self._less or wanted.passes(self._figures(node), bit, since)
            ]
        end = len(shown) if limit is None else min(limit, len(shown))
        return Page(shown=tuple(shown[:end]), more=len(shown) - end)

    def admits(self, path: str, wanted: TreeFilter) -> bool:
        """``TopicCache.admits`` as this reader sees it: on the figures of the topics it may read at and below."""
        if self._open or (path not in self._less and not self._inside_whole(path)):
            return self._cache.admits(path, wanted)  # nothing hidden there: the cache's figures are this reader's
        node = self.node(path)
        return node is not None and wanted.passes(self._figures(node), *wanted.criteria(self._cache.now_ms()))

    def _figures(self, node: Node) -> _Figures:
        """What the tree filter reads of a node as this reader sees it (``node``: from ``_seen``)."""
        return _Figures(classes=self._walk(node.path)[2], problems=node.problems, last_ms=node.last_ms)

    def _listed(self, child: Node, prefix: str) -> bool:
        """Whether a child of ``prefix`` is shown (the root's child named ``""`` has the root's path: as it is)."""
        if child.path == prefix:
            return not self._top_cut
        return child.path not in self._whole

    def _seen(self, node: Node) -> Node:
        less = self._less.get(node.path)
        if less is None:
            return node
        rate, last_ms, _ = self._walk(node.path)
        return dataclasses.replace(
            node,
            topics=node.topics - less.topics,
            messages=node.messages - less.messages,
            rate=round(rate, 3),
            problems=node.problems - less.problems,
            last_ms=last_ms,
            children=node.children - self._hidden_children[node.path],
            topic=None if node.path in self._alone else node.topic,
        )

    def _walk(self, path: str) -> tuple[float, int, int]:
        """The rate, latest time and class bits of the visible topics at and under ``path``, from its children's.

        Down the branches that hold hidden topics only, each node once per view; elsewhere the cache's own
        figures. Not the node's figures less the hidden ones': the cache's rates are estimates per node,
        each brought up to date when read, so such a difference kept a share of the hidden traffic; and a
        class bit cannot be taken off (another topic below may have the same class).
        """
        known = self._walks.get(path)
        if known is not None:
            return known
        cache = self._cache
        node = cache.node(path)
        rate, latest, classes = 0.0, 0, 0
        if node is not None and node.topic is not None and path not in self._alone:
            # a visible topic with hidden ones under it: its own share of the node's rate, by its messages
            rate = node.rate * node.topic.count / node.messages if node.messages else 0.0
            latest = node.topic.last_ms
            classes = class_bit(path.split("/"))
        for name in cache.names(path):
            if not (name or path):  # the root's child named "": its path is the root's, so its row from the page
                if not self._top_cut:  # nothing hidden under it
                    for row in cache.page().shown:
                        if row.path == "":
                            rate, latest = rate + row.rate, max(latest, row.last_ms)
                    classes |= cache.classes("", "")
                continue
            child = f"{path}/{name}" if path else name
            if child in self._whole:
                continue
            if child in self._less:
                child_rate, child_ms, child_classes = self._walk(child)
            else:
                found = cache.node(child)
                if found is None:
                    continue
                child_rate, child_ms, child_classes = found.rate, found.last_ms, cache.classes(path, name)
            rate, latest, classes = rate + child_rate, max(latest, child_ms), classes | child_classes
        self._walks[path] = (rate, latest, classes)
        return rate, latest, classes
