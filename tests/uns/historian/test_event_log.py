"""The historian's MES event log reader: events by topic filter and half-open window, oldest first, bounded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from tests.exports import assert_all_is_honest
from tests.uns.historian.history_data import LINE, Filler
from uns.errors import BadArgument
from uns.historian.event_log import MesEventLog
from uns.store.database import Database

_T0 = datetime(2026, 3, 1, 8, tzinfo=UTC)
_ORDER = f"{LINE}/mes/work_order"
_STATE = f"{LINE}/filler/mes/machine_state"


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def test_reads_the_events_on_the_filters_in_the_window_oldest_first(db: Database, fill: Filler) -> None:
    fill.mes_event(_STATE, _T0 + timedelta(minutes=2), {"state": "running"})
    fill.mes_event(_ORDER, _T0 + timedelta(minutes=1), {"order_id": "WO-1", "action": "start"})
    fill.mes_event(_STATE, _T0 - timedelta(seconds=1), {"state": "idle"})  # before the window
    fill.mes_event(_STATE, _T0 + timedelta(hours=1), {"state": "down"})  # at its end: left out
    fill.mes_event("acme/austin/x/line1/mes/work_order", _T0 + timedelta(minutes=3), {"order_id": "WO-9"})
    log = MesEventLog(db)
    got = log.read([f"{LINE}/#"], _T0, _T0 + timedelta(hours=1), limit=100)
    assert [(ms, topic, orjson.loads(body)) for ms, topic, body in got] == [
        (_ms(_T0 + timedelta(minutes=1)), _ORDER, {"order_id": "WO-1", "action": "start"}),
        (_ms(_T0 + timedelta(minutes=2)), _STATE, {"state": "running"}),
    ]
    exact = log.read([_ORDER, "acme/+/x/line1/mes/#"], _T0, _T0 + timedelta(hours=1), limit=100)
    assert [topic for _, topic, _ in exact] == [_ORDER, "acme/austin/x/line1/mes/work_order"]
    assert [topic for _, topic, _ in log.read(["#"], _T0, _T0 + timedelta(hours=2), limit=2)] == [_ORDER, _STATE]
    assert log.read([f"{LINE}/data/#"], _T0, _T0 + timedelta(hours=1), limit=100) == []


def test_a_malformed_filter_is_named() -> None:
    with pytest.raises(BadArgument, match="match: topic filter 'a/#/b': '#' must be the whole last level"):
        MesEventLog(Database(path=":memory:")).read(["a/#/b"], _T0, _T0, limit=1)


def test_all_is_honest() -> None:
    assert_all_is_honest("uns.historian.event_log")
