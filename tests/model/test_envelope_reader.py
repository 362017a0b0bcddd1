"""The one envelope encoder and reader (model.envelope): one set of rules, every field error named."""

from __future__ import annotations

import orjson
import pytest

from model.envelope import (
    ENVELOPE_FIELDS,
    Envelope,
    EnvelopeError,
    Quality,
    Reading,
    build_envelope,
    read_decoded,
    read_envelope,
    read_fields,
    read_object,
)

NOW = 1_764_000_000_000


def test_the_encoder_writes_the_documented_keys_in_order_and_the_schema_accepts_them() -> None:
    full = build_envelope(
        value=72.4,
        timestamp_ms=NOW,
        quality=Quality.stale,
        datatype="Float",
        unit="degC",
        unbound=True,
        historical=True,
        source="g/n/d",
        transient=True,
    )
    assert list(full) == list(ENVELOPE_FIELDS)
    assert Envelope.model_validate_json(orjson.dumps(full)).model_dump(mode="json") == full
    bare = build_envelope(value=None, timestamp_ms=NOW, quality=Quality.bad, datatype="Double")
    assert bare == {"value": None, "timestamp_ms": NOW, "quality": "bad", "datatype": "Double"}


def test_what_the_encoder_writes_the_reader_reads_back() -> None:
    body = build_envelope(
        value=[1, 2], timestamp_ms=5, quality=Quality.uncertain, datatype="Int32Array", unit="mm", source="g/n"
    )
    assert read_envelope(orjson.dumps(body), now_ms=NOW) == Reading(
        value=[1, 2],
        timestamp_ms=5,
        quality="uncertain",
        datatype="Int32Array",
        unit="mm",
        unbound=False,
        historical=False,
        source="g/n",
    )
    raw = orjson.dumps(body)
    assert read_fields(read_object(raw), raw, now_ms=NOW) == tuple(read_envelope(raw, now_ms=NOW))  # the hot path's


@pytest.mark.parametrize(
    ("payload", "value", "datatype"),
    [
        (b'{"value": 21.5}', 21.5, "Double"),
        (b'{"value": 7}', 7, "Int64"),
        (b'{"value": 18446744073709551615}', 2**64 - 1, "UInt64"),
        (b'{"value": true}', True, "Boolean"),
        (b'{"value": "on"}', "on", "String"),
        (b'{"value": {"a": 1}}', {"a": 1}, "Json"),
        (b'{"value": null}', None, None),
        (b'{"value": 3, "datatype": "Float"}', 3, "Float"),  # a declared datatype wins
    ],
)
def test_a_plain_publisher_gets_the_defaults(payload: bytes, value: object, datatype: str | None) -> None:
    read = read_envelope(payload, now_ms=NOW)
    assert (read.value, read.datatype, read.timestamp_ms, read.quality) == (value, datatype, NOW, "good")
    assert (read.unit, read.unbound, read.historical, read.source, read.transient) == (None, False, False, None, False)


def test_optional_keys_of_the_wrong_type_and_unknown_keys_are_ignored() -> None:
    payload = b'{"value": 1, "unit": 5, "source": [], "unbound": "yes", "historical": 1, "transient": "true", "x": 0}'
    read = read_envelope(payload, now_ms=NOW)
    assert (read.unit, read.source, read.unbound, read.historical, read.transient) == (None, None, False, False, False)


def test_transient_true_is_read_and_the_fields_before_it_keep_their_places() -> None:
    # "transient" is the last field of a reading: readers that index the first ones (web cache, MES) read them as before
    payload = b'{"value": 3, "timestamp_ms": 5, "datatype": "Int32", "source": "g/n/d", "transient": true}'
    fields = read_fields(orjson.loads(payload), payload, now_ms=NOW)
    assert fields == (3, 5, "good", "Int32", None, False, False, "g/n/d", True)
    assert read_envelope(payload, now_ms=NOW).transient is True


def test_qualities_are_interned() -> None:
    one = read_envelope(b'{"value": 1, "quality": "stale"}', now_ms=NOW).quality
    two = read_envelope(orjson.dumps({"value": 2, "quality": "st" + "ale"}), now_ms=NOW).quality
    assert one is two is Quality.stale.value


def test_the_future_limit_applies_only_when_given() -> None:
    ahead = orjson.dumps({"value": 1, "timestamp_ms": NOW + 3_600_000})
    assert read_envelope(ahead, now_ms=NOW).timestamp_ms == NOW + 3_600_000
    assert read_envelope(ahead, now_ms=NOW, max_future_ms=3_600_000).timestamp_ms == NOW + 3_600_000
    with pytest.raises(EnvelopeError, match="3600 s in the future") as info:
        read_envelope(ahead, now_ms=NOW, max_future_ms=300_000)
    assert info.value.field == "timestamp_ms"


def test_a_decoded_reading_meets_the_readers_future_limit_with_the_same_error() -> None:
    # an in-process publisher reads its envelope with no limit; each reader applies its own
    ahead = orjson.dumps({"value": 1, "timestamp_ms": NOW + 3_600_000, "datatype": "Int32"})
    fields = read_fields(orjson.loads(ahead), ahead, now_ms=NOW)
    assert read_decoded(fields, now_ms=NOW) is fields
    assert read_decoded(fields, now_ms=NOW, max_future_ms=3_600_000) is fields
    with pytest.raises(EnvelopeError) as decoded:
        read_decoded(fields, now_ms=NOW, max_future_ms=300_000)
    with pytest.raises(EnvelopeError) as parsed:
        read_envelope(ahead, now_ms=NOW, max_future_ms=300_000)
    assert (decoded.value.field, str(decoded.value)) == (parsed.value.field, str(parsed.value))
    assert str(decoded.value) == "timestamp_ms: 3600 s in the future (limit 300 s): check the clock"


@pytest.mark.parametrize(
    ("payload", "field", "reason"),
    [
        (b'{"value": 1, "timest', "payload", "not JSON at byte 20"),
        (b"\xff", "payload", "not JSON at byte 0"),
        (b"[1, 2]", "payload", "a JSON list, not an object"),
        (b"42", "payload", "a JSON int, not an object"),
        (b'{"timestamp_ms": 1}', "value", "missing (null is allowed)"),
        (b'{"value": 1, "datatype": 5}', "datatype", "Sparkplug datatype name such as Float (got 5)"),
        (b'{"value": 1, "datatype": ""}', "datatype", "Sparkplug datatype name"),
        (b'{"value": 1, "quality": "great"}', "quality", "one of good, uncertain, bad, stale (got 'great')"),
        (b'{"value": 1, "quality": ["good"]}', "quality", "one of good, uncertain, bad, stale"),
        (b'{"value": 1, "timestamp_ms": "now"}', "timestamp_ms", "non-negative integer of ms since 1970"),
        (b'{"value": 1, "timestamp_ms": -1}', "timestamp_ms", "non-negative integer"),
        (b'{"value": 1, "timestamp_ms": true}', "timestamp_ms", "non-negative integer"),
        (b'{"value": 1, "timestamp_ms": 1.5}', "timestamp_ms", "non-negative integer"),
        (b'{"value": 18446744073709551616}', "value", "beyond 64 bits"),
        (b'{"value": -9223372036854775809}', "value", "beyond 64 bits"),
        # orjson reads it, Python's json (the exact reading of a number beyond 64 bits) recursed too deep
        (b'{"value": 1e300, "x": ' + b"[" * 1000 + b"]" * 1000 + b"}", "payload", "nested too deep"),
        (b'{"value": "x", "datatype": "Int32"}', "value", "a string, but the datatype is Int32"),
        (b'{"value": "x", "datatype": "Double"}', "value", "a string, but the datatype is Double"),
        (b'{"value": "x", "datatype": "Boolean"}', "value", "a string, but the datatype is Boolean"),
        (b'{"value": 300, "datatype": "UInt8"}', "value", "300 is outside UInt8 (0..255)"),
        (b'{"value": -1, "datatype": "DateTime"}', "value", "outside DateTime"),
        (b'{"value": 1.5, "datatype": "Int32"}', "value", "1.5 is not an integer (Int32)"),
        (b'{"value": 1.5, "datatype": "String"}', "value", "a number, but the datatype is String"),
        (b'{"value": 1, "datatype": "Boolean"}', "value", "a number, but the datatype is Boolean"),
        (b'{"value": true, "datatype": "Int32"}', "value", "true/false, but the datatype is Int32"),
        (b'{"value": true, "datatype": "Text"}', "value", "true/false, but the datatype is Text"),
        (b'{"value": [1], "datatype": "Double"}', "value", "a JSON list, but the datatype is Double"),
        (b'{"value": {"a": 1}, "datatype": "String"}', "value", "a JSON dict, but the datatype is String"),
    ],
)
def test_every_broken_rule_names_its_field(payload: bytes, field: str, reason: str) -> None:
    with pytest.raises(EnvelopeError) as info:
        read_envelope(payload, now_ms=NOW)
    assert info.value.field == field
    assert reason in info.value.reason
    assert str(info.value).startswith(f"{field}: ")


@pytest.mark.parametrize(
    ("value", "datatype"),
    [
        (None, "Int32"),  # null fits every datatype (quality says why)
        (1.5, "Double"),
        (1, "Double"),
        (-(2**31), "Int32"),
        (2**64 - 1, "UInt64"),
        (True, "Boolean"),
        ("a", "UUID"),
        ([1, 2], "Int32Array"),
        ({"columns": []}, "DataSet"),
        ("anything", "SomethingNew"),
    ],
)
def test_values_that_fit(value: object, datatype: str) -> None:
    read = read_envelope(orjson.dumps({"value": value, "datatype": datatype}), now_ms=NOW)
    assert (read.value, read.datatype) == (value, datatype)
