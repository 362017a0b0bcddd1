"""Load Settings and the plant file: CLI overrides > ``UNS_*`` environment > YAML file > defaults.

This is the only module that reads the environment (passed in explicitly) and YAML. Every
failure becomes one ``ConfigError`` naming where the bad value came from, its dotted path and
the value, one problem per line::

    hub.yaml: broker.mqtt_port: Input should be less than or equal to 65535 (got 70000)
"""

from __future__ import annotations

import importlib.resources
import json
import logging
import types
import typing
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ValidationError

from model.config import Settings
from model.equipment import Enterprise, Plant
from uns.config_file import (
    Loc,
    Problem,
    config_error,
    dotted,
    parse_yaml,
    read_yaml,
    redact,
    validation_problems,
)
from uns.errors import ConfigError

__all__ = ["CONFIG_ENV", "ENV_SHORTCUTS", "flag_for", "load_plant", "load_settings", "plant_of"]

log = logging.getLogger(__name__)

CONFIG_ENV = "UNS_CONFIG"
"""Environment variable naming the YAML config file when no ``--config`` is given."""

ENV_SHORTCUTS: Mapping[str, str] = {
    "UNS_BROKER": "broker.url",
    "UNS_MQTT_PORT": "broker.mqtt_port",
    "UNS_WS_PORT": "broker.ws_port",
    "UNS_HTTP_PORT": "web.http_port",
    "UNS_DATA_DIR": "data_dir",
    "UNS_DEMO": "demo",
    "UNS_PLANT": "plant",
}
"""Flat environment names for the common settings; the nested name (``UNS_BROKER__MQTT_PORT``) wins
when both are set. The CLI flag of each is its name without ``UNS_``: ``UNS_MQTT_PORT`` -> ``--mqtt-port``."""

_PREFIX = str(Settings.model_config.get("env_prefix", "UNS_"))
_NESTED = str(Settings.model_config.get("env_nested_delimiter", "__"))
_DEMO_PLANT = "model/demo/plant.yaml (the demo plant)"
_FLAGS = {key: "--" + env.removeprefix(_PREFIX).lower().replace("_", "-") for env, key in ENV_SHORTCUTS.items()}


def flag_for(key: str) -> str:
    """The CLI flag that sets a dotted settings key: ``broker.mqtt_port`` -> ``--mqtt-port``.

    Keys without a flag of their own are named ``--<dotted key>``, e.g. ``--host.host-id``.
    """
    return _FLAGS.get(key) or "--" + key.replace("_", "-")


def load_settings(*, config_file: Path | None, overrides: Mapping[str, object], environ: Mapping[str, str]) -> Settings:
    """Build the hub's settings from every source, strongest first.

    Args:
        config_file: the YAML file (``--config``); None falls back to ``UNS_CONFIG``, then to none.
            Relative paths inside it resolve against its directory.
        overrides: CLI flags as dotted keys (``{"broker.mqtt_port": 0}``); None values are skipped.
        environ: the environment (``os.environ`` from the CLI, a dict in tests). ``UNS_*`` names
            are read, nested with ``__``, plus the flat ``ENV_SHORTCUTS``; empty values are ignored
            and so are ``UNS_*`` names that match no setting.

    ``demo`` left unset is off when a ``plant`` file is given: the simulated plant is the shipped plant's.

    Raises:
        ConfigError: naming the source, dotted path and value of every problem, one per line.
    """
    merged: dict[str, object] = {}
    origins: dict[Loc, str] = {}
    problems: list[Problem] = []
    upper_env = {name.upper(): (name, value) for name, value in environ.items()}

    if config_file is None and upper_env.get(CONFIG_ENV, ("", ""))[1]:
        config_file = Path(upper_env[CONFIG_ENV][1])
    if config_file is not None:
        source = str(config_file)
        data = read_yaml(config_file, source, f"create it, or point --config / {CONFIG_ENV} at an existing file")
        for loc, value in _leaves(data, ()):
            _put(merged, origins, loc, _resolve_path(loc, value, config_file.parent), source)

    for loc, value, source in _environment(upper_env, problems):
        _put(merged, origins, loc, value, source)

    for key, value in overrides.items():
        if value is not None:
            _put(merged, origins, tuple(key.split(".")), value, flag_for(key))

    if merged.get("plant") is not None and "demo" not in merged:
        # a plant file is the user's plant: the simulated demo plant (the shipped plant's machines) is not in it
        _put(merged, origins, ("demo",), False, "plant file given, demo not set")
    try:
        settings = Settings.model_validate(merged)
    except ValidationError as exc:
        problems.extend(validation_problems(exc, lambda loc: _source_of(loc, origins), merged))
    if problems:
        raise config_error(problems)
    log.debug("settings loaded from %s", sorted(set(origins.values())) or "defaults")
    return settings


def load_plant(path: Path | None) -> Plant:
    """Read and validate a plant file; None reads the demo plant shipped in ``model/demo``.

    Raises:
        ConfigError: the file is missing or not YAML, or names every invalid field, one per line.
    """
    if path is None:
        source = _DEMO_PLANT
        text = importlib.resources.files("model.demo").joinpath("plant.yaml").read_text(encoding="utf-8")
        data = parse_yaml(text, source)
    else:
        source = str(path)
        data = read_yaml(path, source, "create it, or point plant: / --plant / UNS_PLANT at an existing plant file")
    try:
        return Plant.model_validate(data)
    except ValidationError as exc:
        raise config_error(validation_problems(exc, lambda _loc: source, data)) from None


def plant_of(settings: Settings, *, demo: bool = False) -> Plant:
    """The plant a command runs: the plant file, else an empty plant of ``settings.enterprise``, else the demo plant.

    ``demo``: the command runs the simulated demo plant (``uns up`` with ``demo`` on; ``uns mes <view>`` when
    the demo's MES rules apply), whose topics are the demo plant's enterprise: without a plant file, an
    ``enterprise`` set must be the demo plant's. With a plant file the simulator runs on that file.

    Raises:
        ConfigError: an unreadable plant file, or an ``enterprise`` that contradicts it or the demo.
    """
    enterprise = settings.enterprise
    if settings.plant is not None:
        plant = load_plant(settings.plant)
        if enterprise is not None and enterprise != plant.enterprise.id:
            reason = f"the plant file {settings.plant} names enterprise {plant.enterprise.id!r}: set one of the two"
            raise ConfigError(source="settings", path="enterprise", reason=reason, value=enterprise)
        return plant
    if enterprise is None:
        return load_plant(None)
    if demo:
        shipped = load_plant(None)
        if enterprise != shipped.enterprise.id:
            reason = f"the demo plant is {shipped.enterprise.id!r}'s: run with --no-demo, or give a plant file"
            raise ConfigError(source="settings", path="enterprise", reason=reason, value=enterprise)
        return shipped
    try:
        return Plant(enterprise=Enterprise(id=enterprise))
    except ValidationError as exc:
        raise config_error(
            validation_problems(exc, lambda _loc: "settings", {"enterprise": {"id": enterprise}})
        ) from None


def _leaves(data: Mapping[str, object], loc: tuple[str, ...]) -> list[tuple[Loc, object]]:
    """Flatten nested mappings to (path, value); lists and scalars are leaves, empty mappings too."""
    out: list[tuple[Loc, object]] = []
    for key, value in data.items():
        here = (*loc, str(key))
        if isinstance(value, dict) and value:
            out.extend(_leaves(value, here))
        else:
            out.append((here, value))
    return out


def _put(merged: dict[str, object], origins: dict[Loc, str], loc: Loc, value: object, source: str) -> None:
    """Set one value at a nested path, remembering its source; a stronger source replaces a weaker one."""
    node = merged
    for key in loc[:-1]:
        child = node.get(str(key))
        if not isinstance(child, dict):
            child = {}
            node[str(key)] = child
        node = child
    node[str(loc[-1])] = value
    for old in [old for old in origins if old[: len(loc)] == loc or loc[: len(old)] == old]:
        del origins[old]
    origins[loc] = source


def _environment(upper_env: Mapping[str, tuple[str, str]], problems: list[Problem]) -> list[tuple[Loc, object, str]]:
    """The settings found in the environment, flat shortcuts first so nested names win."""
    shortcuts: list[tuple[Loc, object, str]] = []
    nested: list[tuple[Loc, object, str]] = []
    for key in sorted(upper_env):
        name, raw = upper_env[key]
        if not key.startswith(_PREFIX) or key == CONFIG_ENV or raw == "":
            continue
        source = f"environment {name}"
        if key in ENV_SHORTCUTS:
            loc: Loc = tuple(ENV_SHORTCUTS[key].split("."))
            bucket = shortcuts
        else:
            loc = tuple(key.removeprefix(_PREFIX).lower().split(_NESTED))
            if loc[0] not in Settings.model_fields:
                log.debug("ignoring %s: no such setting", name)
                continue
            bucket = nested
        try:
            bucket.append((loc, _decode_env(raw, _annotation(loc)), source))
        except ValueError as exc:
            problems.append((source, dotted(loc), str(exc), redact(loc, raw)))
    return shortcuts + nested


def _annotation(loc: Loc) -> object:
    """The type annotation of the setting at ``loc``, None when there is no such field."""
    model: type[BaseModel] | None = Settings
    annotation: object = None
    for key in loc:
        field = model.model_fields.get(str(key)) if model is not None else None
        if field is None:
            return None
        annotation = _unwrap_optional(field.annotation)
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    return annotation


def _unwrap_optional(annotation: object) -> object:
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _decode_env(raw: str, annotation: object) -> object:
    """Strings stay strings (pydantic converts them); sections and lists are JSON, lists also ``a,b``."""
    origin = typing.get_origin(annotation)
    is_model = isinstance(annotation, type) and issubclass(annotation, BaseModel)
    if not (is_model or origin in (list, dict) or annotation in (list, dict)):
        return raw
    if origin is list and not raw.lstrip().startswith("["):
        return [item.strip() for item in raw.split(",")]
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON at character {exc.pos}: {exc.msg}") from None


def _resolve_path(loc: Loc, value: object, base: Path) -> object:
    """A relative path given in the YAML file is relative to that file's directory."""
    if isinstance(value, str) and _annotation(loc) is Path and not Path(value).is_absolute():
        return str(base / value)
    return value


def _source_of(loc: Loc, origins: Mapping[Loc, str]) -> str:
    for size in range(len(loc), 0, -1):
        if loc[:size] in origins:
            return origins[loc[:size]]
    below = [source for origin, source in origins.items() if origin[: len(loc)] == loc]
    return below[-1] if below else "defaults"
