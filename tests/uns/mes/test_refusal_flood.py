"""A flood of invalid MES events must not starve the historian nor flood the log (issue 13, fuzz bench)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import orjson
import pytest

from tests.exports import assert_all_is_honest
from tests.fixtures.broker import start_broker
from tests.fixtures.recording import recording
from tests.fixtures.waiting import until
from tests.uns.mes.test_adapter import CELL, client, envelope, mes_hub
from uns.clock import now_ms
from uns.mes.intake import Refused
from uns.mes.refusals import Refusals, dead_letter_rows
from uns.mqtt.types import Message

_FLOOD = 5000


async def test_a_flood_of_invalid_events_leaves_good_samples_stored_promptly_and_counts_every_refusal(
    tmp_path: Path,
) -> None:
    async with (
        start_broker(tmp_path) as broker,
        mes_hub(broker, tmp_path) as hub,
        client(broker, "fuzz") as fuzz,
        recording(fuzz, [hub.mes.errors_topic], qos=0) as refusals,
    ):
        announced = refusals.messages
        bad = [
            Message(f"{CELL}/mes/production_count", orjson.dumps({"timestamp_ms": i, "total": 1, "scrap": 2}), 1, False)
            for i in range(_FLOOD)
        ]
        await fuzz.publish_many(bad)
        # the refusals are in the adapter before the good data comes, as in the fuzz bench
        await until(lambda: hub.mes.counters["received"] >= _FLOOD, what="the invalid events read")
        async with client(broker, "plc") as plc:
            start = time.monotonic()
            now = now_ms()
            for i in range(20):
                await plc.publish(f"{CELL}/data/Temperature", envelope(float(i), now + i, "Double"), qos=1)
            await until(
                lambda: hub.rows("SELECT count(*) FROM samples") == [(20,)], within_s=20.0, what="the good samples"
            )
            stored_after_s = time.monotonic() - start
        await until(lambda: hub.mes.counters["rejected"] == _FLOOD, within_s=20.0, what="every refusal counted")
        assert stored_after_s < 2.0  # today ~0.05 s on a 2-core box; before batching 3.1-3.5 s
        dropped = hub.mes.counters["dead_letters_dropped"]  # counted before the kept rows are written
        await until(
            lambda: hub.rows("SELECT count(*) FROM mes_dead_letters") == [(_FLOOD - dropped,)],
            what="the kept refusals written",
        )
        ((kept, causes),) = hub.rows("SELECT count(*), count(DISTINCT field) FROM mes_dead_letters")
        assert causes == 1  # scrap, the one cause
        assert isinstance(kept, int)
        assert 0 < kept < _FLOOD  # past the bound only the row is dropped, never the count
        await until(lambda: len(announced) >= kept, what="the kept refusals announced")
        assert len(announced) == kept  # announced as bounded as the rows, not one message per refusal
        assert orjson.loads(announced[0].payload)["field"] == "scrap"


def _refused(i: int, field: str = "scrap", topic: str = f"{CELL}/mes/production_count") -> Refused:
    return Refused(topic, "production_count", field, f"scrap ({i + 1}) is above total ({i})", b"{}")


def test_refusals_of_one_cause_log_one_warning_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    refusals = Refusals(rows_per_s=100)
    with caplog.at_level(logging.WARNING, logger="uns.mes.refusals"):
        for i in range(1000):
            refusals.take([_refused(i)])
        refusals.take([_refused(0, field="order_id")])  # another cause: its own warning
        refusals.take([_refused(0, topic=f"{CELL}/mes/labor")])  # another topic too
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(messages) == 3
    assert messages[0] == f"MES event refused on {CELL}/mes/production_count: scrap: scrap (1) is above total (0)"
    assert "order_id" in messages[1]
    assert f"{CELL}/mes/labor" in messages[2]
    assert refusals.counted == 1002


def test_dead_letter_rows_are_bounded_per_second_but_every_refusal_is_counted() -> None:
    clock = [1000.0]
    refusals = Refusals(rows_per_s=100, clock=lambda: clock[0])
    batch = [_refused(i) for i in range(250)]
    kept = refusals.take(batch)
    assert kept == batch[:100]
    assert (refusals.counted, refusals.dropped) == (250, 150)
    assert refusals.take([_refused(0)], stored=True) == []  # already written: only the announcement is bounded
    assert (refusals.counted, refusals.dropped) == (251, 150)
    clock[0] += 1.0  # the next second has room again
    assert len(refusals.take([_refused(i) for i in range(10)])) == 10
    assert (refusals.counted, refusals.dropped) == (261, 150)
    assert dead_letter_rows(kept[:1], 5) == [
        (5, f"{CELL}/mes/production_count", "production_count", "scrap", "scrap (1) is above total (0)", "{}")
    ]


def test_all_is_honest() -> None:
    assert_all_is_honest("uns.mes.refusals")
