"""The webhook listener: a small uvicorn server of the connector's own, on loopback unless configured otherwise.

Each POST is checked before anything is read into the UNS: the body size (413), the HMAC signature
and its timestamp (401), JSON (400). A signed delivery seen before, within the timestamp
tolerance, is a replay: it answers 200 ``duplicate`` and is not processed again (a sender retrying a
delivery whose answer it lost is told it arrived). A good delivery is answered only once what it
produced is safe (``deliver`` returns): a 503 otherwise, so the sender retries.
"""

from __future__ import annotations

import hashlib
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Self

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bridges.http.signature import SignatureError, check_signature
from model.bridges.http import HttpWebhook
from uns.clock import now_ms
from uns.embedded_server import EmbeddedServer
from uns.logs import RateLimitedLog

__all__ = ["Deliver", "WebhookServer"]

log = logging.getLogger(__name__)

Deliver = Callable[[object], Awaitable[tuple[int, int]]]
"""Takes a delivery's JSON body; returns (items accepted, items refused) once they are safe."""


class WebhookServer:
    """``async with`` binds the socket (``url`` is then known); ``run()`` serves until cancelled."""

    def __init__(self, *, name: str, config: HttpWebhook, deliver: Deliver) -> None:
        self.name = name
        self._config = config
        self._deliver = deliver
        self._secret = config.secret.get_secret_value().encode()
        self._seen: dict[bytes, float] = {}  # signatures accepted -> when they leave the tolerance window
        self._socket: socket.socket | None = None
        self._server: EmbeddedServer | None = None
        self._warn = RateLimitedLog(log)
        self.counts = {"received": 0, "accepted": 0, "unauthorized": 0, "too_large": 0, "bad_json": 0, "replays": 0}

    @property
    def url(self) -> str:
        """Where senders POST to."""
        if self._socket is None:
            raise RuntimeError("WebhookServer.url needs `async with` first")
        host, port = self._socket.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}{self._config.path}"

    async def __aenter__(self) -> Self:
        family = socket.AF_INET6 if ":" in self._config.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self._config.host, self._config.port))
            sock.listen(128)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        self._socket = sock
        app = Starlette(routes=[Route(self._config.path, self._receive, methods=["POST"])])
        config = uvicorn.Config(
            app,
            lifespan="off",
            log_config=None,
            access_log=False,
            http="h11",
            ws="none",
            server_header=False,
            timeout_graceful_shutdown=1,
        )
        self._server = EmbeddedServer(config)
        log.info("http %s: webhook on %s", self.name, self.url)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    async def run(self) -> None:
        """Serve until cancelled, then close the listener and finish (or, after a second, cancel) requests."""
        if self._server is None or self._socket is None:
            raise RuntimeError("WebhookServer.run() needs `async with` first")
        await self._server.serve_until_cancelled(self._socket, name=f"http[{self.name}].uvicorn")

    async def _receive(self, request: Request) -> Response:
        self.counts["received"] += 1
        config = self._config
        body = await self._body(request)
        if body is None:
            self.counts["too_large"] += 1
            self._warn.warning(
                "too_large", "http %s: webhook body over %d bytes refused", self.name, config.max_body_bytes
            )
            return JSONResponse({"error": f"body over {config.max_body_bytes} bytes"}, status_code=413)
        now = now_ms() / 1000
        timestamp = request.headers.get(config.timestamp_header) if config.timestamp_header else None
        signature = request.headers.get(config.signature_header)
        try:
            check_signature(
                self._secret,
                body,
                header=signature,
                prefix=config.signature_prefix,
                algorithm=config.algorithm,
                timestamp=timestamp,
                tolerance_s=config.tolerance_s if config.timestamp_header else None,
                now_s=now,
            )
        except SignatureError as exc:
            self.counts["unauthorized"] += 1
            self._warn.warning("signature", "http %s: webhook refused (401): %s", self.name, exc)
            return JSONResponse({"error": str(exc)}, status_code=401)
        seen = hashlib.blake2b(f"{timestamp}|{signature}".encode(), digest_size=16).digest()
        self._forget(now)
        if seen in self._seen:
            self.counts["replays"] += 1
            self._warn.warning("replay", "http %s: webhook delivery seen before: not processed again", self.name)
            return JSONResponse({"status": "duplicate"})
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            self.counts["bad_json"] += 1
            return JSONResponse({"error": f"not JSON: {exc}"}, status_code=400)
        try:
            accepted, refused = await self._deliver(document)
        except Exception as exc:  # the UNS side failed (broker away): the sender must retry later
            self._warn.warning("deliver", "http %s: webhook delivery not taken (503): %r", self.name, exc)
            return JSONResponse({"error": "not taken, retry later"}, status_code=503)
        self._seen[seen] = now + config.tolerance_s
        self.counts["accepted"] += 1
        return JSONResponse({"status": "accepted", "items": accepted, "refused": refused})

    async def _body(self, request: Request) -> bytes | None:
        """The body, or None past the size limit (read no further than the limit)."""
        limit = self._config.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return None
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    def _forget(self, now: float) -> None:
        if len(self._seen) > 1000 or (self._seen and next(iter(self._seen.values())) < now):
            self._seen = {key: until for key, until in self._seen.items() if until >= now}
