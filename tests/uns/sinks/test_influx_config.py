"""The InfluxDB sink's config: fields described, exports honest, bad values refused by field, no secret shown."""

from __future__ import annotations

import pytest

from model.schema import settings_json_schema
from model.sinks import InfluxSinkConfig
from tests.exports import assert_all_is_honest
from uns.sinks.influx import InfluxWriter

V2 = {"kind": "influxdb", "name": "influx", "url": "http://influx:8086", "org": "acme", "bucket": "plant"}


@pytest.mark.parametrize(
    "name", ["uns.sinks.influx", "uns.sinks.influx_lines", "tests.fixtures.influxdb", "uns.sinks.registry"]
)
def test_all_is_honest(name: str) -> None:
    assert_all_is_honest(name)


def test_every_influx_field_is_described_in_the_settings_schema() -> None:
    schema = settings_json_schema()
    sink = schema["$defs"]["InfluxSinkConfig"]  # type: ignore[index]
    missing = [name for name, prop in sink["properties"].items() if not prop.get("description")]
    assert missing == []
    assert set(sink["properties"]) == set(InfluxSinkConfig.model_fields)


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"url": "influx:8086"}, "url"),
        ({"url": "http://influx:8086/?db=x"}, "url"),
        ({"bucket": None}, "api v2 needs org and bucket"),
        ({"api": "v1"}, "api v1 needs database"),
        ({"username": "u"}, "username and password go together"),
        ({"measurement": "topic"}, "measurement"),
        ({"measurement_name": "#comment"}, "measurement_name"),
        ({"level_tags": ["a", "b"]}, "level_tags"),
        ({"level_tags": ["a", "b", "c", "d", "e e"]}, "level_tags"),
    ],
)
def test_bad_influx_config_is_refused_naming_the_field(changes: dict[str, object], error: str) -> None:
    data = {**V2, **changes}
    with pytest.raises(ValueError, match=error):
        InfluxSinkConfig.model_validate({k: v for k, v in data.items() if v is not None})


def test_no_token_or_password_in_the_repr_dump_or_target() -> None:
    v2 = InfluxSinkConfig.model_validate({**V2, "token": "tok-s3cret"})
    v1 = InfluxSinkConfig.model_validate(
        {**V2, "api": "v1", "database": "plant", "username": "uns", "password": "pw-s3cret"}
    )
    for config in (v2, v1):
        shown = repr(config) + config.model_dump_json() + InfluxWriter(config=config).target
        assert "s3cret" not in shown
    assert InfluxWriter(config=v1).target == "http://influx:8086 v1 db plant"
