"""Encode and decode Sparkplug B payloads (pure: bytes in, Python values out, and back).

Decoding never gives up on a payload because of one metric: a metric whose alias is
unknown, whose datatype is unknown, or whose value does not match its datatype is left out
and reported as a :class:`MetricProblem`; every other metric is kept. Only bytes that are
not a valid Payload protobuf raise, with the byte offset where the wire format breaks.

Choices where the specification leaves room:

- ``datatype`` 0 (Unknown) on the wire counts as "no datatype": the lookup decides.
- A metric with neither name nor alias is an ``unknown_alias`` problem.
- A DATA or command metric (decoded with a ``lookup`` that knows it) has the datatype of its
  birth. Its value must fit that datatype; if it declares another one, its value must also read
  the same under both (a Double 4.0 on a Float is kept, a String on a Double or a UInt32
  4294967295 on an Int32 is not); and it needs a value unless ``is_null``. Anything else is a
  ``bad_value`` problem, so a value never travels on under a datatype it contradicts.
- A birth metric that is not ``is_null`` but carries no value decodes with ``value=None``
  (Template definitions do this); an ``is_null`` metric's value is always None.
- A bad property or metadata string makes the whole metric a ``bad_value`` problem.
- A payload ``uuid`` that is not UTF-8 is decoded with replacement characters.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from google.protobuf.message import DecodeError

from uns.errors import PayloadDecodeError
from uns.sparkplug import sparkplug_b_pb2 as _pb
from uns.sparkplug.datatypes import DataType
from uns.sparkplug.payload_types import (
    DataSet,
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
from uns.sparkplug.structured import (
    DATATYPES,
    basic_type,
    decode_cell,
    decode_dataset,
    decode_metadata,
    decode_property_set,
    encode_cell,
    encode_dataset,
    encode_metadata,
    encode_property_set,
    text,
)
from uns.sparkplug.values import SCALAR_DECODERS, decode_array, decode_scalar, encode_array, encode_scalar
from uns.sparkplug.wire import find_wire_error

__all__ = [
    "DataSet",
    "DecodedPayload",
    "Lookup",
    "MetaData",
    "Metric",
    "MetricProblem",
    "MetricValue",
    "Payload",
    "ProblemKind",
    "PropertySet",
    "PropertyValue",
    "Template",
    "TemplateParameter",
    "decode_payload",
    "encode_payload",
]

_VALUE_FIELDS: dict[DataType, str] = {
    DataType.Bytes: "bytes_value",
    DataType.File: "bytes_value",
    DataType.DataSet: "dataset_value",
    DataType.Template: "template_value",
    **{d: "bytes_value" for d in DataType if d.is_array},
}
_new = object.__new__


class _Problem(Exception):
    """One metric cannot be decoded; becomes a MetricProblem."""

    def __init__(self, kind: ProblemKind, reason: str, name: str | None) -> None:
        super().__init__(reason)
        self.kind: ProblemKind = kind
        self.reason = reason
        self.name = name


def decode_payload(data: bytes, *, topic: str = "", lookup: Lookup | None = None) -> DecodedPayload:
    """Decode a Sparkplug B payload.

    Args:
        data: the MQTT message payload.
        topic: the topic it arrived on, named in errors.
        lookup: resolves a DATA metric's ``(name, alias)`` to ``(name, datatype)`` from the
            birth certificate; used when the metric lacks its name or its datatype.

    Returns:
        The payload with every good metric, in wire order, and a problem per metric left out.

    Raises:
        PayloadDecodeError: ``data`` is not a valid Payload protobuf; ``offset`` is the byte
            where the wire format breaks.
    """
    message = _pb.Payload()
    try:
        message.ParseFromString(data)
    except DecodeError:
        found = find_wire_error(data)
        offset, reason = found if found is not None else (0, "protobuf rejected it (no single byte to blame)")
        raise PayloadDecodeError(topic, offset, reason) from None
    # Read each field once; HasField only when the value read is the default (absent or sent as such).
    timestamp: int | None = message.timestamp
    if not timestamp and not message.HasField("timestamp"):
        timestamp = None
    seq: int | None = message.seq
    if not seq and not message.HasField("seq"):
        seq = None
    uuid: str | bytes | None = message.uuid
    if isinstance(uuid, bytes):
        uuid = uuid.decode("utf-8", "replace")
    elif not uuid and not message.HasField("uuid"):
        uuid = None
    body: bytes | None = message.body
    if not body and not message.HasField("body"):
        body = None
    payload = Payload(timestamp=timestamp, seq=seq, uuid=uuid, body=body)
    metrics = payload.metrics
    problems: list[MetricProblem] = []
    for index, wire in enumerate(message.metrics):
        try:
            metrics.append(_decode_metric(wire, lookup))
        except _Problem as problem:
            alias = wire.alias if wire.HasField("alias") else None
            problems.append(
                MetricProblem(index=index, name=problem.name, alias=alias, kind=problem.kind, reason=problem.reason)
            )
    return DecodedPayload(payload=payload, problems=problems)


def encode_payload(payload: Payload) -> bytes:
    """Encode a payload to bytes, the inverse of :func:`decode_payload`.

    Raises:
        ValueError: naming the metric, when one has no datatype or a value that does not fit it.
    """
    message = _pb.Payload()
    if payload.timestamp is not None:
        message.timestamp = payload.timestamp
    if payload.seq is not None:
        message.seq = payload.seq
    if payload.uuid is not None:
        message.uuid = payload.uuid
    if payload.body is not None:
        message.body = payload.body
    for index, metric in enumerate(payload.metrics):
        _encode_metric(message.metrics.add(), metric, "metric", index)
    return message.SerializeToString()


# -- decoding ---------------------------------------------------------------------------------


def _decode_metric(wire: _pb.Payload.Metric, lookup: Lookup | None) -> Metric:
    """One metric; raises _Problem instead of returning a bad one.

    This runs for every metric the host receives, so it reads each field once, asks
    HasField only when the plain read is ambiguous, and inlines the scalar conversion.
    """
    has = wire.HasField
    name: str | bytes | None = wire.name
    if isinstance(name, bytes):
        raise _Problem("bad_value", "metric name is not valid UTF-8", name.decode("utf-8", "replace"))
    if not name and not has("name"):
        name = None
    alias: int | None = wire.alias
    if not alias and not has("alias"):
        alias = None
    number = wire.datatype
    datatype = DATATYPES.get(number)
    if datatype is None and number:
        raise _Problem("bad_value", f"datatype {number} is not a Sparkplug datatype", name)
    if name is None and alias is None:
        raise _Problem("unknown_alias", "metric has neither a name nor an alias", None)
    declared: DataType | None = None
    if lookup is not None:
        # DATA: the birth's datatype is the contract, even when the metric declares one of its own
        known = lookup(name, alias)
        if known is not None:
            if name is None:
                name = known[0]
            if datatype is not None and datatype != known[1]:
                declared = datatype
            datatype = known[1]
    if name is None:
        raise _Problem("unknown_alias", f"alias {alias} is not in the birth certificate", None)
    if datatype is None:
        raise _Problem("unknown_datatype", f"metric {name!r} has no datatype and its birth gives none", name)
    timestamp: int | None = wire.timestamp
    if not timestamp and not has("timestamp"):
        timestamp = None
    is_null = wire.is_null
    value: MetricValue = None
    try:
        if not is_null:
            field = wire.WhichOneof("value")
            if field is not None:
                scalar = SCALAR_DECODERS.get(datatype)
                if scalar is not None and field in scalar[0]:
                    convert = scalar[1]
                    value = getattr(wire, field) if convert is None else convert(field, getattr(wire, field))
                else:
                    value = _decode_value(datatype, field, wire)
                if declared is not None and not _same(value, _decode_value(declared, field, wire)):
                    # e.g. a UInt32 4294967295 on an alias born Int32 would read as -1
                    raise ValueError(f"the value reads differently as {datatype.name}")
            elif lookup is not None:
                raise ValueError(f"no {datatype.name} value and not is_null")
        properties = decode_property_set(wire.properties) if has("properties") else None
        metadata = decode_metadata(wire.metadata) if has("metadata") else None
    except ValueError as exc:
        if declared is not None:
            raise _Problem(
                "bad_value", f"metric {name!r} declares {declared.name} but was born {datatype.name}: {exc}", name
            ) from None
        raise _Problem("bad_value", f"metric {name!r}: {exc}", name) from None
    # Filling the slots directly costs a third of the keyword-argument __init__; the
    # round-trip tests compare whole Metrics, so a slot missed here would fail them.
    metric: Metric = _new(Metric)
    metric.name = name
    metric.alias = alias
    metric.timestamp = timestamp
    metric.datatype = datatype
    metric.value = value
    metric.is_null = is_null
    metric.is_historical = wire.is_historical
    metric.is_transient = wire.is_transient
    metric.properties = properties
    metric.metadata = metadata
    return metric


def _same(value: MetricValue, other: MetricValue) -> bool:
    """True if a value reads the same under two datatypes (NaN as NaN)."""
    if isinstance(value, float) and isinstance(other, float) and math.isnan(value):
        return math.isnan(other)
    return type(value) is type(other) and value == other


def _decode_value(datatype: DataType, field: str, wire: _pb.Payload.Metric) -> MetricValue:
    """The slow path of value decoding: mismatched scalars and every non-scalar type."""
    if datatype in SCALAR_DECODERS:
        return decode_scalar(datatype, field, getattr(wire, field))  # raises, naming the mismatch
    expected = _VALUE_FIELDS.get(datatype)
    if expected is None:
        raise ValueError(f"{datatype.name} is a property value type, not a metric datatype")
    if field != expected:
        raise ValueError(f"{datatype.name} value carried in {field}, expected {expected}")
    if datatype is DataType.DataSet:
        return decode_dataset(wire.dataset_value)
    if datatype is DataType.Template:
        return _decode_template(wire.template_value)
    if datatype.is_array:
        return decode_array(datatype, wire.bytes_value)
    return wire.bytes_value


def _decode_template(wire: _pb.Payload.Template) -> Template:
    metrics = []
    for index, inner in enumerate(wire.metrics):
        try:
            metrics.append(_decode_metric(inner, None))
        except _Problem as problem:
            raise ValueError(f"Template metric {index}: {problem.reason}") from None
    parameters = []
    for index, param in enumerate(wire.parameters):
        what = f"Template parameter {index}"
        datatype = basic_type(param.type, what)
        parameters.append(
            TemplateParameter(name=text(param.name, what), type=datatype, value=decode_cell(datatype, param, what))
        )
    return Template(
        version=text(wire.version, "Template version") if wire.HasField("version") else None,
        metrics=tuple(metrics),
        parameters=tuple(parameters),
        template_ref=text(wire.template_ref, "Template template_ref") if wire.HasField("template_ref") else None,
        is_definition=wire.is_definition,
    )


# -- encoding ---------------------------------------------------------------------------------


def _encode_metric(wire: _pb.Payload.Metric, metric: Metric, what: str, index: int) -> None:
    """Fill ``wire`` from ``metric``; ``what`` and ``index`` name it in errors (``metric 3 ('Speed')``)."""
    if metric.datatype is None or metric.datatype is DataType.Unknown:
        raise ValueError(f"{_label(what, index, metric)}: no datatype; every metric to encode needs one")
    try:
        if metric.name is not None:
            wire.name = metric.name
        if metric.alias is not None:
            wire.alias = metric.alias
        if metric.timestamp is not None:
            wire.timestamp = metric.timestamp
        wire.datatype = metric.datatype
        if metric.is_historical:
            wire.is_historical = True
        if metric.is_transient:
            wire.is_transient = True
        if metric.is_null:
            wire.is_null = True
        elif metric.value is not None:
            _encode_value(wire, metric.datatype, metric.value)
        # SetInParent: an empty PropertySet or MetaData is still sent, so it decodes back.
        if metric.properties is not None:
            wire.properties.SetInParent()
            encode_property_set(wire.properties, metric.properties)
        if metric.metadata is not None:
            wire.metadata.SetInParent()
            encode_metadata(wire.metadata, metric.metadata)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{_label(what, index, metric)}: {exc}") from None


def _label(what: str, index: int, metric: Metric) -> str:
    """Built only for an error: every metric of every payload encoded passes through here."""
    return f"{what} {index} ({metric.name!r})" if metric.name is not None else f"{what} {index} (alias {metric.alias})"


def _encode_value(wire: _pb.Payload.Metric, datatype: DataType, value: MetricValue) -> None:
    if datatype in SCALAR_DECODERS:
        field, raw = encode_scalar(datatype, value)
        setattr(wire, field, raw)
    elif datatype.is_array:
        if not isinstance(value, Sequence) or isinstance(value, str | bytes):
            raise ValueError(f"{datatype.name} needs a list, got {type(value).__name__}")
        wire.bytes_value = encode_array(datatype, value)
    elif datatype in (DataType.Bytes, DataType.File):
        if not isinstance(value, bytes):
            raise ValueError(f"{datatype.name} needs bytes, got {type(value).__name__}")
        wire.bytes_value = value
    elif datatype is DataType.DataSet:
        if not isinstance(value, DataSet):
            raise ValueError(f"DataSet needs a DataSet, got {type(value).__name__}")
        encode_dataset(wire.dataset_value, value)
    elif datatype is DataType.Template:
        if not isinstance(value, Template):
            raise ValueError(f"Template needs a Template, got {type(value).__name__}")
        _encode_template(wire.template_value, value)
    else:
        raise ValueError(f"{datatype.name} is a property value type, not a metric datatype")


def _encode_template(wire: _pb.Payload.Template, template: Template) -> None:
    if template.version is not None:
        wire.version = template.version
    for index, metric in enumerate(template.metrics):
        _encode_metric(wire.metrics.add(), metric, "Template metric", index)
    for param in template.parameters:
        if not param.type.is_basic:
            raise ValueError(f"Template parameter {param.name!r} type {param.type.name} is not a basic type")
        added = wire.parameters.add()
        added.name = param.name
        added.type = param.type
        encode_cell(added, param.type, param.value)
    if template.template_ref is not None:
        wire.template_ref = template.template_ref
    wire.is_definition = template.is_definition
