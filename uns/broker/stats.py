"""Broker counters (connections, messages, rejections) and rate-limited warnings for repeated failures."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

__all__ = ["BrokerStats", "Counters"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class BrokerStats:
    """A snapshot of the broker's counters since it started."""

    connections: int
    """Network clients connected right now."""
    connections_total: int
    """Network connections accepted (authenticated) since start."""
    messages_in: int
    """PUBLISH messages from network clients that passed the ACL."""
    messages_local: int
    """Messages published by in-process clients."""
    oversize_rejected: int
    """PUBLISH packets dropped for exceeding ``limits.max_payload_bytes`` (their clients were disconnected)."""
    auth_failures: int
    """CONNECTs refused for a bad user name or password, or anonymous when not allowed."""
    acl_denials: Mapping[str, int]
    """Denials by action: ``publish``, ``subscribe``, ``receive``."""
    acl_denial_reasons: Mapping[str, int]
    """Denials by reason, e.g. ``read-only``, ``not-own-edge-node``, ``dollar-topic``."""
    queued_dropped: int = 0
    """Messages dropped from full persistent-session queues (``limits.max_queued_messages``), oldest first."""
    protocol_refused: int = 0
    """Connections refused for their protocol (MQTT 5, unknown names, bad MQTT 3.1 client ids)."""
    pending: int = 0
    """Connections that have not sent a whole CONNECT yet, right now."""
    slots_refused: int = 0
    """Clients refused with CONNACK 3 because ``limits.max_connections`` clients were connected."""
    pending_dropped: int = 0
    """Connections closed before their CONNECT was whole to make room (``limits.max_pending_connections``)."""
    handshake_failed: Mapping[str, int] = dataclasses.field(default_factory=dict)
    """Connections closed before a whole CONNECT, by cause: ``no data``, ``timeout``, ``not a CONNECT``, ..."""
    password_checks: int = 0
    """argon2 verifications run (unknown users verify a dummy hash, so they cost the same as known ones)."""
    login_throttled: int = 0
    """Logins refused with CONNACK 5 without a password check: their address or user failed too often."""
    login_cache_hits: int = 0
    """Logins accepted from the cache of recent successful logins (no argon2 verification)."""
    malformed_closed: Mapping[str, int] = dataclasses.field(default_factory=dict)
    """Connections closed for a malformed packet, by the MQTT 3.1.1 rule broken (``MQTT-3.3.2-2``, ...)."""


class Counters:
    """The mutable counters behind :class:`BrokerStats`; owned by one broker."""

    def __init__(self) -> None:
        self.connections = 0
        self.connections_total = 0
        self.messages_in = 0
        self.messages_local = 0
        self.oversize_rejected = 0
        self.auth_failures = 0
        self.queued_dropped = 0
        self.protocol_refused = 0
        self.pending = 0
        self.slots_refused = 0
        self.pending_dropped = 0
        self.handshake_failed: dict[str, int] = {}
        self.password_checks = 0
        self.login_throttled = 0
        self.login_cache_hits = 0
        self.malformed_closed: dict[str, int] = {}
        self.acl_denials: dict[str, int] = {"publish": 0, "subscribe": 0, "receive": 0}
        self.acl_denial_reasons: dict[str, int] = {}

    def denied(self, action: str, reason: str) -> None:
        """Count one ACL denial."""
        self.acl_denials[action] = self.acl_denials.get(action, 0) + 1
        self.acl_denial_reasons[reason] = self.acl_denial_reasons.get(reason, 0) + 1

    def snapshot(self) -> BrokerStats:
        """A frozen copy of the counters now."""
        return BrokerStats(
            connections=self.connections,
            connections_total=self.connections_total,
            messages_in=self.messages_in,
            messages_local=self.messages_local,
            oversize_rejected=self.oversize_rejected,
            auth_failures=self.auth_failures,
            acl_denials=dict(self.acl_denials),
            acl_denial_reasons=dict(self.acl_denial_reasons),
            queued_dropped=self.queued_dropped,
            protocol_refused=self.protocol_refused,
            pending=self.pending,
            slots_refused=self.slots_refused,
            pending_dropped=self.pending_dropped,
            handshake_failed=dict(self.handshake_failed),
            password_checks=self.password_checks,
            login_throttled=self.login_throttled,
            login_cache_hits=self.login_cache_hits,
            malformed_closed=dict(self.malformed_closed),
        )
