"""The fleet as the hub sees it: each agent's last reported status, online or not, and its recent problems.

The pure core of ``uns/web/fleet_api.py``: it takes status messages with their arrival time and answers
the documents the API lists; no I/O, no clock.
"""

from __future__ import annotations

import collections
import dataclasses
import re
from collections.abc import Mapping

from pydantic import ValidationError

from model.fleet import AgentStatus, DesiredVersion
from model.topic import SLUG_PATTERN

__all__ = ["FleetView", "agent_health"]

_PROBLEMS_KEPT = 20  # recent problems per agent
_MAX_AGENTS = 10_000
_SLUG = re.compile(SLUG_PATTERN)


def agent_health(status: AgentStatus) -> dict[str, object]:
    """An agent's health from its bridges: buffer depth and errors summed, worst read latency, latest read."""
    latencies = [b.read_latency_ms for b in status.bridges if b.read_latency_ms is not None]
    seen = [b.last_seen_ms for b in status.bridges if b.last_seen_ms is not None]
    return {
        "buffer_depth": sum(b.buffer_depth for b in status.bridges),
        "read_latency_ms": max(latencies) if latencies else None,
        "errors": sum(b.errors for b in status.bridges),
        "last_seen_ms": max(seen) if seen else None,
        "bridges": len(status.bridges),
        "bridges_online": sum(1 for b in status.bridges if b.online),
    }


@dataclasses.dataclass(slots=True)
class _Agent:
    status: AgentStatus | None = None  # the last full status (kept through an offline will)
    online: bool = False
    heard_ms: int | None = None  # when the hub last heard from it
    problems: collections.deque[dict[str, object]] = dataclasses.field(
        default_factory=lambda: collections.deque(maxlen=_PROBLEMS_KEPT)
    )


class FleetView:
    """The pure core: what the agents reported, and their recent problems (no I/O, the caller gives the time)."""

    def __init__(self, *, enterprise: str) -> None:
        self._prefix = f"{enterprise}/hub/edge/"
        self._agents: dict[str, _Agent] = {}
        self.bad_statuses = 0
        self.refused_agents = 0

    def agents(self) -> list[str]:
        """Agents heard from."""
        return sorted(self._agents)

    def observe(self, topic: str, payload: bytes, now: int) -> str | None:
        """Take one status message; None, or why it was not understood (naming the topic)."""
        agent = topic.removeprefix(self._prefix).removesuffix("/status")
        if not topic.startswith(self._prefix) or not topic.endswith("/status") or not _SLUG.fullmatch(agent):
            return None
        if not payload:
            return None  # a cleared retained status: nothing to say
        try:
            status = AgentStatus.model_validate_json(payload)
        except ValidationError as exc:
            self.bad_statuses += 1
            error = exc.errors(include_url=False)[0]
            where = ".".join(str(part) for part in error["loc"]) or "body"
            return f"{topic}: not an agent status: {where}: {error['msg']}"
        entry = self._agents.get(agent)
        if entry is None:
            if len(self._agents) >= _MAX_AGENTS:
                self.refused_agents += 1
                return f"{topic}: more than {_MAX_AGENTS} agents, not kept"
            entry = self._agents[agent] = _Agent()
        entry.heard_ms = now
        if status.status == "offline":
            if entry.online:
                entry.problems.appendleft(
                    {"time_ms": now, "text": "went offline (stopped, or its connection was lost)"}
                )
            entry.online = False
            return None
        self._problems(entry, status, now)
        entry.status, entry.online = status, True
        return None

    def _problems(self, entry: _Agent, status: AgentStatus, now: int) -> None:
        old = entry.status
        if status.reason and (old is None or old.reason != status.reason):
            entry.problems.appendleft({"time_ms": now, "text": f"version {status.desired}: {status.reason}"})
        before = {b.node: b.failure for b in old.bridges} if old else {}
        for bridge in status.bridges:
            if bridge.failure and before.get(bridge.node) != bridge.failure:
                entry.problems.appendleft({"time_ms": now, "text": f"bridge {bridge.node}: {bridge.failure}"})

    def status(self, agent: str) -> AgentStatus | None:
        """The agent's last full status (None before it reported one)."""
        entry = self._agents.get(agent)
        return entry.status if entry else None

    def document(self, agent: str, desired: DesiredVersion | None, labels: Mapping[str, str]) -> dict[str, object]:
        """One agent as the API lists it."""
        entry = self._agents.get(agent) or _Agent()
        status = entry.status
        reported: dict[str, object] | None = None
        if status is not None:
            reported = {
                "version": status.version,
                "hash": status.hash,
                "desired": status.desired,
                "reason": status.reason,
                "time_ms": status.time_ms,
            }
        return {
            "agent": agent,
            "online": entry.online,
            "status": (status.status if entry.online and status else "offline" if entry.heard_ms else "never seen"),
            "labels": dict(labels),
            "desired": None if desired is None else desired.model_dump(mode="json", exclude={"config", "agent"}),
            "reported": reported,
            "in_sync": bool(desired and status and status.version == desired.version and status.hash == desired.hash),
            "heard_ms": entry.heard_ms,
            "health": agent_health(status) if status else None,
            "bridges": [b.model_dump(mode="json") for b in status.bridges] if status else [],
            "problems": list(entry.problems),
        }
