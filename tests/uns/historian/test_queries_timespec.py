from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import duckdb
import pytest

from tests.exports import assert_all_is_honest
from uns.errors import BadArgument
from uns.mqtt.filters import filter_error
from uns.query.args import check_limit
from uns.query.timespec import format_interval, parse_interval, parse_time, parse_zone, relative_ms, require_aware
from uns.query.values import topic_condition, typed_value

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("text", "tz", "expected"),
    [
        ("2026-11-24T08:00:00+01:00", UTC, datetime(2026, 11, 24, 7, 0, tzinfo=UTC)),
        ("2026-11-24T07:00:00Z", BERLIN, datetime(2026, 11, 24, 7, 0, tzinfo=UTC)),
        ("2026-11-24T08:00", BERLIN, datetime(2026, 11, 24, 7, 0, tzinfo=UTC)),
        ("2026-07-01T08:00", BERLIN, datetime(2026, 7, 1, 6, 0, tzinfo=UTC)),  # summer time: +02:00
        ("2026-11-24", BERLIN, datetime(2026, 11, 23, 23, 0, tzinfo=UTC)),
        ("2026-11-24T08:00:00.250Z", UTC, datetime(2026, 11, 24, 8, 0, 0, 250_000, tzinfo=UTC)),
        ("now", UTC, NOW),
        (" NOW ", BERLIN, NOW),
        ("-15m", UTC, NOW - timedelta(minutes=15)),
        ("-2h", UTC, NOW - timedelta(hours=2)),
        ("-7d", BERLIN, NOW - timedelta(days=7)),
        ("-30s", UTC, NOW - timedelta(seconds=30)),
        ("now-1w", UTC, NOW - timedelta(weeks=1)),
        ("-1.5h", UTC, NOW - timedelta(minutes=90)),  # the one duration grammar (model.duration): decimals
        ("now-10 S", UTC, NOW - timedelta(seconds=10)),
    ],
)
def test_parse_time_reads_iso_now_and_relative(text: str, tz: ZoneInfo, expected: datetime) -> None:
    parsed = parse_time(text, now=NOW, tz=tz)
    assert parsed == expected
    assert parsed.tzinfo is not None


@pytest.mark.parametrize("text", ["yesterday", "-15", "15m", "-15x", "2026-13-01", "", "-m"])
def test_parse_time_errors_name_the_argument_and_show_an_example(text: str) -> None:
    with pytest.raises(BadArgument) as caught:
        parse_time(text, now=NOW, tz=UTC, field="start")
    assert caught.value.field == "start"
    assert str(caught.value).startswith("start: ")
    assert "-15m" in str(caught.value)
    assert "2026-11-24T08:00:00+01:00" in str(caught.value)


def test_parse_time_needs_an_aware_now() -> None:
    with pytest.raises(BadArgument, match="give a time zone"):
        parse_time("now", now=datetime(2026, 1, 1), tz=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1m", timedelta(minutes=1)),
        ("15s", timedelta(seconds=15)),
        ("1h", timedelta(hours=1)),
        ("1d", timedelta(days=1)),
        ("250ms", timedelta(milliseconds=250)),
        (" 2W ", timedelta(weeks=2)),
        ("1.5h", timedelta(minutes=90)),  # was refused: the computed tags' windows read decimals
        ("10 s", timedelta(seconds=10)),
    ],
)
def test_parse_interval(text: str, expected: timedelta) -> None:
    assert parse_interval(text) == expected


@pytest.mark.parametrize("text", ["0m", "1", "m", "0.0001s", "-1h", "1y", "", "1000000000d"])
def test_parse_interval_refuses_with_the_field_named(text: str) -> None:
    with pytest.raises(BadArgument) as caught:
        parse_interval(text, field="bucket")
    assert caught.value.field == "bucket"
    assert "1m" in caught.value.reason


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(minutes=1), "1m"),
        (timedelta(hours=1), "1h"),
        (timedelta(days=1), "1d"),
        (timedelta(minutes=90), "90m"),
        (timedelta(milliseconds=1500), "1500ms"),
        (timedelta(weeks=1), "1w"),
    ],
)
def test_format_interval_round_trips(value: timedelta, text: str) -> None:
    assert format_interval(value) == text
    assert parse_interval(text) == value


def test_parse_zone() -> None:
    assert parse_zone("Europe/Berlin") == BERLIN
    with pytest.raises(BadArgument) as caught:
        parse_zone("Mars/Olympus")
    assert caught.value.field == "tz"
    assert "Europe/Berlin" in caught.value.reason


def test_require_aware_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="give a time zone") as caught:
        require_aware(datetime(2026, 1, 1), "start")
    assert isinstance(caught.value, BadArgument)
    assert caught.value.field == "start"
    assert require_aware(datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=5))), "end").hour == 0


TOPICS = [
    "acme/dallas/bottling/line1/filler/data/State",
    "acme/dallas/bottling/line1/capper/data/State",
    "acme/dallas/bottling/line1/filler/data/Temp",
    "acme/dallas/bottling/line1/filler/data/Temp/Raw",
    "acme/dallas/bottling/line1/kpi/oee",
    "acme/dallas/bottling/line2/filler/data/State",
    "acme/x.y/bottling/line1/filler/data/State",
    "acme/xzy/bottling/line1/filler/data/State",
    "acme/100%/a_b/line1/filler/data/State",
    "acme/1000/aXb/line1/filler/data/State",
]


@pytest.fixture(scope="module")
def topics() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    connection.execute("CREATE TABLE t (topic VARCHAR)")
    connection.executemany("INSERT INTO t VALUES (?)", [[topic] for topic in TOPICS])
    yield connection
    connection.close()


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (["#"], set(range(10))),
        (["acme/dallas/bottling/line1/+/data/State"], {0, 1}),
        (["acme/+/+/+/filler/data/State"], {0, 5, 6, 7, 8, 9}),
        (["acme/dallas/bottling/line1/filler/data/Temp/#"], {2, 3}),  # a/# matches a itself too
        (["acme/dallas/bottling/line1/filler/data/Temp"], {2}),
        (["acme/x.y/#"], {6}),  # the dot is literal
        (["acme/100%/a_b/#"], {8}),  # LIKE's wildcards are literal too
        (["acme/dallas/+/+/kpi/#", "acme/dallas/bottling/line2/filler/data/State"], {4, 5}),
        (["acme/dallas/bottling/line1/+"], set()),
        (["nobody/#"], set()),
    ],
)
def test_topic_condition_matches_like_mqtt(
    topics: duckdb.DuckDBPyConnection, filters: list[str], expected: set[int]
) -> None:
    condition, params = topic_condition("topic", filters)
    rows = topics.execute(f"SELECT topic FROM t WHERE {condition}", params).fetchall()  # noqa: S608
    assert {row[0] for row in rows} == {TOPICS[index] for index in expected}


@pytest.mark.parametrize("bad", ["a/#/b", "a/b#", "a+/b", "", "a/+b", "a\x00b"])
def test_topic_condition_refuses_malformed_filters(bad: str) -> None:
    with pytest.raises(BadArgument) as caught:
        topic_condition("topic", [bad], field="match")
    assert caught.value.field == "match"
    # the MQTT rules' own words (uns.mqtt.filters, as the broker and the rules say it), named with the parameter
    expected = filter_error(bad) or f"topic filter {bad!r} holds a NUL character"
    assert str(caught.value) == f"match: {expected}"


@pytest.mark.parametrize(
    ("datatype", "value", "text", "json_text", "expected"),
    [
        ("Boolean", 1.0, None, None, True),
        ("Boolean", 0.0, None, None, False),
        ("Int32", 42.0, None, None, 42),
        ("UInt64", float(2**53 + 1), str(2**53 + 1), None, 2**53 + 1),
        ("Int64", -(2.0**60), str(-(2**60) - 1), None, -(2**60) - 1),
        ("Float", 1.5, None, None, 1.5),
        ("Double", 3.0, None, None, 3.0),
        ("String", None, "running", None, "running"),
        ("DataSet", None, None, '{"columns": ["a"], "rows": [[1]]}', {"columns": ["a"], "rows": [[1]]}),
        ("Int32Array", None, None, "[1, 2, 3]", [1, 2, 3]),
        ("Float", None, None, None, None),
        (None, 2.5, None, None, 2.5),
        (None, None, "text", None, "text"),
    ],
)
def test_typed_value(
    datatype: str | None, value: float | None, text: str | None, json_text: str | None, expected: object
) -> None:
    result = typed_value(datatype, value, text, json_text)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    "module",
    [
        "uns.historian.queries",
        "uns.historian.query_api",
        "uns.historian.query_buckets",
        "uns.historian.query_cli",
        "uns.historian.query_types",
        "uns.query",
        "uns.query.args",
        "uns.query.cli",
        "uns.query.documents",
        "uns.query.timespec",
        "uns.query.values",
        "uns.web",
        "uns.web.history_api",
        "uns.web.server",
    ],
)
def test_all_is_honest(module: str) -> None:
    assert_all_is_honest(module)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("-15m", 900_000), ("now-1.5H", 5_400_000), (" -0s ", 0), ("-2 w", 1_209_600_000), ("15m", None),
     ("-15", None), ("-now", None), ("2026-11-24", None)],
)  # fmt: skip
def test_relative_ms_is_the_one_reading_of_a_relative_time(text: str, expected: int | None) -> None:
    """``parse_time`` and the shell's ``join_relative_times`` both read a relative time with it."""
    assert relative_ms(text) == expected


@pytest.mark.parametrize(("limit", "ok"), [(1, True), (1_000_000, True), (0, False), (-5, False), (1_000_001, False)])
def test_check_limit_is_every_querys_row_bound(limit: int, ok: bool) -> None:
    """The endpoints' ``limit`` parameter, the historian's ``History`` and a sink's history all bound rows with it."""
    if ok:
        assert check_limit(limit) == limit
        return
    with pytest.raises(BadArgument) as caught:
        check_limit(limit)
    assert (caught.value.field, str(caught.value)) == ("limit", f"limit: must be 1..1000000 (got {limit})")
