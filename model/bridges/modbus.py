"""Config of the Modbus bridge: devices (TCP or RTU), register maps, poll groups."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from model.bridges.common import BridgeBase, sparkplug_id

__all__ = [
    "ModbusBridgeConfig",
    "ModbusDevice",
    "ModbusRegister",
    "RegisterType",
    "SerialConfig",
    "Table",
    "WordOrder",
]

RegisterType = Literal[
    "bool", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64", "string"
]  # fmt: skip
WordOrder = Literal["ABCD", "CDAB", "BADC", "DCBA"]
"""Byte order of multi-register values: ABCD big-endian; CDAB word-swapped; BADC byte-swapped; DCBA little-endian."""
Table = Literal["coil", "discrete", "input", "holding"]

_REGISTERS_OF = {"bool": 1, "int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "float32": 2, "int64": 4,
                 "uint64": 4, "float64": 4}  # fmt: skip


class ModbusRegister(BaseModel):
    """One tag: where it lives, how to decode it, and how it appears as a Sparkplug metric."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="Sparkplug metric name ('/' makes levels).")
    table: Table = Field(description="coil, discrete (input), input (register) or holding (register).")
    address: int = Field(ge=0, le=65535, description="Zero-based address in its table.")
    type: RegisterType = Field(default="uint16", description="How the register(s) decode; coils/discretes: bool.")
    length: int | None = Field(default=None, ge=1, le=125, description="Registers of a string (2 chars each).")
    order: WordOrder | None = Field(default=None, description="Byte/word order; null = the device's.")
    scale: float = Field(default=1.0, description="value = raw * scale + offset (numeric types).")
    offset: float = Field(default=0.0, description="Added after scaling.")
    unit: str | None = Field(default=None, description="Engineering unit.")
    poll: str = Field(default="default", description="Poll group name (the device's poll_groups).")
    writable: bool = Field(default=False, description="DCMD may write it (holding registers and coils only).")
    deadband: float = Field(default=0.0, ge=0, description="Report by exception: absolute change to report.")
    decimals: int | None = Field(
        default=None,
        ge=0,
        le=15,
        description=(
            "Round the published value to this many decimals. Null: a scaled integer register is rounded to "
            "the decimals its scale and offset imply (scale 0.1 -> 1, 0.01 -> 2, 0.5 -> 1, 0.001 -> 3), so "
            "71 x 0.1 reads 7.1, not 7.1000000000000005; a float register is not rounded."
        ),
    )

    @property
    def size(self) -> int:
        """Registers (or bits) it occupies."""
        if self.type == "string":
            return self.length or 1
        return _REGISTERS_OF[self.type]

    @property
    def scaled(self) -> bool:
        """Whether scale/offset turn it into a float."""
        return self.scale != 1.0 or self.offset != 0.0

    @model_validator(mode="after")
    def _check(self) -> Self:
        bit_table = self.table in ("coil", "discrete")
        if bit_table != (self.type == "bool"):
            raise ValueError(f"{self.name}: {self.table} must be type bool" if bit_table else
                             f"{self.name}: type bool needs table coil or discrete")  # fmt: skip
        if self.type == "string" and self.length is None:
            raise ValueError(f"{self.name}: a string needs length (registers)")
        if self.decimals is not None and self.type in ("bool", "string"):
            raise ValueError(f"{self.name}: decimals applies to numbers, not type {self.type}")
        if self.writable and self.table not in ("coil", "holding"):
            raise ValueError(f"{self.name}: only coils and holding registers are writable")
        if self.address + self.size > 65536:
            raise ValueError(f"{self.name}: address {self.address} + {self.size} registers is past 65535")
        return self


class SerialConfig(BaseModel):
    """An RTU serial line."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    port: str = Field(description="Serial device, e.g. /dev/ttyUSB0.")
    baudrate: int = Field(default=19200, gt=0, description="Bits per second.")
    parity: Literal["N", "E", "O"] = Field(default="N", description="None, even or odd.")
    stopbits: Literal[1, 2] = Field(default=1, description="Stop bits.")
    bytesize: Literal[7, 8] = Field(default=8, description="Data bits.")


class ModbusDevice(BaseModel):
    """One PLC (one unit id on one connection) = one Sparkplug device."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: sparkplug_id = Field(description="Sparkplug device id.")
    transport: Literal["tcp", "rtu"] = Field(default="tcp", description="Modbus TCP, or RTU over a serial line.")
    host: str = Field(default="127.0.0.1", description="TCP host.")
    port: int = Field(default=502, ge=0, le=65535, description="TCP port.")
    serial: SerialConfig | None = Field(default=None, description="RTU line (transport rtu).")
    unit_id: int = Field(default=1, ge=0, le=255, description="Modbus unit (slave) id.")
    timeout_s: float = Field(default=1.0, gt=0, description="Per-request timeout.")
    retries: int = Field(default=2, ge=0, le=10, description="Retries of a failed request before the device is down.")
    backoff_min_s: float = Field(
        default=0.5, gt=0, description="First reconnect delay after the device went down; doubles on each failure."
    )
    backoff_max_s: float = Field(default=30.0, gt=0, description="Cap of the reconnect delay (jitter lowers it).")
    order: WordOrder = Field(default="ABCD", description="Default byte/word order of multi-register values.")
    max_gap: int = Field(default=8, ge=0, le=125, description="Coalesce reads across gaps up to this many registers.")
    max_read: int = Field(default=120, ge=1, le=125, description="Registers per read request (bits: x16).")
    poll_groups: dict[str, float] = Field(
        default_factory=lambda: {"default": 1.0}, description="Poll group name -> interval in seconds."
    )
    registers: list[ModbusRegister] = Field(description="The register map.")

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.backoff_min_s > self.backoff_max_s:
            raise ValueError(f"device {self.id}: backoff_min_s exceeds backoff_max_s")
        if self.transport == "rtu" and self.serial is None:
            raise ValueError(f"device {self.id}: transport rtu needs serial")
        for interval in self.poll_groups.values():
            if interval <= 0:
                raise ValueError(f"device {self.id}: poll intervals must be > 0")
        names: set[str] = set()
        taken: dict[tuple[str, int], str] = {}
        for register in self.registers:
            if register.poll not in self.poll_groups:
                raise ValueError(f"register {register.name}: poll group {register.poll!r} not in poll_groups")
            if register.name in names:
                raise ValueError(f"register {register.name}: name used twice")
            names.add(register.name)
            if register.table in ("input", "holding") and register.size > self.max_read:
                raise ValueError(
                    f"register {register.name}: {register.size} registers exceed max_read {self.max_read} "
                    f"of device {self.id}"
                )
            for address in range(register.address, register.address + register.size):
                other = taken.setdefault((register.table, address), register.name)
                if other != register.name:
                    raise ValueError(f"register {register.name} overlaps {other} at {register.table} address {address}")
        return self


class ModbusBridgeConfig(BridgeBase):
    """A Modbus bridge: one edge node for several devices."""

    kind: Literal["modbus"] = Field(default="modbus", description="Bridge kind.")
    devices: list[ModbusDevice] = Field(min_length=1, description="The PLCs.")
