"""FINS end codes (main/sub response codes) and FINS/TCP header error codes, spelled out (Omron W342).

The two end-code bytes carry flags besides the code: bit 7 of the main code (MRES) says a relay
node on the route reported the error, bits 7 and 6 of the sub code (SRES) say the responding PLC
has a fatal or non-fatal CPU error. The flags are masked off before the code is looked up: a
``0x0040`` is a normal completion from a PLC with a non-fatal error, and its data is good.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType

__all__ = ["END_CODES", "TCP_ERRORS", "EndCode", "tcp_error_text"]

END_CODES: Mapping[int, str] = MappingProxyType(
    {
        0x0000: "normal completion",
        0x0001: "service canceled",
        0x0101: "local node not in network",
        0x0102: "token timeout",
        0x0103: "retries failed",
        0x0104: "too many send frames",
        0x0105: "node address range error",
        0x0106: "node address duplication",
        0x0201: "destination node not in network",
        0x0202: "unit missing",
        0x0203: "third node missing",
        0x0204: "destination node busy",
        0x0205: "response timeout",
        0x0301: "communications controller error",
        0x0302: "CPU unit error",
        0x0303: "controller error",
        0x0304: "unit number error",
        0x0401: "undefined command",
        0x0402: "not supported by model/version",
        0x0501: "destination address setting error",
        0x0502: "no routing tables",
        0x0503: "routing table error",
        0x0504: "too many relays",
        0x1001: "command too long",
        0x1002: "command too short",
        0x1003: "elements/data don't match",
        0x1004: "command format error",
        0x1005: "header error",
        0x1101: "area classification missing (no such area or EM bank)",
        0x1102: "access size error",
        0x1103: "address range error",
        0x1104: "address range exceeded",
        0x1106: "program missing",
        0x1109: "relational error",
        0x110A: "duplicate data access",
        0x110B: "response too long",
        0x110C: "parameter error",
        0x2002: "protected",
        0x2003: "table missing",
        0x2004: "data missing",
        0x2005: "program missing",
        0x2006: "file missing",
        0x2007: "data mismatch",
        0x2101: "read-only",
        0x2102: "protected (cannot write while data link or program protection is on)",
        0x2103: "cannot register",
        0x2105: "program missing",
        0x2106: "file missing",
        0x2107: "file name already exists",
        0x2108: "cannot change",
        0x2201: "not possible during execution",
        0x2202: "not possible while running",
        0x2203: "wrong PLC mode (in PROGRAM mode)",
        0x2204: "wrong PLC mode (in DEBUG mode)",
        0x2205: "wrong PLC mode (in MONITOR mode)",
        0x2206: "wrong PLC mode (in RUN mode)",
        0x2207: "specified node not polling node",
        0x2208: "step cannot be executed",
        0x2301: "file device missing",
        0x2302: "memory missing",
        0x2303: "clock missing",
        0x2401: "table missing",
        0x2502: "memory error",
        0x2503: "I/O setting error",
        0x2504: "too many I/O points",
        0x2505: "CPU bus error",
        0x2506: "I/O duplication",
        0x2507: "I/O bus error",
        0x2509: "SYSMAC BUS/2 error",
        0x250A: "CPU bus unit error",
        0x250D: "SYSMAC BUS number duplication",
        0x250F: "memory error",
        0x2510: "SYSMAC BUS terminator missing",
        0x2601: "no protection",
        0x2602: "incorrect password",
        0x2604: "protected",
        0x2605: "service already executing",
        0x2606: "service stopped",
        0x2607: "no execution right",
        0x2608: "settings not complete",
        0x2609: "necessary items not set",
        0x260A: "number already defined",
        0x260B: "error will not clear",
        0x3001: "no access right",
        0x4001: "service aborted",
    }
)
"""End code (flags masked) -> W342's name for it."""

_MAIN_CLASSES: Mapping[int, str] = MappingProxyType(
    {
        0x00: "normal completion",
        0x01: "local node error",
        0x02: "destination node error",
        0x03: "communications controller error",
        0x04: "not executable",
        0x05: "routing error",
        0x10: "command format error",
        0x11: "parameter error",
        0x20: "read not possible",
        0x21: "write not possible",
        0x22: "not executable in current mode",
        0x23: "no such device",
        0x24: "cannot start/stop",
        0x25: "unit error",
        0x26: "command error",
        0x30: "access right error",
        0x40: "abort",
    }
)

# the route to the PLC is wrong or broken: no request to it can succeed, whatever the address
_ROUTE_MAINS = frozenset({0x01, 0x02, 0x03, 0x05})

TCP_ERRORS: Mapping[int, str] = MappingProxyType(
    {
        0x01: "the header is not 'FINS'",
        0x02: "the data length is too long",
        0x03: "the command is not supported",
        0x20: "all connections are in use",
        0x21: "the specified node is already connected",
        0x22: "attempt to access a protected node from an unspecified IP address",
        0x23: "the client FINS node address is out of range",
        0x24: "the same FINS node address is being used by the client and the server",
        0x25: "all the node addresses available for allocation have been used",
    }
)
"""FINS/TCP header error codes (W342 "FINS/TCP Method")."""


def tcp_error_text(code: int) -> str:
    """``0x20 all connections are in use``: a FINS/TCP header error code, spelled out."""
    return f"FINS/TCP error 0x{code:02X} {TCP_ERRORS.get(code, 'unknown error code')}"


@dataclasses.dataclass(frozen=True, slots=True)
class EndCode:
    """The end code of one FINS response, split into its code and its flags."""

    main: int
    """MRES without the relay-error bit."""
    sub: int
    """SRES without the CPU error bits."""
    relay_error: bool = False
    """A relay node on the route (not the PLC) reported the error."""
    fatal_cpu_error: bool = False
    """The responding PLC has a fatal CPU error (it stopped): the command may still have completed."""
    non_fatal_cpu_error: bool = False
    """The responding PLC has a non-fatal CPU error (e.g. battery): the command completed normally."""

    @classmethod
    def from_bytes(cls, mres: int, sres: int) -> EndCode:
        """Split the two end-code bytes of a response."""
        return cls(
            main=mres & 0x7F,
            sub=sres & 0x3F,
            relay_error=bool(mres & 0x80),
            fatal_cpu_error=bool(sres & 0x80),
            non_fatal_cpu_error=bool(sres & 0x40),
        )

    @property
    def code(self) -> int:
        """The end code with its flags masked off, e.g. ``0x1103``."""
        return self.main << 8 | self.sub

    @property
    def ok(self) -> bool:
        """Normal completion (whatever the CPU error flags say: the data is there)."""
        return self.code == 0

    @property
    def route(self) -> bool:
        """The network, node or unit addressed is wrong or missing, rather than one address of the PLC."""
        return self.main in _ROUTE_MAINS

    def __str__(self) -> str:
        name = END_CODES.get(self.code) or f"unknown ({_MAIN_CLASSES.get(self.main, 'unknown class')})"
        flags = [
            flag
            for flag, on in (
                ("network relay error", self.relay_error),
                ("PLC fatal error", self.fatal_cpu_error),
                ("PLC non-fatal error", self.non_fatal_cpu_error),
            )
            if on
        ]
        return f"end code 0x{self.code:04X} {name}" + (f" ({', '.join(flags)})" if flags else "")
