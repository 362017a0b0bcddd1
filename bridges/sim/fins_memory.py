"""A simulated Omron CPU's memory and its answers to FINS memory commands, pure (no sockets).

The CS/CJ memory map: CIO, W, H, A, D and EM banks, word and bit area codes as in W342. Checks
answer as a CJ2 does (CJ reference, FINS commands 01 01..01 04): no items is a normal completion that
reads nothing, an unknown area code or a missing EM bank 0x1101, a start address outside
the area (or a bit above 15) 0x1103, a read or write running past the area's end 0x1104, a write
into A0..A447 0x2101, data that does not match the element count 0x1003, an unknown command 0x0401.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType

from bridges.fins.frame import CONTROLLER_DATA_READ, MEMORY_AREA_READ, MEMORY_AREA_WRITE, MULTIPLE_MEMORY_AREA_READ
from model.bridges.fins_address import AREA_WORDS, Area, FinsAddress

__all__ = ["MAX_ITEMS", "MAX_WORDS", "FinsMemory", "Location"]

MAX_WORDS = 999
"""Words (or bits) one Memory Area Read may ask for, as a CS/CJ answers in one frame."""
MAX_ITEMS = 167
"""Items one Multiple Memory Area Read may ask for."""
_READ_ONLY_A = 448


@dataclasses.dataclass(frozen=True, slots=True)
class Location:
    """Where an area code points: the area (and EM bank) and whether it is bit access."""

    area: Area
    bank: int | None
    bits: bool


def _codes(em_banks: int) -> Mapping[int, Location]:
    codes: dict[int, Location] = {}
    for area in ("CIO", "W", "H", "A", "D"):
        probe = FinsAddress(area, 0)
        codes[probe.word_code] = Location(area, None, False)
        codes[probe.bit_code] = Location(area, None, True)
    codes[0x98], codes[0x0A] = Location("EM", None, False), Location("EM", None, True)
    for bank in range(em_banks):
        probe = FinsAddress("EM", 0, None, bank)
        codes[probe.word_code] = Location("EM", bank, False)
        codes[probe.bit_code] = Location("EM", bank, True)
    return MappingProxyType(codes)


class _Refused(Exception):
    def __init__(self, end_code: int) -> None:
        self.end_code = end_code
        super().__init__(f"end code 0x{end_code:04X}")


class FinsMemory:
    """The word images of one CPU; ``answer`` serves a FINS command against them."""

    def __init__(self, *, em_banks: int = 3, current_bank: int = 0, model: str = "CJ2M-CPU33") -> None:
        self.em_banks = em_banks
        self.current_bank = current_bank
        self.model = model
        self._codes = _codes(em_banks)
        self._images: dict[tuple[Area, int | None], bytearray] = {
            (area, None): bytearray(2 * size) for area, size in AREA_WORDS.items() if area != "EM"
        }
        for bank in range(em_banks):
            self._images[("EM", bank)] = bytearray(2 * AREA_WORDS["EM"])

    def image(self, area: Area, bank: int | None = None) -> bytearray:
        """The bytes of an area (EM: a bank; None = the current bank), 2 per word, big-endian."""
        if area == "EM" and bank is None:
            bank = self.current_bank
        return self._images[(area, bank)]

    def get_words(self, address: FinsAddress, count: int) -> bytes:
        """``count`` words from ``address`` as wire bytes."""
        image = self.image(address.area, address.bank)
        return bytes(image[2 * address.word : 2 * (address.word + count)])

    def set_words(self, address: FinsAddress, data: bytes) -> None:
        """Put wire bytes at ``address`` (no read-only check: this is the PLC program writing)."""
        image = self.image(address.area, address.bank)
        image[2 * address.word : 2 * address.word + len(data)] = data

    def get_bit(self, address: FinsAddress) -> bool:
        """One bit (``address.bit``) of a word."""
        word = int.from_bytes(self.get_words(address, 1), "big")
        return bool(word >> (address.bit or 0) & 1)

    def set_bit(self, address: FinsAddress, on: bool) -> None:
        """Set or clear one bit of a word."""
        word = int.from_bytes(self.get_words(address, 1), "big")
        mask = 1 << (address.bit or 0)
        self.set_words(address, ((word | mask) if on else (word & ~mask)).to_bytes(2, "big"))

    def answer(self, code: int, body: bytes) -> tuple[int, bytes]:
        """The end code and data answering command ``code`` with parameters ``body``."""
        try:
            if code == MEMORY_AREA_READ:
                return 0, self._read(body)
            if code == MEMORY_AREA_WRITE:
                self._write(body)
                return 0, b""
            if code == MULTIPLE_MEMORY_AREA_READ:
                return 0, self._read_multiple(body)
            if code == CONTROLLER_DATA_READ:
                # model, version, then "for system use" whose second byte is the largest EM bank number
                system = bytes((0, max(self.em_banks - 1, 0))).ljust(40, b"\x00")
                return 0, self.model.encode().ljust(20)[:20] + b"02.01".ljust(20) + system + bytes(12)
        except _Refused as refused:
            return refused.end_code, b""
        return 0x0401, b""

    def _locate(self, spec: bytes) -> tuple[Location, FinsAddress]:
        location = self._codes.get(spec[0])
        if location is None:
            raise _Refused(0x1101)
        word, bit = int.from_bytes(spec[1:3], "big"), spec[3]
        if word >= AREA_WORDS[location.area] or bit > 15 or (bit and not location.bits):
            raise _Refused(0x1103)
        bank = self.current_bank if location.area == "EM" and location.bank is None else location.bank
        return location, FinsAddress(location.area, word, bit if location.bits else None, bank)

    def _span(self, body: bytes) -> tuple[Location, FinsAddress, int]:
        if len(body) < 6:
            raise _Refused(0x1002)
        location, address = self._locate(body[:4])
        count = int.from_bytes(body[4:6], "big")
        if count > MAX_WORDS:
            raise _Refused(0x1104)
        bit_end = address.word * 16 + (address.bit or 0) + count
        end_word = -(-bit_end // 16) if location.bits else address.word + count
        if end_word > AREA_WORDS[location.area]:
            raise _Refused(0x1104)
        return location, address, count

    def _bits(self, address: FinsAddress, count: int) -> list[FinsAddress]:
        first = address.word * 16 + (address.bit or 0)
        return [FinsAddress(address.area, n // 16, n % 16, address.bank) for n in range(first, first + count)]

    def _read(self, body: bytes) -> bytes:
        location, address, count = self._span(body)
        if len(body) != 6:
            raise _Refused(0x1001 if len(body) > 6 else 0x1002)
        if location.bits:
            return bytes(int(self.get_bit(bit)) for bit in self._bits(address, count))
        return self.get_words(address, count)

    def _write(self, body: bytes) -> None:
        location, address, count = self._span(body)
        data = body[6:]
        if len(data) != (count if location.bits else 2 * count):
            raise _Refused(0x1003)
        if location.area == "A" and address.word < _READ_ONLY_A:
            raise _Refused(0x2101)
        if location.bits:
            for bit, value in zip(self._bits(address, count), data, strict=True):
                self.set_bit(bit, bool(value))
        else:
            self.set_words(address, data)

    def _read_multiple(self, body: bytes) -> bytes:
        if len(body) % 4:
            raise _Refused(0x1003)
        if len(body) // 4 > MAX_ITEMS:
            raise _Refused(0x1001)
        out = bytearray()
        for offset in range(0, len(body), 4):
            location, address = self._locate(body[offset : offset + 4])
            out.append(body[offset])
            out += bytes((int(self.get_bit(address)),)) if location.bits else self.get_words(address, 1)
        return bytes(out)
