from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.uns.historian.history_data import LINE, Filler
from uns.errors import BadArgument
from uns.historian.queries import History
from uns.historian.query_buckets import fixed_offset
from uns.store.database import Database

T0 = datetime(2026, 11, 24, 0, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")
KOLKATA = ZoneInfo("Asia/Kolkata")
TEMP = f"{LINE}/filler/data/Temp"
MINUTE = timedelta(minutes=1)


@pytest.fixture
def history(db: Database) -> History:
    return History(db, clock=lambda: T0 + timedelta(days=400))


def _rollups(
    db: Database, table: str, series_id: int, first: datetime, rows: int, n: int, lo: float, hi: float
) -> None:
    """``rows`` consecutive rollup rows from ``first``, each of n samples running from lo to hi evenly."""
    seconds = 60 if table == "rollup_1m" else 3600
    db.connection.execute(
        f"INSERT INTO {table} SELECT $sid, $t0 + to_seconds(i * $size), $n, ($lo + $hi) / 2, $lo, $hi,"  # noqa: S608
        " $lo, $hi, $t0 + to_seconds(i * $size), $t0 + to_seconds(i * $size + $size - 1) FROM range($rows) AS r(i)",
        {"sid": series_id, "t0": first, "size": seconds, "n": n, "lo": lo, "hi": hi, "rows": rows},
    )


@pytest.fixture
def gappy(fill: Filler) -> int:
    """Samples in minutes 0 and 2 of [00:00, 00:04); minutes 1 and 3 are empty; 7.0 came before."""
    series_id = fill.series(TEMP, "Float", first_seen=T0)
    seconds = [(-30, 7.0), (10, 1.0), (50, 3.0), (150, 5.0)]
    fill.samples(series_id, [(T0 + timedelta(seconds=s), v) for s, v in seconds])
    return series_id


def test_fill_none_leaves_empty_buckets_out(gappy: int, history: History) -> None:
    buckets = history.aggregate(TEMP, T0, T0 + 4 * MINUTE, bucket=MINUTE, fill="none")
    assert [b.start for b in buckets] == [T0, T0 + 2 * MINUTE]
    assert buckets[0].values == {"avg": 2.0, "min": 1.0, "max": 3.0, "first": 1.0, "last": 3.0, "count": 2}
    assert buckets[1].values == {"avg": 5.0, "min": 5.0, "max": 5.0, "first": 5.0, "last": 5.0, "count": 1}
    assert [b.end for b in buckets] == [T0 + MINUTE, T0 + 3 * MINUTE]
    assert not any(b.filled for b in buckets)


def test_fill_null_gives_empty_buckets_with_none(gappy: int, history: History) -> None:
    buckets = history.aggregate(TEMP, T0, T0 + 4 * MINUTE, bucket=MINUTE, aggregates=("avg", "max", "count"))
    assert [(b.start, b.values, b.filled) for b in buckets] == [
        (T0, {"avg": 2.0, "max": 3.0, "count": 2}, False),
        (T0 + MINUTE, {"avg": None, "max": None, "count": 0}, True),
        (T0 + 2 * MINUTE, {"avg": 5.0, "max": 5.0, "count": 1}, False),
        (T0 + 3 * MINUTE, {"avg": None, "max": None, "count": 0}, True),
    ]


def test_fill_previous_carries_the_last_value(gappy: int, history: History) -> None:
    buckets = history.aggregate(TEMP, T0 - MINUTE, T0 + 4 * MINUTE, bucket=MINUTE, fill="previous")
    assert [(b.values["last"], b.values["count"]) for b in buckets] == [
        (7.0, 1),
        (3.0, 2),
        (3.0, 0),  # carried from the bucket before
        (5.0, 1),
        (5.0, 0),
    ]
    assert buckets[2].values == {"avg": 3.0, "min": 3.0, "max": 3.0, "first": 3.0, "last": 3.0, "count": 0}
    # a range starting in a gap carries the value from before the range
    leading = history.aggregate(TEMP, T0 + MINUTE, T0 + 2 * MINUTE, bucket=MINUTE, fill="previous")
    assert [(b.values["avg"], b.filled) for b in leading] == [(3.0, True)]


@pytest.mark.parametrize(
    ("day", "hours"),
    [
        (datetime(2026, 10, 24, tzinfo=BERLIN), [24, 25, 24]),  # clocks go back on 25 October
        (datetime(2026, 3, 28, tzinfo=BERLIN), [24, 23, 24]),  # clocks go forward on 29 March
    ],
)
def test_one_day_buckets_start_at_local_midnight_across_dst(
    fill: Filler, history: History, day: datetime, hours: list[int]
) -> None:
    series_id = fill.series(TEMP, "Float", first_seen=T0)
    start_utc = day.astimezone(UTC)
    total = sum(hours)
    fill.samples(series_id, [(start_utc + timedelta(hours=h), float(h)) for h in range(total)])

    buckets = history.aggregate(TEMP, day, start_utc + timedelta(hours=total), bucket=timedelta(days=1), tz=BERLIN)

    assert [(b.start.date().day, b.start.hour, b.start.minute) for b in buckets] == [
        (day.day + i, 0, 0) for i in range(3)
    ]
    assert all(b.start.tzinfo == BERLIN for b in buckets)
    assert [b.values["count"] for b in buckets] == hours
    assert [(b.end.astimezone(UTC) - b.start.astimezone(UTC)) // timedelta(hours=1) for b in buckets] == hours
    assert buckets[1].values["first"] == float(hours[0])
    assert buckets[1].values["avg"] == pytest.approx(hours[0] + (hours[1] - 1) / 2)


def test_hour_buckets_in_a_half_hour_zone(fill: Filler, history: History) -> None:
    series_id = fill.series(TEMP, "Float", first_seen=T0)
    fill.samples(series_id, [(T0 + timedelta(minutes=m), float(m)) for m in range(0, 120, 10)])
    buckets = history.aggregate(TEMP, T0, T0 + timedelta(hours=2), bucket=timedelta(hours=1), tz=KOLKATA)
    # Kolkata is UTC+05:30: its hours start at half past in UTC
    assert [b.start.astimezone(UTC) for b in buckets] == [T0 + timedelta(minutes=m) for m in (-30, 30, 90)]
    assert [(b.start.hour, b.start.minute) for b in buckets] == [(5, 0), (6, 0), (7, 0)]
    assert [b.values["count"] for b in buckets] == [3, 6, 3]
    assert [b.values["first"] for b in buckets] == [0.0, 30.0, 90.0]


def test_booleans_average_to_a_duty_fraction(fill: Filler, history: History) -> None:
    series_id = fill.series(f"{LINE}/filler/data/Running", "Boolean", first_seen=T0)
    fill.samples(series_id, [(T0 + timedelta(seconds=s), s % 20 == 0) for s in range(0, 60, 10)])
    (bucket,) = history.aggregate(f"{LINE}/filler/data/Running", T0, T0 + MINUTE, bucket=MINUTE)
    assert bucket.values == {"avg": 0.5, "min": False, "max": True, "first": True, "last": False, "count": 6}


def test_too_many_buckets_and_bad_names_are_refused(gappy: int, history: History) -> None:
    with pytest.raises(BadArgument, match="100000") as caught:
        history.aggregate(TEMP, T0, T0 + timedelta(days=30), bucket=timedelta(seconds=1))
    assert caught.value.field == "bucket"
    with pytest.raises(BadArgument) as caught_agg:
        history.aggregate(TEMP, T0, T0 + MINUTE, bucket=MINUTE, aggregates=("avg", "median"))
    assert caught_agg.value.field == "agg"
    with pytest.raises(BadArgument) as caught_fill:
        history.aggregate(TEMP, T0, T0 + MINUTE, bucket=MINUTE, fill="linear")
    assert caught_fill.value.field == "fill"
    with pytest.raises(BadArgument) as caught_zero:
        history.aggregate(TEMP, T0, T0 + MINUTE, bucket=timedelta(0))
    assert caught_zero.value.field == "bucket"


@pytest.fixture
def retained(db: Database, fill: Filler) -> int:
    """Day 1: 1-hour rollups only; day 2: 1-minute rollups only; day 3: raw samples (retention took the rest)."""
    series_id = fill.series(TEMP, "Float", first_seen=T0)
    day = timedelta(days=1)
    _rollups(db, "rollup_1h", series_id, T0, 24, 60, 100.0, 102.0)
    _rollups(db, "rollup_1m", series_id, T0 + day, 24 * 60, 2, 10.0, 12.0)
    db.connection.execute(
        "INSERT INTO samples (series_id, ts, value, quality, historical, received)"
        " SELECT ?, ?::TIMESTAMPTZ + to_seconds(i * 30), 1.0, 'good', false, now() FROM range(2880) AS r(i)",
        [series_id, T0 + 2 * day],
    )
    return series_id


def test_rollups_answer_where_retention_deleted_raw_samples(retained: int, history: History) -> None:
    buckets = history.aggregate(TEMP, T0, T0 + timedelta(days=3), bucket=timedelta(days=1))
    assert [b.values["count"] for b in buckets] == [24 * 60, 24 * 60 * 2, 2880]
    assert [b.values["avg"] for b in buckets] == [101.0, 11.0, 1.0]
    assert [(b.values["min"], b.values["max"]) for b in buckets] == [(100.0, 102.0), (10.0, 12.0), (1.0, 1.0)]
    assert [(b.values["first"], b.values["last"]) for b in buckets] == [(100.0, 102.0), (10.0, 12.0), (1.0, 1.0)]


def test_buckets_finer_than_a_rollup_read_raw_only(retained: int, history: History) -> None:
    buckets = history.aggregate(TEMP, T0 + timedelta(days=1), T0 + timedelta(days=3), bucket=timedelta(hours=12))
    assert [b.values["count"] for b in buckets] == [1440, 1440, 1440, 1440]  # 1-minute rollups on day 2
    fine = history.aggregate(
        TEMP, T0 + timedelta(days=2) - MINUTE, T0 + timedelta(days=2) + MINUTE, bucket=timedelta(seconds=30)
    )
    assert [b.values["count"] for b in fine] == [0, 0, 1, 1]  # 30 s is no multiple of a rollup: raw only


def test_hour_rollups_are_not_used_for_zones_off_the_utc_hour(retained: int, history: History) -> None:
    day1 = (T0 + timedelta(hours=6), T0 + timedelta(hours=8))
    berlin = history.aggregate(TEMP, *day1, bucket=timedelta(hours=1), tz=BERLIN)
    assert [b.values["count"] for b in berlin] == [60, 60]
    kolkata = history.aggregate(TEMP, *day1, bucket=timedelta(hours=1), tz=KOLKATA)
    # 1-hour rollups would straddle Kolkata's hours; there are no 1-minute ones that early
    assert all(b.values["count"] == 0 for b in kolkata)


@pytest.mark.parametrize(("rollup", "expected"), [(True, [4, 1]), (False, [2, 1])])
def test_a_minute_cut_by_retention_is_read_from_its_rollup_when_there_is_one(
    db: Database, fill: Filler, history: History, rollup: bool, expected: list[int]
) -> None:
    series_id = fill.series(TEMP, "Float", first_seen=T0)
    # retention kept only the second half of minute 0; its rollup (when maintenance ran) saw all four samples
    fill.samples(series_id, [(T0 + timedelta(seconds=s), 1.0) for s in (30, 45, 60)])
    if rollup:
        _rollups(db, "rollup_1m", series_id, T0, 1, 4, 1.0, 1.0)
    buckets = history.aggregate(TEMP, T0 - MINUTE, T0 + 2 * MINUTE, bucket=MINUTE, fill="none")
    assert [b.values["count"] for b in buckets] == expected


_ODD_ZONES = ["UTC", "Asia/Kathmandu", "Pacific/Chatham", "America/St_Johns", "Europe/Berlin"]
_ODD_WIDTHS = [timedelta(seconds=37), timedelta(minutes=7), timedelta(minutes=45), timedelta(hours=5)]


def _time_bucket(
    db: Database, series_id: int, tz: ZoneInfo, start: datetime, end: datetime, width: timedelta
) -> list[tuple[datetime, int, float]]:
    """(bucket start, count, min) as DuckDB's ``time_bucket`` in ``tz`` groups the samples."""
    rows = db.connection.execute(
        "SELECT time_bucket(to_microseconds($w), ts, $tz) AS b, count(*), min(value) FROM samples"
        " WHERE series_id = $sid AND ts >= $lo AND ts < $hi GROUP BY b ORDER BY b",
        {"w": width // timedelta(microseconds=1), "tz": tz.key, "sid": series_id, "lo": start, "hi": end},
    ).fetchall()
    return [(b.astimezone(tz), n, low) for b, n, low in rows]


@pytest.mark.parametrize("zone", _ODD_ZONES)
def test_buckets_numbered_in_a_fixed_offset_are_where_time_bucket_puts_them(
    fill: Filler, db: Database, history: History, zone: str
) -> None:
    """The integer-keyed SQL (one offset over the window) against DuckDB's own ``time_bucket`` in the zone."""
    tz = ZoneInfo(zone)
    series_id = fill.series(TEMP, "Float", first_seen=T0)
    fill.samples(series_id, [(T0 + timedelta(seconds=s), float(s)) for s in range(0, 86_400, 613)])
    start, end = T0 + timedelta(minutes=11, seconds=5), T0 + timedelta(hours=23, minutes=3)
    for width in _ODD_WIDTHS:
        assert fixed_offset(tz, start, end, width) == start.astimezone(tz).utcoffset()  # the keyed path answers
        buckets = history.aggregate(TEMP, start, end, bucket=width, tz=tz, fill="none")
        found = [(b.start, b.values["count"], b.values["min"]) for b in buckets]
        assert found == _time_bucket(db, series_id, tz, start, end, width), width
        assert all(b.end - b.start == width for b in buckets)
        assert len(found) > 3


def test_buckets_across_a_dst_change_are_not_numbered_in_one_offset(
    fill: Filler, db: Database, history: History
) -> None:
    """Clocks go back in Berlin on 25 October 2026: such a window is bucketed by ``time_bucket`` in the zone."""
    series_id = fill.series(TEMP, "Float", first_seen=T0)
    change = datetime(2026, 10, 25, 1, 0, tzinfo=UTC)  # 03:00 CEST becomes 02:00 CET
    fill.samples(series_id, [(change + timedelta(minutes=m), float(m)) for m in range(-180, 180, 5)])
    start, end = change - timedelta(hours=3), change + timedelta(hours=3)
    assert fixed_offset(BERLIN, start, end, 45 * MINUTE) is None
    assert fixed_offset(BERLIN, start, change, 45 * MINUTE) is None  # a bucket after the end crosses it
    buckets = history.aggregate(TEMP, start, end, bucket=45 * MINUTE, tz=BERLIN, fill="none")
    expected = _time_bucket(db, series_id, BERLIN, start, end, 45 * MINUTE)
    assert [(b.start, b.values["count"], b.values["min"]) for b in buckets] == expected
    assert sum(n for _, n, _ in expected) == 72
