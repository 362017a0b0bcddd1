"""Sparkplug group, edge node, device and host ids: not empty, and no '/', '+' or '#' (they are topic levels)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

__all__ = ["SparkplugId", "check_sparkplug_id"]

_FORBIDDEN = ("/", "+", "#")


def check_sparkplug_id(value: str) -> str:
    """``value`` if it can be a Sparkplug id; ``ValueError`` naming the offending character otherwise."""
    if not value:
        raise ValueError("a Sparkplug id may not be empty")
    for char in _FORBIDDEN:
        if char in value:
            raise ValueError(f"Sparkplug id {value!r} may not contain {char!r}")
    return value


SparkplugId = Annotated[str, AfterValidator(check_sparkplug_id)]
"""A validated Sparkplug id."""
