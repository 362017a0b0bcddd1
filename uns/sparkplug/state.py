"""Sparkplug 3.0 Host Application STATE payloads: ``{"online": true, "timestamp": <ms>}`` as JSON."""

from __future__ import annotations

import orjson

from uns.errors import SparkplugError

__all__ = ["decode_state", "encode_state"]


def encode_state(online: bool, timestamp: int) -> bytes:
    """The JSON body of a STATE message (retained; the offline one is also the will).

    Args:
        online: whether the Host Application is online.
        timestamp: ms since the epoch; the specification wants the birth and its will
            to carry the same value, so the caller picks it once per session.

    Raises:
        ValueError: if ``timestamp`` is negative.
    """
    if timestamp < 0:
        raise ValueError(f"STATE timestamp must be ms since the epoch, got {timestamp}")
    return orjson.dumps({"online": bool(online), "timestamp": int(timestamp)})


def decode_state(data: bytes, *, topic: str) -> tuple[bool, int]:
    """Read a STATE body into ``(online, timestamp)``.

    Raises:
        SparkplugError: naming ``topic`` and what is wrong: not JSON, not an object,
            ``online`` missing or not a boolean, ``timestamp`` missing or not a non-negative integer.
    """
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise SparkplugError(topic, f"STATE payload is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise SparkplugError(topic, f"STATE payload must be a JSON object, got {type(body).__name__}")
    online = body.get("online")
    if not isinstance(online, bool):
        raise SparkplugError(topic, f"STATE payload field 'online' must be true or false, got {online!r}")
    timestamp = body.get("timestamp")
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or timestamp < 0:
        raise SparkplugError(topic, f"STATE payload field 'timestamp' must be ms since the epoch, got {timestamp!r}")
    return online, timestamp
