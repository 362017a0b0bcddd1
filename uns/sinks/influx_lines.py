"""Pure core of the InfluxDB sink: UNS rows to line protocol, and what a refused write's body says.

No I/O and no clock. The mapping (docs/sinks.md, "InfluxDB"): a sample of
``acme/dallas/bottling/line1/filler/data/Production/GoodCount`` becomes
``Production/GoodCount,enterprise=acme,site=dallas,area=bottling,line=line1,cell=filler,class=data,quality=good
value=42i 1764000000123``: the measurement is the metric name (or the class word, or a fixed name,
the metric then a tag), the tags are the equipment levels, the class word and the quality, and the
one field ``value`` is typed by the envelope's datatype (integer types ``i``, Boolean ``true``/``false``,
Float/Double a float, text types a string, JSON values their JSON text as a string; a null value is
the boolean field ``value_null``). Timestamps are milliseconds (``precision=ms``).

Escaping follows the line protocol spec: commas and spaces in measurements; commas, equals signs
and spaces in tag keys, tag values and field keys; double quotes and backslashes in string field
values. What line protocol cannot carry (a newline in a measurement or tag, a name ending in a
backslash, an integer beyond int64) raises ``LineRefused``
naming the row: the sink dead-letters that row and writes the others.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import orjson

from uns.historian.rows import EventRow, Rejected, SampleRow
from uns.query.values import INTEGER_TYPES

__all__ = [
    "LineMapping",
    "LineRefused",
    "dead_letter_lines",
    "event_line",
    "refusal_reason",
    "refused_lines",
    "sample_line",
]

_MEASUREMENT = str.maketrans({",": r"\,", " ": r"\ "})
_KEY = str.maketrans({",": r"\,", " ": r"\ ", "=": r"\="})
_STRING = str.maketrans({"\\": "\\\\", '"': '\\"'})
_TEXTS = frozenset({"String", "Text", "UUID", "Bytes", "File"})
_FLOATS = frozenset({"Float", "Double"})
_INT64 = (-(2**63), 2**63 - 1)
_CACHE_LIMIT = 200_000
_MAX_LINES_NAMED = 5


class LineRefused(Exception):
    """A row line protocol cannot carry; ``reason`` names the topic and the part."""

    def __init__(self, topic: str, reason: str) -> None:
        self.topic = topic
        self.reason = f"{topic}: {reason}"
        super().__init__(self.reason)


def _name(text: str, what: str, topic: str, table: dict[int, str]) -> str:
    if "\n" in text or "\r" in text:
        raise LineRefused(topic, f"line protocol cannot carry a newline in a {what} ({text!r})")
    if text.endswith("\\"):
        raise LineRefused(topic, f"line protocol cannot carry a {what} ending in a backslash ({text!r})")
    return text.translate(table)


def _string(text: str) -> str:
    return '"' + text.translate(_STRING) + '"'


@dataclasses.dataclass(slots=True)
class LineMapping:
    """How topics become measurements and tags (from ``InfluxSinkConfig``); caches each topic's line key."""

    measurement: str = "metric"
    """metric, class or fixed."""
    measurement_name: str = "uns"
    level_tags: Sequence[str] = ("enterprise", "site", "area", "line", "cell")
    events_measurement: str | None = "mes_events"
    _keys: dict[str, str] = dataclasses.field(default_factory=dict)

    def levels(self, path: str, topic: str) -> str:
        """``,enterprise=acme,site=dallas,...`` of an equipment path."""
        return "".join(
            f",{key}={_name(level, 'tag value', topic, _KEY)}"
            for key, level in zip(self.level_tags, path.split("/"), strict=False)
        )

    def sample_key(self, row: SampleRow) -> str:
        """Measurement and tags of a sample's series, quality left out (it changes per sample)."""
        key = self._keys.get(row.topic)
        if key is not None:
            return key
        if self.measurement == "metric":
            measurement, extra = row.metric, ""
        else:
            measurement = row.class_word if self.measurement == "class" else self.measurement_name
            extra = f",metric={_name(row.metric, 'tag value', row.topic, _KEY)}"
        key = (
            _name(measurement, "measurement", row.topic, _MEASUREMENT)
            + self.levels(row.path, row.topic)
            + f",class={row.class_word}"
            + extra
        )
        if len(self._keys) >= _CACHE_LIMIT:
            self._keys.clear()
        self._keys[row.topic] = key
        return key


def _value(row: SampleRow) -> str:
    """The field set of a sample: ``value=<typed>`` or ``value_null=true``."""
    datatype = row.datatype
    if row.value_json is not None:
        return "value=" + _string(row.value_json)
    if datatype in INTEGER_TYPES and (row.value is not None or row.value_text is not None):
        number = int(row.value_text) if row.value_text is not None else int(row.value or 0)
        if not _INT64[0] <= number <= _INT64[1]:
            raise LineRefused(row.topic, f"value {number} ({datatype}) is beyond InfluxDB's 64-bit integer")
        return f"value={number}i"
    if row.value_text is not None and (datatype in _TEXTS or row.value is None):
        return "value=" + _string(row.value_text)
    if row.value is None:
        return "value_null=true"
    if datatype == "Boolean":
        return "value=true" if row.value else "value=false"
    return f"value={row.value!r}"


def sample_line(row: SampleRow, mapping: LineMapping) -> str:
    """One sample's line (no trailing newline)."""
    quality = f",quality={row.quality}"
    return f"{mapping.sample_key(row)}{quality} {_value(row)} {row.ts_ms}"


def event_line(row: EventRow, mapping: LineMapping) -> str | None:
    """One MES event's line (its JSON body as the string field ``body``), or None when events are not written."""
    if mapping.events_measurement is None:
        return None
    measurement = _name(mapping.events_measurement, "measurement", row.topic, _MEASUREMENT)
    tags = mapping.levels(row.path, row.topic) + f",event={_name(row.event, 'tag value', row.topic, _KEY)}"
    return f"{measurement}{tags} body={_string(row.body)} {row.ts_ms}"


def dead_letter_lines(rejected: Sequence[Rejected], *, sink: str, measurement: str, now_ns: int) -> bytes:
    """Dead letters at nanosecond precision, one nanosecond apart so none overwrites another."""
    head = f"{measurement.translate(_MEASUREMENT)},sink={sink.translate(_KEY)},field="
    lines = []
    for index, row in enumerate(rejected):
        field = row.field.translate(_KEY).replace("\n", " ")
        payload = row.payload.decode("utf-8", errors="replace")
        fields = f"topic={_string(row.topic)},reason={_string(row.reason)},payload={_string(payload)}"
        lines.append(f"{head}{field} {fields} {now_ns + index}")
    return ("\n".join(lines) + "\n").encode()


def refused_lines(body: bytes) -> tuple[int, ...]:
    """The 1-based line numbers a partial write names (InfluxDB 3's ``data[].line_number``); () if none."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return ()
    lines = parsed.get("data") if isinstance(parsed, dict) else None
    if not isinstance(lines, list):
        return ()
    numbers = (item.get("line_number") for item in lines if isinstance(item, dict))
    return tuple(n for n in numbers if isinstance(n, int) and not isinstance(n, bool) and n >= 1)


def refusal_reason(status: int, body: bytes) -> str:
    """What a refused write's body says: 1.x ``{"error"}``, 2.x ``{"code", "message"}``, 3.x line numbers."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        text = body.decode("utf-8", errors="replace").strip()
        return f"HTTP {status}: {text[:300] or 'no body'}"
    if not isinstance(parsed, dict):
        return f"HTTP {status}: {str(parsed)[:300]}"
    message = str(parsed.get("error") or parsed.get("message") or parsed.get("code") or "")
    lines = parsed.get("data")
    if isinstance(lines, list):  # InfluxDB 3: [{"line_number": 2, "error_message": ..., "original_line": ...}]
        named = [
            f"line {item.get('line_number')}: {item.get('error_message')}" for item in lines if isinstance(item, dict)
        ]
        more = f" (+{len(named) - _MAX_LINES_NAMED} more)" if len(named) > _MAX_LINES_NAMED else ""
        message = f"{message}: {'; '.join(named[:_MAX_LINES_NAMED])}{more}"
    return f"HTTP {status}: {message[:500]}"
