"""The edge node's metrics on the wire: DATA payloads by alias, and quality as Sparkplug 3.0's three codes.

Pure: what ``EdgeSession`` hands over (alias, datatype, metric, transient flag) becomes the bytes of one
NDATA or DDATA. Buffered and journaled records written before the three codes (uncertain as the OPC
code 64) go out with them too, read as the hub's host reads OPC codes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from model.envelope import Quality
from uns.sparkplug import DataType, Metric, PropertySet, PropertyValue
from uns.sparkplug import sparkplug_b_pb2 as _pb
from uns.sparkplug.values import encode_scalar

__all__ = ["QUALITY_CODES", "QUALITY_NAME", "encode_data", "quality_props"]

QUALITY_CODES: Mapping[Quality, int] = {Quality.good: 192, Quality.uncertain: 0, Quality.bad: 0, Quality.stale: 500}
"""A sample's quality as the ``Quality`` metric property (Int32), one of Sparkplug 3.0's three codes: 0 BAD,
192 GOOD, 500 STALE (tck-id-payloads-propertyset-quality-value-value). Uncertain has no code: it goes as BAD
(not established good, for any host) with ``QUALITY_NAME`` saying ``uncertain``, which the hub's host reads."""
QUALITY_NAME = "QualityName"
"""The String metric property that names a quality Sparkplug's codes cannot say (only ``uncertain``)."""


def quality_props(quality: Quality) -> PropertySet:
    """The ``Quality`` property (and ``QUALITY_NAME`` for uncertain) of a sample or a birth's metric."""
    props = {"Quality": PropertyValue(type=DataType.Int32, value=QUALITY_CODES[quality])}
    if quality is Quality.uncertain:
        props[QUALITY_NAME] = PropertyValue(type=DataType.String, value=quality.value)
    return PropertySet(props)


_SPARKPLUG_CODES = frozenset(QUALITY_CODES.values())
_OPC_UNCERTAIN_CODE = 64


def _sparkplug_code(code: int, name: PropertyValue | None) -> tuple[int, PropertyValue | None]:
    """An OPC-style code as one of Sparkplug's three, read as the hub's host reads it.

    Buffers and journals written before ``QUALITY_NAME`` hold uncertain as 64 (``uns.normalise.quality_of``).
    """
    if code >= QUALITY_CODES[Quality.good]:
        return QUALITY_CODES[Quality.good], None
    if code >= _OPC_UNCERTAIN_CODE:
        return QUALITY_CODES[Quality.uncertain], PropertyValue(type=DataType.String, value=Quality.uncertain.value)
    return QUALITY_CODES[Quality.bad], name


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
        quality = props.get("Quality")
        if quality is not None and isinstance(quality.value, int):
            code = quality.value
            name = props.get(QUALITY_NAME)
            if code not in _SPARKPLUG_CODES:  # a record buffered before the three codes (uncertain as 64)
                code, name = _sparkplug_code(code, name)
            wire.properties.keys.append("Quality")
            value = wire.properties.values.add()
            value.type = DataType.Int32
            value.int_value = code
            if name is not None and isinstance(name.value, str):
                wire.properties.keys.append(QUALITY_NAME)
                value = wire.properties.values.add()
                value.type = DataType.String
                value.string_value = name.value
    return payload.SerializeToString()
