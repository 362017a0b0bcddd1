"""``mes.commit_interval_s``: what the adapter reads over MQTT is stored that long after it woke the commit loop."""

from __future__ import annotations

import time
from pathlib import Path

import orjson

from model.config import MesSection
from tests.fixtures.waiting import until
from tests.uns.mes.intake_hub import intake_hub
from uns.clock import now_ms

LINE = "acme/dallas/bottling/line1"


def _release(order_id: str, ts_ms: int) -> bytes:
    return orjson.dumps(
        {"timestamp_ms": ts_ms, "order_id": order_id, "action": "release", "product_id": "P1", "quantity": 10}
    )


async def test_events_read_over_mqtt_are_stored_after_the_commit_interval(
    tmp_path: Path,
) -> None:
    settings = MesSection(kpi_interval_s=60, commit_interval_s=1.5)
    now = now_ms()
    async with intake_hub(tmp_path, settings=settings) as hub:
        await hub.erp.publish(f"{LINE}/mes/work_order", _release("WO-1", now - 2000), qos=1)
        published = time.monotonic()
        await hub.erp.publish(f"{LINE}/mes/work_order", _release("WO-2", now - 1000), qos=1)
        await until(
            lambda: hub.rows("SELECT count(*) FROM mes_work_orders") == [(2,)], within_s=15, what="both releases"
        )
        # a lower bound only: a loaded box can make it later, never earlier (the 0.2 s of before stored at once)
        assert time.monotonic() - published >= 1.0
        assert hub.rows("SELECT order_id FROM mes_work_orders ORDER BY order_id") == [("WO-1",), ("WO-2",)]
