"""Store-and-forward on disk: append-only segment files of sample batches, bounded, oldest dropped first.

Layout of the buffer directory::

    seg-000000000001.sfb   records, oldest segment first
    head                   "<segment index> <byte offset> <samples done>": replay progress in the oldest one
    bdseq                  the last bdSeq used, so a restart continues the count
    journal/               the replay window (``bridges.edge.journal``), records in the same format

A record is ``>III`` (body length, CRC-32 of the body, sample count) then the body: ``>H`` device id
length, the device id (UTF-8), and a Sparkplug payload whose metrics carry name, timestamp, datatype,
value and the ``Quality`` property. Names, not aliases, so a buffer survives a config change. The
buffer leaves the payload's timestamp unset and ignores it; the replay journal's records carry in it
when they were sent.

Writes go to the OS on every append (no fsync: a power cut can lose the last records, a process
crash cannot). A torn or corrupt record found when opening cuts its segment there, logged with the
file and byte offset, and counted. Replay is at least once: a record is marked done only after it
was published, so a crash in between sends it again. ``prepend`` puts the replay window's records
ahead of the head (rewriting the head segment), so a window goes out before what was buffered later.
``of_device`` reads one device's batches from anywhere in the part not yet done, and ``skip`` marks them
sent ahead of their turn (a device that died during a replay sends its history before its DDEATH): ``read``
passes over them. That mark lives in memory only, so a node killed before its head passes them sends them
again after a restart (at least once, as ever).
"""

from __future__ import annotations

import binascii
import contextlib
import dataclasses
import logging
import os
import struct
from collections import deque
from pathlib import Path
from typing import IO

from uns.errors import BridgeError, PayloadDecodeError
from uns.sparkplug import Metric, Payload, decode_payload, encode_payload

__all__ = [
    "BufferedBatch",
    "Chunk",
    "DeviceBatches",
    "DiskBuffer",
    "encode_record",
    "load_bd_seq",
    "record_at",
    "save_bd_seq",
    "scan_records",
]

log = logging.getLogger(__name__)

_HEADER = struct.Struct(">III")
_DEVICE_LEN = struct.Struct(">H")
_SUFFIX = ".sfb"
_PAYLOAD_TIMESTAMP_TAG = 0x08  # Payload.timestamp: field 1, varint
_NONE: dict[int, int] = {}  # no skip marks in a segment
_SCAN_RECORDS = 20_000  # records one ``of_device`` call examines at most: ~10 ms


@dataclasses.dataclass(frozen=True, slots=True)
class BufferedBatch:
    """Samples of one device that were reported together, held while the host could not take them."""

    device: str
    metrics: tuple[Metric, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class Chunk:
    """Batches read from the head of the buffer; ``DiskBuffer.commit`` marks them done."""

    batches: list[BufferedBatch]
    _end: tuple[int, int, int]  # segment index, offset after the last record, samples done in that segment


@dataclasses.dataclass(frozen=True, slots=True)
class DeviceBatches:
    """Some of one device's batches not yet done, oldest first; ``DiskBuffer.skip`` marks them sent."""

    batches: list[BufferedBatch]
    next: tuple[int, int] | None
    """Where the next ``of_device`` call goes on (segment index, byte offset); None: the end was reached."""
    _records: dict[tuple[int, int], int]  # (segment index, byte offset) -> samples


@dataclasses.dataclass(slots=True)
class _Segment:
    index: int
    path: Path
    size: int = 0
    samples: int = 0


def load_bd_seq(directory: Path) -> int | None:
    """The last bdSeq used by the edge node that owns ``directory``, or None if there is none (or unreadable)."""
    try:
        text = (directory / "bdseq").read_text().strip()
    except FileNotFoundError:
        return None
    try:
        value = int(text)
    except ValueError:
        log.warning("edge buffer %s: bdseq file holds %r, not a number: starting again at 0", directory, text)
        return None
    return value % 256


def save_bd_seq(directory: Path, bd_seq: int) -> None:
    """Remember the bdSeq of the connection just made (written to a temp file and renamed)."""
    tmp = directory / "bdseq.tmp"
    tmp.write_text(f"{bd_seq}\n")
    tmp.replace(directory / "bdseq")


def encode_record(batch: BufferedBatch, *, sent_ms: int | None = None) -> bytes:
    """One batch as a buffer record (header and body), as ``DiskBuffer.append`` writes it.

    ``sent_ms`` (the replay journal's: when the batch was published) goes in the payload's timestamp,
    which reading a record ignores and ``record_at`` reads back.
    """
    device = batch.device.encode()
    payload = encode_payload(Payload(timestamp=sent_ms, metrics=list(batch.metrics)))
    body = _DEVICE_LEN.pack(len(device)) + device + payload
    return _HEADER.pack(len(body), binascii.crc32(body), len(batch.metrics)) + body


def record_at(data: bytes, offset: int) -> tuple[int, int, int | None]:
    """(offset after it, its samples, its payload timestamp or None) of a whole record (one checked or written).

    The timestamp is read where protobuf puts field 1, ahead of the metrics, without decoding them; a
    payload that starts otherwise reads as None (as one written without a timestamp does).
    """
    length, _crc, samples = _HEADER.unpack_from(data, offset)
    end = offset + _HEADER.size + length
    (device_len,) = _DEVICE_LEN.unpack_from(data, offset + _HEADER.size)
    at = offset + _HEADER.size + _DEVICE_LEN.size + device_len
    if at >= end or data[at] != _PAYLOAD_TIMESTAMP_TAG:
        return end, samples, None
    timestamp = shift = 0
    for byte in data[at + 1 : min(end, at + 11)]:  # a varint, 7 bits a byte, low first
        timestamp |= (byte & 0x7F) << shift
        if byte < 0x80:
            return end, samples, timestamp
        shift += 7
    return end, samples, None


def scan_records(data: bytes, where: str) -> tuple[int, int, str | None]:
    """Check records back to back from the start of ``data``.

    Returns:
        (bytes of whole valid records, samples in them, what is wrong with the next record or None).
        ``where`` names the file in the decode errors.
    """
    offset = samples = 0
    while offset < len(data):
        problem = _check(data, offset, where)
        if problem is not None:
            return offset, samples, problem
        length, _crc, count = _HEADER.unpack_from(data, offset)
        offset += _HEADER.size + length
        samples += count
    return offset, samples, None


def _check(data: bytes, offset: int, where: str) -> str | None:
    if offset + _HEADER.size > len(data):
        return "torn (header cut short)"
    length, crc, _count = _HEADER.unpack_from(data, offset)
    body = data[offset + _HEADER.size : offset + _HEADER.size + length]
    if len(body) < length:
        return "torn (body cut short)"
    if binascii.crc32(body) != crc:
        return "corrupt (CRC mismatch)"
    try:
        _decode(body, where)
    except (PayloadDecodeError, UnicodeDecodeError, struct.error) as exc:
        return f"undecodable ({exc})"
    return None


def _decode(body: bytes, where: str) -> BufferedBatch:
    (n,) = _DEVICE_LEN.unpack_from(body)
    device = body[2 : 2 + n].decode()
    decoded = decode_payload(body[2 + n :], topic=where)
    return BufferedBatch(device, tuple(decoded.payload.metrics))


class DiskBuffer:
    """A bounded FIFO of sample batches on disk.

    ``with DiskBuffer(...) as buf:`` opens (and scans) the directory. ``append`` adds a batch,
    ``read`` returns the oldest ones not yet done, ``commit`` marks them done.

    Args:
        directory: where the segment files live (created if missing).
        max_bytes: cap on the segment files' total size; beyond it whole oldest segments are dropped.
        name: the edge node, for logs and errors.

    Raises:
        BridgeError: the directory cannot be created or read.
    """

    def __init__(self, *, directory: Path, max_bytes: int, name: str) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.name = name
        self._segment_target = max(max_bytes // 8, 512)
        self._segments: deque[_Segment] = deque()
        self._writer: IO[bytes] | None = None
        self._head_offset = 0
        self._head_done = 0
        self._next_index = 1
        # records sent ahead of their turn (``skip``): segment index -> {byte offset: samples}, and their samples
        self._skipped: dict[int, dict[int, int]] = {}
        self._skipped_samples = 0
        self.appended = 0
        """Samples appended since open."""
        self.dropped = 0
        """Samples dropped since open: over the cap, or unreadable on disk."""
        self.corrupt = 0
        """Records found torn or corrupt since open."""

    # -- lifecycle ------------------------------------------------------------------------------

    def __enter__(self) -> DiskBuffer:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            for stale in self.directory.glob(f"seg-*{_SUFFIX}.tmp"):  # a prepend cut short: the original stands
                stale.unlink()
            for path in sorted(self.directory.glob(f"seg-*{_SUFFIX}")):
                self._scan(path)
        except OSError as exc:
            raise BridgeError(self.name, str(self.directory), f"store-and-forward directory unusable: {exc}") from exc
        if self._segments:
            self._next_index = self._segments[-1].index + 1
            self._load_head()
        if self.depth:
            log.info("edge %s: %d buffered samples on disk in %s", self.name, self.depth, self.directory)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Flush and close the segment being written."""
        if self._writer is not None:
            with contextlib.suppress(OSError):
                self._writer.flush()
                os.fsync(self._writer.fileno())
            self._writer.close()
            self._writer = None

    # -- state ----------------------------------------------------------------------------------

    @property
    def depth(self) -> int:
        """Samples held and not yet done."""
        return sum(s.samples for s in self._segments) - self._head_done - self._skipped_samples

    @property
    def size_bytes(self) -> int:
        """Bytes of segment files on disk."""
        return sum(s.size for s in self._segments)

    # -- writing --------------------------------------------------------------------------------

    def append(self, batch: BufferedBatch) -> int:
        """Add a batch at the tail; returns how many of the oldest samples were dropped to stay under the cap."""
        record = encode_record(batch)
        last = self._segments[-1] if self._segments else None
        if last is None or self._writer is None or (last.size and last.size + len(record) > self._segment_target):
            last = self._roll()
        writer = self._writer
        if writer is None:  # pragma: no cover  (_roll always opens one)
            raise RuntimeError("no segment open")
        try:
            writer.write(record)
            writer.flush()
        except OSError as exc:
            raise BridgeError(self.name, str(last.path), f"store-and-forward write failed: {exc}") from exc
        last.size += len(record)
        last.samples += len(batch.metrics)
        self.appended += len(batch.metrics)
        return self._enforce_cap()

    def prepend(self, records: bytes, samples: int) -> int:
        """Put whole records (from ``encode_record``) ahead of everything not yet done.

        The head segment is rewritten as ``records`` + its part not yet done, in a temp file renamed
        over it; the head cursor is reset first, so a crash in between replays that part again
        rather than losing it. Returns how many of the oldest samples were dropped to stay under the cap.

        Raises:
            BridgeError: the head segment cannot be read or rewritten.
        """
        if not records:
            return 0
        if not self._segments:
            segment = self._roll()
            writer = self._writer
            if writer is None:  # pragma: no cover  (_roll always opens one)
                raise RuntimeError("no segment open")
            target = segment.path
            try:
                writer.write(records)
                writer.flush()
            except OSError as exc:
                raise BridgeError(self.name, str(target), f"store-and-forward write failed: {exc}") from exc
            segment.size, segment.samples = len(records), samples
        else:
            head = self._segments[0]
            if len(self._segments) == 1:
                self.close()  # the head is being written: the next append opens a new segment after it
            elif self._writer is not None:
                self._writer.flush()
            tmp = head.path.with_name(head.path.name + ".tmp")
            try:
                with head.path.open("rb") as file:
                    file.seek(self._head_offset)
                    rest = file.read(head.size - self._head_offset)
                tmp.write_bytes(records + rest)
                rest_samples = head.samples - self._head_done
                shift = len(records) - self._head_offset  # the head segment's records not yet done move by this
                if head.index in self._skipped:
                    marks = self._skipped[head.index]
                    self._skipped[head.index] = {offset + shift: n for offset, n in marks.items()}
                self._head_offset = self._head_done = 0
                self._save_head()
                tmp.replace(head.path)
            except OSError as exc:
                raise BridgeError(self.name, str(head.path), f"store-and-forward prepend failed: {exc}") from exc
            head.size, head.samples = len(records) + len(rest), samples + rest_samples
        self.appended += samples
        return self._enforce_cap()

    def _roll(self) -> _Segment:
        self.close()
        segment = _Segment(self._next_index, self.directory / f"seg-{self._next_index:012d}{_SUFFIX}")
        self._next_index += 1
        try:
            self._writer = segment.path.open("ab")
        except OSError as exc:
            raise BridgeError(self.name, str(segment.path), f"store-and-forward segment not created: {exc}") from exc
        self._segments.append(segment)
        return segment

    def _enforce_cap(self) -> int:
        dropped = 0
        while len(self._segments) > 1 and self.size_bytes > self.max_bytes:
            oldest = self._segments.popleft()
            lost = oldest.samples - self._head_done - self._forget_skipped(oldest.index)
            dropped += lost
            self._head_offset = self._head_done = 0
            oldest.path.unlink(missing_ok=True)
            log.warning(
                "edge %s: store-and-forward over %d bytes: dropped the oldest %d samples (%s)",
                self.name,
                self.max_bytes,
                lost,
                oldest.path.name,
            )
        if dropped:
            self.dropped += dropped
            self._save_head()
        return dropped

    # -- reading --------------------------------------------------------------------------------

    def read(self, max_batches: int) -> Chunk:
        """Up to ``max_batches`` of the oldest batches not yet done (empty when the buffer is)."""
        batches: list[BufferedBatch] = []
        end = (self._segments[0].index, self._head_offset, self._head_done) if self._segments else (0, 0, 0)
        if self._writer is not None:
            self._writer.flush()
        for position, segment in enumerate(self._segments):
            offset, done = (self._head_offset, self._head_done) if position == 0 else (0, 0)
            with segment.path.open("rb") as file:
                file.seek(offset)
                while offset < segment.size and len(batches) < max_batches:
                    header = file.read(_HEADER.size)
                    length, _crc, samples = _HEADER.unpack(header)
                    if offset in self._skipped.get(segment.index, _NONE):
                        file.seek(length, os.SEEK_CUR)  # sent ahead of its turn (``skip``)
                    else:
                        batches.append(_decode(file.read(length), f"{segment.path}@{offset}"))
                    offset += _HEADER.size + length
                    done += samples
            end = (segment.index, offset, done)
            if len(batches) >= max_batches:
                break
        return Chunk(batches, end)

    def of_device(self, device: str, *, max_batches: int, start: tuple[int, int] | None = None) -> DeviceBatches:
        """Up to ``max_batches`` of ``device``'s batches not yet done (nor skipped), oldest first, from ``start``.

        ``start`` is a previous answer's ``next`` (None: the head). Records of other devices are passed over
        by their header and device id, without being decoded; one call examines at most ``_SCAN_RECORDS``
        records (a few ms), so a caller holding a lock can let others in between calls.
        """
        batches: list[BufferedBatch] = []
        records: dict[tuple[int, int], int] = {}
        wanted = device.encode()
        examined = 0
        first, at = start if start is not None else (0, 0)
        if self._writer is not None:
            self._writer.flush()
        for position, segment in enumerate(self._segments):
            if segment.index < first:
                continue
            offset = max(self._head_offset if position == 0 else 0, at if segment.index == first else 0)
            with segment.path.open("rb") as file:
                file.seek(offset)
                while offset < segment.size:
                    if len(batches) >= max_batches or examined >= _SCAN_RECORDS:
                        return DeviceBatches(batches, (segment.index, offset), records)
                    examined += 1
                    length, _crc, samples = _HEADER.unpack(file.read(_HEADER.size))
                    (n,) = _DEVICE_LEN.unpack(file.read(_DEVICE_LEN.size))
                    name = file.read(n)
                    rest = length - _DEVICE_LEN.size - n
                    if name == wanted and offset not in self._skipped.get(segment.index, _NONE):
                        body = _DEVICE_LEN.pack(n) + name + file.read(rest)
                        batches.append(_decode(body, f"{segment.path}@{offset}"))
                        records[segment.index, offset] = samples
                    else:
                        file.seek(rest, os.SEEK_CUR)
                    offset += _HEADER.size + length
        return DeviceBatches(batches, None, records)

    def skip(self, taken: DeviceBatches) -> None:
        """Mark batches from ``of_device`` sent: ``read`` passes over them, ``depth`` no longer counts them."""
        for (index, offset), samples in taken._records.items():
            marks = self._skipped.setdefault(index, {})
            self._skipped_samples += samples - marks.get(offset, 0)
            marks[offset] = samples

    def _forget_skipped(self, index: int, before: int | None = None) -> int:
        """Drop the skip marks of segment ``index`` (those before byte ``before`` only); their samples."""
        marks = self._skipped.get(index)
        if not marks:
            return 0
        if before is None:
            del self._skipped[index]
            gone = sum(marks.values())
        else:
            passed = [offset for offset in marks if offset < before]
            gone = sum(marks.pop(offset) for offset in passed)
        self._skipped_samples -= gone
        return gone

    def commit(self, chunk: Chunk) -> None:
        """Mark a chunk from ``read`` done: finished segments are deleted, the head cursor saved."""
        index, offset, done = chunk._end
        while self._segments and self._segments[0].index < index:
            old = self._segments.popleft()
            self._forget_skipped(old.index)
            old.path.unlink(missing_ok=True)
        if not self._segments:
            return
        head = self._segments[0]
        if head.index != index:  # pragma: no cover  (its segment was dropped over the cap meanwhile)
            return
        if offset >= head.size:
            if len(self._segments) == 1:
                self.close()  # the segment being written is done too: the next append starts a new one
            self._forget_skipped(head.index)
            self._segments.popleft().path.unlink(missing_ok=True)
            self._head_offset = self._head_done = 0
        else:
            # head_done counts the skipped records the head passed: they leave the skip marks
            self._forget_skipped(head.index, before=offset)
            self._head_offset, self._head_done = offset, done
        self._save_head()

    # -- disk bookkeeping ---------------------------------------------------------------------

    def _scan(self, path: Path) -> None:
        try:
            index = int(path.stem.removeprefix("seg-"))
        except ValueError:
            log.warning("edge %s: ignoring %s: not a segment name", self.name, path)
            return
        data = path.read_bytes()
        offset, samples, problem = scan_records(data, str(path))
        if problem is not None:
            self.corrupt += 1
            log.warning(
                "edge %s: %s: record at byte %d is %s; cutting the segment there", self.name, path, offset, problem
            )
            with path.open("r+b") as file:
                file.truncate(offset)
        self._segments.append(_Segment(index, path, offset, samples))

    def _load_head(self) -> None:
        try:
            index, offset, done = (int(x) for x in (self.directory / "head").read_text().split())
        except (FileNotFoundError, ValueError):
            return
        while self._segments and self._segments[0].index < index:
            self._segments.popleft().path.unlink(missing_ok=True)
        if self._segments and self._segments[0].index == index and offset <= self._segments[0].size:
            self._head_offset, self._head_done = offset, done

    def _save_head(self) -> None:
        index = self._segments[0].index if self._segments else 0
        tmp = self.directory / "head.tmp"
        tmp.write_text(f"{index} {self._head_offset} {self._head_done}\n")
        tmp.replace(self.directory / "head")
