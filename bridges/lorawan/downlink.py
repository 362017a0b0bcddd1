"""Downlinks: a DCMD value as the network server's enqueue message (topic and JSON). Pure."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping

import orjson

from bridges.lorawan.codec import PayloadCodec
from model.bridges.lorawan import LorawanDevice, LorawanDownlink, LorawanServer
from uns.mqtt.types import Message
from uns.sparkplug import MetricValue

__all__ = ["DownlinkRefused", "downlink_message"]


class DownlinkRefused(ValueError):
    """A DCMD value that cannot become a downlink (not hex, refused by the codec); says why."""


def _payload(spec: LorawanDownlink, codec: PayloadCodec, value: MetricValue) -> tuple[bytes | None, object]:
    """(FRMPayload, None) or (None, object for the server's codec)."""
    if spec.encoding == "raw":
        try:
            return bytes.fromhex(str(value)), None
        except ValueError:
            raise DownlinkRefused(f"{value!r} is not hex bytes") from None
    obj: Mapping[str, object] = {spec.field or "": value}
    if spec.encoding == "server":
        return None, obj
    try:
        return codec.encode(spec.f_port, obj), None
    except ValueError as exc:
        raise DownlinkRefused(f"the codec refused {dict(obj)!r}: {exc}") from exc


def downlink_message(
    server: LorawanServer, device: LorawanDevice, spec: LorawanDownlink, codec: PayloadCodec, value: MetricValue
) -> Message:
    """The enqueue message for the network server: ChirpStack ``command/down``, The Things Stack ``down/push``.

    Raises:
        DownlinkRefused: the value cannot be encoded.
    """
    data, obj = _payload(spec, codec, value)
    if server.flavour == "chirpstack":
        dev_eui = device.dev_eui.lower()
        command: dict[str, object] = {
            "id": str(uuid.uuid4()), "devEui": dev_eui, "confirmed": spec.confirmed, "fPort": spec.f_port,
        }  # fmt: skip
        if data is not None:
            command["data"] = base64.b64encode(data).decode()
        else:
            command["object"] = obj
        topic = f"application/{server.application_id}/device/{dev_eui}/command/down"
        return Message(topic, orjson.dumps(command), qos=1)
    item: dict[str, object] = {"f_port": spec.f_port, "priority": "NORMAL", "confirmed": spec.confirmed}
    if data is not None:
        item["frm_payload"] = base64.b64encode(data).decode()
    else:
        item["decoded_payload"] = obj
    topic = f"v3/{server.application_id}/devices/{device.tts_id}/down/push"
    return Message(topic, orjson.dumps({"downlinks": [item]}), qos=1)
