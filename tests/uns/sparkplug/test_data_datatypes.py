"""A DATA metric's value must fit the datatype of its birth: every datatype x every value field.

The birth is the contract (Sparkplug 3.0: DATA metrics need not repeat their datatype), so a value
that fits only some other datatype, declared or not, is a ``bad_value`` problem and the rest of the
payload is kept.
"""

from __future__ import annotations

import pytest

from uns.sparkplug import DataType, Metric, decode_payload
from uns.sparkplug import sparkplug_b_pb2 as pb
from uns.sparkplug.values import encode_array

_INTS = frozenset({"int_value", "long_value"})
_FLOATS = frozenset({"float_value", "double_value"})
_ACCEPTED: dict[DataType, frozenset[str]] = {
    **dict.fromkeys(
        (
            DataType.Int8,
            DataType.Int16,
            DataType.Int32,
            DataType.Int64,
            DataType.UInt8,
            DataType.UInt16,
            DataType.UInt32,
            DataType.UInt64,
            DataType.DateTime,
        ),
        _INTS,
    ),
    DataType.Float: _FLOATS,
    DataType.Double: _FLOATS,
    DataType.Boolean: frozenset({"boolean_value"}),
    DataType.String: frozenset({"string_value"}),
    DataType.Text: frozenset({"string_value"}),
    DataType.UUID: frozenset({"string_value"}),
    DataType.DataSet: frozenset({"dataset_value"}),
    DataType.Template: frozenset({"template_value"}),
    DataType.Bytes: frozenset({"bytes_value"}),
    DataType.File: frozenset({"bytes_value"}),
    **{d: frozenset({"bytes_value"}) for d in DataType if d.is_array},
}
"""The value fields a metric of each datatype may arrive in, written out (not read from the codec)."""
_FIELDS = (
    "int_value",
    "long_value",
    "float_value",
    "double_value",
    "boolean_value",
    "string_value",
    "bytes_value",
    "dataset_value",
    "template_value",
    "extension_value",
    None,  # no value at all, and not is_null
)
_NATURAL: dict[DataType, str] = {
    **dict.fromkeys(_ACCEPTED, "bytes_value"),
    **dict.fromkeys((d for d, f in _ACCEPTED.items() if f is _INTS), "int_value"),
    DataType.Int64: "long_value",
    DataType.UInt64: "long_value",
    DataType.DateTime: "long_value",
    DataType.Float: "float_value",
    DataType.Double: "double_value",
    DataType.Boolean: "boolean_value",
    DataType.String: "string_value",
    DataType.Text: "string_value",
    DataType.UUID: "string_value",
    DataType.DataSet: "dataset_value",
    DataType.Template: "template_value",
}
"""The field each datatype is encoded in, for a metric that is right about its own declared datatype."""
_GOOD_ALIAS = 100
_ONE: dict[DataType, object] = {
    **{d: 1 for d in DataType if d.is_array},
    DataType.FloatArray: 1.0,
    DataType.DoubleArray: 1.0,
    DataType.BooleanArray: True,
    DataType.StringArray: "x",
}
"""The one element of each array sample."""
_SAME_READING = [
    {d for d, f in _ACCEPTED.items() if f is _INTS},
    {DataType.Float, DataType.Double},
    {DataType.String, DataType.Text, DataType.UUID},
    {DataType.Bytes, DataType.File},
    {DataType.Int8Array, DataType.UInt8Array},
    {DataType.Int16Array, DataType.UInt16Array},
    {DataType.Int32Array, DataType.UInt32Array},
    {DataType.Int64Array, DataType.UInt64Array, DataType.DateTimeArray},
]
"""Datatypes under which each other's samples read the same (1, 1.5, "x", b"ab", arrays of one 1)."""


def _fill(metric: pb.Payload.Metric, datatype: DataType, field: str | None) -> None:
    """Put a value in ``field`` that would be a good value of a datatype carried there."""
    if field in ("int_value", "long_value"):
        setattr(metric, field, 1)
    elif field in ("float_value", "double_value"):
        setattr(metric, field, 1.5)
    elif field == "boolean_value":
        metric.boolean_value = True
    elif field == "string_value":
        metric.string_value = "x"
    elif field == "bytes_value":
        metric.bytes_value = encode_array(datatype, [_ONE[datatype]]) if datatype.is_array else b"ab"
    elif field is not None:
        getattr(metric, field).SetInParent()


def _decode(born: DataType, fill: pb.Payload.Metric) -> tuple[list[Metric], list[str]]:
    birth = {1: ("M", born), _GOOD_ALIAS: ("Good", DataType.Double)}
    wire = pb.Payload(seq=1)
    wire.metrics.add().CopyFrom(fill)
    wire.metrics.add(alias=_GOOD_ALIAS, double_value=2.5)
    decoded = decode_payload(wire.SerializeToString(), lookup=lambda name, alias: birth.get(alias or -1))
    assert decoded.payload.metrics[-1] == Metric(name="Good", alias=_GOOD_ALIAS, datatype=DataType.Double, value=2.5)
    for problem in decoded.problems:
        assert (problem.index, problem.name, problem.alias, problem.kind) == (0, "M", 1, "bad_value")
    return decoded.payload.metrics[:-1], [p.reason for p in decoded.problems]


@pytest.mark.parametrize("field", _FIELDS, ids=lambda f: f or "no-value")
@pytest.mark.parametrize("born", list(_ACCEPTED), ids=lambda d: d.name)
def test_each_value_field_is_kept_only_for_the_datatypes_it_carries(born: DataType, field: str | None) -> None:
    wire = pb.Payload.Metric(alias=1)
    _fill(wire, born, field)
    kept, reasons = _decode(born, wire)
    if field in _ACCEPTED[born]:
        assert reasons == []
        assert [(m.name, m.datatype) for m in kept] == [("M", born)]
    else:
        assert kept == []
        (reason,) = reasons
        assert born.name in reason
        assert (field or "no ") in reason


@pytest.mark.parametrize("declared", list(_ACCEPTED), ids=lambda d: d.name)
@pytest.mark.parametrize("born", list(_ACCEPTED), ids=lambda d: d.name)
def test_a_declared_datatype_is_kept_only_if_its_value_reads_the_same_under_the_birth(
    born: DataType, declared: DataType
) -> None:
    # the value fits the declared datatype: only the birth can say it is wrong (a String on a Double)
    wire = pb.Payload.Metric(alias=1, datatype=declared)
    _fill(wire, declared, _NATURAL[declared])
    kept, reasons = _decode(born, wire)
    if declared is born or any({born, declared} <= group for group in _SAME_READING):
        assert reasons == []
        assert [(m.name, m.alias, m.datatype) for m in kept] == [("M", 1, born)]
    else:
        assert kept == []
        (reason,) = reasons
        assert reason.startswith(f"metric 'M' declares {declared.name} but was born {born.name}: ")


def test_a_declared_datatype_reading_another_number_is_refused() -> None:
    wire = pb.Payload.Metric(alias=1, datatype=DataType.UInt32, int_value=0xFFFF_FFFF)
    kept, reasons = _decode(DataType.Int32, wire)
    assert kept == []
    assert reasons == ["metric 'M' declares UInt32 but was born Int32: the value reads differently as Int32"]


def test_a_declared_string_on_a_double_is_refused_naming_both() -> None:
    wire = pb.Payload.Metric(alias=1, datatype=DataType.String, string_value="not a number")
    kept, reasons = _decode(DataType.Double, wire)
    assert kept == []
    assert reasons == [
        "metric 'M' declares String but was born Double: Double value carried in string_value,"
        " expected double_value or float_value"
    ]


@pytest.mark.parametrize(
    ("born", "field", "raw", "why"),
    [
        (DataType.Int8, "int_value", 300, "outside the Int8 range"),
        (DataType.UInt8, "int_value", 256, "outside the UInt8 range"),
        (DataType.Int16, "long_value", 1 << 40, "outside the Int16 range"),
        (DataType.UInt32, "long_value", 1 << 32, "outside the UInt32 range"),
    ],
)
def test_an_integer_outside_its_births_range_is_refused(born: DataType, field: str, raw: int, why: str) -> None:
    wire = pb.Payload.Metric(alias=1)
    setattr(wire, field, raw)
    kept, reasons = _decode(born, wire)
    assert kept == []
    assert reasons == [f"metric 'M': {raw} in {field} is {why}"]


def test_a_null_data_metric_is_still_kept() -> None:
    kept, reasons = _decode(DataType.Double, pb.Payload.Metric(alias=1, is_null=True))
    assert reasons == []
    assert [(m.name, m.is_null, m.value) for m in kept] == [("M", True, None)]
