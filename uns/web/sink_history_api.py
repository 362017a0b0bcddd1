"""``/api/sinks/<name>/history/last|raw``: the history API's ``last`` and ``raw`` answered from a PostgreSQL sink."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from model.sinks import SinkConfig
from uns.errors import BadArgument, UnknownSeries
from uns.sinks.postgres_query import reader_document, sink_reader
from uns.web.history_api import json_response

__all__ = ["sink_history_routes"]

log = logging.getLogger(__name__)


def sink_history_routes(configs: Sequence[SinkConfig]) -> list[Route]:
    """``GET /api/sinks/{name}/history/{endpoint}`` over the configured sinks (role viewer, as any GET)."""
    sinks = {config.name: config for config in configs}

    async def answer(request: Request) -> Response:
        name, endpoint = request.path_params["name"], request.path_params["endpoint"]
        config = sinks.get(name)
        if config is None:
            known = ", ".join(sinks) or "none configured"
            return json_response({"error": f"no sink {name} (have: {known})", "field": "sink"}, 404)
        import psycopg  # here, not at the top: a hub without a PostgreSQL sink never loads it

        params = {key: request.query_params.getlist(key) for key in request.query_params}
        try:
            reader = sink_reader(config)  # a sink of another kind: BadArgument naming sink, as uns query --sink
            document = await asyncio.to_thread(reader_document, reader, endpoint, params)
        except UnknownSeries as exc:
            return json_response({"error": str(exc), "field": exc.field}, 404)
        except BadArgument as exc:
            return json_response({"error": str(exc), "field": exc.field}, 400)
        except psycopg.Error as exc:
            log.warning("sink %s: history query %s failed: %s", name, endpoint, exc)
            return json_response({"error": f"sink {name}: the database cannot be read: {exc}".strip()}, 503)
        return json_response(document)

    return [Route("/api/sinks/{name}/history/{endpoint}", answer, methods=["GET"], name="sink-history")]
