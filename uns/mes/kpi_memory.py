"""What the MES adapter last published on each KPI topic, so KPIs are reported by exception.

A KPI is published when its value or quality differs from the last one published on its topic
(exact compare, the value's type included: ``1`` and ``1.0`` are written differently), retained, so
a consumer that subscribes later still gets it from the broker. The memory starts empty: an adapter
that starts publishes every KPI once; so does one whose connection was lost (the broker may have
lost retained messages, or QoS 0 ones sent while it went away).
"""

from __future__ import annotations

from model.envelope import JsonValue, Quality

__all__ = ["KpiMemory"]

_Seen = tuple[type, JsonValue, Quality]


class KpiMemory:
    """The last value and quality published per KPI topic; offers that match it are not sent again."""

    def __init__(self) -> None:
        self._sent: dict[str, _Seen] = {}
        self._offered: dict[str, _Seen] = {}

    def __len__(self) -> int:
        """KPI topics with a value published."""
        return len(self._sent)

    def changed(self, topic: str, value: JsonValue, quality: Quality) -> bool:
        """True when ``topic`` should be published with this value and quality (noted until ``published``)."""
        seen = (type(value), value, quality)
        if self._sent.get(topic) == seen:
            return False
        self._offered[topic] = seen
        return True

    def published(self) -> None:
        """The changes offered since the last call are out: remember them as sent."""
        self._sent.update(self._offered)
        self._offered.clear()

    def forget(self) -> None:
        """Publish everything again at the next offer (a lost connection)."""
        self._sent.clear()
        self._offered.clear()
