"""Authentication of CONNECTs against broker.yaml users (argon2 hashes), and its amqtt plugin."""

from __future__ import annotations

import asyncio
import dataclasses
import logging

from amqtt.plugins.base import BaseAuthPlugin
from amqtt.session import Session

from model.broker_config import BrokerFileConfig
from model.fleet import ENROL_PREFIX
from uns.broker.accounts import AccountStore
from uns.broker.passwords import DUMMY_HASH, verify_password
from uns.broker.stats import Counters
from uns.broker.throttle import CheckSlots, LoginCache, LoginThrottle
from uns.logs import RateLimitedLog

__all__ = ["Authenticator", "UnsAuthPlugin", "is_anonymous"]

log = logging.getLogger(__name__)


def is_anonymous(user: str | None, password: str | None) -> bool:
    """No user name, or an empty one with no or an empty password."""
    return user is None or (user == "" and not password)


class Authenticator:
    """Decides whether a CONNECT's user name and password may log in; throttles, counts and logs refusals.

    Every password is checked against an argon2 hash (a dummy one for unknown users), at most
    ``login.max_concurrent_checks`` at once, in threads, an address already busy or failing queueing
    behind the others (:class:`uns.broker.throttle.CheckSlots`). Addresses and users that failed too often
    are refused before any check (:class:`uns.broker.throttle.LoginThrottle`); recent good logins are
    accepted from :class:`uns.broker.throttle.LoginCache`.
    """

    def __init__(self, *, config: BrokerFileConfig, counters: Counters, accounts: AccountStore | None = None) -> None:
        self._config = config
        self._accounts = accounts  # enrolled edge agents (uns.broker.accounts), after broker.yaml's users
        self._counters = counters
        self._warn = RateLimitedLog(log)
        login = config.login
        self._throttle = LoginThrottle(login)
        self._cache = LoginCache(size=login.cache_size, ttl_s=login.cache_ttl_s)
        self._checks = CheckSlots(login.max_concurrent_checks)

    async def authenticate(
        self, *, client_id: str, user: str | None, password: str | None, peer: str, address: str = ""
    ) -> bool:
        """True when the user and password match broker.yaml, or the client is anonymous and that is allowed.

        An empty user name with no (or an empty) password is anonymous, as in Mosquitto: Eclipse Tahu's
        JS client sends ``""``/``""`` when no credentials are configured. ``address`` is the client's
        IP address, the key of per-address throttling.
        """
        if user is None or is_anonymous(user, password):
            if self._config.allow_anonymous:
                return True
            return self._refuse(client_id, "<anonymous>", peer, "anonymous access is off")
        priority = 1 if self._throttle.suspect(address) else 0
        refused_by = self._throttle.begin(address=address, user=user)
        if refused_by is not None:
            self._counters.login_throttled += 1
            self._warn.warning(
                f"throttled/{refused_by}/{address if refused_by == 'address' else user}",
                "login refused for client %s, user %s from %s: too many failed logins from this %s (CONNACK 5)",
                client_id,
                user,
                peer,
                refused_by,
            )
            return False
        ok: bool | None = None
        try:
            why = await self._check(user, password or "", priority)
            ok = why is None
        finally:
            self._throttle.end(address=address, user=user, ok=ok)
        if why is not None:
            return self._refuse(client_id, user, peer, why)
        log.debug("client %s logged in as %s from %s", client_id, user, peer)
        return True

    async def _check(self, user: str, password: str, priority: int) -> str | None:
        """None when ``password`` is ``user``'s, else why not; unknown users pay the same argon2 check."""
        if not password:
            return "no password"
        account = self._config.users.get(user)
        if account is None and self._accounts is not None:
            self._accounts.refresh()
            if self._accounts.revoked(user) and not password.startswith(ENROL_PREFIX):
                return "account revoked"
            if password.startswith(ENROL_PREFIX):
                return await self._enrol(user, password, priority)
            account = self._accounts.account(user)
        stored = account.password_hash if account is not None else DUMMY_HASH
        if account is not None and self._cache.hit(user, password, stored):
            self._counters.login_cache_hits += 1
            return None
        await self._checks.acquire(priority)
        try:
            self._counters.password_checks += 1
            # argon2 takes tens of milliseconds on purpose: keep it off the event loop
            good = await asyncio.to_thread(verify_password, password, stored)
        finally:
            self._checks.release()
        if account is None:
            return "unknown user"
        if not good:
            return "wrong password"
        self._cache.add(user, password, stored)
        return None

    async def _enrol(self, user: str, password: str, priority: int) -> str | None:
        """An agent's first CONNECT carries its one-time token (never logged) and its own new password."""
        assert self._accounts is not None  # noqa: S101  (the caller checked)
        await self._checks.acquire(priority)
        try:
            self._counters.password_checks += 1
            return await asyncio.to_thread(self._accounts.enrol, user, password)
        finally:
            self._checks.release()

    def _refuse(self, client_id: str, user: str, peer: str, why: str) -> bool:
        self._counters.auth_failures += 1
        self._warn.warning(
            f"{user}/{why}", "login refused for client %s, user %s from %s: %s", client_id, user, peer, why
        )
        return False


class UnsAuthPlugin(BaseAuthPlugin):  # type: ignore[misc]  # amqtt ships no type information
    """amqtt auth plugin that asks :class:`Authenticator`; a refusal makes amqtt answer CONNACK 5."""

    @dataclasses.dataclass
    class Config:
        """Filled by the broker: the authenticator to ask."""

        authenticator: Authenticator

    async def authenticate(self, *, session: Session) -> bool:
        """Authenticate one CONNECT."""
        authenticator: Authenticator = self.config.authenticator
        peer = f"{session.remote_address}:{session.remote_port}"
        if is_anonymous(session.username, session.password):
            session.username = session.password = None  # the ACL then sees the anonymous principal
        ok = await authenticator.authenticate(
            client_id=str(session.client_id),
            user=session.username,
            password=session.password,
            peer=peer,
            address=str(session.remote_address),
        )
        # session.is_anonymous stays False: amqtt would then drop the session of an anonymous client at
        # disconnect even with clean_session=0; MQTT keeps it, so do we
        return ok
