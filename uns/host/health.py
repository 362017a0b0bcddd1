"""The Sparkplug host's health document, from the sessions of ``HostCore`` or of its mirror (``uns.host.mirror``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

from uns.host.counters import HostCounters

__all__ = ["health_document"]

_HEALTH_LIST_MAX = 100
"""Edge nodes named in the health document's ``degraded`` list at most (``nodes_degraded`` counts all)."""


class _Online(Protocol):
    @property
    def online(self) -> bool: ...


class _Session(_Online, Protocol):
    @property
    def source(self) -> str: ...

    @property
    def degraded(self) -> Mapping[str, str]: ...

    @property
    def devices(self) -> Mapping[str, _Online]: ...


def health_document(
    nodes: Iterable[_Session], *, series: int, unbound: list[str], counters: HostCounters
) -> dict[str, object]:
    """The host's health document (counters, sessions, unbound devices)."""
    sessions = list(nodes)
    degraded = sorted(n.source for n in sessions if n.degraded)
    return {
        "nodes_online": sum(1 for n in sessions if n.online),
        "nodes_known": len(sessions),
        "devices_online": sum(1 for n in sessions for d in n.devices.values() if d.online and n.online),
        "series": series,
        "nodes_degraded": len(degraded),
        "degraded": degraded[:_HEALTH_LIST_MAX],
        "unbound": unbound,
        **counters.as_dict(),
    }
