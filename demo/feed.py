"""A change feed over REST, as the demo's ERP and QMS serve their records: pages after a cursor, with ETags.

``GET <route>?after=<cursor>&limit=<n>`` answers ``{"items": [...], "next_cursor": "<n>"}``: the
records changed after the cursor, oldest change first, each carrying ``seq`` (its change number).
``next_cursor`` is the last item's ``seq`` (the cursor given when there is none), so a client that
keeps it asks only for what changed since, across its restarts too: the HTTP source's ``cursor``
pagination does exactly that. Each answer has an ``ETag`` (a hash of the body); a request whose
``If-None-Match`` names it gets ``304 Not Modified``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

__all__ = ["MAX_LIMIT", "Fetch", "feed_route"]

MAX_LIMIT = 1000
"""The most items one page holds."""
_DEFAULT_LIMIT = 100

Fetch = Callable[[int, int], Any]
"""(after, limit) -> awaitable list of items (dicts with ``seq``), oldest change first."""


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query_params.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name}: {text!r} is not an integer") from None
    if not low <= value <= high:
        raise ValueError(f"{name}: {value} is outside {low}..{high}")
    return value


def feed_route(path: str, fetch: Fetch) -> Route:
    """``GET path``: a change feed served from ``fetch``."""

    async def endpoint(request: Request) -> Response:
        try:
            after = _int_param(request, "after", 0, 0, 2**62)
            limit = _int_param(request, "limit", _DEFAULT_LIMIT, 1, MAX_LIMIT)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        items: list[dict[str, object]] = await fetch(after, limit)
        cursor = items[-1]["seq"] if items else after
        body = orjson.dumps({"items": items, "next_cursor": str(cursor)})
        etag = '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
        if etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers={"ETag": etag})
        return Response(body, media_type="application/json", headers={"ETag": etag, "Cache-Control": "no-cache"})

    return Route(path, endpoint, methods=["GET"])
