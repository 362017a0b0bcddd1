"""The host's own STATE topic: decide when to re-assert ``online`` and with which timestamp (pure, no I/O).

Sparkplug 3.0 (tck-id-message-flow-hid-sparkplug-state-message-delivered): a host delivered an
``online: false`` STATE on its own id MUST at once republish ``online: true`` with the timestamp of
its CONNECT's will. Edge nodes only honour a STATE whose timestamp is at least the last one they saw
(tck-id-message-flow-edge-node-birth-publish-phid-wait-timestamp), so a forged STATE stamped after our
session would make that re-assertion ignored for good: then the re-assertion carries the forged
timestamp instead (equal is accepted), the least change that lets every edge node come back.
"""

from __future__ import annotations

import logging

from uns.errors import SparkplugError
from uns.host.counters import HostCounters, Reason
from uns.logs import RateLimitedLog
from uns.sparkplug import decode_state, encode_state

__all__ = ["StateGuard"]

log = logging.getLogger(__name__)


class StateGuard:
    """Watches ``spBv1.0/STATE/<host_id>`` and answers anything but our own STATE with ours."""

    def __init__(self, *, topic: str, session_ms: int, counters: HostCounters) -> None:
        self.topic = topic
        self.session_ms = session_ms
        """The timestamp of this MQTT session's will (and so of its online STATE)."""
        self.timestamp_ms = session_ms
        """The timestamp of the online STATE the host asserts now."""
        self._counters = counters
        self._warn = RateLimitedLog(log)

    def new_session(self, session_ms: int) -> None:
        """A new CONNECT whose will carries ``session_ms``: the online STATE after it carries it too.

        Unless an online STATE was asserted with a later time (a forged one's, see the module): edge nodes
        would ignore an older one.
        """
        self.session_ms = session_ms
        self.timestamp_ms = max(self.timestamp_ms, session_ms)

    def online(self) -> bytes:
        """The body of our online STATE (published retained at QoS 1)."""
        return encode_state(True, self.timestamp_ms)

    def on_message(self, payload: bytes, now_ms: int) -> bytes | None:
        """A message delivered on our STATE topic: the online STATE to publish, or None if it is ours."""
        try:
            online, stamp = decode_state(payload, topic=self.topic)
        except SparkplugError as exc:
            online, stamp, detail = False, 0, f"unreadable STATE ({exc.reason})"
        else:
            if online and stamp <= self.timestamp_ms:
                # our own STATE coming back to us, or an earlier session's still retained when we resubscribe
                # (each CONNECT has its own time): edge nodes ignore it as older than ours, nothing to answer
                return None
            if not online and stamp <= self.session_ms:
                # our will (this session's, fired while we reconnected, or an earlier one's), retained and
                # delivered on subscribe: answered as the rule says, but not a forgery, so not counted
                return self.online()
            detail = f"foreign STATE online={online} timestamp={stamp}"
        self.timestamp_ms = max(self.timestamp_ms, stamp)
        self._counters.rejected[Reason.foreign_state.value] += 1
        self._warn.warning(
            Reason.foreign_state,
            "%s on %s: %s: re-asserting online timestamp=%d",
            Reason.foreign_state.value, self.topic, detail, self.timestamp_ms,
        )  # fmt: skip
        return self.online()
