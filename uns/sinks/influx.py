"""The InfluxDB sink's writer: a batch as line protocol, POSTed (gzip) to 1.x ``/write`` or 2.x/3.x ``/api/v2/write``.

Exactly once comes from InfluxDB itself: a point with the series (measurement and tag set) and
timestamp of a stored one overwrites it, so a re-delivered sample is stored once, and a batch
written again after a partial write or an outage changes nothing that was already there.

Answers, and what the framework does with them (``uns.sinks.writer``):

- 204: committed.
- 400 (a partial write: InfluxDB 1.x's ``partial write: ... dropped=N``, 3.x's line numbers), 413
  (too large), 422 (2.x: beyond the retention period): ``RowsRefused``. With 3.x's line numbers
  it names the refused rows, which the framework dead-letters at once, writing the rest again;
  otherwise the framework writes the batch in halves down to the refused points.
- 401/403 (credentials), 404 (no such database or bucket), 429/503 (with ``Retry-After``), other 5xx,
  and no answer at all: ``SinkUnavailable``; the same batch is retried with backoff, at least
  ``Retry-After`` later.

Dead letters go to the measurement ``dead_letter_measurement`` in a second request, at nanosecond
precision so two letters of one millisecond do not overwrite each other.
"""

from __future__ import annotations

import gzip
import logging
import time
from collections.abc import Sequence

import httpx

from model.sinks import InfluxSinkConfig
from uns.clock import now_ns
from uns.errors import RowsRefused, SinkUnavailable
from uns.historian.store import Batch
from uns.retry_after import retry_after_s
from uns.sinks.influx_lines import (
    LineMapping,
    LineRefused,
    dead_letter_lines,
    event_line,
    refusal_reason,
    refused_lines,
    sample_line,
)
from uns.sinks.writer import WriteReport

__all__ = ["InfluxWriter"]

log = logging.getLogger(__name__)

_REFUSED = frozenset({400, 413, 422})
_AUTH = frozenset({401, 403})
_GZIP_LEVEL = 1  # line protocol shrinks ~17x even at the fastest level; the CPU goes to the hub


class InfluxWriter:
    """Writes batches of UNS rows to InfluxDB over HTTP (httpx).

    Args:
        config: the sink's config (url, api, database/bucket, credentials, mapping).
    """

    def __init__(self, *, config: InfluxSinkConfig) -> None:
        self._config = config
        self._mapping = LineMapping(
            measurement=config.measurement,
            measurement_name=config.measurement_name,
            level_tags=tuple(config.level_tags),
            events_measurement=config.events_measurement,
        )
        headers: dict[str, str] = {}
        if config.token is not None:
            headers["Authorization"] = f"Token {config.token.get_secret_value()}"
        self._encoding = {"Content-Type": "text/plain; charset=utf-8"}
        if config.gzip:
            self._encoding["Content-Encoding"] = "gzip"
        self._database_ready = not (config.api == "v1" and config.create_database)
        auth = None
        if config.username is not None and config.password is not None:
            auth = httpx.BasicAuth(config.username, config.password.get_secret_value())
        self._client = httpx.AsyncClient(
            base_url=config.url, headers=headers, auth=auth, timeout=config.timeout_s, verify=config.verify_tls
        )
        if config.api == "v1":
            self._path = "/write"
            self._params = {"db": config.database or ""}
            if config.retention_policy:
                self._params["rp"] = config.retention_policy
        else:
            self._path = "/api/v2/write"
            self._params = {"org": config.org or "", "bucket": config.bucket or ""}

    @property
    def target(self) -> str:
        """Server, API and database or bucket (never a credential)."""
        config = self._config
        where = f"db {config.database}" if config.api == "v1" else f"org {config.org} bucket {config.bucket}"
        return f"{config.url} {config.api} {where}"

    def _unavailable(self, reason: str, retry_after_s: float | None = None) -> SinkUnavailable:
        return SinkUnavailable(sink=self._config.name, target=self.target, reason=reason, retry_after_s=retry_after_s)

    async def connect(self) -> None:
        """Check the server answers ``/ping`` (and create the v1 database when asked)."""
        try:
            response = await self._client.get("/ping")
            if response.status_code >= 300:
                raise self._unavailable(f"ping: HTTP {response.status_code}")
            if self._config.api == "v1" and self._config.create_database:
                name = (self._config.database or "").replace("\\", "\\\\").replace('"', '\\"')
                created = await self._client.post("/query", params={"q": f'CREATE DATABASE "{name}"'})
                if created.status_code >= 300 or b'"error"' in created.content:
                    reason = refusal_reason(created.status_code, created.content)
                    raise self._unavailable(f"create the database: {reason}")
        except httpx.HTTPError as exc:
            raise self._unavailable(f"cannot reach the server: {exc!r}") from exc
        self._database_ready = True

    def _check(self, response: httpx.Response, *, what: str, origin: Sequence[int] = ()) -> None:
        status = response.status_code
        if status < 300:
            return
        reason = f"{what}: {refusal_reason(status, response.content)}"
        if status in _REFUSED:
            # InfluxDB 3 names the refused lines: ``origin`` maps each line to its row of the batch
            named = [origin[n - 1] for n in refused_lines(response.content) if n <= len(origin)]
            raise RowsRefused(sink=self._config.name, target=self.target, reason=reason, rows=tuple(named))
        if status == 404 and self._config.create_database:
            self._database_ready = False
        if status in _AUTH:
            raise self._unavailable(f"{reason} (check username/password or token)")
        raise self._unavailable(
            reason,
            retry_after_s(response.headers.get("Retry-After"), cap_s=self._config.retry_max_s),
        )

    async def _post(self, body: bytes, *, precision: str, what: str, origin: Sequence[int]) -> None:
        if self._config.gzip:
            body = gzip.compress(body, compresslevel=_GZIP_LEVEL)
        try:
            response = await self._client.post(
                self._path, params={**self._params, "precision": precision}, content=body, headers=self._encoding
            )
        except httpx.HTTPError as exc:
            raise self._unavailable(f"{what}: {exc!r}") from exc
        self._check(response, what=what, origin=origin)

    def _lines(self, batch: Batch) -> tuple[bytes, list[int]]:
        """The batch's points as line protocol, and the batch row of each line."""
        mapping = self._mapping
        lines = [sample_line(row, mapping) for row in batch.samples]
        origin = list(range(len(lines)))
        for index, event in enumerate(batch.events, start=len(batch.samples)):
            line = event_line(event, mapping)
            if line is not None:
                lines.append(line)
                origin.append(index)
        return ("\n".join(lines) + "\n").encode() if lines else b"", origin

    async def write(self, batch: Batch, *, sink: str) -> WriteReport:
        """Write one batch (see ``SinkWriter.write``): its points, then its dead letters."""
        started = time.perf_counter()
        try:
            body, origin = self._lines(batch)
        except LineRefused as problem:
            raise RowsRefused(sink=sink, target=self.target, reason=problem.reason) from problem
        if not self._database_ready:  # a write before the first connect, or after a 404
            await self.connect()
        if body:
            await self._post(body, precision="ms", what="write", origin=origin)
        if batch.rejected:
            letters = dead_letter_lines(
                batch.rejected, sink=sink, measurement=self._config.dead_letter_measurement, now_ns=now_ns()
            )
            first = len(batch.samples) + len(batch.events)
            await self._post(
                letters, precision="ns", what="write dead letters", origin=range(first, first + len(batch.rejected))
            )
        return WriteReport(
            inserted=len(batch.samples),
            duplicates=0,  # InfluxDB overwrites a re-delivered point: it cannot tell us which were
            events=len(origin) - len(batch.samples),
            dead_letters=len(batch.rejected),
            seconds=time.perf_counter() - started,
        )

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()
