"""``/api/history/*``: the historian's queries over HTTP as JSON, run off the event loop."""

from __future__ import annotations

import asyncio
import logging

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from uns.errors import BadArgument, StoreError, UnknownSeries
from uns.historian.queries import History
from uns.historian.query_api import ENDPOINTS, answer_bytes
from uns.logs import RateLimitedLog
from uns.query.args import document_bytes

__all__ = ["HISTORIAN_OFF_HINT", "history_routes", "json_response", "store_failed"]

log = logging.getLogger(__name__)

HISTORIAN_OFF_HINT = (
    "the historian is off: enable it with historian.enabled: true in the hub config (UNS_HISTORIAN__ENABLED=true)"
    " and restart the hub"
)


def json_response(document: object, status: int = 200) -> Response:
    """A JSON response written with orjson (times ISO-8601, integers exact)."""
    return Response(document_bytes(document), status_code=status, media_type="application/json")


_store_warnings = RateLimitedLog(log)


def store_failed(what: str, exc: StoreError) -> Response:
    """503 with the store's message: how every endpoint reading the file answers a failed read.

    The warning is logged once per ``what`` and interval: every open dashboard polls, and a broken file would
    flood the log.
    """
    _store_warnings.warning(what, "%s failed: %s", what, exc)
    return json_response({"error": str(exc)}, 503)


def _endpoint(history: History | None, name: str) -> Route:
    async def answer(request: Request) -> Response:
        if history is None:
            return json_response({"error": HISTORIAN_OFF_HINT}, 503)
        params = {key: request.query_params.getlist(key) for key in request.query_params}
        try:
            answer = await asyncio.to_thread(answer_bytes, history, name, params)
        except UnknownSeries as exc:
            return json_response({"error": str(exc), "field": exc.field}, 404)
        except BadArgument as exc:
            return json_response({"error": str(exc), "field": exc.field}, 400)
        except StoreError as exc:
            return store_failed(f"history query {name}", exc)
        return Response(answer, media_type="application/json")

    return Route(f"/api/history/{name}", answer, methods=["GET"], name=f"history-{name}")


def history_routes(history: History | None) -> list[Route]:
    """One GET route per history endpoint; with no history each answers 503 with a hint."""
    return [_endpoint(history, name) for name in ENDPOINTS]
