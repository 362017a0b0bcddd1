"""Rows to samples and MES events: time zones, datatypes, refusals naming the field, stable event ids."""

from __future__ import annotations

import datetime as dt
import decimal
import json
from zoneinfo import ZoneInfo

import pytest

from bridges.sql.mapping import RowRefused, event_id, mes_event, metric_samples, to_ms
from model.bridges.sql import SqlQuery
from model.envelope import Quality

_UTC = ZoneInfo("UTC")
_BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("value", "zone", "ms"),
    [
        (dt.datetime(2026, 11, 24, 7, 0), _UTC, 1795503600000),
        (dt.datetime(2026, 11, 24, 8, 0), _BERLIN, 1795503600000),  # naive datetime2 in the plant's zone (CET)
        (dt.datetime(2026, 7, 24, 9, 0), _BERLIN, 1784876400000),  # summer time (CEST)
        (dt.datetime(2026, 11, 24, 7, 0, tzinfo=dt.UTC), _BERLIN, 1795503600000),  # datetimeoffset / timestamptz
        ("2026-11-24 08:00:00.250", _BERLIN, 1795503600250),  # SQLite text
        ("2026-11-24T07:00:00+00:00", _BERLIN, 1795503600000),
        (1795503600000, _UTC, 1795503600000),
    ],
)
def test_times_to_ms(value: object, zone: ZoneInfo, ms: int) -> None:
    assert to_ms(value, zone) == ms


def _lab(**overrides: object) -> SqlQuery:
    data: dict[str, object] = {
        "name": "lab",
        "table": "lab",
        "key": ["sample_id"],
        "watermark": {"column": "updated_at"},
        "metrics": [
            {"name": "Lab/Viscosity", "column": "viscosity"},
            {"name": "Lab/Batch", "column": "batch", "datatype": "UInt16"},
            {"name": "Lab/Released", "column": "released", "datatype": "Boolean"},
        ],
    }
    data.update(overrides)
    return SqlQuery.model_validate(data)


def test_a_row_gives_one_sample_per_metric_at_the_row_time() -> None:
    row = {"sample_id": "S1", "updated_at": dt.datetime(2026, 11, 24, 7), "viscosity": decimal.Decimal("12.5"),
           "batch": 7, "released": 1}  # fmt: skip
    samples = metric_samples(_lab(), row, _UTC)
    assert [(s.name, s.value, s.timestamp_ms, s.quality) for s in samples] == [
        ("Lab/Viscosity", 12.5, 1795503600000, Quality.good),
        ("Lab/Batch", 7, 1795503600000, Quality.good),
        ("Lab/Released", True, 1795503600000, Quality.good),
    ]


def test_a_null_value_is_a_bad_sample_not_a_refusal() -> None:
    row = {"sample_id": "S1", "updated_at": "2026-11-24 07:00:00", "viscosity": None, "batch": 7, "released": 0}
    samples = metric_samples(_lab(), row, _UTC)
    assert (samples[0].value, samples[0].quality) == (None, Quality.bad)


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("viscosity", "thick", "Double metric Lab/Viscosity: Double needs a float, got str"),
        ("batch", 70000, "UInt16 metric Lab/Batch: 70000 is outside the UInt16 range"),
        ("released", 2, "Boolean metric Lab/Released: Boolean needs a bool, got int"),
        ("updated_at", "yesterday", "Invalid isoformat string"),
    ],
)
def test_a_value_that_does_not_fit_refuses_the_row_naming_the_column(column: str, value: object, reason: str) -> None:
    row: dict[str, object] = {"sample_id": "S1", "updated_at": "2026-11-24 07:00:00", "viscosity": 1.0, "batch": 7,
                              "released": True}  # fmt: skip
    row[column] = value
    with pytest.raises(RowRefused) as caught:
        metric_samples(_lab(), row, _UTC)
    assert caught.value.field == column
    assert reason in caught.value.reason


def _orders() -> SqlQuery:
    return SqlQuery.model_validate(
        {
            "name": "orders",
            "table": "erp_orders",
            "key": ["order_no"],
            "watermark": {"column": "changed_at"},
            "mes": {
                "event": "work_order",
                "path_column": "line_path",
                "fields": {"order_id": "order_no", "product_id": "material", "quantity": "qty",
                           "planned_start_ms": "start_at", "bom": "bom_json"},
                "values": {"action": "release"},
            },
        }
    )  # fmt: skip


def _order_row(**overrides: object) -> dict[str, object]:
    row: dict[str, object] = {
        "order_no": "4711",
        "changed_at": dt.datetime(2026, 11, 24, 6, 30),
        "line_path": "acme/dallas/packaging/line1",
        "material": "cola-330",
        "qty": decimal.Decimal("1200"),
        "start_at": dt.datetime(2026, 11, 24, 7, 0),
        "bom_json": json.dumps([{"material_id": "can-330", "quantity_per_unit": 1}]),
    }
    row.update(overrides)
    return row


def test_a_row_becomes_a_work_order_with_its_bom() -> None:
    topic, payload = mes_event("erp", _orders(), _order_row(), _UTC)
    assert topic == "acme/dallas/packaging/line1/mes/work_order"
    body = json.loads(payload)
    assert body["order_id"] == "4711"
    assert body["action"] == "release"
    assert body["quantity"] == 1200
    assert body["planned_start_ms"] == 1795503600000
    assert body["timestamp_ms"] == 1795501800000  # the watermark column: when it changed
    assert body["bom"] == [{"material_id": "can-330", "quantity_per_unit": 1.0, "unit": "pcs"}]
    assert body["source"] == "sql:erp"
    assert body["event_id"].startswith("sql:erp:orders:order_no=4711:")


def test_event_ids_are_stable_per_row_version_and_new_per_update() -> None:
    first = json.loads(mes_event("erp", _orders(), _order_row(), _UTC)[1])["event_id"]
    again = json.loads(mes_event("erp", _orders(), _order_row(), _UTC)[1])["event_id"]
    updated = json.loads(mes_event("erp", _orders(), _order_row(changed_at=dt.datetime(2026, 11, 24, 9)), _UTC)[1])
    assert first == again
    assert updated["event_id"] != first
    assert updated["event_id"].startswith("sql:erp:orders:order_no=4711:")


def test_long_or_odd_keys_still_make_a_valid_id() -> None:
    assert "/" not in event_id("erp", "q", "k=a/b#c", 1)
    assert len(event_id("erp", "q", "k=" + "x" * 300, 1)) <= 128


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"order_no": None}, "order_id (column order_no)"),
        ({"qty": decimal.Decimal("-5")}, "quantity (column qty)"),
        ({"bom_json": "[not json"}, "bom (column bom_json)"),
        ({"bom_json": json.dumps([{"material_id": "can-330"}])}, "bom.0.quantity_per_unit (column bom_json)"),
        ({"line_path": "Acme/Dallas"}, "line_path"),
        ({"start_at": "soon"}, "planned_start_ms (column start_at)"),
    ],
)
def test_a_row_that_does_not_map_is_refused_naming_the_field(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(RowRefused) as caught:
        mes_event("erp", _orders(), _order_row(**overrides), _UTC)
    assert caught.value.field == field


def _mes_query(event: str, fields: dict[str, str], values: dict[str, object] | None = None) -> SqlQuery:
    return SqlQuery.model_validate(
        {"name": "q", "table": "t", "key": ["id"], "watermark": {"column": "at"},
         "mes": {"event": event, "path": "acme/dallas/bottling/line1", "fields": fields, "values": values or {}}}
    )  # fmt: skip


def test_lab_results_shifts_and_products_map_to_their_events() -> None:
    at = dt.datetime(2026, 11, 24, 7)
    topic, body = mes_event(
        "lims",
        _mes_query(
            "quality_inspection",
            {"characteristic": "test", "value": "result", "lower_limit": "lsl", "upper_limit": "usl", "lot_id": "lot"},
        ),
        {"id": 9, "at": at, "test": "brix", "result": decimal.Decimal("10.4"), "lsl": 10, "usl": 11, "lot": "L-7"},
        _UTC,
    )
    assert topic == "acme/dallas/bottling/line1/mes/quality_inspection"
    inspection = json.loads(body)
    assert (inspection["characteristic"], inspection["value"], inspection["lot_id"]) == ("brix", 10.4, "L-7")
    _topic, body = mes_event(
        "mes",
        _mes_query("shift", {"shift_id": "id", "start_ms": "starts", "end_ms": "ends", "breaks": "breaks"}),
        {
            "id": "2026-11-24-early",
            "at": at,
            "starts": "2026-11-24 06:00:00",
            "ends": "2026-11-24 14:00:00",
            "breaks": '[{"start_ms": "2026-11-24T10:00:00Z", "end_ms": "2026-11-24T10:30:00Z"}]',
        },
        _UTC,
    )
    shift = json.loads(body)
    assert (shift["start_ms"], shift["end_ms"]) == (1795500000000, 1795528800000)
    assert shift["breaks"][0]["name"] == "break"
    _topic, body = mes_event(
        "erp",
        _mes_query("product_type", {"product_id": "id", "ideal_cycle_time_s": "cycle"}),
        {"id": "cola-330", "at": at, "cycle": decimal.Decimal("0.5")},
        _UTC,
    )
    assert json.loads(body)["ideal_cycle_time_s"] == 0.5
