"""The InfluxDB sink's v2 API (/api/v2/write) against a small real uvicorn app checking the request's shape.

InfluxDB 2.x and 3.x are not installable here (no Debian package): this app stands in for them. It
checks what they check (org, bucket, precision, ``Authorization: Token``, gzip), stores what it is
sent, answers 429 with ``Retry-After`` when told to, and refuses a point the way InfluxDB 3 does (400
with the line number in the body), storing the other lines of that request.
"""

from __future__ import annotations

import gzip
import re
import time
from pathlib import Path

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from model.sinks import InfluxSinkConfig
from tests.fixtures.asgi import serve
from tests.fixtures.broker import publisher, start_broker
from tests.fixtures.running import running
from tests.fixtures.waiting import until
from tests.uns.sinks.test_influx_sink import CELL, envelope, sink_of
from uns.clock import now_ms
from uns.mqtt.types import Message

TOKEN = "s3cret-token"  # noqa: S105  (the test app's own)


class InfluxV2:
    """Accepts /api/v2/write like InfluxDB 2/3 and records every request."""

    def __init__(self) -> None:
        self.points: dict[tuple[str, str], str] = {}
        """Lines by (series, timestamp): a point written again overwrites, as in InfluxDB."""
        self.dead_letters: list[str] = []
        self.problems: list[str] = []
        self.writes: list[tuple[float, int]] = []
        """(monotonic time, status) of each write request."""
        self.answers: list[tuple[int, dict[str, str]]] = []
        """Canned answers for the next writes (status, headers), before any line is looked at."""

    def app(self) -> Starlette:
        return Starlette(
            routes=[Route("/ping", self._ping, methods=["GET"]), Route("/api/v2/write", self._write, methods=["POST"])]
        )

    async def _ping(self, request: Request) -> Response:
        return Response(status_code=204)

    def _shape(self, request: Request) -> str | None:
        query = request.query_params
        if query.get("org") != "acme" or query.get("bucket") != "plant":
            return f"org/bucket: {dict(query)}"
        if query.get("precision") not in ("ms", "ns"):
            return f"precision: {query.get('precision')}"
        if request.headers.get("authorization") != f"Token {TOKEN}":
            return f"authorization: {request.headers.get('authorization')}"
        if request.headers.get("content-encoding") != "gzip":
            return "not gzip"
        return None

    def _answer(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> Response:
        self.writes.append((time.monotonic(), status))
        return Response(body, status_code=status, headers=headers, media_type="application/json")

    async def _write(self, request: Request) -> Response:
        problem = self._shape(request)
        if problem:
            self.problems.append(problem)
            return self._answer(400, orjson.dumps({"code": "invalid", "message": problem}))
        if self.answers:
            status, headers = self.answers.pop(0)
            return self._answer(status, orjson.dumps({"code": "unavailable", "message": "busy"}), headers)
        lines = gzip.decompress(await request.body()).decode().splitlines()
        refused = [
            {"original_line": line, "line_number": number, "error_message": "invalid column type for column 'value'"}
            for number, line in enumerate(lines, start=1)
            if '"poison"' in line
        ]
        kept = [line for line in lines if '"poison"' not in line]
        if request.query_params["precision"] == "ns":
            self.dead_letters.extend(kept)
        for line in kept if request.query_params["precision"] == "ms" else []:
            series, _, rest = line.partition(" ")
            self.points[(series, rest.rpartition(" ")[2])] = line
        if refused:
            body = {"error": "partial write of line protocol occurred", "data": refused}
            self.writes.append((time.monotonic(), 400))
            return JSONResponse(body, status_code=400)
        return self._answer(204)


def v2_config(url: str, **overrides: object) -> InfluxSinkConfig:
    data: dict[str, object] = {
        "kind": "influxdb",
        "name": "influx",
        "url": url,
        "api": "v2",
        "org": "acme",
        "bucket": "plant",
        "token": TOKEN,
        "flush_interval_s": 0.05,
        "batch_rows": 500,
        "retry_min_s": 0.05,
        "retry_max_s": 5,
        "health_interval_s": 0.1,
        "client_id": "test-influx-v2",
    }
    data.update(overrides)
    return InfluxSinkConfig.model_validate(data)


async def test_v2_writes_carry_org_bucket_token_and_gzip_honour_retry_after_and_dead_letter_a_refused_line(
    tmp_path: Path,
) -> None:
    influx = InfluxV2()
    influx.answers = [(429, {"Retry-After": "1"})]
    start = now_ms() - 10_000
    async with (
        serve(influx.app()) as url,
        start_broker(tmp_path) as broker,
        running(sink_of(v2_config(url), str(broker.url))) as sink,
        publisher(broker.url) as pub,
    ):
        messages = [Message(f"{CELL}/data/Temp", envelope(float(i), start + i, "Double"), qos=1) for i in range(100)]
        messages.insert(50, Message(f"{CELL}/data/Temp", envelope("poison", start + 50_000, "String"), qos=1))
        await pub.publish_many(messages)
        await until(lambda: len(influx.points) == 100 and len(influx.dead_letters) == 1, within_s=20, what=str(
            (len(influx.points), influx.dead_letters, influx.problems, sink.health())))  # fmt: skip
        await until(lambda: sink.stats.rejected == 1, within_s=5)
    assert influx.problems == []
    assert min(influx.points.values(), key=lambda line: int(line.rpartition(" ")[2])) == (
        f"Temp,enterprise=acme,site=dallas,area=bottling,line=line1,cell=filler,class=data,quality=good "
        f"value=0.0 {start}"
    )
    assert sorted(float(line.split(" ")[1].removeprefix("value=")) for line in influx.points.values()) == [
        float(i) for i in range(100)
    ]
    # the 429 was waited out for its Retry-After (1 s), not the 0.05 s backoff
    (refused_at, status), (next_at, _) = influx.writes[0], influx.writes[1]
    assert status == 429
    assert next_at - refused_at >= 0.9
    assert sink.stats.write_failures >= 1
    # the refused line was named: dead-lettered at once and the rest written again, not found by halves
    assert [status for _, status in influx.writes].count(400) == 1
    letter = influx.dead_letters[0]
    assert letter.startswith("uns_dead_letters,sink=influx,field=database ")
    assert re.search(r"line \d+: invalid column type for column 'value'", letter)
    assert sink.stats.rejected_by_field == {"database": 1}
