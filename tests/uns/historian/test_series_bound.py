"""The historian stores at most ``historian.max_series`` series: samples of a further series are dead-lettered.

A flood of new topics (a fuzzer, a runaway bridge) cannot grow the series table and its in-memory
index without bound; known series keep being stored, the bound holds across a restart, and the
running historian counts each refusal (``series_refused``, ``rejected_by_field``) and logs it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from model.config import HistorianSection
from tests.fixtures.broker import publisher, start_broker
from tests.fixtures.running import running
from tests.fixtures.waiting import until
from tests.uns.historian.test_ingest import envelope
from tests.uns.historian.test_store import NOW, SPEED, TEMP, batch, sample, stored
from uns.clock import now_ms
from uns.connect import local_clients
from uns.historian.service import Historian
from uns.historian.store import Store
from uns.mqtt.types import Message
from uns.store.database import Database

OTHER = "acme/dallas/bottling/line1/capper/data/Torque"
MORE = "acme/dallas/bottling/line1/capper/data/Speed"


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    with Database(path=tmp_path / "h.duckdb") as db:
        yield db


def _dead_letters(db: Database) -> list[tuple[str, str, str, dict[str, object]]]:
    rows = db.connection.execute("SELECT topic, field, reason, payload FROM dead_letters ORDER BY topic").fetchall()
    return [(topic, field, reason, orjson.loads(payload)) for topic, field, reason, payload in rows]


def test_samples_of_series_past_the_bound_are_dead_lettered_and_known_ones_stored(database: Database) -> None:
    store = Store(database.connection, max_series=2)
    report = store.commit(
        batch(sample(TEMP, NOW - 30, 20.0), sample(SPEED, NOW - 30, 5.0), sample(OTHER, NOW - 30, 1.5))
    )
    assert (report.inserted, report.new_series, report.rejected) == (2, 2, 1)
    assert store.series_count == 2
    assert store.series_refused == 1
    reason = "new series not stored: 0 series, historian.max_series=2"
    assert _dead_letters(database) == [
        (OTHER, "series", reason, {"value": 1.5, "timestamp_ms": NOW - 30, "quality": "good", "datatype": "Double"})
    ]
    # known series go on; new ones stay refused, the one known again in the same batch too
    report = store.commit(batch(sample(TEMP, NOW - 20, 21.0), sample(MORE, NOW - 20, 2.0), sample(MORE, NOW - 10, 3.0)))
    assert (report.inserted, report.rejected) == (1, 2)
    assert stored(database, TEMP) == [(NOW - 30, 20.0, False), (NOW - 20, 21.0, False)]
    assert stored(database, MORE) == []
    # a restarted historian reads the series it has and keeps the bound
    restarted = Store(database.connection, max_series=2)
    assert restarted.commit(batch(sample(OTHER, NOW - 5, 9.0))).rejected == 1
    assert restarted.commit(batch(sample(SPEED, NOW - 5, 6.0))).inserted == 1


def test_a_refused_sample_keeps_its_whole_envelope_whatever_its_value(database: Database) -> None:
    """Text, JSON and exact integers are dead-lettered as they came, with datatype and unit: a replay stores them."""
    store = Store(database.connection, max_series=1)
    big = 2**53 + 1
    store.commit(
        batch(
            sample(TEMP, NOW - 30, 20.0),
            sample(OTHER, NOW - 30, "jammed", datatype="String"),
            sample(MORE, NOW - 30, big, datatype="Int64", unit="pcs"),
            sample(SPEED, NOW - 30, {"a": [1, 2]}, datatype="Template"),
        )
    )
    payloads = {topic: payload for topic, _, _, payload in _dead_letters(database)}
    base = {"timestamp_ms": NOW - 30, "quality": "good"}
    assert payloads == {
        OTHER: {"value": "jammed", **base, "datatype": "String"},
        MORE: {"value": big, **base, "datatype": "Int64", "unit": "pcs"},
        SPEED: {"value": {"a": [1, 2]}, **base, "datatype": "Template"},
    }


async def test_the_running_historian_counts_and_logs_series_past_its_bound(tmp_path: Path) -> None:
    section = HistorianSection(flush_interval_s=0.05, batch_rows=500, max_series=3)
    async with start_broker(tmp_path) as broker:
        historian = Historian(settings=section, enterprise="acme", clients=local_clients(broker), data_dir=tmp_path)
        async with running(historian), publisher(broker.url) as pub:
            now = now_ms()
            await pub.publish_many(
                [Message(f"acme/dallas/bottling/line1/c{i}/data/Temp", envelope(float(i), now - 100)) for i in range(5)]
            )
            await until(
                lambda: historian.health()["rejected_by_field"] == {"series": 2}, what="2 series refused, counted"
            )
            health = historian.health()
            assert (health["series"], health["stored"], health["series_refused"]) == (3, 3, 2)
            # the known series keep being stored
            await pub.publish("acme/dallas/bottling/line1/c0/data/Temp", envelope(9.0, now - 50))
            await until(lambda: historian.health()["stored"] == 4, what="a known series stored")
