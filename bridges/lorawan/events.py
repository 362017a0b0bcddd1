"""Network server events: a topic and its JSON read into one typed event, or refused naming topic and field.

Pure (no I/O, no clock). ChirpStack v4's MQTT integration with the JSON marshaler publishes
``application/<application id>/device/<devEui>/event/<up|join|status|ack|txack|log|...>``, the
protobuf messages of its ``integration`` package in the protobuf JSON mapping (camelCase names,
bytes in base64, timestamps in RFC 3339, enums by name, every field present). The Things Stack v3
publishes ``v3/<application id>@<tenant id>/devices/<device id>/<up|join|down/ack|...>`` with
snake_case names and empty fields left out. Both become the same ``Uplink``, ``Status``, ``Join``,
``DownlinkResult`` and ``LogLine``.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime
import re
from collections.abc import Mapping

import orjson

from uns.clock import nearest_epoch_ms

__all__ = [
    "DownlinkResult",
    "EventRefused",
    "Ignored",
    "Join",
    "LogLine",
    "NetworkEvent",
    "Status",
    "Uplink",
    "parse_chirpstack",
    "parse_tts",
]

_FRACTION = re.compile(r"(\.\d{6})\d+")


class EventRefused(ValueError):
    """An event that cannot be read: names the topic, the field (a JSON path) and why."""

    def __init__(self, topic: str, field: str, reason: str) -> None:
        self.topic = topic
        self.field = field
        self.reason = reason
        super().__init__(f"{topic}: {field}: {reason}")


@dataclasses.dataclass(frozen=True, slots=True)
class Uplink:
    """A data uplink."""

    device: str
    """The device's key: its DevEUI in upper case (ChirpStack) or its device id (The Things Stack)."""
    uplink_id: str | None
    """ChirpStack's deduplicationId, The Things Stack's ``as:up:`` correlation id: the same uplink delivered twice."""
    time_ms: int | None
    f_cnt: int
    f_port: int
    data: bytes
    decoded: Mapping[str, object] | None
    """The network server's decoded object; None when no decoder ran (then the connector's codec decodes data)."""
    rssi: int | None
    """The best RSSI of the gateways that heard it (dBm)."""
    snr: float | None
    """The best SNR (dB)."""
    gateways: int
    data_rate: int | None
    """ChirpStack's DR index, or The Things Stack's spreading factor (SF)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Status:
    """A device-status answer (ChirpStack's DevStatusAns: battery and link margin)."""

    device: str
    time_ms: int | None
    battery_percent: float | None
    """None when the device cannot measure it."""
    external_power: bool
    margin_db: int | None


@dataclasses.dataclass(frozen=True, slots=True)
class Join:
    """The device (re)joined: its frame counters start again from 0."""

    device: str
    time_ms: int | None


@dataclasses.dataclass(frozen=True, slots=True)
class DownlinkResult:
    """What became of a downlink: ``acked``, ``nacked`` (ChirpStack: not acknowledged), ``sent``, ``failed``."""

    device: str
    time_ms: int | None
    outcome: str
    detail: str


@dataclasses.dataclass(frozen=True, slots=True)
class LogLine:
    """A device log line of the network server (ChirpStack ``log``: codec errors, frame-counter resets, ...)."""

    device: str
    time_ms: int | None
    level: str
    code: str
    description: str


@dataclasses.dataclass(frozen=True, slots=True)
class Ignored:
    """An event of a kind the connector does not use (location, integration, ``down/queued``, ...)."""

    device: str
    kind: str


NetworkEvent = Uplink | Status | Join | DownlinkResult | LogLine | Ignored


class _Reader:
    """Typed access to one event's JSON that refuses with the topic and the field's path."""

    def __init__(self, topic: str, payload: bytes) -> None:
        self.topic = topic
        try:
            document = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise EventRefused(topic, "$", f"not JSON: {exc}") from None
        if not isinstance(document, dict):
            raise EventRefused(topic, "$", f"not a JSON object but {type(document).__name__}")
        self.root: dict[str, object] = document

    def refuse(self, field: str, reason: str) -> EventRefused:
        return EventRefused(self.topic, field, reason)

    def obj(self, obj: Mapping[str, object], path: str, *, required: bool = False) -> Mapping[str, object] | None:
        value = obj.get(path.rsplit(".", 1)[-1])
        if value is None:
            if required:
                raise self.refuse(path, "missing")
            return None
        if not isinstance(value, dict):
            raise self.refuse(path, f"{_short(value)} is not an object")
        return value

    def integer(self, obj: Mapping[str, object], path: str, *, default: int | None = None) -> int | None:
        value = obj.get(path.rsplit(".", 1)[-1])
        if value is None:
            return default
        if isinstance(value, str) and value.lstrip("-").isdigit():
            value = int(value)  # the JSON mapping writes 64-bit integers as text
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.refuse(path, f"{_short(value)} is not an integer")
        return value

    def number(self, obj: Mapping[str, object], path: str) -> float | None:
        value = obj.get(path.rsplit(".", 1)[-1])
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.refuse(path, f"{_short(value)} is not a number")
        return float(value)

    def text(self, obj: Mapping[str, object], path: str, *, default: str = "") -> str:
        value = obj.get(path.rsplit(".", 1)[-1])
        if value is None:
            return default
        if not isinstance(value, str):
            raise self.refuse(path, f"{_short(value)} is not text")
        return value

    def flag(self, obj: Mapping[str, object], path: str) -> bool:
        value = obj.get(path.rsplit(".", 1)[-1], False)
        if not isinstance(value, bool):
            raise self.refuse(path, f"{_short(value)} is not true or false")
        return value

    def base64(self, obj: Mapping[str, object], path: str) -> bytes:
        text = self.text(obj, path)
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise self.refuse(path, f"{_short(text)} is not base64") from None

    def time_ms(self, obj: Mapping[str, object], path: str) -> int | None:
        text = self.text(obj, path)
        if not text:
            return None
        try:
            moment = datetime.datetime.fromisoformat(_FRACTION.sub(r"\1", text.replace("Z", "+00:00")))
        except ValueError:
            raise self.refuse(path, f"{_short(text)} is not an RFC 3339 time") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=datetime.UTC)
        return nearest_epoch_ms(moment)

    def texts(self, obj: Mapping[str, object], path: str) -> list[str]:
        value = obj.get(path.rsplit(".", 1)[-1])
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self.refuse(path, f"{_short(value)} is not a list of text")
        return value

    def items(self, obj: Mapping[str, object], path: str) -> list[Mapping[str, object]]:
        value = obj.get(path.rsplit(".", 1)[-1])
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            raise self.refuse(path, f"{_short(value)} is not a list of objects")
        return value


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _best(reader: _Reader, receptions: list[Mapping[str, object]], path: str) -> tuple[int | None, float | None]:
    rssi: int | None = None
    snr: float | None = None
    for index, reception in enumerate(receptions):
        one = reader.integer(reception, f"{path}[{index}].rssi")
        quality = reader.number(reception, f"{path}[{index}].snr")
        if one is not None and (rssi is None or one > rssi):
            rssi = one
        if quality is not None and (snr is None or quality > snr):
            snr = quality
    return rssi, snr


# -- ChirpStack v4 -------------------------------------------------------------------------------


def parse_chirpstack(topic: str, payload: bytes) -> NetworkEvent:
    """A ChirpStack v4 integration event; raises ``EventRefused`` naming topic and field."""
    levels = topic.split("/")
    if len(levels) != 6 or levels[0] != "application" or levels[2] != "device" or levels[4] != "event":
        raise EventRefused(topic, "topic", "not application/<id>/device/<devEui>/event/<event>")
    device, kind = levels[3].upper(), levels[5]
    if kind not in ("up", "join", "status", "ack", "txack", "log"):
        return Ignored(device, kind)
    reader = _Reader(topic, payload)
    root = reader.root
    info = reader.obj(root, "$.deviceInfo", required=True) or {}
    dev_eui = reader.text(info, "$.deviceInfo.devEui").upper()
    if dev_eui != device:
        raise reader.refuse("$.deviceInfo.devEui", f"{dev_eui or 'empty'} is not the topic's {device}")
    time_ms = reader.time_ms(root, "$.time")
    if kind == "up":
        decoded = reader.obj(root, "$.object")
        receptions = reader.items(root, "$.rxInfo")
        rssi, snr = _best(reader, receptions, "$.rxInfo")
        return Uplink(
            device=device,
            uplink_id=reader.text(root, "$.deduplicationId") or None,
            time_ms=time_ms,
            f_cnt=reader.integer(root, "$.fCnt", default=0) or 0,
            f_port=reader.integer(root, "$.fPort", default=0) or 0,
            data=reader.base64(root, "$.data"),
            decoded=decoded,
            rssi=rssi,
            snr=snr,
            gateways=len(receptions),
            data_rate=reader.integer(root, "$.dr"),
        )
    if kind == "status":
        unavailable = reader.flag(root, "$.batteryLevelUnavailable")
        battery = reader.number(root, "$.batteryLevel")
        return Status(
            device=device,
            time_ms=time_ms,
            battery_percent=None if unavailable else battery,
            external_power=reader.flag(root, "$.externalPowerSource"),
            margin_db=reader.integer(root, "$.margin"),
        )
    if kind == "join":
        return Join(device, time_ms)
    if kind == "ack":
        acknowledged = reader.flag(root, "$.acknowledged")
        item = reader.text(root, "$.queueItemId")
        return DownlinkResult(device, time_ms, "acked" if acknowledged else "nacked", f"queue item {item}")
    if kind == "txack":
        return DownlinkResult(device, time_ms, "sent", f"queue item {reader.text(root, '$.queueItemId')}")
    return LogLine(
        device=device,
        time_ms=time_ms,
        level=reader.text(root, "$.level", default="INFO"),
        code=reader.text(root, "$.code", default="UNKNOWN"),
        description=reader.text(root, "$.description"),
    )


# -- The Things Stack v3 -------------------------------------------------------------------------

_TTS_KINDS = {
    "up": "up", "join": "join", "down/ack": "ack", "down/nack": "nack", "down/sent": "sent",
    "down/failed": "failed",
}  # fmt: skip


def parse_tts(topic: str, payload: bytes) -> NetworkEvent:
    """A The Things Stack v3 MQTT event; raises ``EventRefused`` naming topic and field."""
    levels = topic.split("/")
    if len(levels) < 5 or levels[0] != "v3" or levels[2] != "devices":
        raise EventRefused(topic, "topic", "not v3/<app>@<tenant>/devices/<device id>/<event>")
    device, kind = levels[3], _TTS_KINDS.get("/".join(levels[4:]))
    if kind is None:
        return Ignored(device, "/".join(levels[4:]))
    reader = _Reader(topic, payload)
    root = reader.root
    ids = reader.obj(root, "$.end_device_ids", required=True) or {}
    named = reader.text(ids, "$.end_device_ids.device_id")
    if named != device:
        raise reader.refuse("$.end_device_ids.device_id", f"{named or 'empty'} is not the topic's {device}")
    time_ms = reader.time_ms(root, "$.received_at")
    if kind == "up":
        up = reader.obj(root, "$.uplink_message", required=True) or {}
        receptions = reader.items(up, "$.uplink_message.rx_metadata")
        rssi, snr = _best(reader, receptions, "$.uplink_message.rx_metadata")
        settings = reader.obj(up, "$.uplink_message.settings") or {}
        rate = reader.obj(settings, "$.uplink_message.settings.data_rate") or {}
        lora = reader.obj(rate, "$.uplink_message.settings.data_rate.lora") or {}
        uplink_ids = [c for c in reader.texts(root, "$.correlation_ids") if c.startswith("as:up:")]
        return Uplink(
            device=device,
            uplink_id=uplink_ids[0] if uplink_ids else None,
            time_ms=time_ms,
            f_cnt=reader.integer(up, "$.uplink_message.f_cnt", default=0) or 0,  # 0 is left out
            f_port=reader.integer(up, "$.uplink_message.f_port", default=0) or 0,
            data=reader.base64(up, "$.uplink_message.frm_payload"),
            decoded=reader.obj(up, "$.uplink_message.decoded_payload"),
            rssi=rssi,
            snr=snr,
            gateways=len(receptions),
            data_rate=reader.integer(lora, "$.uplink_message.settings.data_rate.lora.spreading_factor"),
        )
    if kind == "join":
        return Join(device, time_ms)
    if kind == "failed":
        failed = reader.obj(root, "$.downlink_failed", required=True) or {}
        error = reader.obj(failed, "$.downlink_failed.error") or {}
        detail = reader.text(error, "$.downlink_failed.error.message_format") or reader.text(
            error, "$.downlink_failed.error.name"
        )
        return DownlinkResult(device, time_ms, "failed", detail)
    body = reader.obj(root, f"$.downlink_{kind}", required=True) or {}
    return DownlinkResult(
        device, time_ms, f"{kind}ed" if kind in ("ack", "nack") else kind, f"FPort {reader.integer(body, '$.f_port')}"
    )
