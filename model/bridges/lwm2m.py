"""Config of the LwM2M server (``kind: lwm2m``): the hub as an LwM2M 1.x server over CoAP (UDP).

Each configured client endpoint is one Sparkplug device of the edge node; its resources (IPSO
objects by path, ``3303/0/5700``) are its metrics, observed while it is registered.
"""

from __future__ import annotations

import re
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from model.bridges.common import BridgeBase, DatatypeName, sparkplug_id

__all__ = ["LWM2M_STATUS_DEVICE", "Lwm2mBridgeConfig", "Lwm2mDevice", "Lwm2mResource"]

LWM2M_STATUS_DEVICE = "server"
"""The device every LwM2M server has: its counters (registrations, notifications, refusals)."""

_PATH = re.compile(r"^/?\d{1,5}/\d{1,5}/\d{1,5}(/\d{1,5})?$")
_OBSERVE = re.compile(r"^/?\d{1,5}(/\d{1,5}){0,3}$")

ContentFormatName = Literal["text", "opaque", "cbor", "senml_json", "senml_cbor", "tlv"]


class Lwm2mResource(BaseModel):
    """One resource of a client, published as one metric of its device."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(
        pattern=_PATH.pattern,
        description="Resource path object/instance/resource[/resource instance] (3303/0/5700: temperature).",
    )
    name: str | None = Field(
        default=None,
        min_length=1,
        description="Metric name; null = from the IPSO registry (Temperature/0/SensorValue), or the path's numbers "
        "for an object the server does not know.",
    )
    datatype: DatatypeName | None = Field(
        default=None, description="Sparkplug datatype; null = from the IPSO registry (required for unknown objects)."
    )
    unit: str | None = Field(default=None, description="Engineering unit; null = the registry's (Cel, %RH, V, W, Wh).")
    writable: bool | None = Field(
        default=None, description="A DCMD may write it (a CoAP PUT); null = if the registry says the resource is W."
    )
    execute: bool | None = Field(
        default=None,
        description="An executable resource (Reboot 3/0/4, Reset 5605): a Boolean metric whose DCMD true sends a "
        "CoAP POST; null = if the registry says E.",
    )


class Lwm2mDevice(BaseModel):
    """One LwM2M client, known by its endpoint name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoint: str = Field(min_length=1, max_length=255, description="The client's endpoint name (ep=... on Register).")
    id: sparkplug_id = Field(description="Sparkplug device id.")
    resources: list[Lwm2mResource] = Field(min_length=1, description="Resources published as metrics.")
    observe: list[str] | None = Field(
        default=None,
        description="Paths to observe (an object instance, 3303/0, gets every resource in one notification if the "
        "client speaks TLV or SenML); null = each readable resource on its own.",
    )
    accept: ContentFormatName | None = Field(
        default=None,
        description="Content format asked for (CoAP Accept) on reads and observes; null = the bridge's accept.",
    )

    @field_validator("observe")
    @classmethod
    def _paths(cls, value: list[str] | None) -> list[str] | None:
        for index, path in enumerate(value or []):
            if not _OBSERVE.match(path):
                raise ValueError(f"observe[{index}]: {path!r} is not an LwM2M path (3303/0 or 3303/0/5700)")
        return value

    @model_validator(mode="after")
    def _unique(self) -> Self:
        seen: set[str] = set()
        for index, res in enumerate(self.resources):
            key = res.path.strip("/")
            if key in seen:
                raise ValueError(f"resources[{index}].path: {res.path!r} is listed twice")
            seen.add(key)
        return self


class Lwm2mBridgeConfig(BridgeBase):
    """The hub as an LwM2M server: clients register at ``coap://host:port/rd``, their resources are observed."""

    kind: Literal["lwm2m"] = Field(default="lwm2m", description="Bridge kind.")
    host: str = Field(default="127.0.0.1", description="Address the CoAP server binds (0.0.0.0 or :: for all).")
    port: int = Field(default=5683, ge=0, le=65535, description="UDP port of the CoAP server; 0 = pick a free one.")
    devices: list[Lwm2mDevice] = Field(min_length=1, description="The clients that may register; others get 4.03.")
    accept: ContentFormatName | None = Field(
        default=None,
        description="Content format asked for on reads and observes (senml_cbor, senml_json, tlv, text, cbor); null "
        "= none asked, the client picks (plain text for one resource in LwM2M 1.0).",
    )
    write_format: ContentFormatName = Field(
        default="text", description="Content format of writes from DCMD (text works with 1.0 and 1.1 clients)."
    )
    min_lifetime_s: int = Field(default=1, ge=1, description="A registration asking a shorter lifetime is refused.")
    expiry_grace_s: float = Field(
        default=2.0,
        ge=0.0,
        description="A registration not updated within its lifetime plus this is expired: its device's DDEATH.",
    )
    request_timeout_s: float = Field(
        default=10.0, gt=0, description="How long a read, write or execute waits for the client's answer."
    )
    register_within_s: float = Field(
        default=300.0,
        gt=0,
        description="A configured client not registered when the server starts is awaited (INFO); still not "
        "registered this long after, it is lost: a WARNING, once (dead, or its ep= is not the configured endpoint).",
    )
    retry_s: float = Field(
        default=1.0,
        gt=0,
        description="A read or observe that failed (client not listening yet, timeout) is tried again after this.",
    )
    status_interval_s: float = Field(
        default=1.0,
        gt=0,
        description="The status device's counters are sent at most this often, seconds (and only when one changed).",
    )

    @model_validator(mode="after")
    def _unique(self) -> Self:
        for field in ("endpoint", "id"):
            seen: set[str] = set()
            for index, device in enumerate(self.devices):
                value = getattr(device, field)
                if value in seen:
                    raise ValueError(f"devices[{index}].{field}: {value!r} is listed twice")
                seen.add(value)
        if any(d.id == LWM2M_STATUS_DEVICE for d in self.devices):
            raise ValueError(f"devices: id {LWM2M_STATUS_DEVICE!r} is the server's status device")
        return self
