"""An ERP's REST API (served with tests/fixtures/asgi.serve): what the REST sink posts to in tests.

It checks the bearer token, keeps each body by its idempotency key (a key seen before is answered
200 and counted in ``repeats``, not stored again), refuses a body whose ``quantity`` is negative
with 422, and can fail the next N requests with 503 or 429 and a ``Retry-After``. ``tests.fixtures.asgi.serve``
can stop and start it again on the same port (the target down, then back).
"""

from __future__ import annotations

import dataclasses

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

__all__ = ["Erp"]

TOKEN = "erp-token"  # noqa: S105  (a test fixture's token)


@dataclasses.dataclass
class Erp:
    """The target's state: what it stored, and how it misbehaves next."""

    stored: dict[str, dict[str, object]] = dataclasses.field(default_factory=dict)
    paths: dict[str, str] = dataclasses.field(default_factory=dict)
    repeats: int = 0
    requests: int = 0
    fail_next: int = 0
    fail_status: int = 503
    retry_after: str | None = "0"
    refuse_negative: bool = True
    unauthorized: int = 0
    authorization: str = f"Bearer {TOKEN}"
    """The Authorization header it accepts (a bearer token, or ``Basic <base64>``)."""

    def app(self) -> Starlette:
        """The Starlette app: POST /api/{kind}/{ident}."""
        return Starlette(routes=[Route("/api/{rest:path}", self._post, methods=["POST", "PUT"])])

    async def _post(self, request: Request) -> Response:
        # a client killed while sending (a crash test's SIGKILL) never made a whole request: not counted
        raw = await request.body()
        self.requests += 1
        if request.headers.get("authorization") != self.authorization:
            self.unauthorized += 1
            return JSONResponse({"detail": "bad token"}, status_code=401)
        if self.fail_next > 0:
            self.fail_next -= 1
            headers = {"Retry-After": self.retry_after} if self.retry_after is not None else {}
            return JSONResponse({"detail": "busy"}, status_code=self.fail_status, headers=headers)
        key = request.headers.get("idempotency-key")
        if not key:
            return JSONResponse({"detail": "Idempotency-Key missing"}, status_code=400)
        body = orjson.loads(raw)
        if key in self.stored:
            self.repeats += 1
            return JSONResponse({"status": "already received"})
        quantity = body.get("quantity") if isinstance(body, dict) else None
        if self.refuse_negative and isinstance(quantity, int | float) and quantity < 0:
            return JSONResponse({"detail": [{"loc": ["body", "quantity"], "msg": "must be >= 0"}]}, status_code=422)
        self.stored[key] = body
        self.paths[key] = request.url.path
        return JSONResponse({"status": "stored"}, status_code=201)
