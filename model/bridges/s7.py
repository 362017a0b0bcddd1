"""Config of the Siemens S7 bridge: S7-300/400/1200/1500 and LOGO! over PUT/GET, S7CommPlus (experimental)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from model.bridges.common import BridgeBase
from model.bridges.plc import PlcDeviceBase, PlcTagBase
from model.bridges.s7_address import S7Address, S7AddressError, S7TypeName, parse_address

__all__ = ["CpuModel", "S7BridgeConfig", "S7DbSource", "S7Device", "S7Tag"]

CpuModel = Literal["S7-300", "S7-400", "S7-1200", "S7-1500", "LOGO"]
_DEFAULT_SLOT = {"S7-300": 2, "S7-400": 3, "S7-1200": 1, "S7-1500": 1, "LOGO": 0}
_LOGO_TSAPS = (0x0100, 0x0200)  # LOGO! 0BA7/0BA8 and later: the server connection's TSAPs as set in LOGO!Soft


class S7Tag(PlcTagBase):
    """One tag: its address in the PLC and the metric it becomes."""

    address: str = Field(
        default="",
        description="S7 address: DB1.DBX0.3, DB1.DBB0, DB1.DBW2, DB1.DBD4, M10.1, MW20, I0.0, QB1, V10.3 (LOGO!), "
        "T5, C3; a ':TYPE' suffix may give the type (DB1.DBD4:REAL). protocol s7commplus: leave empty and set symbol.",
    )
    type: S7TypeName | None = Field(
        default=None,
        description="S7 type; null = from the address suffix or width (X BOOL, B BYTE, W WORD, D DWORD, T S5TIME, "
        "C COUNTER). Published as: BOOL Boolean, BYTE/USINT UInt8, SINT Int8, WORD/UINT UInt16, INT Int16, "
        "DWORD/UDINT UInt32, DINT/TIME Int32, LINT Int64, LWORD/ULINT UInt64, REAL Float, LREAL Double, "
        "STRING/WSTRING/CHAR String, DATE_AND_TIME/DTL DateTime (read as UTC), S5TIME UInt32 ms, COUNTER UInt16.",
    )
    length: int | None = Field(
        default=None, ge=1, le=16382, description="STRING/WSTRING: declared maximum characters (default 254)."
    )
    symbol: str | None = Field(
        default=None,
        description='protocol s7commplus (experimental): the PLC symbol to read, e.g. "Motor".Speed '
        "(a DB member as TIA Portal names it); type is then required. python -m bridges.s7.plus HOST lists them.",
    )

    def parsed(self) -> S7Address:
        """The parsed address (protocol s7)."""
        return parse_address(self.address, self.type, self.length)


class S7DbSource(BaseModel):
    """Tags imported from a TIA Portal / STEP 7 data block source (a ``.db`` file: DATA_BLOCK ... STRUCT ...)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Path = Field(
        description="The DB source as TIA Portal writes it (right-click the DB > 'Generate source from blocks'). "
        "The DB must have 'Optimized block access' off: offsets are computed by the S7 rules for standard DBs."
    )
    db: int = Field(ge=1, le=65535, description="The DB's number in the PLC.")
    prefix: str = Field(default="", description="Prefix of the metric names (then the member path with '/').")
    poll: str = Field(default="default", description="Poll group of the imported tags.")
    writable: bool = Field(default=False, description="Whether DCMD may write the imported tags.")


class S7Device(PlcDeviceBase):
    """One S7 CPU (or LOGO!) = one Sparkplug device."""

    host: str = Field(default="127.0.0.1", description="PLC (or CP) IPv4 address or host name.")
    port: int = Field(default=102, ge=1, le=65535, description="ISO-on-TCP port (102 on every Siemens PLC).")
    cpu: CpuModel = Field(default="S7-1500", description="CPU family: sets the default slot or LOGO!'s TSAPs.")
    protocol: Literal["s7", "s7commplus"] = Field(
        default="s7",
        description="s7: classic S7 (PUT/GET) with absolute addresses; S7-1200/1500 need 'Permit access with "
        "PUT/GET' and DBs without 'Optimized block access'. s7commplus: EXPERIMENTAL symbolic reads of optimized "
        "DBs on S7-1200/1500 (python s7commplus 0.3, no TLS, no password; see docs/bridges.md for what it lacks).",
    )
    rack: int = Field(default=0, ge=0, le=7, description="Rack of the CPU.")
    slot: int | None = Field(
        default=None, ge=0, le=31, description="Slot of the CPU; null = by cpu (S7-300 2, S7-400 3, S7-1200/1500 1)."
    )
    connection_type: Literal["PG", "OP", "S7_basic"] = Field(
        default="PG", description="Connection resource to use: PG (programming device), OP (HMI) or S7 basic."
    )
    local_tsap: int | None = Field(
        default=None,
        ge=0,
        le=0xFFFF,
        description="Local TSAP (e.g. 0x0100); set with remote_tsap instead of rack/slot.",
    )
    remote_tsap: int | None = Field(
        default=None, ge=0, le=0xFFFF, description="Remote TSAP (e.g. 0x0200 on a LOGO!); overrides rack/slot."
    )
    pdu_size: Literal[240, 480, 960] = Field(
        default=960, description="PDU size to ask for; the PLC answers with what it supports (S7-300: 240)."
    )
    max_items: int = Field(
        default=20, ge=1, le=100, description="Items per multi-variable read (the CPU's limit: 20 on S7-300..1500)."
    )
    max_gap: int = Field(default=16, ge=0, le=256, description="Read across gaps up to this many unused bytes.")
    require_run: bool = Field(
        default=False,
        description="Refuse to read a CPU in STOP (its process image and timers are frozen): the device stays "
        "down with an error until it runs. false = read it anyway.",
    )
    tags: list[S7Tag] = Field(default_factory=list, description="The tags.")
    db_sources: list[S7DbSource] = Field(default_factory=list, description="Tags imported from DB source files.")

    @property
    def tsaps(self) -> tuple[int, int]:
        """Local and remote TSAP: as configured, LOGO!'s, or from connection type, rack and slot."""
        if self.local_tsap is not None and self.remote_tsap is not None:
            return self.local_tsap, self.remote_tsap
        if self.cpu == "LOGO":
            return _LOGO_TSAPS
        kind = {"PG": 1, "OP": 2, "S7_basic": 3}[self.connection_type]
        return 0x0100, kind << 8 | self.rack << 5 | self.effective_slot

    @property
    def effective_slot(self) -> int:
        """The slot: configured, or the CPU family's usual one."""
        return _DEFAULT_SLOT[self.cpu] if self.slot is None else self.slot

    @property
    def endpoint(self) -> str:
        """``s7 10.0.0.5:102 rack 0 slot 1`` (or ``tsap 0100/0200``), for every log line and error."""
        where = f"{self.host}:{self.port}"
        if self.protocol == "s7commplus":
            return f"s7commplus {where}"
        if (self.local_tsap is not None and self.remote_tsap is not None) or self.cpu == "LOGO":
            local, remote = self.tsaps
            return f"s7 {where} tsap {local:04X}/{remote:04X}"
        return f"s7 {where} rack {self.rack} slot {self.effective_slot}"

    @model_validator(mode="after")
    def _check(self) -> Self:
        if (self.local_tsap is None) != (self.remote_tsap is None):
            raise ValueError(f"device {self.id}: set local_tsap and remote_tsap together")
        if not self.tags and not self.db_sources:
            raise ValueError(f"device {self.id}: no tags or db_sources")
        names: set[str] = set()
        for index, tag in enumerate(self.tags):
            where = f"tags[{index}] ({tag.name})"
            if tag.poll not in self.poll_groups:
                raise ValueError(f"{where}: poll group {tag.poll!r} is not in poll_groups")
            if tag.name in names:
                raise ValueError(f"{where}: name used twice")
            names.add(tag.name)
            if self.protocol == "s7commplus":
                if not tag.symbol or tag.type is None:
                    raise ValueError(f"{where}: protocol s7commplus reads by symbol: set symbol and type")
                continue
            if tag.symbol:
                raise ValueError(f"{where}: symbol needs protocol s7commplus (use address with protocol s7)")
            try:
                address = tag.parsed()
            except S7AddressError as exc:
                raise ValueError(f"{where}.address: {exc}") from None
            if self.cpu == "LOGO" and address.area == address.area.DB and address.db != 1:
                raise ValueError(f"{where}.address: a LOGO! has only V memory (DB1), not DB{address.db}")
        for source in self.db_sources:
            if source.poll not in self.poll_groups:
                raise ValueError(f"db_sources {source.path}: poll group {source.poll!r} is not in poll_groups")
        if self.db_sources and self.protocol == "s7commplus":
            raise ValueError(f"device {self.id}: db_sources give absolute addresses: they need protocol s7")
        return self


class S7BridgeConfig(BridgeBase):
    """A Siemens S7 bridge: one edge node for several PLCs."""

    kind: Literal["s7"] = Field(default="s7", description="Bridge kind.")
    devices: list[S7Device] = Field(min_length=1, description="The PLCs.")
