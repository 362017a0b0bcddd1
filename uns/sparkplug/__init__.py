"""Sparkplug B: topics and payloads, encoded and decoded with no I/O."""

from uns.sparkplug.datatypes import DataType
from uns.sparkplug.payload import decode_payload, encode_payload
from uns.sparkplug.payload_types import (
    DataSet,
    DataSetCell,
    DecodedPayload,
    Lookup,
    MetaData,
    Metric,
    MetricProblem,
    MetricValue,
    Payload,
    ProblemKind,
    PropertySet,
    PropertyValue,
    Template,
    TemplateParameter,
)
from uns.sparkplug.state import decode_state, encode_state
from uns.sparkplug.topic import NAMESPACE, MessageType, SparkplugTopic

__all__ = [
    "NAMESPACE",
    "DataSet",
    "DataSetCell",
    "DataType",
    "DecodedPayload",
    "Lookup",
    "MessageType",
    "MetaData",
    "Metric",
    "MetricProblem",
    "MetricValue",
    "Payload",
    "ProblemKind",
    "PropertySet",
    "PropertyValue",
    "SparkplugTopic",
    "Template",
    "TemplateParameter",
    "decode_payload",
    "decode_state",
    "encode_payload",
    "encode_state",
]
