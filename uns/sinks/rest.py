"""The REST/webhook sink's writer: each row of a batch sent as one HTTP request with an idempotency key.

HTTP has no transaction over a batch, so a batch is "committed" once every one of its rows got a
2xx (or a ``duplicate_status``, 409: the target had it already); only then does the framework
acknowledge its messages. A row is sent again only with the same idempotency key (its MES event's
key, or its sample's hash of topic, time, value and quality), so a re-delivery after a crash or an
outage is dropped by the target.

Outcomes per request: 2xx delivered; 408, 429, 5xx and network errors ``SinkUnavailable`` (the
framework retries the batch with backoff, at least the target's ``Retry-After``); any other status
``RowsRefused`` (field ``http``, the status and the first 300 characters of the answer), and a
placeholder the message cannot fill ``RowsRefused`` (field ``template``). The writer remembers each
key's outcome (bounded), so a retried batch skips what was delivered and the framework's split of
a refused batch (``Batch.halves``) sends nothing twice. Dead letters go to a local SQLite file
(``uns.sinks.dead_letters``), which ``replay`` sends again.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import hashlib
import logging
import time
from collections.abc import Iterator

import httpx
import orjson

from model.sinks import RestRoute, RestSinkConfig
from uns.clock import at_epoch_ms, now_ms
from uns.errors import RowsRefused, SinkUnavailable
from uns.historian.rows import EventRow, Rejected, RowParser, SampleRow, envelope_of
from uns.historian.store import Batch
from uns.mqtt.filters import topic_matches
from uns.retry_after import retry_after_s
from uns.sinks.dead_letters import DeadLetters
from uns.sinks.template import TemplateError, fill_text, fill_url, render_body
from uns.sinks.writer import WriteReport

__all__ = ["ReplayReport", "RestWriter", "message_context"]

log = logging.getLogger(__name__)

_MEMO_LIMIT = 100_000
_EXCERPT = 300
_RETRY_STATUS = frozenset({408, 429})
_SENT = "sent"  # delivered by this process, not yet in a finished write's report
_REPORTED = "reported"  # delivered and counted (or the target said it had it): again is a duplicate


def _iso(ts_ms: int) -> str:
    return at_epoch_ms(ts_ms).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def message_context(row: EventRow | SampleRow, sink: str) -> dict[str, object]:
    """What a template may name: the message's topic, path, class, name, time, key and JSON body."""
    if isinstance(row, EventRow):
        body: object = orjson.loads(row.body)
        key = f"{row.event_key:016x}"
        return {"topic": row.topic, "path": row.path, "class": "mes", "name": row.event, "timestamp_ms": row.ts_ms,
                "timestamp": _iso(row.ts_ms), "key": key, "sink": sink, "body": body}  # fmt: skip
    identity = orjson.dumps([row.topic, row.ts_ms, row.value, row.value_text, row.value_json, row.quality])
    key = hashlib.blake2b(identity, digest_size=8).hexdigest()
    return {"topic": row.topic, "path": row.path, "class": row.class_word, "name": row.metric,
            "timestamp_ms": row.ts_ms, "timestamp": _iso(row.ts_ms), "key": key, "sink": sink,
            "body": envelope_of(row)}  # fmt: skip


@dataclasses.dataclass(frozen=True, slots=True)
class _Request:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes


@dataclasses.dataclass(slots=True)
class ReplayReport:
    """What a replay of dead letters did."""

    delivered: int = 0
    refused: int = 0
    not_replayable: int = 0
    unavailable: str | None = None
    """Why the replay stopped early (the target is down): the rest stays stored."""


class RestWriter:
    """Sends UNS rows to an HTTP target (see the module docstring).

    Args:
        config: the sink's config (routes, auth, headers, timeouts, dead-letter file).
    """

    def __init__(self, *, config: RestSinkConfig) -> None:
        self._config = config
        self._client: httpx.AsyncClient | None = None
        self._outcomes: collections.OrderedDict[str, str] = collections.OrderedDict()
        self.dead_letters = DeadLetters(config.dead_letters_file)
        hosts = sorted({httpx.URL(route.url.split("$", 1)[0]).host for route in config.routes})
        self._target = f"{','.join(hosts)} ({len(config.routes)} route{'s' * (len(config.routes) != 1)})"

    @property
    def target(self) -> str:
        """The target hosts (no credentials)."""
        return self._target

    def _unavailable(self, reason: str, retry_after_s: float | None = None) -> SinkUnavailable:
        return SinkUnavailable(sink=self._config.name, target=self.target, reason=reason, retry_after_s=retry_after_s)

    async def connect(self) -> None:
        """Open the HTTP client (connections are made per request; a down target shows on the first write)."""
        if self._client is None:
            config = self._config
            auth = None
            headers = dict(config.headers)
            if config.auth is not None and config.auth.kind == "basic":
                auth = httpx.BasicAuth(config.auth.username, config.auth.password.get_secret_value())
            elif config.auth is not None:
                headers["Authorization"] = f"Bearer {config.auth.token.get_secret_value()}"
            self._client = httpx.AsyncClient(
                auth=auth, headers=headers, timeout=config.timeout_s, verify=config.verify_tls, follow_redirects=False
            )

    async def aclose(self) -> None:
        """Close the HTTP client."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    def _route(self, topic: str) -> RestRoute | None:
        for route in self._config.routes:
            if topic_matches(topic, route.match):
                return route
        return None

    def _request(self, route: RestRoute, context: dict[str, object]) -> _Request:
        headers = {name: fill_text(value, context) for name, value in route.headers.items()}
        headers[self._config.idempotency_header] = fill_text(route.idempotency_key, context)
        headers["Content-Type"] = "application/json"
        return _Request(route.method, fill_url(route.url, context), headers, render_body(route.body, context))

    def _remember(self, key: str, outcome: str) -> None:
        self._outcomes[key] = outcome
        if len(self._outcomes) > _MEMO_LIMIT:
            self._outcomes.popitem(last=False)

    async def _send(self, request: _Request) -> tuple[bool, str | None]:
        """Send one request: (delivered, duplicate) as (True, None|"dup"), or (False, refusal); raises unavailable."""
        client = self._client
        if client is None:
            await self.connect()
            client = self._client
            assert client is not None  # noqa: S101  (connect sets it)
        try:
            response = await client.request(request.method, request.url, headers=request.headers, content=request.body)
        except httpx.HTTPError as exc:  # refused connection, timeout, reset: the target is down
            raise self._unavailable(f"{request.method} {request.url}: {type(exc).__name__}: {exc}") from exc
        status = response.status_code
        if 200 <= status < 300:
            return True, None
        if status in self._config.duplicate_status:
            return True, "dup"
        excerpt = response.text[:_EXCERPT]
        reason = f"HTTP {status} from {request.method} {request.url}: {excerpt}"
        if status in _RETRY_STATUS or status >= 500:
            raise self._unavailable(
                reason,
                retry_after_s(response.headers.get("Retry-After"), cap_s=self._config.max_retry_after_s),
            )
        return False, reason

    def _rows(self, batch: Batch) -> Iterator[EventRow | SampleRow]:
        yield from batch.events
        yield from batch.samples

    async def write(self, batch: Batch, *, sink: str) -> WriteReport:
        """Send every row of the batch, then store its dead letters (see ``SinkWriter.write``)."""
        started = time.perf_counter()
        counted: dict[str, bool] = {}  # key -> new delivery (True) or a duplicate (False), of this write
        tally = collections.Counter[tuple[bool, bool]]()  # (is_event, new) -> rows
        for row in self._rows(batch):
            context = message_context(row, sink)
            key = str(context["key"])
            if key in counted:  # the same message twice in one batch
                tally[isinstance(row, EventRow), False] += 1
                continue
            outcome = self._outcomes.get(key)
            if outcome is None:
                route = self._route(row.topic)
                if route is None:
                    continue  # no route wants it: acknowledged with the batch
                try:
                    request = self._request(route, context)
                except TemplateError as problem:
                    self._remember(key, f"template\0{problem}")
                    raise RowsRefused(sink=sink, target=self.target, reason=str(problem), field="template") from None
                delivered, detail = await self._send(request)
                outcome = (_SENT if detail is None else _REPORTED) if delivered else f"http\0{detail}"
                self._remember(key, outcome)
            if outcome not in (_SENT, _REPORTED):
                field, reason = outcome.split("\0", 1)
                raise RowsRefused(sink=sink, target=self.target, reason=reason, field=field)
            counted[key] = outcome == _SENT  # sent by an attempt that did not finish: new now
            tally[isinstance(row, EventRow), counted[key]] += 1
        if batch.rejected:
            await asyncio.to_thread(self.dead_letters.add, sink, batch.rejected)
        for key in counted:
            self._outcomes[key] = _REPORTED  # a later re-delivery of it is a duplicate
        return WriteReport(
            inserted=tally[False, True],
            duplicates=tally[False, False],
            events=tally[True, True],
            duplicate_events=tally[True, False],
            dead_letters=len(batch.rejected),
            seconds=time.perf_counter() - started,
        )

    async def replay(self, *, since_ms: int = 0, ids: list[int] | None = None) -> ReplayReport:
        """Send the stored dead letters again with the current routes; delete each one the target takes."""
        report = ReplayReport()
        parser = RowParser(max_future_ms=int(self._config.max_future_s * 1000))
        sink = self._config.name
        letters = await asyncio.to_thread(self.dead_letters.list, since_ms=since_ms, ids=ids or ())
        for letter in letters:
            row = parser.parse(letter.topic, letter.payload, now_ms=now_ms())
            if row is None or isinstance(row, Rejected):
                report.not_replayable += 1  # the message itself is bad: nothing to send
                continue
            route = self._route(row.topic)
            try:
                if route is None:
                    raise TemplateError("routes", "no route matches the topic any more")
                delivered, detail = await self._send(self._request(route, message_context(row, sink)))
            except TemplateError as problem:
                delivered, detail, field = False, str(problem), "template"
            except SinkUnavailable as problem:
                report.unavailable = problem.reason
                return report
            else:
                field = "http"
            if delivered:
                report.delivered += 1
                await asyncio.to_thread(self.dead_letters.delivered, letter.id)
            else:
                report.refused += 1
                await asyncio.to_thread(self.dead_letters.refused_again, letter.id, field, detail or "")
        return report
