"""The ingest parser: every envelope shape into typed columns, every bad input into a named rejection."""

from __future__ import annotations

import orjson
import pytest

from model.envelope import read_fields
from uns.historian.rows import EventRow, Rejected, RowParser, SampleRow, envelope_of

NOW = 1_764_000_000_000
TOPIC = "acme/dallas/bottling/line1/filler/data/Production/GoodCount"


def _parse(topic: str, body: object | bytes) -> object:
    payload = body if isinstance(body, bytes) else orjson.dumps(body)
    return RowParser(max_future_ms=300_000).parse(topic, payload, now_ms=NOW)


def _env(value: object, datatype: str, **extra: object) -> dict[str, object]:
    return {"value": value, "timestamp_ms": NOW - 5, "quality": "good", "datatype": datatype, **extra}


@pytest.mark.parametrize(
    ("value", "datatype", "columns"),
    [
        (72.5, "Double", (72.5, None, None)),
        (7, "UInt32", (7.0, None, None)),
        (-32768, "Int16", (-32768.0, None, None)),
        (True, "Boolean", (1.0, None, None)),
        (False, "Boolean", (0.0, None, None)),
        ("running", "String", (None, "running", None)),
        (2**63 - 1, "Int64", (float(2**63 - 1), str(2**63 - 1), None)),  # exact digits kept beside the double
        (2**64 - 1, "UInt64", (float(2**64 - 1), str(2**64 - 1), None)),
        ([1, 2, 3], "Int16Array", (None, None, "[1,2,3]")),
        (
            {"columns": ["a"], "types": ["Int32"], "rows": [[1]]},
            "DataSet",
            (None, None, '{"columns":["a"],"types":["Int32"],"rows":[[1]]}'),
        ),
        (None, "Float", (None, None, None)),
        (3, "Float", (3.0, None, None)),  # an integral float serialises without a point
        (1.5, "Number", (1.5, None, None)),  # a datatype we do not know: keep the value by its JSON type
    ],
)
def test_values_split_into_typed_columns(value: object, datatype: str, columns: tuple[object, ...]) -> None:
    row = _parse(TOPIC, _env(value, datatype))
    assert isinstance(row, SampleRow)
    assert (row.value, row.value_text, row.value_json) == columns
    assert (row.path, row.class_word, row.metric) == (
        "acme/dallas/bottling/line1/filler",
        "data",
        "Production/GoodCount",
    )


def test_envelope_keys_are_kept() -> None:
    row = _parse(TOPIC, _env(1, "Int32", unit="pcs", historical=True, unbound=True, source="g/n/d", quality="stale"))
    assert isinstance(row, SampleRow)
    assert (row.ts_ms, row.unit, row.historical, row.unbound, row.source, row.quality) == (
        NOW - 5,
        "pcs",
        True,
        True,
        "g/n/d",
        "stale",
    )


@pytest.mark.parametrize(
    ("raw", "datatype", "columns"),
    [
        (b'{"value": 21.5}', "Double", (21.5, None, None)),  # Node-RED's plain number
        (b'{"value": 21.0}', "Double", (21.0, None, None)),  # a fraction, even .0, is a Double
        (b'{"value": 1e3}', "Double", (1000.0, None, None)),  # so is an exponent
        (b'{"value": 1E-7}', "Double", (1e-7, None, None)),
        (b'{"value": 1e20}', "Double", (1e20, None, None)),  # beyond 64 bits, but not written as an integer
        (b'{"value": 42}', "Int64", (42.0, None, None)),
        (b'{"value": -9223372036854775808}', "Int64", (-(2.0**63), str(-(2**63)), None)),
        (b'{"value": 9223372036854775808}', "UInt64", (2.0**63, str(2**63), None)),  # exact digits kept
        (b'{"value": 18446744073709551615}', "UInt64", (float(2**64 - 1), str(2**64 - 1), None)),
        (b'{"value": true}', "Boolean", (1.0, None, None)),
        (b'{"value": "RUNNING"}', "String", (None, "RUNNING", None)),
        (b'{"value": [1, 2.5]}', "Json", (None, None, "[1,2.5]")),
        (b'{"value": {"a": 1}}', "Json", (None, None, '{"a":1}')),
        (b'{"value": null}', None, (None, None, None)),  # no type to tell: the series keeps its own
        (b'{"value": 7, "datatype": null}', "Int64", (7.0, None, None)),  # null is as good as absent
    ],
)
def test_datatype_is_inferred_from_the_json_type_when_absent(
    raw: bytes, datatype: str | None, columns: tuple[object, ...]
) -> None:
    row = _parse(TOPIC, raw)
    assert isinstance(row, SampleRow), row
    assert row.datatype == datatype
    assert (row.value, row.value_text, row.value_json) == columns
    assert (row.ts_ms, row.quality) == (NOW, "good")  # no timestamp_ms: the receive time


def test_a_declared_datatype_is_never_overridden_by_the_json_type() -> None:
    row = _parse(TOPIC, {"value": 3, "timestamp_ms": NOW - 5, "datatype": "Float"})
    assert isinstance(row, SampleRow)
    assert (row.datatype, row.value, row.ts_ms) == ("Float", 3.0, NOW - 5)


@pytest.mark.parametrize(
    ("topic", "body", "field", "reason"),
    [
        (TOPIC, b'{"value": 1, "timest', "payload", "not JSON at byte"),
        (TOPIC, b"\xff\xfe", "payload", "not JSON at byte 0"),
        (TOPIC, [1, 2], "payload", "a JSON list, not an object"),
        (TOPIC, {"timestamp_ms": NOW, "datatype": "Int32"}, "value", "missing"),
        (TOPIC, {"value": 1, "timestamp_ms": "now", "datatype": "Int32"}, "timestamp_ms", "non-negative integer"),
        (TOPIC, {"value": 1, "timestamp_ms": -1, "datatype": "Int32"}, "timestamp_ms", "non-negative integer"),
        (TOPIC, {"value": 1, "timestamp_ms": True, "datatype": "Int32"}, "timestamp_ms", "non-negative integer"),
        (
            TOPIC,
            {"value": 1, "timestamp_ms": NOW + 3_600_000, "datatype": "Int32"},
            "timestamp_ms",
            "3600 s in the future",
        ),
        (TOPIC, {"value": 1, "timestamp_ms": NOW, "datatype": 5}, "datatype", "Sparkplug datatype name"),
        (TOPIC, {"value": 1, "timestamp_ms": NOW, "datatype": ""}, "datatype", "Sparkplug datatype name"),
        (TOPIC, b'{"value": 18446744073709551616}', "value", "beyond 64 bits"),  # orjson would round it
        (TOPIC, b'{"value": -9223372036854775809}', "value", "beyond 64 bits"),
        (TOPIC, _env(1, "Int32", quality="great"), "quality", "good, uncertain, bad, stale"),
        (TOPIC, _env(1, "Int32", quality=["good"]), "quality", "good, uncertain, bad, stale"),  # raised TypeError
        (TOPIC, _env("x", "Int32"), "value", "a string, but the datatype is Int32"),
        (TOPIC, _env(300, "UInt8"), "value", "300 is outside UInt8 (0..255)"),
        (TOPIC, _env(-1, "UInt32"), "value", "outside UInt32"),
        (TOPIC, _env(1.5, "Int32"), "value", "1.5 is not an integer (Int32)"),
        (TOPIC, _env(True, "Int32"), "value", "true/false, but the datatype is Int32"),
        (TOPIC, _env(1, "Boolean"), "value", "a number, but the datatype is Boolean"),
        (TOPIC, _env([1], "Double"), "value", "a JSON list, but the datatype is Double"),
        ("acme/Dallas/data/x", _env(1, "Int32"), "topic", "not a slug"),
        ("acme/dallas/data/", _env(1, "Int32"), "topic", "name segment 1 is empty"),
    ],
)
def test_bad_input_is_rejected_naming_the_field(topic: str, body: object, field: str, reason: str) -> None:
    row = _parse(topic, body)
    assert isinstance(row, Rejected), row
    assert row.field == field
    assert reason in row.reason
    assert row.topic == topic


@pytest.mark.parametrize(
    "topic",
    [
        "acme/hub/host/health",  # the hub's own status
        "acme/hub/host/nodes/g/n",
        "acme/hub/mes/errors",  # the MES adapter's refusals: status, not an MES event
        "acme/dallas/line1/cmd/Speed",  # write requests are not history
        "spBv1.0/g/DDATA/n/d",
    ],
)
def test_topics_that_are_not_history_are_ignored(topic: str) -> None:
    assert _parse(topic, b"not even json") is None


def test_mes_events_keep_their_body_and_time_and_dedupe_key() -> None:
    body = {"order_id": "WO-1", "timestamp_ms": NOW - 1000, "quantity": 500}
    row = _parse("acme/dallas/bottling/line1/mes/work_order", body)
    assert isinstance(row, EventRow)
    assert (row.path, row.event, row.ts_ms) == ("acme/dallas/bottling/line1", "work_order", NOW - 1000)
    assert orjson.loads(row.body) == body
    again = _parse("acme/dallas/bottling/line1/mes/work_order", body)
    other = _parse("acme/dallas/bottling/line2/mes/work_order", body)
    assert isinstance(again, EventRow)
    assert isinstance(other, EventRow)
    assert again.event_key == row.event_key != other.event_key
    untimed = _parse("acme/dallas/bottling/line1/mes/note", {"text": "hello"})
    assert isinstance(untimed, EventRow)
    assert untimed.ts_ms == NOW


def test_rejected_payload_is_kept_truncated() -> None:
    big = b"{" + b"x" * 10_000
    row = _parse(TOPIC, big)
    assert isinstance(row, Rejected)
    assert row.payload == big[:4096]


@pytest.mark.parametrize(
    "env",
    [
        _env(72.5, "Double"),
        _env(7, "UInt32", unit="pcs"),
        _env(2**64 - 1, "UInt64"),
        _env("running", "String", quality="stale", source="g/n/d", unbound=True),
        _env([1, 2, 3], "Int16Array", historical=True),
        _env({"columns": ["a"], "types": ["Int32"], "rows": [[1]]}, "DataSet"),
        _env(None, "Float", quality="bad"),
    ],
)
def test_a_decoded_envelope_gives_the_row_its_json_gives(env: dict[str, object]) -> None:
    # in-process, the host hands each envelope's reading beside its JSON (Message.decoded)
    payload = orjson.dumps(env)
    decoded = read_fields(orjson.loads(payload), payload, now_ms=NOW)
    parser = RowParser(max_future_ms=300_000)
    from_json = parser.parse(TOPIC, payload, now_ms=NOW)
    from_decoded = parser.parse(TOPIC, payload, now_ms=NOW, decoded=decoded)
    assert isinstance(from_decoded, SampleRow)
    assert from_decoded == from_json


def test_a_decoded_envelope_is_held_to_the_future_limit_as_its_json() -> None:
    payload = orjson.dumps({**_env(1.5, "Double"), "timestamp_ms": NOW + 3_600_000})
    decoded = read_fields(orjson.loads(payload), payload, now_ms=NOW)  # the publisher reads with no limit
    parser = RowParser(max_future_ms=300_000)
    from_json = parser.parse(TOPIC, payload, now_ms=NOW)
    from_decoded = parser.parse(TOPIC, payload, now_ms=NOW, decoded=decoded)
    assert isinstance(from_decoded, Rejected)
    assert from_decoded == from_json
    assert (from_decoded.field, from_decoded.reason) == (
        "timestamp_ms",
        "3600 s in the future (limit 300 s): check the clock",
    )


def test_a_decoded_form_is_not_parsed_again_and_mes_events_ignore_it() -> None:
    payload = orjson.dumps(_env(1.5, "Double"))
    decoded = (2.5, NOW - 1, "good", "Double", None, False, False, None, False)
    row = RowParser(max_future_ms=300_000).parse(TOPIC, payload, now_ms=NOW, decoded=decoded)
    assert isinstance(row, SampleRow)
    assert (row.value, row.ts_ms) == (2.5, NOW - 1)  # the reading, not the JSON
    event = RowParser(max_future_ms=300_000).parse(
        "acme/dallas/bottling/line1/mes/work_order", b'{"order": "WO-1"}', now_ms=NOW, decoded=decoded
    )
    assert isinstance(event, EventRow)
    assert event.body == '{"order": "WO-1"}'


@pytest.mark.parametrize(
    "body",
    [
        _env(72.5, "Double", unit="degC"),
        _env(2**63 - 1, "Int64"),  # exact digits, not the double
        _env(-3, "Int16", quality="uncertain"),
        _env(False, "Boolean"),
        _env("a\u0000b", "String", source="g/n/d", unbound=True),
        _env([1, None, {"a": 2}], "Int16Array", historical=True),
        _env({"columns": ["a"], "types": ["Int32"], "rows": [[1]]}, "DataSet"),
        _env(None, "Float", quality="bad"),
        {"value": None, "timestamp_ms": NOW - 5, "quality": "stale"},  # a null without a datatype
        {"value": {"k": 1}, "timestamp_ms": NOW - 5},  # a datatype inferred from the JSON type
    ],
)
def test_a_stored_samples_envelope_reads_back_as_the_same_row(body: dict[str, object]) -> None:
    # what a refused sample's dead letter keeps (docs/sinks.md), and what a replay parses again
    row = _parse(TOPIC, body)
    assert isinstance(row, SampleRow)
    assert _parse(TOPIC, orjson.dumps(envelope_of(row))) == row


def test_a_transient_sample_is_marked_from_its_json_or_its_reading_and_keeps_the_flag_as_an_envelope() -> None:
    payload = orjson.dumps(_env(0.75, "Double", transient=True, source="g/n/d"))
    from_json = _parse(TOPIC, payload)
    decoded = read_fields(orjson.loads(payload), payload, now_ms=NOW)
    from_reading = RowParser(max_future_ms=300_000).parse(TOPIC, payload, now_ms=NOW, decoded=decoded)
    for row in (from_json, from_reading):
        assert isinstance(row, SampleRow)
        assert (row.value, row.transient, row.source) == (0.75, True, "g/n/d")
        assert envelope_of(row)["transient"] is True  # what a forwarding sink sends on
    plain = _parse(TOPIC, _env(0.75, "Double"))
    assert isinstance(plain, SampleRow)
    assert plain.transient is False
    assert "transient" not in envelope_of(plain)
