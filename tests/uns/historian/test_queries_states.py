from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.uns.historian.history_data import LINE, Filler
from uns.errors import BadArgument, UnknownSeries
from uns.historian.queries import History
from uns.historian.query_types import StateDuration
from uns.store.database import Database

DAY = datetime(2026, 11, 24, tzinfo=UTC)
H = timedelta(hours=1)
FILLER = f"{LINE}/filler/data/State"
CAPPER = f"{LINE}/capper/data/State"


def _history(db: Database, now: datetime) -> History:
    return History(db, clock=lambda: now)


@pytest.fixture
def filler_day(fill: Filler) -> None:
    """Idle since 22:00 the day before; running 06:00, down 10:00, running 10:30, idle 14:00, running 22:00."""
    series_id = fill.series(FILLER, "String", first_seen=DAY - timedelta(days=1))
    transitions = [(-2, "idle"), (6, "running"), (10, "down"), (10.5, "running"), (14, "idle"), (22, "running")]
    fill.samples(series_id, [(DAY + hours * H, state) for hours, state in transitions])


def _by_value(durations: list[StateDuration]) -> dict[object, tuple[float, int]]:
    return {item.value: (item.seconds, item.entries) for item in durations}


def test_a_day_of_states_adds_up_to_exact_seconds(db: Database, filler_day: None) -> None:
    durations = _history(db, DAY + 48 * H).state_durations(FILLER, DAY, DAY + 24 * H)
    assert _by_value(durations) == {
        "idle": (14 * 3600.0, 2),  # 00:00-06:00 (carried in from before the day) and 14:00-22:00
        "running": (9.5 * 3600.0, 3),  # 06:00-10:00, 10:30-14:00, 22:00-24:00
        "down": (1800.0, 1),
    }
    assert [item.value for item in durations] == ["idle", "running", "down"]  # longest first
    assert sum(item.seconds for item in durations) == 24 * 3600.0


def test_the_last_state_runs_until_now(db: Database, filler_day: None) -> None:
    durations = _history(db, DAY + 12 * H).state_durations(FILLER, DAY, DAY + 24 * H)
    assert _by_value(durations) == {"idle": (6 * 3600.0, 1), "running": (5.5 * 3600.0, 2), "down": (1800.0, 1)}
    assert _history(db, DAY - H).state_durations(FILLER, DAY, DAY + 24 * H) == []


def test_a_window_inside_a_state_is_clipped(db: Database, filler_day: None) -> None:
    durations = _history(db, DAY + 48 * H).state_durations(FILLER, DAY + 7 * H, DAY + 8 * H)
    assert _by_value(durations) == {"running": (3600.0, 1)}


def test_a_filter_covers_a_whole_line_and_skips_non_state_series(db: Database, fill: Filler, filler_day: None) -> None:
    capper = fill.series(CAPPER, "Int32", first_seen=DAY)
    # a repeated value continues its run: it is no new entry
    fill.samples(capper, [(DAY + 3 * H, 1), (DAY + 4 * H, 1), (DAY + 5 * H, 2), (DAY + 20 * H, 1)])
    temp = fill.series(f"{LINE}/capper/data/Temp", "Float", first_seen=DAY)
    fill.samples(temp, [(DAY, 20.0)])
    running = fill.series(f"{LINE}/labeler/data/Running", "Boolean", first_seen=DAY)
    fill.samples(running, [(DAY, True), (DAY + 18 * H, False)])

    durations = _history(db, DAY + 48 * H).state_durations(f"{LINE}/+/data/#", DAY, DAY + 24 * H)

    topics = {item.topic for item in durations}
    assert topics == {FILLER, CAPPER, f"{LINE}/labeler/data/Running"}
    capper_states = _by_value([item for item in durations if item.topic == CAPPER])
    assert capper_states == {1: (6 * 3600.0, 2), 2: (15 * 3600.0, 1)}  # before 03:00 it has no state
    labeler = _by_value([item for item in durations if item.topic.endswith("Running")])
    assert labeler == {True: (18 * 3600.0, 1), False: (6 * 3600.0, 1)}
    assert [item.topic for item in durations] == sorted(item.topic for item in durations)


def test_non_state_and_unknown_series_are_refused(db: Database, fill: Filler) -> None:
    temp = fill.series(f"{LINE}/filler/data/Temp", "Float", first_seen=DAY)
    fill.samples(temp, [(DAY, 20.0)])
    history = _history(db, DAY + 48 * H)
    with pytest.raises(BadArgument, match="Float") as caught:
        history.state_durations(f"{LINE}/filler/data/Temp", DAY, DAY + H)
    assert caught.value.field == "match"
    with pytest.raises(UnknownSeries, match="state-like"):
        history.state_durations(f"{LINE}/+/data/Temp", DAY, DAY + H)
    with pytest.raises(
        UnknownSeries,
        match=f"matching {LINE}/filler/data/Stat; list them: uns query series, or GET /api/history/series",
    ):
        history.state_durations(f"{LINE}/filler/data/Stat", DAY, DAY + H)
