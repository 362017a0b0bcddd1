from __future__ import annotations

import struct
from collections.abc import Callable

import pytest

from uns.sparkplug import (
    DataSet,
    DataType,
    Metric,
    MetricProblem,
    Payload,
    PropertySet,
    PropertyValue,
    Template,
    decode_payload,
    encode_payload,
)
from uns.sparkplug import sparkplug_b_pb2 as pb

_BIRTH = {1: ("A", DataType.Int32), 2: ("B", DataType.Double), 3: ("C", DataType.String)}


def _lookup(name: str | None, alias: int | None) -> tuple[str, DataType] | None:
    return _BIRTH.get(alias) if alias is not None else None


def _good(payload: pb.Payload) -> None:
    payload.metrics.add(alias=1, int_value=(-7) & 0xFFFF_FFFF)
    payload.metrics.add(alias=2, double_value=2.5)
    payload.metrics.add(alias=3, string_value="ok")


_GOOD = [
    Metric(name="A", alias=1, datatype=DataType.Int32, value=-7),
    Metric(name="B", alias=2, datatype=DataType.Double, value=2.5),
    Metric(name="C", alias=3, datatype=DataType.String, value="ok"),
]

_M = pb.Payload.Metric

_BAD: list[tuple[str, pb.Payload.Metric, str, str]] = [
    ("unknown alias", _M(alias=99, int_value=1), "unknown_alias", "alias 99 is not in the birth certificate"),
    ("no name no alias", _M(int_value=1), "unknown_alias", "neither a name nor an alias"),
    ("datatype 99", _M(name="X", datatype=99), "bad_value", "datatype 99"),
    (
        "string for Int32",
        _M(name="X", datatype=3, string_value="7"),
        "bad_value",
        "Int32 value carried in string_value",
    ),
    ("Int8 out of range", _M(name="X", datatype=1, int_value=300), "bad_value", "outside the Int8 range"),
    (
        "array length not a multiple",
        _M(name="X", datatype=24, bytes_value=b"\x01" * 5),
        "bad_value",
        "Int32Array byte length 5 is not a multiple of 4",
    ),
    ("named without datatype", _M(name="X", double_value=1.0), "unknown_datatype", "'X' has no datatype"),
    ("PropertySet as metric type", _M(name="X", datatype=20, int_value=1), "bad_value", "property value type"),
    (
        "bad property",
        _M(
            name="X",
            datatype=11,
            boolean_value=True,
            properties=pb.Payload.PropertySet(keys=["unit"], values=[pb.Payload.PropertyValue(type=16)]),
        ),
        "bad_value",
        "property 'unit' has type 16",
    ),
    (
        "dataset with too few types",
        _M(name="X", datatype=16, dataset_value=pb.Payload.DataSet(columns=["a", "b"], types=[3])),
        "bad_value",
        "2 columns but 1 types",
    ),
    ("invalid UTF-8 name", _M.FromString(b"\x0a\x02\xff\xfe"), "bad_value", "not valid UTF-8"),
]


@pytest.mark.parametrize(("case", "bad", "kind", "reason"), _BAD, ids=[c[0] for c in _BAD])
@pytest.mark.parametrize("position", [0, 2, 3])
def test_one_bad_metric_is_reported_and_the_good_ones_kept(
    case: str, bad: pb.Payload.Metric, kind: str, reason: str, position: int
) -> None:
    wire = pb.Payload(timestamp=1, seq=4)
    _good(wire)
    wire.metrics.insert(position, bad)

    decoded = decode_payload(wire.SerializeToString(), topic="spBv1.0/g/DDATA/n/d", lookup=_lookup)

    assert decoded.payload.metrics == _GOOD
    assert len(decoded.problems) == 1
    problem = decoded.problems[0]
    assert (problem.index, problem.kind) == (position, kind)
    assert reason in problem.reason


def test_problem_names_the_metric() -> None:
    wire = pb.Payload()
    wire.metrics.add(name="Motor/Amps", alias=4, datatype=3, string_value="high")
    assert decode_payload(wire.SerializeToString()).problems == [
        MetricProblem(
            index=0,
            name="Motor/Amps",
            alias=4,
            kind="bad_value",
            reason="metric 'Motor/Amps': Int32 value carried in string_value, expected int_value or long_value",
        )
    ]


# -- interop: bytes as a third-party edge node (Tahu Java / Python, Ignition) builds them ------------------


def _third_party(build: Callable[[pb.Payload.Metric], None]) -> Metric:
    wire = pb.Payload(timestamp=1_700_000_000_000, seq=0)
    metric = wire.metrics.add(name="m", timestamp=1_700_000_000_001)
    build(metric)
    decoded = decode_payload(wire.SerializeToString())
    assert decoded.problems == []
    assert decoded.payload.timestamp == 1_700_000_000_000
    assert decoded.payload.seq == 0
    (result,) = decoded.payload.metrics
    assert result.timestamp == 1_700_000_000_001
    return result


_INTEROP: list[tuple[str, int, str, object, object]] = [
    # Java Tahu sign-extends Int8/16/32 to 32 bits; Python Tahu adds 2**bits: both mean the same.
    ("Int8 -5 sign-extended", 1, "int_value", 0xFFFF_FFFB, -5),
    ("Int8 -5 narrow", 1, "int_value", 251, -5),
    ("Int8 -128", 1, "int_value", 0xFFFF_FF80, -128),
    ("Int8 127", 1, "int_value", 127, 127),
    ("Int16 -300 sign-extended", 2, "int_value", (-300) & 0xFFFF_FFFF, -300),
    ("Int16 -300 narrow", 2, "int_value", 65536 - 300, -300),
    ("Int32 -70000", 3, "int_value", (-70000) & 0xFFFF_FFFF, -70000),
    ("Int32 min", 3, "int_value", 0x8000_0000, -(1 << 31)),
    ("Int32 in long_value", 3, "long_value", (-9) & 0xFFFF_FFFF_FFFF_FFFF, -9),
    ("Int64 -5", 4, "long_value", (-5) & 0xFFFF_FFFF_FFFF_FFFF, -5),
    ("Int64 min", 4, "long_value", 1 << 63, -(1 << 63)),
    ("UInt32 max", 7, "int_value", 0xFFFF_FFFF, 0xFFFF_FFFF),
    ("UInt32 in long_value", 7, "long_value", 0xFFFF_FFFF, 0xFFFF_FFFF),
    ("UInt64 max", 8, "long_value", (1 << 64) - 1, (1 << 64) - 1),
    ("Float", 9, "float_value", 1.5, 1.5),
    ("Double", 10, "double_value", -0.125, -0.125),
    ("Double sent as float", 10, "float_value", 0.5, 0.5),
    ("Boolean", 11, "boolean_value", True, True),
    ("String", 12, "string_value", "héllo", "héllo"),
    ("DateTime", 13, "long_value", 1_700_000_000_123, 1_700_000_000_123),
    ("UUID", 15, "string_value", "6f1c0f2e-1b8a-4c65-9d9e-1f1c2b3a4d5e", "6f1c0f2e-1b8a-4c65-9d9e-1f1c2b3a4d5e"),
    ("Bytes", 17, "bytes_value", b"\x00\xff", b"\x00\xff"),
    ("File", 18, "bytes_value", b"PK\x03\x04", b"PK\x03\x04"),
    # Arrays, as the Sparkplug 3.0 specification encodes them (little-endian, packed).
    ("Int8Array", 22, "bytes_value", bytes([0xE9, 0x7B]), [-23, 123]),
    ("Int16Array", 23, "bytes_value", struct.pack("<2h", -30000, 52), [-30000, 52]),
    ("Int32Array spec example", 24, "bytes_value", bytes.fromhex("15cd5b07b168de3a"), [123456789, 987654321]),
    ("Int64Array", 25, "bytes_value", struct.pack("<2q", -1, 1 << 40), [-1, 1 << 40]),
    ("UInt8Array", 26, "bytes_value", bytes([23, 250]), [23, 250]),
    ("UInt16Array", 27, "bytes_value", struct.pack("<2H", 30, 52000), [30, 52000]),
    ("UInt32Array", 28, "bytes_value", struct.pack("<2I", 52, 3293969225), [52, 3293969225]),
    ("UInt64Array", 29, "bytes_value", struct.pack("<Q", 16444743074749521625), [16444743074749521625]),
    ("FloatArray", 30, "bytes_value", struct.pack("<2f", 1.5, -2.25), [1.5, -2.25]),
    ("DoubleArray", 31, "bytes_value", struct.pack("<2d", 12.354213, 1022.9123213), [12.354213, 1022.9123213]),
    (
        "BooleanArray spec example",
        32,
        "bytes_value",
        bytes([0x0C, 0x00, 0x00, 0x00, 0x34, 0xD0]),
        [False, False, True, True, False, True, False, False, True, True, False, True],
    ),
    ("StringArray spec example", 33, "bytes_value", b"ABC\x00hello\x00", ["ABC", "hello"]),
    (
        "DateTimeArray",
        34,
        "bytes_value",
        struct.pack("<2q", 1256102875335, 1656107875000),
        [1256102875335, 1656107875000],
    ),
]


@pytest.mark.parametrize(("case", "datatype", "field", "raw", "expected"), _INTEROP, ids=[c[0] for c in _INTEROP])
def test_third_party_values_decode(case: str, datatype: int, field: str, raw: object, expected: object) -> None:
    def build(metric: pb.Payload.Metric) -> None:
        metric.datatype = datatype
        setattr(metric, field, raw)

    result = _third_party(build)
    assert result.datatype == datatype
    assert result.value == expected
    assert type(result.value) is type(expected)


# The forms we accept but do not send: narrow negatives, ints in long_value, a Double as float.
_CANONICAL = [c for c in _INTEROP if not any(w in c[0] for w in ("narrow", " in long_value", "sent as float"))]


@pytest.mark.parametrize(("case", "datatype", "field", "raw", "expected"), _CANONICAL, ids=[c[0] for c in _CANONICAL])
def test_our_encoding_of_each_value_matches_the_canonical_wire_form(
    case: str, datatype: int, field: str, raw: object, expected: object
) -> None:
    ours = pb.Payload()
    metric = Metric(name="m", datatype=DataType(datatype), value=expected)  # type: ignore[arg-type]
    ours.ParseFromString(encode_payload(Payload(metrics=[metric])))
    assert ours.metrics[0].WhichOneof("value") == field
    assert getattr(ours.metrics[0], field) == raw


def test_third_party_dataset_template_and_properties_decode() -> None:
    wire = pb.Payload(timestamp=5)
    table = wire.metrics.add(name="Recipe", datatype=16)
    table.dataset_value.num_of_columns = 2
    table.dataset_value.columns.extend(["step", "temp"])
    table.dataset_value.types.extend([2, 9])
    row = table.dataset_value.rows.add()
    row.elements.add(int_value=(-1) & 0xFFFF_FFFF)
    row.elements.add(float_value=80.5)
    row = table.dataset_value.rows.add()
    row.elements.add(int_value=2)
    row.elements.add()  # a null cell
    udt = wire.metrics.add(name="Motor", datatype=19)
    udt.template_value.template_ref = "MotorType"
    udt.template_value.is_definition = False
    udt.template_value.metrics.add(name="Amps", datatype=10, double_value=3.25)
    udt.template_value.parameters.add(name="rating", type=7, int_value=400)
    prop = wire.metrics.add(name="Speed", datatype=9, float_value=1.0)
    prop.properties.keys.extend(["engUnit", "limits"])
    prop.properties.values.add(type=12, string_value="rpm")
    nested = prop.properties.values.add(type=20)
    nested.propertyset_value.keys.append("high")
    nested.propertyset_value.values.add(type=3, int_value=(-3) & 0xFFFF_FFFF)

    decoded = decode_payload(wire.SerializeToString())

    assert decoded.problems == []
    recipe, motor, speed = decoded.payload.metrics
    assert recipe.value == DataSet(
        columns=("step", "temp"), types=(DataType.Int16, DataType.Float), rows=((-1, 80.5), (2, None))
    )
    assert isinstance(motor.value, Template)
    assert motor.value.template_ref == "MotorType"
    assert motor.value.metrics == (Metric(name="Amps", datatype=DataType.Double, value=3.25),)
    assert motor.value.parameters[0].value == 400
    assert speed.properties == PropertySet(
        {
            "engUnit": PropertyValue(type=DataType.String, value="rpm"),
            "limits": PropertyValue(
                type=DataType.PropertySet,
                value=PropertySet({"high": PropertyValue(type=DataType.Int32, value=-3)}),
            ),
        }
    )


def test_datatype_zero_means_absent_and_the_birth_decides() -> None:
    wire = pb.Payload()
    wire.metrics.add(alias=2, datatype=0, double_value=9.0)
    decoded = decode_payload(wire.SerializeToString(), lookup=_lookup)
    assert decoded.payload.metrics == [Metric(name="B", alias=2, datatype=DataType.Double, value=9.0)]


def test_null_metric_value_is_none_whatever_the_wire_holds() -> None:
    wire = pb.Payload()
    wire.metrics.add(name="n", datatype=3, is_null=True, int_value=5)
    assert decode_payload(wire.SerializeToString()).payload.metrics[0].value is None


def test_invalid_utf8_uuid_is_replaced_not_fatal() -> None:
    decoded = decode_payload(b"\x22\x02\xff\x41")
    assert decoded.payload.uuid == "\ufffdA"


@pytest.mark.parametrize(
    ("metric", "message"),
    [
        (Metric(name="Temp", value=1.0), "metric 1 ('Temp'): no datatype"),
        (Metric(alias=9, value=1), "metric 1 (alias 9): no datatype"),
        (Metric(name="Temp", datatype=DataType.Int32, value="hot"), "metric 1 ('Temp'): Int32 needs an int, got str"),
        (Metric(name="T", datatype=DataType.Int8, value=200), "200 is outside the Int8 range -128..127"),
        (Metric(name="T", datatype=DataType.UInt16, value=-1), "-1 is outside the UInt16 range"),
        (Metric(name="T", datatype=DataType.Boolean, value=1), "Boolean needs a bool, got int"),
        (Metric(name="T", datatype=DataType.Int32, value=True), "Int32 needs an int, got bool"),
        (Metric(name="T", datatype=DataType.Float, value=1e300), "does not fit a 32-bit Float"),
        (Metric(name="T", datatype=DataType.StringArray, value=["a\0b"]), "StringArray element 0 must be a str"),
        (Metric(name="T", datatype=DataType.Int8Array, value=[1, 500]), "Int8Array element out of range"),
        (Metric(name="T", datatype=DataType.BooleanArray, value=[True, 1]), "BooleanArray element 1 is a int"),
        (Metric(name="T", datatype=DataType.Int16Array, value="12"), "Int16Array needs a list, got str"),
        (Metric(name="T", datatype=DataType.Bytes, value="x"), "Bytes needs bytes, got str"),
        (Metric(name="T", datatype=DataType.PropertySet, value=1), "PropertySet is a property value type"),
        (Metric(name="T", datatype=DataType.DataSet, value=[1]), "DataSet needs a DataSet, got list"),
        (
            Metric(
                name="T",
                datatype=DataType.Template,
                value=Template(metrics=(Metric(name="inner", value=1),)),
            ),
            "Template metric 0 ('inner'): no datatype",
        ),
        (
            Metric(
                name="T",
                datatype=DataType.Int8,
                value=1,
                properties=PropertySet({"u": PropertyValue(type=DataType.Int8Array)}),
            ),
            "property 'u' has type",
        ),
    ],
)
def test_encode_rejects_what_cannot_be_sent_naming_the_metric(metric: Metric, message: str) -> None:
    with pytest.raises(ValueError, match=r"^metric 1 ") as info:
        encode_payload(Payload(metrics=[Metric(name="ok", datatype=DataType.Int8, value=1), metric]))
    assert message in str(info.value)
