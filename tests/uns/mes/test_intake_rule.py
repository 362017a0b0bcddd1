"""One intake rule for MQTT and HTTP: events under the hub's enterprise are accepted, others refused with a
dead letter and a message on the errors topic, never silently dropped."""

from __future__ import annotations

from pathlib import Path

import orjson

from tests.fixtures.waiting import next_messages, until
from tests.uns.mes.intake_hub import intake_hub
from uns.clock import now_ms
from uns.mes.intake import Accepted, Refused, read_event

OURS = "acme/dallas/bottling/line1/filler"
THEIRS = "globex/dallas/bottling/line1/filler"


def _count(total: int) -> bytes:
    return orjson.dumps({"timestamp_ms": now_ms() - 60_000, "total": total})


async def test_another_enterprise_is_refused_the_same_way_over_mqtt_and_http(tmp_path: Path) -> None:
    async with intake_hub(tmp_path) as hub:
        await hub.erp.subscribe(["acme/hub/mes/errors"], qos=0)
        await hub.erp.publish(f"{THEIRS}/mes/production_count", _count(7), qos=1)
        await hub.erp.publish(f"{OURS}/mes/production_count", _count(5), qos=1)
        over_http = await hub.http.post(f"/api/mes/events/{THEIRS}/mes/production_count", content=_count(9))
        assert over_http.status_code == 422
        assert over_http.json() == {
            "topic": f"{THEIRS}/mes/production_count",
            "detail": [
                {"field": "topic", "reason": "enterprise 'globex' is not this hub's ('acme'): publish under acme/..."}
            ],
        }
        stored = await hub.http.post(f"/api/mes/events/{OURS}/mes/production_count", content=_count(3))
        assert stored.status_code == 201
        await until(lambda: hub.rows("SELECT count(*) FROM mes_dead_letters") == [(2,)], what="two dead letters")
        assert (
            sorted(hub.rows("SELECT topic, field FROM mes_dead_letters"))
            == [(f"{THEIRS}/mes/production_count", "topic")] * 2
        )
        await until(lambda: hub.rows("SELECT count(*) FROM mes_counts") == [(2,)], what="our two counts")
        assert sorted(hub.rows("SELECT path, total FROM mes_counts")) == [(OURS, 3), (OURS, 5)]
        announced = [orjson.loads(m.payload) for m in await next_messages(hub.erp, 2, what="two refusals")]
        assert [(a["topic"], a["field"]) for a in announced] == [(f"{THEIRS}/mes/production_count", "topic")] * 2
        assert hub.mes.health()["rejected"] == 2


def test_the_rule_is_one_pure_check() -> None:
    raw = _count(1)
    assert isinstance(read_event(f"{OURS}/mes/production_count", raw, enterprise="acme"), Accepted)
    refused = read_event(f"{THEIRS}/mes/production_count", raw, enterprise="acme")
    assert isinstance(refused, Refused)
    assert (refused.field, refused.event) == ("topic", "production_count")
    assert read_event("globex/hub/mes/errors", raw, enterprise="acme") is None  # a hub's own status tree
