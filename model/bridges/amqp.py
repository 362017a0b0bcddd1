"""Config of the AMQP 0-9-1 source (``kind: amqp``): a queue bound to an exchange, JSON bodies mapped.

Bodies map to Sparkplug metrics or MES events with the HTTP source's items, devices and events,
which read JSON with the MQTT-JSON bridge's paths (``$.a.b[0].c``) and datatype conversions.
"""

from __future__ import annotations

import re
import urllib.parse
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, model_validator

from model.bridges.common import BridgeBase
from model.bridges.http import HttpDevice, HttpEvent, JsonPathText

__all__ = [
    "AMQP_NAME",
    "STATUS_DEVICE",
    "AmqpBridgeConfig",
    "AmqpRoute",
    "check_amqp_url",
    "check_binding_key",
    "redact_amqp_url",
]

STATUS_DEVICE = "amqp"
"""The device every AMQP source has: its counters; dead while the connection to the broker is."""

AMQP_NAME = r"^[A-Za-z0-9_.:-]{1,255}$"
"""Exchange and queue names: what RabbitMQ accepts (letters, digits, hyphen, underscore, period, colon)."""


def check_amqp_url(value: SecretStr) -> SecretStr:
    """An ``amqp://`` or ``amqps://`` URL with a host."""
    parts = urllib.parse.urlsplit(value.get_secret_value())
    if parts.scheme not in ("amqp", "amqps") or not parts.hostname:
        raise ValueError("must be amqp://user:password@host:port/vhost (or amqps://)")
    return value


def redact_amqp_url(url: SecretStr) -> str:
    """The URL without its password, for logs, health and errors."""
    return re.sub(r"(://[^:/@]*):[^@]*@", r"\1:***@", url.get_secret_value())


def check_binding_key(value: str) -> str:
    """A topic-exchange binding key: words split by '.', '*' one word, '#' zero or more, at most 255 bytes."""
    if len(value.encode()) > 255:
        raise ValueError("a binding key holds at most 255 bytes")
    for word in value.split("."):
        if ("*" in word or "#" in word) and word not in ("*", "#"):
            raise ValueError(f"{value!r}: '*' and '#' must be whole words (a.*.c, a.#)")
    return value


class AmqpRoute(BaseModel):
    """Messages whose routing key fits ``routing_key``: their JSON bodies as metrics and MES events."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    routing_key: Annotated[str, AfterValidator(check_binding_key)] = Field(
        default="#",
        description="Routing key pattern of the messages this route maps (topic-exchange syntax: '*' one word, "
        "'#' zero or more); the first route that fits a message takes it.",
    )
    items_path: JsonPathText = Field(default="$", description="Where the body holds its items ($ = the body is one).")
    key_path: JsonPathText | None = Field(
        default=None, description="The item's key, named in refusals and dead letters; null = its index."
    )
    devices: list[HttpDevice] = Field(default_factory=list, description="Items as Sparkplug metrics.")
    events: list[HttpEvent] = Field(default_factory=list, description="Items as MES events (QoS 1, awaited).")

    @model_validator(mode="after")
    def _something(self) -> AmqpRoute:
        if not self.devices and not self.events:
            raise ValueError("give devices (metrics), events (MES) or both")
        return self


class AmqpBridgeConfig(BridgeBase):
    """An AMQP 0-9-1 source (RabbitMQ): a queue bound to an exchange, its JSON messages mapped."""

    kind: Literal["amqp"] = Field(default="amqp", description="Bridge kind.")
    url: Annotated[SecretStr, AfterValidator(check_amqp_url)] = Field(
        description="amqp://user:password@host:port/vhost (amqps:// for TLS); never shown in logs or health."
    )
    exchange: str = Field(
        pattern=AMQP_NAME, description="Exchange the queue is bound to (declared when missing, with exchange_type)."
    )
    exchange_type: Literal["topic", "direct", "fanout", "headers"] = Field(
        default="topic", description="Type of the exchange when the source declares it."
    )
    queue: str = Field(pattern=AMQP_NAME, description="The source's own queue (declared when missing).")
    binding_keys: list[Annotated[str, AfterValidator(check_binding_key)]] = Field(
        default_factory=lambda: ["#"], min_length=1, description="Keys the queue is bound to the exchange with."
    )
    durable: bool = Field(
        default=True,
        description="Declare the queue and exchange durable, so a RabbitMQ restart keeps the queue and what it "
        "holds (publishers should send persistent messages, delivery mode 2).",
    )
    prefetch: int = Field(
        default=100,
        ge=1,
        le=65535,
        description="Messages RabbitMQ sends before an acknowledgement: at most this many are in flight.",
    )
    dead_letter_exchange: str | None = Field(
        default=None,
        pattern=AMQP_NAME,
        description="Exchange refused messages are dead-lettered to (the queue's x-dead-letter-exchange); null = "
        "<queue>.dead-letter, a fanout exchange declared with a durable queue of the same name holding them.",
    )
    routes: list[AmqpRoute] = Field(min_length=1, description="How messages map, by routing key; first fit wins.")
    heartbeat_s: int = Field(default=30, ge=0, le=600, description="AMQP heartbeat; 0 = none.")
    reconnect_min_s: float = Field(default=0.5, gt=0, description="First wait before reconnecting, seconds.")
    reconnect_max_s: float = Field(
        default=30.0, gt=0, description="Longest wait between reconnects (doubling, jittered), seconds."
    )
    state_dir: Path | None = Field(
        default=None, description="Where dead letters (with their reasons) are written; null = <data_dir>/amqp/<name>."
    )

    @property
    def dead_letters_to(self) -> str:
        """The dead-letter exchange refused messages go to."""
        return self.dead_letter_exchange or f"{self.queue}.dead-letter"

    @model_validator(mode="after")
    def _devices(self) -> AmqpBridgeConfig:
        seen: set[tuple[str, str]] = set()
        for route in self.routes:
            for device in route.devices:
                if device.id == STATUS_DEVICE:
                    raise ValueError(f"device id {STATUS_DEVICE!r} is the connector's own status device")
                for metric in device.metrics:
                    if (device.id, metric.name) in seen:
                        raise ValueError(f"device {device.id}: metric {metric.name} is mapped by two routes")
                    seen.add((device.id, metric.name))
        return self
