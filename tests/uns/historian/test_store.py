"""The store on a real DuckDB file: each sample once, whatever order and how often it arrives."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import orjson
import pytest

from model.config import HistorianSection
from uns.historian.retention import apply_retention
from uns.historian.rollups import Rollups
from uns.historian.rows import EventRow, Rejected, RowParser, SampleRow
from uns.historian.store import Batch, Store
from uns.store.database import Database

NOW = 1_764_000_000_000
TEMP = "acme/dallas/bottling/line1/filler/data/Temp"
_LINE1 = "acme/dallas/bottling/line1"
_STATE = f"{_LINE1}/mes/machine_state"
SPEED = "acme/dallas/bottling/line1/filler/data/Speed"
QUALITIES = ("good", "stale")
_parser = RowParser(max_future_ms=300_000)


def sample(topic: str, ts: int, value: object, *, datatype: str = "Double", **extra: object) -> SampleRow:
    body = {"value": value, "timestamp_ms": ts, "quality": "good", "datatype": datatype, **extra}
    row = _parser.parse(topic, orjson.dumps(body), now_ms=NOW)
    assert isinstance(row, SampleRow)
    return row


def batch(*rows: SampleRow | EventRow | Rejected) -> Batch:
    out = Batch()
    for row in rows:
        if isinstance(row, SampleRow):
            out.samples.append(row)
            out.received_ms.append(NOW)
        elif isinstance(row, EventRow):
            out.events.append(row)
        else:
            out.rejected.append(row)
    return out


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    with Database(path=tmp_path / "h.duckdb") as db:
        yield db


def stored(db: Database, topic: str) -> list[tuple[int, float | None, bool]]:
    rows = db.connection.execute(
        "SELECT epoch_ms(ts), value, historical FROM samples JOIN series USING (series_id) WHERE topic = ? ORDER BY ts",
        [topic],
    ).fetchall()
    return [(int(ts), value, bool(historical)) for ts, value, historical in rows]


def test_live_samples_are_appended_and_latest_follows(database: Database) -> None:
    store = Store(database.connection)
    report = store.commit(
        batch(sample(TEMP, NOW - 30, 20.0), sample(TEMP, NOW - 20, 21.0), sample(SPEED, NOW - 20, 5, datatype="Int32"))
    )
    assert (report.inserted, report.duplicates, report.new_series) == (3, 0, 2)
    store.commit(batch(sample(TEMP, NOW - 10, 22.0)))
    assert stored(database, TEMP) == [(NOW - 30, 20.0, False), (NOW - 20, 21.0, False), (NOW - 10, 22.0, False)]
    latest = database.connection.execute(
        "SELECT topic, epoch_ms(ts), value FROM latest JOIN series USING (series_id) ORDER BY topic"
    ).fetchall()
    assert latest == [(SPEED, NOW - 20, 5.0), (TEMP, NOW - 10, 22.0)]


def test_redelivered_and_replayed_samples_land_once(database: Database) -> None:
    store = Store(database.connection)
    first = batch(*(sample(TEMP, NOW - 100 + i, float(i)) for i in range(50)))
    store.commit(first)
    # a broker re-delivery of the whole batch, plus a duplicate inside one batch, plus new ones
    again = batch(*first.samples, sample(TEMP, NOW - 10, 99.0), sample(TEMP, NOW - 10, 99.0))
    report = store.commit(again)
    assert (report.inserted, report.duplicates) == (1, 51)
    assert len(stored(database, TEMP)) == 51


def test_dedupe_survives_a_restart_of_the_store(database: Database) -> None:
    Store(database.connection).commit(batch(sample(TEMP, NOW - 5, 1.0), sample(TEMP, NOW - 4, 2.0)))
    reopened = Store(database.connection)  # what a restarted historian builds from the file
    report = reopened.commit(batch(sample(TEMP, NOW - 4, 2.0), sample(TEMP, NOW - 3, 3.0)))  # retained replay + new
    assert (report.inserted, report.duplicates) == (1, 1)


def test_historical_backfill_lands_in_timestamp_order_marked_and_late(database: Database) -> None:
    store = Store(database.connection)
    store.commit(batch(sample(TEMP, NOW - 1000, 1.0), sample(TEMP, NOW, 5.0)))
    backfill = [sample(TEMP, NOW - 1000 + i * 200, float(i), historical=True) for i in (3, 1, 4, 2)]
    report = store.commit(batch(*backfill))
    assert report.inserted == 4
    assert report.oldest_late_ms == NOW - 800  # rollups recompute from here
    assert stored(database, TEMP) == [
        (NOW - 1000, 1.0, False),
        (NOW - 800, 1.0, True),
        (NOW - 600, 2.0, True),
        (NOW - 400, 3.0, True),
        (NOW - 200, 4.0, True),
        (NOW, 5.0, False),
    ]
    # physical order of the backfill rows too: the batch was sorted before the insert
    order = database.connection.execute("SELECT value FROM samples WHERE historical").fetchall()
    assert [v for (v,) in order] == [1.0, 2.0, 3.0, 4.0]
    # and the latest value is still the live one
    assert database.connection.execute("SELECT value FROM latest").fetchall() == [(5.0,)]


def test_events_dedupe_and_dead_letters_are_stored(database: Database) -> None:
    store = Store(database.connection)
    event = _parser.parse("acme/dallas/bottling/line1/mes/work_order", b'{"id":"WO-1","timestamp_ms":1}', now_ms=NOW)
    bad = _parser.parse(TEMP, b'{"value":"x","timestamp_ms":1,"datatype":"Double"}', now_ms=NOW)
    assert isinstance(event, EventRow)
    assert isinstance(bad, Rejected)
    first = store.commit(batch(event, bad, sample(TEMP, NOW, 1.0)))
    second = store.commit(batch(event))
    assert (first.events, first.rejected, first.inserted, second.events, second.duplicate_events) == (1, 1, 1, 0, 1)
    assert database.connection.execute("SELECT event, body->>'id' FROM mes_events").fetchall() == [
        ("work_order", "WO-1")
    ]
    assert database.connection.execute("SELECT topic, field, reason FROM dead_letters").fetchall() == [
        (TEMP, "value", "a string, but the datatype is Double")
    ]


def test_a_row_the_database_refuses_is_isolated_and_the_rest_kept(database: Database) -> None:
    store = Store(database.connection)
    good = [sample(TEMP, NOW - 10 + i, float(i)) for i in range(7)]
    broken = dataclasses.replace(good[0], topic=SPEED, value_json="{not json")  # DuckDB's JSON type refuses it
    report = store.commit_isolating(batch(*good[:3], broken, *good[3:]))
    assert report.inserted == 7
    assert len(stored(database, TEMP)) == 7
    letters = database.connection.execute("SELECT topic, field, reason FROM dead_letters").fetchall()
    assert len(letters) == 1
    assert letters[0][:2] == (SPEED, "database")
    assert "the database refused it" in letters[0][2]


def test_a_rolled_back_batch_leaves_no_series_change_only_in_memory(database: Database) -> None:
    store = Store(database.connection)
    store.commit(batch(sample(TEMP, NOW - 100, 1.0)))
    relabelled = sample(TEMP, NOW - 5, 2.0, unit="degC")
    broken = dataclasses.replace(sample(SPEED, NOW - 4, 3.0), value_json="{not json")
    # the whole batch is refused and rolled back, then committed in halves: the unit change must still be written
    report = store.commit_isolating(batch(relabelled, broken))
    assert report.inserted == 1
    units = database.connection.execute("SELECT topic, unit FROM series ORDER BY topic").fetchall()
    assert units == [(TEMP, "degC")]
    assert stored(database, TEMP) == [(NOW - 100, 1.0, False), (NOW - 5, 2.0, False)]


def test_exact_integers_beyond_double_precision_are_kept(database: Database) -> None:
    store = Store(database.connection)
    store.commit(batch(sample(SPEED, NOW, 2**63 - 1, datatype="Int64")))
    assert database.connection.execute("SELECT value_text FROM samples").fetchall() == [(str(2**63 - 1),)]


def test_an_older_sample_never_replaces_the_latest_one(database: Database) -> None:
    def latest() -> list[tuple[object, ...]]:
        return database.connection.execute("SELECT epoch_ms(ts), value, quality::VARCHAR FROM latest").fetchall()

    store = Store(database.connection)
    # out of order inside one batch, then across batches (a live sample delivered late, not backfill)
    store.commit(batch(sample(TEMP, NOW - 100, 2.0), sample(TEMP, NOW - 200, 1.0)))
    store.commit(batch(sample(TEMP, NOW - 150, 1.5)))
    assert latest() == [(NOW - 100, 2.0, "good")]
    # the machine died: its stale value, then a late good one from before the death
    store.commit(batch(sample(TEMP, NOW - 50, 2.0, quality="stale")))
    store.commit(batch(sample(TEMP, NOW - 60, 3.0)))
    assert latest() == [(NOW - 50, 2.0, "stale")]
    assert len(stored(database, TEMP)) == 5  # every sample is history
    # retention trims raw samples but never the latest value; after a restart an older sample still
    # must not replace it (the newest timestamps come from the latest values, not the raw ones)
    later = datetime.fromtimestamp(NOW / 1000, UTC) + timedelta(days=40)
    Rollups().run(database.connection, now=later)
    apply_retention(database.connection, HistorianSection(raw_retention_days=30), now=later)
    assert stored(database, TEMP) == []
    restarted = Store(database.connection)
    restarted.commit(batch(sample(TEMP, NOW - 70, 4.0)))
    assert latest() == [(NOW - 50, 2.0, "stale")]
    assert stored(database, TEMP) == [(NOW - 70, 4.0, False)]


def test_latest_rows_are_inserted_for_new_series_and_updated_in_place_for_known_ones(tmp_path: Path) -> None:
    """Every column of a known series' latest row is replaced; its key stays one row, across a reopened file."""
    newest = (
        "SELECT * EXCLUDE (rank) FROM (SELECT *, row_number() OVER (PARTITION BY series_id ORDER BY ts DESC, seq DESC)"
        " AS rank FROM samples) WHERE rank = 1 ORDER BY series_id"
    )
    with Database(path=tmp_path / "h.duckdb") as db:
        store = Store(db.connection)
        # a new series' first sample and a later one in one batch: the later one is its first latest row
        store.commit(batch(sample(TEMP, NOW - 30, 1.0), sample(TEMP, NOW - 20, 2.0)))
        # a known series updated and a new one inserted in one commit; every column moves
        store.commit(
            batch(
                sample(TEMP, NOW - 10, [1, 2], datatype="Template", quality="stale", historical=True),
                sample(SPEED, NOW - 10, "fast", datatype="String"),
            )
        )
        assert db.connection.execute("SELECT * FROM latest ORDER BY series_id").fetchall() == (
            db.connection.execute(newest).fetchall()
        )
    with Database(path=tmp_path / "h.duckdb") as db:  # checkpointed and reopened: the store knows both rows
        store = Store(db.connection)
        store.commit(batch(sample(TEMP, NOW, 3.0), sample(SPEED, NOW, "slow", datatype="String")))
        latest = db.connection.execute("SELECT * FROM latest ORDER BY series_id").fetchall()
        assert latest == db.connection.execute(newest).fetchall()
        assert [(row[2], row[3]) for row in latest] == [(3.0, None), (None, "slow")]


@pytest.mark.parametrize("seed", range(1, 7))
def test_samples_and_latest_follow_every_arrival_order_and_failed_commit(database: Database, seed: int) -> None:
    """Random batches: out of order, same millisecond, re-deliveries, some refused whole (rolled back).

    The model: per series and millisecond, each new (value, quality) once, in arrival order (``seq``);
    ``latest`` is the last arrived of the newest millisecond. A refused batch leaves no trace, in the
    file or in what the store remembers (checked after every batch).
    """
    rng = random.Random(seed)
    store = Store(database.connection)
    model: dict[str, dict[int, list[tuple[float, str]]]] = {TEMP: {}, SPEED: {}}
    for _ in range(60):
        rows = [
            (rng.choice((TEMP, SPEED)), NOW + rng.randint(-5, 5), float(rng.randint(0, 2)), rng.choice(QUALITIES))
            for _ in range(rng.randint(1, 8))
        ]
        samples = [sample(topic, ts, value, quality=quality) for topic, ts, value, quality in rows]
        if rng.random() < 0.3:  # a row DuckDB refuses: a sample, or an event (after the samples' inserts)
            broken: SampleRow | EventRow = dataclasses.replace(samples[0], value_json="{not json")
            if rng.random() < 0.5:
                broken = EventRow(rng.getrandbits(63), _STATE, _LINE1, "machine_state", NOW, "{not json")
            with pytest.raises(duckdb.Error):
                store.commit(batch(*samples, broken))
        else:
            store.commit(batch(*samples))
            for topic, ts, value, quality in rows:
                seen = model[topic].setdefault(ts, [])
                if (value, quality) not in seen:
                    seen.append((value, quality))
        assert _samples_and_latest(database) == _modelled(model)


def _samples_and_latest(database: Database) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    joined = "JOIN series USING (series_id)"
    samples = database.connection.execute(
        f"SELECT topic, epoch_ms(ts), seq, value, quality::VARCHAR FROM samples {joined} ORDER BY topic, ts, seq"  # noqa: S608
    ).fetchall()
    latest = database.connection.execute(
        f"SELECT topic, epoch_ms(ts), value, quality::VARCHAR FROM latest {joined} ORDER BY topic"  # noqa: S608
    ).fetchall()
    return samples, latest


def _modelled(
    model: dict[str, dict[int, list[tuple[float, str]]]],
) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    samples: list[tuple[object, ...]] = [
        (topic, ts, seq, value, quality)
        for topic in sorted(model)
        for ts in sorted(model[topic])
        for seq, (value, quality) in enumerate(model[topic][ts])
    ]
    latest: list[tuple[object, ...]] = [
        (topic, max(model[topic]), *model[topic][max(model[topic])][-1]) for topic in sorted(model) if model[topic]
    ]
    return samples, latest
