"""The one Settings model: every knob of the hub, one section per component, all with safe defaults."""

from __future__ import annotations

import ipaddress
import urllib.parse
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, SecretStr
from pydantic.json_schema import SkipJsonSchema
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from model.bridges import BridgeConfig
from model.rules import Rule
from model.sinks import SinkConfig
from model.sparkplug_ids import SparkplugId, check_sparkplug_id
from model.topic import SLUG_PATTERN, is_slug
from model.transforms import ComputedTag

__all__ = [
    "BROKER_SCHEMES",
    "BrokerSection",
    "CompressionRule",
    "DeriveRule",
    "EventLoop",
    "HistorianSection",
    "HostSection",
    "LogLevel",
    "MesLosses",
    "MesSection",
    "Settings",
    "SimSection",
    "WebSection",
]

BROKER_SCHEMES = ("mqtt", "mqtts", "ws", "wss")
"""Schemes an external broker url may use."""

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
"""Logging levels, accepted in any case."""

EventLoop = Literal["uvloop", "asyncio"]
"""The event loop a ``uns`` command runs on."""

_Port = Annotated[int, Field(ge=0, le=65535)]


def _check_broker_url(url: str | None) -> str | None:
    if url is None:
        return None
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in BROKER_SCHEMES:
        raise ValueError(f"broker url scheme must be one of {', '.join(BROKER_SCHEMES)}, like mqtt://host:1883")
    if not parts.hostname:
        raise ValueError("broker url has no host, like mqtt://user:pass@host:1883")
    try:
        _ = parts.port
    except ValueError as exc:
        raise ValueError(f"broker url port: {exc}") from None
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("broker url takes no path, query or fragment, like mqtt://host:1883")
    return url


def _check_proxy(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address or network, like 10.0.0.5 or 10.0.0.0/24") from None
    return value


def _check_group(value: str) -> str:
    return value if value == "+" else check_sparkplug_id(value)


_SLUG = SLUG_PATTERN.removeprefix("^").removesuffix("$")
_LINE_EXAMPLE = "acme/dallas/packaging/line1"


def _check_line_path(value: str) -> str:
    levels = value.split("/")
    if len(levels) != 4 or not all(is_slug(level) for level in levels):
        raise ValueError(f"{value!r} is not a line path: four ids enterprise/site/area/line, like {_LINE_EXAMPLE}")
    return value


_LinePath = Annotated[
    str, AfterValidator(_check_line_path), Field(json_schema_extra={"pattern": f"^{_SLUG}(/{_SLUG}){{3}}$"})
]
"""A line's equipment path (``mes.output_cells``' keys, ``mes.output_only_lines``)."""

_OutputPath = Annotated[str, Field(json_schema_extra={"pattern": f"^{_SLUG}(/{_SLUG}){{3,4}}$"})]
"""A cell's equipment path, or the line's own; that it is the line or a cell of it is checked with the line
(``_check_output_cells``)."""


def _check_output_cells(cells: dict[str, str]) -> dict[str, str]:
    for line, cell in cells.items():
        if not cell:
            raise ValueError(
                f"{line}: empty; name a cell of the line, like {line}/filler, or the line itself, or leave the line"
                " out for the default (its own counts if it publishes any, else its last cell in the plant file)"
            )
        if cell != line and (not cell.startswith(line + "/") or not is_slug(cell.removeprefix(line + "/"))):
            raise ValueError(
                f"{line}: {cell!r} is not a cell of this line; name one, like {line}/filler, or the line itself"
                " for the counts published on its own path"
            )
    return cells


def _set_by_the_hub(outputs: dict[str, str]) -> dict[str, str]:
    if outputs:
        raise ValueError(
            "set by the hub from the plant file (each line's last cell), not in the settings; pin a line's output in"
            " mes.output_cells"
        )
    return outputs


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BrokerSection(_Section):
    """The MQTT broker: an external one (``url``) or the embedded one (everything else)."""

    url: Annotated[str | None, AfterValidator(_check_broker_url)] = Field(
        default=None,
        description="External broker, mqtt://user:pass@host:port (mqtts, ws, wss too); unset runs the embedded broker.",
    )
    config: Path = Field(
        default=Path("broker.yaml"), description="Embedded broker config file (listeners, users, ACL)."
    )
    bind: str | None = Field(
        default=None, min_length=1, description="Address the embedded broker listens on; overrides broker.yaml."
    )
    mqtt_port: _Port | None = Field(
        default=None, description="MQTT TCP port; 0 picks a free one; overrides broker.yaml."
    )
    ws_port: _Port | None = Field(
        default=None, description="MQTT over WebSocket port; 0 picks a free one; overrides broker.yaml."
    )
    tls_port: _Port | None = Field(
        default=None, description="MQTT over TLS port; 0 picks a free one; overrides broker.yaml."
    )
    max_payload_bytes: int | None = Field(
        default=None, ge=1, le=268_435_455, description="Largest accepted payload in bytes; overrides broker.yaml."
    )
    ca_file: Path | None = Field(
        default=None,
        description="PEM file of the CA(s) the hub's own clients trust for an mqtts:// broker url (flag --broker-ca, "
        "env UNS_BROKER__CA_FILE); it replaces the system trust store. Unset: the system's (or SSL_CERT_FILE).",
    )


class HostSection(_Section):
    """The Sparkplug B primary host application."""

    host_id: SparkplugId = Field(
        default="uns-hub", description="Sparkplug host id, published at spBv1.0/STATE/<host_id>."
    )
    groups: list[Annotated[str, AfterValidator(_check_group)]] = Field(
        default_factory=lambda: ["+"], min_length=1, description="Sparkplug group ids to track; '+' tracks all."
    )
    rebirth_min_interval_s: float = Field(
        default=5.0, ge=0, description="Least time between two rebirth requests to the same edge node, seconds."
    )
    dbirth_grace_s: float = Field(
        default=10.0,
        gt=0,
        description="How long after an edge node's NBIRTH, with no DATA of that session, the host waits for the"
        " DBIRTHs of the devices it had; one not born again by then has its last values marked stale, seconds.",
    )
    republish_qos: int = Field(default=0, ge=0, le=1, description="QoS of UNS republishes (0 or 1).")
    republish_window: int = Field(
        default=1_000,
        ge=1,
        le=65_000,
        description="QoS 1 republishes awaiting the broker's acknowledgement at once; the host reads on meanwhile.",
    )
    health_interval_s: float = Field(
        default=5.0, gt=0, description="How often the hub publishes its health under <enterprise>/hub/, seconds."
    )
    max_metrics_per_birth: int = Field(
        default=10_000,
        ge=1,
        description="Metrics one NBIRTH or DBIRTH may declare; a larger birth is refused and its node marked degraded.",
    )
    max_devices_per_node: int = Field(
        default=1_000,
        ge=1,
        description="Devices one edge node may have; a message of a further device is refused, the node degraded.",
    )
    max_nodes: int = Field(
        default=10_000, ge=1, description="Edge nodes the host tracks; messages of a further node are refused."
    )
    max_series: int = Field(
        default=1_000_000,
        ge=1,
        description="Metrics the host tracks over all nodes and devices; a birth that would pass it is refused.",
    )
    worker: bool = Field(
        default=False,
        description="Run the host's Sparkplug decoding and mapping in a child process, beside the broker's"
        " (a second core at work); the process is restarted if it dies or hangs.",
    )
    worker_hang_s: float = Field(
        default=10.0,
        gt=0,
        description="With `worker`: a worker that leaves a batch unanswered and writes nothing for this long is"
        " taken as hung and restarted (answers waiting on a slow publish do not count), seconds.",
    )


class CompressionRule(_Section):
    """Store fewer samples of matching numeric series: the first rule whose filter matches applies."""

    match: str = Field(
        min_length=1, description="MQTT topic filter over UNS topics, e.g. acme/+/+/+/+/data/Temperature."
    )
    method: Literal["deadband", "swinging_door"] = Field(
        description="deadband: keep a sample that moved more than `deviation` from the last kept one;"
        " swinging_door: keep the points that bound a corridor of ±`deviation` (a line fit)."
    )
    deviation: float = Field(gt=0, description="Allowed error, in the metric's unit.")
    max_interval_s: float = Field(
        default=600.0, gt=0, description="Keep at least one sample this often, seconds, even when nothing moved."
    )


class HistorianSection(_Section):
    """The DuckDB historian: ingest of every UNS data, kpi and mes sample, retention and rollups."""

    enabled: bool = Field(default=True, description="Run the historian inside `uns up`.")
    path: Path | None = Field(default=None, description="DuckDB file; unset means <data_dir>/historian.duckdb.")
    client_id: str = Field(
        default="uns-historian",
        min_length=1,
        description="MQTT client id; with an external broker it keeps a persistent session under this id.",
    )
    batch_rows: int = Field(default=10_000, ge=1, le=1_000_000, description="Rows per committed batch at most.")
    flush_interval_s: float = Field(
        default=0.5, gt=0, le=60, description="Longest a received sample waits before its batch is committed, seconds."
    )
    max_pending_rows: int = Field(
        default=200_000,
        ge=1,
        description="Rows held in memory while a commit runs; beyond it the historian stops reading (back-pressure).",
    )
    max_future_s: float = Field(
        default=300.0, gt=0, description="A sample timestamped later than now plus this is dead-lettered, seconds."
    )
    max_series: int = Field(
        default=1_000_000,
        ge=1,
        description="Series (topics) stored at most; a sample of a further series is dead-lettered (field series).",
    )
    memory_limit_mb: int = Field(
        default=512,
        ge=64,
        description="DuckDB's memory cap, MiB (DuckDB's own default is 80 % of RAM); past it cached blocks are evicted"
        " and large queries spill to <path>.tmp.",
    )
    raw_retention_days: float = Field(default=90.0, ge=0, description="Days of raw samples kept; 0 keeps them forever.")
    rollup_1m_retention_days: float = Field(
        default=730.0, ge=0, description="Days of 1-minute rollups kept; 0 keeps them forever."
    )
    rollup_1h_retention_days: float = Field(
        default=0.0, ge=0, description="Days of 1-hour rollups kept; 0 keeps them forever."
    )
    health_interval_s: float = Field(
        default=5.0, gt=0, description="How often the historian publishes <enterprise>/hub/historian/health, seconds."
    )
    maintenance_interval_s: float = Field(
        default=60.0, gt=0, description="How often rollups and retention run, seconds."
    )
    compression: list[CompressionRule] = Field(
        default_factory=list, description="Deadband or swinging-door compression rules; none stores every sample."
    )


class DeriveRule(_Section):
    """Turn a machine metric into MES events (a line with no MES software gets its views from the bridges)."""

    match: str = Field(min_length=1, description="MQTT filter over UNS data topics, e.g. acme/dallas/+/+/+/data/State.")
    kind: Literal["state", "counter", "part_done"] = Field(
        description="state: a PLC state code -> machine_state; counter: a running count -> production_count; "
        "part_done: each rising edge of a bit -> a cycle time."
    )
    state_map: dict[int, int] = Field(
        default_factory=dict,
        description="kind state: PLC code -> state catalog code (unmapped codes -> 30000 unknown).",
    )
    state_preset: Literal["packml", "weihenstephan", "euromap", "euromap_production", "umh"] | None = Field(
        default=None, description="kind state: a built-in mapping of a standard's state codes, used under state_map."
    )
    reason_match: str | None = Field(
        default=None,
        description="kind state: a sibling metric holding the reason code (e.g. FaultCode), relative to the cell.",
    )
    counts: Literal["total", "good", "scrap"] = Field(
        default="good", description="kind counter: what the counter counts."
    )
    rollover: float = Field(
        default=2**32, gt=0, description="kind counter: the value at which the counter wraps to 0 (2^32 for UInt32)."
    )


class MesLosses(_Section):
    """Loss class of state codes by inclusive range ([low, high]); codes no range names keep the preset's class."""

    availability: list[tuple[int, int]] | None = Field(
        default=None, description="State code ranges of availability loss (unplanned stops)."
    )
    performance: list[tuple[int, int]] | None = Field(
        default=None, description="State code ranges of performance loss (counted inside actual production time)."
    )
    planned: list[tuple[int, int]] | None = Field(
        default=None, description="State code ranges of planned downtime (outside planned busy time)."
    )


class MesSection(_Section):
    """The MES adapter: MES events in, views, KPIs back into the UNS."""

    enabled: bool = Field(default=True, description="Run the MES adapter beside the historian.")
    kpi_interval_s: float = Field(
        default=10.0, gt=0, description="How often KPIs are computed, seconds (published on change)."
    )
    commit_interval_s: float = Field(
        default=0.5,
        gt=0,
        le=10,
        description="How often the adapter stores what it read (events, derived counts, counter baselines) in one "
        "call on the historian's writer, seconds; QoS 1 events are acknowledged after it. Shorter is fresher views, "
        "longer is less writer work.",
    )
    kpi_window_h: float = Field(
        default=8.0, gt=0, description="KPIs cover the running shift, else the last this many hours."
    )
    microstop_s: float = Field(
        default=120.0, ge=0, description="A stop shorter than this is a microstop: performance loss, not availability."
    )
    loss_preset: Literal["iso22400", "umh"] = Field(
        default="iso22400",
        description="Loss classes of state codes: iso22400 (every stop availability loss but microstops 50000-59999 "
        "and planned 150000-179999) or umh (United Manufacturing Hub factoryinsight's default lists).",
    )
    losses: MesLosses = Field(
        default_factory=MesLosses,
        description="State code ranges per loss class, over the preset's for the codes they name.",
    )
    planned_states: list[tuple[int, int]] | None = Field(
        default=None,
        description="State code ranges of planned downtime (breaks, no shift, no order): not planned busy time; "
        "when set, replaces the preset's planned list.",
    )
    changeover_planned: bool = Field(
        default=False, description="Count changeovers (100000-109999) as planned downtime instead of availability loss."
    )
    ideal_cycle_time_s: dict[str, float] = Field(
        default_factory=dict,
        description="Equipment path -> ideal seconds per unit, used when no product type gives one.",
    )
    derive: list[DeriveRule] = Field(default_factory=list, description="Machine metrics turned into MES events.")
    output_only_lines: list[_LinePath] = Field(
        default_factory=list,
        description="Lines whose cells count different units (cases, then pallets): the line's units are its "
        "output cell's alone; upstream scrap is not added.",
    )
    output_cells: Annotated[dict[_LinePath, _OutputPath], AfterValidator(_check_output_cells)] = Field(
        default_factory=dict,
        description="Line path -> the cell of that line whose counts are the line's output (a cell the plant file "
        "declares, for a line it declares), or the line path itself for counts published on the line; default the "
        "line's own counts when its path ever counted, else its last cell in the plant file. Counts on the line "
        "path while its output is a cell are stray: stored, counted in the health, no figure of the line.",
    )
    plant_outputs: SkipJsonSchema[Annotated[dict[str, str], AfterValidator(_set_by_the_hub)]] = Field(
        default_factory=dict,
        exclude=True,
        description="Line path -> its default output, the line's last cell in the plant file: filled by the hub "
        "(hub.app.mes_section), refused in the settings. It applies after output_cells and the line's own counts "
        "(uns.mes.line_output).",
    )
    reasons: dict[str, str] = Field(
        default_factory=dict, description="Reason catalog: reason code -> text (downtime and defect reasons)."
    )


class WebSection(_Section):
    """The web UI and HTTP API."""

    bind: str = Field(default="127.0.0.1", min_length=1, description="Address the web server listens on.")
    http_port: _Port = Field(default=8080, description="HTTP port; 0 picks a free one.")
    session_ttl_s: float = Field(default=28800.0, gt=0, description="Seconds a web login lasts.")
    cache_max_topics: int = Field(
        default=1_000_000,
        ge=1,
        description="Topics the live topic browser keeps; further topics are counted (topics_refused) and not kept.",
    )
    cache_payload_budget_bytes: int = Field(
        default=256 * 1024 * 1024,
        ge=0,
        description="Bytes of payloads the topic browser keeps in all; past it, new payloads keep their first 256.",
    )
    session_secret: SecretStr | None = Field(
        default=None,
        description="Key signing web session cookies (at least 16 bytes); unset = a random key per start, which "
        "signs everyone out on restart.",
    )
    trusted_proxies: list[Annotated[str, AfterValidator(_check_proxy)]] = Field(
        default_factory=list,
        description="Reverse proxies (IP addresses or networks, like 10.0.0.5 or 10.0.0.0/24) whose X-Forwarded-For "
        "and X-Forwarded-Proto are believed; empty (the default) believes no one's, loopback included.",
    )
    tls_cert_file: Path | None = Field(
        default=None, description="PEM certificate (chain) to serve HTTPS with; unset serves plain HTTP."
    )
    tls_key_file: Path | None = Field(
        default=None, description="PEM private key of tls_cert_file; unset when the key is in that file."
    )
    historian_url: str | None = Field(
        default=None,
        description="``uns web`` only: http://[user:password@]host:port of a running ``uns historian``, whose "
        "history and MES APIs the web UI forwards to (the account needs role viewer, or app to post MES events).",
    )


class SimSection(_Section):
    """The simulated demo plant (``uns sim``, and ``uns up`` unless ``--no-demo``)."""

    seed: int = Field(default=42, description="Random seed: the same seed gives the same plant history.")
    bind: str = Field(default="127.0.0.1", min_length=1, description="Address the simulated PLCs listen on.")
    modbus_port: _Port = Field(default=0, description="First Modbus TCP port of the simulated PLCs; 0 = free ports.")
    opcua_port: _Port = Field(default=0, description="OPC UA port of the simulated server; 0 = a free port.")
    erp_port: _Port = Field(default=0, description="Port of the demo ERP's REST API (on bind); 0 = a free port.")
    qms_port: _Port = Field(default=0, description="Port of the demo QMS's REST API (on bind); 0 = a free port.")
    speed: float = Field(default=1.0, gt=0, le=100, description="Simulated seconds per real second.")


class Settings(BaseSettings):
    """Every setting of the hub.

    Load it with ``uns.settings.load_settings``, which layers CLI flags over ``UNS_*`` environment
    variables (nested with ``__``: ``UNS_BROKER__MQTT_PORT``) over the YAML file over these defaults.
    Constructing ``Settings(...)`` directly reads no environment: only the given values and defaults.
    """

    model_config = SettingsConfigDict(env_prefix="UNS_", env_nested_delimiter="__", extra="forbid", frozen=True)

    plant: Path | None = Field(default=None, description="Plant file (YAML); unset uses the shipped demo plant.")
    enterprise: str | None = Field(
        default=None,
        pattern=SLUG_PATTERN,
        description="Enterprise id (the first level of every topic) of a hub without a plant file: with it, "
        "`uns up --no-demo` (and host, historian, mes, web) run an empty plant of this enterprise instead of the "
        "demo plant's acme; with a plant file it must match the file's.",
    )
    data_dir: Path = Field(default=Path("data"), description="Where the historian and other state live.")
    demo: bool = Field(
        default=True,
        description="Run the simulated demo plant and its bridges; unset, off when a plant file is given.",
    )
    log_level: Annotated[LogLevel, BeforeValidator(_upper)] = Field(default="INFO", description="Logging level.")
    event_loop: EventLoop = Field(
        default="asyncio",
        description="The event loop every long-running `uns` command runs on (docs/configuration.md names them): the "
        "standard library's asyncio loop, or `uvloop` "
        "(libuv; an idle `uns up` with the demo spends 3-12 % less CPU; opt-in: see docs/configuration.md for what "
        "is not yet proven on it); uvloop falls back to asyncio where it is not installed.",
    )
    broker: BrokerSection = Field(default_factory=BrokerSection, description="The MQTT broker.")
    host: HostSection = Field(default_factory=HostSection, description="The Sparkplug host application.")
    historian: HistorianSection = Field(default_factory=HistorianSection, description="The DuckDB historian.")
    mes: MesSection = Field(default_factory=MesSection, description="The MES adapter.")
    web: WebSection = Field(default_factory=WebSection, description="The web server: UI and HTTP API.")
    sim: SimSection = Field(default_factory=SimSection, description="The simulated demo plant.")
    bridges: list[BridgeConfig] = Field(
        default_factory=list, description="Protocol bridges (Sparkplug edge nodes) to run, by kind."
    )
    sinks: list[SinkConfig] = Field(
        default_factory=list,
        description="Sinks writing the UNS to other stores (kind postgres), run by `uns up` and `uns sink <name>`.",
    )
    transforms: list[ComputedTag] = Field(
        default_factory=list,
        description="Computed tags: UNS metrics defined by an expression over other UNS topics, run by `uns up` "
        "(docs/transforms.md); SIGHUP reloads them from the file.",
    )
    rules: list[Rule] = Field(
        default_factory=list,
        description="Rules: a trigger, an optional condition and actions (publish, MES event, DCMD write, webhook, "
        "alarm), run by `uns up` (docs/rules.md).",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Only the values passed in: ``uns.settings`` owns the environment and the YAML file."""
        return (init_settings,)
