"""Config of the MQTT-JSON bridge: devices that already publish JSON, mapped into Sparkplug metrics."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from model.bridges.common import BridgeBase, DatatypeName, sparkplug_id

__all__ = ["JsonDevice", "JsonMapping", "MqttJsonBridgeConfig"]


class JsonMapping(BaseModel):
    """Where one metric comes from: a topic filter and a path into the JSON body."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    topic: str = Field(min_length=1, description="MQTT topic or filter the device publishes its JSON on.")
    path: str = Field(
        default="$",
        pattern=r"^\$(\.[^.\[\]]+|\[\d+\])*$",
        description="Dotted JSON path: $.a.b[0].c; $ = the whole body.",
    )
    name: str = Field(min_length=1, description="Sparkplug metric name ('/' makes levels).")
    type: DatatypeName = Field(default="Double", description="Sparkplug datatype of the metric.")
    unit: str | None = Field(default=None, description="Engineering unit.")
    deadband: float = Field(default=0.0, ge=0, description="Report by exception: absolute change to report.")


class JsonDevice(BaseModel):
    """A Sparkplug device fed by JSON topics."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: sparkplug_id = Field(description="Sparkplug device id.")
    mappings: list[JsonMapping] = Field(min_length=1, description="Its metrics.")


class MqttJsonBridgeConfig(BridgeBase):
    """An MQTT-JSON bridge."""

    kind: Literal["mqtt_json"] = Field(default="mqtt_json", description="Bridge kind.")
    source_broker: str | None = Field(default=None, description="Broker the devices publish to; null = the hub's.")
    client_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=65535,
        description=(
            "MQTT client id of the bridge's persistent session at the source broker, which queues the devices' "
            "messages while the bridge is away; keep it stable and unique per bridge. Null = "
            "uns-json-<group>-<edge node id>."
        ),
    )

    @property
    def session_id(self) -> str:
        """The client id of the source subscription's persistent session."""
        return self.client_id or f"uns-json-{self.edge.group}-{self.node_id}"

    devices: list[JsonDevice] = Field(min_length=1, description="Devices fed by JSON topics.")
