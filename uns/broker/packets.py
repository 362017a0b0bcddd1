"""MQTT 3.1.1 packets that must close the connection, checked on the raw bytes before they are parsed.

amqtt 0.12.1 answers a SUBSCRIBE asking for QoS 3 with SUBACK 0x03, grants empty filters, drops a
PUBLISH on a wildcard topic but keeps the connection, reads invalid UTF-8 as the text ``b'...'`` and
accepts a will QoS of 3. Each rule below is a normative statement of MQTT 3.1.1 (or its section 4.8,
"a protocol violation closes the connection"); its id names the closure in the log and the counters.
The checks are pure functions of the bytes; :class:`PacketGuard` peeks the bytes, counts and logs.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from uns.broker.stats import Counters
from uns.logs import RateLimitedLog

__all__ = [
    "PacketGuard",
    "Violation",
    "check_body",
    "check_connect",
    "check_header",
    "check_packet",
    "check_topic",
    "filter_rule",
]

log = logging.getLogger(__name__)

Peek = Callable[[int], Awaitable[bytes]]
"""The next ``n`` unread bytes, kept for the reads that follow (fewer only at end of stream)."""

_CONNECT, _PUBLISH, _PUBREL, _SUBSCRIBE, _UNSUBSCRIBE = 1, 3, 6, 8, 10
_TO_CLIENT_ONLY = {2: "CONNACK", 9: "SUBACK", 11: "UNSUBACK", 13: "PINGRESP"}
_FLAGS_0010 = {_PUBREL: "MQTT-3.6.1-1", _SUBSCRIBE: "MQTT-3.8.1-1", _UNSUBSCRIBE: "MQTT-3.10.1-1"}
_UNUSUAL = re.compile(rb"[\x00+#\x80-\xff]")  # in a topic name: NUL, a wildcard, or not ASCII (checked slowly)
_CONNECT_WAIT_S = 10.0  # a CONNECT the handshake let through is whole already; this only bounds a stray wait


@dataclass(frozen=True, slots=True)
class Violation:
    """Why a packet closes its connection: the MQTT 3.1.1 statement it breaks and what was wrong."""

    rule: str
    what: str


def check_header(packet_type: int, flags: int) -> Violation | None:
    """The fixed header's flags (MQTT-2.2.2-2 and the per-packet rules) and packets only a server sends."""
    if packet_type in _TO_CLIENT_ONLY:
        return Violation("MQTT-4.8", f"a client sent {_TO_CLIENT_ONLY[packet_type]}, which only a server sends")
    if packet_type in _FLAGS_0010:
        if flags != 0b0010:
            return Violation(_FLAGS_0010[packet_type], f"fixed header flags {flags:04b}, must be 0010")
        return None
    if packet_type == _PUBLISH:
        if flags & 0b0110 == 0b0110:
            return Violation("MQTT-3.3.1-4", "PUBLISH with QoS 3")
        return None
    if flags:
        return Violation("MQTT-2.2.2-2", f"fixed header flags {flags:04b} on packet type {packet_type}, must be 0000")
    return None


def _text(raw: bytes, field: str) -> tuple[str | None, Violation | None]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, Violation("MQTT-1.5.3-1", f"{field} is not valid UTF-8 (byte {exc.start})")
    if "\x00" in text:
        return None, Violation("MQTT-1.5.3-2", f"{field} holds U+0000 at offset {text.index(chr(0))}")
    return text, None


def check_topic(raw: bytes) -> Violation | None:
    """A PUBLISH (or will) topic name: UTF-8, no U+0000, not empty, no wildcard."""
    text, bad = _text(raw, "topic name")
    if bad is not None or text is None:
        return bad
    if not text:
        return Violation("MQTT-4.7.3-1", "empty topic name")
    if "+" in text or "#" in text:
        return Violation("MQTT-3.3.2-2", f"wildcard in topic name {text!r}")
    return None


def filter_rule(text: str) -> Violation | None:
    """A topic filter's wildcards and length (MQTT 3.1.1 section 4.7)."""
    if not text:
        return Violation("MQTT-4.7.3-1", "empty topic filter")
    levels = text.split("/")
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != len(levels) - 1):
            return Violation("MQTT-4.7.1-2", f"topic filter {text!r}: '#' must be the whole last level")
        if "+" in level and level != "+":
            return Violation("MQTT-4.7.1-3", f"topic filter {text!r}: '+' must be a whole level")
    return None


def _strings(body: bytes, start: int) -> tuple[list[tuple[bytes, int]], bool]:
    """Length-prefixed strings from ``start``, each with the offset after it; False when one overruns."""
    found: list[tuple[bytes, int]] = []
    at = start
    while at < len(body):
        if at + 2 > len(body):
            return found, False
        end = at + 2 + int.from_bytes(body[at : at + 2], "big")
        if end > len(body):
            return found, False
        found.append((body[at + 2 : end], end))
        at = end
    return found, True


def check_body(packet_type: int, body: bytes) -> Violation | None:
    """A SUBSCRIBE's or UNSUBSCRIBE's variable header and payload (``body``: the bytes after the fixed header)."""
    if len(body) < 2:
        return Violation("MQTT-4.8", "packet ends inside its packet identifier")
    if body[:2] == b"\x00\x00":
        return Violation("MQTT-2.3.1-1", "packet identifier 0")
    name = "SUBSCRIBE" if packet_type == _SUBSCRIBE else "UNSUBSCRIBE"
    at, count = 2, 0
    while at < len(body):
        if at + 2 > len(body):
            return Violation("MQTT-4.8", f"{name} ends inside a topic filter's length at offset {at}")
        end = at + 2 + int.from_bytes(body[at : at + 2], "big")
        extra = 1 if packet_type == _SUBSCRIBE else 0
        if end + extra > len(body):
            return Violation("MQTT-4.8", f"{name} topic filter at offset {at} runs past the packet")
        text, bad = _text(body[at + 2 : end], f"topic filter at offset {at}")
        if bad is not None or text is None:
            return bad
        bad = filter_rule(text)
        if bad is not None:
            return bad
        if packet_type == _SUBSCRIBE and body[end] > 2:
            return Violation(
                "MQTT-3-8.3-4", f"requested QoS byte {body[end]:#04x} for {text!r} (reserved bits or QoS 3)"
            )
        at, count = end + extra, count + 1
    if count == 0:
        return Violation(
            "MQTT-3.8.3-3" if packet_type == _SUBSCRIBE else "MQTT-3.10.3-2", f"{name} with no topic filter"
        )
    return None


def check_connect(packet: bytes, header_length: int) -> Violation | None:
    """A whole CONNECT (3.1.1 layout): will flags, will topic and the UTF-8 of its strings.

    What the handshake checks already (protocol name and level, the reserved flag) is left to it; a
    structure that runs off the packet is left to amqtt, which closes such a connection itself.
    """
    body = packet[header_length:]
    if len(body) < 10:
        return None
    name_length = int.from_bytes(body[:2], "big")
    flags_at = 2 + name_length + 1
    if flags_at + 3 > len(body):
        return None
    flags = body[flags_at]
    will, will_qos, will_retain = bool(flags & 0x04), (flags >> 3) & 0x03, bool(flags & 0x20)
    has_user, has_password = bool(flags & 0x80), bool(flags & 0x40)
    if not will and will_qos:
        return Violation("MQTT-3.1.2-13", f"will QoS {will_qos} without the will flag")
    if not will and will_retain:
        return Violation("MQTT-3.1.2-15", "will retain without the will flag")
    if will_qos == 3:
        return Violation("MQTT-3.1.2-14", "will QoS 3")
    if has_password and not has_user:
        return Violation("MQTT-3.1.2-22", "a password without a user name")
    strings, _whole = _strings(body, flags_at + 3)
    fields = ["client id"] + (["will topic", "will message"] if will else []) + (["user name"] if has_user else [])
    for field, (raw, _end) in zip(fields, strings, strict=False):
        if field == "will message":
            continue  # binary data
        if field == "will topic":
            bad = check_topic(raw)
            if bad is not None:
                return Violation(bad.rule, f"will {bad.what}")
            continue
        _, bad = _text(raw, field)
        if bad is not None:
            return bad
    return None


class PacketGuard:
    """Checks each packet a network client sends before amqtt reads it; closes on a violation, counted and logged."""

    def __init__(self, *, counters: Counters) -> None:
        self._counters = counters
        self._warn = RateLimitedLog(log)

    def report(self, client_id: str, violation: Violation, peer: str = "") -> None:
        """Count the closure by rule and warn once per client and rule (rate limited)."""
        closed = self._counters.malformed_closed
        closed[violation.rule] = closed.get(violation.rule, 0) + 1
        self._warn.warning(
            f"malformed/{client_id}/{violation.rule}",
            "client %s%s: malformed packet, %s [%s]: closing the connection",
            client_id,
            f" from {peer}" if peer else "",
            violation.what,
            violation.rule,
        )

    async def check_connect(self, peek: Peek, peer: str = "") -> Violation | None:
        """The whole first CONNECT of a connection (peeked, not consumed); a violation is reported."""
        try:
            async with asyncio.timeout(_CONNECT_WAIT_S):
                head = await peek(5)
                length, header_length = _remaining_length(head)
                if length is None:
                    return None  # amqtt refuses a malformed remaining length itself
                packet = await peek(header_length + length)
            if len(packet) < header_length + length:
                return None  # the connection ended inside its CONNECT
        except (TimeoutError, ConnectionError):
            return None  # amqtt's own reading of the CONNECT fails the same way and closes
        violation = check_connect(packet, header_length)
        if violation is not None:
            client_id = _connect_client_id(packet, header_length)
            self.report(client_id, violation, peer)
        return violation

    def refuses_body(self, packet_type: int, flags: int, body: bytes, client_id: str) -> bool:
        """Whether the packet just read (``body``: its bytes after the fixed header) breaks a rule; reported if so."""
        violation = check_packet(packet_type, flags, body)
        if violation is None:
            return False
        self.report(client_id, violation)
        return True


def check_packet(packet_type: int, flags: int, body: bytes) -> Violation | None:
    """A packet other than CONNECT: its fixed header flags, and the body of a PUBLISH, SUBSCRIBE or UNSUBSCRIBE."""
    if packet_type == _PUBLISH and not flags & 0b0110:  # the hot path: QoS 0 with a plain ASCII topic
        topic_end = 2 + int.from_bytes(body[:2], "big")
        if 2 < topic_end <= len(body) and not _UNUSUAL.search(body, 2, topic_end):
            return None
    violation = check_header(packet_type, flags)
    if violation is None and packet_type in (_SUBSCRIBE, _UNSUBSCRIBE):
        return check_body(packet_type, body)
    if violation is None and packet_type == _PUBLISH:
        return _publish_violation(flags, body)
    return violation


def _publish_violation(flags: int, body: bytes) -> Violation | None:
    """A PUBLISH's topic name and packet identifier."""
    if len(body) < 2:
        return Violation("MQTT-4.8", "PUBLISH ends inside its topic length")
    topic_end = 2 + int.from_bytes(body[:2], "big")
    if topic_end > len(body):
        return Violation("MQTT-4.8", "PUBLISH topic length runs past the packet")
    raw = body[2:topic_end]
    if raw.isascii() and b"\x00" not in raw and b"+" not in raw and b"#" not in raw and raw:
        violation = None  # the usual topic, without decoding it
    else:
        violation = check_topic(raw)
    if violation is None and flags & 0b0110 and body[topic_end : topic_end + 2] == b"\x00\x00":
        return Violation("MQTT-2.3.1-1", "packet identifier 0")
    return violation


def _remaining_length(head: bytes) -> tuple[int | None, int]:
    value, multiplier = 0, 1
    for index in range(1, min(len(head), 5)):
        value += (head[index] & 0x7F) * multiplier
        if not head[index] & 0x80:
            return value, index + 1
        multiplier *= 128
    return None, 0


def _connect_client_id(packet: bytes, header_length: int) -> str:
    body = packet[header_length:]
    at = 2 + int.from_bytes(body[:2], "big") + 4
    raw = body[at + 2 : at + 2 + int.from_bytes(body[at : at + 2], "big")]
    return raw.decode("utf-8", "backslashreplace") or "<empty id>"
