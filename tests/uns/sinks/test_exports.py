"""The sink modules keep ``__all__`` honest, and every sink config field is described in the JSON Schema."""

from __future__ import annotations

import pytest

from model.schema import settings_json_schema
from model.sinks import PostgresSinkConfig, redact_dsn
from tests.exports import assert_all_is_honest


@pytest.mark.parametrize(
    "name",
    [
        "model.sinks",
        "uns.sinks",
        "uns.sinks.postgres",
        "uns.sinks.postgres_history",
        "uns.sinks.postgres_query",
        "uns.web.sink_history_api",
        "uns.sinks.postgres_sql",
        "uns.sinks.registry",
        "uns.sinks.run",
        "uns.sinks.service",
        "uns.sinks.writer",
        "uns.pending",
        "tests.fixtures.postgres",
    ],
)
def test_all_is_honest(name: str) -> None:
    assert_all_is_honest(name)


def test_every_sink_field_is_described_in_the_settings_schema() -> None:
    schema = settings_json_schema()
    sink = schema["$defs"]["PostgresSinkConfig"]  # type: ignore[index]
    missing = [name for name, prop in sink["properties"].items() if not prop.get("description")]
    assert missing == []
    assert set(sink["properties"]) == set(PostgresSinkConfig.model_fields)


@pytest.mark.parametrize(
    ("dsn", "shown"),
    [
        ("postgresql://uns:s3cr:et@db:5432/hist", "postgresql://uns:***@db:5432/hist"),
        ("postgresql://uns@db/hist", "postgresql://uns@db/hist"),
        ("postgres://db/hist?sslmode=require", "postgres://db/hist?sslmode=require"),
    ],
)
def test_the_dsn_password_never_shows(dsn: str, shown: str) -> None:
    assert redact_dsn(dsn) == shown


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("dsn", "mysql://db/x", "postgresql://"),
        ("db_schema", "Uns; DROP", "pattern"),
        ("topics", ["acme/#/x"], "not an MQTT topic filter"),
        ("topics", ["$share/g/acme/#"], "shared_group"),
        ("shared_group", "a/b", "pattern"),
    ],
)
def test_bad_sink_config_is_refused_naming_the_field(field: str, value: object, error: str) -> None:
    data = {"kind": "postgres", "name": "pg", "dsn": "postgresql://db/x", field: value}
    with pytest.raises(ValueError, match=error) as caught:
        PostgresSinkConfig.model_validate(data)
    assert field in str(caught.value)
