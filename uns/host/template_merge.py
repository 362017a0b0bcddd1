"""A Template instance's DATA merged over the instance held: Sparkplug 3.0 lets DATA carry only changed members."""

from __future__ import annotations

from model.envelope import JsonValue
from uns.normalise import TEMPLATE_INSTANCE_KEYS
from uns.sparkplug import DataType, MetricValue, Template

__all__ = ["merged_over_held"]


def merged_over_held(held: JsonValue, value: JsonValue, sent: MetricValue) -> JsonValue:
    """The whole instance to hold and republish for a live Template metric's ``value`` (its JSON), ``sent`` in DATA.

    Sparkplug 3.0: a Template instance in DATA may carry only the members that changed
    (tck-id-payloads-template-instance-members-data); the value held stays the whole instance. A value
    that is not an instance's JSON over one held (a null, the first value) is taken as it is.
    """
    if isinstance(value, dict) and isinstance(held, dict) and isinstance(sent, Template):
        return _merged_instance(held, value, sent)
    return value


def _is_instance(held: dict[str, JsonValue]) -> bool:
    """Whether a member's JSON held is a Template instance's (not a DataSet's or PropertySet's)."""
    return isinstance(held.get("metrics"), dict) and held.keys() <= TEMPLATE_INSTANCE_KEYS


def _merged_instance(held: dict[str, JsonValue], update: dict[str, JsonValue], sent: Template) -> dict[str, JsonValue]:
    """A Template instance's JSON after a DATA carrying some of its members (and parameters) over the one held.

    A member that is itself a Template instance (``sent`` names them) is one in DATA too, merged the same way
    over the instance held; over a member held as something else (its datatype changed) it is taken whole.
    """
    merged = {**held, **update}
    old, new = held.get("parameters"), update.get("parameters")
    if isinstance(old, dict) and isinstance(new, dict):
        merged["parameters"] = {**old, **new}
    old, new = held.get("metrics"), update.get("metrics")
    if isinstance(old, dict) and isinstance(new, dict):
        members = {**old, **new}
        for member in sent.metrics:
            if member.datatype is DataType.Template and isinstance(member.value, Template) and member.name in new:
                inner_old, inner_new = old.get(member.name), new[member.name]
                if isinstance(inner_old, dict) and isinstance(inner_new, dict) and _is_instance(inner_old):
                    members[member.name] = _merged_instance(inner_old, inner_new, member.value)
        merged["metrics"] = members
    return merged
