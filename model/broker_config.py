"""The schema of broker.yaml: listeners, users and roles, and limits of the embedded broker."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from model.topic import SLUG_PATTERN

__all__ = [
    "ROLES",
    "BrokerFileConfig",
    "Limits",
    "Listener",
    "Listeners",
    "LoginLimits",
    "Persistence",
    "Role",
    "TlsListener",
    "UserConfig",
    "is_loopback",
]

Role = Literal["admin", "host", "bridge", "app", "viewer"]
ROLES: tuple[Role, ...] = ("admin", "host", "bridge", "app", "viewer")

_USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$")
_EDGE_PART = re.compile(r"^(\+|[^/+#$\s]+)$")
_HOST_ID = re.compile(r"^[^/+#$\s]+$")


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_filter(value: str) -> str:
    """A valid MQTT topic filter, or ValueError saying what is wrong with it."""
    if not value:
        raise ValueError("topic filter must not be empty")
    levels = value.split("/")
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != len(levels) - 1):
            raise ValueError(f"topic filter {value!r}: '#' must be a whole last level")
        if "+" in level and level != "+":
            raise ValueError(f"topic filter {value!r}: '+' must be a whole level")
    return value


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Listener(_Frozen):
    """One plain MQTT (TCP) or WebSocket listener."""

    bind: str = Field(
        default="127.0.0.1",
        description="Address to listen on: 127.0.0.1 stays on this machine, 0.0.0.0 opens it to the network.",
    )
    port: int = Field(default=1883, ge=0, le=65535, description="TCP port; 0 picks a free one (reported once started).")


class TlsListener(Listener):
    """An MQTT-over-TLS listener (``mqtts://``)."""

    port: int = Field(default=8883, ge=0, le=65535, description="TCP port; 0 picks a free one.")
    certfile: Path = Field(description="PEM file with the server certificate (and its chain).")
    keyfile: Path = Field(description="PEM file with the server's private key.")
    cafile: Path | None = Field(
        default=None, description="PEM file of CAs whose client certificates are accepted (optional)."
    )

    @model_validator(mode="after")
    def _files_exist(self) -> Self:
        for name in ("certfile", "keyfile", "cafile"):
            path = getattr(self, name)
            if path is not None and not Path(path).is_file():
                raise ValueError(f"{name}: file not found: {path}")  # "<field>: " names the field for ConfigError
        return self


class Listeners(_Frozen):
    """Where the broker accepts connections."""

    tcp: Listener = Field(description="Plain MQTT listener (required).")
    ws: Listener | None = Field(
        default=None, description="MQTT over WebSocket for browsers (`ws://host:port`); null or absent = off."
    )
    tls: TlsListener | None = Field(default=None, description="MQTT over TLS (`mqtts://`); null or absent = off.")


class UserConfig(_Frozen):
    """One account that may log in to the broker."""

    password_hash: str = Field(description="argon2 hash of the password, as printed by `uns passwd`.")
    role: Role = Field(description="What the user may do: admin, host, bridge, app or viewer.")
    edge_nodes: tuple[str, ...] = Field(
        default=(),
        description='For role bridge: the Sparkplug edge nodes it may publish as, each "group/node" ("+" wildcards).',
    )
    edge_agent: str | None = Field(
        default=None,
        pattern=SLUG_PATTERN,
        description=(
            "For role bridge: the `uns edge` agent id this account runs as; it may then also read "
            "<enterprise>/hub/edge/<agent>/config and publish <enterprise>/hub/edge/<agent>/status (docs/fleet.md)."
        ),
    )
    host_ids: tuple[str, ...] = Field(
        default=(),
        description=(
            "For role host: the Sparkplug host ids whose spBv1.0/STATE/<host_id> it may publish (the hub's "
            "host.host_id); empty = any."
        ),
    )
    read_sparkplug: bool = Field(
        default=False,
        description=(
            "For roles app and viewer: also read raw Sparkplug (spBv1.0/# births, data, deaths and STATE, never "
            "NCMD/DCMD), e.g. for Ignition; without it they read the ISA-95 topics only."
        ),
    )

    @field_validator("password_hash")
    @classmethod
    def _argon2(cls, value: str) -> str:
        if not value.startswith("$argon2"):
            raise ValueError("must be an argon2 hash ($argon2id$...); make one with `uns passwd`")
        return value

    @field_validator("edge_nodes")
    @classmethod
    def _edge_nodes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for node in value:
            parts = node.split("/")
            if len(parts) != 2 or not all(_EDGE_PART.match(part) for part in parts):
                raise ValueError(f'edge node {node!r} must be "group/node" (either part may be "+")')
        return value

    @model_validator(mode="after")
    def _edge_nodes_for_bridges(self) -> Self:
        if self.edge_nodes and self.role != "bridge":
            raise ValueError(f"edge_nodes: only apply to role bridge (role is {self.role})")
        if self.edge_agent is not None and self.role != "bridge":
            raise ValueError(f"edge_agent: only applies to role bridge (role is {self.role})")
        if self.host_ids and self.role != "host":
            raise ValueError(f"host_ids: only apply to role host (role is {self.role})")
        for host_id in self.host_ids:
            if not _HOST_ID.match(host_id):
                raise ValueError(f"host_ids: {host_id!r} is not a Sparkplug host id (one topic level, no + # $)")
        if self.read_sparkplug and self.role not in ("app", "viewer"):
            raise ValueError(f"read_sparkplug: only applies to roles app and viewer (role is {self.role})")
        return self


class Limits(_Frozen):
    """Resource limits that protect the broker from one client."""

    max_payload_bytes: int = Field(
        default=1_048_576,
        ge=1,
        le=268_435_455,
        description="Largest PUBLISH payload accepted; a bigger one is dropped and its client disconnected.",
    )
    max_connections: int = Field(
        default=1000,
        ge=1,
        description=(
            "Most simultaneous connected clients per listener (counted once their CONNECT is read); "
            "one more gets CONNACK 3 (server unavailable) and is closed."
        ),
    )
    max_pending_connections: int = Field(
        default=256,
        ge=1,
        description=(
            "Most connections per listener that have not yet sent a whole CONNECT; they hold no slot of "
            "max_connections. When full, the OLDEST pending connection is closed to make room."
        ),
    )
    connect_timeout_s: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description="Seconds a new connection has to send its whole CONNECT before it is closed.",
    )
    max_queued_messages: int = Field(
        default=10_000,
        ge=1,
        description=(
            "Most QoS 1/2 messages queued for one persistent session (clean_session=0) while it is offline or "
            "behind; when full the OLDEST queued message is dropped, counted and logged."
        ),
    )
    session_expiry_s: int | None = Field(
        default=None,
        ge=1,
        description=(
            "Seconds a disconnected persistent session (subscriptions and queue) is kept; null = forever, "
            "as MQTT 3.1.1 says."
        ),
    )


class LoginLimits(_Frozen):
    """Throttling and cost bounds of MQTT logins (user name and password checks)."""

    max_failures_per_address: int = Field(
        default=10,
        ge=1,
        description=(
            "Failed logins from one client address before its logins are refused (CONNACK 5, no password "
            "check) for block_s, doubling with each further failure up to max_block_s."
        ),
    )
    max_failures_per_user: int = Field(
        default=5,
        ge=1,
        description=(
            "Failed logins for one user name before its logins are refused the same way, from addresses that "
            "failed themselves and did not log in as that user lately (so a flood cannot lock a good client out)."
        ),
    )
    block_s: float = Field(default=1.0, gt=0, description="First refusal period once a limit is reached.")
    max_block_s: float = Field(default=60.0, gt=0, description="Longest refusal period.")
    forget_after_s: float = Field(
        default=600.0, gt=0, description="Seconds without a failure after which an address or user starts afresh."
    )
    max_concurrent_checks: int = Field(
        default=2,
        ge=1,
        description="Password checks (argon2, in threads) run at once; more wait their turn, the broker keeps serving.",
    )
    cache_size: int = Field(
        default=1024,
        ge=0,
        description=(
            "Successful logins remembered (a keyed hash of user, password and stored hash, in memory only) "
            "so a reconnecting client skips argon2; 0 = off."
        ),
    )
    cache_ttl_s: float = Field(default=3600.0, gt=0, description="Seconds a remembered login stays valid.")


class Persistence(_Frozen):
    """Retained messages and persistent sessions stored in <data_dir>/broker.sqlite3."""

    enabled: bool = Field(
        default=True,
        description="Keep retained messages and clean_session=0 sessions across a broker restart.",
    )
    flush_interval_s: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="Seconds between writes to disk; a crash (not a clean stop) loses at most this much.",
    )


class BrokerFileConfig(_Frozen):
    """The whole of broker.yaml."""

    listeners: Listeners = Field(description="Network listeners: tcp (required), ws and tls (optional).")
    allow_anonymous: bool = Field(
        default=False, description="Let clients connect without a user name (they get anonymous_role)."
    )
    anonymous_role: Role = Field(default="viewer", description="Role of anonymous clients when allow_anonymous is on.")
    anonymous_on_network: bool = Field(
        default=False,
        description="Confirms anonymous access on a non-loopback listener; without it such a config is refused.",
    )
    users: dict[str, UserConfig] = Field(default_factory=dict, description="Accounts by user name.")
    app_cmd_topics: tuple[str, ...] = Field(
        default=(), description="Topic filters of `cmd` topics the app role may publish (e.g. `acme/+/+/+/+/cmd/#`)."
    )
    limits: Limits = Field(default_factory=Limits, description="Payload size, connection and session queue limits.")
    login: LoginLimits = Field(
        default_factory=LoginLimits, description="Login throttling, password check concurrency and login cache."
    )
    persistence: Persistence = Field(
        default_factory=Persistence, description="Retained messages and persistent sessions on disk."
    )

    @field_validator("users")
    @classmethod
    def _user_names(cls, value: dict[str, UserConfig]) -> dict[str, UserConfig]:
        for name in value:
            if not _USER_NAME.match(name):
                raise ValueError(f"user name {name!r} may hold only letters, digits and _ . @ -")
        return value

    @field_validator("app_cmd_topics")
    @classmethod
    def _filters(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            _check_filter(item)
        return value

    @model_validator(mode="after")
    def _anonymous_only_on_loopback(self) -> Self:
        if self.allow_anonymous and not self.anonymous_on_network:
            for name in ("tcp", "ws", "tls"):
                listener = getattr(self.listeners, name)
                if listener is not None and not is_loopback(listener.bind):
                    raise ValueError(
                        f"allow_anonymous: listeners.{name}.bind {listener.bind!r} is not loopback; "
                        "anonymous access from the network needs anonymous_on_network: true"
                    )
        return self

    @property
    def binds(self) -> tuple[str, ...]:
        """Every address a listener binds to."""
        found = [self.listeners.tcp.bind]
        found += [item.bind for item in (self.listeners.ws, self.listeners.tls) if item is not None]
        return tuple(found)
