"""Enrolling and revoking edge agents: the hub's side (one-time tokens, revocations) and the agent's (its password).

The hub's functions write the broker's runtime account file (``uns.broker.accounts``) in the hub's data
dir, beside the fleet's versions: ``enrol`` makes a token (returned once, kept as sha256 only) that
lets ``uns edge --enrol-token`` create the agent's account in its first CONNECT; ``revoke`` refuses the
account from then on (the broker drops its open connections). The fleet HTTP API calls these too.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import ValidationError

from model.broker_config import UserConfig
from model.fleet import enrolment_password
from uns.broker.accounts import FILE_NAME, Accounts, Enrolment, read_accounts, token_hash, update_accounts
from uns.broker.acl import STATE_FILTER, edge_agent_grants, edge_node_grants
from uns.broker.passwords import DUMMY_HASH
from uns.clock import now_ms
from uns.config_file import config_error, validation_problems
from uns.errors import ConfigError
from uns.fleet.store import FleetStore

__all__ = [
    "DEFAULT_TOKEN_TTL_S",
    "AccountState",
    "AgentAccount",
    "account_of",
    "accounts_file",
    "agent_password",
    "enrol",
    "enrolment_password",
    "mosquitto_acl",
    "mosquitto_password_line",
    "revoke",
]

DEFAULT_TOKEN_TTL_S = 3600.0
_PASSWORD_FILE = "password"  # noqa: S105  (a file name, not a password)

_MOSQUITTO_ROUNDS = 101  # what mosquitto_passwd 2.0 writes

AccountState = Literal["none", "pending", "enrolled", "revoked"]
"""Where an agent's account stands: never enrolled, token issued, account created, refused."""


@dataclass(frozen=True, slots=True)
class AgentAccount:
    """An agent's account as the hub sees it (for ``uns fleet list`` and the Edges page)."""

    agent: str
    state: AccountState
    edge_nodes: tuple[str, ...] = ()
    token_expires_ms: int | None = None
    revoked_ms: int | None = None


def accounts_file(store: FleetStore) -> Path:
    """The broker's runtime account file: ``<data_dir>/accounts.json``, the store being ``<data_dir>/fleet``."""
    return store.directory.parent / FILE_NAME


def enrol(
    store: FleetStore,
    agent_id: str,
    labels: Mapping[str, str] | None = None,
    *,
    edge_nodes: Sequence[str] = (),
    ttl_s: float = DEFAULT_TOKEN_TTL_S,
) -> str:
    """A new one-time token for ``agent_id`` (show it once: only its hash is kept), valid ``ttl_s``.

    The account it creates has role ``bridge``, ``edge_agent`` = the agent id and ``edge_nodes``
    (default ``<agent_id>/+``: every node of the Sparkplug group named after the agent). A new token
    replaces one not used yet; enrolling a revoked agent again admits it once the token is used.
    ``labels`` are the agent's fleet labels (merged). Raises ``ConfigError`` naming a bad field.
    """
    nodes = tuple(edge_nodes) or (f"{agent_id}/+",)
    _check(agent_id, nodes, ttl_s)
    token = _token()
    created = now_ms()
    pending = Enrolment(
        token_sha256=token_hash(token), expires_ms=created + int(ttl_s * 1000), created_ms=created, edge_nodes=nodes
    )
    update_accounts(
        accounts_file(store),
        lambda current: current.model_copy(update={"enrolments": {**current.enrolments, agent_id: pending}}),
    )
    store.set_labels(agent_id, labels or {})  # also makes the agent known to the fleet (its folder)
    return token


def revoke(store: FleetStore, agent_id: str) -> AgentAccount:
    """Refuse ``agent_id``'s account from now on (its open connections are dropped within a second).

    Its versions stay in the store for audit; a pending token is void. ``ConfigError`` when the hub never
    enrolled it.
    """

    def change(current: Accounts) -> Accounts:
        if agent_id not in current.accounts and agent_id not in current.enrolments:
            return current
        return current.model_copy(
            update={
                "revoked": {**current.revoked, agent_id: now_ms()},
                "enrolments": {name: e for name, e in current.enrolments.items() if name != agent_id},
            }
        )

    found = account_of(update_accounts(accounts_file(store), change), agent_id)
    if found.state != "revoked":
        raise ConfigError(source="uns fleet revoke", path="ID", value=agent_id, reason="no such enrolled agent")
    return found


def account_of(accounts: Accounts | FleetStore, agent_id: str) -> AgentAccount:
    """Where ``agent_id``'s account stands, from the file (or a store, whose file is read)."""
    if isinstance(accounts, FleetStore):
        accounts = read_accounts(accounts_file(accounts))
    if agent_id in accounts.revoked:
        account = accounts.accounts.get(agent_id)
        nodes = account.edge_nodes if account is not None else ()
        return AgentAccount(agent_id, "revoked", nodes, revoked_ms=accounts.revoked[agent_id])
    pending = accounts.enrolments.get(agent_id)
    if pending is not None:
        return AgentAccount(agent_id, "pending", pending.edge_nodes, token_expires_ms=pending.expires_ms)
    account = accounts.accounts.get(agent_id)
    if account is not None:
        return AgentAccount(agent_id, "enrolled", account.edge_nodes)
    return AgentAccount(agent_id, "none")


def _token() -> str:
    """32 random bytes, URL-safe, never starting with ``-``.

    argparse reads ``--enrol-token -x...`` as a missing value and another option: 1 token in 64 failed
    ``uns edge --enrol-token <token>`` as docs/fleet.md writes it.
    """
    while (token := secrets.token_urlsafe(32)).startswith("-"):
        pass
    return token


def agent_password(data_dir: Path) -> str:
    """The agent's own broker password, ``<data_dir>/agent/password`` (mode 0600), made on first use."""
    path = data_dir / "agent" / _PASSWORD_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(secrets.token_urlsafe(32) + "\n")
    return path.read_text(encoding="utf-8").strip()


def mosquitto_acl(agent_id: str, edge_nodes: Sequence[str] = ()) -> str:
    """The Mosquitto ACL block of an agent's account (an external broker cannot take an enrolment itself)."""
    nodes = tuple(edge_nodes) or (f"{agent_id}/+",)
    _check(agent_id, nodes, DEFAULT_TOKEN_TTL_S)
    lines = [f"user {agent_id}"]
    for node in nodes:  # the embedded broker's grants for the same account (uns.broker.acl), as Mosquitto writes them
        publish, read = edge_node_grants(node)
        lines += [f"topic write {topic}" for topic in publish] + [f"topic read {topic}" for topic in read]
    config, status = edge_agent_grants(agent_id)
    lines += [f"topic read {STATE_FILTER}", f"topic read {config}", f"topic write {status}"]
    return "\n".join(lines) + "\n"


def mosquitto_password_line(user: str, password: str, *, salt: bytes | None = None) -> str:
    """A Mosquitto 2 password-file line (``user:$7$101$salt$hash``, PBKDF2-SHA512 as ``mosquitto_passwd``)."""
    salt = salt if salt is not None else secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, _MOSQUITTO_ROUNDS)
    return f"{user}:$7${_MOSQUITTO_ROUNDS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


_CLI_NAMES = {"edge_agent": "ID", "edge_nodes": "--edge-node"}
"""The account's fields as ``uns fleet enrol`` spells them, for its error messages."""


def _check(agent_id: str, edge_nodes: tuple[str, ...], ttl_s: float) -> None:
    problems: list[tuple[str, str, str, object]] = []
    if ttl_s <= 0:
        problems.append(("uns fleet enrol", "--ttl", "must be more than 0 seconds", ttl_s))
    try:  # the account's own checks: a slug agent id, "group/node" edge nodes
        UserConfig(password_hash=DUMMY_HASH, role="bridge", edge_nodes=edge_nodes, edge_agent=agent_id)
    except ValidationError as exc:
        given = {"edge_agent": agent_id, "edge_nodes": edge_nodes}
        for source, path, reason, value in validation_problems(exc, lambda _loc: "uns fleet enrol", given):
            field = path.partition("[")[0]
            problems.append((source, _CLI_NAMES.get(field, field), reason, value))
    if problems:
        raise config_error(problems)
