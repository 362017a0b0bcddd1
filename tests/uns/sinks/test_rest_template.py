"""The REST sink's pure parts: templates filled without eval and JSON-safe, keys, config and exports."""

from __future__ import annotations

from typing import cast

import orjson
import pytest

from model.schema import settings_json_schema
from model.sinks import RestRoute, RestSinkConfig, SqlInsertSinkConfig, SqlInsertTable
from tests.exports import assert_all_is_honest
from uns.historian.rows import EventRow, RowParser, SampleRow
from uns.sinks.rest import message_context
from uns.sinks.template import TemplateError, fill_text, fill_url, render_body

CONTEXT: dict[str, object] = {
    "topic": "acme/dallas/bottling/line1/filler/mes/order_complete",
    "path": "acme/dallas/bottling/line1/filler",
    "key": "00ff",
    "body": {"order_id": "WO 1/2", "quantity": 12, "note": 'say "hi"\n', "lots": [{"id": "L7"}], "ok": True},
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ({"q": "${body.quantity}"}, {"q": 12}),  # one placeholder keeps the JSON type
        ({"q": "n=${body.quantity}"}, {"q": "n=12"}),
        ({"note": "${body.note}"}, {"note": 'say "hi"\n'}),  # quotes and newlines stay inside the string
        ({"x": "<${body.note}>"}, {"x": '<say "hi"\n>'}),
        ({"lot": "${body.lots.0.id}"}, {"lot": "L7"}),
        ({"all": "${body.lots}"}, {"all": [{"id": "L7"}]}),
        ({"r": "${body.reason?}", "s": "-${body.reason?}-"}, {"r": None, "s": "--"}),
        ({"price": "$$5 ${body.ok}"}, {"price": "$5 true"}),
        (["${key}", 3, None], ["00ff", 3, None]),
        ({"code": "${__import__('os')}"}, {"code": "${__import__('os')}"}),  # not a name: left as text, never run
    ],
)
def test_a_body_template_is_filled_from_the_message(template: object, expected: object) -> None:
    assert orjson.loads(render_body(template, CONTEXT)) == expected


def test_no_template_sends_the_message_body_itself() -> None:
    assert orjson.loads(render_body(None, CONTEXT)) == CONTEXT["body"]


@pytest.mark.parametrize("template", [{"a": "${body.missing}"}, {"a": "x ${body.lots.3.id}"}, {"a": "${nope}"}])
def test_a_missing_name_refuses_the_message_naming_the_placeholder(template: object) -> None:
    with pytest.raises(TemplateError) as caught:
        render_body(template, CONTEXT)
    assert caught.value.placeholder in str(template)


def test_url_values_are_percent_encoded_and_header_line_breaks_refused() -> None:
    assert fill_url("http://erp/api/orders/${body.order_id}?q=${body.quantity}", CONTEXT) == (
        "http://erp/api/orders/WO%201%2F2?q=12"
    )
    assert fill_text("order ${body.order_id}", CONTEXT) == "order WO 1/2"
    with pytest.raises(TemplateError, match="line break"):
        fill_text("${body.note}", CONTEXT)


def test_the_idempotency_key_is_stable_across_re_deliveries_and_differs_between_messages() -> None:
    parser = RowParser(max_future_ms=1000)
    topic = "acme/dallas/bottling/line1/filler/mes/order_complete"
    first = parser.parse(topic, b'{"order_id":"WO-1","timestamp_ms":5}', now_ms=10)
    again = parser.parse(topic, b'{"order_id":"WO-1","timestamp_ms":5}', now_ms=99)
    other = parser.parse(topic, b'{"order_id":"WO-2","timestamp_ms":5}', now_ms=10)
    assert isinstance(first, EventRow)
    assert isinstance(again, EventRow)
    assert isinstance(other, EventRow)
    assert message_context(first, "erp")["key"] == message_context(again, "erp")["key"]
    assert message_context(first, "erp")["key"] != message_context(other, "erp")["key"]
    sample_topic = "acme/dallas/bottling/line1/filler/kpi/oee"
    sample = parser.parse(sample_topic, b'{"value":7,"timestamp_ms":5,"datatype":"Int32"}', now_ms=10)
    assert isinstance(sample, SampleRow)
    context = message_context(sample, "erp")
    assert context["body"] == {"value": 7, "timestamp_ms": 5, "quality": "good", "datatype": "Int32"}
    assert context["timestamp"] == "1970-01-01T00:00:00.005Z"
    assert (context["class"], context["name"]) == ("kpi", "oee")


def test_every_rest_and_sql_insert_sink_field_is_described_in_the_settings_schema() -> None:
    defs = cast(dict[str, dict[str, dict[str, dict[str, object]]]], settings_json_schema()["$defs"])
    models = (RestSinkConfig, RestRoute, SqlInsertSinkConfig, SqlInsertTable)
    for model, name in ((model, model.__name__) for model in models):
        properties = defs[name]["properties"]
        assert [field for field, prop in properties.items() if not prop.get("description")] == []
        assert set(properties) == set(model.model_fields)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"routes": []}, "routes"),
        ({"routes": [{"url": "ftp://erp/x"}]}, "http:// or https://"),
        ({"routes": [{"url": "http://erp/x", "match": "a/#/b"}]}, "not an MQTT topic filter"),
        ({"routes": [{"url": "http://erp/x", "method": "GET"}]}, "method"),
        ({"idempotency_header": "Bad Header"}, "idempotency_header"),
        ({"auth": {"kind": "oauth2", "token_url": "http://a", "client_id": "c", "client_secret": "s"}}, "auth"),
    ],
)
def test_bad_rest_sink_config_is_refused_naming_the_field(data: dict[str, object], error: str) -> None:
    config = {"kind": "rest", "name": "erp", "routes": [{"url": "http://erp/x"}], **data}
    with pytest.raises(ValueError, match=error):
        RestSinkConfig.model_validate(config)


def test_the_auth_secret_never_shows() -> None:
    config = RestSinkConfig.model_validate(
        {
            "kind": "rest",
            "name": "erp",
            "routes": [{"url": "http://erp/x"}],
            "auth": {"kind": "basic", "username": "u", "password": "s3cret"},
        }
    )
    assert "s3cret" not in repr(config)
    assert "s3cret" not in config.model_dump_json()


@pytest.mark.parametrize(
    "name",
    [
        "uns.sinks.rest",
        "uns.sinks.template",
        "uns.sinks.dead_letters",
        "uns.sinks.replay",
        "uns.sinks.sql_insert",
        "tests.uns.sinks.rest_target",
    ],
)
def test_all_is_honest(name: str) -> None:
    assert_all_is_honest(name)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"url": "sqlite:///x.db"}, "async URL"),
        ({"tables": []}, "tables"),
        ({"tables": [{"match": "#", "table": "a; drop", "columns": {"a": "${key}"}}]}, "table"),
        ({"tables": [{"match": "#", "table": "a", "columns": {}}]}, "columns"),
    ],
)
def test_bad_sql_insert_config_is_refused_naming_the_field(data: dict[str, object], error: str) -> None:
    config = {"kind": "sql_insert", "name": "erp", "url": "sqlite+aiosqlite:///erp.db",
              "tables": [{"match": "#", "table": "a", "columns": {"a": "${key}"}}], **data}  # fmt: skip
    with pytest.raises(ValueError, match=error):
        SqlInsertSinkConfig.model_validate(config)
