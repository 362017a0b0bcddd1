"""The read planner, pure: which FINS requests read a poll group's tags in as few round trips as fit a frame.

Tags of one area (and EM bank) whose words lie close together become one block, read with
Memory Area Read (0101) up to ``max_words`` words; a longer run is split. Small blocks left
over (scattered one- to four-word tags, in any area) are gathered into Multiple Memory Area
Reads (0104), one item per word, up to ``max_items`` items. Bit tags are read through their word.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence

from model.bridges.fins import FinsTag
from model.bridges.fins_address import FinsAddress

__all__ = ["Block", "ReadRequest", "plan_reads", "singles", "split_response"]

_SMALL = 4  # words: a block this short costs a round trip of its own unless gathered into 0104


@dataclasses.dataclass(frozen=True, slots=True)
class Block:
    """Consecutive words of one area and the tags inside them."""

    start: FinsAddress
    count: int
    tags: tuple[FinsTag, ...]

    def words_of(self, data: bytes, tag: FinsTag) -> bytes:
        """The bytes of ``tag``'s words within this block's ``data``."""
        offset = 2 * (tag.location.word - self.start.word)
        return data[offset : offset + 2 * tag.words]


@dataclasses.dataclass(frozen=True, slots=True)
class ReadRequest:
    """One FINS read: a single block (0101) or several small ones (``multiple``: 0104)."""

    blocks: tuple[Block, ...]
    multiple: bool = False

    @property
    def tags(self) -> tuple[FinsTag, ...]:
        """Every tag it reads."""
        return tuple(tag for block in self.blocks for tag in block.tags)

    @property
    def items(self) -> list[FinsAddress]:
        """The word addresses of a multiple read, in order."""
        return [block.start.shifted(i) for block in self.blocks for i in range(block.count)]

    def __str__(self) -> str:
        return ", ".join(f"{block.start}+{block.count}" if block.count > 1 else str(block.start)
                         for block in self.blocks)  # fmt: skip


def _blocks(tags: Sequence[FinsTag], *, max_words: int, max_gap: int) -> list[Block]:
    blocks: list[Block] = []
    by_space: dict[tuple[str, int | None], list[FinsTag]] = {}
    for tag in tags:
        by_space.setdefault(tag.location.space, []).append(tag)
    for members in by_space.values():
        members.sort(key=lambda tag: (tag.location.word, tag.words))
        start = members[0].location.shifted(0)
        end = start.word + members[0].words
        current: list[FinsTag] = [members[0]]
        for tag in members[1:]:
            word = tag.location.word
            new_end = max(end, word + tag.words)
            if word - end <= max_gap and new_end - start.word <= max_words:
                current.append(tag)
                end = new_end
                continue
            blocks.append(Block(start, end - start.word, tuple(current)))
            start, end, current = tag.location.shifted(0), word + tag.words, [tag]
        blocks.append(Block(start, end - start.word, tuple(current)))
    return blocks


def plan_reads(tags: Sequence[FinsTag], *, max_words: int, max_items: int, max_gap: int) -> list[ReadRequest]:
    """The requests that read ``tags``: each tag's words inside exactly one request."""
    if not tags:
        return []
    blocks = _blocks(tags, max_words=max_words, max_gap=max_gap)
    requests: list[ReadRequest] = []
    small: list[Block] = []
    for block in blocks:
        if max_items and block.count <= min(_SMALL, max_items):
            small.append(block)
        else:
            requests.append(ReadRequest((block,)))
    batch: list[Block] = []
    for block in small:
        if sum(b.count for b in batch) + block.count > max_items:
            requests.append(_gathered(batch))
            batch = []
        batch.append(block)
    if batch:
        requests.append(_gathered(batch))
    return requests


def _gathered(blocks: Sequence[Block]) -> ReadRequest:
    return ReadRequest(tuple(blocks), multiple=len(blocks) > 1)


def split_response(request: ReadRequest, data: bytes) -> Mapping[Block, bytes]:
    """Each block's word bytes in a response's data.

    Raises:
        ValueError: the data is shorter than the request asked for, or a 0104 item has the wrong area code.
    """
    if not request.multiple:
        (block,) = request.blocks
        if len(data) < 2 * block.count:
            raise ValueError(f"{len(data)} bytes answer a read of {block.count} words from {block.start}")
        return {block: data[: 2 * block.count]}
    out: dict[Block, bytes] = {}
    offset = 0
    for block in request.blocks:
        words: list[bytes] = []
        for _ in range(block.count):
            item = data[offset : offset + 3]
            if len(item) < 3 or item[0] != block.start.word_code:
                raise ValueError(f"multiple read item at byte {offset} is {item.hex()}, expected area "
                                 f"0x{block.start.word_code:02X} and a word for {block.start}")  # fmt: skip
            words.append(item[1:3])
            offset += 3
        out[block] = b"".join(words)
    return out


def singles(tags: Iterable[FinsTag]) -> list[ReadRequest]:
    """One 0101 request per tag: how a failed request is retried to find the tags that caused it."""
    return [ReadRequest((Block(tag.location.shifted(0), tag.words, (tag,)),)) for tag in tags]
