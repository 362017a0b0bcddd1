from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.uns.sparkplug.strategies import METRIC_TYPES, metrics, payloads, property_sets, values_of
from uns.sparkplug import (
    DataType,
    Metric,
    MetricProblem,
    Payload,
    PropertySet,
    PropertyValue,
    decode_payload,
    encode_payload,
)
from uns.sparkplug import sparkplug_b_pb2 as pb

_SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def roundtrip(payload: Payload) -> Payload:
    decoded = decode_payload(encode_payload(payload), topic="test")
    assert decoded.problems == []
    return decoded.payload


@pytest.mark.parametrize("datatype", METRIC_TYPES, ids=lambda d: d.name)
@_SETTINGS
@given(data=st.data())
def test_every_datatype_roundtrips(datatype: DataType, data: st.DataObject) -> None:
    value = data.draw(values_of(datatype))
    metric = Metric(name="m", alias=data.draw(st.none() | st.integers(0, 1000)), datatype=datatype, value=value)  # type: ignore[arg-type]
    assert roundtrip(Payload(metrics=[metric])).metrics == [metric]


@_SETTINGS
@given(payload=payloads)
def test_whole_payloads_roundtrip(payload: Payload) -> None:
    assert roundtrip(payload) == payload


@_SETTINGS
@given(metric=metrics(st.sampled_from([DataType.Template])))
def test_templates_with_nested_metrics_roundtrip(metric: Metric) -> None:
    assert roundtrip(Payload(metrics=[metric])).metrics == [metric]


@_SETTINGS
@given(properties=property_sets)
def test_nested_property_sets_roundtrip(properties: PropertySet) -> None:
    metric = Metric(name="p", datatype=DataType.Boolean, value=True, properties=properties)
    assert roundtrip(Payload(metrics=[metric])).metrics == [metric]


@pytest.mark.parametrize(
    "flags",
    [
        {"is_null": True},
        {"is_historical": True},
        {"is_transient": True},
        {"is_null": True, "is_historical": True, "is_transient": True},
    ],
)
def test_flags_roundtrip_and_null_metrics_carry_no_value(flags: dict[str, bool]) -> None:
    metric = Metric(
        name="f",
        datatype=DataType.Int32,
        value=None if flags.get("is_null") else 7,
        is_null=flags.get("is_null", False),
        is_historical=flags.get("is_historical", False),
        is_transient=flags.get("is_transient", False),
    )
    assert roundtrip(Payload(metrics=[metric])).metrics == [metric]


def test_empty_containers_survive() -> None:
    metric = Metric(
        name="e",
        datatype=DataType.Int8,
        value=1,
        properties=PropertySet(
            {
                "set": PropertyValue(type=DataType.PropertySet, value=PropertySet()),
                "list": PropertyValue(type=DataType.PropertySetList, value=[]),
            }
        ),
    )
    assert roundtrip(Payload(metrics=[metric])).metrics == [metric]
    empty = Metric(name="e", datatype=DataType.Int8, value=1, properties=PropertySet())
    assert roundtrip(Payload(metrics=[empty])).metrics == [empty]


def test_alias_only_metric_is_resolved_through_the_lookup_and_keeps_its_alias() -> None:
    birth = {5: ("Line/Speed", DataType.Float)}
    wire = pb.Payload(seq=3)
    wire.metrics.add(alias=5, float_value=2.5)  # a DATA metric: alias only, no name, no datatype
    decoded = decode_payload(wire.SerializeToString(), lookup=lambda name, alias: birth.get(alias or -1))
    assert decoded.problems == []
    assert decoded.payload.metrics == [Metric(name="Line/Speed", alias=5, datatype=DataType.Float, value=2.5)]


def test_a_data_metric_declaring_another_datatype_than_its_birth_is_refused() -> None:
    data = encode_payload(Payload(metrics=[Metric(name="x", datatype=DataType.Int16, value=-2)]))
    decoded = decode_payload(data, lookup=lambda name, alias: ("x", DataType.Double))
    assert decoded.payload.metrics == []
    assert decoded.problems == [
        MetricProblem(
            index=0,
            name="x",
            alias=None,
            kind="bad_value",
            reason="metric 'x' declares Int16 but was born Double: Double value carried in int_value,"
            " expected double_value or float_value",
        )
    ]


def test_named_metric_without_datatype_takes_the_birth_datatype() -> None:
    wire = pb.Payload()
    wire.metrics.add(name="Temp", double_value=21.5)
    seen: list[tuple[str | None, int | None]] = []

    def lookup(name: str | None, alias: int | None) -> tuple[str, DataType] | None:
        seen.append((name, alias))
        return ("Temp", DataType.Double)

    decoded = decode_payload(wire.SerializeToString(), lookup=lookup)
    assert decoded.payload.metrics == [Metric(name="Temp", datatype=DataType.Double, value=21.5)]
    assert seen == [("Temp", None)]
