"""The pure parts of the OPC UA bridge: type and value mapping, quality, names, config checks, exports."""

from __future__ import annotations

import datetime as dt

import pytest
from asyncua import ua
from asyncua.ua.status_codes import StatusCodes

from bridges.opcua import OpcUaSource
from bridges.opcua.connection import subscription_parameters
from bridges.opcua.discovery import metric_name
from bridges.opcua.mapping import (
    converter_for,
    datatype_for_variant,
    epoch_ms,
    quality_of,
    status_name,
    to_variant,
    variant_for_datatype,
    variant_for_datatype_id,
)
from model.envelope import Quality
from tests.bridges.opcua.harness import config
from tests.exports import assert_all_is_honest
from uns.errors import ConfigError
from uns.sparkplug import DataType, MetricValue

V = ua.VariantType


@pytest.mark.parametrize(
    ("code", "quality"),
    [
        (StatusCodes.Good, Quality.good),
        (StatusCodes.GoodLocalOverride, Quality.good),
        (StatusCodes.Uncertain, Quality.uncertain),
        (StatusCodes.UncertainLastUsableValue, Quality.uncertain),
        (StatusCodes.UncertainSensorNotAccurate, Quality.uncertain),
        (StatusCodes.Bad, Quality.bad),
        (StatusCodes.BadNodeIdUnknown, Quality.bad),
        (StatusCodes.BadSensorFailure, Quality.bad),
        (StatusCodes.BadCommunicationError, Quality.bad),
        (0xC0000000, Quality.bad),  # reserved severity 11 counts as bad
    ],
)
def test_status_code_severity_is_quality(code: int, quality: Quality) -> None:
    assert quality_of(code) is quality


@pytest.mark.parametrize(
    ("code", "name"),
    [(StatusCodes.BadNodeIdUnknown, "BadNodeIdUnknown"), (StatusCodes.Good, "Good"), (0x80FF0000, "0x80FF0000")],
)
def test_status_names(code: int, name: str) -> None:
    assert status_name(code) == name


@pytest.mark.parametrize(
    ("variant", "datatype"),
    [
        (V.Boolean, DataType.Boolean),
        (V.SByte, DataType.Int8),
        (V.Byte, DataType.UInt8),
        (V.Int16, DataType.Int16),
        (V.UInt16, DataType.UInt16),
        (V.Int32, DataType.Int32),
        (V.UInt32, DataType.UInt32),
        (V.Int64, DataType.Int64),
        (V.UInt64, DataType.UInt64),
        (V.Float, DataType.Float),
        (V.Double, DataType.Double),
        (V.String, DataType.String),
        (V.LocalizedText, DataType.String),
        (V.DateTime, DataType.DateTime),
        (V.Guid, DataType.UUID),
        (V.ByteString, DataType.Bytes),
        (V.ExtensionObject, None),
        (V.NodeId, None),
        (V.Variant, None),
    ],
)
def test_variant_types_map_to_datatypes(variant: ua.VariantType, datatype: DataType | None) -> None:
    assert datatype_for_variant(variant) == datatype


@pytest.mark.parametrize(
    ("datatype", "variant"),
    [(DataType.Double, V.Double), (DataType.Int8, V.SByte), (DataType.Text, V.String), (DataType.UInt64, V.UInt64)],
)
def test_declared_datatypes_pick_a_variant(datatype: DataType, variant: ua.VariantType) -> None:
    assert variant_for_datatype(datatype) is variant


def test_datatypes_without_a_variant_are_refused() -> None:
    with pytest.raises(ValueError, match="DataSet has no OPC UA variant type"):
        variant_for_datatype(DataType.DataSet)


@pytest.mark.parametrize(
    ("namespace", "identifier", "variant"),
    [
        (0, 11, V.Double),
        (0, 1, V.Boolean),
        (0, 21, V.LocalizedText),
        (0, 290, V.Double),  # Duration
        (0, 294, V.DateTime),  # UtcTime
        (0, 29, V.Int32),  # Enumeration
        (0, 26, None),  # Number is abstract: the value decides
        (0, 22, None),  # Structure
        (2, 11, None),  # a server's own type
        (0, "Double", None),
    ],
)
def test_datatype_node_ids(namespace: int, identifier: object, variant: ua.VariantType | None) -> None:
    assert variant_for_datatype_id(namespace, identifier) == variant


_T0 = dt.datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("datatype", "raw", "value"),
    [
        (DataType.Boolean, True, True),
        (DataType.Boolean, 0, False),
        (DataType.Int16, -3, -3),
        (DataType.UInt32, 7.0, 7),
        (DataType.Int64, True, 1),
        (DataType.Float, 2, 2.0),
        (DataType.Double, 1.5, 1.5),
        (DataType.String, "A", "A"),
        (DataType.String, ua.LocalizedText("Running"), "Running"),
        (DataType.String, 42, "42"),
        (DataType.DateTime, _T0, 1735787045678),
        (DataType.DateTime, _T0.replace(tzinfo=None), 1735787045678),
        (DataType.Bytes, b"\x00\x01", b"\x00\x01"),
    ],
)
def test_server_values_convert(datatype: DataType, raw: object, value: MetricValue) -> None:
    converted = converter_for(datatype)(raw)
    assert converted == value
    assert type(converted) is type(value)


@pytest.mark.parametrize(
    ("datatype", "variant", "raw", "value"),
    [
        (DataType.Double, ua.VariantType.Float, 101.9000015258789, "101.9"),  # float32 101.9 as asyncua gives it
        (DataType.Double, ua.VariantType.Float, 0.10000000149011612, "0.1"),
        (DataType.Double, ua.VariantType.Float, 3, "3.0"),
        (DataType.Double, ua.VariantType.Double, 101.9000015258789, "101.9000015258789"),  # a real double: kept
        (DataType.Float, ua.VariantType.Float, 101.9000015258789, "101.9000015258789"),  # Float: the host prints it
    ],
)
def test_a_float_node_read_as_double_keeps_its_float32_digits(
    datatype: DataType, variant: ua.VariantType, raw: object, value: str
) -> None:
    assert repr(converter_for(datatype, variant)(raw)) == value


@pytest.mark.parametrize(
    ("datatype", "raw", "reason"),
    [
        (DataType.Int32, 1.5, "expected an integer, got float 1.5"),
        (DataType.Int32, "7", "expected an integer, got str"),
        (DataType.Double, "x", "expected a number, got str"),
        (DataType.Boolean, "yes", "expected a boolean"),
        (DataType.DateTime, 5, "expected a DateTime"),
        (DataType.String, b"raw", "expected text, got bytes"),
    ],
)
def test_unconvertible_values_name_the_problem(datatype: DataType, raw: object, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        converter_for(datatype)(raw)


@pytest.mark.parametrize(
    ("value", "variant", "written"),
    [
        (True, V.Boolean, True),
        (1, V.Boolean, True),
        (-128, V.SByte, -128),
        (65535, V.UInt16, 65535),
        (3.0, V.Int32, 3),
        (2**64 - 1, V.UInt64, 2**64 - 1),
        (55, V.Double, 55.0),
        (1.5, V.Float, 1.5),
        ("on", V.String, "on"),
        ("on", V.LocalizedText, ua.LocalizedText("on")),
        (1735787045678, V.DateTime, _T0),
        (b"\x01", V.ByteString, b"\x01"),
    ],
)
def test_writes_take_the_node_variant(value: MetricValue, variant: ua.VariantType, written: object) -> None:
    assert to_variant(value, variant) == ua.Variant(written, variant)


@pytest.mark.parametrize(
    ("value", "variant", "reason"),
    [
        (128, V.SByte, r"128 is out of range for SByte \(-128..127\)"),
        (-1, V.UInt32, "out of range for UInt32"),
        (2**63, V.Int64, "out of range for Int64"),
        (1.5, V.Int32, "cannot write float 1.5 to a Int32 node"),
        (True, V.Int32, "cannot write bool"),
        (2, V.Boolean, "cannot write int 2 to a Boolean node"),
        ("1", V.Double, "cannot write str"),
        (True, V.Double, "cannot write bool"),
        (5, V.String, "cannot write int"),
        (None, V.Double, "cannot write NoneType"),
        (1, V.ExtensionObject, "writing ExtensionObject nodes is not supported"),
    ],
)
def test_writes_that_do_not_fit_are_refused(value: MetricValue, variant: ua.VariantType, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        to_variant(value, variant)


@pytest.mark.parametrize(
    ("moment", "ms"),
    [
        (dt.datetime(1970, 1, 1, tzinfo=dt.UTC), 0),
        (_T0, 1735787045678),
        (dt.datetime(2025, 1, 2, 4, 4, 5, 678000, tzinfo=dt.timezone(dt.timedelta(hours=1))), 1735787045678),
        (dt.datetime(2025, 1, 2, 3, 4, 5, 678999, tzinfo=dt.UTC), 1735787045678),
    ],
)
def test_epoch_ms(moment: dt.datetime, ms: int) -> None:
    assert epoch_ms(moment) == ms


@pytest.mark.parametrize(
    ("path", "name"),
    [(("Temperature",), "Temperature"), (("Motor", "Rpm"), "Motor/Rpm"), (("Flow l/min",), "Flow l_min")],
)
def test_metric_names_are_browse_paths(path: tuple[str, ...], name: str) -> None:
    assert metric_name(path) == name


@pytest.mark.parametrize(
    ("publishing_ms", "timeout_s", "keepalive"),
    [(100, 4.0, 20), (50, 1.0, 10), (1000, 4.0, 2), (5000, 4.0, 1), (300, 1.0, 2)],
)
def test_keepalive_comes_twice_per_liveness_window(publishing_ms: float, timeout_s: float, keepalive: int) -> None:
    params = subscription_parameters(config("opc.tcp://h:1", [{"id": "d", "nodes": [{"name": "a", "node_id": "i=1"}]}],
                                            publishing_interval_ms=publishing_ms, timeout_s=timeout_s))  # fmt: skip
    assert params.RequestedMaxKeepAliveCount == keepalive
    assert params.RequestedLifetimeCount >= 3 * keepalive
    assert params.RequestedPublishingInterval == publishing_ms


@pytest.mark.parametrize(
    ("devices", "path"),
    [
        ([{"id": "f", "nodes": [{"name": "T", "node_id": "Plant.Temp"}]}], "devices[0].nodes[0].node_id"),
        ([{"id": "f", "browse": [{"root": "ns=x;s=A"}]}], "devices[0].browse[0].root"),
    ],
)
def test_bad_node_ids_are_config_errors(devices: list[dict[str, object]], path: str) -> None:
    with pytest.raises(ConfigError) as caught:
        OpcUaSource(config=config("opc.tcp://127.0.0.1:4840", devices))
    assert caught.value.path == path
    assert "not an OPC UA node id" in str(caught.value)


@pytest.mark.parametrize(
    "module", ["bridges.opcua", "bridges.opcua.mapping", "bridges.opcua.discovery", "bridges.opcua.tags",
               "bridges.opcua.connection", "bridges.opcua.source"],
)  # fmt: skip
def test_all_is_honest(module: str) -> None:
    assert_all_is_honest(module)
