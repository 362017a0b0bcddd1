"""Counter baselines: only those that moved are written with a commit (an idle hub rewrote all at every commit)."""

from __future__ import annotations

from pathlib import Path

import orjson

from model.config import DeriveRule, MesSection
from tests.fixtures.waiting import until
from tests.uns.mes.intake_hub import intake_hub
from uns.clock import now_ms
from uns.mes.baselines import SavedBaselines
from uns.mes.derive import CounterBaseline
from uns.store.database import Database

CELL = "acme/dallas/bottling/line1/filler"
OTHER = "acme/dallas/bottling/line1/capper"
SECTION = MesSection(
    kpi_interval_s=60,
    derive=[DeriveRule(match="acme/+/+/+/+/data/GoodCount", kind="counter", counts="good")],
)


def _envelope(value: int, ts: int) -> bytes:
    return orjson.dumps({"value": value, "timestamp_ms": ts, "quality": "good", "datatype": "UInt32"})


def test_only_moved_baselines_are_written_and_they_replace_their_rows() -> None:
    with Database(path=":memory:") as db:
        saved = SavedBaselines()
        assert saved.load(db.connection) == {}
        first = {"a/data/GoodCount": CounterBaseline(value=10, ts_ms=1_000), "b/data/GoodCount": CounterBaseline(
            value=7, ts_ms=1_000)}  # fmt: skip
        moved = saved.moved(first)
        assert moved == first  # new counters are moved
        saved.save(db.connection, moved)
        saved.committed(moved)
        assert saved.moved(first) == {}  # nothing to write while nothing moves
        later = {**first, "a/data/GoodCount": CounterBaseline(value=12, ts_ms=2_000)}
        assert saved.moved(later) == {"a/data/GoodCount": CounterBaseline(value=12, ts_ms=2_000)}
        saved.save(db.connection, saved.moved(later))
        rows = db.connection.execute("SELECT topic, value, epoch_ms(ts) FROM mes_counter_state ORDER BY topic")
        assert rows.fetchall() == [("a/data/GoodCount", 12.0, 2_000), ("b/data/GoodCount", 7.0, 1_000)]
        again = SavedBaselines()
        assert again.load(db.connection) == {"a/data/GoodCount": (12.0, 2_000), "b/data/GoodCount": (7.0, 1_000)}
        assert again.moved(later) == {}


def test_a_save_updates_committed_rows_and_inserts_the_others_even_one_committed_unseen() -> None:
    with Database(path=":memory:") as db:
        saved = SavedBaselines()
        first = {"a/data/GoodCount": CounterBaseline(value=10, ts_ms=1_000)}
        saved.save(db.connection, first)  # committed, but its caller failed before telling the map
        later = {
            "a/data/GoodCount": CounterBaseline(value=11, ts_ms=2_000),  # not known committed: replaces its row
            "b/data/GoodCount": CounterBaseline(value=7, ts_ms=2_000),
        }
        saved.save(db.connection, saved.moved(later))
        saved.committed(later)
        latest = {**later, "b/data/GoodCount": CounterBaseline(value=9, ts_ms=3_000)}  # known: updated in place
        saved.save(db.connection, {**saved.moved(latest), "c/data/GoodCount": CounterBaseline(value=1, ts_ms=3_000)})
        rows = db.connection.execute("SELECT topic, value, epoch_ms(ts) FROM mes_counter_state ORDER BY topic")
        assert rows.fetchall() == [
            ("a/data/GoodCount", 11.0, 2_000),
            ("b/data/GoodCount", 9.0, 3_000),
            ("c/data/GoodCount", 1.0, 3_000),
        ]


async def test_a_commit_writes_the_baseline_of_the_counter_that_moved_and_leaves_the_others(tmp_path: Path) -> None:
    t0 = (now_ms() // 1000 - 600) * 1000
    async with intake_hub(tmp_path, settings=SECTION) as hub:
        await hub.erp.publish(f"{CELL}/data/GoodCount", _envelope(100, t0))
        await hub.erp.publish(f"{OTHER}/data/GoodCount", _envelope(500, t0))
        query = "SELECT topic, value FROM mes_counter_state ORDER BY topic"
        await until(lambda: len(hub.rows(query)) == 2, what="both baselines saved")
        # mark the capper's row: a commit that rewrote every baseline would put 500 back
        await hub.historian.on_writer(
            lambda: hub.historian.database.connection.execute(
                "UPDATE mes_counter_state SET value = -1 WHERE topic = ?", [f"{OTHER}/data/GoodCount"]
            )
        )
        await hub.erp.publish(f"{CELL}/data/GoodCount", _envelope(130, t0 + 60_000))
        await until(lambda: hub.rows("SELECT sum(total) FROM mes_counts") == [(30,)], what="30 counted")
        assert hub.rows(query) == [(f"{OTHER}/data/GoodCount", -1.0), (f"{CELL}/data/GoodCount", 130.0)]
