"""ChirpStack v4 integration events built from its own schema (``chirpstack-api``), as its MQTT integration sends them.

ChirpStack serialises its ``integration`` messages with pbjson and ``emit_fields`` (api/rust/build.rs):
the protobuf JSON mapping (camelCase, bytes in base64, RFC 3339 timestamps, enums by name) with fields
at their default values written out. ``MessageToJson(..., always_print_fields_with_no_presence=True)``
is the same mapping in Python.
"""

from __future__ import annotations

import datetime
import uuid
from pathlib import Path

import orjson
from chirpstack_api import integration  # type: ignore[import-untyped]  # no py.typed (test-only)
from google.protobuf import json_format
from google.protobuf.message import Message as ProtoMessage

__all__ = ["APP", "FIXTURES", "ack", "chirpstack_json", "down_command", "join", "log", "status", "topic", "tts", "up"]

APP = "1c6e4ee1-9b8e-4f23-a7d2-0d8f1b4c5a11"
"""The ChirpStack application id (a UUID) the tests use."""
FIXTURES = Path(__file__).parent / "fixtures"


def chirpstack_json(message: ProtoMessage) -> bytes:
    """The JSON ChirpStack's MQTT integration publishes for ``message``."""
    return json_format.MessageToJson(message, always_print_fields_with_no_presence=True).encode()


def topic(dev_eui: str, event: str) -> str:
    """ChirpStack's default event topic."""
    return f"application/{APP}/device/{dev_eui.lower()}/event/{event}"


def _info(event: ProtoMessage, dev_eui: str, at: datetime.datetime | None) -> None:
    info = event.device_info  # type: ignore[attr-defined]
    info.tenant_id, info.tenant_name = "52f14cd4-c6f1-4fbd-8f87-4025e1d49242", "ChirpStack"
    info.application_id, info.application_name = APP, "environment"
    info.device_profile_id, info.device_profile_name = "c8bd8a4c-8f1f-4ad3-ad2e-7b1a4e3b2a10", "meter"
    info.device_name, info.dev_eui = f"dev-{dev_eui[-4:].lower()}", dev_eui.lower()
    event.time.FromDatetime(at or datetime.datetime.now(datetime.UTC))  # type: ignore[attr-defined]


def up(
    dev_eui: str,
    f_cnt: int,
    *,
    data: bytes = b"",
    obj: dict[str, object] | None = None,
    f_port: int = 1,
    rssi: tuple[int, ...] = (-57,),
    snr: tuple[float, ...] = (9.5,),
    dedup: str | None = None,
    at: datetime.datetime | None = None,
) -> bytes:
    """An ``UplinkEvent``; ``obj`` is the device profile codec's object (absent when no codec ran)."""
    event = integration.UplinkEvent(
        deduplication_id=dedup or str(uuid.uuid4()), dev_addr="01fa3b2c", adr=True, dr=5, f_cnt=f_cnt,
        f_port=f_port, confirmed=False, data=data,
    )  # fmt: skip
    _info(event, dev_eui, at)
    if obj is not None:
        event.object.update(obj)
    for index, (one_rssi, one_snr) in enumerate(zip(rssi, snr, strict=True)):
        rx = event.rx_info.add(gateway_id=f"0016c001f153a{index:03x}", uplink_id=1000 + index, rssi=one_rssi)
        rx.snr = one_snr
    event.tx_info.frequency = 868_100_000
    event.tx_info.modulation.lora.bandwidth, event.tx_info.modulation.lora.spreading_factor = 125_000, 7
    return chirpstack_json(event)


def status(dev_eui: str, *, battery: float | None, external: bool = False, margin: int = 7) -> bytes:
    """A ``StatusEvent`` (DevStatusAns); ``battery`` None = the device cannot measure it."""
    event = integration.StatusEvent(
        deduplication_id=str(uuid.uuid4()), margin=margin, external_power_source=external,
        battery_level_unavailable=battery is None, battery_level=battery or 0.0,
    )  # fmt: skip
    _info(event, dev_eui, None)
    return chirpstack_json(event)


def join(dev_eui: str) -> bytes:
    """A ``JoinEvent``."""
    event = integration.JoinEvent(deduplication_id=str(uuid.uuid4()), dev_addr="01fa3b2d")
    _info(event, dev_eui, None)
    return chirpstack_json(event)


def ack(dev_eui: str, *, acknowledged: bool) -> bytes:
    """An ``AckEvent`` of a confirmed downlink."""
    event = integration.AckEvent(
        deduplication_id=str(uuid.uuid4()), queue_item_id=str(uuid.uuid4()), acknowledged=acknowledged, f_cnt_down=4
    )
    _info(event, dev_eui, None)
    return chirpstack_json(event)


def log(dev_eui: str, *, code: int, description: str) -> bytes:
    """A ``LogEvent`` at level WARNING."""
    event = integration.LogEvent(level=integration.WARNING, code=code, description=description)
    _info(event, dev_eui, None)
    return chirpstack_json(event)


def down_command(payload: bytes) -> integration.DownlinkCommand:
    """A downlink command read back with ChirpStack's schema (refuses unknown fields)."""
    return json_format.Parse(payload, integration.DownlinkCommand())


def tts(name: str) -> bytes:
    """A stored The Things Stack example (fixtures/SOURCE.md), compacted."""
    return orjson.dumps(orjson.loads((FIXTURES / name).read_bytes()))
