"""The running adapter serves its views through its memo, and an event it stores changes the next answer."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson

from model.config import HistorianSection
from tests.fixtures.broker import start_broker
from tests.fixtures.waiting import until
from tests.uns.mes.mes_events import Feeder
from tests.uns.mes.test_adapter import CELL, mes_hub
from uns.mes import memo
from uns.store.database import Database, database_path


async def test_views_over_http_read_the_adapters_memo_and_a_relabel_shows_at_once(tmp_path: Path) -> None:
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    t0 = int(hour.timestamp() * 1000)
    with Database(path=database_path(HistorianSection(), tmp_path)) as db:  # stored before the hub starts
        Feeder(db).states(CELL, [(hour, 10000)])
    async with (
        start_broker(tmp_path) as broker,
        mes_hub(broker, tmp_path) as hub,
        httpx.AsyncClient(base_url=hub.http) as http,
    ):

        async def post(event: str, body: dict[str, object]) -> None:
            answer = await http.post(f"/api/mes/events/{CELL}/mes/{event}", content=orjson.dumps(body))
            assert answer.status_code == 201, answer.text

        async def oee() -> dict[str, object]:
            params = {"path": CELL, "start": hour.isoformat(), "end": (hour + timedelta(hours=2)).isoformat()}
            answer = await http.get("/api/mes/oee", params=params)
            assert answer.status_code == 200, answer.text
            rows: list[dict[str, object]] = answer.json()["rows"]
            return rows[0]

        built = f"SELECT count(*) FROM mes_fact_hours WHERE path = '{CELL}' AND hour * 3600000 >= {t0}"  # noqa: S608
        await until(lambda: hub.rows(built)[0][0] >= 2, what="the two hours' facts", within_s=30)  # type: ignore[operator]
        with contextlib.closing(hub.historian.database.reader()) as reader:
            assert memo.of(reader) is hub.mes.memo
        first = await oee()
        assert (first["time_s"], first["planned_downtime_s"]) == (7200.0, 0.0)
        loads = hub.mes.memo.loads
        assert loads > 0
        assert (await oee()) == first
        assert hub.mes.memo.loads == loads  # the second answer came from memory
        relabel = {"timestamp_ms": t0 + 7_200_000, "start_ms": t0 + 1_800_000, "end_ms": t0 + 3_600_000,
                   "reason_code": "CLEAN", "state": 150000}  # fmt: skip
        await post("downtime_reason", relabel)
        after = await oee()  # the HTTP answer came after the commit, and the memo's hour was dropped with it
        assert (after["planned_downtime_s"], after["availability"]) == (1800.0, 1.0)
