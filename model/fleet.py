"""Edge fleet documents: an agent's configuration, a desired version of it, and the status an agent reports."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from model.bridges import BridgeConfig
from model.topic import SLUG_PATTERN

__all__ = [
    "ENROL_PREFIX",
    "AgentConfig",
    "AgentState",
    "AgentStatus",
    "BridgeHealth",
    "DesiredVersion",
    "enrolment_password",
    "parse_enrolment_password",
]

ENROL_PREFIX = "enrol:"
"""An enrolling agent's first CONNECT password: ``enrol:<one-time token>:<its own new password>`` (docs/fleet.md)."""


def enrolment_password(token: str, password: str) -> str:
    """The CONNECT password that enrols an agent: the hub's one-time token and the agent's own password."""
    if not token or not password or ":" in token:
        raise ValueError("an enrolment needs a token without ':' and a non-empty password")
    return f"{ENROL_PREFIX}{token}:{password}"


def parse_enrolment_password(text: str) -> tuple[str, str] | None:
    """``(token, password)`` of an enrolment CONNECT password, None for any other password."""
    if not text.startswith(ENROL_PREFIX):
        return None
    token, sep, password = text[len(ENROL_PREFIX) :].partition(":")
    return (token, password) if sep and token and password else None


AgentState = Literal["starting", "applying", "running", "failed", "offline"]
"""What an agent is doing: ``failed`` means the last desired version was refused or rolled back."""


class AgentConfig(BaseModel):
    """What one ``uns edge`` agent runs: the same bridge models as ``uns bridge`` (hub settings' ``bridges``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bridges: list[BridgeConfig] = Field(
        default_factory=list, description="Protocol bridges (Sparkplug edge nodes) the agent runs, by kind."
    )


class DesiredVersion(BaseModel):
    """One version of an agent's desired configuration, as the hub stores it and publishes it retained.

    ``config`` stays the raw mapping: the agent validates it itself (its bridge models may differ from the
    hub's), so a version the agent cannot take is refused there, reported and rolled back.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    agent: str = Field(pattern=SLUG_PATTERN, max_length=64, description="The agent's id (a slug).")
    version: int = Field(ge=1, description="Version number, 1, 2, ... per agent; a rollback is a new number.")
    hash: str = Field(description="sha256 of the canonical JSON of ``config``.")
    author: str = Field(description="Who deployed it.")
    time_ms: int = Field(description="When it was deployed (Unix ms).")
    note: str = Field(default="", description="The change note.")
    config: dict[str, object] = Field(description="The agent configuration (``AgentConfig``), not yet validated.")


class BridgeHealth(BaseModel):
    """One bridge's health as its agent reports it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    node: str = Field(description="Sparkplug edge node id.")
    kind: str = Field(description="Bridge kind.")
    online: bool = Field(description="Births are out on a live connection.")
    buffer_depth: int = Field(description="Samples waiting in the store-and-forward buffer.")
    samples: int = Field(description="Samples read so far.")
    births: int = Field(description="NBIRTHs published (births and rebirths).")
    errors: int = Field(description="Errors counted by the edge node.")
    read_latency_ms: float | None = Field(
        default=None, description="The latest read's latency (ms from its sample's timestamp to the edge node)."
    )
    last_seen_ms: int | None = Field(default=None, description="When the bridge last read a sample (Unix ms).")
    failure: str | None = Field(default=None, description="Why the bridge stopped, if it did.")


class AgentStatus(BaseModel):
    """An agent's reported status, retained on its status topic (``{"status": "offline"}`` by will)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    agent: str = Field(description="The agent's id.")
    status: AgentState = Field(description="starting, applying, running, failed (see reason), offline.")
    version: int | None = Field(default=None, description="The version running (the last good one).")
    hash: str | None = Field(default=None, description="Its content hash.")
    desired: int | None = Field(default=None, description="The last desired version seen.")
    reason: str | None = Field(default=None, description="Why the last desired version failed and was rolled back.")
    time_ms: int = Field(default=0, description="When this status was published (Unix ms).")
    bridges: list[BridgeHealth] = Field(default_factory=list, description="Per bridge health.")
