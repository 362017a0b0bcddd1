"""A small HTTP endpoint for process managers and load balancers: ``/healthz`` and ``/api/health``."""

from __future__ import annotations

import asyncio
import errno
import logging
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Self

import orjson

from uns.errors import ConfigError

__all__ = ["StatusServer"]

log = logging.getLogger(__name__)

HealthSource = Callable[[], Mapping[str, object]]
_MAX_REQUEST_LINE = 8192


class StatusServer:
    """Serves the hub's health as JSON until cancelled; binds port 0 to a free port."""

    name = "http"

    def __init__(self, *, bind: str, port: int, sources: Mapping[str, HealthSource]) -> None:
        self._bind = bind
        self._port = port
        self._sources = sources
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        """``http://host:port`` with the real port."""
        if self._server is None:
            raise RuntimeError("StatusServer.url is known once entered")
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    async def __aenter__(self) -> Self:
        try:
            self._server = await asyncio.start_server(self._serve, self._bind, self._port)
        except OSError as exc:
            reason = f"cannot listen on {self._bind}:{self._port}: {exc.strerror}"
            if exc.errno == errno.EADDRINUSE:
                reason = (
                    f"{self._bind}:{self._port} is in use: choose another port with --http-port / UNS_HTTP_PORT,"
                    " or 0 for any free port"
                )
            raise ConfigError(source="web", path="web.http_port", value=self._port, reason=reason) from exc
        log.info("status HTTP on %s", self.url)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def run(self) -> None:
        """Serve until cancelled (connections are handled by the server's own tasks)."""
        await asyncio.Event().wait()

    def document(self) -> dict[str, object]:
        """Everything the sources report, by source name."""
        return {name: dict(source()) for name, source in self._sources.items()}

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(5):
                request_line = await reader.readline()
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass  # headers are not needed
            parts = request_line[:_MAX_REQUEST_LINE].decode("latin-1").split()
            path = parts[1] if len(parts) >= 2 else ""
            body: dict[str, object]
            if parts[:1] != ["GET"]:
                status, body = "405 Method Not Allowed", {"error": "only GET"}
            elif path == "/healthz":
                status, body = "200 OK", {"status": "ok"}
            elif path == "/api/health":
                status, body = "200 OK", self.document()
            else:
                status, body = (
                    "404 Not Found",
                    {"error": f"no such path {path!r}", "paths": ["/healthz", "/api/health"]},
                )
            data = orjson.dumps(body)
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n"
                "Connection: close\r\n\r\n".encode("latin-1")
                + data
            )
            await writer.drain()
        except (TimeoutError, ConnectionError) as exc:
            log.debug("status HTTP client dropped: %s", exc)
        finally:
            writer.close()
