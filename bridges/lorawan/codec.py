"""Payload codecs: what turns an uplink's bytes into an object and a downlink's object into bytes.

One small interface; Cayenne LPP is built in, ``none`` decodes nothing, and any other codec is a
class named by import path in the device's config (``package.module:Name``), made once per device.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Protocol

from bridges.lorawan.lpp import CayenneLpp

__all__ = ["CodecError", "NoCodec", "PayloadCodec", "load_codec"]


class CodecError(ValueError):
    """A payload the codec refused, or a codec that cannot be loaded; the message says which and why."""


class PayloadCodec(Protocol):
    """Decodes uplink payloads and encodes downlink objects; raises ``ValueError`` naming what is wrong."""

    def decode(self, f_port: int, data: bytes) -> Mapping[str, object]:
        """The object of an uplink's FRMPayload."""
        ...

    def encode(self, f_port: int, value: Mapping[str, object]) -> bytes:
        """The FRMPayload of a downlink."""
        ...


class NoCodec:
    """``codec: none``: the device's uplinks carry only what the network server decoded."""

    def decode(self, f_port: int, data: bytes) -> Mapping[str, object]:
        """Nothing: an undecoded uplink maps to no metric (its radio metrics still count)."""
        del f_port, data
        return {}

    def encode(self, f_port: int, value: Mapping[str, object]) -> bytes:
        """Refuses: use a raw or server-encoded downlink."""
        raise CodecError(f"codec none cannot encode {dict(value)!r} for FPort {f_port}: use encoding raw or server")


def load_codec(name: str) -> PayloadCodec:
    """The codec a device's config names; raises ``CodecError`` if the import path does not give one."""
    if name == "cayenne_lpp":
        return CayenneLpp()
    if name == "none":
        return NoCodec()
    module_name, _, attribute = name.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
        codec = factory()
    except (ImportError, AttributeError, TypeError) as exc:
        raise CodecError(f"codec {name}: cannot make it: {exc}") from exc
    if not callable(getattr(codec, "decode", None)) or not callable(getattr(codec, "encode", None)):
        raise CodecError(f"codec {name}: has no decode(f_port, data) and encode(f_port, value)")
    return codec  # type: ignore[no-any-return]
