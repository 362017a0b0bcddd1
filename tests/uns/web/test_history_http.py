from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest
import pytest_asyncio
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tests.uns.historian.history_data import LINE, Filler, open_database
from tests.uns.web.serving import serving
from uns.errors import ConfigError
from uns.historian.queries import History
from uns.store.database import Database
from uns.web import WebServer

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
TEMP = f"{LINE}/filler/data/Temp"
STATE = f"{LINE}/filler/data/State"
SERIAL = f"{LINE}/filler/data/Serial"
BIG = 2**63 + 5  # a UInt64 no DOUBLE holds


# one filled file and one server for the module: every test only reads them (GETs, or servers of its own on the file)
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    database = open_database(tmp_path_factory.mktemp("history") / "historian.duckdb")
    fill = Filler(database.connection)
    temp = fill.series(TEMP, "Float", unit="degC", first_seen=NOW - timedelta(days=1))
    fill.samples(temp, [(NOW - timedelta(minutes=m), 20.0 + m) for m in (50, 40, 10, 5)])
    state = fill.series(STATE, "String", first_seen=NOW - timedelta(days=1))
    fill.samples(state, [(NOW - timedelta(hours=2), "idle"), (NOW - timedelta(minutes=30), "running")])
    serial = fill.series(SERIAL, "UInt64", first_seen=NOW - timedelta(days=1))
    fill.big_int(serial, NOW - timedelta(minutes=1), BIG)
    fill.mes_event(f"{LINE}/mes/work_order", NOW - timedelta(minutes=45), {"id": "WO-7"})
    fill.dead_letter(NOW, TEMP, "payload", "not JSON", b"{oops")
    yield database
    database.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(db: Database) -> AsyncIterator[httpx.AsyncClient]:
    history = History(db, clock=lambda: NOW)
    web = WebServer(bind="127.0.0.1", port=0, health={"historian": lambda: {"rows": 1}}, history=history)
    async with serving(web) as client:
        yield client


async def test_health_routes(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/api/health")).json() == {"historian": {"rows": 1}}
    missing = await client.get("/api/nothing")
    assert missing.status_code == 404
    assert "/api/history/<endpoint>" in missing.json()["paths"]


async def test_series_last_and_raw_as_json(client: httpx.AsyncClient) -> None:
    series = (await client.get("/api/history/series", params={"match": f"{LINE}/filler/data/+"})).json()
    assert [row["topic"] for row in series["rows"]] == [SERIAL, STATE, TEMP]
    assert series["rows"][2]["class"] == "data"
    assert series["rows"][2]["unit"] == "degC"

    last = await client.get("/api/history/last", params=[("match", TEMP), ("match", STATE)])
    assert [(row["topic"], row["value"]) for row in last.json()["rows"]] == [(STATE, "running"), (TEMP, 25.0)]

    raw = (await client.get("/api/history/raw", params={"topic": TEMP, "tz": "Europe/Berlin", "limit": "2"})).json()
    # start defaults to -1h and end to now, by the history's clock
    assert raw["start"] == "2026-11-24T12:00:00+01:00"
    assert raw["end"] == "2026-11-24T13:00:00+01:00"
    assert [(row["ts"], row["value"]) for row in raw["rows"]] == [
        ("2026-11-24T12:10:00+01:00", 70.0),
        ("2026-11-24T12:20:00+01:00", 60.0),
    ]
    assert raw["truncated"] is True


async def test_integers_beyond_2_53_are_exact_in_the_json_text(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/history/raw", params={"topic": SERIAL})
    assert f'"value":{BIG}'.encode() in response.content
    assert orjson.loads(response.content)["rows"][0]["value"] == BIG


async def test_aggregate_states_asof_and_dead_letters(client: httpx.AsyncClient) -> None:
    agg = (
        await client.get(
            "/api/history/aggregate",
            params={"topic": TEMP, "start": "-60m", "bucket": "10m", "agg": "avg,count", "fill": "null"},
        )
    ).json()
    assert [(row["start"][11:16], row["avg"], row["count"], row["filled"]) for row in agg["rows"]] == [
        ("11:00", None, 0, True),
        ("11:10", 70.0, 1, False),
        ("11:20", 60.0, 1, False),
        ("11:30", None, 0, True),
        ("11:40", None, 0, True),
        ("11:50", 27.5, 2, False),
    ]
    assert agg["bucket"] == "10m"

    states = (await client.get("/api/history/states", params={"match": f"{LINE}/+/data/State"})).json()
    assert [(row["value"], row["seconds"], row["entries"]) for row in states["rows"]] == [
        ("idle", 1800.0, 1),
        ("running", 1800.0, 1),
    ]

    asof = (
        await client.get(
            "/api/history/asof", params=[("topic", TEMP), ("context", f"{LINE}/mes/work_order"), ("context", STATE)]
        )
    ).json()
    assert [(row["value"], row[f"{LINE}/mes/work_order"], row[STATE]) for row in asof["rows"]] == [
        (70.0, None, "idle"),
        (60.0, {"id": "WO-7"}, "idle"),
        (30.0, {"id": "WO-7"}, "running"),
        (25.0, {"id": "WO-7"}, "running"),
    ]

    letters = (await client.get("/api/history/dead-letters")).json()
    assert letters["rows"] == [
        {
            "received": "2026-11-24T12:00:00+00:00",
            "topic": TEMP,
            "field": "payload",
            "reason": "not JSON",
            "payload": "{oops",
        }
    ]
    counts = {row["table"]: row["rows"] for row in (await client.get("/api/history/counts")).json()["rows"]}
    assert counts["samples"] == 7


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("aggregate", {"topic": TEMP, "bucket": "1x"}, "bucket"),
        ("aggregate", {"topic": TEMP, "bucket": "1s", "start": "-30d"}, "bucket"),
        ("aggregate", {"topic": TEMP, "agg": "avg,median"}, "agg"),
        ("aggregate", {"topic": TEMP, "fill": "linear"}, "fill"),
        ("raw", {"topic": TEMP, "start": "yesterday"}, "start"),
        ("raw", {"topic": TEMP, "end": "-2h"}, "end"),
        ("raw", {"topic": TEMP, "tz": "Mars/Olympus"}, "tz"),
        ("raw", {"topic": TEMP, "limit": "lots"}, "limit"),
        ("raw", {"topic": TEMP, "strat": "-2h"}, "strat"),
        ("raw", {}, "topic"),
        ("series", {"match": "a/#/b"}, "match"),
        ("last", {}, "match"),
    ],
)
async def test_bad_input_is_400_naming_the_field(
    client: httpx.AsyncClient, path: str, params: dict[str, str], field: str
) -> None:
    response = await client.get(f"/api/history/{path}", params=params)
    assert response.status_code == 400
    body = response.json()
    assert body["field"] == field
    assert body["error"].startswith(f"{field}: ")


async def test_unknown_series_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/history/raw", params={"topic": f"{LINE}/filler/data/Tmep"})
    assert response.status_code == 404
    assert response.json() == {
        "error": f"no series {LINE}/filler/data/Tmep; list them: uns query series, or GET /api/history/series",
        "field": "topic",
    }


async def test_historian_off_is_503_with_a_hint() -> None:
    web = WebServer(bind="127.0.0.1", port=0, health={}, history=None)
    async with serving(web) as client:
        response = await client.get("/api/history/series")
        assert response.status_code == 503
        assert "historian.enabled" in response.json()["error"]
        assert (await client.get("/healthz")).status_code == 200


async def test_middleware_is_the_seam_for_login(db: Database) -> None:
    class _NeedsToken(BaseHTTPMiddleware):
        async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
            if request.headers.get("authorization") != "Bearer t0ken":
                return JSONResponse({"error": "login"}, status_code=401)
            return await call_next(request)

    web = WebServer(bind="127.0.0.1", port=0, health={}, history=History(db), middleware=[Middleware(_NeedsToken)])
    async with serving(web) as client:
        assert (await client.get("/api/history/series")).status_code == 401
        ok = await client.get("/api/history/series", headers={"authorization": "Bearer t0ken"})
        assert ok.status_code == 200


async def test_port_in_use_is_a_config_error_and_cancel_stops_quickly(db: Database) -> None:
    async with WebServer(bind="127.0.0.1", port=0, health={}, history=History(db)) as first:
        port = int(first.url.rsplit(":", 1)[1])
        with pytest.raises(ConfigError, match="in use") as caught:
            async with WebServer(bind="127.0.0.1", port=port, health={}, history=None):
                pass
        assert caught.value.path == "web.http_port"
        task = asyncio.create_task(first.run())
        async with httpx.AsyncClient(base_url=first.url) as client:
            assert (await client.get("/healthz")).status_code == 200  # keeps a connection open
            began = time.monotonic()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert time.monotonic() - began < 1.0
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as client:
            await client.get(f"http://127.0.0.1:{port}/healthz")
