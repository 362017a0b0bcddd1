from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from hub.cli import main
from model.broker_config import UserConfig
from model.config import Settings
from tests.fixtures.passwords import quick_hash
from tests.fixtures.running import running
from tests.uns.historian.history_data import LINE, Filler, open_database
from uns.historian.queries import History
from uns.historian.query_cli import add_query_parser, run_query
from uns.query.cli import join_relative_times
from uns.web import WebServer
from uns.web.auth import WebAuth

T0 = datetime(2026, 10, 24, tzinfo=UTC)
TEMP = f"{LINE}/filler/data/Temp"
REPO = Path(__file__).resolve().parents[3]


def _fill(path: Path) -> None:
    database = open_database(path)
    fill = Filler(database.connection)
    temp = fill.series(TEMP, "Float", unit="degC", first_seen=T0)
    fill.samples(temp, [(T0 + timedelta(hours=h), float(h)) for h in range(72)])
    database.close()


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """One filled historian file for the tests that only read it (``uns query`` opens it read-only), not a file
    migrated and filled again for each."""
    data_dir = tmp_path_factory.mktemp("filled")
    _fill(data_dir / "historian.duckdb")
    return Settings(data_dir=data_dir)


def _run(settings: Settings, *argv: str) -> int:
    parser = argparse.ArgumentParser(prog="uns")
    add_query_parser(parser.add_subparsers(dest="command"))
    return run_query(parser.parse_args(["query", *argv]), settings)


def test_table_states_the_time_zone_and_aligns_columns(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["agg", TEMP, "--start", "2026-10-24", "--end", "2026-10-27", "--bucket", "1d", "--agg", "count,max"]
    assert _run(settings, *argv, "--tz", "Europe/Berlin") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "# times in Europe/Berlin, 2026-10-24T00:00:00+02:00 .. 2026-10-27T00:00:00+01:00; 3 rows"
    assert lines[1].split() == ["start", "end", "count", "max", "filled"]
    assert lines[3].split() == ["2026-10-25T00:00:00+02:00", "2026-10-26T00:00:00+01:00", "25", "46.0", "false"]
    assert len({line.index("count") for line in lines[1:2]} | {lines[1].index("count")}) == 1
    assert all(line[lines[1].index("count") - 1] == " " for line in lines[2:])


def test_json_and_csv_formats(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["raw", TEMP, "--start", "2026-10-24T00:00Z", "--end", "2026-10-24T02:00Z"]
    assert _run(settings, *argv, "--format", "json") == 0
    document = orjson.loads(capsys.readouterr().out)
    assert [(row["ts"], row["value"]) for row in document["rows"]] == [
        ("2026-10-24T00:00:00+00:00", 0.0),
        ("2026-10-24T01:00:00+00:00", 1.0),
    ]
    assert _run(settings, "last", f"{LINE}/#", "--format", "csv") == 0
    assert capsys.readouterr().out.splitlines() == [
        "topic,ts,value,quality,historical,datatype,unit",
        f"{TEMP},2026-10-26T23:00:00+00:00,71.0,good,false,Float,degC",
    ]


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["agg", TEMP, "--bucket", "1x"], 2, "uns query agg: --bucket: cannot read '1x'"),
        (["raw", TEMP, "--start", "yesterday"], 2, "uns query raw: --start: cannot read 'yesterday'"),
        (["raw", TEMP, "--tz", "Mars/Base"], 2, "uns query raw: --tz: unknown time zone"),
        (["series", "a/#/b"], 2, "uns query series: MATCH: topic filter"),
        (
            ["raw", f"{LINE}/filler/data/Tmep"],
            1,
            f"uns query raw: no series {LINE}/filler/data/Tmep; "
            "list them: uns query series, or GET /api/history/series\n",
        ),
        (
            ["raw", f"{LINE}/+/data/Temp"],
            2,
            f"uns query raw: TOPIC: '{LINE}/+/data/Temp' is a filter; this query takes one topic "
            "(list them: uns query series, or GET /api/history/series)\n",
        ),
    ],
)
def test_bad_arguments_exit_2_naming_the_field(
    settings: Settings, capsys: pytest.CaptureFixture[str], argv: list[str], code: int, message: str
) -> None:
    assert _run(settings, *argv) == code
    assert message in capsys.readouterr().err


def test_missing_file_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(Settings(data_dir=tmp_path / "none"), "series") == 1
    assert "no such file" in capsys.readouterr().err


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[tuple[Path, WebServer]]:
    """The file held open for writing, as a running hub holds it, with its web server."""
    path = tmp_path / "historian.duckdb"
    _fill(path)
    database = open_database(path)
    web = WebServer(bind="127.0.0.1", port=0, health={}, history=History(database))
    try:
        async with running(web):
            yield path, web
    finally:
        database.close()


async def test_api_flag_asks_the_hub_over_http(
    hub: tuple[Path, WebServer], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, web = hub
    settings = Settings(data_dir=tmp_path / "elsewhere")
    code = await asyncio.to_thread(_run, settings, "agg", TEMP, "--api", web.url, "--bucket", "1x")
    assert code == 2
    assert "--bucket: cannot read '1x'" in capsys.readouterr().err
    code = await asyncio.to_thread(_run, settings, "last", TEMP, "--api", web.url, "--format", "json")
    assert code == 0
    assert orjson.loads(capsys.readouterr().out)["rows"][0]["value"] == 71.0


async def test_an_account_in_the_api_url_signs_in(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # a hub whose broker.yaml has accounts answers 401 without a session (docs/historian.md, "Queries")
    path = tmp_path / "historian.duckdb"
    _fill(path)
    database = open_database(path)
    users = {"vic": UserConfig(password_hash=quick_hash("vic-pw"), role="viewer")}
    auth = WebAuth(users=users, secret=b"s" * 32)
    web = WebServer(
        bind="127.0.0.1", port=0, health={}, history=History(database), middleware=auth.middleware(),
        routes=auth.routes(),
    )  # fmt: skip
    settings = Settings(data_dir=tmp_path / "elsewhere")
    try:
        async with running(web):
            web_host = web.url.removeprefix("http://")
            signed = f"http://vic:vic-pw@{web_host}"
            code = await asyncio.to_thread(_run, settings, "last", TEMP, "--api", signed, "--format", "json")
            assert code == 0, capsys.readouterr().err
            assert orjson.loads(capsys.readouterr().out)["rows"][0]["value"] == 71.0
            code = await asyncio.to_thread(_run, settings, "last", TEMP, "--api", web.url)
            said = capsys.readouterr().err.splitlines()  # the last line: the hub's own log lines may come before
            assert (code, said[-1]) == (
                1,
                "uns query last: not signed in: POST /api/login first: give an account in the URL,"
                f" --api http://USER:PASSWORD@{web_host}",
            )
            code = await asyncio.to_thread(_run, settings, "last", TEMP, "--api", f"http://vic:nope@{web_host}")
            said = capsys.readouterr().err.splitlines()
            assert (code, said[-1]) == (
                1,
                f"uns query last: http://{web_host}: login as 'vic': wrong user name or password",
            )
            assert not [line for line in said if "nope" in line]  # never the password
    finally:
        database.close()


async def _uns_query(tmp_path: Path, port: int, *argv: str) -> tuple[int, str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("UNS_")}
    env |= {"UNS_DATA_DIR": str(tmp_path), "UNS_HTTP_PORT": str(port)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "uns.historian.query_cli", "query", *argv,
        cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_a_locked_file_falls_back_to_the_hubs_http_api(hub: tuple[Path, WebServer], tmp_path: Path) -> None:
    _, web = hub
    port = int(web.url.rsplit(":", 1)[1])
    code, out, err = await _uns_query(tmp_path, port, "last", TEMP, "--format", "csv")
    assert code == 0, err
    assert "is locked by a running hub; asking it over HTTP at http://127.0.0.1:" in err
    assert out.splitlines()[1].startswith(f"{TEMP},2026-10-26T23:00:00+00:00,71.0,")

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    code, out, err = await _uns_query(tmp_path, closed, "last", TEMP)
    assert code == 1
    assert out == ""
    assert "locked by another process" in err
    assert f"http://127.0.0.1:{closed}" in err
    assert "--api" in err


def _uns(data_dir: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """The real ``uns`` entry point (``hub.cli:main``, the console script) in its own process."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("UNS_")}
    env["UNS_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [sys.executable, "-m", "hub.cli", *argv], cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip


def test_relative_times_may_follow_their_flag_as_docs_write_them(tmp_path: Path) -> None:
    # docs/historian.md: `uns query agg ... --start -7d`; argparse alone reads -7d as an unknown option
    _fill(tmp_path / "historian.duckdb")
    days = (datetime.now(UTC) - T0).days + 2  # back to before the filled samples, whatever today is
    spaced = _uns(tmp_path, "query", "raw", TEMP, "--start", f"-{days}d", "--end", "-1h", "--format", "json")
    assert spaced.returncode == 0, spaced.stderr
    rows = orjson.loads(spaced.stdout)["rows"]
    assert [row["value"] for row in rows] == [float(h) for h in range(72)]
    glued = _uns(tmp_path, "query", "raw", TEMP, f"--start=-{days}d", "--end=-1h", "--format", "json")
    assert orjson.loads(glued.stdout)["rows"] == rows
    # the MES views take the same times
    oee = _uns(tmp_path, "mes", "oee", "--path", LINE, "--start", "-7d", "--end", "-1m", "--format", "json")
    assert oee.returncode == 0, oee.stderr
    assert orjson.loads(oee.stdout)["rows"] == []


def test_settings_flags_may_follow_the_sub_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # README's `uns mes oee --path ... --by cell` with a data dir of one's own: `--data-dir` after the view was
    # refused ("uns: error: unrecognized arguments"); it counts there as before the view, the later one winning
    for key in [key for key in os.environ if key.startswith("UNS_")]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no data/ here: only the flag finds the file
    data_dir = tmp_path / "hub"
    data_dir.mkdir()
    _fill(data_dir / "historian.duckdb")
    last = ["last", TEMP, "--format", "json"]
    for argv in (
        ["query", "--data-dir", str(data_dir), *last],
        ["query", *last, "--data-dir", str(data_dir)],
        ["query", "--data-dir", str(tmp_path / "nowhere"), *last, "--data-dir", str(data_dir)],
    ):
        assert main(argv) == 0, capsys.readouterr().err
        assert [row["value"] for row in orjson.loads(capsys.readouterr().out)["rows"]] == [71.0], argv
    window = ["--start", "2026-10-24", "--end", "2026-10-27", "--format", "json"]
    assert main(["mes", "oee", "--path", LINE, *window, "--data-dir", str(data_dir)]) == 0, capsys.readouterr().err
    answer = orjson.loads(capsys.readouterr().out)
    assert (answer["start"], answer["rows"]) == ("2026-10-24T00:00:00+00:00", [])


@pytest.mark.parametrize(
    ("argv", "parsed"),
    [
        (["raw", "t", "--start", "-7d"], ["raw", "t", "--start=-7d"]),
        (["agg", "t", "--start", "-15m", "--end", "-2h"], ["agg", "t", "--start=-15m", "--end=-2h"]),
        (["raw", "t", "--start", "-500ms", "--end", "now"], ["raw", "t", "--start=-500ms", "--end", "now"]),
        (["raw", "t", "--start=-1w"], ["raw", "t", "--start=-1w"]),
        (["oee", "--start", "-8H"], ["oee", "--start=-8H"]),
        (["oee", "--start", "-1.5h"], ["oee", "--start=-1.5h"]),  # the one duration grammar's decimals
        (["raw", "t", "--limit", "-5"], ["raw", "t", "--limit", "-5"]),  # argparse's own negative numbers
        (["raw", "t", "--start", "-x"], ["raw", "t", "--start", "-x"]),  # not a time: argparse says so
        (
            ["raw", "t", "--start", "-9999999999d"],
            ["raw", "t", "--start", "-9999999999d"],
        ),  # longer than any duration (model.duration)
        (["raw", "--", "--start", "-7d"], ["raw", "--", "--start", "-7d"]),  # after --: positionals
        (["raw", "t", "--start"], ["raw", "t", "--start"]),
    ],
)
def test_join_relative_times(argv: list[str], parsed: list[str]) -> None:
    assert join_relative_times(argv) == parsed
