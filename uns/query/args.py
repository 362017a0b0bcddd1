"""A query's arguments and answer without a transport: parameters in (read once, unknown ones refused), JSON out.

The historian's endpoints (``uns.historian.query_api``), the MES views (``uns.mes.views_api``) and a sink's
history (``uns.sinks.postgres_query``) read their parameters with ``QueryArgs`` and write their documents
with ``document_bytes``, so a parameter means the same everywhere and a bad one is named the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import orjson

from uns.errors import BadArgument
from uns.query.timespec import parse_time, parse_zone

__all__ = ["MAX_LIMIT", "Document", "Params", "QueryArgs", "check_limit", "document_bytes"]

MAX_LIMIT = 1_000_000
"""The most rows one query answers (``limit``)."""

Params = Mapping[str, Sequence[str]]
"""Query parameters, each with every value given (``context`` and ``match`` repeat)."""

Document = dict[str, object]
"""A query's answer as JSON-ready data (``document_bytes`` writes it), as an endpoint returns it."""


def check_limit(limit: int) -> int:
    """``limit`` itself when it is in 1..MAX_LIMIT: every query's bound on the rows it answers.

    Raises:
        BadArgument: naming ``limit``.
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise BadArgument("limit", f"must be 1..{MAX_LIMIT} (got {limit})")
    return limit


class QueryArgs:
    """One endpoint's parameters: read each once, refuse unknown ones (shared with the MES views)."""

    def __init__(self, endpoint: str, params: Params, allowed: Sequence[str], now: datetime) -> None:
        for key in params:
            if key not in allowed:
                raise BadArgument(key, f"unknown parameter for {endpoint}; it takes {', '.join(allowed) or 'none'}")
        self._params = params
        self._now = now
        self.tz = parse_zone(self.one("tz", "UTC")) if "tz" in allowed else parse_zone("UTC")

    def one(self, key: str, default: str | None = None) -> str:
        """The one value of ``key``, else ``default``; required when there is no default."""
        values = self._params.get(key) or []
        if len(values) > 1:
            raise BadArgument(key, f"given {len(values)} times; give it once")
        if values and values[0].strip():
            return values[0].strip()
        if default is None:
            raise BadArgument(key, "required")
        return default

    def many(self, key: str) -> list[str]:
        """Every non-empty value of a repeatable ``key``."""
        return [value.strip() for value in self._params.get(key) or [] if value.strip()]

    def time(self, key: str, default: str) -> datetime:
        """``key`` as an instant (ISO, ``now``, ``-15m``), naive times read in ``tz``."""
        return parse_time(self.one(key, default), now=self._now, tz=self.tz, field=key)

    def limit(self, default: int) -> int:
        """``limit`` as a whole number in 1..MAX_LIMIT."""
        text = self.one("limit", str(default))
        try:
            limit = int(text)
        except ValueError:
            raise BadArgument("limit", f"not a whole number: {text!r}") from None
        return check_limit(limit)

    @property
    def now(self) -> datetime:
        """The request's "now" (what relative times count from)."""
        return self._now

    def at(self, moment: datetime) -> datetime:
        """``moment`` in the requested time zone."""
        return moment.astimezone(self.tz)


def _default(value: object) -> object:
    if isinstance(value, bytes | bytearray):
        return value.decode("utf-8", errors="replace")
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def document_bytes(document: object) -> bytes:
    """A document (or any JSON value) as JSON: times ISO-8601 with their offset, integers exact."""
    return orjson.dumps(document, default=_default)
