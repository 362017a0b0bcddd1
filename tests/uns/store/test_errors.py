"""The store's own error: what the floor raises, the historian's branch of it, and every catcher still answering."""

from __future__ import annotations

import logging
from pathlib import Path

import duckdb
import httpx
import pytest
from starlette.applications import Starlette

from tests.uns.mes.intake_hub import intake_hub
from uns.connect import network_clients
from uns.errors import HistorianError, SchemaTooNew, StoreError, UnsError
from uns.historian.event_log import MesEventLog
from uns.historian.queries import History
from uns.mqtt.types import BrokerUrl
from uns.rules.history import AlarmHistory
from uns.settings import load_plant
from uns.store.database import Database
from uns.web.alarms_api import alarm_routes
from uns.web.automation_api import AutomationEditor
from uns.web.cache import TopicCache
from uns.web.history_api import history_routes


def test_the_store_raises_store_error_naming_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "none.duckdb"
    with pytest.raises(StoreError) as caught:
        Database(path=missing, read_only=True).open()
    assert type(caught.value) is StoreError
    assert (
        str(caught.value) == f"store {missing}: no such file: start the historian (`uns up` or `uns historian`) first"
    )
    assert (caught.value.database, caught.value.reason.startswith("no such file")) == (str(missing), True)


def test_the_historian_s_error_and_a_too_new_file_are_store_errors(tmp_path: Path) -> None:
    assert issubclass(HistorianError, StoreError)
    assert issubclass(SchemaTooNew, StoreError)
    assert issubclass(StoreError, UnsError)
    assert not issubclass(StoreError, HistorianError)
    with Database(path=tmp_path / "h.duckdb") as db:
        db.connection.execute("DROP TABLE latest")  # a query DuckDB refuses, as on a damaged file
        with pytest.raises(HistorianError, match=r"historian database .*h\.duckdb: query failed: .*latest"):
            History(db).last("#")


async def test_the_web_answers_a_store_failure_with_503(tmp_path: Path) -> None:
    closed = Database(path=tmp_path / "h.duckdb")  # never opened: every read raises StoreError
    app = Starlette(routes=[*history_routes(History(closed)), *alarm_routes(None, AlarmHistory(closed), None)])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hub") as http:
        for url in ("/api/history/series", "/api/alarms/history"):
            answer = await http.get(url)
            assert (answer.status_code, answer.json()["error"]) == (
                503,
                f"store {closed.path}: not open: use `with Database(...)` first",
            ), url


def test_reading_closes_its_cursor_and_raises_the_store_s_error(tmp_path: Path) -> None:
    with Database(path=tmp_path / "h.duckdb") as db:
        with db.reading("counting") as cursor:
            assert cursor.execute("SELECT 41 + 1").fetchall() == [(42,)]
        with pytest.raises(duckdb.Error):
            cursor.execute("SELECT 1")  # closed with the block
        with pytest.raises(StoreError) as caught, db.reading("reading the nothing table") as failing:
            failing.execute("SELECT * FROM nothing")
        assert type(caught.value) is StoreError
        assert isinstance(caught.value.__cause__, duckdb.CatalogException)
        assert str(caught.value).startswith(f"store {db.name}: reading the nothing table failed: Catalog Error")
        with pytest.raises(duckdb.Error):
            failing.execute("SELECT 1")  # closed after a failure too
        historian_error = pytest.raises(
            HistorianError, match=r"historian database .*h\.duckdb: query failed: .*nothing"
        )
        with historian_error, db.reading("query", error=HistorianError) as failing:
            failing.execute("SELECT * FROM nothing")
        with pytest.raises(ValueError, match="ours"), db.reading("anything"):
            raise ValueError("ours")  # not the file's failure: passed on as it is


async def test_an_automation_replay_answers_a_store_failure_with_503(tmp_path: Path) -> None:
    """The replay reads samples (``History``) and MES events (``MesEventLog``): either failing answers 503."""
    broken = Database(path=tmp_path / "broken.duckdb")
    closed = Database(path=tmp_path / "closed.duckdb")  # never opened: every read raises StoreError
    rule = (
        "name: hot\ntrigger: {kind: value, topic: acme/dallas/bottling/line1/filler/data/Temp, above: 80}\n"
        "actions: [{kind: alarm, path: acme/dallas/bottling/line1/filler, name: hot}]\n"
    )
    with broken:
        broken.connection.execute("DROP TABLE mes_events")  # the samples read well, the MES events fail
        for database, error in (
            (broken, f"store {broken.name}: reading the MES event log failed: Catalog Error"),
            (closed, f"store {closed.name}: not open: use `with Database(...)` first"),
        ):
            editor = AutomationEditor(
                plant=load_plant(None),
                cache=TopicCache(clients=network_clients(BrokerUrl.from_str("mqtt://127.0.0.1:1"))),
                tags=lambda: None,
                rules=None,
                history=History(database),
                events=MesEventLog(database),
                settings_file=None,
            )
            app = Starlette(routes=editor.routes())
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hub") as http:
                answer = await http.post("/api/automation/replay", json={"kind": "rules", "yaml": rule, "hours": 1})
            assert answer.status_code == 503, answer.text
            assert answer.json()["error"].startswith(error)


async def test_an_mes_view_answers_a_failing_read_with_503(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A DuckDB error in a view is the file's failure (``Database.reading``): 503 naming the view, not a 500;
    every polling dashboard gets it, the log one warning per view and interval."""
    async with intake_hub(tmp_path) as hub:
        assert (await hub.http.get("/api/mes/orders")).status_code == 200
        database = hub.historian.database
        await hub.historian.writer.submit(lambda: database.connection.execute("DROP TABLE mes_work_orders"))
        with caplog.at_level(logging.WARNING, logger="uns.web.history_api"):
            answers = [await hub.http.get("/api/mes/orders") for _ in range(3)]
        for answer in answers:
            assert answer.status_code == 503, answer.text
            assert answer.json()["error"].startswith(f"store {database.name}: the MES view orders failed: Catalog")
        warned = [r.getMessage() for r in caplog.records if r.name == "uns.web.history_api"]
        assert len(warned) == 1, warned
        assert warned[0].startswith("MES view orders failed: store "), warned
