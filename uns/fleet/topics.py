"""The fleet's two retained topics per agent: desired config (hub -> agent) and reported status (agent -> hub)."""

from __future__ import annotations

__all__ = ["config_topic", "status_topic"]


def config_topic(enterprise: str, agent: str) -> str:
    """Where the hub publishes ``agent``'s desired version (retained, QoS 1)."""
    return f"{enterprise}/hub/edge/{agent}/config"


def status_topic(enterprise: str, agent: str) -> str:
    """Where ``agent`` reports its version, status and health (retained; ``offline`` by will)."""
    return f"{enterprise}/hub/edge/{agent}/status"
