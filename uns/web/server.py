"""The web server part: a Starlette app served by uvicorn inside the hub's own event loop."""

from __future__ import annotations

import dataclasses
import errno
import logging
import socket
import ssl
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import NamedTuple, Self

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from uns.embedded_server import EmbeddedServer
from uns.errors import ConfigError
from uns.historian.queries import History
from uns.web.auth import topic_access
from uns.web.headers import SecurityHeadersMiddleware
from uns.web.history_api import history_routes, json_response
from uns.web.proxy import ProxyHeadersMiddleware, TrustedProxies
from uns.web.roles import UNRESTRICTED, TopicAccess

__all__ = ["HealthSource", "PortSetting", "ReaderHealth", "WebServer"]

log = logging.getLogger(__name__)

HealthSource = Callable[[], Mapping[str, object]]
"""A part's health: called on every ``/api/health`` request, so keep it cheap."""


@dataclasses.dataclass(frozen=True, slots=True)
class ReaderHealth:
    """A health source whose document depends on what the reader may read (the web cache's counters).

    ``/api/health`` calls ``source`` with the request's :class:`TopicAccess`; called bare it answers for
    a reader who sees everything, like any other :data:`HealthSource`.
    """

    source: Callable[[TopicAccess], Mapping[str, object]]

    def __call__(self) -> Mapping[str, object]:
        """The document for a reader who sees everything."""
        return self.source(UNRESTRICTED)


_SHUTDOWN_GRACE_S = 1.0  # a request still running after this is cancelled


class PortSetting(NamedTuple):
    """The setting that chose a server's port, which the error names when the port is taken.

    ``source`` and ``path`` are the error's; ``how`` says how to set it (flag, environment variable).
    """

    source: str
    path: str
    how: str


_HTTP_PORT = PortSetting("web", "web.http_port", "--http-port / UNS_HTTP_PORT")  # the hub's web UI and HTTP API


def _listen(bind: str, port: int) -> socket.socket:
    """A listening, non-blocking TCP socket; port 0 picks a free one."""
    family, kind, proto, _, address = socket.getaddrinfo(bind, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[
        0
    ]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class WebServer:
    """Serves health and the history API over HTTP until cancelled.

    Args:
        bind: address to listen on (127.0.0.1 by default in the settings: there is no login yet).
        port: TCP port; 0 picks a free one, ``url`` tells which.
        health: per part name, a callable returning its health, served at ``/api/health``.
        history: the historian's queries, or None when the historian is off (its routes answer 503).
        routes: more routes, e.g. the MES API (``uns.web.mes_api.mes_routes``).
        middleware: Starlette middleware wrapped around every route, outermost first: the seam
            where login and roles (issue 7) plug in, e.g. ``[Middleware(AuthMiddleware, ...)]``. Outside
            it, always: the client address and scheme of trusted proxies, then the security headers.
        trusted_proxies: addresses or networks of reverse proxies whose ``X-Forwarded-For`` and
            ``X-Forwarded-Proto`` are believed (:mod:`uns.web.proxy`); empty believes nobody's.
        tls_cert_file: PEM certificate (chain) to serve HTTPS with; None serves plain HTTP.
        tls_key_file: the certificate's PEM private key (None: it is in ``tls_cert_file``).
        keep_alive_s: how long an idle client connection is kept open (uvicorn's 5 s by default).
        port_setting: the setting ``port`` came from, which a port in use names.
    """

    name = "web"

    def __init__(
        self,
        *,
        bind: str,
        port: int,
        health: Mapping[str, HealthSource],
        history: History | None,
        middleware: Sequence[Middleware] = (),
        routes: Sequence[BaseRoute] = (),
        trusted_proxies: Sequence[str] = (),
        tls_cert_file: Path | None = None,
        tls_key_file: Path | None = None,
        keep_alive_s: int = 5,
        port_setting: PortSetting = _HTTP_PORT,
    ) -> None:
        try:
            self._trusted = TrustedProxies(trusted_proxies)
        except ValueError as exc:
            raise ConfigError(
                source="web", path="web.trusted_proxies", value=list(trusted_proxies), reason=str(exc)
            ) from None
        if tls_key_file is not None and tls_cert_file is None:
            reason = "a TLS key needs its certificate: set web.tls_cert_file too"
            raise ConfigError(source="web", path="web.tls_key_file", value=str(tls_key_file), reason=reason)
        self._tls_cert = tls_cert_file
        self._tls_key = tls_key_file
        self._keep_alive_s = keep_alive_s
        self._bind = bind
        self._port = port
        self._port_setting = port_setting
        self._health = health
        self._history = history
        self._middleware = list(middleware)
        self._routes = list(routes)
        self._socket: socket.socket | None = None
        self._server: EmbeddedServer | None = None

    @property
    def url(self) -> str:
        """``http://host:port`` (``https://`` when serving TLS) with the real port."""
        if self._socket is None:
            raise RuntimeError("WebServer.url is known once entered")
        host, port = self._socket.getsockname()[:2]
        scheme = "https" if self._tls_cert is not None else "http"
        return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"

    def app(self) -> Starlette:
        """The ASGI application (also usable under any ASGI server or test client)."""
        routes = [
            Route("/healthz", self._healthz, methods=["GET"]),
            Route("/api/health", self._api_health, methods=["GET"]),
            *self._routes,  # first: a historian proxy (``uns web``) replaces the local history routes
            *history_routes(self._history),
        ]
        outer = [Middleware(ProxyHeadersMiddleware, trusted=self._trusted), Middleware(SecurityHeadersMiddleware)]
        return Starlette(
            routes=routes,
            middleware=[*outer, *self._middleware],
            exception_handlers={HTTPException: self._http_error},
        )

    async def __aenter__(self) -> Self:
        try:
            self._socket = _listen(self._bind, self._port)
        except OSError as exc:
            setting = self._port_setting
            reason = f"cannot listen on {self._bind}:{self._port}: {exc.strerror or exc}"
            if exc.errno == errno.EADDRINUSE:
                reason = (
                    f"{self._bind}:{self._port} is in use: choose another port with {setting.how},"
                    " or 0 for any free port"
                )
            raise ConfigError(source=setting.source, path=setting.path, value=self._port, reason=reason) from exc
        try:
            config = self._uvicorn_config()
        except BaseException:
            self._socket.close()
            self._socket = None
            raise
        self._server = EmbeddedServer(config)
        log.info("web on %s", self.url)
        return self

    def _uvicorn_config(self) -> uvicorn.Config:
        """Uvicorn's settings, loaded now so a bad certificate fails the start, naming the setting."""
        config = uvicorn.Config(
            SecurityHeadersMiddleware(self.app()),  # outside Starlette's error layer too: its bare 500s get them
            lifespan="off",
            log_config=None,
            access_log=False,
            http="h11",
            ws="none",
            server_header=False,
            timeout_keep_alive=self._keep_alive_s,
            timeout_graceful_shutdown=int(_SHUTDOWN_GRACE_S),
            proxy_headers=False,  # uvicorn would believe any loopback peer: uns.web.proxy decides instead
            ssl_certfile=self._tls_cert,
            ssl_keyfile=self._tls_key,
        )
        try:
            config.load()
        except (OSError, ssl.SSLError) as exc:
            reason = f"cannot load the TLS certificate or key: {exc}"
            raise ConfigError(source="web", path="web.tls_cert_file", value=str(self._tls_cert), reason=reason) from exc
        return config

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        sock, self._socket = self._socket, None
        self._server = None
        if sock is not None:
            sock.close()  # uvicorn closed it already when run() served; closing twice is harmless

    async def run(self) -> None:
        """Serve until cancelled, then stop taking connections and finish (or cancel) running requests."""
        if self._server is None or self._socket is None:
            raise RuntimeError("WebServer.run() needs `async with WebServer(...)` first")
        await self._server.serve_until_cancelled(self._socket, name="uns.web.uvicorn")

    def document(self, access: TopicAccess = UNRESTRICTED) -> dict[str, object]:
        """Everything the health sources report, by source name, as ``access``'s reader may see it."""
        return {
            name: dict(source.source(access) if isinstance(source, ReaderHealth) else source())
            for name, source in self._health.items()
        }

    async def _healthz(self, request: Request) -> Response:
        return json_response({"status": "ok"})

    async def _api_health(self, request: Request) -> Response:
        return json_response(self.document(topic_access(request)))

    async def _http_error(self, request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        if status == 404:
            paths = ["/healthz", "/api/health", "/api/history/<endpoint>"]
            return json_response({"error": f"no such path {request.url.path!r}", "paths": paths}, 404)
        detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
        return json_response({"error": detail}, status)
