"""A payload codec plugged in by import path, as a user's own would be."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["FirstByte", "NotACodec"]


class FirstByte:
    """Decodes the first byte; encodes ``first`` as one byte."""

    def decode(self, f_port: int, data: bytes) -> Mapping[str, object]:
        """The first byte and the port."""
        if not data:
            raise ValueError("byte 0: empty payload")
        return {"port": f_port, "first": data[0]}

    def encode(self, f_port: int, value: Mapping[str, object]) -> bytes:
        """One byte."""
        del f_port
        first = value.get("first")
        if not isinstance(first, int):
            raise ValueError(f"first: {first!r} is not an integer")
        return bytes([first])


class NotACodec:
    """Has neither decode nor encode."""
