"""``uns web`` on its own: the history and MES APIs forwarded to a running ``uns historian``.

The historian owns its DuckDB file (one writer per file), so a separate web process asks it over
HTTP. The web layer has already checked the user's role; the proxy signs in to the historian with
its own service account (the user and password in ``--historian-url``) and signs in again when
that session ends.
"""

from __future__ import annotations

import asyncio
import dataclasses
import http.cookiejar
import logging
import urllib.error
import urllib.parse
import urllib.request

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from uns.api_url import LOGIN_PATH, ApiUrl, BadApiUrl
from uns.errors import ConfigError
from uns.web.history_api import json_response

__all__ = ["NO_HISTORIAN", "HistorianProxy", "no_historian_routes", "parse_historian_url"]

log = logging.getLogger(__name__)

_MAX_BODY = 1_048_576 + 4096
_FORWARDED_HEADERS = ("content-type",)


def parse_historian_url(text: str) -> ApiUrl:
    """Read ``web.historian_url``: ``http[s]://[user:password@]host:port`` of a running ``uns historian``.

    Raises:
        ConfigError: naming the setting ``web.historian_url``, and the URL without its password.
    """
    try:
        return ApiUrl.parse(text)
    except BadApiUrl as exc:
        raise ConfigError(
            source="settings", path="web.historian_url", value=exc.shown,
            reason=f"{exc.reason}, of a running `uns historian`",
        ) from None  # fmt: skip


@dataclasses.dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    body: bytes
    content_type: str


class HistorianProxy:
    """``/api/history/*`` and ``/api/mes/*`` answered by a remote historian.

    Args:
        url: the historian and the service account to sign in with.
        timeout_s: how long one forwarded request may take.
    """

    def __init__(self, *, url: ApiUrl, timeout_s: float = 60.0) -> None:
        self._url = url
        self._timeout_s = timeout_s
        self._opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        self.forwarded = 0
        self.failed = 0
        self.logins = 0

    @property
    def url(self) -> str:
        """The historian, for the ready line (no password)."""
        return self._url.redacted()

    def routes(self) -> list[Route]:
        """The forwarding routes (they replace the local history routes)."""
        return [
            Route("/api/history/{rest:path}", self._forward, methods=["GET"], name="history-proxy"),
            Route("/api/mes/{rest:path}", self._forward, methods=["GET", "POST"], name="mes-proxy"),
        ]

    def health(self) -> dict[str, object]:
        """Counters for ``/api/health``."""
        return {"historian": self._url.redacted(), "forwarded": self.forwarded, "failed": self.failed,
                "logins": self.logins}  # fmt: skip

    async def _forward(self, request: Request) -> Response:
        body = await request.body() if request.method == "POST" else None
        if body is not None and len(body) > _MAX_BODY:
            return json_response({"error": f"body larger than {_MAX_BODY} bytes", "field": "body"}, 413)
        target = self._url.base + request.url.path + (f"?{request.url.query}" if request.url.query else "")
        headers = {name: request.headers[name] for name in _FORWARDED_HEADERS if name in request.headers}
        answer = await asyncio.to_thread(self._call, request.method, target, body, headers)
        if answer.status == 401 and self._url.user is not None:
            # the service session ended (historian restarted, or it expired): sign in once more
            login = await asyncio.to_thread(self._login)
            if login is not None:
                return login
            answer = await asyncio.to_thread(self._call, request.method, target, body, headers)
        if answer.status == 401:
            self.failed += 1
            reason = f"the historian at {self._url.redacted()} refused the web layer: give --historian-url a user"
            return json_response({"error": reason}, 502)
        self.forwarded += 1
        return Response(answer.body, status_code=answer.status, media_type=answer.content_type)

    def _call(self, method: str, url: str, body: bytes | None, headers: dict[str, str]) -> _Answer:
        request = urllib.request.Request(url, data=body, headers=headers, method=method)  # noqa: S310  (http(s) only)
        try:
            with self._opener.open(request, timeout=self._timeout_s) as reply:
                return _Answer(reply.status, reply.read(), reply.headers.get("content-type", "application/json"))
        except urllib.error.HTTPError as exc:
            return _Answer(exc.code, exc.read(), exc.headers.get("content-type", "application/json"))
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            self.failed += 1
            reason = getattr(exc, "reason", exc)
            message = f"the historian at {self._url.redacted()} did not answer ({reason}): is `uns historian` running?"
            log.warning("%s", message)
            return _Answer(503, orjson.dumps({"error": message}), "application/json")

    def _login(self) -> Response | None:
        """Sign in with the service account; a Response to send back if that failed."""
        body = self._url.login_body()
        answer = self._call("POST", self._url.base + LOGIN_PATH, body, {"content-type": "application/json"})
        self.logins += 1
        if answer.status == 200:
            log.info("signed in to the historian at %s", self._url.redacted())
            return None
        self.failed += 1
        reason = f"the historian at {self._url.redacted()} refused the proxy's login (HTTP {answer.status})"
        log.warning("%s", reason)
        return json_response({"error": reason}, 502)


NO_HISTORIAN = (
    "uns web has no historian: pass --historian-url http://user:password@host:port of a running `uns historian`"
    " (env UNS_WEB__HISTORIAN_URL)"
)


def no_historian_routes() -> list[Route]:
    """The proxy's routes in a ``uns web`` without ``--historian-url``: 503 saying what to pass.

    Without them the history routes said to turn on a historian of this hub (which ``uns web`` never runs) and
    the MES routes answered 404 ``no such path``.
    """

    async def answer(request: Request) -> Response:
        return json_response({"error": NO_HISTORIAN}, 503)

    return [
        Route("/api/history/{rest:path}", answer, methods=["GET"], name="history-proxy"),
        Route("/api/mes/{rest:path}", answer, methods=["GET", "POST"], name="mes-proxy"),
    ]
