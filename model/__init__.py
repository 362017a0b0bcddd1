"""Data models: the ISA-95 plant, the UNS topic, the value envelope, MES events and settings."""

from model.config import BROKER_SCHEMES, BrokerSection, HostSection, LogLevel, Settings, SimSection, WebSection
from model.envelope import ENVELOPE_FIELDS, Envelope, Quality
from model.equipment import (
    RESERVED_IDS,
    RESERVED_SITE_IDS,
    Area,
    Cell,
    Enterprise,
    Equipment,
    Line,
    MetricMeta,
    Plant,
    ResolvedPath,
    Site,
    SparkplugBinding,
    slug,
)
from model.schema import (
    all_schemas,
    broker_json_schema,
    envelope_json_schema,
    plant_json_schema,
    settings_json_schema,
)
from model.topic import MAX_EQUIPMENT_LEVELS, SLUG_PATTERN, ClassWord, TopicError, UnsTopic, is_slug

__all__ = [
    "BROKER_SCHEMES",
    "ENVELOPE_FIELDS",
    "MAX_EQUIPMENT_LEVELS",
    "RESERVED_IDS",
    "RESERVED_SITE_IDS",
    "SLUG_PATTERN",
    "Area",
    "BrokerSection",
    "Cell",
    "ClassWord",
    "Enterprise",
    "Envelope",
    "Equipment",
    "HostSection",
    "Line",
    "LogLevel",
    "MetricMeta",
    "Plant",
    "Quality",
    "ResolvedPath",
    "Settings",
    "SimSection",
    "Site",
    "SparkplugBinding",
    "TopicError",
    "UnsTopic",
    "WebSection",
    "all_schemas",
    "broker_json_schema",
    "envelope_json_schema",
    "is_slug",
    "plant_json_schema",
    "settings_json_schema",
    "slug",
]
