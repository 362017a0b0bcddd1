"""Request authentication: basic, bearer, and OAuth2 client credentials with the token cached and refreshed."""

from __future__ import annotations

import base64
import logging
import time

import httpx

from model.bridges.http import BasicAuth, BearerAuth, HttpAuth, OAuth2ClientCredentials
from uns.errors import BridgeError

__all__ = ["Authenticator"]

log = logging.getLogger(__name__)

_DEFAULT_EXPIRY_S = 3600.0  # RFC 6749 5.1: expires_in is only RECOMMENDED


class Authenticator:
    """The ``Authorization`` header of the next request.

    OAuth2: the token is fetched on first use, kept until ``refresh_margin_s`` before it expires, and
    dropped on a 401 (``rejected()``) so the request is retried once with a new one.
    """

    def __init__(self, *, name: str, auth: HttpAuth | None) -> None:
        self._name = name
        self._auth = auth
        self._token: str | None = None
        self._expires_at = 0.0  # time.monotonic()
        self.tokens_fetched = 0

    async def header(self, client: httpx.AsyncClient) -> dict[str, str]:
        """The header to send (empty without auth); fetches an OAuth2 token when none is fresh."""
        auth = self._auth
        if auth is None:
            return {}
        if isinstance(auth, BasicAuth):
            pair = f"{auth.username}:{auth.password.get_secret_value()}".encode()
            return {"Authorization": f"Basic {base64.b64encode(pair).decode()}"}
        if isinstance(auth, BearerAuth):
            return {"Authorization": f"Bearer {auth.token.get_secret_value()}"}
        if self._token is None or time.monotonic() >= self._expires_at - auth.refresh_margin_s:
            await self._fetch(client, auth)
        return {"Authorization": f"Bearer {self._token}"}

    def rejected(self) -> bool:
        """The API answered 401: forget the token; True if a retry with a new one may help (OAuth2)."""
        if isinstance(self._auth, OAuth2ClientCredentials):
            self._token = None
            return True
        return False

    async def _fetch(self, client: httpx.AsyncClient, auth: OAuth2ClientCredentials) -> None:
        form = {"grant_type": "client_credentials"}
        if auth.scope:
            form["scope"] = auth.scope
        try:
            response = await client.post(
                auth.token_url, data=form, auth=(auth.client_id, auth.client_secret.get_secret_value())
            )
        except httpx.HTTPError as exc:
            raise BridgeError(self._name, auth.token_url, f"token request failed: {exc!r}") from exc
        if response.status_code != 200:
            raise BridgeError(self._name, auth.token_url, f"token endpoint answered {response.status_code}")
        try:
            body = response.json()
            token = body["access_token"]
            expires_in = float(body.get("expires_in", _DEFAULT_EXPIRY_S))
        except (ValueError, KeyError, TypeError) as exc:
            raise BridgeError(self._name, auth.token_url, f"token answer unreadable: {exc!r}") from exc
        if not isinstance(token, str) or not token:
            raise BridgeError(self._name, auth.token_url, "token answer has no access_token string")
        self._token = token
        self._expires_at = time.monotonic() + expires_in
        self.tokens_fetched += 1
        log.debug("http %s: token fetched, expires in %.0f s", self._name, expires_in)
