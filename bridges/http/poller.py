"""One poll of a REST/JSON endpoint: auth, conditional requests, pagination, and the answers that mean wait.

The poller only fetches: it yields each page's items with the state to save once they are safe,
and raises ``RetryLater`` (429, 503: wait as told) or ``BridgeError`` (down, refused, unreadable).
"""

from __future__ import annotations

import dataclasses
import logging
import ssl
import time
from collections.abc import AsyncIterator
from typing import Self

import httpx
import orjson

from bridges.http.auth import Authenticator
from bridges.http.headers import next_link
from bridges.http.mapping import MappingError, find_items
from bridges.http.state import PollState, Validators
from bridges.json_paths import MISSING, JsonPath
from model.bridges.http import CursorPages, HttpPoll, LinkPages, OffsetPages
from uns.errors import BridgeError, DeviceUnreachable
from uns.retry_after import retry_after_s

__all__ = ["Page", "Poller", "RetryLater"]

log = logging.getLogger(__name__)

_KEEP_ALIVE_MARGIN_S = 5.0  # an idle connection outlives the wait between polls by this (httpx's default expiry)
_KEEP_ALIVE_MAX_S = 130.0  # and no longer: few servers keep one longer (IIS 120 s, nginx 75 s)
_CLOSED_UNDER_US = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


class RetryLater(BridgeError):
    """The API asked us to come back later (429 Too Many Requests, 503 Service Unavailable)."""

    def __init__(self, bridge: str, endpoint: str, status: int, after_s: float | None) -> None:
        self.status = status
        self.after_s = after_s
        told = "no Retry-After" if after_s is None else f"Retry-After {after_s:.1f} s"
        super().__init__(bridge, endpoint, f"answered {status} ({told})")


@dataclasses.dataclass(frozen=True, slots=True)
class Page:
    """A page's items and the poll state to save once what they produced is safe."""

    items: list[object]
    state: PollState
    refused: MappingError | None = None
    """The page had no items where ``items_path`` says (it is dead-lettered whole)."""
    document: object = None
    """The page's body, kept only when it is refused."""


class Poller:
    """Fetches the pages of one poll; ``async with`` holds one HTTP connection pool."""

    def __init__(self, *, name: str, config: HttpPoll) -> None:
        self.name = name
        self._config = config
        self._auth = Authenticator(name=name, auth=config.auth)
        self._items_path = config.items_path
        pages = config.pagination
        self._cursor_path = JsonPath.from_str(pages.cursor_path) if isinstance(pages, CursorPages) else None
        self._client: httpx.AsyncClient | None = None
        # kept over the wait between polls (httpx's default 5 s is shorter than most intervals): no new TCP
        # connection per poll (about half a poll's CPU) where the server keeps it, as most do (nginx 75 s)
        self._keep_alive_s = min(config.interval_s + _KEEP_ALIVE_MARGIN_S, _KEEP_ALIVE_MAX_S)
        self._answered_at: float | None = None  # time.monotonic() of the last answer: a connection may be kept
        self._last_target: tuple[tuple[str, tuple[tuple[str, str], ...]], httpx.URL, str] | None = None
        self.requests = 0
        self.not_modified = 0

    @property
    def tokens_fetched(self) -> int:
        """OAuth2 tokens fetched so far."""
        return self._auth.tokens_fetched

    async def __aenter__(self) -> Self:
        config = self._config
        verify: ssl.SSLContext | bool = config.verify_tls
        if config.verify_tls and config.ca_file is not None:
            verify = ssl.create_default_context(cafile=str(config.ca_file))
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(config.timeout_s),
            # httpx's own pool limits (Limits() alone would make them unlimited), only the keep-alive ours
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=self._keep_alive_s),
            verify=verify,
            headers=config.headers,
            trust_env=False,
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def pages(self, state: PollState) -> AsyncIterator[Page]:
        """The pages of one poll from ``state``; a page the API says is unchanged (304) has no items.

        Validators (ETag, Last-Modified) are kept per request URL: a page's own are sent back with
        it, so an unchanged first page does not hide a later page that changed. A 304 page counts
        as full for offset pagination, follows its ``Link`` for link pagination, and ends the poll
        otherwise (one page, or nothing new after the cursor).
        """
        config, pages = self._config, self._config.pagination
        url: str | None = config.url
        params = dict(config.params)
        if isinstance(pages, CursorPages) and state.cursor is not None:
            params[pages.cursor_param] = state.cursor
        if isinstance(pages, OffsetPages):
            params[pages.offset_param], params[pages.limit_param] = "0", str(pages.limit)
        limit = pages.max_pages if pages is not None else 1
        offset, cursor = 0, state.cursor
        visited: dict[str, Validators] = {}
        for _ in range(limit):
            if url is None:
                return
            target, key = self._target(url, params)
            known = state.validators.get(key) if config.conditional else None
            response = await self._get(url, target, known)
            items: list[object] = []
            refused: MappingError | None = None
            document: object = None
            if response.status_code == 304:
                self.not_modified += 1
                if known is not None:
                    visited[key] = known
                url, params, more = self._unchanged(pages, response, params)
                if isinstance(pages, OffsetPages):
                    offset += pages.limit
                    params[pages.offset_param] = str(offset)
            else:
                etag, modified = response.headers.get("etag"), response.headers.get("last-modified")
                if etag is not None or modified is not None:
                    visited[key] = (etag, modified)
                document = self._json(response)
                try:
                    items = find_items(self.name, document, self._items_path)
                except MappingError as exc:
                    refused = exc
                url, params, more = self._next(pages, response, document, params, len(items))
                if isinstance(pages, CursorPages):
                    found = self._cursor_path.find(document) if self._cursor_path else MISSING
                    new_cursor = None if found is MISSING or found is None else str(found)
                    more = more and new_cursor is not None and new_cursor != cursor and bool(items)
                    cursor = new_cursor or cursor
                if isinstance(pages, OffsetPages):
                    offset += len(items)
                    params[pages.offset_param] = str(offset)
            last = not more
            # a finished poll keeps the validators of the pages it saw; one cut short keeps the older ones too
            kept = visited if last else {**state.validators, **visited}
            yield Page(items, PollState(validators=kept, cursor=cursor), refused, document if refused else None)
            if last:
                return
        log.warning("http %s: stopped after %d pages (pagination.max_pages)", self.name, limit)

    def _unchanged(
        self, pages: LinkPages | OffsetPages | CursorPages | None, response: httpx.Response, params: dict[str, str]
    ) -> tuple[str | None, dict[str, str], bool]:
        """Where the next page is after a 304: (url, params, whether there is one)."""
        if isinstance(pages, OffsetPages):
            return str(response.url.copy_with(query=None)), params, True
        if isinstance(pages, LinkPages):
            link = next_link(response.headers.get("link"))
            return (str(response.url.join(link)), {}, True) if link is not None else (None, params, False)
        return None, params, False

    def _next(
        self,
        pages: LinkPages | OffsetPages | CursorPages | None,
        response: httpx.Response,
        document: object,
        params: dict[str, str],
        count: int,
    ) -> tuple[str | None, dict[str, str], bool]:
        """Where the next page is: (url, params, whether there is one)."""
        if isinstance(pages, LinkPages):
            link = next_link(response.headers.get("link"))
            if link is None:
                return None, params, False
            return str(response.url.join(link)), {}, True  # the link carries its own query
        if isinstance(pages, OffsetPages):
            return str(response.url.copy_with(query=None)), params, count >= pages.limit
        if isinstance(pages, CursorPages) and self._cursor_path is not None:
            found = self._cursor_path.find(document)
            if found is MISSING or found is None:
                return None, params, False
            return str(response.url.copy_with(query=None)), {**params, pages.cursor_param: str(found)}, True
        return None, params, False

    def _target(self, url: str, params: dict[str, str]) -> tuple[httpx.URL, str]:
        """The URL to GET (its own query and ``params``, as httpx merges them) and the page's key in the poll state.

        The last one is kept: an idle poll asks for the same first page every time, and parsing it
        costs more than the rest of our side of the request.
        """
        wanted = (url, tuple(params.items()))
        last = self._last_target
        if last is not None and last[0] == wanted:
            return last[1], last[2]
        target = httpx.URL(url).copy_merge_params(params) if params else httpx.URL(url)
        key = str(httpx.URL(url, params=params or None))
        self._last_target = (wanted, target, key)
        return target, key

    async def _get(self, url: str, target: httpx.URL, known: Validators | None) -> httpx.Response:
        """GET ``target`` with auth and validators; ``url`` names it in errors (without its query)."""
        client = self._client
        if client is None:
            raise RuntimeError("Poller.pages() needs `async with poller:` first")
        headers = {"Accept": "application/json"}
        if known is not None and known[0]:
            headers["If-None-Match"] = known[0]
        if known is not None and known[1]:
            headers["If-Modified-Since"] = known[1]
        try:
            response = await self._send(client, target, headers)
            if response.status_code == 401 and self._auth.rejected():
                log.info("http %s: 401 from %s: fetching a new token", self.name, url)
                # the token may have been revoked or expired early: once more with a new one
                response = await self._send(client, target, headers)
        except httpx.TimeoutException as exc:
            raise DeviceUnreachable(self.name, url, f"timed out after {self._config.timeout_s:g} s") from exc
        except httpx.HTTPError as exc:
            raise DeviceUnreachable(self.name, url, f"request failed: {exc!r}") from exc
        status = response.status_code
        if status in (429, 503):
            after = retry_after_s(response.headers.get("retry-after"))
            raise RetryLater(self.name, url, status, after)
        if status == 304 or 200 <= status < 300:
            return response
        raise BridgeError(self.name, url, f"answered {status} {response.reason_phrase}")

    async def _send(self, client: httpx.AsyncClient, target: httpx.URL, headers: dict[str, str]) -> httpx.Response:
        """One GET with the auth header; made once more at once if it went out on a kept connection just closed.

        Only a GET that got no answer at all is made again: once the status line came, the server
        served it, and an answer cut short fails the poll as before.
        """
        kept = self._answered_at is not None and time.monotonic() - self._answered_at < self._keep_alive_s
        self._answered_at = None
        try:
            response = await self._send_once(client, target, headers)
        except _CLOSED_UNDER_US as exc:
            # the server closed the idle connection as our GET went out on it (its keep-alive timeout
            # close to our interval): the GET was not served, and a new connection will do
            if not kept:
                raise
            log.debug("http %s: a kept connection was closed by the server (%r): asking again", self.name, exc)
            response = await self._send_once(client, target, headers)
        try:
            await response.aread()
        except BaseException:
            await response.aclose()
            raise
        self._answered_at = time.monotonic()
        return response

    async def _send_once(self, client: httpx.AsyncClient, target: httpx.URL, headers: dict[str, str]) -> httpx.Response:
        """Sends the GET and reads the answer's status line and headers (its body is read by the caller)."""
        request_headers = {**headers, **await self._auth.header(client)}
        self.requests += 1
        return await client.send(client.build_request("GET", target, headers=request_headers), stream=True)

    def _json(self, response: httpx.Response) -> object:
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            raise BridgeError(self.name, str(response.url), f"answer is not JSON: {exc}") from exc
