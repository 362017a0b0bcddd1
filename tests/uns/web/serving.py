"""The web server under test on a free loopback port (behind an auth, or as given), with an httpx client on it."""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path

import httpx
from starlette.routing import BaseRoute

from tests.fixtures.running import running
from uns.web import WebServer
from uns.web.auth import WebAuth
from uns.web.server import HealthSource

__all__ = ["serve_with_auth", "serving"]


@contextlib.asynccontextmanager
async def serving(web: WebServer, *, verify: ssl.SSLContext | bool = True) -> AsyncIterator[httpx.AsyncClient]:
    """``web`` entered and running, and a client on its URL (10 s timeout); both stopped at the end."""
    async with running(web, name="test.web"), httpx.AsyncClient(base_url=web.url, timeout=10, verify=verify) as client:
        yield client


@contextlib.asynccontextmanager
async def serve_with_auth(
    auth: WebAuth,
    *,
    routes: Sequence[BaseRoute],
    trusted_proxies: tuple[str, ...] = (),
    tls: tuple[Path, Path] | None = None,
    health: Mapping[str, HealthSource] | None = None,
) -> AsyncIterator[httpx.AsyncClient]:
    """``routes`` behind ``auth``'s middleware and routes (over TLS with ``tls``: cert and key); a client on it.

    ``/api/health`` has the auth's section (``auth``) and ``health``'s.
    """
    web = WebServer(
        bind="127.0.0.1",
        port=0,
        health={"auth": auth.health, **(health or {})},
        history=None,
        middleware=auth.middleware(),
        routes=[*auth.routes(), *routes],
        trusted_proxies=trusted_proxies,
        tls_cert_file=tls[0] if tls else None,
        tls_key_file=tls[1] if tls else None,
    )
    verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=str(tls[0])) if tls else True
    async with serving(web, verify=verify) as client:
        yield client
