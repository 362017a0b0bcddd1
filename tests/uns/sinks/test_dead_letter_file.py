"""model.sinks.DeadLetterFileSink: the one dead-letter file setting of the REST, SQL insert and AMQP sinks."""

from __future__ import annotations

from pathlib import Path

import pytest

from model.schema import settings_json_schema
from model.sinks import AmqpSinkConfig, DeadLetterFileSink, RestSinkConfig, SqlInsertSinkConfig

_KINDS: list[tuple[type[DeadLetterFileSink], dict[str, object]]] = [
    (RestSinkConfig, {"kind": "rest", "routes": [{"match": "acme/#", "url": "http://127.0.0.1:1/x"}]}),
    (
        SqlInsertSinkConfig,
        {
            "kind": "sql_insert",
            "url": "sqlite+aiosqlite:///x.db",
            "tables": [{"match": "#", "table": "t", "columns": {"a": "${topic}"}}],
        },
    ),
    (AmqpSinkConfig, {"kind": "amqp", "url": "amqp://guest:guest@127.0.0.1:5672/"}),
]


@pytest.mark.parametrize(("model", "fields"), _KINDS)
def test_the_dead_letter_file_defaults_under_data_sinks_and_can_be_set(
    model: type[DeadLetterFileSink], fields: dict[str, object], tmp_path: Path
) -> None:
    default = model.model_validate({"name": "erp", **fields})
    assert default.dead_letters_file == Path("data") / "sinks" / "erp.dead-letters.sqlite"
    chosen = model.model_validate({"name": "erp", **fields, "dead_letters_path": str(tmp_path / "dead.sqlite")})
    assert chosen.dead_letters_file == tmp_path / "dead.sqlite"


@pytest.mark.parametrize("name", ["RestSinkConfig", "SqlInsertSinkConfig", "AmqpSinkConfig"])
def test_the_schema_describes_it_once_for_every_kind(name: str) -> None:
    schema = settings_json_schema()
    field = schema["$defs"][name]["properties"]["dead_letters_path"]  # type: ignore[index]
    assert field["description"] == DeadLetterFileSink.model_fields["dead_letters_path"].description
    assert "data/sinks/<name>.dead-letters.sqlite" in field["description"]
