"""``/api/mes/*``: MES events in (``POST``, validated like the UNS path, 422 on refusal) and the views out."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from uns.clock import utc_now
from uns.errors import BadArgument, StoreError
from uns.mes.intake import Refused
from uns.mes.scope import UnknownPath
from uns.mes.service import MesAdapter
from uns.mes.views_api import VIEWS
from uns.web.history_api import json_response, store_failed

__all__ = ["MES_OFF_HINT", "mes_routes"]


MES_OFF_HINT = (
    "the MES adapter is off: enable historian.enabled and mes.enabled in the hub config"
    " (UNS_MES__ENABLED=true) and restart the hub"
)
_MAX_BODY = 1_048_576


def _view(adapter: MesAdapter | None, name: str) -> Route:
    async def answer(request: Request) -> Response:
        if adapter is None:
            return json_response({"error": MES_OFF_HINT}, 503)
        params = {key: request.query_params.getlist(key) for key in request.query_params}
        if name == "current" and not params:  # what the KPIs were last computed from, shared by every page
            try:
                as_of, rows = await adapter.live.read()
            except StoreError as exc:
                return store_failed("MES view current", exc)
            return json_response({"rows": rows, "as_of": as_of})

        try:
            document = await asyncio.to_thread(adapter.view, name, params, now=utc_now())
        except UnknownPath as exc:
            return json_response({"error": str(exc), "field": exc.field, "path": exc.path, "nearest": exc.nearest}, 404)
        except BadArgument as exc:
            return json_response({"error": str(exc), "field": exc.field}, 400)
        except StoreError as exc:
            return store_failed(f"MES view {name}", exc)
        return json_response(document)

    return Route(f"/api/mes/{name}", answer, methods=["GET"], name=f"mes-{name}")


def _events(adapter: MesAdapter | None) -> Callable[[Request], object]:
    async def receive(request: Request) -> Response:
        if adapter is None:
            return json_response({"error": MES_OFF_HINT}, 503)
        topic = request.path_params["topic"]
        raw = await request.body()
        if len(raw) > _MAX_BODY:
            return json_response({"detail": [{"field": "body", "reason": f"larger than {_MAX_BODY} bytes"}]}, 413)
        try:
            orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            return json_response({"detail": [{"field": "body", "reason": f"not JSON: {exc}"}]}, 422)
        outcome = await adapter.submit(topic, raw)
        if isinstance(outcome, Refused):
            problems = outcome.problems or ((outcome.field, outcome.reason),)
            detail = [{"field": field, "reason": reason} for field, reason in problems]
            return json_response({"topic": topic, "detail": detail}, 422)
        if outcome.status == "rejected":
            detail = [{"field": outcome.field or "body", "reason": outcome.reason or "rejected"}]
            return json_response({"topic": topic, "detail": detail}, 422)
        status = 201 if outcome.status == "stored" else 200
        # a string: an unsigned 64-bit key is not exact as a JavaScript number
        return json_response({"topic": topic, "status": outcome.status, "event_key": str(outcome.event_key)}, status)

    return receive


def mes_routes(adapter: MesAdapter | None) -> list[Route]:
    """``POST /api/mes/events/<uns topic>`` and one ``GET /api/mes/<view>`` per view (``MesAdapter.view``)."""
    return [
        Route("/api/mes/events/{topic:path}", _events(adapter), methods=["POST"], name="mes-events"),
        *(_view(adapter, name) for name in VIEWS),
    ]
