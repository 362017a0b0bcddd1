"""Pure read planning: the tags of one poll group as few SLMP reads as each series' limits allow.

Every tag is a run of words of one device: a word device's tag from its number, a bit device's tag
(M100, X1F) as the word of 16 bits holding it (M96..M111, X10..X1F), a word's bit (D10.3) as that
word. Runs of one device closer than ``max_gap`` words merge while they stay within ``max_read``
words. Short runs (up to ``RANDOM_RUN`` words) become word and double-word points of random reads
(0x0403), at most ``random_points`` points each; longer runs become blocks of block reads (0x0406,
at most ``block_count`` blocks and ``block_points`` words each) where the series has them, else
one batch read (0x0401) each.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence

from model.bridges.slmp import BIT_DEVICES, HEX_DEVICES

__all__ = [
    "RANDOM_RUN",
    "BatchRead",
    "BlockRead",
    "Limits",
    "RandomRead",
    "ReadRequest",
    "Run",
    "Slot",
    "format_device",
    "plan_reads",
    "split",
    "words_by_index",
]

RANDOM_RUN = 4
"""Runs of at most this many words are read as random points (two double words)."""


def format_device(device: str, number: int, *, octal_xy: bool = False) -> str:
    """An address as GX Works writes it: ``D100``, ``X1F`` (``X17`` on iQ-F), ``W1A0``."""
    if octal_xy and device in ("X", "Y"):
        return f"{device}{number:o}"
    return f"{device}{number:X}" if device in HEX_DEVICES else f"{device}{number}"


@dataclasses.dataclass(frozen=True, slots=True)
class Slot:
    """Where one tag lives: ``words`` words of ``device`` from word ``index`` (a bit device's word: number // 16)."""

    name: str
    address: str
    """As the user wrote it."""
    device: str
    index: int
    words: int = 1
    bit: int | None = None
    """A bool's bit in its word."""

    @property
    def end(self) -> int:
        """One past its last word."""
        return self.index + self.words


@dataclasses.dataclass(frozen=True, slots=True)
class Run:
    """Consecutive words of one device that one point or block reads, and the tags in them."""

    device: str
    index: int
    words: int
    slots: tuple[Slot, ...]

    @property
    def head(self) -> int:
        """The device number of its first point (bit devices: 16 bits per word)."""
        return self.index * 16 if self.device in BIT_DEVICES else self.index

    def points(self) -> list[tuple[int, int]]:
        """(word index, width in words) of the random-read points covering it: double words, then a word if odd."""
        return [(self.index + offset, min(2, self.words - offset)) for offset in range(0, self.words, 2)]

    def label(self, octal_xy: bool = False) -> str:
        """``D100..D131``: its first and last points."""
        last = self.head + (self.words * 16 if self.device in BIT_DEVICES else self.words) - 1
        first = format_device(self.device, self.head, octal_xy=octal_xy)
        return first if last == self.head else f"{first}..{format_device(self.device, last, octal_xy=octal_xy)}"


@dataclasses.dataclass(frozen=True, slots=True)
class RandomRead:
    """One random read (0x0403): word and double-word points of short runs."""

    runs: tuple[Run, ...]

    @property
    def point_count(self) -> int:
        """Word plus double-word points."""
        return sum(len(run.points()) for run in self.runs)


@dataclasses.dataclass(frozen=True, slots=True)
class BlockRead:
    """One block read (0x0406): several runs, each a block."""

    runs: tuple[Run, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class BatchRead:
    """One batch read (0x0401) of one run, in word units."""

    runs: tuple[Run, ...]


ReadRequest = RandomRead | BlockRead | BatchRead


@dataclasses.dataclass(frozen=True, slots=True)
class Limits:
    """What one request of a series may carry (SLMP reference manual; plc-comm-slmp's capability table)."""

    random_points: int = 96
    """Word plus double-word points of one random read: 96 on iQ-R, 192 on Q/L/iQ-F."""
    block_reads: bool = True
    """The PLC has block read (0x0406); built-in Q/L ports answer 0xC059."""
    block_count: int = 60
    """Blocks of one block read: 60 on iQ-R, 120 on Q/L."""
    block_points: int = 960
    """Words of one block or batch read, all blocks together."""
    max_gap: int = 8
    max_read: int = 480


def _coalesce(slots: Iterable[Slot], max_gap: int, max_read: int) -> list[Run]:
    by_device: dict[str, list[Slot]] = {}
    for slot in slots:
        by_device.setdefault(slot.device, []).append(slot)
    runs: list[Run] = []
    for device in sorted(by_device):
        current: list[Slot] = []
        end = 0
        for slot in sorted(by_device[device], key=lambda s: (s.index, s.words)):
            if current and (slot.index - end > max_gap or max(end, slot.end) - current[0].index > max_read):
                runs.append(Run(device, current[0].index, end - current[0].index, tuple(current)))
                current = []
            if not current:
                end = slot.end
            current.append(slot)
            end = max(end, slot.end)
        if current:
            runs.append(Run(device, current[0].index, end - current[0].index, tuple(current)))
    return runs


def plan_reads(slots: Iterable[Slot], limits: Limits) -> list[ReadRequest]:
    """The reads of one poll group: random reads first, then block (or batch) reads, devices in name order."""
    runs = _coalesce(slots, limits.max_gap, min(limits.max_read, limits.block_points))
    requests: list[ReadRequest] = []
    short: list[Run] = []
    points = 0
    for run in (r for r in runs if r.words <= RANDOM_RUN):
        count = len(run.points())
        if short and points + count > limits.random_points:
            requests.append(RandomRead(tuple(short)))
            short, points = [], 0
        short.append(run)
        points += count
    if short:
        requests.append(RandomRead(tuple(short)))
    long = [r for r in runs if r.words > RANDOM_RUN]
    if not limits.block_reads:
        return requests + [BatchRead((run,)) for run in long]
    blocks: list[Run] = []
    words = 0
    for run in long:
        if blocks and (len(blocks) == limits.block_count or words + run.words > limits.block_points):
            requests.append(BlockRead(tuple(blocks)))
            blocks, words = [], 0
        blocks.append(run)
        words += run.words
    if blocks:
        requests.append(BlockRead(tuple(blocks)))
    return requests


def split(request: ReadRequest) -> list[ReadRequest]:
    """One read per tag: the fallback when a merged read hits an address the PLC refuses."""
    parts: list[ReadRequest] = []
    for run in request.runs:
        for slot in run.slots:
            alone = Run(slot.device, slot.index, slot.words, (slot,))
            parts.append(RandomRead((alone,)) if slot.words <= RANDOM_RUN else BatchRead((alone,)))
    return parts


def words_by_index(request: ReadRequest, values: Sequence[Sequence[int]]) -> Mapping[tuple[str, int], int]:
    """(device, word index) -> word, from the words read for each run of ``request`` (in run order)."""
    words: dict[tuple[str, int], int] = {}
    for run, run_words in zip(request.runs, values, strict=True):
        for offset, word in enumerate(run_words):
            words[run.device, run.index + offset] = word
    return words
