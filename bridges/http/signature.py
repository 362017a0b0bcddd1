"""Webhook HMAC signatures: what a sender signs, and the constant-time check against replays and forgeries."""

from __future__ import annotations

import hmac

__all__ = ["SignatureError", "check_signature", "sign"]


class SignatureError(Exception):
    """A webhook request whose signature or timestamp does not check out; the message says which."""


def _signed(body: bytes, timestamp: str | None) -> bytes:
    # with a timestamp the sender signs "<timestamp>.<body>" (as Stripe and Slack do), so an old body
    # cannot be sent again with a fresh timestamp
    return body if timestamp is None else timestamp.encode() + b"." + body


def sign(secret: bytes, body: bytes, *, algorithm: str = "sha256", timestamp: str | None = None) -> str:
    """The hex HMAC a sender puts in the signature header (after its prefix)."""
    return hmac.new(secret, _signed(body, timestamp), algorithm).hexdigest()


def check_signature(
    secret: bytes,
    body: bytes,
    *,
    header: str | None,
    prefix: str,
    algorithm: str,
    timestamp: str | None,
    tolerance_s: float | None,
    now_s: float,
) -> None:
    """Raise ``SignatureError`` unless ``header`` is the HMAC of the body (and timestamp, within tolerance)."""
    if tolerance_s is not None:
        if timestamp is None:
            raise SignatureError("timestamp header missing")
        try:
            sent = float(timestamp)
        except ValueError:
            raise SignatureError(f"timestamp {timestamp[:32]!r} is not Unix seconds") from None
        if abs(now_s - sent) > tolerance_s:
            raise SignatureError(
                f"timestamp {sent:.0f} is {now_s - sent:+.0f} s from now (tolerance {tolerance_s:g} s)"
            )
    if header is None:
        raise SignatureError("signature header missing")
    if not header.startswith(prefix):
        raise SignatureError(f"signature does not start with {prefix!r}")
    want = sign(secret, body, algorithm=algorithm, timestamp=timestamp if tolerance_s is not None else None)
    if not hmac.compare_digest(header[len(prefix) :].strip().lower().encode(), want.encode()):
        raise SignatureError("signature does not match the body")
