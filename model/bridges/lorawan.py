"""Config of the LoRaWAN connector (``kind: lorawan``): a network server's MQTT integration, devices mapped.

The connector subscribes to the events a LoRaWAN network server publishes on its own MQTT broker
(ChirpStack v4, The Things Stack v3), maps each configured device's decoded object (the server's
decoder, else the connector's payload codec) to Sparkplug metrics, and sends downlinks from DCMD.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from model.bridges.common import BridgeBase, DatatypeName, repeated, sparkplug_id

__all__ = [
    "RESERVED_PREFIXES",
    "STATUS_DEVICE",
    "LorawanBridgeConfig",
    "LorawanDevice",
    "LorawanDownlink",
    "LorawanMetric",
    "LorawanServer",
]

STATUS_DEVICE = "network-server"
"""The device every LoRaWAN connector has: its counters (events, refusals, duplicates, unknown devices)."""

RESERVED_PREFIXES = ("Radio/", "Battery/", "LoRaWAN/")
"""Metric name prefixes of what the connector reports itself per device (RSSI, SNR, battery, counters)."""

_CODEC = re.compile(r"^(cayenne_lpp|none|[A-Za-z_][\w.]*:[A-Za-z_]\w*)$")

JsonPathText = Annotated[
    str,
    Field(pattern=r"^\$(\.[^.\[\]]+|\[\d+\])*$", description="Dotted JSON path into the decoded object: $.a.b[0].c."),
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LorawanServer(_Model):
    """The network server's MQTT integration: the broker it publishes to and which events are ours."""

    flavour: Literal["chirpstack", "tts"] = Field(
        description="chirpstack: ChirpStack v4 (application/<id>/device/<devEui>/event/<event>, JSON marshaler); "
        "tts: The Things Stack v3 (v3/<app>@<tenant>/devices/<device>/<event>)."
    )
    application_id: str = Field(
        min_length=1,
        pattern=r"^[^/+#]+$",
        description="ChirpStack: the application's id (a UUID); The Things Stack: '<application id>@<tenant id>' "
        "(the MQTT user name it gives, e.g. 'plant-sensors@ttn').",
    )
    host: str | None = Field(
        default=None, description="The integration's broker; null = the hub's own broker (the network server "
        "publishes there)."
    )  # fmt: skip
    port: int = Field(default=1883, ge=1, le=65535, description="Its port (8883 is usual with TLS).")
    tls: bool = Field(default=False, description="Connect with TLS (verified against the system CAs or ca_file).")
    ca_file: Path | None = Field(default=None, description="PEM CA certificates that sign the broker's certificate.")
    username: str | None = Field(default=None, description="MQTT user name (The Things Stack: <app>@<tenant>).")
    password: SecretStr | None = Field(default=None, description="MQTT password (The Things Stack: an API key).")
    client_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=65535,
        description="Client id of the connector's persistent session at that broker (it queues events while the "
        "connector is away); keep it stable and unique. Null = uns-lorawan-<group>-<edge node id>.",
    )

    @model_validator(mode="after")
    def _credentials_need_a_broker(self) -> LorawanServer:
        if self.host is None and (self.tls or self.username or self.password or self.ca_file):
            raise ValueError("tls, ca_file, username and password need host (the hub's broker is reached as the hub)")
        return self


class LorawanMetric(_Model):
    """One metric from a device's decoded object."""

    path: JsonPathText
    name: str = Field(min_length=1, description="Sparkplug metric name ('/' makes levels).")
    type: DatatypeName = Field(default="Double", description="Sparkplug datatype of the metric.")
    unit: str | None = Field(default=None, description="Engineering unit.")
    deadband: float = Field(default=0.0, ge=0, description="Report by exception: absolute change to report.")


class LorawanDownlink(_Model):
    """A writable metric: a DCMD of it becomes a downlink to the device."""

    name: str = Field(min_length=1, description="Sparkplug metric name of the command (e.g. Command/Relay).")
    type: DatatypeName = Field(default="Boolean", description="Sparkplug datatype the DCMD value must fit.")
    f_port: int = Field(ge=1, le=223, description="LoRaWAN FPort of the downlink (1..223).")
    confirmed: bool = Field(default=False, description="Ask the device to acknowledge it (an ack event follows).")
    encoding: Literal["codec", "server", "raw"] = Field(
        default="codec",
        description="codec: {field: value} encoded by the device's codec; server: {field: value} sent as an object "
        "for the network server's codec (ChirpStack 'object', The Things Stack 'decoded_payload'); raw: the value is "
        "the payload itself, as hex text (type String).",
    )
    field: str | None = Field(
        default=None,
        min_length=1,
        description="The key of the value in the object (codec, server); Cayenne LPP: <type>_<channel>, e.g. "
        "digital_out_3.",
    )

    @model_validator(mode="after")
    def _field_when_encoded(self) -> LorawanDownlink:
        if self.encoding != "raw" and self.field is None:
            raise ValueError(f"downlink {self.name}: encoding {self.encoding} needs field")
        if self.encoding == "raw" and self.type not in ("String", "Text"):
            raise ValueError(f"downlink {self.name}: a raw downlink is hex text: type must be String")
        return self


class LorawanDevice(_Model):
    """A LoRaWAN end device, one Sparkplug device of the connector's edge node."""

    id: sparkplug_id = Field(description="Sparkplug device id.")
    dev_eui: str = Field(
        pattern=r"^[0-9A-Fa-f]{16}$", description="The device's DevEUI (16 hex digits): how events are matched."
    )
    device_id: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9](?:[-]?[a-z0-9]){2,}$",
        description="The Things Stack device id (its topics name the device by it); null = eui-<dev_eui in lower "
        "case>, The Things Stack's default.",
    )
    expected_interval_s: float = Field(
        default=900.0,
        gt=0,
        description="How often the device sends an uplink. Silent past expected_interval_s x the connector's "
        "stale_after_missed, it is reported dead (DDEATH: its values go stale) until it is heard again.",
    )
    codec: str = Field(
        default="cayenne_lpp",
        pattern=_CODEC.pattern,
        description="Payload codec for uplinks the network server did not decode (no object) and for 'codec' "
        "downlinks: cayenne_lpp (built in), none, or 'package.module:name' naming a class with decode(f_port, "
        "data) -> dict and encode(f_port, object) -> bytes.",
    )
    battery: bool = Field(
        default=True,
        description="The device reports its battery level (ChirpStack status events): Battery/Level. false for a "
        "mains-powered device, which then has no Battery/Level metric (it would stay null).",
    )
    metrics: list[LorawanMetric] = Field(default_factory=list, description="Metrics from the decoded object.")
    downlinks: list[LorawanDownlink] = Field(default_factory=list, description="Writable metrics sent as downlinks.")

    @property
    def tts_id(self) -> str:
        """The device's id in The Things Stack's topics."""
        return self.device_id or f"eui-{self.dev_eui.lower()}"


class LorawanBridgeConfig(BridgeBase):
    """A LoRaWAN connector: one network server application, its devices as Sparkplug devices."""

    kind: Literal["lorawan"] = Field(default="lorawan", description="Bridge kind.")
    server: LorawanServer = Field(description="The network server's MQTT integration.")
    devices: list[LorawanDevice] = Field(min_length=1, description="The end devices to publish.")
    stale_after_missed: float = Field(
        default=2.5,
        ge=1.0,
        le=100.0,
        description="A device silent for this many expected intervals is reported dead (its values stale).",
    )
    dedupe_kept: int = Field(
        default=10_000, ge=16, description="Uplink ids remembered to recognise a duplicate delivery."
    )

    @model_validator(mode="after")
    def _unique(self) -> LorawanBridgeConfig:
        for what, values in (
            ("device id", [d.id for d in self.devices]),
            ("dev_eui", [d.dev_eui.upper() for d in self.devices]),
            ("device_id", [d.tts_id for d in self.devices]),
        ):
            twice = repeated(values)
            if twice:
                raise ValueError(f"devices: {what} {twice[0]} appears twice")
        if STATUS_DEVICE in {d.id for d in self.devices}:
            raise ValueError(f"devices: the device id {STATUS_DEVICE} is reserved for the connector's status")
        for device in self.devices:
            names = [m.name for m in device.metrics] + [d.name for d in device.downlinks]
            twice = repeated(names)
            if twice:
                raise ValueError(f"devices: {device.id}: metric {twice[0]} appears twice")
            reserved = [n for n in names if n.startswith(RESERVED_PREFIXES)]
            if reserved:
                raise ValueError(
                    f"devices: {device.id}: metric {reserved[0]}: {', '.join(RESERVED_PREFIXES)} are the connector's"
                )
        return self

    @property
    def session_id(self) -> str:
        """The client id of the subscription's persistent session."""
        return self.server.client_id or f"uns-lorawan-{self.edge.group}-{self.node_id}"
