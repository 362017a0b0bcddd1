"""What the web's Sparkplug status reads from the host's state (``uns.host.tables``) when the host runs in-process.

A narrow, read-only view of the host's per edge node and device session: the web decodes no
Sparkplug payload a second time when it has one (``SparkplugView(sessions=host.core)``). With
``host.worker`` the core runs in a child process and ``host.core`` is its mirror (``uns.host.mirror``),
which answers the same, sessions at most 100 ms behind.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from uns.sparkplug import DataType

__all__ = ["DeviceSession", "NodeSession", "Sessions"]


class _Born(Protocol):
    def lookup(self, name: str | None, alias: int | None) -> tuple[str, DataType] | None: ...


class DeviceSession(Protocol):
    """One birth certificate's session: an edge node's own or a device's."""

    @property
    def online(self) -> bool:
        """Born and not dead since."""
        ...

    @property
    def births(self) -> int:
        """Births accepted so far."""
        ...

    @property
    def birth_ms(self) -> int | None:
        """The last birth's time."""
        ...

    @property
    def death_ms(self) -> int | None:
        """When the hub learnt of the last death."""
        ...

    @property
    def born(self) -> _Born:
        """The birth's alias table (``uns.sparkplug.aliases.AliasTable``)."""
        ...


class NodeSession(DeviceSession, Protocol):
    """An edge node's session: bdSeq, seq, its devices and what went wrong."""

    @property
    def bd_seq(self) -> int | None:
        """The birth's bdSeq."""
        ...

    @property
    def seq(self) -> int | None:
        """The last seq seen."""
        ...

    @property
    def stale_deaths(self) -> int:
        """NDEATHs of an older session."""
        ...

    @property
    def bad_payloads(self) -> int:
        """Payloads that did not decode."""
        ...

    @property
    def last_error(self) -> str | None:
        """The last undecodable payload."""
        ...

    @property
    def degraded(self) -> Mapping[str, str]:
        """What the host refused past a bound, by ``group/node[/device]`` or ``devices``."""
        ...

    @property
    def devices(self) -> Mapping[str, DeviceSession]:
        """Its devices by id."""
        ...


class Sessions(Protocol):
    """Every edge node the host tracks, by (group, node id): ``HostCore``, or ``HostMirror`` (``host.worker``)."""

    @property
    def nodes(self) -> Mapping[tuple[str, str], NodeSession]:
        """Every edge node seen."""
        ...
