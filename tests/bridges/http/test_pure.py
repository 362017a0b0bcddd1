"""The HTTP source's pure parts: Retry-After, Link headers, HMAC signatures, item mapping and poll state."""

from __future__ import annotations

import email.utils
from pathlib import Path

import orjson
import pytest
from pydantic import ValidationError

from bridges.http.headers import next_link
from bridges.http.mapping import Mapper, MappingError, find_items
from bridges.http.signature import SignatureError, check_signature, sign
from bridges.http.state import PollState
from model.bridges.http import HttpBridgeConfig
from uns.retry_after import retry_after_s

NOW = 1_764_000_000.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("120", 120.0),
        (" 3 ", 3.0),
        (email.utils.formatdate(NOW + 30, usegmt=True), 30.0),
        (email.utils.formatdate(NOW - 30, usegmt=True), 0.0),  # a date in the past: now
        ("soon", None),
        ("-5", None),
    ],
)
def test_retry_after(value: str | None, expected: float | None) -> None:
    assert retry_after_s(value, now_s=NOW) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ('<https://api/x?page=2>; rel="next"', "https://api/x?page=2"),
        ('<https://api/x?page=1>; rel="prev", <https://api/x?page=3>; rel="next"', "https://api/x?page=3"),
        ("<https://api/x?page=4>; rel=next", "https://api/x?page=4"),
        ('<https://api/x?page=5>; title="a"; rel="last next"', "https://api/x?page=5"),
        ('<https://api/x?page=1>; rel="first"', None),
    ],
)
def test_next_link(value: str | None, expected: str | None) -> None:
    assert next_link(value) == expected


def _check(body: bytes, header: str | None, timestamp: str | None, *, now: float = NOW) -> None:
    check_signature(
        b"key", body, header=header, prefix="sha256=", algorithm="sha256", timestamp=timestamp,
        tolerance_s=300.0, now_s=now,
    )  # fmt: skip


def test_signature_good_and_bad() -> None:
    body, stamp = b'{"a": 1}', str(int(NOW))
    good = "sha256=" + sign(b"key", body, timestamp=stamp)
    _check(body, good, stamp)
    _check(body, good.upper().replace("SHA256=", "sha256="), stamp)  # hex case does not matter
    cases = [
        (body + b" ", good, stamp, "does not match"),
        (body, good, str(int(NOW) + 1), "does not match"),  # the timestamp is signed
        (body, None, stamp, "header missing"),
        (body, good.removeprefix("sha256="), stamp, "start with"),
        (body, good, None, "timestamp header missing"),
        (body, good, "yesterday", "not Unix seconds"),
    ]
    for case_body, header, timestamp, reason in cases:
        with pytest.raises(SignatureError, match=reason):
            _check(case_body, header, timestamp)
    with pytest.raises(SignatureError, match=r"-301 s from now"):
        _check(body, good, stamp, now=NOW - 301)


def _config(**fields: object) -> HttpBridgeConfig:
    return HttpBridgeConfig.model_validate(
        {"name": "erp", "edge": {"group": "biz"}, "poll": {"url": "http://127.0.0.1:1/x"}, "key_path": "$.id", **fields}
    )


def test_metrics_map_and_refusals_name_item_and_path() -> None:
    config = _config(
        devices=[
            {
                "id": "press",
                "where": {"path": "$.machine", "equals": "press"},
                "timestamp_path": "$.at",
                "metrics": [{"path": "$.t", "name": "Temp"}, {"path": "$.n", "name": "Count", "type": "Int32"}],
            }
        ]
    )
    mapper = Mapper(config)
    item = {"id": "r1", "machine": "press", "at": "2025-11-24T16:00:00Z", "t": 20.5, "n": 3}
    [samples] = mapper.samples(item, "r1", now_ms=1)
    assert samples.device == "press"
    assert [(s.name, s.value, s.timestamp_ms) for s in samples.samples] == [
        ("Temp", 20.5, 1_764_000_000_000),
        ("Count", 3, 1_764_000_000_000),
    ]
    assert mapper.samples({**item, "machine": "oven"}, "r1", now_ms=1) == []  # another device's item
    with pytest.raises(MappingError, match=r"connector erp: item r1: \$\.n: 'x' is not a number") as caught:
        mapper.samples({**item, "n": "x"}, "r1", now_ms=1)
    assert (caught.value.connector, caught.value.key, caught.value.path) == ("erp", "r1", "$.n")
    with pytest.raises(MappingError, match=r"item r1: \$\.t: missing"):
        mapper.samples({k: v for k, v in item.items() if k != "t"}, "r1", now_ms=1)
    with pytest.raises(MappingError, match=r"\$\.at: 'noon' is not an ISO 8601 time"):
        mapper.samples({**item, "at": "noon"}, "r1", now_ms=1)
    assert mapper.key({"id": 7}, 3) == "7"
    assert mapper.key({}, 3) == "#3"


def test_events_map_with_stable_ids_and_model_checks() -> None:
    config = _config(
        events=[
            {
                "event": "work_order",
                "equipment_path": "acme/dallas/packaging/line1",
                "id_paths": ["$.id", "$.status"],
                "fields": {"order_id": "$.id", "product_id": "$.product", "quantity": "$.qty", "timestamp_ms": "$.at"},
                "constants": {"action": "release"},
            }
        ]
    )
    mapper = Mapper(config)
    item = {"id": "o1", "status": "released", "product": "cola", "qty": 10, "at": 1_764_000_000_000}
    [event] = mapper.events(item, "o1")
    assert event.topic == "acme/dallas/packaging/line1/mes/work_order"
    assert event.event_id == "erp:o1:released"
    assert orjson.loads(event.body) == {
        "action": "release", "event_id": "erp:o1:released", "source": "erp", "order_id": "o1",
        "product_id": "cola", "quantity": 10, "timestamp_ms": 1_764_000_000_000,
    }  # fmt: skip
    assert mapper.events(dict(item), "o1") == [event]  # polled again: the same event, the same id
    with pytest.raises(MappingError, match=r"item o1: \$\.qty: work_order\.quantity: ") as caught:
        mapper.events({**item, "qty": -1}, "o1")
    assert caught.value.path == "$.qty"
    with pytest.raises(MappingError, match=r"item o1: product_id: work_order.product_id: .*required when action"):
        mapper.events({k: v for k, v in item.items() if k != "product"}, "o1")
    with pytest.raises(MappingError, match=r"\$\.status: missing \(an event id part\)"):
        mapper.events({k: v for k, v in item.items() if k != "status"}, "o1")


def test_equipment_path_from_the_item() -> None:
    item = {"id": "s1", "line": "acme/dallas/line1"}
    body = {"shift_id": "A", "start_ms": 1, "end_ms": 2, "timestamp_ms": 1}
    config = _config(
        events=[
            {
                "event": "shift",
                "equipment_path_from": "$.line",
                "id_paths": ["$.id"],
                "fields": {},
                "constants": body,
            }
        ]
    )
    mapper = Mapper(config)
    [event] = mapper.events(item, "s1")
    assert event.topic == "acme/dallas/line1/mes/shift"
    for line, reason in (("Acme/Line 1", "is not an equipment path"), (7, "is not an equipment path")):
        with pytest.raises(MappingError, match=rf"item s1: \$\.line: .*{reason}"):
            mapper.events({**item, "line": line}, "s1")
    with pytest.raises(MappingError, match=r"item s1: \$\.line: missing"):
        mapper.events({"id": "s1"}, "s1")


def test_items_path() -> None:
    assert find_items("erp", {"data": {"items": [1, 2]}}, "$.data.items") == [1, 2]
    assert find_items("erp", {"one": True}, "$") == [{"one": True}]
    with pytest.raises(MappingError, match=r"item \(page\): \$\.items: no items there"):
        find_items("erp", {"other": []}, "$.items")


def test_config_refusals() -> None:
    with pytest.raises(ValidationError, match="give poll, webhook or both"):
        HttpBridgeConfig.model_validate({"name": "x", "edge": {"group": "g"}, "devices": []})
    with pytest.raises(ValidationError, match="status device"):
        _config(devices=[{"id": "api", "metrics": [{"path": "$.a", "name": "A"}]}])
    with pytest.raises(ValidationError, match="exactly one of equipment_path"):
        _config(events=[{"event": "shift", "id_paths": ["$.id"], "fields": {}}])


def test_poll_state_round_trip_and_damage(tmp_path: Path) -> None:
    path = tmp_path / "s" / "poll_state.json"
    assert PollState.load(path) == PollState()
    state = PollState(validators={"http://a/x?page=1": ('"v2"', "Mon, 24 Nov 2025 16:00:00 GMT")}, cursor="42")
    state.save(path)
    assert PollState.load(path) == state
    assert [p.name for p in path.parent.iterdir()] == ["poll_state.json"]  # no scratch file left
    for damaged in (b"{half", b'{"validators": {"u": [1, 2]}}', b'{"cursor": 7}', b"[]"):
        path.write_bytes(damaged)
        assert PollState.load(path) == PollState()  # unreadable: a full poll, never a lost item
