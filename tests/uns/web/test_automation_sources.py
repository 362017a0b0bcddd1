"""The replay's past messages: the historian's samples (History) and MES events (its event log) merged in time order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from tests.uns.historian.history_data import LINE, Filler, open_database
from uns.historian.event_log import MesEventLog
from uns.historian.queries import History
from uns.web.automation_sources import past_messages

_T0 = datetime(2026, 5, 4, 6, tzinfo=UTC)
_TEMP = f"{LINE}/filler/data/Temp"
_STATE = f"{LINE}/filler/mes/machine_state"


def _ms(minutes: int) -> int:
    return int((_T0 + timedelta(minutes=minutes)).timestamp() * 1000)


def test_samples_and_mes_events_come_merged_oldest_first(tmp_path: Path) -> None:
    database = open_database(tmp_path / "hub.duckdb")
    try:
        fill = Filler(database.connection)
        temp = fill.series(_TEMP, "Float", first_seen=_T0 - timedelta(days=1))
        fill.samples(temp, [(_T0 + timedelta(minutes=m), 70.0 + m) for m in (1, 3, 90)])
        fill.mes_event(_STATE, _T0 + timedelta(minutes=2), {"state": "running"})
        fill.mes_event(f"{LINE}/mes/work_order", _T0 + timedelta(minutes=4), {"order_id": "WO-1"})  # not asked for
        messages, cut = past_messages(
            History(database), MesEventLog(database), [f"{LINE}/filler/#"], _T0, _T0 + timedelta(hours=1)
        )
    finally:
        database.close()
    assert cut is False
    assert [(ms, topic) for ms, topic, _ in messages] == [(_ms(1), _TEMP), (_ms(2), _STATE), (_ms(3), _TEMP)]
    first, event = orjson.loads(messages[0][2]), orjson.loads(messages[1][2])
    assert (first["value"], first["timestamp_ms"], first["quality"], first["datatype"]) == (
        71.0,
        _ms(1),
        "good",
        "Float",
    )
    assert event == {"state": "running"}


def test_a_replayed_sample_is_the_envelope_it_came_in_as(tmp_path: Path) -> None:
    """Unit, the unbound and historical flags and a missing datatype come back as sent (the one stored envelope)."""
    database = open_database(tmp_path / "hub.duckdb")
    untyped = f"{LINE}/filler/data/Note"
    try:
        fill = Filler(database.connection)
        temp = fill.series(_TEMP, "Float", unit="degC", first_seen=_T0 - timedelta(days=1))
        fill.samples(temp, [(_T0 + timedelta(minutes=1), 71.0)])
        database.connection.execute("UPDATE samples SET historical = true WHERE series_id = ?", [temp])
        database.connection.execute("UPDATE series SET unbound = true WHERE series_id = ?", [temp])
        fill.samples(fill.series(untyped, None, first_seen=_T0), [(_T0 + timedelta(minutes=2), None)])
        messages, _ = past_messages(
            History(database), MesEventLog(database), [f"{LINE}/filler/#"], _T0, _T0 + timedelta(hours=1)
        )
    finally:
        database.close()
    assert [orjson.loads(payload) for _, _, payload in messages] == [
        {"value": 71.0, "timestamp_ms": _ms(1), "quality": "good", "datatype": "Float", "unit": "degC",
         "unbound": True, "historical": True},
        {"value": None, "timestamp_ms": _ms(2), "quality": "good"},
    ]  # fmt: skip
