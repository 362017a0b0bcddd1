"""The alarm history's reader: what the web's /api/alarms/history answers with, straight from the store's file."""

from __future__ import annotations

from pathlib import Path

from uns.rules.alarms import Alarm
from uns.rules.history import MAX_HISTORY, AlarmHistory, insert_alarms
from uns.store.database import Database

_LINE = "acme/dallas/packaging/line1"


def _alarm(path: str, name: str, raised_ms: int, **changes: object) -> Alarm:
    fields: dict[str, object] = {
        "path": path, "name": name, "rule": f"rule-{name}", "priority": 500, "message": f"{name} on {path}",
        "state": "active", "acknowledged": False, "raised_ms": raised_ms, "value": {"temp": 91.5},
    }  # fmt: skip
    fields.update(changes)
    return Alarm(**fields)  # type: ignore[arg-type]


def test_reads_newest_first_at_or_under_a_path_within_the_limit(tmp_path: Path) -> None:
    with Database(path=tmp_path / "hub.duckdb") as db:
        insert_alarms(
            db.connection,
            [
                _alarm(_LINE, "hot", 1_000),
                _alarm(f"{_LINE}/filler", "jam", 2_000, value=None),
                _alarm(f"{_LINE}0/filler", "jam", 3_000),  # line10: a sibling whose name starts the same
                _alarm(_LINE, "hot", 1_000, state="normal", acknowledged=True, cleared_ms=4_000, acked_ms=4_500,
                       acked_by="ann", ack_comment="fan fixed"),
            ],
        )  # fmt: skip
        history = AlarmHistory(db)
        rows = history.read(path=_LINE)
        assert [(r["path"], r["name"], r["state"], r["timestamp_ms"]) for r in rows] == [
            (_LINE, "hot", "normal", 4_500),
            (f"{_LINE}/filler", "jam", "active", 2_000),
            (_LINE, "hot", "active", 1_000),
        ]
        assert (rows[0]["value"], rows[0]["acked_by"], rows[0]["ack_comment"], rows[0]["cleared_ms"]) == (
            {"temp": 91.5},
            "ann",
            "fan fixed",
            4_000,
        )
        assert rows[1]["value"] is None
        assert [r["path"] for r in history.read()] == [_LINE, f"{_LINE}0/filler", f"{_LINE}/filler", _LINE]
        assert [r["timestamp_ms"] for r in history.read(limit=2)] == [4_500, 3_000]
        assert [r["timestamp_ms"] for r in history.read(limit=0)] == [4_500]  # at least one
        assert history.read(path="acme/austin") == []


def test_a_limit_above_the_most_is_cut_to_it(tmp_path: Path) -> None:
    with Database(path=tmp_path / "hub.duckdb") as db:
        db.connection.execute(  # one statement: executemany of 10k alarms takes half a minute
            "INSERT INTO alarm_history (ts, path, name, rule, state, acknowledged, priority, message, raised)"
            " SELECT to_timestamp(i), ?, 'a' || i, 'r', 'active', false, 500, 'm', to_timestamp(i) FROM range(?) t(i)",
            [_LINE, MAX_HISTORY + 5],
        )
        assert len(AlarmHistory(db).read(limit=MAX_HISTORY * 10)) == MAX_HISTORY
