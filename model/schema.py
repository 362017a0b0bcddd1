"""JSON Schemas of the files and messages users write or read: settings, plant file, envelope, MES events."""

from __future__ import annotations

from model.broker_config import BrokerFileConfig
from model.config import Settings
from model.envelope import Envelope
from model.equipment import Plant
from model.fleet import AgentConfig
from model.mes import EVENT_MODELS

__all__ = [
    "all_schemas",
    "broker_json_schema",
    "envelope_json_schema",
    "mes_event_json_schemas",
    "plant_json_schema",
    "settings_json_schema",
]


def settings_json_schema() -> dict[str, object]:
    """The JSON Schema of the hub's YAML config file (``Settings``)."""
    return Settings.model_json_schema(mode="validation")


def plant_json_schema() -> dict[str, object]:
    """The JSON Schema of the plant file (``Plant``)."""
    return Plant.model_json_schema(mode="validation")


def envelope_json_schema() -> dict[str, object]:
    """The JSON Schema of the value envelope on ``data`` and ``kpi`` topics."""
    return Envelope.json_schema()


def broker_json_schema() -> dict[str, object]:
    """JSON Schema of ``broker.yaml``, the embedded broker's config file."""
    return BrokerFileConfig.model_json_schema(mode="validation")


def mes_event_json_schemas() -> dict[str, dict[str, object]]:
    """The JSON Schema of each MES event body, by event name (``mes.work_order``, ...)."""
    return {f"mes.{name}": model.model_json_schema(mode="validation") for name, model in EVENT_MODELS.items()}


def all_schemas() -> dict[str, dict[str, object]]:
    """Every exported schema by name: settings, plant, broker, envelope, fleet.agent, mes.<event>."""
    return {
        "settings": settings_json_schema(),
        "plant": plant_json_schema(),
        "broker": broker_json_schema(),
        "envelope": envelope_json_schema(),
        "fleet.agent": AgentConfig.model_json_schema(mode="validation"),  # the file `uns fleet deploy` takes
        **mes_event_json_schemas(),
    }
