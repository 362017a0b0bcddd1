"""The alarm states (ISA-18.2): active, acknowledged, cleared unacknowledged, normal; who and when."""

from __future__ import annotations

import pytest

from uns.rules.alarms import Alarm, AlarmBook, AlarmError

PATH = "acme/dallas/pack/line1/filler"


def _raise(book: AlarmBook, now_ms: int, priority: int = 500) -> Alarm | None:
    return book.raise_alarm(
        path=PATH, name="faulted", rule="r", priority=priority, message="down", value=180000, now_ms=now_ms
    )


def test_raise_ack_clear_goes_normal_with_who_and_when() -> None:
    book = AlarmBook()
    raised = _raise(book, 1000)
    assert raised is not None
    assert (raised.state, raised.acknowledged, raised.raised_ms) == ("active", False, 1000)
    assert raised.topic == f"{PATH}/alarm/faulted"
    assert _raise(book, 1500) is None  # already active
    acked = book.acknowledge(path=PATH, name="faulted", user="ann", now_ms=2000, comment="on it")
    assert (acked.state, acked.acknowledged, acked.acked_by, acked.acked_ms, acked.ack_comment) == (
        "active",
        True,
        "ann",
        2000,
        "on it",
    )
    cleared = book.clear(path=PATH, name="faulted", now_ms=3000)
    assert cleared is not None
    assert (cleared.state, cleared.cleared_ms) == ("normal", 3000)
    assert len(book) == 0
    assert cleared.to_json()["timestamp_ms"] == 3000


def test_clear_before_ack_returns_to_normal_unacknowledged_until_acked() -> None:
    book = AlarmBook()
    _raise(book, 1000)
    cleared = book.clear(path=PATH, name="faulted", now_ms=2000)
    assert cleared is not None
    assert (cleared.state, cleared.acknowledged) == ("cleared", False)
    assert [a.state for a in book.listed()] == ["cleared"]
    assert book.clear(path=PATH, name="faulted", now_ms=2500) is None
    acked = book.acknowledge(path=PATH, name="faulted", user="bob", now_ms=3000)
    assert (acked.state, acked.acked_by) == ("normal", "bob")
    assert book.listed() == []


def test_raise_again_after_clear_is_a_new_unacknowledged_occurrence() -> None:
    book = AlarmBook()
    _raise(book, 1000)
    book.clear(path=PATH, name="faulted", now_ms=2000)
    again = _raise(book, 3000)
    assert again is not None
    assert (again.state, again.acknowledged, again.raised_ms, again.cleared_ms) == ("active", False, 3000, None)


def test_acknowledge_unknown_or_twice_names_the_alarm() -> None:
    book = AlarmBook()
    with pytest.raises(AlarmError, match=f"{PATH}/alarm/faulted: no such alarm"):
        book.acknowledge(path=PATH, name="faulted", user="ann", now_ms=1)
    _raise(book, 1000)
    book.acknowledge(path=PATH, name="faulted", user="ann", now_ms=2)
    with pytest.raises(AlarmError, match="acknowledged already by ann"):
        book.acknowledge(path=PATH, name="faulted", user="bob", now_ms=3)


def test_list_order_active_first_then_priority_and_json_round_trip() -> None:
    book = AlarmBook()
    low = book.raise_alarm(path=PATH, name="low", rule="r", priority=100, message="", value=None, now_ms=1)
    high = book.raise_alarm(path=PATH, name="high", rule="r", priority=900, message="", value=None, now_ms=2)
    gone = book.raise_alarm(path=PATH, name="gone", rule="r", priority=1000, message="", value=None, now_ms=3)
    assert low is not None
    assert high is not None
    assert gone is not None
    book.clear(path=PATH, name="gone", now_ms=4)
    assert [a.name for a in book.listed()] == ["high", "low", "gone"]
    restored = AlarmBook()
    restored.restore(a for a in (Alarm.from_json(x.to_json()) for x in book.listed()) if a is not None)
    assert restored.listed() == book.listed()
    assert Alarm.from_json({"path": PATH}) is None
