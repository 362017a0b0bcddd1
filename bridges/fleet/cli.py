"""``uns edge`` (run an agent) and ``uns fleet deploy|rollback|list|diff`` (the hub's side), for hub/cli.py."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from pydantic import ValidationError

from bridges.fleet.agent import EdgeAgent
from model.fleet import AgentStatus, DesiredVersion, enrolment_password
from uns.backoff import Backoff
from uns.config_file import read_yaml
from uns.connect import network_clients
from uns.errors import BrokerError, BrokerUnreachable, ConfigError
from uns.fleet.enrolment import (
    DEFAULT_TOKEN_TTL_S,
    account_of,
    agent_password,
    enrol,
    mosquitto_acl,
    mosquitto_password_line,
    revoke,
)
from uns.fleet.store import FleetStore
from uns.fleet.topics import config_topic, status_topic
from uns.mqtt.client import MqttClient
from uns.mqtt.types import BrokerUrl
from uns.ready import ready_line

__all__ = ["add_edge_parser", "add_fleet_parser", "run_edge", "run_fleet"]

log = logging.getLogger(__name__)

_DEFAULT_BROKER = "mqtt://127.0.0.1:1883"
_STATUS_WAIT_S = 1.0


def add_edge_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """``uns edge --id ID``: the agent's own flags (the common ones are added by the caller)."""
    edge = commands.add_parser("edge", help="run an edge agent: the bridges its desired config names, against --broker")
    edge.add_argument("--id", dest="agent_id", required=True, help="agent id (a slug): names its topics")
    edge.add_argument("--status-interval", type=float, default=10.0, help="status and health every N s (default 10)")
    edge.add_argument(
        "--birth-wait", type=float, default=10.0, help="wait up to N s for each restarted bridge's births (default 10)"
    )
    edge.add_argument(
        "--enrol-token", help="enrol once with the token `uns fleet enrol` printed: creates this agent's account"
    )
    edge.add_argument(
        "--mosquitto-passwd",
        action="store_true",
        help="print this agent's Mosquitto password-file line (its own password, made once) and exit",
    )
    return edge


def add_fleet_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """``uns fleet ACTION``: deploy, rollback, list, diff, label, enrol, revoke."""
    fleet = commands.add_parser(
        "fleet", help="edge agents: deploy, rollback, list, diff, label; enrol and revoke their accounts"
    )
    fleet.add_argument("action", choices=["deploy", "rollback", "list", "diff", "label", "enrol", "revoke"])
    fleet.add_argument(
        "args", nargs="*", help="deploy FILE; rollback VERSION; diff OLD NEW; label KEY=VALUE...; enrol ID; revoke ID"
    )
    fleet.add_argument("--agent", action="append", default=[], help="the agent (repeatable)")
    fleet.add_argument("--all", action="store_true", help="deploy: every agent the hub knows")
    fleet.add_argument(
        "--label", action="append", default=[], help="deploy: every agent with this KEY=VALUE label (repeatable: all)"
    )
    fleet.add_argument(
        "--staged", action="store_true", help="deploy: to one agent first, to the rest once it reports running"
    )
    fleet.add_argument("--stage-timeout", type=float, default=60.0, help="--staged: wait this long, seconds")
    fleet.add_argument(
        "--edge-node", action="append", default=[], help="enrol: a GROUP/NODE the account may publish as (default ID/+)"
    )
    fleet.add_argument(
        "--ttl", type=float, default=DEFAULT_TOKEN_TTL_S, help="enrol: the token expires after N s (default 3600)"
    )
    fleet.add_argument(
        "--mosquitto", action="store_true", help="enrol: print the agent's Mosquitto ACL block instead of a token"
    )
    fleet.add_argument("--author", default="cli", help="who deploys (stored with the version)")
    fleet.add_argument("--note", default="", help="the change note")
    return fleet


async def run_edge(
    args: argparse.Namespace, *, url: str | None, ca_file: Path | None, enterprise: str, data_dir: Path,
    ready: Callable[[str], None],
) -> None:  # fmt: skip
    """Run one agent until cancelled (enrolling it first with ``--enrol-token``)."""
    broker = BrokerUrl.from_str(url or _DEFAULT_BROKER)
    if args.mosquitto_passwd:  # an external broker: its admin adds the line, the password stays here
        print(mosquitto_password_line(args.agent_id, agent_password(data_dir)))
        return
    if args.enrol_token:
        password = agent_password(data_dir)
        await _enrol(broker, args.agent_id, enrolment_password(args.enrol_token, password), ca_file)
        broker = broker.with_credentials(args.agent_id, password)
    elif broker.username is None and (data_dir / "agent" / "password").exists():
        broker = broker.with_credentials(args.agent_id, agent_password(data_dir))  # enrolled before
    agent = EdgeAgent(
        agent_id=args.agent_id,
        enterprise=enterprise,
        clients=network_clients(broker, ca_file=ca_file),
        data_dir=data_dir,
        status_interval_s=args.status_interval,
        birth_wait_s=args.birth_wait,
    )
    async with agent:
        version = agent.status.version
        endpoints = {
            "agent": args.agent_id,
            "mqtt": broker.redacted(),
            "config": agent.config_topic,
            "status": agent.status_topic,
            "version": str(version) if version is not None else "-",  # "-" before any version: None would leave it out
            "data": str(data_dir),
        }
        ready(ready_line("uns-edge ready", endpoints))
        await agent.run()


async def _enrol(broker: BrokerUrl, agent_id: str, password: str, ca_file: Path | None) -> None:
    """Connect once with the enrolment password; retry while the broker is away, fail when it refuses."""
    clients = network_clients(broker.with_credentials(agent_id, password), ca_file=ca_file)
    backoff = Backoff(min_s=0.2, max_s=10.0)
    while True:
        try:
            async with clients(client_id=f"uns-edge-{agent_id}-enrol", reconnect=False):
                return
        except BrokerUnreachable as exc:
            delay = backoff.failed()
            log.warning("edge agent %s: cannot enrol yet (%s); retry in %.1f s", agent_id, exc.reason, delay)
            await asyncio.sleep(delay)
        except BrokerError as exc:
            reason = f"enrolment refused by {exc.endpoint} (token wrong, used or expired: ask for a new one)"
            raise ConfigError(source="uns edge", path="--enrol-token", reason=reason) from None


def run_fleet(args: argparse.Namespace, *, url: str | None, enterprise: str, data_dir: Path) -> int:
    """One ``uns fleet`` action; prints its outcome, returns the exit code (0 ok)."""
    store = FleetStore(directory=data_dir / "fleet")
    broker = BrokerUrl.from_str(url or _DEFAULT_BROKER)
    if args.action in ("enrol", "revoke"):
        return _account_action(args, store)
    if args.action == "diff":
        old, new = _numbers(args, 2)
        agent = _one_agent(args)
        diff = store.diff(agent, old, new)
        print(diff or f"{agent}: no differences between v{old} and v{new}\n", end="")
        return 0
    if args.action == "list":
        statuses, away = asyncio.run(_statuses(broker, enterprise))
        agents = sorted(set(store.agents()) | set(statuses))
        for agent in agents:
            latest = store.latest(agent)
            desired = f"v{latest.version} {latest.hash[:12]} by {latest.author}" if latest else "-"
            state = account_of(store, agent).state
            account = "" if state == "none" else f"; account {state}"
            reported = "revoked" if state == "revoked" else "unknown" if away else _reported(statuses.get(agent, {}))
            print(f"{agent}: desired {desired}; reported {reported}{account}")
        # notes on stderr: stdout stays one line per agent for scripts
        if away:
            print(f"uns fleet list: {away}: what the agents report is unknown", file=sys.stderr)
            return 1
        if not agents:
            print(
                f"uns fleet list: no agents in {store.directory} nor on the broker"
                " (deploy a config to one: uns fleet deploy FILE --agent NAME)",
                file=sys.stderr,
            )
        return 0
    if args.action == "label":
        labels = _pairs(args.args, "KEY=VALUE")
        for agent in args.agent or _missing(args, "--agent", "name an agent"):
            store.set_labels(agent, labels)
            print(f"{agent}: labels {store.labels(agent)}")
        return 0
    if args.action == "rollback":
        (to,) = _numbers(args, 1)
        versions = [store.rollback(_one_agent(args), to, author=args.author, note=args.note)]
    else:
        if len(args.args) != 1:
            raise ConfigError(source="uns fleet deploy", path="FILE", reason="give one config file")
        path = Path(args.args[0])
        config = read_yaml(path, str(path), "write the agent's bridges: list as YAML")
        labels = _pairs(args.label, "--label KEY=VALUE")
        agents = store.agents() if args.all else sorted({*args.agent, *(store.select(labels) if labels else [])})
        if not agents:
            _missing(args, "--agent", "name an agent, a --label the hub's agents carry, or --all")
        if args.staged and len(agents) > 1:
            first = store.deploy(agents[0], config, author=args.author, note=args.note)
            failure = asyncio.run(_first_stage(broker, enterprise, first, args.stage_timeout))
            if failure:
                print(f"{first.agent}: version {first.version} {failure}; not deployed to {', '.join(agents[1:])}")
                return 1
            print(f"{first.agent}: version {first.version} ({first.hash[:12]}) running; deploying to the rest")
            agents = agents[1:]
        versions = [store.deploy(agent, config, author=args.author, note=args.note) for agent in agents]
    asyncio.run(_publish(broker, enterprise, versions))
    for version in versions:
        print(f"{version.agent}: version {version.version} ({version.hash[:12]}) published")
    return 0


def _account_action(args: argparse.Namespace, store: FleetStore) -> int:
    if len(args.args) != 1:
        raise ConfigError(source=f"uns fleet {args.action}", path="ID", reason="give one agent id")
    agent = str(args.args[0])
    if args.action == "revoke":
        revoke(store, agent)
        print(f"{agent}: account revoked (its connections are dropped; its versions are kept)")
        return 0
    if args.mosquitto:
        print(mosquitto_acl(agent, args.edge_node), end="")
        return 0
    token = enrol(store, agent, _pairs(args.label, "--label KEY=VALUE"), edge_nodes=args.edge_node, ttl_s=args.ttl)
    # the token goes to stdout once and nowhere else: only its hash is kept
    print(f"{agent}: enrolment token (single use, expires in {args.ttl:g} s):")
    print(token)
    print(f"on the agent: uns edge --id {agent} --enrol-token <token> --broker mqtt://<hub>:<port>")
    return 0


def _pairs(items: list[str], what: str) -> dict[str, str]:
    pairs = [item.partition("=") for item in items]
    bad = [item for item, (_key, sep, _value) in zip(items, pairs, strict=True) if not sep or not _key]
    if bad:
        raise ConfigError(source="uns fleet", path=what, reason="write KEY=VALUE", value=bad[0])
    return {key: value for key, _sep, value in pairs}


def _missing(args: argparse.Namespace, flag: str, reason: str) -> NoReturn:
    raise ConfigError(source=f"uns fleet {args.action}", path=flag, reason=reason)


async def _first_stage(broker: BrokerUrl, enterprise: str, version: DesiredVersion, timeout_s: float) -> str:
    """Publish ``version`` and wait until its agent runs it with every bridge online: "" then, else why not."""
    async with MqttClient(url=broker, client_id="uns-fleet-cli") as client:
        await client.subscribe([status_topic(enterprise, version.agent)], qos=1)
        await client.publish(
            config_topic(enterprise, version.agent), version.model_dump_json().encode(), qos=1, retain=True
        )
        try:
            async with asyncio.timeout(timeout_s):
                async for message in client.messages():
                    try:
                        status = AgentStatus.model_validate_json(message.payload)
                    except ValidationError:
                        continue  # the offline will, or an older agent's document
                    if status.status == "failed" and status.desired == version.version:
                        return f"failed: {status.reason}"
                    healthy = all(bridge.online for bridge in status.bridges)
                    if status.status == "running" and status.version == version.version and healthy:
                        return ""
        except TimeoutError:
            return f"not running with every bridge online within {timeout_s:g} s"
    return "status stream ended"  # pragma: no cover  (messages() ends only when the client closes)


def _one_agent(args: argparse.Namespace) -> str:
    if len(args.agent) != 1:
        raise ConfigError(source=f"uns fleet {args.action}", path="--agent", reason="name exactly one agent")
    return str(args.agent[0])


def _numbers(args: argparse.Namespace, count: int) -> list[int]:
    if len(args.args) != count or not all(item.isdigit() for item in args.args):
        reason = f"give {count} version number{'s' if count > 1 else ''}"
        raise ConfigError(source=f"uns fleet {args.action}", path="VERSION", reason=reason, value=" ".join(args.args))
    return [int(item) for item in args.args]


def _reported(status: dict[str, object]) -> str:
    if not status:
        return "nothing yet"
    version = status.get("version")
    text = f"{status.get('status')}" + ("" if version is None else f" v{version}")  # an offline will has none
    return text + (f" ({status['reason']})" if status.get("reason") else "")


async def _publish(broker: BrokerUrl, enterprise: str, versions: list[DesiredVersion]) -> None:
    async with MqttClient(url=broker, client_id="uns-fleet-cli") as client:
        for version in versions:
            topic = config_topic(enterprise, version.agent)
            await client.publish(topic, version.model_dump_json().encode(), qos=1, retain=True)


async def _statuses(broker: BrokerUrl, enterprise: str) -> tuple[dict[str, dict[str, object]], str | None]:
    """The retained status of every agent (what arrives within a second), and why the broker could not be asked."""
    found: dict[str, dict[str, object]] = {}
    try:
        async with MqttClient(url=broker, client_id="uns-fleet-cli", reconnect=False) as client:
            await client.subscribe([status_topic(enterprise, "+")], qos=1)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_STATUS_WAIT_S):
                    async for message in client.messages():
                        with contextlib.suppress(ValueError):
                            found[message.topic.split("/")[-2]] = json.loads(message.payload)
    except BrokerError as exc:
        return found, str(exc)
    except OSError as exc:
        return found, f"broker {broker.redacted()}: {exc}"
    return found, None
