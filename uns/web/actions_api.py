"""``POST /api/publish`` (a test message) and ``POST /api/sparkplug/rebirth``: the UI's write actions.

Who may call them is the auth middleware's job (``uns/web/roles.py``: publish for app and up, with
topic checks; rebirth for host and admin); here only the request itself is checked.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
from types import TracebackType
from typing import Self

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from model.sparkplug_ids import check_sparkplug_id
from uns.clock import now_ms
from uns.connect import ClientFactory
from uns.errors import BrokerError
from uns.mqtt.types import PubSub
from uns.sparkplug.node_control import rebirth_command
from uns.web.history_api import json_response

__all__ = ["MAX_PUBLISH_BYTES", "WebActions"]

log = logging.getLogger(__name__)

MAX_PUBLISH_BYTES = 256 * 1024
"""The largest test message the UI may publish."""


def _problem(field: str, reason: str, status: int = 400) -> Response:
    return json_response({"error": f"{field}: {reason}", "field": field}, status)


class WebActions:
    """An MQTT client for the UI's writes; ``routes()`` are the two endpoints.

    Args:
        clients: opens the client (``uns-web-actions``).
    """

    def __init__(self, *, clients: ClientFactory) -> None:
        self._clients = clients
        self._client: PubSub | None = None
        self._stack = contextlib.AsyncExitStack()
        self.published = 0
        self.rebirths = 0

    async def __aenter__(self) -> Self:
        self._client = await self._stack.enter_async_context(self._clients(client_id="uns-web-actions"))
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._client = None
        await self._stack.__aexit__(exc_type, exc, tb)

    def routes(self) -> list[Route]:
        """``POST /api/publish`` and ``POST /api/sparkplug/rebirth``."""
        return [
            Route("/api/publish", self._publish, methods=["POST"], name="publish"),
            Route("/api/sparkplug/rebirth", self._rebirth, methods=["POST"], name="rebirth"),
        ]

    async def _body(self, request: Request) -> dict[str, object] | Response:
        raw = await request.body()
        if len(raw) > MAX_PUBLISH_BYTES + 4096:
            return _problem("payload", f"larger than {MAX_PUBLISH_BYTES} bytes", 413)
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            return _problem("body", f"not JSON: {exc}")
        return body if isinstance(body, dict) else _problem("body", "a JSON object is expected")

    async def _publish(self, request: Request) -> Response:
        body = await self._body(request)
        if isinstance(body, Response):
            return body
        topic = body.get("topic")
        if not isinstance(topic, str) or not topic or "+" in topic or "#" in topic or len(topic) > 65535:
            return _problem("topic", "a topic name without wildcards is required")
        text, encoded = body.get("payload", ""), body.get("payload_base64")
        try:
            payload = base64.b64decode(encoded, validate=True) if isinstance(encoded, str) else str(text).encode()
        except binascii.Error:
            return _problem("payload_base64", "not valid base64")
        if len(payload) > MAX_PUBLISH_BYTES:
            return _problem("payload", f"larger than {MAX_PUBLISH_BYTES} bytes", 413)
        qos, retain = body.get("qos", 0), body.get("retain", False)
        if qos not in (0, 1) or not isinstance(retain, bool):
            return _problem("qos" if qos not in (0, 1) else "retain", "qos is 0 or 1, retain true or false")
        client = self._client
        if client is None:
            return json_response({"error": "the web layer is not connected to the broker"}, 503)
        try:
            await client.publish(topic, payload, qos=int(str(qos)), retain=retain)
        except BrokerError as exc:
            return json_response({"error": str(exc)}, 502)
        self.published += 1
        log.info("web: published %d bytes on %s", len(payload), topic)
        return json_response({"topic": topic, "bytes": len(payload), "qos": qos, "retain": retain}, 201)

    async def _rebirth(self, request: Request) -> Response:
        body = await self._body(request)
        if isinstance(body, Response):
            return body
        ids = {}
        for field in ("group", "node"):
            value = body.get(field)
            try:
                ids[field] = check_sparkplug_id(str(value)) if isinstance(value, str) else None
            except ValueError as exc:
                return _problem(field, str(exc))
            if ids[field] is None:
                return _problem(field, "required")
        topic, payload = rebirth_command(str(ids["group"]), str(ids["node"]), now_ms())
        client = self._client
        if client is None:
            return json_response({"error": "the web layer is not connected to the broker"}, 503)
        await client.publish(topic, payload, qos=0)
        self.rebirths += 1
        log.info("web: rebirth requested for %s/%s", ids["group"], ids["node"])
        return json_response({"topic": topic}, 202)
