"""The one Sparkplug alias table: a birth certificate's metrics by name, and their aliases.

Host, edge node and web view each keep one per birth (an edge node's own, or one device's) and hand
its ``lookup`` to ``decode_payload`` for DATA and command payloads, which may carry aliases only.
"""

from __future__ import annotations

from typing import Generic, NamedTuple, Protocol, TypeVar

from uns.sparkplug.datatypes import DataType

__all__ = ["AliasTable", "Born", "Typed", "born"]


class Typed(Protocol):
    """What a table keeps per metric: at least the datatype its birth declared."""

    @property
    def datatype(self) -> DataType:
        """The metric's Sparkplug datatype."""
        ...


class Born(NamedTuple):
    """The entry for a table that keeps nothing but the datatype (one shared per datatype: ``born``)."""

    datatype: DataType


_BORN = {datatype: Born(datatype) for datatype in DataType}


def born(datatype: DataType) -> Born:
    """The shared ``Born`` entry of ``datatype`` (a million metrics keep a handful of objects)."""
    return _BORN[datatype]


_T = TypeVar("_T", bound=Typed)


class AliasTable(Generic[_T]):
    """One birth's metrics: ``metrics`` by name, ``aliases`` to names; ``lookup`` is the codec's ``Lookup``."""

    __slots__ = ("aliases", "metrics")

    def __init__(self) -> None:
        self.metrics: dict[str, _T] = {}
        self.aliases: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self.metrics)

    def add(self, name: str, alias: int | None, metric: _T) -> None:
        """Keep ``metric`` under ``name`` and, when it has one, its alias."""
        self.metrics[name] = metric
        if alias is not None:
            self.aliases[alias] = name

    def clear(self) -> None:
        """Forget every metric and alias (a new birth)."""
        self.metrics.clear()
        self.aliases.clear()

    def lookup(self, name: str | None, alias: int | None) -> tuple[str, DataType] | None:
        """A DATA or command metric's name and datatype from the birth, or None when the birth has no such metric.

        The name decides when the metric carries one; the alias is used only without a name
        (Sparkplug 3.0: DATA after a birth with aliases may omit names).
        """
        if name is None:
            if alias is None:
                return None
            name = self.aliases.get(alias)
            if name is None:
                return None
        metric = self.metrics.get(name)
        return None if metric is None else (name, metric.datatype)
