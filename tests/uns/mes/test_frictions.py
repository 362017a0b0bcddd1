"""Small frictions of MES intake: a label that only reclassifies needs no reason code, event keys are strings
in HTTP replies, bodies take ISO 8601 times, and a hub without a plant file takes its enterprise from settings."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from model.config import MesSection, Settings
from tests.fixtures.waiting import until
from tests.uns.mes.intake_hub import intake_hub
from tests.uns.mes.mes_events import Feeder, at, ms, open_db
from uns.errors import ConfigError
from uns.mes.downtime import state_timeline
from uns.mes.intake import Accepted, Refused, read_event
from uns.settings import plant_of

CELL = "acme/dallas/bottling/line1/filler"


def test_a_label_that_only_reclassifies_the_state_needs_no_reason_code(tmp_path: Path) -> None:
    database = open_db(tmp_path / "mes.duckdb")
    try:
        feed = Feeder(database)
        feed.send(CELL, "machine_state", at(24, 6), state=40000, reason_code="J7")
        feed.send(CELL, "machine_state", at(24, 6, 30), state=10000)
        relabel = feed.send(CELL, "downtime_reason", at(24, 9), start_ms=ms(at(24, 6)), end_ms=ms(at(24, 6, 30)),
                            state=180000)  # fmt: skip
        assert relabel.status == "stored"
        cursor = database.reader()
        try:
            timeline = state_timeline(cursor, MesSection(), path=CELL, start=at(24, 6), end=at(24, 7))
        finally:
            cursor.close()
        # reclassified as an equipment failure; the reason stays the machine's own
        assert [(i.start, i.state, i.reason_code) for i in timeline] == [
            (at(24, 6), 180000, "J7"),
            (at(24, 6, 30), 10000, None),
        ]
    finally:
        database.close()


def test_a_label_with_neither_reason_nor_state_is_refused_naming_state() -> None:
    body = orjson.dumps({"timestamp_ms": 5, "start_ms": 1, "end_ms": 2})
    refused = read_event(f"{CELL}/mes/downtime_reason", body)
    assert isinstance(refused, Refused)
    assert (refused.field, refused.reason) == (
        "state",
        "required when reason_code is absent: a label gives a reason_code, a state or both",
    )


@pytest.mark.parametrize(
    ("body", "stored"),
    [
        ({"timestamp_ms": "2026-11-24T07:00:00+01:00"}, {"timestamp_ms": ms(at(24, 6))}),
        ({"timestamp_ms": "2026-11-24T06:00:00.250Z"}, {"timestamp_ms": ms(at(24, 6)) + 250}),
        ({"timestamp_ms": "2026-11-24T06:00:00"}, {"timestamp_ms": ms(at(24, 6))}),  # no offset: UTC
        ({"timestamp_ms": ms(at(24, 6))}, {"timestamp_ms": ms(at(24, 6))}),  # epoch ms as before
    ],
)
def test_event_bodies_take_iso_8601_times_as_well_as_epoch_ms(body: dict[str, object], stored: dict[str, int]) -> None:
    accepted = read_event(f"{CELL}/mes/production_count", orjson.dumps({**body, "total": 1}))
    assert isinstance(accepted, Accepted)
    assert accepted.body.timestamp_ms == stored["timestamp_ms"]
    assert accepted.raw == orjson.dumps({**body, "total": 1})  # kept as sent: its hash is the idempotency key


def test_every_time_field_of_a_shift_takes_iso_times_and_a_bad_one_is_named() -> None:
    def shift(timestamp: object = "2026-11-24T05:00:00Z", break_end: object = ms(at(24, 10, 30))) -> bytes:
        breaks = [{"start_ms": "2026-11-24T10:00:00Z", "end_ms": break_end}]
        return orjson.dumps({"timestamp_ms": timestamp, "shift_id": "early", "start_ms": "2026-11-24T06:00:00Z",
                             "end_ms": "2026-11-24T14:00:00Z", "breaks": breaks})  # fmt: skip

    accepted = read_event("acme/dallas/mes/shift", shift())
    assert isinstance(accepted, Accepted)
    assert accepted.body.model_dump()["breaks"][0]["start_ms"] == ms(at(24, 10))
    for field, bad, reason in [
        ("timestamp_ms", shift(timestamp="yesterday"), "cannot read 'yesterday' as a time"),
        ("timestamp_ms", shift(timestamp="-5m"), "cannot read '-5m' as a time: give epoch ms or ISO 8601"),
        ("breaks.0.end_ms", shift(break_end="10:30"), "cannot read '10:30' as a time"),
    ]:
        refused = read_event("acme/dallas/mes/shift", bad)
        assert isinstance(refused, Refused)
        assert refused.field == field
        assert refused.reason.startswith(reason)


async def test_http_replies_carry_the_event_key_as_a_string_and_store_iso_times(tmp_path: Path) -> None:
    async with intake_hub(tmp_path) as hub:
        body = {"timestamp_ms": "2026-11-24T07:00:00+01:00", "total": 4, "event_id": "c-1"}
        reply = await hub.http.post(f"/api/mes/events/{CELL}/mes/production_count", content=orjson.dumps(body))
        assert reply.status_code == 201, reply.text
        key = reply.json()["event_key"]
        assert isinstance(key, str)
        assert key.isdigit()
        assert hub.rows("SELECT event_key::VARCHAR, ts FROM mes_counts") == [(key, at(24, 6))]
        again = await hub.http.post(f"/api/mes/events/{CELL}/mes/production_count", content=orjson.dumps(body))
        assert (again.status_code, again.json()["event_key"]) == (200, key)
        bad = await hub.http.post(
            f"/api/mes/events/{CELL}/mes/production_count", content=orjson.dumps({"timestamp_ms": "soon", "total": 1})
        )
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["field"] == "timestamp_ms"
        await until(lambda: hub.rows("SELECT field FROM mes_dead_letters") == [("timestamp_ms",)], what="dead letter")


def test_a_hub_without_a_plant_file_takes_its_enterprise_from_settings(tmp_path: Path) -> None:
    assert plant_of(Settings(demo=False, enterprise="globex")).enterprise.id == "globex"
    assert plant_of(Settings(demo=False, enterprise="globex")).equipment_paths() == {"globex"}
    assert plant_of(Settings(demo=False)).enterprise.id == "acme"  # unset: the demo plant, as before
    with pytest.raises(ConfigError, match="enterprise: the demo plant is 'acme'"):
        plant_of(Settings(enterprise="globex"), demo=True)
    assert plant_of(Settings(enterprise="acme"), demo=True).enterprise.id == "acme"
    plant_file = tmp_path / "plant.yaml"
    plant_file.write_text("enterprise:\n  id: initech\n", encoding="utf-8")
    assert plant_of(Settings(plant=plant_file)).enterprise.id == "initech"
    with pytest.raises(ConfigError, match="names enterprise 'initech': set one of the two"):
        plant_of(Settings(plant=plant_file, enterprise="globex"))
