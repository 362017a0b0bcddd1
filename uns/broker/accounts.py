"""Runtime broker accounts: enrolled edge agents, their one-time enrolment tokens and revocations.

broker.yaml is read once at start; these accounts change while the hub runs (``uns fleet enrol`` and
``revoke`` in another process), so they live in one JSON file beside the broker's state,
``<data_dir>/accounts.json``, that the broker re-reads when it changes: at each CONNECT it asks
for (one ``stat``) and every ``POLL_S`` (to drop the open connections of a revoked account). Writers
take an exclusive ``flock`` and replace the file by a rename, so readers never see half of it and a
token is consumed once even by two CONNECTs at the same moment. Tokens are kept as sha256 only (they
are 256 random bits: no need for a slow hash), passwords as argon2 like broker.yaml's.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from model.broker_config import UserConfig
from model.fleet import parse_enrolment_password
from uns.broker.passwords import hash_password, verify_password
from uns.clock import now_ms
from uns.files import replace_file

__all__ = [
    "FILE_NAME",
    "POLL_S",
    "AccountStore",
    "Accounts",
    "Enrolment",
    "read_accounts",
    "token_hash",
    "update_accounts",
]

log = logging.getLogger(__name__)

FILE_NAME = "accounts.json"
POLL_S = 0.5
"""How often the broker looks at the file for revocations to enforce on open connections."""


class Enrolment(BaseModel):
    """A pending enrolment: the account it will create, once, with a token that expires."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    token_sha256: str = Field(description="sha256 (hex) of the one-time token; the token itself is never stored.")
    expires_ms: int = Field(description="Unix ms after which the token is refused.")
    created_ms: int = Field(description="When the token was made (Unix ms).")
    edge_nodes: tuple[str, ...] = Field(description='The account\'s Sparkplug edge nodes, "group/node".')


class Accounts(BaseModel):
    """The whole file: accounts by user name, revocations (user -> Unix ms) and pending enrolments."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    accounts: dict[str, UserConfig] = Field(default_factory=dict, description="Enrolled accounts.")
    revoked: dict[str, int] = Field(default_factory=dict, description="Revoked user names and when (Unix ms).")
    enrolments: dict[str, Enrolment] = Field(default_factory=dict, description="Pending enrolments by user name.")


def token_hash(token: str) -> str:
    """What the file keeps of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def read_accounts(path: Path) -> Accounts:
    """The file's accounts (empty when there is no file yet); raises ``ValidationError`` for a broken one."""
    return _read(path)


def _read(path: Path) -> Accounts:
    try:
        return Accounts.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        return Accounts()


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def update_accounts(path: Path, change: Callable[[Accounts], Accounts]) -> Accounts:
    """Apply ``change`` to the file under its lock and write the result (mode 0600, by rename)."""
    with _locked(path):
        current = _read(path)
        new = change(current)
        if new is current:
            return current  # nothing changed: the file (and the broker's generation) stays
        replace_file(path, json.dumps(new.model_dump(mode="json"), indent=2) + "\n", mode=0o600)
        return new


class AccountStore:
    """The broker's view of the file: re-read when its ``stat`` changes, ``generation`` counting the reloads."""

    def __init__(self, *, path: Path) -> None:
        self.path = path
        self.generation = 0
        self._stamp: tuple[int, int, int] | None = None
        self._accounts = Accounts()

    def refresh(self) -> bool:
        """Re-read the file if it changed; True when it did. A broken file keeps the last good view."""
        try:
            stat = os.stat(self.path)
            stamp = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            stamp = (0, 0, 0)
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            self._accounts = _read(self.path)
        except (ValidationError, OSError) as exc:
            log.error("%s unreadable, keeping the accounts read before: %s", self.path, exc)
            return False
        self.generation += 1
        return True

    def account(self, user: str) -> UserConfig | None:
        """The enrolled account named ``user``; None when unknown or revoked."""
        if user in self._accounts.revoked:
            return None
        return self._accounts.accounts.get(user)

    def revoked(self, user: str) -> bool:
        """Whether ``user`` was revoked (and not enrolled again since)."""
        return user in self._accounts.revoked

    def enrol(self, user: str, password: str) -> str | None:
        """Complete ``user``'s enrolment from an enrolment CONNECT password; None when admitted, else why not.

        Blocking (argon2 and the file): run it in a thread. The token is consumed; the account takes the
        enrolment's edge nodes with role ``bridge`` and ``edge_agent`` = ``user``. An agent that enrolled
        already and sends the same again (a restart before it noticed) is checked against its account.
        """
        parsed = parse_enrolment_password(password)
        if parsed is None:
            return "malformed enrolment password"
        token, own = parsed
        why: list[str] = []

        def admit(current: Accounts) -> Accounts:
            pending = current.enrolments.get(user)
            if pending is None:
                account = current.accounts.get(user)
                if account is not None and user not in current.revoked and verify_password(own, account.password_hash):
                    return current  # enrolled already with this password
                why.append("no pending enrolment")
                return current
            if not hmac.compare_digest(pending.token_sha256, token_hash(token)):
                why.append("wrong enrolment token")
                return current
            if now_ms() > pending.expires_ms:
                why.append("enrolment token expired")
                return current
            account = UserConfig(
                password_hash=hash_password(own), role="bridge", edge_nodes=pending.edge_nodes, edge_agent=user
            )
            return current.model_copy(
                update={
                    "accounts": {**current.accounts, user: account},
                    "revoked": {name: ms for name, ms in current.revoked.items() if name != user},
                    "enrolments": {name: e for name, e in current.enrolments.items() if name != user},
                }
            )

        update_accounts(self.path, admit)
        self.refresh()
        if why:
            return why[0]
        log.info("edge agent %s enrolled: account created (role bridge)", user)
        return None
