"""The edge node's metrics on the wire: DATA payloads by alias, and quality as Sparkplug 3.0's three codes.

Pure: what ``EdgeSession`` hands over (alias, datatype, metric, transient flag) becomes the bytes of one
NDATA or DDATA. Buffered and journaled records written before the three codes (uncertain as the OPC
code 64) go out with them too, read as the hub's host reads OPC codes.
"""

from __future__ import annotations

from collections.abc import Iterable

from model.envelope import Quality
from uns.sparkplug import DataType, Metric, PropertySet, PropertyValue
from uns.sparkplug import sparkplug_b_pb2 as _pb
from uns.sparkplug.quality import QUALITY_CODES, QUALITY_NAME, QUALITY_PROPERTY, quality_of_code
from uns.sparkplug.values import encode_scalar

__all__ = ["encode_data"]

_SPARKPLUG_CODES = frozenset(QUALITY_CODES.values())


def _sparkplug_code(code: int, props: PropertySet) -> tuple[int, PropertyValue | None]:
    """An OPC-style code as one of Sparkplug's three and its ``QUALITY_NAME``, read as the hub's host reads it.

    Buffers and journals written before ``QUALITY_NAME`` hold uncertain as 64 (``quality_of_code``).
    """
    quality = quality_of_code(code, props)
    if quality is Quality.uncertain:
        return QUALITY_CODES[quality], PropertyValue(type=DataType.String, value=quality.value)
    return QUALITY_CODES[quality], None if quality is Quality.good else props.get(QUALITY_NAME)


def encode_data(
    metrics: Iterable[tuple[int, DataType, Metric, bool]], *, seq: int, now_ms: int, historical: bool
) -> bytes:
    """A DATA payload with aliases only: no names and no datatypes (the birth gave them).

    Each metric is (alias, datatype, metric, transient); a transient one carries ``is_transient`` in every
    DATA as in its birth, for a host that reads the flag per message.
    """
    payload = _pb.Payload()
    payload.timestamp = now_ms
    payload.seq = seq
    for alias, datatype, metric, transient in metrics:
        wire = payload.metrics.add()
        wire.alias = alias
        if metric.timestamp is not None:
            wire.timestamp = metric.timestamp
        if historical:
            wire.is_historical = True
        if transient:
            wire.is_transient = True
        if metric.is_null or metric.value is None:
            wire.is_null = True
        else:
            field, raw = encode_scalar(datatype, metric.value)
            setattr(wire, field, raw)
        props = metric.properties
        if props is None:
            continue
        quality = props.get(QUALITY_PROPERTY)
        if quality is not None and isinstance(quality.value, int):
            code = quality.value
            if code in _SPARKPLUG_CODES:
                name = props.get(QUALITY_NAME)
            else:  # a record buffered before the three codes (uncertain as 64)
                code, name = _sparkplug_code(code, props)
            wire.properties.keys.append(QUALITY_PROPERTY)
            value = wire.properties.values.add()
            value.type = DataType.Int32
            value.int_value = code
            if name is not None and isinstance(name.value, str):
                wire.properties.keys.append(QUALITY_NAME)
                value = wire.properties.values.add()
                value.type = DataType.String
                value.string_value = name.value
    return payload.SerializeToString()
