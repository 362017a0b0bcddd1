"""A connector's status device: its counters as ``Status/<CamelCase>`` Int64 metrics, and its last refusal.

The HTTP, AMQP and LoRaWAN connectors each report one such device beside their mapped ones, so an
operator sees in the UNS what the connector took, refused and why.
"""

from __future__ import annotations

from collections.abc import Sequence

from bridges.source import Sample, Samples, TagSpec
from model.envelope import Quality
from uns.sparkplug import DataType

__all__ = ["StatusDevice", "camel"]

_REASON_CHARS = 500  # a refusal's reason as kept in Status/LastRefusal


def camel(counter: str) -> str:
    """A counter's metric name part: ``webhooks_failed`` -> ``WebhooksFailed``."""
    return "".join(part.title() for part in counter.split("_"))


class StatusDevice:
    """The counters (each starting at 0) and the last refusal of one connector.

    ``Status/LastRefusal`` carries the reason of the last refusal since the previous report, with
    quality ``uncertain``; after a report without one it is ``""`` and ``good``.

    Args:
        device: the status device's Sparkplug id.
        counters: the counters' names, snake_case, in birth order; ``refused()`` counts ``refused``.
    """

    def __init__(self, *, device: str, counters: Sequence[str]) -> None:
        self.device = device
        self._names = tuple((counter, f"Status/{camel(counter)}") for counter in counters)
        self.counts = dict.fromkeys(counters, 0)
        self._last_refusal = ""

    def tags(self) -> list[TagSpec]:
        """The counters, then ``Status/LastRefusal``."""
        tags = [TagSpec(self.device, name, DataType.Int64) for _, name in self._names]
        tags.append(TagSpec(self.device, "Status/LastRefusal", DataType.String))
        return tags

    def refused(self, reason: str) -> None:
        """Count one refusal and keep its reason for the next report."""
        self.counts["refused"] += 1
        self._last_refusal = reason[:_REASON_CHARS]

    def samples(self, now_ms: int) -> Samples:
        """Every counter and the last refusal, stamped ``now_ms``; the refusal is reported once."""
        samples = [Sample(name, self.counts[counter], now_ms) for counter, name in self._names]
        quality = Quality.uncertain if self._last_refusal else Quality.good
        samples.append(Sample("Status/LastRefusal", self._last_refusal, now_ms, quality))
        self._last_refusal = ""
        return Samples(self.device, samples)
