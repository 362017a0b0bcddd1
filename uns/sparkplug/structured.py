"""Convert DataSet, PropertySet and MetaData values between Python and their protobuf messages.

Every function raises ``ValueError`` saying what does not fit; the payload codec turns that
into a ``bad_value`` problem (decoding) or an error naming the metric (encoding).
"""

from __future__ import annotations

from typing import Literal

from uns.sparkplug import sparkplug_b_pb2 as _pb
from uns.sparkplug.datatypes import DataType
from uns.sparkplug.payload_types import DataSet, DataSetCell, MetaData, PropertySet, PropertyValue
from uns.sparkplug.values import decode_scalar, encode_scalar

__all__ = [
    "DATATYPES",
    "basic_type",
    "decode_cell",
    "decode_dataset",
    "decode_metadata",
    "decode_property_set",
    "encode_cell",
    "encode_dataset",
    "encode_metadata",
    "encode_property_set",
    "text",
]

DATATYPES: dict[int, DataType] = {int(d): d for d in DataType if d is not DataType.Unknown}
"""Wire number → DataType, without Unknown (0 means "absent"); a dict lookup beats ``DataType(n)``."""

_PROPERTY_TYPES = frozenset(d for d in DataType if d.is_basic) | {DataType.PropertySet, DataType.PropertySetList}
_MetaText = Literal["content_type", "file_name", "file_type", "md5", "description"]
_METADATA_TEXTS: tuple[_MetaText, ...] = ("content_type", "file_name", "file_type", "md5", "description")

_Cell = _pb.Payload.DataSet.DataSetValue | _pb.Payload.Template.Parameter


def text(raw: str | bytes, what: str) -> str:
    """``raw`` from a string field; upb hands back bytes when they are not valid UTF-8."""
    if isinstance(raw, bytes):
        raise ValueError(f"{what} is not valid UTF-8")
    return raw


def basic_type(number: int, what: str) -> DataType:
    """The basic type (Int8 … Text) numbered ``number``."""
    datatype = DATATYPES.get(number)
    if datatype is None or not datatype.is_basic:
        raise ValueError(f"{what} has type {number}, which is not one of the basic types Int8..Text")
    return datatype


def decode_cell(datatype: DataType, wire: _Cell, what: str) -> DataSetCell:
    """The value of a DataSet cell or Template parameter; None when it carries none."""
    field = wire.WhichOneof("value")
    if field is None:
        return None
    if field == "extension_value":
        raise ValueError(f"{what} holds an extension value")
    try:
        return decode_scalar(datatype, field, getattr(wire, field))
    except ValueError as exc:
        raise ValueError(f"{what}: {exc}") from None


def encode_cell(wire: _Cell, datatype: DataType, value: DataSetCell) -> None:
    """Set the value of a DataSet cell or Template parameter (none for None)."""
    if value is not None:
        field, raw = encode_scalar(datatype, value)
        setattr(wire, field, raw)


def decode_dataset(wire: _pb.Payload.DataSet) -> DataSet:
    """A DataSet value; its column count, types and row lengths must agree."""
    columns = tuple(text(c, f"DataSet column {i} name") for i, c in enumerate(wire.columns))
    if wire.HasField("num_of_columns") and wire.num_of_columns != len(columns):
        raise ValueError(f"DataSet num_of_columns is {wire.num_of_columns} but it names {len(columns)} columns")
    if len(wire.types) != len(columns):
        raise ValueError(f"DataSet has {len(columns)} columns but {len(wire.types)} types")
    types = tuple(basic_type(t, f"DataSet column {i}") for i, t in enumerate(wire.types))
    rows = []
    for r, row in enumerate(wire.rows):
        if len(row.elements) != len(columns):
            raise ValueError(f"DataSet row {r} has {len(row.elements)} cells for {len(columns)} columns")
        rows.append(
            tuple(decode_cell(types[c], cell, f"DataSet row {r} column {c}") for c, cell in enumerate(row.elements))
        )
    return DataSet(columns=columns, types=types, rows=tuple(rows))


def encode_dataset(wire: _pb.Payload.DataSet, dataset: DataSet) -> None:
    """Fill ``wire`` from a DataSet value."""
    for datatype in dataset.types:
        if not datatype.is_basic:
            raise ValueError(f"DataSet column type {datatype.name} is not one of the basic types Int8..Text")
    wire.num_of_columns = dataset.num_of_columns
    wire.columns.extend(dataset.columns)
    wire.types.extend(int(t) for t in dataset.types)
    for r, row in enumerate(dataset.rows):
        elements = wire.rows.add().elements
        for c, (datatype, cell) in enumerate(zip(dataset.types, row, strict=True)):
            try:
                encode_cell(elements.add(), datatype, cell)
            except ValueError as exc:
                raise ValueError(f"DataSet row {r} column {c}: {exc}") from None


def decode_property_set(wire: _pb.Payload.PropertySet) -> PropertySet:
    """A PropertySet, nested sets and lists included."""
    if len(wire.keys) != len(wire.values):
        raise ValueError(f"PropertySet has {len(wire.keys)} keys but {len(wire.values)} values")
    items = {}
    for raw_key, value in zip(wire.keys, wire.values, strict=True):
        key = text(raw_key, "property key")
        items[key] = _decode_property_value(value, f"property {key!r}")
    return PropertySet(items)


def _decode_property_value(wire: _pb.Payload.PropertyValue, what: str) -> PropertyValue:
    datatype = DATATYPES.get(wire.type)
    if datatype is None or datatype not in _PROPERTY_TYPES:
        raise ValueError(f"{what} has type {wire.type}, which properties cannot have")
    field = None if wire.is_null else wire.WhichOneof("value")
    value: int | float | bool | str | PropertySet | list[PropertySet] | None = None
    if field is None:
        pass
    elif datatype is DataType.PropertySet:
        if field != "propertyset_value":
            raise ValueError(f"{what}: PropertySet value carried in {field}")
        value = decode_property_set(wire.propertyset_value)
    elif datatype is DataType.PropertySetList:
        if field != "propertysets_value":
            raise ValueError(f"{what}: PropertySetList value carried in {field}")
        value = [decode_property_set(item) for item in wire.propertysets_value.propertyset]
    elif field in ("propertyset_value", "propertysets_value", "extension_value"):
        raise ValueError(f"{what}: {datatype.name} value carried in {field}")
    else:
        try:
            value = decode_scalar(datatype, field, getattr(wire, field))
        except ValueError as exc:
            raise ValueError(f"{what}: {exc}") from None
    return PropertyValue(type=datatype, value=value, is_null=wire.is_null)


def encode_property_set(wire: _pb.Payload.PropertySet, properties: PropertySet) -> None:
    """Fill ``wire`` from a PropertySet (the caller marks ``wire`` present if it may be empty)."""
    for key, value in properties.items():
        wire.keys.append(key)
        _encode_property_value(wire.values.add(), value, key)


def _encode_property_value(wire: _pb.Payload.PropertyValue, prop: PropertyValue, key: str) -> None:
    if prop.type not in _PROPERTY_TYPES:
        raise ValueError(f"property {key!r} has type {prop.type!r}, which properties cannot have")
    wire.type = prop.type
    if prop.is_null:
        wire.is_null = True
    elif prop.value is None:
        pass
    elif prop.type is DataType.PropertySet:
        if not isinstance(prop.value, PropertySet):
            raise ValueError(f"property {key!r} of type PropertySet needs a PropertySet")
        wire.propertyset_value.SetInParent()  # an empty set is still a value
        encode_property_set(wire.propertyset_value, prop.value)
    elif prop.type is DataType.PropertySetList:
        if not isinstance(prop.value, list) or not all(isinstance(p, PropertySet) for p in prop.value):
            raise ValueError(f"property {key!r} of type PropertySetList needs a list of PropertySet")
        wire.propertysets_value.SetInParent()
        for item in prop.value:
            encode_property_set(wire.propertysets_value.propertyset.add(), item)
    else:
        try:
            field, raw = encode_scalar(prop.type, prop.value)
        except ValueError as exc:
            raise ValueError(f"property {key!r}: {exc}") from None
        setattr(wire, field, raw)


def decode_metadata(wire: _pb.Payload.MetaData) -> MetaData:
    """A MetaData value; absent fields are None."""

    def read(name: _MetaText) -> str | None:
        return text(getattr(wire, name), f"metadata {name}") if wire.HasField(name) else None

    return MetaData(
        is_multi_part=wire.is_multi_part if wire.HasField("is_multi_part") else None,
        content_type=read("content_type"),
        size=wire.size if wire.HasField("size") else None,
        seq=wire.seq if wire.HasField("seq") else None,
        file_name=read("file_name"),
        file_type=read("file_type"),
        md5=read("md5"),
        description=read("description"),
    )


def encode_metadata(wire: _pb.Payload.MetaData, metadata: MetaData) -> None:
    """Fill ``wire`` from a MetaData value (the caller marks ``wire`` present if it may be empty)."""
    if metadata.is_multi_part is not None:
        wire.is_multi_part = metadata.is_multi_part
    if metadata.size is not None:
        wire.size = metadata.size
    if metadata.seq is not None:
        wire.seq = metadata.seq
    for name in _METADATA_TEXTS:
        value = getattr(metadata, name)
        if value is not None:
            setattr(wire, name, value)
