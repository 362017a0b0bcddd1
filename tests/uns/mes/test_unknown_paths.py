"""A mistyped path answers 404 naming the nearest known paths, not 200 with zeros; an event at a path the
plant file does not name is stored as unbound, counted, and warned about once per path."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from model.config import MesSection
from tests.exports import assert_all_is_honest
from tests.fixtures.waiting import until
from tests.uns.mes.intake_hub import intake_hub
from tests.uns.mes.mes_events import Feeder, at, open_db
from uns.clock import now_ms, utc_now
from uns.mes.scope import UnknownPath, nearest_paths
from uns.mes.views_api import run_view

LINE = "acme/dallas/bottling/line1"
EQUIPMENT = {
    "acme",
    "acme/dallas",
    "acme/dallas/bottling",
    LINE,
    f"{LINE}/filler",
    f"{LINE}/capper",
    "acme/dallas/bottling/line2",
}
NEW_CELL = "acme/dallas/bottling/line9/filler"


def _state(code: int, event_id: str = "s") -> bytes:
    return orjson.dumps({"timestamp_ms": now_ms() - 60_000, "state": code, "event_id": event_id})


def _count(index: int) -> bytes:
    return orjson.dumps({"timestamp_ms": now_ms() - 60_000, "total": 5, "event_id": f"c{index}"})


async def test_views_of_an_unknown_path_answer_404_naming_the_nearest(tmp_path: Path) -> None:
    async with intake_hub(tmp_path, equipment=EQUIPMENT) as hub:
        typo = await hub.http.get("/api/mes/oee", params={"path": "acme/dallas/bottling/lin1"})
        assert typo.status_code == 404
        body = typo.json()
        assert (body["field"], body["path"]) == ("path", "acme/dallas/bottling/lin1")
        assert body["nearest"][0] == LINE
        assert "no equipment and no MES events at acme/dallas/bottling/lin1" in body["error"]
        deeper = await hub.http.get("/api/mes/downtime", params={"path": f"{LINE}/filer"})
        assert deeper.status_code == 404
        assert deeper.json()["nearest"][0] == f"{LINE}/filler"
        orders = await hub.http.get("/api/mes/orders", params={"line": "acme/dallas/bottling/line7"})
        assert orders.status_code == 404
        assert orders.json()["field"] == "line"
        # equipment without any event yet is known: zeros are the truth there
        known = await hub.http.get("/api/mes/oee", params={"path": f"{LINE}/capper"})
        assert known.status_code == 200, known.text
        # a path the plant file does not name, once it has events, answers too
        stored = await hub.http.post(f"/api/mes/events/{NEW_CELL}/mes/machine_state", content=_state(10000))
        assert stored.status_code == 201
        unbound = await hub.http.get("/api/mes/timeline", params={"path": "acme/dallas/bottling/line9"})
        assert unbound.status_code == 200, unbound.text
        assert [row["path"] for row in unbound.json()["rows"]] == [NEW_CELL]


async def test_an_event_at_an_unknown_path_is_stored_as_unbound_and_warned_about_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="uns.mes.unbound")
    async with intake_hub(tmp_path, equipment=EQUIPMENT) as hub:
        for index, code in enumerate((10000, 40000, 10000)):
            await hub.erp.publish(f"{NEW_CELL}/mes/machine_state", _state(code, f"s{index}"), qos=1)
        await hub.erp.publish(f"{LINE}/filler/mes/machine_state", _state(10000), qos=1)
        await until(lambda: hub.mes.health()["stored"] == 4, what="four states stored")
        assert hub.rows("SELECT count(*) FROM mes_states WHERE path = 'acme/dallas/bottling/line9/filler'") == [(3,)]
        health = hub.mes.health()
        assert (health["unbound_paths"], health["unbound"], health["unbound_events"]) == (1, [NEW_CELL], 3)
        warnings = [r.getMessage() for r in caplog.records if "unbound path" in r.getMessage()]
        assert len(warnings) == 1
        assert NEW_CELL in warnings[0]


async def test_a_count_on_a_line_path_whose_output_is_a_cell_is_stored_counted_and_warned_about_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """line1's output is its capper (mes.output_cells): two counts on the line path itself are stray (no figure of
    the line), one on the capper is not; line2 counts at its own path (its output is the line): not stray."""
    caplog.set_level(logging.WARNING, logger="uns.mes.stray_counts")
    line2 = "acme/dallas/bottling/line2"
    section = MesSection(kpi_interval_s=60, output_cells={LINE: f"{LINE}/capper", line2: line2})
    async with intake_hub(tmp_path, settings=section, equipment=EQUIPMENT) as hub:
        for index, path in enumerate((LINE, LINE, f"{LINE}/capper", line2)):
            await hub.erp.publish(f"{path}/mes/production_count", _count(index), qos=1)
        await until(lambda: hub.mes.health()["stored"] == 4, what="four counts stored")
        assert hub.rows("SELECT count(*) FROM mes_counts WHERE path = 'acme/dallas/bottling/line1'") == [(2,)]  # kept
        health = hub.mes.health()
        assert (health["stray_count_lines"], health["stray_count_paths"], health["stray_counts"]) == (1, [LINE], 2)
        warnings = [r.getMessage() for r in caplog.records if "production_count on line path" in r.getMessage()]
        assert warnings == [
            f"production_count on line path {LINE} ({LINE}/mes/production_count): the line's output is {LINE}/capper,"
            " so counts on the line itself are no figure of it; stored and counted as stray_counts in the health;"
            f" fix the publisher's topic, or set mes.output_cells.{LINE}: {LINE} to count the line at its own path"
        ]


async def test_a_line_whose_output_never_counted_while_its_other_cells_did_is_listed_until_it_counts(
    tmp_path: Path,
) -> None:
    """line1's output is its capper: while only the filler counts, the line has no good units (listed); from its
    history too after a restart; the capper's first count takes it off. line2's output (the line) never counted,
    but nothing of line2 did either: not listed."""
    line2 = "acme/dallas/bottling/line2"
    section = MesSection(kpi_interval_s=60, output_cells={LINE: f"{LINE}/capper", line2: line2})

    async with intake_hub(tmp_path, settings=section, equipment=EQUIPMENT) as hub:
        assert hub.mes.health()["silent_output_lines"] == []
        await hub.erp.publish(f"{LINE}/filler/mes/production_count", _count(0), qos=1)
        await until(lambda: hub.mes.health()["stored"] == 1, what="the filler's count stored")
        assert hub.mes.health()["silent_output_lines"] == [LINE]
    async with intake_hub(tmp_path, settings=section, equipment=EQUIPMENT) as hub:
        assert hub.mes.health()["silent_output_lines"] == [LINE]  # read from the stored counts at start
        await hub.erp.publish(f"{LINE}/capper/mes/production_count", _count(1), qos=1)
        await until(lambda: hub.mes.health()["stored"] == 1, what="the capper's count stored")
        assert hub.mes.health()["silent_output_lines"] == []


async def test_a_line_counting_at_its_own_path_and_at_its_cells_without_a_setting_is_listed_and_warned_about_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """No mes.output_cells for line1, the plant file's last cell (the capper) its default: its counts on the line path
    are its units (not stray, its default not silent); once its filler counts too, the line is listed in
    own_count_lines and the log says once how to pin it; again from the stored counts after a restart."""
    caplog.set_level(logging.WARNING, logger="uns.mes.silent_outputs")
    section = MesSection(kpi_interval_s=60).model_copy(update={"plant_outputs": {LINE: f"{LINE}/capper"}})

    def warned() -> list[str]:
        return [r.getMessage() for r in caplog.records if "production_count on line path" in r.getMessage()]

    async with intake_hub(tmp_path, settings=section, equipment=EQUIPMENT) as hub:
        for index in range(2):
            await hub.erp.publish(f"{LINE}/mes/production_count", _count(index), qos=1)
        await until(lambda: hub.mes.health()["stored"] == 2, what="the line's counts stored")
        health = hub.mes.health()
        assert (health["own_count_lines"], health["stray_counts"], health["silent_output_lines"]) == ([], 0, [])
        assert warned() == []
        await hub.erp.publish(f"{LINE}/filler/mes/production_count", _count(2), qos=1)
        await until(lambda: hub.mes.health()["stored"] == 3, what="the filler's count stored")
        health = hub.mes.health()
        assert (health["own_count_lines"], health["stray_counts"], health["silent_output_lines"]) == ([LINE], 0, [])
        assert hub.mes.counted_paths() == {LINE, f"{LINE}/filler"}
        assert warned() == [
            f"production_count on line path {LINE} and on its cells: with no mes.output_cells.{LINE} the line's own"
            f" counts are its units, its cells' counts no figure of it; set mes.output_cells.{LINE} to {LINE} (or to"
            " one of its cells) to pin it; listed as own_count_lines in the health"
        ]
    caplog.clear()
    async with intake_hub(tmp_path, settings=section, equipment=EQUIPMENT) as hub:
        assert hub.mes.health()["own_count_lines"] == [LINE]  # read from the stored counts at start
        await hub.erp.publish(f"{LINE}/capper/mes/production_count", _count(3), qos=1)
        await until(lambda: hub.mes.health()["stored"] == 1, what="the capper's count stored")
        assert hub.mes.health()["own_count_lines"] == [LINE]
        assert len(warned()) == 1


def test_the_cli_and_any_caller_with_the_plant_paths_get_the_same_refusal(tmp_path: Path) -> None:
    database = open_db(tmp_path / "mes.duckdb")
    try:
        Feeder(database).send("acme/dallas/packaging/line3/wrapper", "machine_state", at(24, 6), state=10000)
        cursor = database.reader()
        try:
            with pytest.raises(UnknownPath) as refused:
                run_view(cursor, MesSection(), "oee", {"path": ["acme/dallas/packaging/line3/wraper"]},
                         now=utc_now(), equipment=EQUIPMENT)  # fmt: skip
            assert refused.value.nearest[0] == "acme/dallas/packaging/line3/wrapper"  # known by its events
            found = run_view(cursor, MesSection(), "oee", {"path": ["acme/dallas/packaging"]}, now=utc_now(),
                             equipment=EQUIPMENT)  # fmt: skip
            rows = found["rows"]
            assert isinstance(rows, list)
            assert [row.path for row in rows] == ["acme/dallas/packaging/line3/wrapper"]  # known by its events
        finally:
            cursor.close()
    finally:
        database.close()


@pytest.mark.parametrize(
    ("path", "first", "among"),
    [
        ("acme/dallas/bottling/lin1", LINE, {"acme/dallas/bottling/line2"}),
        ("acme/dallas/botling", "acme/dallas/bottling", {"acme/dallas"}),
        (f"{LINE}/welder", f"{LINE}/filler", {f"{LINE}/capper", LINE}),  # its known parent's children too
        ("globex", None, set()),
    ],
)
def test_nearest_paths_by_spelling_then_by_the_longest_known_ancestor(
    path: str, first: str | None, among: set[str]
) -> None:
    nearest = nearest_paths(path, EQUIPMENT)
    assert (nearest[0] if nearest else None) == first
    assert among <= set(nearest)
    assert len(nearest) <= 5


@pytest.mark.parametrize(
    "module", ["uns.mes.scope", "uns.mes.silent_outputs", "uns.mes.stray_counts", "uns.mes.unbound"]
)
def test_all_is_honest(module: str) -> None:
    assert_all_is_honest(module)


def test_uns_mes_names_the_nearest_paths_of_the_plant_file_and_exits_1(tmp_path: Path) -> None:
    open_db(tmp_path / "historian.duckdb").close()
    env = {key: value for key, value in os.environ.items() if not key.startswith("UNS_")}
    env["UNS_DATA_DIR"] = str(tmp_path)
    argv = [sys.executable, "-m", "hub.cli", "mes", "oee", "--path", "acme/dallas/bottling/lin1"]
    typo = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert typo.returncode == 1, typo.stderr
    assert "uns mes oee: no equipment and no MES events at acme/dallas/bottling/lin1; nearest known: " in typo.stderr
    assert "acme/dallas/bottling/line1" in typo.stderr
    argv[-1] = "acme/dallas/bottling/line1"  # the demo plant's line: known, its (empty) answer is the truth
    known = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert known.returncode == 0, known.stderr
