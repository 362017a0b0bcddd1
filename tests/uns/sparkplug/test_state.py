from __future__ import annotations

import json

import pytest

from uns.errors import SparkplugError
from uns.sparkplug import decode_state, encode_state


@pytest.mark.parametrize("online", [True, False])
def test_state_round_trips_as_the_spec_json(online: bool) -> None:
    data = encode_state(online, 1_700_000_000_000)
    assert json.loads(data) == {"online": online, "timestamp": 1_700_000_000_000}
    assert decode_state(data, topic="spBv1.0/STATE/h") == (online, 1_700_000_000_000)


def test_third_party_state_with_spaces_and_extra_fields_decodes() -> None:
    data = b'{ "online" : false, "timestamp" : 5, "extra": 1 }'
    assert decode_state(data, topic="spBv1.0/STATE/h") == (False, 5)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "not JSON"),
        (b"ONLINE", "not JSON"),
        (b"[true, 5]", "must be a JSON object, got list"),
        (b'{"timestamp": 5}', "'online' must be true or false, got None"),
        (b'{"online": "true", "timestamp": 5}', "'online' must be true or false"),
        (b'{"online": true}', "'timestamp' must be ms since the epoch, got None"),
        (b'{"online": true, "timestamp": "5"}', "'timestamp' must be ms"),
        (b'{"online": true, "timestamp": -1}', "'timestamp' must be ms"),
        (b'{"online": true, "timestamp": 1.5}', "'timestamp' must be ms"),
        (b'{"online": true, "timestamp": true}', "'timestamp' must be ms"),
    ],
)
def test_bad_state_payloads_raise_naming_the_problem(data: bytes, reason: str) -> None:
    with pytest.raises(SparkplugError) as info:
        decode_state(data, topic="spBv1.0/STATE/h")
    assert info.value.topic == "spBv1.0/STATE/h"
    assert reason in info.value.reason


def test_negative_timestamp_cannot_be_encoded() -> None:
    with pytest.raises(ValueError, match="ms since the epoch"):
        encode_state(True, -5)
