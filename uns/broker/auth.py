"""Authentication of CONNECTs against broker.yaml users (argon2 hashes), and its amqtt plugin."""

from __future__ import annotations

import asyncio
import dataclasses
import logging

from amqtt.plugins.base import BaseAuthPlugin
from amqtt.session import Session

from model.broker_config import BrokerFileConfig
from uns.broker.passwords import verify_password
from uns.broker.stats import Counters, RateLimitedLog

__all__ = ["Authenticator", "UnsAuthPlugin", "is_anonymous"]

log = logging.getLogger(__name__)


def is_anonymous(user: str | None, password: str | None) -> bool:
    """No user name, or an empty one with no or an empty password."""
    return user is None or (user == "" and not password)


class Authenticator:
    """Decides whether a CONNECT's user name and password may log in; counts and logs refusals."""

    def __init__(self, *, config: BrokerFileConfig, counters: Counters) -> None:
        self._config = config
        self._counters = counters
        self._warn = RateLimitedLog(log)

    async def authenticate(self, *, client_id: str, user: str | None, password: str | None, peer: str) -> bool:
        """True when the user and password match broker.yaml, or the client is anonymous and that is allowed.

        An empty user name with no (or an empty) password is anonymous, as in Mosquitto: Eclipse Tahu's
        JS client sends ``""``/``""`` when no credentials are configured.
        """
        if user is None or is_anonymous(user, password):
            if self._config.allow_anonymous:
                return True
            return self._refuse(client_id, "<anonymous>", peer, "anonymous access is off")
        account = self._config.users.get(user)
        if account is None:
            return self._refuse(client_id, user, peer, "unknown user")
        if not password:
            return self._refuse(client_id, user, peer, "no password")
        # argon2 takes tens of milliseconds on purpose: keep it off the event loop
        if not await asyncio.to_thread(verify_password, password, account.password_hash):
            return self._refuse(client_id, user, peer, "wrong password")
        log.debug("client %s logged in as %s (role %s) from %s", client_id, user, account.role, peer)
        return True

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
            client_id=str(session.client_id), user=session.username, password=session.password, peer=peer
        )
        # session.is_anonymous stays False: amqtt would then drop the session of an anonymous client at
        # disconnect even with clean_session=0; MQTT keeps it, so do we
        return ok
