"""The InfluxDB sink's pure core: UNS rows to line protocol (typing, escaping, refusals) and refusal bodies."""

from __future__ import annotations

import orjson
import pytest

from uns.historian.rows import EventRow, Rejected, RowParser, SampleRow
from uns.sinks.influx_lines import (
    LineMapping,
    LineRefused,
    dead_letter_lines,
    event_line,
    refusal_reason,
    refused_lines,
    sample_line,
)

TS = 1_764_000_000_123
CELL = "acme/dallas/bottling/line1/filler"
TAGS = "enterprise=acme,site=dallas,area=bottling,line=line1,cell=filler"


def row(metric: str, value: object, datatype: str | None, *, path: str = CELL, quality: str = "good") -> SampleRow:
    body: dict[str, object] = {"value": value, "timestamp_ms": TS, "quality": quality}
    if datatype is not None:
        body["datatype"] = datatype
    parsed = RowParser(max_future_ms=10**12).parse(f"{path}/data/{metric}", orjson.dumps(body), now_ms=TS)
    assert isinstance(parsed, SampleRow), parsed
    return parsed


@pytest.mark.parametrize(
    ("value", "datatype", "field"),
    [
        (42, "UInt32", "value=42i"),
        (-7, "Int8", "value=-7i"),
        (2**63 - 1, "Int64", f"value={2**63 - 1}i"),  # exact beyond 2^53 (value_text)
        (21.5, "Float", "value=21.5"),
        (3, "Double", "value=3.0"),  # a float field stays a float
        (1e20, "Double", "value=1e+20"),
        (True, "Boolean", "value=true"),
        (False, "Boolean", "value=false"),
        ("lot 7", "String", 'value="lot 7"'),
        ('say "hi" \\ bye', "String", 'value="say \\"hi\\" \\\\ bye"'),
        ("two\nlines", "Text", 'value="two\nlines"'),  # a quoted string may hold a newline
        ({"speed": 3}, None, 'value="{\\"speed\\":3}"'),  # JSON as its text
        (None, "Float", "value_null=true"),
        (12, None, "value=12i"),  # inferred Int64
        (1764000000000, "DateTime", "value=1764000000000i"),
    ],
)
def test_a_sample_value_is_typed_by_its_datatype(value: object, datatype: str | None, field: str) -> None:
    line = sample_line(row("Temp", value, datatype), LineMapping())
    assert line == f"Temp,{TAGS},class=data,quality=good {field} {TS}"


@pytest.mark.parametrize(
    ("metric", "measurement"),
    [
        ("Production/GoodCount", "Production/GoodCount"),
        ("Line Speed", r"Line\ Speed"),
        ("a,b", r"a\,b"),
        ("x=1", "x=1"),  # '=' needs no escape in a measurement
    ],
)
def test_measurements_escape_commas_and_spaces(metric: str, measurement: str) -> None:
    line = sample_line(row(metric, 1.5, "Float"), LineMapping())
    assert line.startswith(f"{measurement},{TAGS},class=data,quality=good value=1.5 ")


@pytest.mark.parametrize(
    ("metric", "tag"),
    [("Line Speed", r"Line\ Speed"), ("a,b", r"a\,b"), ("x=1", r"x\=1"), ("Production/Good", "Production/Good")],
)
def test_tag_values_escape_commas_equals_and_spaces(metric: str, tag: str) -> None:
    line = sample_line(row(metric, 1.5, "Float"), LineMapping(measurement="fixed", measurement_name="plant data"))
    assert line == rf"plant\ data,{TAGS},class=data,metric={tag},quality=good value=1.5 {TS}"


def test_the_class_word_can_be_the_measurement_and_a_short_path_sets_fewer_level_tags() -> None:
    mapping = LineMapping(measurement="class", level_tags=("e", "s", "a", "l", "c"))
    line = sample_line(row("Energy", 3.5, "Double", path="acme/dallas", quality="stale"), mapping)
    assert line == f"data,e=acme,s=dallas,class=data,metric=Energy,quality=stale value=3.5 {TS}"


@pytest.mark.parametrize(
    ("value", "datatype", "metric", "why"),
    [
        (2**64 - 1, "UInt64", "Big", "beyond InfluxDB's 64-bit integer"),
        (1.0, "Float", "ends\\", "ending in a backslash"),
    ],
)
def test_what_line_protocol_cannot_carry_is_refused_naming_the_topic(
    value: object, datatype: str, metric: str, why: str
) -> None:
    sample = row(metric, value, datatype)
    with pytest.raises(LineRefused, match=why) as refused:
        sample_line(sample, LineMapping())
    assert refused.value.reason.startswith(f"{CELL}/data/{metric}: ")


def test_a_newline_in_a_metric_name_is_refused() -> None:
    sample = SampleRow(
        topic=f"{CELL}/data/a\nb", path=CELL, class_word="data", metric="a\nb", ts_ms=TS, value=1.0,
        value_text=None, value_json=None, quality="good", historical=False, source=None, datatype="Float",
        unit=None, unbound=False,
    )  # fmt: skip
    with pytest.raises(LineRefused, match="newline in a measurement"):
        sample_line(sample, LineMapping())


def test_an_mes_event_is_a_point_of_its_json_body_and_can_be_left_out() -> None:
    event = EventRow(event_key=1, topic=f"{CELL}/mes/count", path=CELL, event="count", ts_ms=TS, body='{"good":5}')
    assert event_line(event, LineMapping()) == f'mes_events,{TAGS},event=count body="{{\\"good\\":5}}" {TS}'
    assert event_line(event, LineMapping(events_measurement=None)) is None


def test_dead_letters_are_one_nanosecond_apart_with_their_topic_reason_and_payload() -> None:
    letters = [Rejected("a/b/data/x", "payload", "not JSON at byte 0", b"{bad"), Rejected("a b", "value", "r", b"")]
    body = dead_letter_lines(letters, sink="influx", measurement="uns_dead_letters", now_ns=1000).decode()
    assert body.splitlines() == [
        'uns_dead_letters,sink=influx,field=payload topic="a/b/data/x",reason="not JSON at byte 0",payload="{bad" 1000',
        'uns_dead_letters,sink=influx,field=value topic="a b",reason="r",payload="" 1001',
    ]


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (
            400,
            b'{"error":"partial write: points beyond retention policy dropped=1"}',
            "HTTP 400: partial write: points beyond retention policy dropped=1",
        ),
        (400, b'{"code":"invalid","message":"unable to parse \'x\'"}', "HTTP 400: unable to parse 'x'"),
        (
            400,
            b'{"error":"partial write of line protocol occurred","data":[{"original_line":"m v=\\"x\\" 1",'
            b'"line_number":2,"error_message":"invalid column type for column \'v\'"}]}',
            "HTTP 400: partial write of line protocol occurred: line 2: invalid column type for column 'v'",
        ),
        (413, b"Request Entity Too Large", "HTTP 413: Request Entity Too Large"),
    ],
)
def test_a_refusal_body_is_read_as_1x_2x_or_3x_says_it(status: int, body: bytes, reason: str) -> None:
    assert refusal_reason(status, body) == reason


@pytest.mark.parametrize(
    ("body", "lines"),
    [
        (b'{"error":"partial write","data":[{"line_number":2},{"line_number":7},{"line_number":"x"}]}', (2, 7)),
        (b'{"error":"partial write: field type conflict dropped=1"}', ()),
        (b'{"data": "not a list"}', ()),
        (b"not json", ()),
    ],
)
def test_the_refused_line_numbers_are_read_only_when_the_server_names_them(body: bytes, lines: tuple[int, ...]) -> None:
    assert refused_lines(body) == lines
