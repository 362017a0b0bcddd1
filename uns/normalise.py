"""Pure mapping from a Sparkplug metric to its ISA-95 UNS topic and the JSON parts of its value envelope.

The envelope itself is built by the one encoder, ``model.envelope.build_envelope``.
"""

from __future__ import annotations

import base64
import math

from model.envelope import JsonValue, Quality
from model.topic import ClassWord, UnsTopic
from uns.sparkplug import DataSet, DataType, Metric, MetricValue, PropertySet, Template
from uns.sparkplug.quality import QUALITY_PROPERTY, quality_of_code
from uns.sparkplug.values import float32_shortest

__all__ = [
    "TEMPLATE_INSTANCE_KEYS",
    "json_value",
    "metric_topic",
    "quality_of",
    "unit_of_metric",
]

TEMPLATE_INSTANCE_KEYS = frozenset({"metrics", "template_ref", "version", "parameters"})
"""The keys of a Template instance's JSON (``json_value`` of a Template): ``metrics`` always, the rest when set."""

_FLOAT32_TYPES = frozenset({DataType.Float, DataType.FloatArray})  # printed at float32 precision
_UNIT_PROPERTIES = ("engUnit", "EngUnit", "unit", "Unit", "engineeringUnits")


def metric_topic(path: str, metric_name: str) -> str:
    """The UNS ``data`` topic of a metric: ``<path>/data/<metric name with its / levels>``.

    Raises:
        TopicError: the metric name is empty, has an empty level, or holds ``+``, ``#`` or NUL.
    """
    return str(UnsTopic.for_metric(path, metric_name, ClassWord.data))


def json_value(value: MetricValue, datatype: DataType) -> JsonValue:
    """The JSON form of a metric value; bytes become base64, DataSets and Templates objects.

    Float and FloatArray values print at float32 precision (``101.9``, not ``101.9000015258789``).
    """
    if value.__class__ is float:  # first: most metrics are Float or Double, and a union isinstance costs ~0.1 us
        # JSON has no NaN or infinity: they are reported as null (the quality says why)
        if not math.isfinite(value):
            return None
        return float32_shortest(value) if datatype in _FLOAT32_TYPES else value
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):  # a float subclass
        return json_value(float(value), datatype)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, DataSet):
        return _dataset_json(value)
    if isinstance(value, Template):
        return _template_json(value)
    if isinstance(value, PropertySet):
        return _property_set_json(value)
    if isinstance(value, list):
        return [_element_json(item, datatype) for item in value]
    raise TypeError(f"no JSON form for {type(value).__name__} ({datatype.name})")


def _element_json(item: object, datatype: DataType) -> JsonValue:
    if isinstance(item, PropertySet):
        return _property_set_json(item)
    if isinstance(item, float):
        if not math.isfinite(item):
            return None
        return float32_shortest(item) if datatype in _FLOAT32_TYPES else item
    if item is None or isinstance(item, bool | int | float | str):
        return item
    raise TypeError(f"no JSON form for an element {type(item).__name__} of {datatype.name}")


def _dataset_json(dataset: DataSet) -> JsonValue:
    return {
        "columns": list(dataset.columns),
        "types": [DataType(t).name for t in dataset.types],
        "rows": [
            [json_value(cell, DataType(t)) for cell, t in zip(row, dataset.types, strict=False)] for row in dataset.rows
        ],
    }


def _template_json(template: Template) -> JsonValue:
    metrics: dict[str, JsonValue] = {}
    for metric in template.metrics:
        if metric.name is not None and metric.datatype is not None:
            metrics[metric.name] = None if metric.is_null else json_value(metric.value, metric.datatype)
    out: dict[str, JsonValue] = {"metrics": metrics}
    if template.template_ref:
        out["template_ref"] = template.template_ref
    if template.version:
        out["version"] = template.version
    if template.parameters:
        out["parameters"] = {p.name: json_value(p.value, DataType(p.type)) for p in template.parameters}
    return out


def _property_set_json(properties: PropertySet) -> JsonValue:
    out: dict[str, JsonValue] = {}
    for key, prop in properties.items():
        out[key] = None if prop.is_null else json_value(prop.value, DataType(prop.type))
    return out


def quality_of(metric: Metric) -> Quality:
    """Good, unless the metric is null or carries a worse ``Quality`` property.

    Sparkplug's 500 is stale; other codes read OPC-style (192 and up good, 64..191 uncertain, below bad),
    and a BAD code whose ``QualityName`` property says ``uncertain`` (the hub's edge nodes) is uncertain.
    """
    properties = metric.properties
    if properties is not None:
        prop = properties.get(QUALITY_PROPERTY)
        if prop is not None and isinstance(prop.value, int) and not isinstance(prop.value, bool):
            return quality_of_code(prop.value, properties)
    return Quality.bad if metric.is_null else Quality.good


def unit_of_metric(metric: Metric) -> str | None:
    """The engineering unit a metric carries in its properties, if any."""
    if metric.properties is None:
        return None
    for key in _UNIT_PROPERTIES:
        prop = metric.properties.get(key)
        if prop is not None and isinstance(prop.value, str) and prop.value:
            return prop.value
    return None
