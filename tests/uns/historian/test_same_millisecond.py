"""Several values of one series in one millisecond: every different one kept, in arrival order, everywhere.

A source that stamps its receive time (the MQTT-JSON bridge, a Node-RED flow) or a fast counter puts
several values in one millisecond; only a true re-delivery (same millisecond, value and quality) is
dropped.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import orjson
import pytest

from model.config import HistorianSection
from tests.fixtures.hub import RunningHub
from tests.fixtures.reading import rows
from tests.fixtures.running import running
from tests.fixtures.waiting import until
from tests.uns.historian.test_ingest import born_edge, count, hub_clients
from tests.uns.host.raw_edge import DOUBLE, metric, payload
from uns.clock import now_ms
from uns.connect import network_clients
from uns.historian.export import export_parquet
from uns.historian.queries import History
from uns.historian.rollups import Rollups
from uns.historian.rows import RowParser, SampleRow
from uns.historian.service import Historian
from uns.historian.store import Batch, Store
from uns.mqtt.client import MqttClient
from uns.mqtt.types import BrokerUrl
from uns.store.database import Database

NOW = 1_764_000_000_000
COUNT = "acme/dallas/bottling/line1/filler/data/Count"
BURST = [3.0, 1.0, 4.0, 1.5, 5.0, 9.0, 2.0, 6.0, 5.5, 3.5]
_parser = RowParser(max_future_ms=300_000)
_ids = itertools.count()


def sample(ts: int, value: float, *, quality: str = "good", historical: bool = False) -> SampleRow:
    body = {"value": value, "timestamp_ms": ts, "quality": quality, "datatype": "Double", "historical": historical}
    row = _parser.parse(COUNT, orjson.dumps(body), now_ms=NOW)
    assert isinstance(row, SampleRow)
    return row


def batch(*samples: SampleRow) -> Batch:
    return Batch(samples=list(samples), received_ms=[NOW] * len(samples))


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    with Database(path=tmp_path / "h.duckdb") as db:
        yield db


def stored(db: Database) -> list[tuple[int, int, float]]:
    found = db.connection.execute("SELECT epoch_ms(ts) - ?, seq, value FROM samples ORDER BY ts, seq", [NOW]).fetchall()
    return [(int(ts), int(seq), float(value)) for ts, seq, value in found]


def latest(db: Database) -> tuple[int, float]:
    found = db.connection.execute("SELECT epoch_ms(ts) - ?, value FROM latest", [NOW]).fetchall()
    assert len(found) == 1
    return int(found[0][0]), float(found[0][1])


def test_a_burst_in_one_millisecond_is_kept_in_arrival_order(database: Database) -> None:
    store = Store(database.connection)
    report = store.commit(batch(*(sample(NOW - 100, v) for v in BURST)))
    assert (report.inserted, report.duplicates) == (10, 0)
    assert stored(database) == [(-100, i, v) for i, v in enumerate(BURST)]
    assert latest(database) == (-100, 3.5)  # the last arrived of the newest millisecond
    # the burst goes on in the next batch, with a re-delivery of three of its values in between
    report = store.commit(
        batch(sample(NOW - 100, 7.0), *(sample(NOW - 100, v) for v in BURST[2:5]), sample(NOW - 100, 8.0))
    )
    assert (report.inserted, report.duplicates) == (2, 3)
    assert [v for _, _, v in stored(database)] == [*BURST, 7.0, 8.0]
    assert latest(database) == (-100, 8.0)
    # a restarted historian sees the whole burst re-delivered (QoS 1 after a crash): nothing new
    report = Store(database.connection).commit(batch(*(sample(NOW - 100, v) for v in [*BURST, 7.0, 8.0])))
    assert (report.inserted, report.duplicates) == (0, 12)
    assert latest(database) == (-100, 8.0)


def test_only_a_true_redelivery_is_dropped(database: Database) -> None:
    store = Store(database.connection)
    # same value twice in one ms inside a batch: indistinguishable from a re-delivery, stored once;
    # the same value with another quality is another sample
    report = store.commit(batch(sample(NOW, 1.0), sample(NOW, 1.0), sample(NOW, 1.0, quality="stale")))
    assert (report.inserted, report.duplicates) == (2, 1)
    # a replay window re-sends it as historical: still the same sample
    report = store.commit(batch(sample(NOW, 1.0, historical=True), sample(NOW, 2.0, historical=True)))
    assert (report.inserted, report.duplicates) == (1, 1)
    assert stored(database) == [(0, 0, 1.0), (0, 1, 1.0), (0, 2, 2.0)]
    assert database.connection.execute("SELECT quality::VARCHAR FROM samples ORDER BY seq").fetchall() == [
        ("good",),
        ("stale",),
        ("good",),
    ]


def test_queries_and_rollups_see_every_value_in_arrival_order(database: Database) -> None:
    store = Store(database.connection)
    store.commit(batch(*(sample(NOW - 100, v) for v in BURST)))
    store.commit(batch(sample(NOW - 100, 7.0), sample(NOW - 50, 0.5)))
    values = [*BURST, 7.0, 0.5]
    history = History(database)
    start = datetime.fromtimestamp((NOW - 1000) / 1000, UTC)
    end = datetime.fromtimestamp((NOW + 1000) / 1000, UTC)
    assert [p.value for p in history.raw(COUNT, start, end)] == values
    assert [v.value for v in history.last(COUNT)] == [0.5]
    minute = start.replace(second=0, microsecond=0)
    [bucket] = history.aggregate(COUNT, minute, minute + timedelta(minutes=1), bucket=timedelta(minutes=1))
    assert {k: bucket.values[k] for k in ("count", "first", "last")} == {"count": 12, "first": 3.0, "last": 0.5}
    # the 1-minute rollup counts each value and takes first and last by arrival in the millisecond
    store.commit(batch(sample(NOW - 100, 8.0)))
    Rollups().run(database.connection, now=end + timedelta(minutes=2))
    found = database.connection.execute("SELECT n, first, last, min, max FROM rollup_1m").fetchall()
    assert found == [(13, 3.0, 0.5, 0.5, 9.0)]
    cut = datetime.fromtimestamp((NOW - 99) / 1000, UTC)
    assert [p.value for p in history.raw(COUNT, start, cut)] == [*BURST, 7.0, 8.0]


def test_export_keeps_every_value_and_its_arrival_order(database: Database, tmp_path: Path) -> None:
    store = Store(database.connection)
    store.commit(batch(*(sample(NOW - 100, v) for v in BURST)))
    export_parquet(database.connection, tmp_path / "out", start=None, end=None)
    glob = str(tmp_path / "out" / "samples" / "**" / "*.parquet")
    with duckdb.connect() as lake:
        found = lake.execute(
            "SELECT seq, value FROM read_parquet(?, hive_partitioning = true) ORDER BY ts, seq", [glob]
        ).fetchall()
    assert found == list(enumerate(BURST))


def test_the_as_of_context_in_a_busy_millisecond_is_its_last_value(database: Database) -> None:
    store = Store(database.connection)
    store.commit(batch(*(sample(NOW - 100, v) for v in BURST)))
    other = _parser.parse(
        "acme/dallas/bottling/line1/filler/data/Temp",
        orjson.dumps({"value": 20.0, "timestamp_ms": NOW - 10, "datatype": "Double"}),
        now_ms=NOW,
    )
    assert isinstance(other, SampleRow)
    store.commit(Batch(samples=[other], received_ms=[NOW]))
    start = datetime.fromtimestamp((NOW - 1000) / 1000, UTC)
    rows_ = History(database).asof(
        "acme/dallas/bottling/line1/filler/data/Temp", start, start + timedelta(seconds=2), context=[COUNT]
    )
    assert [r.context[COUNT] for r in rows_] == [3.5]


# -- through real brokers ---------------------------------------------------------------------------


async def test_bursts_through_a_broker_are_all_stored_and_replays_once(tmp_path: Path, broker_url: str) -> None:
    enterprise = f"ms{next(_ids)}"
    section = HistorianSection(flush_interval_s=0.05, batch_rows=500, client_id=f"hist-{enterprise}")
    topic = f"{enterprise}/dallas/bottling/line1/filler/data/Count"
    base = now_ms() - 60_000
    sent = [(base + burst, burst * 10 + i) for burst in range(20) for i in range(10)]  # 20 bursts of 10 in one ms

    def body(ts: int, value: int, **extra: object) -> bytes:
        return orjson.dumps({"value": value, "timestamp_ms": ts, "datatype": "Int64", **extra})

    clients = network_clients(BrokerUrl.from_str(broker_url))
    url = BrokerUrl.from_str(broker_url)
    async with MqttClient(url=url, client_id=f"pub-{enterprise}") as pub:
        historian = Historian(settings=section, enterprise=enterprise, clients=clients, data_dir=tmp_path)
        async with running(historian):
            for ts, value in sent:
                await pub.publish(topic, body(ts, value), qos=1, retain=(ts, value) == sent[-1])
            await until(lambda: count(historian) == len(sent), what="every value of the bursts")
            order = "SELECT value::BIGINT FROM samples ORDER BY ts, seq"
            assert [v for (v,) in rows(historian, order)] == [v for _, v in sent]
            assert historian.stats.duplicates == 0
        # while it is away (its session queues), a replay window re-sends the last burst as historical
        for ts, value in sent[-10:]:
            await pub.publish(topic, body(ts, value, historical=True), qos=1)
        await pub.publish(topic, body(sent[-1][0], 999), qos=1)  # and one new value in the last burst's ms
        again = Historian(settings=section, enterprise=enterprise, clients=clients, data_dir=tmp_path)
        async with running(again):
            await until(lambda: count(again) == len(sent) + 1, what="the new value")
            # the embedded broker also sends the retained value again on the re-subscribe, Mosquitto does not
            await until(lambda: again.stats.duplicates >= 10, what="the replays counted as duplicates")
            assert count(again, "SELECT seq FROM samples WHERE value = 999") == 10  # after the burst's ten
            assert count(again, "SELECT value::BIGINT FROM latest") == 999
    # a new session gets the retained value (the burst's last) on subscribe: already stored
    fresh = section.model_copy(update={"client_id": f"hist2-{enterprise}"})
    third = Historian(settings=fresh, enterprise=enterprise, clients=clients, data_dir=tmp_path)
    async with running(third):
        await until(lambda: third.stats.duplicates == 1, what="the retained value counted as a duplicate")
        assert count(third) == len(sent) + 1


async def test_the_host_republishes_every_value_of_a_millisecond(tmp_path: Path, hub: RunningHub) -> None:
    section = HistorianSection(flush_interval_s=0.05, batch_rows=500, client_id=f"hist-{hub.enterprise}")
    historian = Historian(settings=section, enterprise=hub.enterprise, clients=hub_clients(hub), data_dir=tmp_path)
    async with running(historian), born_edge(hub) as edge:
        temp = f"{hub.cell}/data/Temp"
        of_temp = f"SELECT count(*) FROM samples JOIN series USING (series_id) WHERE topic = '{temp}'"  # noqa: S608
        await until(lambda: count(historian, of_temp) == 1, what="the birth's value")
        stamp = now_ms()
        for burst in (BURST[:5], BURST[5:]):  # two DDATA, and several values of Temp in each, one ms
            values = []
            for v in burst:
                m = metric("Temp", v, DOUBLE)
                m.timestamp = stamp
                values.append(m)
            edge.publish("DDATA", payload(values, edge.next_seq()), device="filler")
        await until(lambda: count(historian, of_temp) == 1 + len(BURST), what="every value of the millisecond")
        got = rows(
            historian,
            "SELECT value FROM samples JOIN series USING (series_id) WHERE topic = ? AND epoch_ms(ts) = ? ORDER BY seq",
            [temp, stamp],
        )
        assert [v for (v,) in got] == BURST
        assert rows(historian, "SELECT value FROM latest JOIN series USING (series_id) WHERE topic = ?", [temp]) == [
            (BURST[-1],)
        ]
