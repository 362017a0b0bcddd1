"""Config of the HTTP source (``kind: http``): REST/JSON APIs polled, webhooks received, JSON mapped.

Items (the JSON objects of a page or a webhook body) map to Sparkplug metrics of configured devices
or to MES events, with the dotted JSON paths of the MQTT-JSON bridge (``$.a.b[0].c``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from model.bridges.common import BridgeBase, DatatypeName, sparkplug_id
from model.mes import EventName

__all__ = [
    "STATUS_DEVICE",
    "BasicAuth",
    "BearerAuth",
    "CursorPages",
    "HttpAuth",
    "HttpBridgeConfig",
    "HttpDevice",
    "HttpEvent",
    "HttpMetric",
    "HttpPoll",
    "HttpWebhook",
    "ItemFilter",
    "LinkPages",
    "OAuth2ClientCredentials",
    "OffsetPages",
    "Pagination",
]

STATUS_DEVICE = "api"
"""The device every HTTP source has: its status metrics; down while the API is."""

JsonPathText = Annotated[
    str,
    Field(pattern=r"^\$(\.[^.\[\]]+|\[\d+\])*$", description="Dotted JSON path: $.a.b[0].c; $ = the whole item."),
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BasicAuth(_Model):
    """HTTP basic authentication (RFC 7617)."""

    kind: Literal["basic"] = Field(description="Auth kind.")
    username: str = Field(description="User name.")
    password: SecretStr = Field(description="Password.")


class BearerAuth(_Model):
    """A fixed bearer token (RFC 6750), e.g. an API key."""

    kind: Literal["bearer"] = Field(description="Auth kind.")
    token: SecretStr = Field(description="The token sent as 'Authorization: Bearer <token>'.")


class OAuth2ClientCredentials(_Model):
    """OAuth 2.0 client credentials grant (RFC 6749 section 4.4): a token fetched, cached and refreshed."""

    kind: Literal["oauth2"] = Field(description="Auth kind.")
    token_url: str = Field(description="The authorization server's token endpoint.")
    client_id: str = Field(description="Client id.")
    client_secret: SecretStr = Field(description="Client secret (sent with HTTP basic auth, RFC 6749 2.3.1).")
    scope: str | None = Field(default=None, description="Scopes asked for, space separated.")
    refresh_margin_s: float = Field(
        default=30.0, ge=0, description="Fetch a new token this long before the cached one expires."
    )


HttpAuth = Annotated[BasicAuth | BearerAuth | OAuth2ClientCredentials, Field(discriminator="kind")]


class LinkPages(_Model):
    """Pages chained by the RFC 8288 ``Link: <url>; rel="next"`` response header."""

    kind: Literal["link"] = Field(description="Pagination kind.")
    max_pages: int = Field(default=1000, ge=1, description="Stop a poll after this many pages (a loop guard).")


class OffsetPages(_Model):
    """Pages asked for with an offset and a limit query parameter; a short page is the last."""

    kind: Literal["offset"] = Field(description="Pagination kind.")
    offset_param: str = Field(default="offset", description="Query parameter of the offset.")
    limit_param: str = Field(default="limit", description="Query parameter of the page size.")
    limit: int = Field(default=100, ge=1, description="Page size asked for.")
    max_pages: int = Field(default=1000, ge=1, description="Stop a poll after this many pages (a loop guard).")


class CursorPages(_Model):
    """Pages chained by a cursor in the body; the last cursor is kept, so the next poll resumes after it."""

    kind: Literal["cursor"] = Field(description="Pagination kind.")
    cursor_path: JsonPathText = Field(description="Where the body holds the next cursor (null or absent: no more).")
    cursor_param: str = Field(default="cursor", description="Query parameter the cursor is sent in.")
    max_pages: int = Field(default=1000, ge=1, description="Stop a poll after this many pages (a loop guard).")


Pagination = Annotated[LinkPages | OffsetPages | CursorPages, Field(discriminator="kind")]


class HttpPoll(_Model):
    """A REST/JSON endpoint polled on an interval."""

    url: str = Field(pattern=r"^https?://", description="The endpoint (http:// or https://).")
    interval_s: float = Field(default=10.0, gt=0, description="Time from the end of one poll to the next.")
    params: dict[str, str] = Field(default_factory=dict, description="Query parameters sent on every request.")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra request headers.")
    auth: HttpAuth | None = Field(default=None, description="basic, bearer or oauth2; null = none.")
    pagination: Pagination | None = Field(default=None, description="link, offset or cursor; null = one page.")
    items_path: JsonPathText = Field(default="$", description="Where the body holds the list of items ($ = it is).")
    conditional: bool = Field(
        default=True, description="Send If-None-Match / If-Modified-Since from the last answer; a 304 costs nothing."
    )
    timeout_s: float = Field(default=10.0, gt=0, description="Connect and read timeout of each request.")
    verify_tls: bool = Field(default=True, description="Verify the server's certificate (false only for tests).")
    ca_file: Path | None = Field(default=None, description="CA bundle (PEM) to verify the server with.")
    backoff_min_s: float = Field(default=1.0, gt=0, description="First retry delay after a failure.")
    backoff_max_s: float = Field(default=60.0, gt=0, description="Retry delay cap (also caps Retry-After).")


class HttpWebhook(_Model):
    """A POST endpoint that systems push items to, checked with an HMAC signature."""

    host: str = Field(
        default="127.0.0.1", description="Address to listen on; loopback unless a reverse proxy or peer needs more."
    )
    port: int = Field(default=0, ge=0, le=65535, description="TCP port; 0 = a free one (logged).")
    path: str = Field(default="/webhook", pattern=r"^/", description="The POST path.")
    secret: SecretStr = Field(description="The shared HMAC key.")
    signature_header: str = Field(default="X-Signature", description="Header carrying the signature.")
    signature_prefix: str = Field(default="sha256=", description="Text before the hex digest ('' = none).")
    algorithm: Literal["sha256", "sha512", "sha1"] = Field(default="sha256", description="HMAC hash.")
    timestamp_header: str | None = Field(
        default="X-Timestamp",
        description="Header with the send time (Unix seconds), signed as '<timestamp>.<body>'; null = body only "
        "(no replay protection).",
    )
    tolerance_s: float = Field(default=300.0, gt=0, description="A timestamp further than this from now is refused.")
    max_body_bytes: int = Field(default=1024 * 1024, ge=1, description="A larger body is refused (413).")
    answer_within_s: float = Field(
        default=10.0,
        gt=0,
        description="A delivery not safe by then (the broker or the edge node away) is answered 503 so the sender "
        "retries; it may still be published later (at least once).",
    )
    items_path: JsonPathText = Field(default="$", description="Where the body holds the items ($ = the body).")


class ItemFilter(_Model):
    """Selects the items a device or event takes: the value at ``path`` equals ``equals``."""

    path: JsonPathText = Field(description="JSON path in the item.")
    equals: str | int | bool = Field(description="The value it must have.")


class HttpMetric(_Model):
    """One metric: a JSON path in the item."""

    path: JsonPathText = Field(description="Where the value is in the item.")
    name: str = Field(min_length=1, description="Sparkplug metric name ('/' makes levels).")
    type: DatatypeName = Field(default="Double", description="Sparkplug datatype of the metric.")
    unit: str | None = Field(default=None, description="Engineering unit.")
    deadband: float = Field(default=0.0, ge=0, description="Report by exception: absolute change to report.")


class HttpDevice(_Model):
    """A Sparkplug device fed by items."""

    id: sparkplug_id = Field(description="Sparkplug device id.")
    where: ItemFilter | None = Field(default=None, description="Which items feed it; null = every item.")
    timestamp_path: JsonPathText | None = Field(
        default=None, description="The item's time (ms since 1970 or ISO 8601); null = when it was read."
    )
    metrics: list[HttpMetric] = Field(min_length=1, description="Its metrics.")


class HttpEvent(_Model):
    """Items as MES events, published at QoS 1 on ``<equipment path>/mes/<event>``."""

    event: EventName = Field(description="MES event name (docs/mes.md).")
    equipment_path: str | None = Field(
        default=None, pattern=r"^[a-z0-9][a-z0-9_-]*(/[a-z0-9][a-z0-9_-]*)*$", description="Fixed equipment path."
    )
    equipment_path_from: JsonPathText | None = Field(
        default=None, description="JSON path of the item's equipment path (a/b/c), instead of a fixed one."
    )
    where: ItemFilter | None = Field(default=None, description="Which items are this event; null = every item.")
    id_paths: list[JsonPathText] = Field(
        min_length=1,
        description="Paths whose values, joined with ':' after the connector's name, make the event_id: a re-polled "
        "item is the same event (add a version or updated_at path to make an update a new event).",
    )
    fields: dict[str, JsonPathText] = Field(description="Event field -> JSON path in the item.")
    constants: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="Event fields with a fixed value (e.g. action: release)."
    )

    @model_validator(mode="after")
    def _one_path(self) -> HttpEvent:
        if (self.equipment_path is None) == (self.equipment_path_from is None):
            raise ValueError("give exactly one of equipment_path and equipment_path_from")
        return self


class HttpBridgeConfig(BridgeBase):
    """An HTTP source: polls an API, receives webhooks, or both."""

    kind: Literal["http"] = Field(default="http", description="Bridge kind.")
    poll: HttpPoll | None = Field(default=None, description="The endpoint to poll; null = webhooks only.")
    webhook: HttpWebhook | None = Field(default=None, description="The webhook endpoint; null = none.")
    key_path: JsonPathText | None = Field(
        default=None, description="The item's key, named in refusals and dead letters; null = its index."
    )
    devices: list[HttpDevice] = Field(default_factory=list, description="Items as Sparkplug metrics.")
    events: list[HttpEvent] = Field(default_factory=list, description="Items as MES events.")
    state_dir: Path | None = Field(
        default=None, description="Where the poll state and dead letters live; null = <data_dir>/http/<name>."
    )

    @model_validator(mode="after")
    def _something(self) -> HttpBridgeConfig:
        if self.poll is None and self.webhook is None:
            raise ValueError("give poll, webhook or both")
        if not self.devices and not self.events:
            raise ValueError("give devices (metrics), events (MES) or both")
        if any(device.id == STATUS_DEVICE for device in self.devices):
            raise ValueError(f"device id {STATUS_DEVICE!r} is the connector's own status device")
        return self
