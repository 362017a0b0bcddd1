"""The edge fleet over HTTP: agents' reported status and health, versions, diffs, deploy and rollback (docs/fleet.md).

The hub learns each agent's status from its retained status topic (and its offline will); desired
versions come from the same ``FleetStore`` files ``uns fleet`` writes. Who may call what is the auth
middleware's job (``uns/web/roles.py``): every ``GET`` is ``read`` (viewer and up), every ``POST`` is
``write`` (host and admin, the roles that configure the hub). A version's config (``GET .../versions/<n>``
and ``.../diff``) is shown only to a role the broker would deliver the agent's config topic to (host,
admin): it carries the connectors' credentials; the listings carry no config.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Self

import orjson
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from model.fleet import AgentStatus, DesiredVersion
from model.topic import SLUG_PATTERN
from uns.broker.accounts import Accounts, read_accounts
from uns.clock import now_ms
from uns.config_file import parse_yaml
from uns.connect import ClientFactory
from uns.errors import BrokerError, ConfigError
from uns.fleet import AgentAccount, FleetStore, account_of, config_topic, enrol, revoke, status_topic
from uns.fleet.enrolment import accounts_file
from uns.logs import RateLimitedLog
from uns.mqtt.types import PubSub
from uns.sparkplug import NAMESPACE
from uns.web.auth import count_refusal, identity_of, topic_access
from uns.web.fleet_view import FleetView
from uns.web.history_api import json_response
from uns.web.roles import UNRESTRICTED, TopicAccess

__all__ = ["FleetService"]

log = logging.getLogger(__name__)

_ROLLOUTS_KEPT = 20
_STAGE_TIMEOUT_S = 60.0
_MAX_BODY = 1024 * 1024
_SLUG = re.compile(SLUG_PATTERN)


def _healthy_on(status: AgentStatus | None, version: DesiredVersion) -> str | None:
    """A staged rollout's first agent: "" when it runs ``version`` with every bridge online, a reason, or None."""
    if status is None:
        return None
    if status.status == "failed" and status.desired == version.version:
        return f"failed: {status.reason}"
    if status.status == "running" and status.version == version.version and all(b.online for b in status.bridges):
        return ""
    return None


class _Refused(Exception):
    def __init__(self, status: int, error: str, problems: list[str] | None = None) -> None:
        super().__init__(error)
        self.status, self.error, self.problems = status, error, problems or []


class FleetService:
    """The hub's side of the fleet in the web layer: watches status topics, deploys from the store.

    Args:
        clients: opens its MQTT client (``uns-web-fleet``; it publishes desired versions: a host or admin account).
        store: the desired versions (``<data_dir>/fleet``, shared with ``uns fleet``).
        enterprise: the enterprise the fleet's topics live under.
        stage_timeout_s: how long a staged rollout waits for its first agent.
    """

    name = "fleet"

    def __init__(
        self, *, clients: ClientFactory, store: FleetStore, enterprise: str, stage_timeout_s: float = _STAGE_TIMEOUT_S
    ) -> None:
        self.store = store
        self.view = FleetView(enterprise=enterprise)
        self._clients = clients
        self._enterprise = enterprise
        self._stage_timeout_s = stage_timeout_s
        self._client: PubSub | None = None
        self._stack = contextlib.AsyncExitStack()
        self._changed = asyncio.Event()
        self._stages: set[asyncio.Task[None]] = set()
        self.rollouts: collections.deque[dict[str, object]] = collections.deque(maxlen=_ROLLOUTS_KEPT)
        self.published = 0
        self._warn = RateLimitedLog(log, interval_s=10.0)

    async def __aenter__(self) -> Self:
        async with contextlib.AsyncExitStack() as stack:
            client = await stack.enter_async_context(self._clients(client_id="uns-web-fleet"))
            await client.subscribe([status_topic(self._enterprise, "+")], qos=1)
            self._client = client
            self._stack = stack.pop_all()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for task in self._stages:
            task.cancel()
        await asyncio.gather(*self._stages, return_exceptions=True)
        self._client = None
        await self._stack.__aexit__(exc_type, exc, tb)

    async def run(self) -> None:
        """Follow the agents' status topics until cancelled."""
        if self._client is None:
            raise RuntimeError("FleetService.run() needs `async with FleetService(...)` first")
        async for message in self._client.messages():
            problem = self.view.observe(message.topic, message.payload, now_ms())
            if problem:
                self._warn.warning("status", "fleet: %s", problem)
            self._changed.set()

    def health(self) -> dict[str, object]:
        """Counters, for ``/api/health``."""
        return {
            "agents": len(self.view.agents()),
            "published": self.published,
            "bad_statuses": self.view.bad_statuses,
            "refused_agents": self.view.refused_agents,
        }

    async def publish(self, versions: list[DesiredVersion]) -> None:
        """Publish each version retained (QoS 1) on its agent's config topic."""
        client = self._client
        if client is None:
            raise BrokerError("fleet", "the fleet's client is not connected")
        for version in versions:
            await client.publish(
                config_topic(self._enterprise, version.agent), version.model_dump_json().encode(), qos=1, retain=True
            )
            self.published += 1
            log.info("fleet: %s version %d (%s) published", version.agent, version.version, version.hash[:12])

    def routes(self) -> list[Route]:
        """The ``/api/fleet/...`` endpoints."""
        return [
            Route("/api/fleet/agents", self._agents, methods=["GET"], name="fleet-agents"),
            Route("/api/fleet/agents/{agent}/versions", self._versions, methods=["GET"], name="fleet-versions"),
            Route("/api/fleet/agents/{agent}/versions/{version:int}", self._version, methods=["GET"]),
            Route("/api/fleet/agents/{agent}/diff", self._diff, methods=["GET"], name="fleet-diff"),
            Route("/api/fleet/deploy", self._deploy, methods=["POST"], name="fleet-deploy"),
            Route("/api/fleet/rollback", self._rollback, methods=["POST"], name="fleet-rollback"),
            Route("/api/fleet/enrol", self._enrol, methods=["POST"], name="fleet-enrol"),
            Route("/api/fleet/revoke", self._revoke, methods=["POST"], name="fleet-revoke"),
        ]

    # -- reading ---------------------------------------------------------------------------------

    def agents(self, access: TopicAccess = UNRESTRICTED) -> list[dict[str, object]]:
        """Every agent the store or the status topics know, as the API lists them to ``access``'s reader."""
        names = sorted(set(self.store.agents()) | set(self.view.agents()))
        accounts = self._accounts()
        return [
            {
                **self.view.document(a, self.store.latest(a), self.store.labels(a)),
                "account": None if accounts is None else _account(account_of(accounts, a), access),
            }
            for a in names
        ]

    def _accounts(self) -> Accounts | None:
        try:
            return read_accounts(accounts_file(self.store))
        except ValidationError as exc:  # the broker refuses it too: the page says the account is unknown
            self._warn.warning("accounts", "fleet: %s unreadable: %s", accounts_file(self.store), exc)
            return None

    async def _agents(self, request: Request) -> Response:
        return json_response(
            {"agents": self.agents(topic_access(request)), "rollouts": list(self.rollouts), "time_ms": now_ms()}
        )

    def _known(self, agent: str) -> str:
        if not _SLUG.fullmatch(agent) or agent not in set(self.store.agents()) | set(self.view.agents()):
            raise _Refused(404, f"agent: no such agent {agent!r}")
        return agent

    async def _versions(self, request: Request) -> Response:
        return await _answer(self._versions_of, request)

    def _versions_of(self, request: Request) -> Response:
        agent = self._known(request.path_params["agent"])
        listed = [v.model_dump(mode="json", exclude={"config"}) for v in self.store.versions(agent)]
        return json_response({"agent": agent, "versions": listed[::-1]})

    async def _version(self, request: Request) -> Response:
        return await _answer(self._version_of, request)

    def _config_reader(self, request: Request) -> str:
        """The agent named in the path, if the caller may read its desired config (a 403 naming what it needs)."""
        agent = self._known(request.path_params["agent"])
        access = topic_access(request)
        if not access.may_read(config_topic(self._enterprise, agent)):
            role = access.principal.role
            reason = f"role {role} may not read {agent}'s desired config (it holds connector credentials)"
            count_refusal(request, reason)
            raise _Refused(403, f"config: {reason}: needs role host or admin; the versions list has the rest")
        return agent

    def _version_of(self, request: Request) -> Response:
        agent = self._config_reader(request)
        version: int = request.path_params["version"]
        try:
            return json_response(self.store.get(agent, version).model_dump(mode="json"))
        except ConfigError:
            raise _Refused(404, f"version: {agent} has no version {version}") from None

    async def _diff(self, request: Request) -> Response:
        return await _answer(self._diff_of, request)

    def _diff_of(self, request: Request) -> Response:
        agent = self._config_reader(request)
        numbers = []
        for field in ("old", "new"):
            text = request.query_params.get(field, "")
            if not text.isdigit():
                raise _Refused(400, f"{field}: a version number is required")
            numbers.append(int(text))
        try:
            return json_response({"agent": agent, "diff": self.store.diff(agent, numbers[0], numbers[1])})
        except ConfigError as exc:
            raise _Refused(404, str(exc)) from None

    # -- writing ---------------------------------------------------------------------------------

    async def _deploy(self, request: Request) -> Response:
        return await _answer(self._deploy_body, request)

    async def _deploy_body(self, request: Request) -> Response:
        body = await _body(request)
        config = self._config_of(body)
        agents = self._targets(body)
        note, staged, dry_run = _text(body, "note"), _flag(body, "staged"), _flag(body, "dry_run")
        problems: list[str] = []
        previews = []
        for agent in agents:
            try:
                previews.append({"agent": agent, "diff": self.store.preview(agent, config)})
            except ConfigError as exc:
                problems += str(exc).splitlines()
        if problems:
            raise _Refused(422, "refused: the config is not valid; nothing was deployed", problems)
        if dry_run:
            return json_response({"dry_run": True, "agents": previews})
        author = _author(request)
        if staged and len(agents) > 1:
            first = self.store.deploy(agents[0], config, author=author, note=note)
            await self.publish([first])
            rollout: dict[str, object] = {
                "first": first.agent, "version": first.version, "rest": agents[1:], "state": "waiting",
                "reason": None, "time_ms": now_ms(),
            }  # fmt: skip
            self.rollouts.appendleft(rollout)
            stage = self._stage(rollout, first, agents[1:], config, author=author, note=note)
            task = asyncio.create_task(stage, name="uns.fleet.stage")
            self._stages.add(task)
            task.add_done_callback(self._stages.discard)
            return json_response({"staged": rollout, "deployed": [_short(first)]}, 202)
        versions = [self.store.deploy(agent, config, author=author, note=note) for agent in agents]
        await self.publish(versions)
        return json_response({"deployed": [_short(v) for v in versions]}, 201)

    async def _stage(
        self, rollout: dict[str, object], first: DesiredVersion, rest: list[str], config: Mapping[str, object], *,
        author: str, note: str,
    ) -> None:  # fmt: skip
        """Deploy to the rest once the first agent runs ``first`` healthy; stop (with the reason) otherwise."""
        outcome: str | None = None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._stage_timeout_s):
                while (outcome := _healthy_on(self.view.status(first.agent), first)) is None:
                    self._changed.clear()
                    await self._changed.wait()
        if outcome is None:
            outcome = f"not running with every bridge online within {self._stage_timeout_s:g} s"
        if outcome:
            rollout.update(state="stopped", reason=f"{first.agent}: version {first.version} {outcome}")
            log.warning("fleet: staged rollout stopped: %s", rollout["reason"])
            return
        try:
            await self.publish([self.store.deploy(agent, config, author=author, note=note) for agent in rest])
        except (ConfigError, BrokerError) as exc:
            rollout.update(state="stopped", reason=str(exc))
            return
        rollout.update(state="done")

    async def _rollback(self, request: Request) -> Response:
        return await _answer(self._rollback_body, request)

    async def _rollback_body(self, request: Request) -> Response:
        body = await _body(request)
        agent = self._known(_text(body, "agent", required=True))
        to = body.get("to")
        if not isinstance(to, int) or isinstance(to, bool) or to < 1:
            raise _Refused(400, "to: the version number to roll back to is required")
        latest = self.store.latest(agent)
        try:
            old = self.store.get(agent, to)
        except ConfigError:
            raise _Refused(404, f"to: {agent} has no version {to}") from None
        if _flag(body, "dry_run"):
            diff = self.store.diff(agent, latest.version, to) if latest else ""
            return json_response({"dry_run": True, "agents": [{"agent": agent, "diff": diff}]})
        version = self.store.rollback(agent, old.version, author=_author(request), note=_text(body, "note"))
        await self.publish([version])
        return json_response({"deployed": [_short(version)]}, 201)

    async def _enrol(self, request: Request) -> Response:
        return await _answer(self._enrol_body, request)

    async def _enrol_body(self, request: Request) -> Response:
        body = await _body(request)
        agent = _text(body, "agent", required=True)
        labels, nodes, ttl = body.get("labels") or {}, body.get("edge_nodes") or [], body.get("ttl_s", 3600.0)
        if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
            raise _Refused(400, "labels: an object of KEY: VALUE strings is expected")
        if not isinstance(nodes, list) or not all(isinstance(n, str) for n in nodes):
            raise _Refused(400, "edge_nodes: a list of GROUP/NODE strings is expected")
        if not isinstance(ttl, int | float) or isinstance(ttl, bool):
            raise _Refused(400, "ttl_s: a number of seconds is expected")
        try:
            token = enrol(self.store, agent, labels, edge_nodes=nodes, ttl_s=float(ttl))
        except ConfigError as exc:
            raise _Refused(400, f"{exc.path}: {exc.reason}") from None
        log.info("fleet: agent %s enrolled by %s (one-time token issued)", agent, _author(request))
        return json_response(
            {"agent": agent, "token": token, "account": _account(account_of(self.store, agent), topic_access(request))},
            201,
        )

    async def _revoke(self, request: Request) -> Response:
        return await _answer(self._revoke_body, request)

    async def _revoke_body(self, request: Request) -> Response:
        body = await _body(request)
        agent = _text(body, "agent", required=True)
        try:
            account = revoke(self.store, agent)
        except ConfigError as exc:
            raise _Refused(404, f"agent: {exc.reason}") from None
        log.info("fleet: agent %s revoked by %s", agent, _author(request))
        return json_response({"agent": agent, "account": _account(account, topic_access(request))})

    def _config_of(self, body: Mapping[str, object]) -> dict[str, object]:
        """The config to deploy: ``config`` (JSON), ``config_yaml`` (text) or ``from`` (a stored version)."""
        given = [field for field in ("config", "config_yaml", "from") if body.get(field) is not None]
        if len(given) != 1:
            raise _Refused(400, "config: give one of config (an object), config_yaml (text) or from (agent, version)")
        config: object
        if given == ["config_yaml"]:
            text = body["config_yaml"]
            if not isinstance(text, str):
                raise _Refused(400, "config_yaml: text is expected")
            try:  # the settings' YAML loader: a syntax error names its line and column
                config = parse_yaml(text, "config_yaml")
            except ConfigError as exc:
                raise _Refused(400, f"config_yaml: {exc.reason}") from None
            if not config:  # empty or only comments: deploying nothing is refused, not a config with no bridges
                raise _Refused(400, "config_yaml: an object with a bridges: list is expected")
        elif given == ["from"]:
            source = body["from"]
            if not isinstance(source, dict) or not isinstance(source.get("version"), int):
                raise _Refused(400, "from: {agent, version} is expected")
            agent = self._known(str(source.get("agent")))
            try:
                config = self.store.get(agent, source["version"]).config
            except ConfigError:
                raise _Refused(404, f"from: {agent} has no version {source['version']}") from None
        else:
            config = body["config"]
        if not isinstance(config, dict):
            raise _Refused(400, f"{given[0]}: an object with a bridges: list is expected")
        return config

    def _targets(self, body: Mapping[str, object]) -> list[str]:
        """The agents a deploy goes to: ``agents``, every one carrying ``label``'s pairs, or ``all``."""
        named = body.get("agents") or []
        label = body.get("label") or {}
        if not isinstance(named, list) or not all(isinstance(a, str) and _SLUG.fullmatch(a) for a in named):
            raise _Refused(400, "agents: a list of agent ids (slugs) is expected")
        if not isinstance(label, dict) or not all(isinstance(v, str) for v in label.values()):
            raise _Refused(400, "label: an object of KEY: VALUE strings is expected")
        if _flag(body, "all"):
            found = sorted(set(self.store.agents()) | set(self.view.agents()))
        else:
            found = sorted({*named, *(self.store.select(label) if label else [])})
        if not found:
            raise _Refused(400, "agents: name an agent, a label the hub's agents carry, or all")
        return found


async def _answer(handler: Callable[[Request], Response | Awaitable[Response]], request: Request) -> Response:
    """Run a handler (sync or async), turning a refusal into its JSON answer."""
    try:
        answer = handler(request)
        if not isinstance(answer, Response):
            answer = await answer
    except _Refused as refused:
        body: dict[str, object] = {"error": refused.error, "field": refused.error.split(":", 1)[0]}
        if refused.problems:
            body["problems"] = refused.problems
        return json_response(body, refused.status)
    except BrokerError as exc:
        return json_response({"error": str(exc)}, 502)
    return answer


async def _body(request: Request) -> dict[str, object]:
    raw = await request.body()
    if len(raw) > _MAX_BODY:
        raise _Refused(413, f"body: larger than {_MAX_BODY} bytes")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _Refused(400, f"body: not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise _Refused(400, "body: a JSON object is expected")
    return body


def _text(body: Mapping[str, object], field: str, *, required: bool = False) -> str:
    value = body.get(field, "")
    if not isinstance(value, str) or (required and not value):
        raise _Refused(400, f"{field}: {'required, ' if required else ''}a string")
    return value


def _flag(body: Mapping[str, object], field: str) -> bool:
    value = body.get(field, False)
    if not isinstance(value, bool):
        raise _Refused(400, f"{field}: true or false")
    return value


def _author(request: Request) -> str:
    identity = identity_of(request)
    return "anonymous" if identity is None or identity.user is None else identity.user


def _account(account: AgentAccount, access: TopicAccess) -> dict[str, object]:
    """The agent's broker account; its ``edge_nodes`` (``group/node``) null unless the reader gets their births.

    The patterns are the broker's account file, not a message: an agent's status names its bridges' nodes
    but not their group or what the account may publish as (``grp/+`` covers nodes not yet heard of).
    Groups of nodes that spoke do reach every UNS reader, in the ``source`` of the envelopes the host
    republishes and in the host's health (``unbound``); the patterns do not.
    """
    nodes: list[str] | None = list(account.edge_nodes)
    if not all(access.may_read_any(_birth_filter(node)) for node in account.edge_nodes):
        nodes = None
    return {
        "state": account.state,
        "edge_nodes": nodes,
        "token_expires_ms": account.token_expires_ms,
        "revoked_ms": account.revoked_ms,
    }


def _birth_filter(edge_node: str) -> str:
    """``spBv1.0/<group>/NBIRTH/<node>`` for an account's ``group/node`` (either may be ``+``)."""
    group, _, node = edge_node.partition("/")
    return f"{NAMESPACE}/{group}/NBIRTH/{node}"


def _short(version: DesiredVersion) -> dict[str, object]:
    return {"agent": version.agent, "version": version.version, "hash": version.hash}
