"""The rule tests' rig: an engine on a real broker, a webhook receiver on uvicorn."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Sequence

import orjson
from pydantic import TypeAdapter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from model.rules import Rule
from tests.fixtures.running import running
from uns.broker.acl import AclPolicy
from uns.connect import ClientFactory, network_clients
from uns.mqtt.types import BrokerUrl
from uns.rules.actions import Target
from uns.rules.engine import RuleEngine
from uns.settings import load_plant

__all__ = ["RULES", "Receiver", "engine_on"]

RULES: TypeAdapter[list[Rule]] = TypeAdapter(list[Rule])
_PLANT = load_plant(None)  # the demo plant: bindings for the write action
_BINDINGS = {b.path: (b.group, b.node, b.device) for b in _PLANT.bindings}


def _targets(path: str) -> Target | None:
    return _BINDINGS.get(path)


@contextlib.asynccontextmanager
async def engine_on(
    url: BrokerUrl, rules: Sequence[object], *, app_cmd_topics: Sequence[str] = (), timezone: str = "UTC"
) -> AsyncIterator[RuleEngine]:
    """A running engine with ``rules`` (plain data, validated here)."""
    clients: ClientFactory = network_clients(url)
    engine = RuleEngine(
        rules=RULES.validate_python(rules),
        clients=clients,
        targets=_targets,
        acl=AclPolicy(app_cmd_topics=app_cmd_topics),
        timezone=timezone,
    )
    async with running(engine, name="rules-test-engine"):
        yield engine


@dataclasses.dataclass
class Receiver:
    """A webhook target: keeps each request's path, headers and JSON body; fails the next ``fail_next`` with 503."""

    requests: list[tuple[str, dict[str, str], object]] = dataclasses.field(default_factory=list)
    fail_next: int = 0
    attempts: int = 0

    def app(self) -> Starlette:
        """POST/PUT anything."""
        return Starlette(routes=[Route("/{rest:path}", self._take, methods=["POST", "PUT"])])

    async def _take(self, request: Request) -> Response:
        self.attempts += 1
        if self.fail_next > 0:
            self.fail_next -= 1
            return JSONResponse({"detail": "busy"}, status_code=503, headers={"Retry-After": "0"})
        self.requests.append(
            (request.scope["raw_path"].decode(), dict(request.headers), orjson.loads(await request.body()))
        )
        return JSONResponse({"ok": True}, status_code=201)
