"""The value envelope: validation, JSON form, field order and the orjson hot path."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from model.envelope import ENVELOPE_FIELDS, JSON_DATATYPE, Envelope, Quality, infer_datatype


@pytest.mark.parametrize(
    "body",
    [
        {"value": 72.4, "timestamp_ms": 1764000000123, "quality": "good", "datatype": "Float", "unit": "degC"},
        {"value": 7, "timestamp_ms": 0, "datatype": "Int32"},
        {"value": True, "timestamp_ms": 1, "quality": "stale", "datatype": "Boolean", "unbound": True},
        {"value": "RUNNING", "timestamp_ms": 1, "quality": "uncertain", "datatype": "String"},
        {"value": None, "timestamp_ms": 1, "quality": "bad", "datatype": "Double"},
        {"value": [1, 2.5, None], "timestamp_ms": 1, "datatype": "DoubleArray", "historical": True},
        {"value": {"columns": ["a"], "rows": [[1]]}, "timestamp_ms": 1, "datatype": "DataSet"},
    ],
)
def test_valid_bodies(body):
    envelope = Envelope.model_validate_json(orjson.dumps(body))
    assert envelope.value == body["value"]
    assert envelope.timestamp_ms == body["timestamp_ms"]
    assert envelope.quality == Quality(body.get("quality", "good"))
    # the JSON form has the same keys, plus the default quality, in the documented order
    dumped = envelope.model_dump(mode="json")
    assert dumped == {"quality": "good", **body}
    assert list(dumped) == [key for key in ENVELOPE_FIELDS if key in dumped]


@pytest.mark.parametrize(
    ("body", "loc", "message"),
    [
        ({"timestamp_ms": 1, "datatype": "Float"}, ("value",), "Field required"),
        ({"value": 1, "datatype": "Float"}, ("timestamp_ms",), "Field required"),
        ({"value": 1, "timestamp_ms": "1", "datatype": "Float"}, ("timestamp_ms",), "Input should be a valid integer"),
        ({"value": 1, "timestamp_ms": 1.5, "datatype": "Float"}, ("timestamp_ms",), "Input should be a valid integer"),
        ({"value": 1, "timestamp_ms": -1, "datatype": "Float"}, ("timestamp_ms",), "greater than or equal to 0"),
        (
            {"value": 1, "timestamp_ms": 1, "datatype": "Float", "quality": "ok"},
            ("quality",),
            "'good', 'uncertain', 'bad' or 'stale'",
        ),
        ({"value": 1, "timestamp_ms": 1, "datatype": ""}, ("datatype",), "at least 1 character"),
        ({"value": 1, "timestamp_ms": 1}, ("datatype",), "Field required"),
        (
            {"value": 1, "timestamp_ms": 1, "datatype": "Float", "units": "degC"},
            ("units",),
            "Extra inputs are not permitted",
        ),
    ],
)
def test_invalid_bodies(body, loc, message):
    with pytest.raises(ValidationError) as info:
        Envelope.model_validate_json(orjson.dumps(body))
    errors = info.value.errors()
    assert [e["loc"] for e in errors] == [loc]
    assert message in errors[0]["msg"]


def test_optional_fields_are_omitted_at_their_defaults():
    envelope = Envelope(value=1.5, timestamp_ms=10, datatype="Float")
    assert envelope.model_dump_json() == '{"value":1.5,"timestamp_ms":10,"quality":"good","datatype":"Float"}'
    full = Envelope(
        value=1.5, timestamp_ms=10, datatype="Float", unit="bar", unbound=True, historical=True, source="g/n/d",
        transient=True,
    )  # fmt: skip
    assert list(full.model_dump()) == list(ENVELOPE_FIELDS)


def test_hot_path_dict_encoded_with_orjson_validates():
    # what the host builds per metric: a plain dict in ENVELOPE_FIELDS order, encoded by orjson
    body = {"value": 72.4, "timestamp_ms": 1764000000123, "quality": Quality.stale.value, "datatype": "Float"}
    body["unit"] = "degC"
    body["unbound"] = True
    raw = orjson.dumps(body)
    envelope = Envelope.model_validate_json(raw)
    assert envelope == Envelope(
        value=72.4, timestamp_ms=1764000000123, quality=Quality.stale, datatype="Float", unit="degC", unbound=True
    )
    # and the model writes the very same bytes back
    assert orjson.dumps(envelope.model_dump(mode="json")) == raw


def test_json_schema_lists_fields_and_qualities():
    schema: dict[str, Any] = Envelope.json_schema()
    assert list(schema["properties"]) == list(ENVELOPE_FIELDS)
    assert set(schema["required"]) == {"value", "timestamp_ms", "datatype"}
    assert schema["additionalProperties"] is False
    assert schema["$defs"]["Quality"]["enum"] == ["good", "uncertain", "bad", "stale"]
    assert all(prop.get("description") for prop in schema["properties"].values())


@pytest.mark.parametrize(
    ("value", "datatype"),
    [
        (21.5, "Double"),
        (21.0, "Double"),
        (1e-7, "Double"),
        (0, "Int64"),
        (-(2**63), "Int64"),
        (2**63 - 1, "Int64"),
        (2**63, "UInt64"),
        (2**64 - 1, "UInt64"),
        (True, "Boolean"),
        (False, "Boolean"),
        ("RUNNING", "String"),
        ("", "String"),
        ([1, "a"], JSON_DATATYPE),
        ({"a": 1}, JSON_DATATYPE),
        (None, None),
    ],
)
def test_datatype_inferred_from_the_json_type(value: object, datatype: str | None) -> None:
    assert infer_datatype(value) == datatype


@pytest.mark.parametrize("value", [2**64, -(2**63) - 1, 10**30])
def test_integers_beyond_64_bits_have_no_datatype(value: int) -> None:
    with pytest.raises(ValueError, match="beyond 64 bits"):
        infer_datatype(value)
