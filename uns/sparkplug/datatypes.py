"""The Sparkplug B datatypes, numbered as in the specification and ``sparkplug_b.proto``."""

from __future__ import annotations

from enum import IntEnum

__all__ = ["DataType"]


class DataType(IntEnum):
    """A Sparkplug datatype; the value is the number carried on the wire.

    ``Unknown`` (0) is the specification's placeholder and never a valid datatype of a value.
    ``PropertySet`` and ``PropertySetList`` only type property values, never metrics.
    """

    Unknown = 0
    Int8 = 1
    Int16 = 2
    Int32 = 3
    Int64 = 4
    UInt8 = 5
    UInt16 = 6
    UInt32 = 7
    UInt64 = 8
    Float = 9
    Double = 10
    Boolean = 11
    String = 12
    DateTime = 13
    Text = 14
    UUID = 15
    DataSet = 16
    Bytes = 17
    File = 18
    Template = 19
    PropertySet = 20
    PropertySetList = 21
    Int8Array = 22
    Int16Array = 23
    Int32Array = 24
    Int64Array = 25
    UInt8Array = 26
    UInt16Array = 27
    UInt32Array = 28
    UInt64Array = 29
    FloatArray = 30
    DoubleArray = 31
    BooleanArray = 32
    StringArray = 33
    DateTimeArray = 34

    @property
    def is_array(self) -> bool:
        """True for the 3.0 array types (``Int8Array`` … ``DateTimeArray``), carried packed in ``bytes_value``."""
        return self >= DataType.Int8Array

    @property
    def is_basic(self) -> bool:
        """True for the scalar types a DataSet column, Template parameter or property value may have."""
        return DataType.Int8 <= self <= DataType.Text
