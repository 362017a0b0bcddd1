"""How much the Sparkplug host keeps: bounds on births, devices, nodes and series, and the check of a birth."""

from __future__ import annotations

import dataclasses

from uns.host.counters import Reason

__all__ = ["HostBounds"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class HostBounds:
    """Limits on what births make the host keep (``host.max_*`` settings); past one it refuses, with a reason."""

    max_metrics_per_birth: int = 10_000
    max_devices_per_node: int = 1_000
    max_nodes: int = 10_000
    max_series: int = 1_000_000

    def birth_refusal(self, kind: str, metrics: int, series: int, freed: int) -> tuple[Reason, str] | None:
        """Why a birth of ``metrics`` metrics must be refused, or None.

        Args:
            kind: ``NBIRTH`` or ``DBIRTH``, for the message.
            metrics: how many metrics the birth declares.
            series: how many series the host tracks now.
            freed: how many of those the birth replaces (the table's previous birth).
        """
        if metrics > self.max_metrics_per_birth:
            return Reason.birth_too_large, (
                f"{kind} has {metrics} metrics, more than host.max_metrics_per_birth={self.max_metrics_per_birth}"
            )
        if series - freed + metrics > self.max_series:
            return Reason.too_many_series, (
                f"{kind} of {metrics} metrics would make {series - freed + metrics} series,"
                f" more than host.max_series={self.max_series}"
            )
        return None

    def device_refusal(self, devices: int) -> str | None:
        """Why a node with ``devices`` devices may not get another one, or None."""
        if devices >= self.max_devices_per_node:
            return f"node has {devices} devices, host.max_devices_per_node={self.max_devices_per_node}"
        return None

    def node_refusal(self, nodes: int) -> str | None:
        """Why the host, tracking ``nodes`` edge nodes, may not track another one, or None."""
        if nodes >= self.max_nodes:
            return f"{nodes} edge nodes tracked, host.max_nodes={self.max_nodes}"
        return None
