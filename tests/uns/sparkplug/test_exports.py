from __future__ import annotations

import pytest

import uns.sparkplug
from tests.exports import assert_all_is_honest
from uns.sparkplug import sparkplug_b_pb2 as pb

_MODULES = [
    "uns.sparkplug",
    "uns.sparkplug.datatypes",
    "uns.sparkplug.payload",
    "uns.sparkplug.state",
    "uns.sparkplug.structured",
    "uns.sparkplug.topic",
    "uns.sparkplug.payload_types",
    "uns.sparkplug.values",
    "uns.sparkplug.wire",
]


@pytest.mark.parametrize("name", _MODULES)
def test_all_is_honest(name: str) -> None:
    module = assert_all_is_honest(name)
    assert module.__doc__


def test_package_re_exports_the_public_api() -> None:
    for name in ("DataType", "MessageType", "SparkplugTopic", "Metric", "Payload", "decode_payload", "encode_payload"):
        assert name in uns.sparkplug.__all__


def test_generated_schema_has_the_official_field_numbers() -> None:
    metric = pb.Payload.Metric.DESCRIPTOR.fields_by_name
    assert {n: f.number for n, f in metric.items()} == {
        "name": 1, "alias": 2, "timestamp": 3, "datatype": 4, "is_historical": 5, "is_transient": 6, "is_null": 7,
        "metadata": 8, "properties": 9, "int_value": 10, "long_value": 11, "float_value": 12, "double_value": 13,
        "boolean_value": 14, "string_value": 15, "bytes_value": 16, "dataset_value": 17, "template_value": 18,
        "extension_value": 19,
    }  # fmt: skip
    assert {n: f.number for n, f in pb.Payload.DESCRIPTOR.fields_by_name.items()} == {
        "timestamp": 1, "metrics": 2, "seq": 3, "uuid": 4, "body": 5,
    }  # fmt: skip
    assert pb.Payload.DESCRIPTOR.full_name == "org.eclipse.tahu.protobuf.Payload"
    assert pb.DataType.Value("DateTimeArray") == 34
