"""The MES settings the hub runs (``hub.app.mes_section``): configured output cells checked against the plant file,
and the demo's MES rules where the demo plant runs (``hub.app.demo_mes_rules_apply``), in ``uns up`` and ``uns mes``
alike."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from pydantic import ValidationError

from bridges.sim.mes_rules import demo_ideal_cycle_times
from hub.app import demo_mes_rules_apply, mes_section
from hub.cli import EXIT_CONFIG, main
from model.config import MesSection, Settings
from tests.fixtures.up import hub_up
from tests.fixtures.waiting import eventually
from tests.uns.mes.mes_events import Feeder, at, open_db
from uns.clock import now_ms
from uns.connect import network_clients
from uns.errors import ConfigError
from uns.mqtt.types import BrokerUrl
from uns.settings import load_plant, load_settings, plant_of
from uns.web.plant_api import plant_document

LINE1, LINE2 = "acme/dallas/bottling/line1", "acme/dallas/bottling/line2"
ELSEWHERE = "acme/dallas/bottling/line9"  # a line the demo plant does not declare


def _settings(output_cells: dict[str, str]) -> Settings:
    return Settings(demo=False, mes=MesSection(output_cells=output_cells))


def _clean_environment(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    """No ``UNS_*`` of the shell running the tests; the hub's data in ``data_dir``."""
    for key in [key for key in os.environ if key.startswith("UNS_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("UNS_DATA_DIR", str(data_dir))


def test_the_settings_outputs_and_the_plant_files_last_cells_are_carried_apart() -> None:
    """``output_cells`` stays the settings' (they win over the line's own counts); the plant file's last cells are
    ``plant_outputs``, the default after the line's own counts (``uns.mes.line_output``)."""
    plant = load_plant(None)
    settings = _settings({LINE1: f"{LINE1}/filler", ELSEWHERE: f"{ELSEWHERE}/filler"})
    section = mes_section(settings, plant)
    # a line outside the plant file keeps its configured cell
    assert section.output_cells == {LINE1: f"{LINE1}/filler", ELSEWHERE: f"{ELSEWHERE}/filler"}
    assert section.plant_outputs == plant.line_outputs()
    assert (section.plant_outputs[LINE1], section.plant_outputs[LINE2]) == (f"{LINE1}/labeler", f"{LINE2}/capper2")


def test_the_plant_outputs_are_the_hub_s_not_a_setting() -> None:
    with pytest.raises(ValidationError) as refused:
        MesSection(plant_outputs={LINE1: f"{LINE1}/filler"})
    (error,) = refused.value.errors()
    assert error["loc"] == ("plant_outputs",)
    assert "set by the hub from the plant file" in error["msg"]
    assert "plant_outputs" not in MesSection.model_json_schema()["properties"]


def test_a_cell_the_plant_file_does_not_declare_on_its_line_is_refused_naming_the_key() -> None:
    plant = load_plant(None)
    with pytest.raises(ConfigError) as refused:
        mes_section(_settings({LINE1: f"{LINE1}/filler", LINE2: f"{LINE2}/filler9"}), plant)
    assert (refused.value.source, refused.value.path, refused.value.value) == (
        "settings",
        f"mes.output_cells.{LINE2}",
        f"{LINE2}/filler9",
    )
    assert (
        refused.value.reason
        == f"not a cell of {LINE2} in the plant file (its cells: {LINE2}/rinser, {LINE2}/filler2, {LINE2}/capper2)"
    )


def test_every_such_cell_is_named() -> None:
    plant = load_plant(None)
    with pytest.raises(ConfigError) as refused:
        mes_section(_settings({LINE1: f"{LINE1}/x", LINE2: f"{LINE2}/y"}), plant)
    assert str(refused.value).splitlines()[1:] == [
        f"settings: mes.output_cells.{LINE1}: not a cell of {LINE1} in the plant file (its cells: "
        f"{LINE1}/filler, {LINE1}/capper, {LINE1}/labeler) (got '{LINE1}/x')",
        f"settings: mes.output_cells.{LINE2}: not a cell of {LINE2} in the plant file (its cells: "
        f"{LINE2}/rinser, {LINE2}/filler2, {LINE2}/capper2) (got '{LINE2}/y')",
    ]


def test_uns_mes_stops_on_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _clean_environment(monkeypatch, tmp_path)
    monkeypatch.setenv("UNS_MES__OUTPUT_CELLS", f'{{"{LINE2}": "{LINE2}/filler9"}}')
    assert main(["mes", "oee", "--path", LINE2]) == EXIT_CONFIG
    assert f"mes.output_cells.{LINE2}: not a cell of {LINE2} in the plant file" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["historian", "mes"])
def test_uns_historian_and_uns_mes_stop_on_it_before_opening_the_database_or_the_broker(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """As ``uns up`` and ``uns web`` do: the setting is checked before anything starts (no database made or
    migrated, no broker asked: one on a port that refuses would otherwise be the error shown)."""
    _clean_environment(monkeypatch, tmp_path)
    monkeypatch.setenv("UNS_MES__OUTPUT_CELLS", f'{{"{LINE2}": "{LINE2}/filler9"}}')
    assert main([command, "--broker", "mqtt://127.0.0.1:1", "--http-port", "0"]) == EXIT_CONFIG
    assert f"mes.output_cells.{LINE2}: not a cell of {LINE2} in the plant file" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def _lines(document: Any) -> dict[str, Any]:
    return {line["path"]: line for area in document["children"][0]["children"] for line in area["children"]}


def test_the_plant_page_names_the_output_the_mes_counts_and_what_chose_it() -> None:
    plant = load_plant(None)
    settings = _settings({LINE1: f"{LINE1}/filler"})
    lines = _lines(plant_document(plant, settings.mes.output_cells))  # nested JSON
    assert lines[LINE1]["output_cell"] == mes_section(settings, plant).output_cells[LINE1] == f"{LINE1}/filler"
    assert lines[LINE2]["output_cell"] == f"{LINE2}/capper2"  # not configured: the plant file's last cell
    # what chose it: the settings (stays when cells are added), or the plant file's order (moves with it)
    assert (lines[LINE1]["output_source"], lines[LINE2]["output_source"]) == ("settings", "plant")
    # line2 counting at its own path (a line-level counter): its own counts; line1's setting still wins
    lines = _lines(plant_document(plant, settings.mes.output_cells, {LINE1, LINE2, f"{LINE2}/filler2"}))
    assert (lines[LINE2]["output_cell"], lines[LINE2]["output_source"]) == (LINE2, "line")
    assert (lines[LINE1]["output_cell"], lines[LINE1]["output_source"]) == (f"{LINE1}/filler", "settings")


def test_the_demo_hub_counts_at_the_cells_its_plant_page_names() -> None:
    plant = load_plant(None)
    settings = Settings(demo=True, mes=MesSection(output_cells={LINE1: f"{LINE1}/filler"}))
    section = mes_section(settings, plant)
    assert (section.output_cells, section.plant_outputs) == ({LINE1: f"{LINE1}/filler"}, plant.line_outputs())
    lines = _lines(plant_document(plant, settings.mes.output_cells))
    assert (lines[LINE1]["output_cell"], lines[LINE2]["output_cell"]) == (f"{LINE1}/filler", f"{LINE2}/capper2")


def test_a_line_of_the_plant_file_may_be_its_own_output() -> None:
    """A line-level counter: ``mes.output_cells.<line>: <line>`` counts the line at its own path (not refused as
    a cell the plant file does not declare); the plant page names the line."""
    plant = load_plant(None)
    settings = _settings({LINE1: LINE1})
    assert mes_section(settings, plant).output_cells[LINE1] == LINE1
    lines = _lines(plant_document(plant, settings.mes.output_cells))
    assert (lines[LINE1]["output_cell"], lines[LINE1]["output_source"]) == (LINE1, "settings")


async def test_uns_up_s_plant_page_names_a_line_s_own_counts_once_its_mes_stored_one(tmp_path: Path) -> None:
    """Under ``uns up`` the plant page asks the MES which paths counted: line2 (no setting) shows the plant file's
    last cell, then the line itself once a count on its own path is stored; line1's setting stays."""
    settings = {"mes.output_cells": {LINE1: f"{LINE1}/filler"}, "mes.kpi_interval_s": 60}
    async with (
        hub_up(tmp_path, settings, name="test.hub-plant-page") as up,
        httpx.AsyncClient(base_url=up.endpoints["http"], timeout=5) as client,
    ):

        async def outputs() -> dict[str, tuple[str, str]]:
            lines = _lines((await client.get("/api/plant")).json())
            return {line: (lines[line]["output_cell"], lines[line]["output_source"]) for line in (LINE1, LINE2)}

        assert await outputs() == {LINE1: (f"{LINE1}/filler", "settings"), LINE2: (f"{LINE2}/capper2", "plant")}
        count = orjson.dumps({"timestamp_ms": now_ms(), "total": 5, "event_id": "c1"})
        async with network_clients(BrokerUrl.from_str(up.endpoints["mqtt"]))(client_id="plant-page-test") as pub:
            await pub.publish(f"{LINE2}/mes/production_count", count, qos=1)
        found = await eventually(outputs, lambda got: got[LINE2][1] == "line", what="line2's own counts")
        assert found == {LINE1: (f"{LINE1}/filler", "settings"), LINE2: (LINE2, "line")}


FILLER = f"{LINE1}/filler"
PLANT_NAMED_LIKE_THE_DEMO = """\
enterprise:
  id: acme
  sites:
    - id: dallas
      areas:
        - id: bottling
          lines:
            - id: line1
              cells:
                - id: filler
"""
"""A user's plant file whose line and cell carry the demo plant's names: the demo's rules are not its."""
DEMO_FILLER_S = demo_ideal_cycle_times(load_plant(None))[FILLER]
"""The demo's ideal cycle time of line1's filler (its nameplate rate), which applies to the demo plant only."""
WINDOW = ["--start", at(24, 6).isoformat(), "--end", at(24, 7).isoformat()]


def _an_hour_of_the_filler(data_dir: Path) -> None:
    """06:00-07:00 on 24 Nov: the filler runs the hour and counts 3000 units (stored by the real MES store)."""
    database = open_db(data_dir / "historian.duckdb")
    try:
        feeder = Feeder(database)
        feeder.states(FILLER, [(at(24, 6), 10000)])
        assert feeder.send(FILLER, "production_count", at(24, 6, 30), total=3000).status == "stored"
    finally:
        database.close()


@pytest.mark.parametrize(("setting", "ideal_s"), [(None, None), ({LINE1: 0.5}, 0.5)])
def test_uns_mes_on_a_plant_file_of_the_user_s_answers_with_the_settings_rules_not_the_demo_s(
    setting: dict[str, float] | None,
    ideal_s: float | None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A plant file (``demo`` unset, so off): ``uns up --plant`` runs its MES with the settings' rules
    alone, and ``uns mes oee`` answers as that hub's ``/api/mes`` does. Before, the CLI took the demo's ideal cycle
    time of a cell named like the demo's filler (it wins over the settings' line-level one: the longer prefix)."""
    plant_file = tmp_path / "plant.yaml"
    plant_file.write_text(PLANT_NAMED_LIKE_THE_DEMO, encoding="utf-8")
    _an_hour_of_the_filler(tmp_path)
    _clean_environment(monkeypatch, tmp_path)
    monkeypatch.setenv("UNS_PLANT", str(plant_file))
    if setting is not None:
        monkeypatch.setenv("UNS_MES__IDEAL_CYCLE_TIME_S", orjson.dumps(setting).decode())
    assert main(["mes", "oee", "--path", FILLER, *WINDOW, "--format", "json"]) == 0, capsys.readouterr().err
    (row,) = orjson.loads(capsys.readouterr().out)["rows"]
    assert (row["path"], row["total"], row["actual_production_time_s"]) == (FILLER, 3000, 3600.0)
    assert row["ideal_cycle_time_s"] == ideal_s  # not the demo's DEMO_FILLER_S
    assert row["performance"] == (None if ideal_s is None else pytest.approx(3000 * ideal_s / 3600))
    # the section the hub of these settings runs (uns up --plant: no demo): the settings' rules alone
    settings = load_settings(config_file=None, overrides={}, environ=dict(os.environ))
    assert not settings.demo
    assert not demo_mes_rules_apply(settings)
    section = mes_section(settings, plant_of(settings, demo=settings.demo))
    assert (section.ideal_cycle_time_s, section.derive, section.reasons) == (setting or {}, [], {})


@pytest.mark.parametrize(
    ("overrides", "applies"),
    [
        ({}, True),  # uns up: the demo plant, simulated
        ({"enterprise": "acme"}, True),  # the demo plant's own enterprise named
        ({"demo": False}, False),  # --no-demo
        ({"plant": "plant.yaml"}, False),  # a plant file: the user's, whatever its names (the demo off)
        ({"plant": "plant.yaml", "demo": True}, True),  # the simulator asked for beside it: its rules with it
        ({"enterprise": "globex"}, False),  # no demo for it: an empty plant of globex (uns up refuses it)
    ],
)
def test_the_demo_s_mes_rules_apply_where_the_demo_plant_runs(overrides: dict[str, object], applies: bool) -> None:
    settings = load_settings(config_file=None, overrides=overrides, environ={})
    assert demo_mes_rules_apply(settings) is applies
    plant = plant_of(settings, demo=applies) if "plant" not in overrides else load_plant(None)
    section = mes_section(settings, plant)
    assert (section.ideal_cycle_time_s.get(FILLER), bool(section.derive)) == (
        (DEMO_FILLER_S, True) if applies else (None, False)
    )


async def test_the_demo_hub_and_uns_mes_on_its_file_answer_alike_with_the_demo_s_rules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``uns up`` with the demo (no plant file): its ``/api/mes/oee`` uses the demo's ideal cycle times, and
    ``uns mes oee`` on its file afterwards, with the same settings, prints the same rows."""
    async with (
        hub_up(tmp_path, {"demo": True, "mes.kpi_interval_s": 60}, name="test.hub-demo-mes") as up,
        httpx.AsyncClient(base_url=up.endpoints["http"], timeout=10) as client,
    ):
        states = {"timestamp_ms": int(at(24, 6).timestamp() * 1000), "state": 10000, "event_id": "h3-run"}
        counts = {"timestamp_ms": int(at(24, 6, 30).timestamp() * 1000), "total": 3000, "event_id": "h3-count"}
        for event, body in (("machine_state", states), ("production_count", counts)):
            answer = await client.post(f"/api/mes/events/{FILLER}/mes/{event}", content=orjson.dumps(body))
            assert answer.json()["status"] == "stored", answer.text
        params = {"path": FILLER, "start": WINDOW[1], "end": WINDOW[3]}

        async def api_rows() -> list[dict[str, Any]]:
            rows: list[dict[str, Any]] = (await client.get("/api/mes/oee", params=params)).json()["rows"]
            return rows

        api = await eventually(api_rows, lambda rows: rows and rows[0]["total"] == 3000, what="the hour stored")
    (row,) = api
    assert row["ideal_cycle_time_s"] == pytest.approx(DEMO_FILLER_S)
    assert row["performance"] == pytest.approx(3000 * DEMO_FILLER_S / 3600)
    _clean_environment(monkeypatch, tmp_path)  # the demo's defaults: demo on, no plant file
    assert main(["mes", "oee", "--path", FILLER, *WINDOW, "--format", "json"]) == 0, capsys.readouterr().err
    assert orjson.loads(capsys.readouterr().out)["rows"] == api
    monkeypatch.setenv("UNS_ENTERPRISE", "acme")  # the demo plant's own: uns up runs the demo plant the same
    assert main(["mes", "oee", "--path", FILLER, *WINDOW, "--format", "json"]) == 0, capsys.readouterr().err
    assert orjson.loads(capsys.readouterr().out)["rows"] == api
