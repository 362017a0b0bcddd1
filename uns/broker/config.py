"""Load broker.yaml (through the one loader, ``uns.config_file``) and apply CLI/env overrides."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from pathlib import Path

import pydantic

from model.broker_config import BrokerFileConfig
from uns.config_file import Problem, config_error, read_yaml, validation_problems

__all__ = ["load_broker_config", "validate_broker_config"]

_FIELD_PREFIX = re.compile(r"^(?:Value error, )?([a-z_][a-z0-9_.]*): (.*)$", re.DOTALL)


def load_broker_config(
    path: Path,
    *,
    bind: str | None = None,
    mqtt_port: int | None = None,
    ws_port: int | None = None,
    tls_port: int | None = None,
    max_payload_bytes: int | None = None,
) -> BrokerFileConfig:
    """Read broker.yaml at ``path`` and apply overrides (from flags or ``UNS_*``); port 0 = any free port.

    ``bind`` moves every listener. A ``ws_port`` or ``tls_port`` for a listener the file leaves out
    turns it on at the TCP listener's address (TLS then still needs its certificate files).

    Raises:
        ConfigError: the file is missing, not YAML, or fields are invalid (each named as a dotted path).
    """
    source = str(path)
    hint = (
        f"looked in {path.resolve().parent}; name the embedded broker's config with --broker-config FILE"
        " (env UNS_BROKER__CONFIG), or run from the folder holding broker.yaml"
    )
    raw = read_yaml(path, source, hint)
    data = _overridden(raw, bind, mqtt_port, ws_port, tls_port, max_payload_bytes)
    return validate_broker_config(data, source=source)


def validate_broker_config(data: Mapping[str, object], *, source: str = "broker.yaml") -> BrokerFileConfig:
    """Validate an already-parsed broker.yaml mapping; raises one ConfigError naming every bad field."""
    try:
        return BrokerFileConfig.model_validate(data)
    except pydantic.ValidationError as exc:
        raise config_error(
            [_named(problem) for problem in validation_problems(exc, lambda _loc: source, data)]
        ) from None


def _named(problem: Problem) -> Problem:
    """A model validator names its field as ``<field>: reason``: move the name into the path."""
    source, path, reason, value = problem
    found = _FIELD_PREFIX.match(reason)
    if found:
        path = f"{path}.{found.group(1)}" if path else found.group(1)
        reason = found.group(2)
        value = None  # the model's whole input says nothing the path does not
    if isinstance(value, dict | list):
        value = None  # a whole section says nothing the path does not
    return source, path, reason, value


def _overridden(
    raw: dict[str, object],
    bind: str | None,
    mqtt_port: int | None,
    ws_port: int | None,
    tls_port: int | None,
    max_payload_bytes: int | None,
) -> dict[str, object]:
    data = copy.deepcopy(raw)
    if max_payload_bytes is not None:
        limits = data.setdefault("limits", {})
        if isinstance(limits, dict):
            limits["max_payload_bytes"] = max_payload_bytes
    if bind is None and mqtt_port is None and ws_port is None and tls_port is None:
        return data  # leave a missing listeners section for validation to name
    listeners = data.setdefault("listeners", {})
    if not isinstance(listeners, dict):
        return data  # validation reports it
    tcp = listeners.setdefault("tcp", {})
    if not isinstance(tcp, dict):
        return data
    if bind is not None:
        for name in ("tcp", "ws", "tls"):
            if isinstance(listeners.get(name), dict):
                listeners[name]["bind"] = bind
    if mqtt_port is not None:
        tcp["port"] = mqtt_port
    for name, port in (("ws", ws_port), ("tls", tls_port)):
        if port is None:
            continue
        section = listeners.get(name)
        if not isinstance(section, dict):
            section = listeners[name] = {"bind": tcp.get("bind", "127.0.0.1")}
        section["port"] = port
    return data
