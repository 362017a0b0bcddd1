"""The SQL source's config: refusals naming the rule, every field described, exports honest, a registered kind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from bridges.registry import KINDS, build_source
from bridges.sql import SqlSource, state_path
from model.bridges import BridgeConfig
from model.bridges.sql import SqlBridgeConfig
from tests.exports import assert_all_is_honest
from uns.connect import network_clients
from uns.mqtt.types import BrokerUrl


@pytest.mark.parametrize(
    "name",
    ["bridges.sql", "bridges.sql.mapping", "bridges.sql.source", "bridges.sql.state", "bridges.sql.statement",
     "model.bridges.sql"],
)  # fmt: skip
def test_exports(name: str) -> None:
    assert_all_is_honest(name)


def _config(**query: object) -> dict[str, Any]:
    base: dict[str, Any] = {"name": "lab", "table": "lab", "key": ["id"], "watermark": {"column": "updated_at"},
                            "metrics": [{"name": "V", "column": "v"}]}  # fmt: skip
    base.update(query)
    return {"kind": "sql", "name": "lims", "edge": {"group": "g"}, "url": "sqlite+aiosqlite:///x.db",
            "queries": [{k: v for k, v in base.items() if v is not None}]}  # fmt: skip


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"query": "SELECT 1"}, "exactly one of table and query"),
        ({"table": None}, "exactly one of table and query"),
        ({"mes": {"event": "work_order", "path": "acme/l1"}}, "exactly one of metrics and mes"),
        ({"watermark": {"column": "id", "kind": "id"}}, "time_column is needed"),
        ({"metrics": [{"name": "Sql/RowsRead", "column": "v"}]}, "not start with Sql/"),
        ({"metrics": None, "mes": {"event": "work_order"}}, "exactly one of path and path_column"),
        ({"metrics": None, "mes": {"event": "work_order", "path": "Acme/L1"}}, "is not an equipment path"),
        ({"metrics": None, "mes": {"event": "downtime", "path": "acme/l1"}}, "Input should be 'work_order'"),
        ({"table": "lab; DROP TABLE x"}, "String should match pattern"),
    ],
)
def test_bad_configs_are_refused_saying_why(query: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TypeAdapter(BridgeConfig).validate_python(_config(**query))


def test_two_queries_of_one_name_are_refused() -> None:
    data = _config()
    data["queries"] *= 2
    with pytest.raises(ValidationError, match="query names must be unique"):
        SqlBridgeConfig.model_validate(data)


def test_every_field_is_described() -> None:
    schema = SqlBridgeConfig.model_json_schema()
    for model in [schema, *schema["$defs"].values()]:
        for field, spec in model.get("properties", {}).items():
            assert spec.get("description"), f"{model.get('title')}.{field} has no description"


def test_the_password_never_shows() -> None:
    data = _config()
    data["url"] = "mysql+asyncmy://erp:s3cret@db.local:3306/erp"
    assert SqlBridgeConfig.model_validate(data).url_safe == "mysql+asyncmy://erp:***@db.local:3306/erp"


def test_sql_is_a_registered_kind_beside_its_edge_buffer(tmp_path: Path) -> None:
    config = TypeAdapter(BridgeConfig).validate_python(_config())
    assert "sql" in KINDS
    source = build_source(config, network_clients(BrokerUrl(port=1)), tmp_path)
    assert isinstance(source, SqlSource)
    assert isinstance(config, SqlBridgeConfig)
    assert state_path(config, tmp_path) == tmp_path / "bridges" / "lims" / "sql-state.sqlite"
