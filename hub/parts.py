"""What ``uns up`` and each ``uns <component>`` run: long-lived parts, entered, then run until cancelled."""

from __future__ import annotations

from typing import Protocol

__all__ = ["Part"]


class Part(Protocol):
    """A long-lived component: entered by the caller, then ``run()`` until cancelled."""

    name: str

    async def run(self) -> None:
        """Work until cancelled."""
        ...
