"""The URL of a hub's (or a ``uns historian``'s) HTTP API and the account that signs in to it, never shown.

``uns web --historian-url`` and ``uns query``/``uns mes --api`` take ``http[s]://[user:password@]host:port``; both
read it here, show it without the password, and sign in with the same ``POST /api/login`` body.
"""

from __future__ import annotations

import dataclasses
import urllib.parse

import orjson

__all__ = ["LOGIN_PATH", "ApiUrl", "BadApiUrl"]

LOGIN_PATH = "/api/login"

_FORM = "expected http[s]://[user:password@]host:port"


class BadApiUrl(ValueError):
    """The text is not such a URL; ``shown`` is it without its account's password, ``reason`` says what to do."""

    def __init__(self, shown: str, reason: str) -> None:
        self.shown = shown
        self.reason = reason
        super().__init__(f"{shown!r}: {reason}")


def _hidden(text: str) -> str:
    """``text`` with whatever stands before its last ``@`` after ``://`` (an account) shown as ``***``."""
    scheme, sep, rest = text.partition("://")
    if not sep or "@" not in rest:
        return text
    return f"{scheme}://***@{rest.rpartition('@')[2]}"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ApiUrl:
    """Where an HTTP API is, and the account to sign in with (if any)."""

    base: str
    """``http://host:port[/prefix]`` without credentials, no trailing ``/``."""
    user: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, text: str) -> ApiUrl:
        """Read ``http[s]://[user:password@]host:port[/prefix]``.

        Raises:
            BadApiUrl: not such a URL; its text never holds the password (a ``/``, ``?`` or ``#`` left unencoded
                in one ends the account early, and urllib then read the rest as a host and a port).
        """
        try:
            parts = urllib.parse.urlsplit(text)
        except ValueError as exc:  # an unclosed [IPv6
            raise BadApiUrl(_hidden(text), f"{exc}: {_FORM}") from None
        if "@" in f"{parts.path}?{parts.query}#{parts.fragment}":
            reason = "the account's user or password holds a / ? or #: percent-encode it (%2F %3F %23)"
            raise BadApiUrl(_hidden(text), reason)
        try:
            _ = parts.port  # reading it checks it
        except ValueError:
            raise BadApiUrl(_hidden(text), f"the port is not a number in 0..65535: {_FORM}") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BadApiUrl(_hidden(text), _FORM)
        netloc = parts.netloc.rpartition("@")[2]  # host[:port] as given (IPv6 keeps its brackets)
        user = urllib.parse.unquote(parts.username) if parts.username else None
        password = urllib.parse.unquote(parts.password) if parts.password else None
        return cls(base=f"{parts.scheme}://{netloc}{parts.path}".rstrip("/"), user=user, password=password)

    def redacted(self) -> str:
        """The url for errors, logs and the ready line: the user, never the password."""
        if self.user is None:
            return self.base
        scheme, rest = self.base.split("://", 1)
        return f"{scheme}://{urllib.parse.quote(self.user)}:***@{rest}"

    def login_body(self) -> bytes:
        """The JSON body of ``POST <base>/api/login`` with this account."""
        return orjson.dumps({"username": self.user, "password": self.password or ""})
