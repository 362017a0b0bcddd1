"""The line-provider interface the GPIO source runs on: libgpiod's (``chip.py``) or in memory (``memory.py``).

Values are logical: a provider applies ``active_low`` itself (as the kernel does for libgpiod), so an
edge here is a change of the logical value.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Literal, Protocol

from model.bridges.gpio import LineId

__all__ = ["Edge", "LineProvider", "LineRequest", "LineSpec"]


@dataclasses.dataclass(frozen=True, slots=True)
class LineSpec:
    """One line to take: an input (edges reported) or an output (with its first value)."""

    line: LineId
    output: bool
    active_low: bool = False
    bias: Literal["as_is", "pull_up", "pull_down", "disabled"] = "as_is"
    initial: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class Edge:
    """A change of an input's logical value, stamped by the provider (monotonic nanoseconds)."""

    line: LineId
    """The line as the spec named it."""
    value: bool
    timestamp_ns: int


class LineRequest(Protocol):
    """Lines taken from one chip, until ``close()``."""

    def get(self, line: LineId) -> bool:
        """The line's logical value now."""
        ...

    def set(self, line: LineId, value: bool) -> None:
        """Drive an output line."""
        ...

    async def edges(self) -> list[Edge]:
        """The next edges of the input lines, waiting for at least one; ``OSError`` when the chip is gone."""
        ...

    def close(self) -> None:
        """Release the lines."""
        ...


class LineProvider(Protocol):
    """Opens chips and takes lines."""

    def request(self, chip: str, consumer: str, lines: Sequence[LineSpec]) -> LineRequest:
        """Take ``lines`` of ``chip``; ``OSError`` when the chip or a line is missing or busy."""
        ...
