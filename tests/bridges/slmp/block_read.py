"""Block read (0x0406) for virtual-plc, which lacks it: a handler for its documented extension point.

Written from the SLMP reference manual's layout (word block count, bit block count, then per
block a device spec and a point count; the answer is every word block's words, then every bit
block's words, 16 bits each), so the driver's block reads meet a counterpart rather than only
their 0xC059 fallback. It refuses more blocks or points than the series allows, as a CPU does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from virtual_plc import commands  # type: ignore[import-untyped]  # no py.typed in virtual-plc 0.3.0
from virtual_plc.codec import Reader, pack_words, read_device  # type: ignore[import-untyped]

__all__ = ["BLOCK_LIMITS", "block_reads", "requests_seen"]

BLOCK_LIMITS = {"iQ-R": 60, "Q-class": 120}
"""Blocks one block read may carry, by virtual-plc's wire class."""
requests_seen: list[int] = []
"""Blocks of each block read served, in order."""


def _block_read(request: object, memory: object, max_points: int, control: object = None) -> bytes:
    data: bytes = request.data  # type: ignore[attr-defined]
    profile = memory.profile  # type: ignore[attr-defined]
    reader = Reader(data, "binary")
    word_count, bit_count = reader.number(1), reader.number(1)
    if word_count + bit_count > BLOCK_LIMITS[profile.wire_class]:
        raise commands.CommandError(commands.EndCode.POINTS_OUT_OF_RANGE)
    blocks = []
    for _ in range(word_count + bit_count):
        device, head = read_device(reader, profile)
        blocks.append((device.name, head, reader.number(2)))
    if sum(points for _, _, points in blocks) > 960:
        raise commands.CommandError(commands.EndCode.POINTS_OUT_OF_RANGE)
    requests_seen.append(len(blocks))
    try:
        return b"".join(pack_words(memory.read_words(name, head, points)) for name, head, points in blocks)  # type: ignore[attr-defined]
    except ValueError as exc:
        raise commands.CommandError(commands.EndCode.ADDRESS_OUT_OF_RANGE) from exc


@contextlib.contextmanager
def block_reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every in-process virtual-plc answers 0x0406 while this is entered."""
    requests_seen.clear()
    for wire_class, subcommand in (("iQ-R", 0x0002), ("Q-class", 0x0000)):
        monkeypatch.setitem(commands.DATA_HANDLERS[wire_class], (0x0406, subcommand), _block_read)
    yield
