from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.uns.historian.history_data import LINE, Filler
from uns.errors import BadArgument, UnknownSeries
from uns.historian.queries import History
from uns.store.database import Database

T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")
TEMP = f"{LINE}/filler/data/Temp"
STATE = f"{LINE}/filler/data/State"
WORK_ORDER = f"{LINE}/mes/work_order"
SHIFT = f"{LINE}/mes/shift"


@pytest.fixture
def history(db: Database) -> History:
    return History(db, clock=lambda: T0 + timedelta(days=1))


def test_series_lists_topics_by_filter(fill: Filler, history: History) -> None:
    fill.series(TEMP, "Float", unit="degC", first_seen=T0)
    fill.series(STATE, "String", first_seen=T0 + timedelta(minutes=1))
    fill.series(f"{LINE}/kpi/oee", "Double", first_seen=T0)
    fill.series("acme/dallas/bottling/line2/filler/data/Temp", "Float", first_seen=T0)

    found = history.series(f"{LINE}/filler/data/#")
    assert [info.topic for info in found] == [STATE, TEMP]
    assert found[1].path == f"{LINE}/filler"
    assert found[1].class_ == "data"
    assert found[1].metric == "Temp"
    assert found[1].unit == "degC"
    assert found[0].first_seen == T0 + timedelta(minutes=1)
    assert found[0].first_seen.utcoffset() == timedelta(0)
    assert len(history.series()) == 4
    assert [info.topic for info in history.series("+/+/+/+/kpi/oee")] == [f"{LINE}/kpi/oee"]
    assert history.series("nobody/#") == []


def test_last_types_values_by_datatype(fill: Filler, history: History) -> None:
    cases: list[tuple[str, str, object]] = [
        ("Running", "Boolean", True),
        ("Count", "Int32", 1234),
        ("Temp", "Float", 72.5),
        ("Recipe", "String", "cola-330ml"),
        ("Table", "DataSet", {"columns": ["a", "b"], "rows": [[1, "x"]]}),
    ]
    for name, datatype, value in cases:
        series_id = fill.series(f"{LINE}/filler/data/{name}", datatype, first_seen=T0)
        fill.samples(series_id, [(T0, value)])
    found = {item.topic.rsplit("/", 1)[1]: item for item in history.last(f"{LINE}/filler/data/#")}
    for name, datatype, value in cases:
        assert found[name].value == value
        assert type(found[name].value) is type(value)
        assert found[name].datatype == datatype
        assert found[name].ts == T0
        assert found[name].quality == "good"


def test_integers_beyond_2_53_come_back_exact(db: Database, fill: Filler, history: History) -> None:
    big = 2**53 + 1  # a DOUBLE rounds it to 2**53
    series_id = fill.series(f"{LINE}/filler/data/Serial", "UInt64", first_seen=T0)
    fill.big_int(series_id, T0, big)
    db.connection.execute(
        "INSERT INTO latest SELECT series_id, ts, value, value_text, value_json, quality, historical, source, received,"
        " seq FROM samples WHERE series_id = ?",
        [series_id],
    )
    assert history.raw(f"{LINE}/filler/data/Serial", T0, T0 + timedelta(seconds=1))[0].value == big
    assert history.last(f"{LINE}/filler/data/Serial")[0].value == big


def test_last_over_many_filters_and_unknown_topics(fill: Filler, history: History) -> None:
    for index in range(3):
        series_id = fill.series(f"{LINE}/cell{index}/data/Temp", "Float", first_seen=T0)
        fill.samples(series_id, [(T0, float(index)), (T0 + timedelta(seconds=index + 1), float(index) + 0.5)])
    found = history.last([f"{LINE}/cell0/data/Temp", f"{LINE}/+/data/Temp"])
    assert [(item.topic, item.value) for item in found] == [
        (f"{LINE}/cell{index}/data/Temp", index + 0.5) for index in range(3)
    ]
    assert history.last(f"{LINE}/nothing/#") == []
    with pytest.raises(
        UnknownSeries,
        match=f"no series {LINE}/cell9/data/Temp; list them: uns query series, or GET /api/history/series",
    ):
        history.last([f"{LINE}/cell0/data/Temp", f"{LINE}/cell9/data/Temp"])


def test_raw_is_ordered_half_open_limited_and_in_the_asked_zone(fill: Filler, history: History) -> None:
    series_id = fill.series(TEMP, "Float", first_seen=T0)
    fill.samples(series_id, [(T0 + timedelta(minutes=m), float(m)) for m in (30, 0, 10, 20)])
    points = history.raw(TEMP, T0, T0 + timedelta(minutes=30))
    assert [p.value for p in points] == [0.0, 10.0, 20.0]  # 08:30 is the end: left out
    assert [p.ts for p in points] == [T0 + timedelta(minutes=m) for m in (0, 10, 20)]
    assert history.raw(TEMP, T0, T0 + timedelta(hours=1), limit=2)[-1].value == 10.0
    local = history.raw(TEMP, T0, T0 + timedelta(hours=1), tz=BERLIN)
    assert local[0].ts.tzinfo == BERLIN
    assert (local[0].ts.hour, local[0].ts.utcoffset()) == (9, timedelta(hours=1))
    assert local[0].quality == "good"
    assert local[0].historical is False


def test_naive_datetimes_and_bad_ranges_are_refused(fill: Filler, history: History) -> None:
    fill.series(TEMP, "Float", first_seen=T0)
    naive = datetime(2026, 11, 24, 8, 0)  # naive on purpose
    with pytest.raises(ValueError, match="give a time zone") as caught:
        history.raw(TEMP, naive, T0)
    assert isinstance(caught.value, BadArgument)
    assert caught.value.field == "start"
    with pytest.raises(BadArgument, match="give a time zone"):
        history.aggregate(TEMP, T0, naive, bucket=timedelta(minutes=1))
    with pytest.raises(BadArgument) as caught_end:
        history.raw(TEMP, T0, T0)
    assert caught_end.value.field == "end"
    with pytest.raises(BadArgument) as caught_limit:
        history.raw(TEMP, T0, T0 + timedelta(hours=1), limit=0)
    assert caught_limit.value.field == "limit"


def test_unknown_topics_are_errors_not_empty_results(fill: Filler, history: History) -> None:
    fill.series(TEMP, "Float", first_seen=T0)
    typo = f"{LINE}/filler/data/Tmep"
    end = T0 + timedelta(hours=1)
    for call in (
        lambda: history.raw(typo, T0, end),
        lambda: history.aggregate(typo, T0, end, bucket=timedelta(minutes=1)),
        lambda: history.asof(typo, T0, end, context=[]),
        lambda: history.state_durations(typo, T0, end),
    ):
        with pytest.raises(ValueError, match="Tmep") as caught:
            call()
        assert isinstance(caught.value, UnknownSeries)
        assert str(caught.value).endswith("; list them: uns query series, or GET /api/history/series")
    with pytest.raises(BadArgument, match="filter"):
        history.raw(f"{LINE}/+/data/Temp", T0, end)


def test_asof_gives_the_work_order_shift_and_state_active_at_each_sample(fill: Filler, history: History) -> None:
    temp = fill.series(TEMP, "Float", first_seen=T0)
    fill.samples(temp, [(T0 + timedelta(hours=h), 70.0 + h) for h in range(4)])  # 08:00 .. 11:00
    state = fill.series(STATE, "String", first_seen=T0)
    fill.samples(state, [(T0 - timedelta(hours=1), "idle"), (T0 + timedelta(minutes=45), "running")])
    fill.mes_event(WORK_ORDER, T0 + timedelta(minutes=30), {"id": "WO-1", "product": "cola"})
    fill.mes_event(WORK_ORDER, T0 + timedelta(hours=2), {"id": "WO-2", "product": "lemon"})
    fill.mes_event(SHIFT, T0 - timedelta(hours=2), {"shift": "early"})
    fill.mes_event(f"{LINE}/filler/mes/work_order", T0, {"id": "other cell"})

    rows = history.asof(TEMP, T0, T0 + timedelta(hours=4), context=[WORK_ORDER, SHIFT, STATE], tz=BERLIN)

    assert [row.value for row in rows] == [70.0, 71.0, 72.0, 73.0]
    assert rows[0].ts == T0
    assert rows[0].ts.tzinfo == BERLIN
    assert [row.context[WORK_ORDER] for row in rows] == [
        None,  # 08:00: no order released yet
        {"id": "WO-1", "product": "cola"},
        {"id": "WO-2", "product": "lemon"},  # an event at the very instant is active
        {"id": "WO-2", "product": "lemon"},
    ]
    assert [row.context[SHIFT] for row in rows] == [{"shift": "early"}] * 4
    assert [row.context[STATE] for row in rows] == ["idle", "running", "running", "running"]


def test_asof_context_is_found_however_long_before_the_window(fill: Filler, history: History) -> None:
    temp = fill.series(TEMP, "Float", first_seen=T0)
    fill.samples(temp, [(T0 + timedelta(hours=h), 70.0 + h) for h in range(3)])
    state = fill.series(STATE, "String", first_seen=T0)
    long_ago = T0 - timedelta(days=40)  # far beyond the day searched first
    fill.samples(state, [(long_ago - timedelta(days=1), "setup"), (long_ago, "down")])
    fill.samples(state, [(T0 + timedelta(hours=1), "running"), (T0 + timedelta(hours=5), "late")])

    rows = history.asof(TEMP, T0, T0 + timedelta(hours=3), context=[STATE])
    table = history.asof_table(TEMP, T0, T0 + timedelta(hours=3), context=[STATE])

    assert [row.context[STATE] for row in rows] == ["down", "running", "running"]
    assert table.table.column(6).to_pylist() == ["down", "running", "running"]


def test_asof_refuses_unknown_context_topics(fill: Filler, history: History) -> None:
    temp = fill.series(TEMP, "Float", first_seen=T0)
    fill.samples(temp, [(T0, 1.0)])
    with pytest.raises(UnknownSeries, match="mes/work_ordr") as caught:
        history.asof(TEMP, T0, T0 + timedelta(hours=1), context=[f"{LINE}/mes/work_ordr"])
    assert caught.value.field == "context"


def test_dead_letters_newest_first_and_counts(fill: Filler, history: History) -> None:
    fill.dead_letter(T0, f"{LINE}/filler/data/Temp", "payload", "not JSON", b"\xff\xfe{")
    fill.dead_letter(T0 + timedelta(minutes=1), f"{LINE}/mes/count", "good", "must be >= 0", b'{"good": -1}')
    letters = history.dead_letters()
    assert [(letter.field, letter.payload) for letter in letters] == [
        ("good", b'{"good": -1}'),
        ("payload", b"\xff\xfe{"),
    ]
    assert history.dead_letters(limit=1)[0].received == T0 + timedelta(minutes=1)

    temp = fill.series(TEMP, "Float", first_seen=T0)
    fill.samples(temp, [(T0, 1.0), (T0 + timedelta(hours=2), 2.0)])
    counts = history.counts()
    assert counts["samples"].rows == 2
    assert (counts["samples"].oldest, counts["samples"].newest) == (T0, T0 + timedelta(hours=2))
    assert counts["latest"].rows == 1
    assert counts["dead_letters"].rows == 2
    assert counts["rollup_1h"].rows == 0
    assert counts["rollup_1h"].oldest is None
    assert set(counts) == {"series", "samples", "latest", "mes_events", "dead_letters", "rollup_1m", "rollup_1h"}
