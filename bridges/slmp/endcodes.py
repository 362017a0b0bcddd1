"""SLMP end codes: what each means, and whether it marks one address bad or says the route or frame is wrong.

Meanings follow Mitsubishi's SLMP reference manual (SH-080956ENG) and the MELSEC Q/L MC protocol
manual (SH-080008). An address problem marks just the tags read at that address bad; a route or
frame problem means no read can work, so the device is taken down and reconnected, and the
reconnect's probe read fails fast with the same explanation (``DeviceRefused``).
"""

from __future__ import annotations

import dataclasses

__all__ = ["BLOCK_UNSUPPORTED", "EndCode", "describe"]

BLOCK_UNSUPPORTED = 0xC059
"""The end code a PLC without block read (0x0406) answers it with."""


@dataclasses.dataclass(frozen=True, slots=True)
class EndCode:
    """One end code: its meaning, and whether the frame/route (not an address) is at fault."""

    code: int
    meaning: str
    route: bool = False
    """True: the route, frame or PLC setting is wrong (the device is refused); False: the addressed tags are bad."""

    def __str__(self) -> str:
        return f"end code 0x{self.code:04X} {self.meaning}"


_TABLE: dict[int, EndCode] = {
    code.code: code
    for code in (
        EndCode(0x4000, "CPU error: the request reached the CPU but it reported an internal error"),
        EndCode(0x4010, "cannot be done while the CPU is in RUN"),
        EndCode(0x4013, "cannot be done while the CPU is in RUN (write during RUN is disabled in its parameters)"),
        EndCode(0x4030, "the device cannot be used on this CPU (device name not supported)"),
        EndCode(0x4031, "the device number is outside the CPU's device allocation (check its device parameters)"),
        EndCode(0x4032, "the device specification (modification or indexing) is not allowed"),
        EndCode(0x4080, "request data error (the value or device is not valid for the CPU)"),
        EndCode(0x4A00, "route: the network number is not in the routing parameters", route=True),
        EndCode(0x4A01, "route: the target network is not reachable (routing parameters)", route=True),
        EndCode(0x4A02, "route: the target station cannot be reached (station or module I/O number)", route=True),
        EndCode(0x4B00, "route: an error at the relay or target station", route=True),
        EndCode(
            0xC050,
            "the PLC expects ASCII frames: set its communication data code to binary",
            route=True,
        ),
        EndCode(0xC051, "too many word points in one request (the CPU's limit for this command)"),
        EndCode(0xC052, "too many bit points in one request"),
        EndCode(0xC053, "too many random bit points in one request"),
        EndCode(0xC054, "too many random word points in one request"),
        EndCode(0xC056, "the read or write goes past the device's last number"),
        EndCode(0xC058, "request data length does not match after ASCII conversion (data code setting)", route=True),
        EndCode(
            0xC059,
            "command or subcommand not supported: the series does not match the PLC (Q/L vs iQ-R device format) "
            "or the port does not offer the command",
            route=True,
        ),
        EndCode(0xC05B, "the CPU cannot read or write this device"),
        EndCode(0xC05C, "request content error (e.g. a bit device read in words from a number not a multiple of 16)"),
        EndCode(0xC05F, "the request cannot be executed on the target CPU (check module I/O number)", route=True),
        EndCode(0xC060, "request content error (bit values other than 0/1, or a bad value)"),
        EndCode(0xC061, "request data length does not match the number of points"),
        EndCode(0xC06F, "ASCII request received on a port set to binary, or the reverse", route=True),
        EndCode(0xC070, "the target station does not support extended device specification", route=True),
        EndCode(0xC200, "remote password: the port is locked (unlock it or remove the password)", route=True),
        EndCode(0xC201, "remote password: the port is locked (unlock it or remove the password)", route=True),
        EndCode(0xC202, "the request is not possible in the CPU's current state"),
        EndCode(0xC204, "remote password: the port is locked by another device", route=True),
    )
}


def describe(code: int) -> EndCode:
    """The table's entry for ``code``; an unknown code marks the address bad and says where to look."""
    return _TABLE.get(code) or EndCode(code, "(not in our table: look it up in the PLC's manual)")
