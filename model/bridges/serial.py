"""Config of the serial source (``kind: serial``): scales, scanners and other RS-232/485 instruments.

Each device is one port: its line settings, how bytes are cut into frames (a terminator, a fixed
length, or STX/ETX), how a frame is read (MT-SICS, Sartorius SBI, a scanner's code, or a regular
expression with named groups), an optional poll (a command and a timeout), and MES events made from
frames (a scanned lot consumed, a weighed pallet produced).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from model.bridges.common import BridgeBase, DatatypeName, check_unique, sparkplug_id

__all__ = [
    "MASS_UNITS",
    "FixedFraming",
    "Framing",
    "InstrumentProtocol",
    "MtSicsProtocol",
    "RegexMetric",
    "RegexProtocol",
    "SartoriusProtocol",
    "ScannerProtocol",
    "SerialBridgeConfig",
    "SerialDevice",
    "SerialEvent",
    "SerialPoll",
    "StxEtxFraming",
    "TerminatorFraming",
]

MASS_UNITS: dict[str, float] = {"mg": 1e-6, "g": 1e-3, "kg": 1.0, "t": 1e3, "lb": 0.45359237, "oz": 0.028349523125}
"""Mass units a scale may answer in, as kilograms: a reading in another of them is converted to the device's unit."""

_TEMPLATE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _latin1(value: str, what: str) -> str:
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError(f"{what} must be single bytes (latin-1), e.g. \\r\\n or \\x02") from None
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TerminatorFraming(_Model):
    """Frames end with a terminator (a line): most scales, scanners and text instruments."""

    kind: Literal["terminator"] = Field(description="Framing kind.")
    terminator: str = Field(default="\r\n", min_length=1, description='The bytes ending a frame (YAML "\\r\\n").')
    max_length: int = Field(
        default=256, ge=1, le=65536, description="A frame longer than this is refused and skipped to its terminator."
    )
    strip: str = Field(default="\r\n", description="Bytes trimmed from both ends of a frame (e.g. a stray CR).")

    @field_validator("terminator", "strip")
    @classmethod
    def _bytes(cls, value: str) -> str:
        return _latin1(value, "terminator")


class FixedFraming(_Model):
    """Frames of a fixed number of bytes; a pause longer than ``gap_s`` starts a new frame (resynchronises)."""

    kind: Literal["fixed"] = Field(description="Framing kind.")
    length: int = Field(ge=1, le=65536, description="Bytes per frame.")
    gap_s: float = Field(
        default=0.05, gt=0, description="Bytes after a silence this long begin a new frame; a partial one is refused."
    )


class StxEtxFraming(_Model):
    """Frames between STX and ETX bytes, optionally followed by a block check character."""

    kind: Literal["stx_etx"] = Field(description="Framing kind.")
    stx: int = Field(default=0x02, ge=0, le=255, description="Start byte.")
    etx: int = Field(default=0x03, ge=0, le=255, description="End byte.")
    bcc: bool = Field(
        default=False, description="A block check byte follows ETX: the XOR of every byte after STX up to ETX included."
    )
    max_length: int = Field(default=256, ge=1, le=65536, description="A longer frame is refused.")


Framing = Annotated[TerminatorFraming | FixedFraming | StxEtxFraming, Field(discriminator="kind")]


class MtSicsProtocol(_Model):
    """A Mettler Toledo scale speaking MT-SICS: ``S S     12.345 kg`` (stable), ``S D`` (dynamic), ``S I/+/-``."""

    kind: Literal["mt_sics"] = Field(description="Protocol kind.")
    unit: str = Field(default="kg", description="Unit of the Weight metric; other mass units are converted to it.")


class SartoriusProtocol(_Model):
    """A Sartorius scale in SBI mode: 16-byte lines ``+    12.345 kg`` (22 with a 6-byte ID first).

    A reading without a unit is not stable (SBI prints the unit only once the scale has settled).
    """

    kind: Literal["sartorius"] = Field(description="Protocol kind.")
    unit: str = Field(default="kg", description="Unit of the Weight metric; other mass units are converted to it.")


class ScannerProtocol(_Model):
    """A barcode or RFID scanner: each frame is one code, between an optional prefix and suffix."""

    kind: Literal["scanner"] = Field(description="Protocol kind.")
    prefix: str = Field(default="", description="Text every code starts with (removed); a frame without it is refused.")
    suffix: str = Field(default="", description="Text every code ends with (removed); a frame without it is refused.")
    pattern: str | None = Field(
        default=None,
        description="A regular expression the whole code must match; its named groups (e.g. (?P<lot>...)) are "
        "available to events as ${name}.",
    )

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from None
        return value


class RegexMetric(_Model):
    """A named group of a regex device, as a metric."""

    group: str = Field(description="The named group (?P<group>...) holding the value.")
    name: str = Field(min_length=1, description="Sparkplug metric name ('/' makes levels).")
    type: DatatypeName = Field(default="Double", description="Sparkplug datatype of the metric.")
    unit: str | None = Field(default=None, description="Engineering unit.")
    deadband: float = Field(default=0.0, ge=0, description="Report by exception: absolute change to report.")


class RegexProtocol(_Model):
    """Any text instrument: a regular expression with named groups; each configured group is a metric."""

    kind: Literal["regex"] = Field(description="Protocol kind.")
    pattern: str = Field(description="Regular expression the whole frame must match, with named groups.")
    metrics: list[RegexMetric] = Field(min_length=1, description="The groups published as metrics.")

    @model_validator(mode="after")
    def _groups(self) -> Self:
        try:
            groups = set(re.compile(self.pattern).groupindex)
        except re.error as exc:
            raise ValueError(f"pattern: not a regular expression: {exc}") from None
        missing = [m.group for m in self.metrics if m.group not in groups]
        if missing:
            raise ValueError(f"metrics name groups the pattern lacks: {', '.join(missing)}")
        return self


InstrumentProtocol = Annotated[
    MtSicsProtocol | SartoriusProtocol | ScannerProtocol | RegexProtocol, Field(discriminator="kind")
]


class SerialPoll(_Model):
    """Request/response: a command written every ``interval_s``; the answer must come within ``timeout_s``."""

    command: str | None = Field(
        default=None,
        description='Bytes sent (YAML escapes: "SI\\r\\n", "\\x1bP"); null = the protocol\'s own: MT-SICS SI, '
        "Sartorius ESC P.",
    )
    interval_s: float = Field(default=1.0, gt=0, description="Time from one command to the next.")
    timeout_s: float = Field(default=1.0, gt=0, description="No frame within this after a command is a missed poll.")
    missed_down: int = Field(
        default=2, ge=1, description="This many missed polls in a row report the device down (DDEATH)."
    )

    @field_validator("command")
    @classmethod
    def _bytes(cls, value: str | None) -> str | None:
        return None if value is None else _latin1(value, "command")


class SerialEvent(_Model):
    """Frames as an MES event, published at QoS 1 on ``<equipment_path>/mes/<event>``.

    Templates name values of the frame: ``${code}`` (scanner), a regex or scanner pattern's named groups,
    ``${weight}`` and ``${unit}`` (scales), ``${device}``, ``${time}`` (UTC yyyymmddHHMMSS of the frame).
    A field that is one template alone keeps the value's type (a weight stays a number).
    """

    event: Literal["material_consumption", "lot_production"] = Field(description="MES event name (docs/mes.md).")
    equipment_path: str = Field(
        pattern=r"^[a-z0-9][a-z0-9_-]*(/[a-z0-9][a-z0-9_-]*)*$", description="Equipment path the event is at."
    )
    trigger: Literal["frame", "stable_load"] = Field(
        default="frame",
        description="frame: every frame read; stable_load (scales): the first stable weight of at least min_load "
        "after the scale was below it (one event per load placed).",
    )
    min_load: float = Field(default=0.0, ge=0, description="stable_load: the weight (device unit) that is a load.")
    fields: dict[str, str] = Field(description="Event field -> template, e.g. lot_id: 'PAL-${time}'.")
    constants: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="Event fields with a fixed value (e.g. material_id)."
    )


class SerialDevice(_Model):
    """One instrument on one serial port (a Sparkplug device)."""

    id: sparkplug_id = Field(description="Sparkplug device id.")
    port: str = Field(
        min_length=1,
        description="The port: a path (/dev/ttyUSB0, a udev /dev/serial/by-id/ link) or a pyserial URL "
        "(rfc2217://host:port, socket://host:port for a serial server).",
    )
    baudrate: int = Field(default=9600, gt=0, description="Bits per second.")
    bytesize: Literal[5, 6, 7, 8] = Field(default=8, description="Data bits.")
    parity: Literal["none", "even", "odd", "mark", "space"] = Field(default="none", description="Parity.")
    stopbits: float = Field(default=1, description="Stop bits: 1, 1.5 or 2.")
    xonxoff: bool = Field(default=False, description="Software flow control.")
    rtscts: bool = Field(default=False, description="Hardware flow control (RTS/CTS).")
    framing: Framing = Field(
        default_factory=lambda: TerminatorFraming(kind="terminator"),
        description="terminator (default CR LF), fixed or stx_etx.",
    )
    protocol: InstrumentProtocol = Field(description="mt_sics, sartorius, scanner or regex.")
    poll: SerialPoll | None = Field(default=None, description="Request/response polling; null = the device sends.")
    events: list[SerialEvent] = Field(default_factory=list, description="Frames as MES events.")
    backoff_min_s: float = Field(default=0.5, gt=0, description="First reconnect delay after the port is lost.")
    backoff_max_s: float = Field(default=30.0, gt=0, description="Reconnect delay cap.")

    @field_validator("stopbits")
    @classmethod
    def _stopbits(cls, value: float) -> float:
        if value not in (1, 1.5, 2):
            raise ValueError(f"stop bits are 1, 1.5 or 2 (got {value:g})")
        return value

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.backoff_max_s < self.backoff_min_s:
            raise ValueError("backoff_max_s must be >= backoff_min_s")
        scale = self.protocol.kind in ("mt_sics", "sartorius")
        for index, event in enumerate(self.events):
            if event.trigger == "stable_load" and not scale:
                raise ValueError(f"events[{index}].trigger: stable_load needs a scale (mt_sics or sartorius)")
            for field, template in event.fields.items():
                names = _TEMPLATE.findall(template)
                if not names and "$" in template:
                    raise ValueError(f"events[{index}].fields.{field}: a template is written ${{name}}")
        return self


class SerialBridgeConfig(BridgeBase):
    """A serial source: instruments on serial ports, each a Sparkplug device."""

    kind: Literal["serial"] = Field(default="serial", description="Bridge kind.")
    devices: list[SerialDevice] = Field(min_length=1, description="The instruments.")

    @model_validator(mode="after")
    def _unique(self) -> Self:
        check_unique("device id", [device.id for device in self.devices])
        return self
