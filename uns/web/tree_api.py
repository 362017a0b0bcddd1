"""``/api/tree``, ``/api/topic``, ``/api/search``, ``/api/sparkplug/nodes`` and ``/api/stream`` over the topic cache."""

from __future__ import annotations

import base64
import dataclasses
import logging
import math
import re
from collections.abc import AsyncIterator, Iterable, Iterator

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from uns.clock import now_ms
from uns.errors import PayloadDecodeError, SparkplugError
from uns.sparkplug import (
    NAMESPACE,
    DataSet,
    Lookup,
    MessageType,
    Metric,
    MetricValue,
    PropertySet,
    SparkplugTopic,
    Template,
    decode_payload,
)
from uns.web.auth import count_refusal, topic_access
from uns.web.cache import CLASS_WORDS, Node, TopicCache, TopicInfo, TreeFilter, Update
from uns.web.history_api import json_response
from uns.web.roles import SPARKPLUG_GRANT, TopicAccess
from uns.web.visible_tree import HiddenIndex, VisibleTree

__all__ = ["MAX_SHOWN_BYTES", "MAX_WATCHED", "render_payload", "tree_routes", "visible_paths"]

log = logging.getLogger(__name__)

MAX_SHOWN_BYTES = 1_048_576
"""The largest ``max_bytes`` a client may ask ``/api/topic`` for."""

MAX_WATCHED = 200
"""The most ``watch`` prefixes plus ``topic`` names one ``/api/stream`` may follow."""

_DEFAULT_SHOWN = 16_384
_DEFAULT_PAGE = 200
_CATCH_UP_ROWS = 2_000  # rows per watched node sent when a stream (re)opens with ``since``
_INFO_FIELDS = tuple(field.name for field in dataclasses.fields(TopicInfo))
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # text with these is shown as base64


class _BadParam(Exception):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise _BadParam(name, f"must be an integer from {low} to {high} (got {raw!r})")
    return value


def _tree_filter(request: Request) -> TreeFilter:
    """``class``, ``quality=problem`` and ``changed_s`` query parameters as a filter."""
    params = request.query_params
    class_word = params.get("class") or None
    if class_word is not None and class_word not in CLASS_WORDS:
        raise _BadParam("class", f"one of {', '.join(CLASS_WORDS)} (got {class_word!r})")
    quality = params.get("quality") or None
    if quality not in (None, "problem"):
        raise _BadParam("quality", f"'problem' (bad or stale) or empty (got {quality!r})")
    changed_s = _int_param(request, "changed_s", 0, 0, 10_000_000)
    return TreeFilter(class_word=class_word, problems=quality == "problem", changed_ms=changed_s * 1000 or None)


def visible_paths(topic: str, watched: frozenset[str]) -> Iterator[str]:
    """The tree rows a message on ``topic`` changes when the nodes in ``watched`` are expanded.

    A row is a child of a watched node on the way to ``topic`` (its counts and rate change), the
    topic's own row among them. ``""`` is the root.
    """
    names = topic.split("/")
    prefix = ""
    for depth, name in enumerate(names):
        child = prefix + "/" + name if depth else name
        if prefix in watched:
            yield child
        prefix = child


def _bad(exc: _BadParam) -> Response:
    return json_response({"error": str(exc), "field": exc.field}, 400)


def _info_json(info: TopicInfo) -> dict[str, object]:
    return {name: getattr(info, name) for name in _INFO_FIELDS}


def _node_json(node: Node) -> dict[str, object]:
    return {
        "name": node.name,
        "path": node.path,
        "topics": node.topics,
        "messages": node.messages,
        "rate": node.rate,
        "problems": node.problems,
        "last_ms": node.last_ms,
        "children": node.children,
        "is_topic": node.is_topic,
        "topic": None if node.topic is None else _info_json(node.topic),
    }


# -- payloads as JSON -------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _value_json(value: MetricValue) -> object:
    if isinstance(value, bytes):
        return {"base64": _b64(value)}
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN or infinity; say which it was
    if isinstance(value, DataSet):
        return {"columns": list(value.columns), "types": [t.name for t in value.types], "rows": value.rows}
    if isinstance(value, Template):
        return {
            "template_ref": value.template_ref,
            "version": value.version,
            "is_definition": value.is_definition,
            "parameters": [{"name": p.name, "type": p.type.name, "value": p.value} for p in value.parameters],
            "metrics": [_metric_json(metric) for metric in value.metrics],
        }
    if isinstance(value, PropertySet):
        return {key: {"type": prop.type.name, "value": _value_json(prop.value)} for key, prop in value.items()}
    if isinstance(value, list):
        return [_value_json(item) for item in value]
    return value


def _metric_json(metric: Metric) -> dict[str, object]:
    out: dict[str, object] = {
        "name": metric.name,
        "alias": metric.alias,
        "timestamp": metric.timestamp,
        "datatype": metric.datatype.name if metric.datatype is not None else None,
        "value": _value_json(metric.value),
    }
    for flag in ("is_null", "is_historical", "is_transient"):
        if getattr(metric, flag):
            out[flag] = True
    if metric.properties:
        out["properties"] = _value_json(metric.properties)
    return out


def _text(shown: bytes, truncated: bool) -> str | None:
    """``shown`` as text, or None when it is not (a cut multi-byte character at the end is dropped)."""
    try:
        text = shown.decode("utf-8")
    except UnicodeDecodeError as exc:
        if not (truncated and exc.reason == "unexpected end of data" and exc.start >= len(shown) - 3):
            return None
        text = shown[: exc.start].decode("utf-8")
    return None if _CONTROL.search(text) else text


def _sparkplug(sp: SparkplugTopic, raw: bytes, size: int, max_bytes: int, lookup: Lookup | None) -> dict[str, object]:
    topic = str(sp)
    if size > len(raw):
        error = f"{size} bytes, more than the cache keeps ({len(raw)}): shown raw, not decoded"
        return {"encoding": "base64", "payload": _b64(raw[:max_bytes]), "truncated": True, "error": error}
    try:
        decoded = decode_payload(raw, topic=topic, lookup=lookup)
    except PayloadDecodeError as exc:
        shown = raw[:max_bytes]
        return {
            "encoding": "base64",
            "payload": _b64(shown),
            "truncated": size > len(shown),
            "error": str(exc),
            "offset": exc.offset,
        }
    body = decoded.payload
    metrics: list[dict[str, object]] = []
    used = 0
    for metric in body.metrics:
        document = _metric_json(metric)
        used += len(orjson.dumps(document))
        if used > max_bytes:
            break
        metrics.append(document)
    return {
        "encoding": "sparkplug",
        "message_type": sp.message_type.value,
        "payload": {
            "timestamp": body.timestamp,
            "seq": body.seq,
            "uuid": body.uuid,
            "body": None if body.body is None else _b64(body.body),
            "metrics": metrics,
        },
        "metrics_total": len(body.metrics),
        "truncated": len(metrics) < len(body.metrics),
        "problems": [dataclasses.asdict(problem) for problem in decoded.problems],
    }


def render_payload(
    topic: str, raw: bytes, *, size: int, max_bytes: int, lookup: Lookup | None = None
) -> dict[str, object]:
    """A payload for people: JSON if it parses, else text, else base64; Sparkplug decoded by its topic.

    Args:
        topic: where it was published; ``spBv1.0/<group>/<type>/...`` payloads are decoded as
            Sparkplug B (never guessed from the bytes), ``spBv1.0/STATE/<host>`` is JSON.
        raw: the stored payload (maybe shorter than ``size``).
        size: the payload's real size in bytes.
        max_bytes: how many payload bytes to show (for Sparkplug: bytes of decoded metrics).
        lookup: resolves DATA metric aliases from the births seen.

    Returns:
        ``encoding`` (json, text, base64 or sparkplug), ``payload``, ``truncated`` (True when less
        than the whole payload is shown) and, when decoding failed, ``error``.
    """
    if topic.startswith(NAMESPACE + "/"):
        try:
            sp = SparkplugTopic.from_str(topic)
        except SparkplugError as exc:
            return {**render_payload("", raw, size=size, max_bytes=max_bytes), "error": str(exc)}
        if sp.message_type is not MessageType.STATE:
            return _sparkplug(sp, raw, size, max_bytes, lookup)
    shown = raw[:max_bytes]
    truncated = size > len(shown)
    if not truncated:
        try:
            return {"encoding": "json", "payload": orjson.loads(shown), "truncated": False}
        except orjson.JSONDecodeError:
            pass
    text = _text(shown, truncated)
    if text is not None:
        return {"encoding": "text", "payload": text, "truncated": truncated}
    return {"encoding": "base64", "payload": _b64(shown), "truncated": truncated}


def _sparkplug_status(cache: TopicCache, access: TopicAccess) -> dict[str, object]:
    """The Sparkplug page's document: the edge nodes and hosts whose topics ``access`` may read.

    A node is listed when its births are readable, its ``commands`` count (of NCMD and DCMD) when its
    commands are (else None), a host when its STATE is. A reader not given every command (all but host and
    admin) learns nothing from them: no node or device known only from a command, no command's time as
    ``last_seen_ms``.
    """
    found: list[dict[str, object]] = []
    for node in cache.sparkplug.edge_nodes(commands=access.everything):
        group, name = node.group_id, node.edge_node_id
        if not access.may_read(f"{NAMESPACE}/{group}/NBIRTH/{name}"):
            continue
        document = dataclasses.asdict(node)
        if not access.may_read(f"{NAMESPACE}/{group}/NCMD/{name}"):
            document["commands"] = None
        found.append(document)
    hosts = [host for host in cache.sparkplug.hosts() if access.may_read(f"{NAMESPACE}/STATE/{host.host_id}")]
    return {"nodes": found, "hosts": [dataclasses.asdict(host) for host in hosts]}


# -- routes ------------------------------------------------------------------------------------------


def tree_routes(cache: TopicCache, *, heartbeat_s: float = 15.0, interval_s: float = 0.25) -> list[Route]:
    """The topic browser's JSON and Server-Sent Events routes over ``cache``.

    Args:
        cache: the live topic cache (entered and running).
        heartbeat_s: an SSE comment is sent after this long without updates, so proxies keep the stream.
        interval_s: at most one SSE batch per this many seconds.
    """
    hidden = HiddenIndex(cache)  # where each role's tree is cut, shared by the requests

    async def tree(request: Request) -> Response:
        params = request.query_params
        prefix = params.get("prefix", "")  # exact: MQTT topic levels may be empty
        try:
            limit = _int_param(request, "limit", _DEFAULT_PAGE, 1, 100_000)
            wanted = _tree_filter(request)
        except _BadParam as exc:
            return _bad(exc)
        view = VisibleTree(cache, topic_access(request), index=hidden)
        node = view.node(prefix)
        if node is None:  # hidden from this role or never seen: the same answer, so it confirms nothing
            if cache.node(prefix) is not None:
                count_refusal(request, f"tree under {prefix!r}: hidden from its role", count="hidden_reads")
            return json_response({"error": f"no topic seen under {prefix!r}", "field": "prefix"}, 404)
        page = view.page(prefix, limit=limit, after=params.get("after"), wanted=wanted)
        return json_response(
            {
                "prefix": prefix,
                "node": _node_json(node),
                "children": [_node_json(child) for child in page.shown],
                "more": page.more,
                "truncated": page.more > 0,
                "now_ms": now_ms(),
            }
        )

    async def topic(request: Request) -> Response:
        name = request.query_params.get("topic", "")
        try:
            max_bytes = _int_param(request, "max_bytes", _DEFAULT_SHOWN, 1, MAX_SHOWN_BYTES)
            raw_as = request.query_params.get("raw") or None
            if raw_as not in (None, "base64"):
                raise _BadParam("raw", f"'base64' or empty (got {raw_as!r})")
        except _BadParam as exc:
            return _bad(exc)
        readable = topic_access(request).may_read(name)
        if not readable and cache.info(name) is not None:
            count_refusal(request, f"topic {name!r}: hidden from its role", count="hidden_reads")
        info = cache.info(name) if readable else None
        raw = cache.payload(name) if readable else None
        if info is None or raw is None:  # hidden from this role or never seen: the same answer
            return json_response({"error": f"no message seen on topic {name!r}", "field": "topic"}, 404)
        lookup = None
        if name.startswith(NAMESPACE + "/"):
            try:
                lookup = cache.sparkplug.alias_lookup(SparkplugTopic.from_str(name))
            except SparkplugError:
                lookup = None
        shown = render_payload(name, raw, size=info.size, max_bytes=max_bytes, lookup=lookup)
        if raw_as is not None:
            # the bytes themselves for a hex view, within the same limit as the decoded view
            shown["raw_base64"] = _b64(raw[:max_bytes])
            shown["raw_truncated"] = info.size > min(len(raw), max_bytes)
        return json_response(
            {"topic": name, "size": info.size, "max_bytes": max_bytes, **shown, "info": _info_json(info)}
        )

    async def search(request: Request) -> Response:
        text = request.query_params.get("q", "")
        try:
            limit = _int_param(request, "limit", 100, 1, 10_000)
            wanted = _tree_filter(request)
        except _BadParam as exc:
            return _bad(exc)
        access = topic_access(request)
        keep, skip = hidden.reader(access), hidden.skipped(access)
        cut = False  # more topics may match than were looked at
        if wanted.empty:
            found = cache.search(text, limit + 1, keep=keep, skip=skip)
        else:
            # filtered: look further, and say "more" when the unfiltered search was cut (before the filter's
            # answers ran out); on the figures the reader's tree shows (a topic's hidden ones below it pass
            # it on nothing)
            looked = max(limit + 1, 20 * limit)
            candidates = cache.search(text, looked, keep=keep, skip=skip)
            view = VisibleTree(cache, access, index=hidden)
            found = [info for info in candidates if view.admits(info.topic, wanted)][: limit + 1]
            cut = len(candidates) >= looked
        rows = [_info_json(info) for info in found[:limit]]
        return json_response({"q": text, "topics": rows, "more": cut or len(found) > limit, "now_ms": now_ms()})

    async def nodes(request: Request) -> Response:
        access = topic_access(request)
        if not access.may_read_any(NAMESPACE + "/#"):
            role = access.principal.role
            error = f"role {role} may not read Sparkplug (spBv1.0/...): needs {SPARKPLUG_GRANT}"
            count_refusal(request, error)
            return json_response({"error": error, "role": role, "needs": SPARKPLUG_GRANT}, 403)
        return json_response(_sparkplug_status(cache, access))

    def rows(view: VisibleTree, paths: Iterable[str]) -> list[dict[str, object]]:
        found = (view.node(path) for path in paths)
        return [_node_json(node) for node in found if node is not None]

    def watched_rows(batch: list[Update], watched: frozenset[str], topics: frozenset[str]) -> list[str]:
        paths = dict.fromkeys(path for update in batch for path in visible_paths(update.topic, watched))
        paths.update(dict.fromkeys(update.topic for update in batch if update.topic in topics))
        return list(paths)

    def catch_up(
        view: VisibleTree, watched: frozenset[str], topics: frozenset[str], since_ms: int
    ) -> list[dict[str, object]]:
        """Rows changed since ``since_ms``: what a (re)opened stream missed."""
        changed = TreeFilter(changed_ms=max(0, now_ms() - since_ms))
        found = [node for prefix in watched for node in view.page(prefix, limit=_CATCH_UP_ROWS, wanted=changed).shown]
        out = [_node_json(node) for node in found]
        return out + [row for row in rows(view, topics) if int(str(row["last_ms"])) >= since_ms]

    async def node_stream(params: Iterable[tuple[str, str]], access: TopicAccess) -> AsyncIterator[bytes]:
        watched = frozenset(value.rstrip("/") for key, value in params if key == "watch")
        topics = frozenset(value for key, value in params if key == "topic")
        since = dict(params).get("since")
        keep = hidden.reader(access)  # a hidden topic's message does not even wake the stream
        yield b"retry: 2000\n: connected\n\n"
        greeted = False
        async for batch in cache.updates("", interval_s=interval_s, idle_s=heartbeat_s, greet=True, keep=keep):
            if not greeted:  # subscribed: now send what changed while the client had no stream
                greeted = True
                if since is not None and since.isdigit():
                    missed = catch_up(VisibleTree(cache, access, index=hidden), watched, topics, int(since))
                    yield b"event: nodes\ndata: " + orjson.dumps({"nodes": missed, "now_ms": now_ms()}) + b"\n\n"
                continue
            if not batch:
                yield b": keepalive\n\n"
                continue
            paths = watched_rows(batch, watched, topics)
            if paths:
                data = orjson.dumps(
                    {"nodes": rows(VisibleTree(cache, access, index=hidden), paths), "now_ms": now_ms()}
                )
                yield b"event: nodes\ndata: " + data + b"\n\n"

    async def stream(request: Request) -> Response:
        params = request.query_params.multi_items()
        access = topic_access(request)
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        if any(key in ("watch", "topic") for key, _ in params):
            if sum(key in ("watch", "topic") for key, _ in params) > MAX_WATCHED:
                return json_response({"error": f"watch, topic: at most {MAX_WATCHED} in all", "field": "watch"}, 400)
            return StreamingResponse(node_stream(params, access), media_type="text/event-stream", headers=headers)
        prefix = request.query_params.get("prefix", "").rstrip("/")
        keep = hidden.reader(access)

        async def events() -> AsyncIterator[bytes]:
            yield b"retry: 2000\n: connected\n\n"
            async for batch in cache.updates(prefix, interval_s=interval_s, idle_s=heartbeat_s, keep=keep):
                if not batch:
                    yield b": keepalive\n\n"
                    continue
                data = orjson.dumps({"updates": [_info_json(update) for update in batch]})
                yield b"event: updates\ndata: " + data + b"\n\n"
            log.debug("update stream for %r ended: the cache stopped", prefix)

        return StreamingResponse(events(), media_type="text/event-stream", headers=headers)

    return [
        Route("/api/tree", tree, methods=["GET"], name="tree"),
        Route("/api/topic", topic, methods=["GET"], name="topic"),
        Route("/api/search", search, methods=["GET"], name="search"),
        Route("/api/sparkplug/nodes", nodes, methods=["GET"], name="sparkplug-nodes"),
        Route("/api/stream", stream, methods=["GET"], name="stream"),
    ]
