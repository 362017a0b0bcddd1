"""Maintenance work orders as an MES event: one order per ``maintenance_id`` however often the CMMS re-sends it,
each version updating it; refusals name the field, dead-lettered and announced like every MES event."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import orjson
import pytest

from tests.fixtures.waiting import next_messages, until
from tests.uns.mes.intake_hub import intake_hub
from tests.uns.mes.mes_events import Feeder, at, ms
from uns.mes.intake import Accepted, Refused, read_event
from uns.store.database import Database

LINE = "acme/dallas/bottling/line1"
FILLER = f"{LINE}/filler"
CAPPER = f"{LINE}/capper"
TOPIC = f"{FILLER}/mes/maintenance_order"


@pytest.fixture
def feeder(db: Database) -> Feeder:
    return Feeder(db)


def _order(feeder: Feeder, maintenance_id: str) -> dict[str, object]:
    rows = feeder.database.connection.execute(
        "SELECT * FROM mes_maintenance WHERE maintenance_id = ?", [maintenance_id]
    )
    names = [column[0] for column in rows.description or ()]
    found = rows.fetchall()
    assert len(found) == 1, found
    return dict(zip(names, found[0], strict=True))


def _version(path: str, when: datetime, event_id: str, **body: object) -> tuple[str, str, dict[str, object]]:
    return path, "maintenance_order", {"timestamp_ms": ms(when), "event_id": event_id, **body}


def test_versions_of_one_order_update_it_and_a_field_left_out_keeps_its_value(feeder: Feeder) -> None:
    versions = [
        _version(FILLER, at(24, 8), "v1", maintenance_id="MWO-7", status="opened", fault_code="E-PUMP",
                 description="filler pump leaks", priority=2),
        _version(FILLER, at(24, 8, 20), "v2", maintenance_id="MWO-7", status="started", technician="T. Berg"),
        _version(FILLER, at(24, 9, 5), "v3", maintenance_id="MWO-7", status="closed",
                 closed_ms=ms(at(24, 9, 2))),
    ]  # fmt: skip
    items = [feeder.incoming(path, event, body) for path, event, body in versions]
    assert [o.status for o in feeder.store.apply(items)] == ["stored"] * 3
    assert [o.status for o in feeder.store.apply(items[1:])] == ["duplicate"] * 2  # re-delivered: stored once
    order = _order(feeder, "MWO-7")
    assert (order["status"], order["path"], order["line"], order["versions"]) == ("closed", FILLER, LINE, 3)
    assert (order["fault_code"], order["description"], order["priority"]) == ("E-PUMP", "filler pump leaks", 2)
    assert (order["technician"], order["planned"]) == ("T. Berg", False)
    # opened and started default to the first version saying so; closed is the one given
    assert (order["opened"], order["started"], order["closed"]) == (at(24, 8), at(24, 8, 20), at(24, 9, 2))


def test_the_newest_version_wins_whatever_the_arrival_order(feeder: Feeder) -> None:
    late_first = feeder.incoming(*_version(CAPPER, at(24, 10), "b", maintenance_id="MWO-8", status="started"))
    early = feeder.incoming(*_version(FILLER, at(24, 9), "a", maintenance_id="MWO-8", status="opened",
                                      fault_code="E-1"))  # fmt: skip
    feeder.store.apply([late_first])
    feeder.store.apply([early])
    order = _order(feeder, "MWO-8")
    assert (order["status"], order["path"], order["fault_code"]) == ("started", CAPPER, "E-1")  # machine corrected
    assert (order["opened"], order["started"], order["closed"]) == (at(24, 9), at(24, 10), None)


def test_a_reopened_order_is_not_closed(feeder: Feeder) -> None:
    for event_id, minute, status in (("1", 0, "started"), ("2", 10, "closed"), ("3", 20, "started")):
        feeder.store.apply([feeder.incoming(*_version(FILLER, at(24, 9, minute), event_id,
                                                      maintenance_id="MWO-9", status=status))])  # fmt: skip
    order = _order(feeder, "MWO-9")
    assert (order["status"], order["started"], order["closed"]) == ("started", at(24, 9), None)


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({"status": "opened"}, "maintenance_id", "Field required"),
        ({"maintenance_id": "M1", "status": "done"}, "status", "Input should be 'opened', 'started', 'closed' or"),
        ({"maintenance_id": "M1", "status": "closed", "started_ms": 2000, "closed_ms": 1000}, "closed_ms",
         "must not be before started_ms (2000)"),
        ({"maintenance_id": "M1", "status": "opened", "planned_start_ms": 5, "planned_end_ms": 5}, "planned_end_ms",
         "must be after planned_start_ms (5)"),
        ({"maintenance_id": "M1", "status": "opened", "priority": 0}, "priority", "Input should be greater than"),
        ({"maintenance_id": "M1", "status": "opened", "opened_ms": "yesterday"}, "opened_ms", "cannot read"),
        ({"maintenance_id": "M/1", "status": "opened"}, "maintenance_id", "String should match pattern"),
    ],
)  # fmt: skip
def test_a_bad_version_is_refused_naming_the_field(body: dict[str, object], field: str, reason: str) -> None:
    refused = read_event(TOPIC, orjson.dumps({"timestamp_ms": 1, **body}), enterprise="acme")
    assert isinstance(refused, Refused)
    assert refused.field == field
    assert refused.reason.startswith(reason), refused.reason


def test_iso_times_are_read_as_milliseconds() -> None:
    body = {"timestamp_ms": "2026-11-24T08:00:00Z", "maintenance_id": "M1", "status": "closed",
            "started_ms": "2026-11-24T09:00:00+01:00", "closed_ms": "2026-11-24T08:30:00Z"}  # fmt: skip
    accepted = read_event(TOPIC, orjson.dumps(body), enterprise="acme")
    assert isinstance(accepted, Accepted)
    assert accepted.body.model_dump(include={"started_ms", "closed_ms"}) == {
        "started_ms": ms(at(24, 8)),
        "closed_ms": ms(at(24, 8, 30)),
    }


async def test_over_mqtt_and_http_an_update_changes_the_order_and_a_bad_one_is_dead_lettered(tmp_path: Path) -> None:
    async with intake_hub(tmp_path) as hub:
        await hub.erp.subscribe(["acme/hub/mes/errors"], qos=0)
        opened = {"timestamp_ms": ms(at(24, 8)), "event_id": "cmms:1:a", "maintenance_id": "MWO-1",
                  "status": "opened", "fault_code": "E-JAM"}  # fmt: skip
        await hub.erp.publish(TOPIC, orjson.dumps(opened), qos=1)
        await hub.erp.publish(TOPIC, b'{"timestamp_ms": 1, "maintenance_id": "MWO-2", "status": "fixed"}', qos=1)
        closed = {**opened, "timestamp_ms": ms(at(24, 9)), "event_id": "cmms:1:b", "status": "closed"}
        answer = await hub.http.post(f"/api/mes/events/{TOPIC}", content=orjson.dumps(closed))
        assert answer.status_code == 201, answer.text
        resent = await hub.http.post(f"/api/mes/events/{TOPIC}", content=orjson.dumps(closed))
        assert resent.status_code in (200, 201), resent.text
        refused = await hub.http.post(f"/api/mes/events/{TOPIC}", content=b'{"timestamp_ms": 1, "status": "opened"}')
        assert refused.status_code == 422
        assert refused.json()["detail"] == [{"field": "maintenance_id", "reason": "Field required"}]
        await until(lambda: hub.rows("SELECT count(*) FROM mes_maintenance_orders") == [(2,)], what="two versions")
        assert hub.rows("SELECT maintenance_id, status, fault_code, closed FROM mes_maintenance") == [
            ("MWO-1", "closed", "E-JAM", at(24, 9))
        ]
        await until(lambda: hub.rows("SELECT count(*) FROM mes_dead_letters") == [(2,)], what="two dead letters")
        assert sorted(hub.rows("SELECT event, field FROM mes_dead_letters")) == [
            ("maintenance_order", "maintenance_id"),
            ("maintenance_order", "status"),
        ]
        announced = [orjson.loads(m.payload) for m in await next_messages(hub.erp, 2, what="two refusals")]
        assert sorted(a["field"] for a in announced) == ["maintenance_id", "status"]
