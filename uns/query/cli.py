"""A query from a shell, on the hub's DuckDB file or over its HTTP API: ``uns query`` and ``uns mes`` both use it.

Without ``--api`` it opens the file read-only; while a running hub holds the file (DuckDB allows
one writer process) it asks that hub over HTTP instead and says so on stderr. Both ways give the
same document, printed as an aligned table, JSON or CSV (``render``).
"""

from __future__ import annotations

import argparse
import csv
import http.cookiejar
import io
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

import duckdb
import orjson

from model.config import Settings, WebSection
from uns.api_url import LOGIN_PATH, ApiUrl, BadApiUrl
from uns.errors import BadArgument, StoreError
from uns.query.args import Document, Params, document_bytes
from uns.query.timespec import relative_ms
from uns.store.database import Database, database_path

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "ApiFailed",
    "LocalQuery",
    "answer",
    "join_relative_times",
    "render",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

_HTTP_TIMEOUT_S = 30.0


def join_relative_times(argv: Sequence[str]) -> list[str]:
    """``--start -7d`` as ``--start=-7d``, for every long option followed by a relative time.

    argparse reads any word that starts with ``-`` (and is not a plain negative number) as an option,
    so ``--start -7d`` fails with "expected one argument" and only ``--start=-7d`` works. Such a word can
    never be an option or a positional here, so gluing it to the option before it is always what was meant:
    ``--start``, ``--end`` and any other option of ``uns query`` and ``uns mes`` that takes a time.
    Words after ``--`` are left alone.
    """
    joined: list[str] = []
    i = 0
    while i < len(argv):
        word = argv[i]
        if word == "--":
            joined.extend(argv[i:])
            break
        value = argv[i + 1] if i + 1 < len(argv) else ""
        if word.startswith("--") and "=" not in word and _is_relative_time(value):
            joined.append(f"{word}={value}")
            i += 2
        else:
            joined.append(word)
            i += 1
    return joined


def _is_relative_time(word: str) -> bool:
    """A relative time as a value (``-15m``, ``-1.5h``: ``uns.query.timespec``), which argparse takes for an option."""
    return word.startswith("-") and relative_ms(word) is not None


class ApiFailed(Exception):
    """The hub answered with an error, or could not be reached (status 0)."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


def _hub_url(web: WebSection) -> str:
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(web.bind, web.bind)  # noqa: S104 - mapping away from it
    return f"http://[{host}]:{web.http_port}" if ":" in host else f"http://{host}:{web.http_port}"


LocalQuery = Callable[[Database], Document | bytes]
"""Answers from a read-only database file (what the HTTP endpoint would answer), as a document or its JSON."""


def _local(path: Path, query: LocalQuery) -> Document:
    with Database(path=path, read_only=True) as database:
        document = query(database)
    written = document if isinstance(document, bytes) else document_bytes(document)
    parsed: Document = orjson.loads(written)  # the same text the HTTP API would send
    return parsed


def _fetch(base: str, endpoint: str, params: Params) -> Document:
    """``GET <base>/api/<endpoint>?<params>`` (endpoint like ``history/raw`` or ``mes/oee``).

    An account in ``base`` (``http://user:password@host:port``, as ``uns web --historian-url`` takes it) signs in
    first (``POST /api/login``) and sends the session cookie: a hub whose broker.yaml has accounts answers 401 else.
    No error shows the password (``ApiUrl.redacted``).
    """
    try:
        url = ApiUrl.parse(base)
    except BadApiUrl as exc:
        raise ApiFailed(0, f"--api {exc.shown!r}: {exc.reason}") from None
    pairs = [(key, value) for key, values in params.items() for value in values]
    # the session cookie kept as the web's historian proxy keeps it: sent back to its own host only
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    if url.user is not None:
        _login(opener, url)
    try:
        with opener.open(
            f"{url.base}/api/{endpoint}?{urllib.parse.urlencode(pairs)}", timeout=_HTTP_TIMEOUT_S
        ) as response:
            parsed: Document = orjson.loads(response.read())
            return parsed
    except urllib.error.HTTPError as exc:
        error, field = _error_of(exc)
        message = error or f"HTTP {exc.code} {exc.reason}"
        if exc.code == 400 and field is not None:  # the same error the file would have given
            raise BadArgument(field, message.removeprefix(f"{field}: ")) from exc
        if exc.code == 401 and url.user is None:
            scheme, rest = url.base.split("://", 1)
            message += f": give an account in the URL, --api {scheme}://USER:PASSWORD@{rest}"
        raise ApiFailed(exc.code, message) from exc
    except (urllib.error.URLError, OSError, orjson.JSONDecodeError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise ApiFailed(0, f"{url.base}: {reason}") from exc


def _login(opener: urllib.request.OpenerDirector, url: ApiUrl) -> None:
    """Sign in at ``url`` with its account: ``opener``'s cookie jar keeps the session it answers with."""
    request = urllib.request.Request(  # noqa: S310 - ApiUrl.parse checked the scheme
        url.base + LOGIN_PATH, data=url.login_body(), headers={"content-type": "application/json"}, method="POST"
    )
    try:
        with opener.open(request, timeout=_HTTP_TIMEOUT_S):
            pass
    except urllib.error.HTTPError as exc:
        error, _ = _error_of(exc)
        failed = f"{url.base}: login as {url.user!r}: {error or f'HTTP {exc.code} {exc.reason}'}"
        raise ApiFailed(exc.code, failed) from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise ApiFailed(0, f"{url.base}: {reason}") from exc


def _error_of(exc: urllib.error.HTTPError) -> tuple[str | None, str | None]:
    """The ``error`` and ``field`` of an error answer's JSON, each None when it has none."""
    try:
        body = orjson.loads(exc.read())
    except orjson.JSONDecodeError:
        return None, None
    if not isinstance(body, dict):
        return None, None
    error, field = body.get("error"), body.get("field")
    return (str(error) if error else None), (field if isinstance(field, str) else None)


def _is_locked(exc: StoreError) -> bool:
    return isinstance(exc.__cause__, duckdb.IOException) and "lock" in str(exc.__cause__).lower()


def answer(
    args: argparse.Namespace, settings: Settings, endpoint: str, params: Params, local: LocalQuery, *, program: str
) -> Document:
    """The document from ``--api``, else the file, else (file locked by a running hub) over HTTP.

    Args:
        args: with ``api`` and ``db``.
        settings: where the file and the hub's HTTP port are.
        endpoint: the HTTP path after ``/api/`` (``history/raw``, ``mes/oee``).
        params: the query parameters.
        local: answers from the open file.
        program: names the command in messages (``uns query``, ``uns mes``).

    Raises:
        BadArgument: a bad parameter (from either path).
        StoreError: the file cannot be read and the hub did not answer.
    """
    if args.api:
        return _fetch(args.api, endpoint, params)
    path: Path = args.db or database_path(settings.historian, settings.data_dir)
    try:
        return _local(path, local)
    except StoreError as exc:
        if not _is_locked(exc):
            raise
        url = _hub_url(settings.web)
        print(f"{program}: {path} is locked by a running hub; asking it over HTTP at {url}", file=sys.stderr)
        try:
            return _fetch(url, endpoint, params)
        except ApiFailed as http_exc:
            if http_exc.status:
                raise
            raise StoreError(
                str(path), f"locked by another process, and the hub's HTTP API at {url} did not answer ({http_exc});"
                " give its address with --api URL"
            ) from http_exc  # fmt: skip


def _columns(rows: Sequence[dict[str, object]]) -> list[str]:
    return list(dict.fromkeys(key for row in rows for key in row))


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return str(value)


def render(document: Document, form: str) -> str:
    """The document as ``json``, ``csv`` (its rows) or ``table`` (aligned, a header line naming the time zone)."""
    if form == "json":
        return orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n"
    raw_rows = document.get("rows")
    rows: list[dict[str, object]] = (
        [row for row in raw_rows if isinstance(row, dict)] if isinstance(raw_rows, list) else []
    )
    columns = _columns(rows)
    if form == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([_cell(row.get(column)) for column in columns] for row in rows)
        return out.getvalue()
    cells = [[_cell(row.get(column)) for column in columns] for row in rows]
    widths = [max([len(column), *(len(line[i]) for line in cells)]) for i, column in enumerate(columns)]
    span = f", {document['start']} .. {document['end']}" if "start" in document and "end" in document else ""
    lines = [f"# times in {document.get('tz', 'UTC')}{span}; {len(rows)} rows"]
    if rows:
        lines.append("  ".join(column.ljust(width) for column, width in zip(columns, widths, strict=True)).rstrip())
        lines.extend(
            "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip() for line in cells
        )
    return "\n".join(lines) + "\n"
