"""A REST/JSON API (served with tests/fixtures/asgi.serve): the outside system the HTTP source polls in tests."""

from __future__ import annotations

import asyncio
import base64
import email.utils
import secrets
import time
import urllib.parse

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

__all__ = ["RestApi"]

USER, PASSWORD, API_KEY = "erp", "s3cret", "key-123"
CLIENT_ID, CLIENT_SECRET = "uns", "client-secret"


def _items(n: int, start: int = 0) -> list[dict[str, object]]:
    return [{"id": f"o{i}", "qty": float(i), "line": "line1"} for i in range(start, start + n)]


class RestApi:
    """The API's behaviour and what it saw; tests change the fields between polls."""

    def __init__(self) -> None:
        self.items = _items(3)
        self.paged = _items(7)
        self.requests: list[str] = []
        self.times: list[float] = []
        self.unauthorized = 0
        self.token_lifetime_s = 3600.0
        self.token_claimed_s = 3600.0
        self.tokens: dict[str, float] = {}
        self.tokens_issued = 0
        self.fail_next = 0
        self.throttle_next = 0
        self.retry_after = "1"
        self.etag = '"v1"'
        self.last_modified = email.utils.formatdate(1_764_000_000, usegmt=True)
        self.not_modified = 0
        self.mixed = [
            {"id": "a", "qty": 1.0, "line": "line1"},
            {"id": "b", "qty": "lots", "line": "line1"},
            {"id": "c", "line": "line1"},
            {"id": "d", "qty": 4.0, "line": "line1"},
        ]

    def app(self) -> Starlette:
        """The ASGI app."""
        return Starlette(
            routes=[
                Route("/token", self._token, methods=["POST"]),
                Route("/{kind}/items", self._list),
                Route("/link", self._link),
                Route("/offset", self._offset),
                Route("/cursor", self._cursor),
                Route("/etag", self._etag),
                Route("/mixed", self._mixed),
                Route("/slow", self._slow),
            ]
        )

    async def _token(self, request: Request) -> Response:
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        form = urllib.parse.parse_qs((await request.body()).decode())
        if request.headers.get("authorization") != expected or form.get("grant_type") != ["client_credentials"]:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        token = secrets.token_hex(8)
        self.tokens[token] = time.monotonic() + self.token_lifetime_s
        self.tokens_issued += 1
        return JSONResponse({"access_token": token, "token_type": "Bearer", "expires_in": self.token_claimed_s})

    def _authorized(self, request: Request, kind: str) -> bool:
        header = request.headers.get("authorization", "")
        if kind == "basic":
            return header == "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        if kind == "bearer":
            return header == f"Bearer {API_KEY}"
        if kind == "oauth":
            token = header.removeprefix("Bearer ")
            return self.tokens.get(token, 0.0) > time.monotonic()
        return True

    async def _list(self, request: Request) -> Response:
        kind = request.path_params["kind"]
        self.requests.append(str(request.url))
        self.times.append(time.monotonic())
        if not self._authorized(request, kind):
            self.unauthorized += 1
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        if self.throttle_next:
            self.throttle_next -= 1
            return JSONResponse({"error": "slow down"}, status_code=429, headers={"Retry-After": self.retry_after})
        if self.fail_next:
            self.fail_next -= 1
            return JSONResponse({"error": "boom"}, status_code=500)
        return JSONResponse({"items": self.items})

    async def _link(self, request: Request) -> Response:
        self.requests.append(str(request.url))
        page = int(request.query_params.get("page", "0"))
        chunk = self.paged[page * 3 : page * 3 + 3]
        headers = {}
        if (page + 1) * 3 < len(self.paged):
            headers["Link"] = f'</link?page={page + 1}>; rel="next", </link?page=0>; rel="first"'
        return JSONResponse({"items": chunk}, headers=headers)

    async def _offset(self, request: Request) -> Response:
        self.requests.append(str(request.url))
        offset, limit = int(request.query_params["offset"]), int(request.query_params["limit"])
        chunk = self.paged[offset : offset + limit]
        etag = f'"{offset}-{len(chunk)}-{hash(str(chunk)) & 0xFFFF:x}"'  # one per page, as most APIs do
        if request.headers.get("if-none-match") == etag:
            self.not_modified += 1
            return Response(status_code=304, headers={"ETag": etag})
        return JSONResponse({"items": chunk}, headers={"ETag": etag})

    async def _cursor(self, request: Request) -> Response:
        self.requests.append(str(request.url))
        after = int(request.query_params.get("cursor", "0"))
        chunk = self.paged[after : after + 3]
        return JSONResponse({"data": {"items": chunk}, "next": str(after + len(chunk)) if chunk else None})

    async def _etag(self, request: Request) -> Response:
        self.requests.append(str(request.url))
        if request.headers.get("if-none-match") == self.etag or (
            request.headers.get("if-modified-since") == self.last_modified and self.etag == '"lm-only"'
        ):
            self.not_modified += 1
            return Response(status_code=304, headers={"ETag": self.etag})
        headers = {"Last-Modified": self.last_modified}
        if self.etag != '"lm-only"':
            headers["ETag"] = self.etag
        return JSONResponse({"items": self.items}, headers=headers)

    async def _slow(self, request: Request) -> Response:
        self.requests.append(str(request.url))
        # past the source's 0.2 s timeout, short for the server's shutdown (which waits for it)
        await asyncio.sleep(0.5)
        return JSONResponse({"items": self.items})

    async def _mixed(self, request: Request) -> Response:
        self.requests.append(str(request.url))
        return JSONResponse(self.mixed)
