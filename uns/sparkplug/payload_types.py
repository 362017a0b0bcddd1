"""The Python shapes of a Sparkplug B payload: Payload, Metric and the values a metric can hold."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, ItemsView, Iterable, Iterator, Mapping
from typing import Literal

from uns.sparkplug.datatypes import DataType

__all__ = [
    "DataSet",
    "DataSetCell",
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
]

DataSetCell = int | float | bool | str | None
"""One DataSet cell or Template parameter value; None when the wire carries no value."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class PropertyValue:
    """One typed property of a metric, e.g. ``PropertyValue(type=DataType.String, value="degC")``.

    ``type`` is a basic type (Int8 … Text) or PropertySet (value a :class:`PropertySet`)
    or PropertySetList (value a list of them). ``is_null`` values carry ``value=None``.
    """

    type: DataType
    value: int | float | bool | str | PropertySet | list[PropertySet] | None = None
    is_null: bool = False


class PropertySet(Mapping[str, PropertyValue]):
    """A read-only mapping of property name to :class:`PropertyValue`; may nest.

    Build one like a dict: ``PropertySet({"engUnit": PropertyValue(type=DataType.String, value="degC")})``.
    It compares equal to any mapping with the same items.
    """

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, PropertyValue] | Iterable[tuple[str, PropertyValue]] = (), /) -> None:
        self._items: dict[str, PropertyValue] = dict(items)

    def __getitem__(self, key: str) -> PropertyValue:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def items(self) -> ItemsView[str, PropertyValue]:
        """The dict's own view: Mapping's looks every key up again through ``__getitem__``."""
        return self._items.items()

    def __repr__(self) -> str:
        return f"PropertySet({self._items!r})"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DataSet:
    """A table value: ``types[i]`` (a basic type) is the type of column ``columns[i]``.

    Raises:
        ValueError: if ``types`` or a row does not have one entry per column.
    """

    columns: tuple[str, ...]
    types: tuple[DataType, ...]
    rows: tuple[tuple[DataSetCell, ...], ...] = ()

    def __post_init__(self) -> None:
        # Store tuples whatever sequence was given, so equal tables compare equal.
        object.__setattr__(self, "columns", tuple(self.columns))
        object.__setattr__(self, "types", tuple(self.types))
        object.__setattr__(self, "rows", tuple(tuple(row) for row in self.rows))
        if len(self.types) != len(self.columns):
            raise ValueError(f"DataSet has {len(self.columns)} columns but {len(self.types)} types")
        for index, row in enumerate(self.rows):
            if len(row) != len(self.columns):
                raise ValueError(f"DataSet row {index} has {len(row)} cells for {len(self.columns)} columns")

    @property
    def num_of_columns(self) -> int:
        """The column count, as the wire's ``num_of_columns`` carries it."""
        return len(self.columns)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TemplateParameter:
    """A typed parameter of a Template (type is a basic type)."""

    name: str
    type: DataType
    value: DataSetCell = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Template:
    """A user-defined type: a definition (``is_definition``) or an instance (``template_ref`` names the definition)."""

    version: str | None = None
    metrics: tuple[Metric, ...] = ()
    parameters: tuple[TemplateParameter, ...] = ()
    template_ref: str | None = None
    is_definition: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "metrics", tuple(self.metrics))
        object.__setattr__(self, "parameters", tuple(self.parameters))


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class MetaData:
    """Describes a Bytes or File value (and multi-part transfers of one); every field optional."""

    is_multi_part: bool | None = None
    content_type: str | None = None
    size: int | None = None
    seq: int | None = None
    file_name: str | None = None
    file_type: str | None = None
    md5: str | None = None
    description: str | None = None


MetricValue = (
    int
    | float
    | bool
    | str
    | bytes
    | DataSet
    | Template
    | PropertySet
    | list[PropertySet]
    | list[int]
    | list[float]
    | list[bool]
    | list[str]
    | None
)
"""A metric's Python value; which one follows from its datatype (see ``uns.sparkplug.values``)."""


@dataclasses.dataclass(slots=True, kw_only=True)
class Metric:
    """One metric of a payload.

    A decoded metric always has ``datatype`` (from the wire or the birth certificate) and,
    when known, ``name``; it keeps ``alias`` when the wire had one. ``timestamp`` is ms since
    the epoch. ``is_null`` metrics have ``value=None``.
    """

    name: str | None = None
    alias: int | None = None
    timestamp: int | None = None
    datatype: DataType | None = None
    value: MetricValue = None
    is_null: bool = False
    is_historical: bool = False
    is_transient: bool = False
    properties: PropertySet | None = None
    metadata: MetaData | None = None


@dataclasses.dataclass(slots=True, kw_only=True)
class Payload:
    """A whole Sparkplug B payload; ``timestamp`` is ms since the epoch, ``seq`` 0..255."""

    timestamp: int | None = None
    seq: int | None = None
    metrics: list[Metric] = dataclasses.field(default_factory=list)
    uuid: str | None = None
    body: bytes | None = None


ProblemKind = Literal["unknown_alias", "unknown_datatype", "bad_value"]
"""Why one metric of a payload was left out: the host answers ``unknown_alias`` with a Rebirth."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class MetricProblem:
    """One metric that could not be decoded; ``index`` is its position in the wire payload."""

    index: int
    name: str | None
    alias: int | None
    kind: ProblemKind
    reason: str


@dataclasses.dataclass(slots=True, kw_only=True)
class DecodedPayload:
    """A decoded payload with its good metrics, and the metrics that were left out and why."""

    payload: Payload
    problems: list[MetricProblem] = dataclasses.field(default_factory=list)


Lookup = Callable[[str | None, int | None], tuple[str, DataType] | None]
"""Given a DATA metric's ``(name, alias)``, its ``(name, datatype)`` from the birth certificate, or None."""
