"""``/api/tree``, ``/api/topic``, ``/api/search``, ``/api/sparkplug/nodes`` and ``/api/stream`` over the topic cache."""

from __future__ import annotations

import base64
import dataclasses
import logging
import math
import re
from collections.abc import AsyncIterator

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

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
from uns.web.cache import Node, TopicCache, TopicInfo
from uns.web.history_api import json_response

__all__ = ["MAX_SHOWN_BYTES", "render_payload", "tree_routes"]

log = logging.getLogger(__name__)

MAX_SHOWN_BYTES = 1_048_576
"""The largest ``max_bytes`` a client may ask ``/api/topic`` for."""

_DEFAULT_SHOWN = 16_384
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


# -- routes ------------------------------------------------------------------------------------------


def tree_routes(cache: TopicCache, *, heartbeat_s: float = 15.0, interval_s: float = 0.25) -> list[Route]:
    """The topic browser's JSON and Server-Sent Events routes over ``cache``.

    Args:
        cache: the live topic cache (entered and running).
        heartbeat_s: an SSE comment is sent after this long without updates, so proxies keep the stream.
        interval_s: at most one SSE batch per this many seconds.
    """

    async def tree(request: Request) -> Response:
        prefix = request.query_params.get("prefix", "")  # exact: MQTT topic levels may be empty
        try:
            limit = _int_param(request, "limit", 1000, 1, 100_000)
        except _BadParam as exc:
            return _bad(exc)
        node = cache.node(prefix)
        if node is None:
            return json_response({"error": f"no topic seen under {prefix!r}", "field": "prefix"}, 404)
        children = cache.children(prefix, limit=limit)
        return json_response(
            {
                "prefix": prefix,
                "node": _node_json(node),
                "children": [_node_json(child) for child in children],
                "truncated": len(children) < node.children,
            }
        )

    async def topic(request: Request) -> Response:
        name = request.query_params.get("topic", "")
        try:
            max_bytes = _int_param(request, "max_bytes", _DEFAULT_SHOWN, 1, MAX_SHOWN_BYTES)
        except _BadParam as exc:
            return _bad(exc)
        info = cache.info(name)
        raw = cache.payload(name)
        if info is None or raw is None:
            return json_response({"error": f"no message seen on topic {name!r}", "field": "topic"}, 404)
        lookup = None
        if name.startswith(NAMESPACE + "/"):
            try:
                lookup = cache.sparkplug.alias_lookup(SparkplugTopic.from_str(name))
            except SparkplugError:
                lookup = None
        shown = render_payload(name, raw, size=info.size, max_bytes=max_bytes, lookup=lookup)
        return json_response(
            {"topic": name, "size": info.size, "max_bytes": max_bytes, **shown, "info": _info_json(info)}
        )

    async def search(request: Request) -> Response:
        text = request.query_params.get("q", "")
        try:
            limit = _int_param(request, "limit", 100, 1, 10_000)
        except _BadParam as exc:
            return _bad(exc)
        found = cache.search(text, limit + 1)
        rows = [_info_json(info) for info in found[:limit]]
        return json_response({"q": text, "topics": rows, "more": len(found) > limit})

    async def nodes(request: Request) -> Response:
        return json_response(
            {
                "nodes": [dataclasses.asdict(node) for node in cache.sparkplug.edge_nodes()],
                "hosts": [dataclasses.asdict(host) for host in cache.sparkplug.hosts()],
            }
        )

    async def stream(request: Request) -> Response:
        prefix = request.query_params.get("prefix", "").rstrip("/")

        async def events() -> AsyncIterator[bytes]:
            yield b"retry: 2000\n: connected\n\n"
            async for batch in cache.updates(prefix, interval_s=interval_s, idle_s=heartbeat_s):
                if not batch:
                    yield b": keepalive\n\n"
                    continue
                data = orjson.dumps({"updates": [_info_json(update) for update in batch]})
                yield b"event: updates\ndata: " + data + b"\n\n"
            log.debug("update stream for %r ended: the cache stopped", prefix)

        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(events(), media_type="text/event-stream", headers=headers)

    return [
        Route("/api/tree", tree, methods=["GET"], name="tree"),
        Route("/api/topic", topic, methods=["GET"], name="topic"),
        Route("/api/search", search, methods=["GET"], name="search"),
        Route("/api/sparkplug/nodes", nodes, methods=["GET"], name="sparkplug-nodes"),
        Route("/api/stream", stream, methods=["GET"], name="stream"),
    ]
