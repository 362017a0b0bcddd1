"""Hypothesis strategies for Sparkplug values, metrics and payloads."""

from __future__ import annotations

from hypothesis import strategies as st

from uns.sparkplug import (
    DataSet,
    DataType,
    MetaData,
    Metric,
    Payload,
    PropertySet,
    PropertyValue,
    Template,
    TemplateParameter,
)

U64 = (1 << 64) - 1
I64 = 1 << 63

_SCALARS: dict[DataType, st.SearchStrategy[object]] = {
    DataType.Int8: st.integers(-(1 << 7), (1 << 7) - 1),
    DataType.Int16: st.integers(-(1 << 15), (1 << 15) - 1),
    DataType.Int32: st.integers(-(1 << 31), (1 << 31) - 1),
    DataType.Int64: st.integers(-I64, I64 - 1),
    DataType.UInt8: st.integers(0, (1 << 8) - 1),
    DataType.UInt16: st.integers(0, (1 << 16) - 1),
    DataType.UInt32: st.integers(0, (1 << 32) - 1),
    DataType.UInt64: st.integers(0, U64),
    DataType.Float: st.floats(width=32, allow_nan=False),
    DataType.Double: st.floats(allow_nan=False),
    DataType.Boolean: st.booleans(),
    DataType.String: st.text(max_size=20),
    DataType.DateTime: st.integers(-I64, I64 - 1),
    DataType.Text: st.text(max_size=20),
    DataType.UUID: st.uuids().map(str),
}
BASIC_TYPES = [d for d in DataType if d.is_basic]
_ARRAY_ELEMENTS: dict[DataType, st.SearchStrategy[object]] = {
    DataType.Int8Array: _SCALARS[DataType.Int8],
    DataType.Int16Array: _SCALARS[DataType.Int16],
    DataType.Int32Array: _SCALARS[DataType.Int32],
    DataType.Int64Array: _SCALARS[DataType.Int64],
    DataType.UInt8Array: _SCALARS[DataType.UInt8],
    DataType.UInt16Array: _SCALARS[DataType.UInt16],
    DataType.UInt32Array: _SCALARS[DataType.UInt32],
    DataType.UInt64Array: _SCALARS[DataType.UInt64],
    DataType.FloatArray: _SCALARS[DataType.Float],
    DataType.DoubleArray: _SCALARS[DataType.Double],
    DataType.BooleanArray: st.booleans(),
    DataType.StringArray: st.text(
        alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\0"), max_size=8
    ),
    DataType.DateTimeArray: _SCALARS[DataType.DateTime],
}
METRIC_TYPES = [d for d in DataType if d not in (DataType.Unknown, DataType.PropertySet, DataType.PropertySetList)]
_ANY_METRIC_TYPE = st.sampled_from(METRIC_TYPES)


def scalar(datatype: DataType) -> st.SearchStrategy[object]:
    return _SCALARS[datatype]


@st.composite
def datasets(draw: st.DrawFn) -> DataSet:
    types = draw(st.lists(st.sampled_from(BASIC_TYPES), max_size=4))
    columns = draw(st.lists(st.text(max_size=6), min_size=len(types), max_size=len(types)))
    rows = draw(st.lists(st.tuples(*[st.none() | scalar(t) for t in types]), max_size=3))
    return DataSet(columns=tuple(columns), types=tuple(types), rows=tuple(rows))


@st.composite
def property_values(draw: st.DrawFn, sets: st.SearchStrategy[PropertySet]) -> PropertyValue:
    kind = draw(st.sampled_from([*BASIC_TYPES, DataType.PropertySet, DataType.PropertySetList]))
    if draw(st.booleans()) and draw(st.booleans()):
        return PropertyValue(type=kind, is_null=True)
    if kind is DataType.PropertySet:
        value: object = draw(sets)
    elif kind is DataType.PropertySetList:
        value = draw(st.lists(sets, max_size=2))
    else:
        value = draw(st.none() | scalar(kind))
    return PropertyValue(type=kind, value=value)  # type: ignore[arg-type]


def _property_sets(children: st.SearchStrategy[PropertySet]) -> st.SearchStrategy[PropertySet]:
    return st.dictionaries(st.text(max_size=6), property_values(children), max_size=3).map(PropertySet)


property_sets: st.SearchStrategy[PropertySet] = st.recursive(
    st.dictionaries(
        st.text(max_size=6),
        st.builds(PropertyValue, type=st.just(DataType.Int32), value=scalar(DataType.Int32)),
        max_size=2,
    ).map(PropertySet),
    _property_sets,
    max_leaves=6,
)

metadatas = st.builds(
    MetaData,
    is_multi_part=st.none() | st.booleans(),
    content_type=st.none() | st.text(max_size=10),
    size=st.none() | st.integers(0, U64),
    seq=st.none() | st.integers(0, U64),
    file_name=st.none() | st.text(max_size=10),
    file_type=st.none() | st.text(max_size=5),
    md5=st.none() | st.text(max_size=32),
    description=st.none() | st.text(max_size=10),
)


@st.composite
def values_of(draw: st.DrawFn, datatype: DataType, depth: int = 0) -> object:
    if datatype in _SCALARS:
        return draw(scalar(datatype))
    if datatype in _ARRAY_ELEMENTS:
        return draw(st.lists(_ARRAY_ELEMENTS[datatype], max_size=20))
    if datatype in (DataType.Bytes, DataType.File):
        return draw(st.binary(max_size=20))
    if datatype is DataType.DataSet:
        return draw(datasets())
    assert datatype is DataType.Template
    inner = [d for d in METRIC_TYPES if d is not DataType.Template] if depth else METRIC_TYPES
    parameters = draw(
        st.lists(
            st.sampled_from(BASIC_TYPES).flatmap(
                lambda t: st.builds(
                    TemplateParameter, name=st.text(max_size=5), type=st.just(t), value=st.none() | scalar(t)
                )
            ),
            max_size=3,
        )
    )
    return Template(
        version=draw(st.none() | st.text(max_size=5)),
        metrics=tuple(draw(st.lists(metrics(st.sampled_from(inner), depth=depth + 1), max_size=3))),
        parameters=tuple(parameters),
        template_ref=draw(st.none() | st.text(max_size=5)),
        is_definition=draw(st.booleans()),
    )


@st.composite
def metrics(draw: st.DrawFn, datatypes: st.SearchStrategy[DataType] = _ANY_METRIC_TYPE, depth: int = 0) -> Metric:
    """A named metric (so it decodes without a lookup) of any datatype."""
    datatype = draw(datatypes)
    is_null = draw(st.booleans()) and draw(st.booleans())
    return Metric(
        name=draw(st.text(max_size=12)),
        alias=draw(st.none() | st.integers(0, U64)),
        timestamp=draw(st.none() | st.integers(0, U64)),
        datatype=datatype,
        value=None if is_null else draw(values_of(datatype, depth)),  # type: ignore[arg-type]
        is_null=is_null,
        is_historical=draw(st.booleans()),
        is_transient=draw(st.booleans()),
        properties=draw(st.none() | property_sets),
        metadata=draw(st.none() | metadatas),
    )


payloads = st.builds(
    Payload,
    timestamp=st.none() | st.integers(0, U64),
    seq=st.none() | st.integers(0, 255),
    metrics=st.lists(metrics(), max_size=4),
    uuid=st.none() | st.text(max_size=10),
    body=st.none() | st.binary(max_size=10),
)
