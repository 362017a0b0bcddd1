"""The plant file: the ISA-95 Part 2 equipment hierarchy, declared metrics and Sparkplug bindings."""

from __future__ import annotations

import dataclasses
import difflib
import re
import zoneinfo
from collections.abc import Sequence
from typing import Annotated, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError, ValidationError

from model.sparkplug_ids import SparkplugId
from model.topic import SLUG_PATTERN, ClassWord, TopicError, UnsTopic, is_slug

__all__ = [
    "RESERVED_IDS",
    "RESERVED_SITE_IDS",
    "Area",
    "Cell",
    "Enterprise",
    "Equipment",
    "Line",
    "MetricMeta",
    "Plant",
    "ResolvedPath",
    "Site",
    "SparkplugBinding",
    "slug",
]

RESERVED_IDS = frozenset(word.value for word in ClassWord)
"""No equipment id may be a class word (``data``, ``mes``, ``kpi``, ``cmd``)."""

RESERVED_SITE_IDS = frozenset({"hub", "unbound"})
"""The hub publishes its health under ``<enterprise>/hub/...`` and unbound devices under
``<enterprise>/unbound/...``, so no site may take these ids."""

_SLUG_MAX = 64
_NOT_SLUG_CHARS = re.compile(r"[^a-z0-9_-]")


def slug(text: str) -> str:
    """Turn any Sparkplug id into an equipment-path level: lossy, documented.

    Lower-cases, maps every character outside ``[a-z0-9_-]`` to ``-``, strips leading ``-``/``_``
    and cuts to 64 characters; an empty result becomes ``_``. Different ids can map to the same
    slug (``Filler 1`` and ``filler-1``); bind such devices explicitly in the plant file.
    """
    out = _NOT_SLUG_CHARS.sub("-", text.lower()).lstrip("-_")[:_SLUG_MAX]
    return out or "_"


def _check_id(value: str) -> str:
    if not is_slug(value):
        raise ValueError(
            f"id {value!r} is not a slug: use a-z, 0-9, '_' and '-', starting with a letter or digit, "
            f"at most {_SLUG_MAX} characters"
        )
    if value in RESERVED_IDS:
        raise ValueError(f"id {value!r} is a reserved class word ({', '.join(sorted(RESERVED_IDS))}); pick another")
    return value


def _check_site_id(value: str) -> str:
    if value in RESERVED_SITE_IDS:
        raise ValueError(
            f"site id {value!r} is reserved: the hub publishes under <enterprise>/{value}/...; pick another"
        )
    return value


def _check_timezone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"timezone {value!r} is not an IANA time zone (e.g. 'America/Chicago', 'UTC')") from None
    return value


_ID_SCHEMA = {"pattern": SLUG_PATTERN, "not": {"enum": sorted(RESERVED_IDS)}}
_Id = Annotated[
    str,
    AfterValidator(_check_id),
    Field(description="Slug id, unique among siblings; not a class word.", json_schema_extra=_ID_SCHEMA),
]
_SiteId = Annotated[_Id, AfterValidator(_check_site_id)]
_SparkplugId = SparkplugId


class MetricMeta(BaseModel):
    """What the plant file declares about one metric at one equipment level."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    unit: str | None = Field(default=None, description="Engineering unit as a string, e.g. degC, bar, bpm, kWh.")
    description: str = Field(default="", description="What the metric measures.")
    datatype: str | None = Field(default=None, description='Expected Sparkplug datatype name, e.g. "Float".')


class _Level(BaseModel):
    """Fields every level of the hierarchy shares."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: _Id
    name: str = Field(default="", description="Display name; the id is shown when empty.")
    metrics: dict[str, MetricMeta] = Field(
        default_factory=dict,
        description="Declared metric metadata by metric name (Sparkplug '/' levels allowed).",
    )

    @field_validator("metrics")
    @classmethod
    def _metric_names(cls, metrics: dict[str, MetricMeta]) -> dict[str, MetricMeta]:
        for name in metrics:
            try:
                UnsTopic.for_metric("x", name)
            except TopicError as exc:
                raise ValueError(f"metric name {name!r}: {exc.reason}") from None
        return metrics


class Cell(_Level):
    """A work cell: one machine or station (filler, capper, palletizer, ...)."""

    description: str = Field(default="", description="What the cell does.")


class Line(_Level):
    """A production line, made of cells."""

    cells: list[Cell] = Field(default_factory=list, description="The line's work cells.")


class Area(_Level):
    """An area of a site, made of lines."""

    lines: list[Line] = Field(default_factory=list, description="The area's production lines.")


class Site(_Level):
    """A site (a factory), made of areas."""

    id: Annotated[_SiteId, Field(description="Slug id; not a class word, 'hub' or 'unbound'.")]
    timezone: Annotated[str, AfterValidator(_check_timezone)] = Field(
        default="UTC", description="IANA time zone of the site, e.g. America/Chicago."
    )
    areas: list[Area] = Field(default_factory=list, description="The site's areas.")


class Enterprise(_Level):
    """The company: the root of every UNS topic."""

    sites: list[Site] = Field(default_factory=list, description="The enterprise's sites.")


Equipment = Enterprise | Site | Area | Line | Cell
"""Any level of the hierarchy."""


class SparkplugBinding(BaseModel):
    """Binds a Sparkplug edge node or device to an equipment path.

    A node-level binding (``device`` omitted) places the node's own metrics (NBIRTH/NDATA). It does
    not cover the node's devices: each device needs its own binding, or it is published under the
    unbound default path (see ``Plant.resolve``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    group: _SparkplugId = Field(description="Sparkplug group id.")
    node: _SparkplugId = Field(description="Sparkplug edge node id.")
    device: _SparkplugId | None = Field(default=None, description="Sparkplug device id; omit to bind the node.")
    path: str = Field(
        description="Equipment path in the plant tree, 1 to 5 levels, e.g. acme/dallas/packaging/line3/palletizer."
    )


@dataclasses.dataclass(frozen=True, slots=True)
class ResolvedPath:
    """Where a Sparkplug node or device appears in the UNS.

    Attributes:
        path: the equipment path.
        bound: False when no binding names the device and ``path`` is the unbound default.
    """

    path: str
    bound: bool


_BindingKey = tuple[str, str, str | None]
_Loc = tuple[str | int, ...]


class Plant(BaseModel):
    """The whole plant file: the equipment tree and the Sparkplug bindings.

    Besides the checks on each field, the plant checks that sibling ids are unique, that every
    binding names a path in the tree, and that no (group, node, device) is bound twice.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enterprise: Enterprise = Field(description="The equipment tree, rooted at the enterprise.")
    bindings: list[SparkplugBinding] = Field(
        default_factory=list, description="Sparkplug (group, node, device) to equipment path."
    )

    _equipment: dict[str, Equipment] = PrivateAttr(default_factory=dict)
    _bindings: dict[_BindingKey, str] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _check_tree(self) -> Self:
        problems: list[InitErrorDetails] = []
        self._equipment = _index_tree(self.enterprise, problems)
        self._bindings = _index_bindings(self.bindings, self._equipment, problems)
        if problems:
            raise ValidationError.from_exception_data(type(self).__name__, problems)
        return self

    def equipment_paths(self) -> set[str]:
        """Every equipment path in the tree, from ``acme`` to ``acme/dallas/bottling/line1/filler``."""
        return set(self._equipment)

    def line_outputs(self) -> dict[str, str]:
        """Line path -> its last cell's path: the cell whose counts are the line's output (MES views)."""
        out: dict[str, str] = {}
        enterprise = self.enterprise
        for site in enterprise.sites:
            for area in site.areas:
                for line in area.lines:
                    if line.cells:
                        path = f"{enterprise.id}/{site.id}/{area.id}/{line.id}"
                        out[path] = f"{path}/{line.cells[-1].id}"
        return out

    def equipment(self, path: str) -> Equipment | None:
        """The enterprise, site, area, line or cell at ``path``, or None."""
        return self._equipment.get(path)

    def resolve(self, group: str, node: str, device: str | None = None) -> ResolvedPath:
        """Where a Sparkplug node (``device`` None) or device publishes in the UNS.

        A bound one gets its binding's path. Anything else gets the unbound default
        ``<enterprise>/unbound/<slug(group)>/<slug(node)>[/<slug(device)>]`` (see ``slug``).
        """
        path = self._bindings.get((group, node, device))
        if path is not None:
            return ResolvedPath(path=path, bound=True)
        levels = [self.enterprise.id, "unbound", slug(group), slug(node)]
        if device is not None:
            levels.append(slug(device))
        return ResolvedPath(path="/".join(levels), bound=False)

    def metric_meta(self, path: str, metric_name: str) -> MetricMeta | None:
        """The metadata the plant file declares for a metric at exactly this path, or None."""
        level = self._equipment.get(path)
        return None if level is None else level.metrics.get(metric_name)

    def unit_of(self, path: str, metric_name: str) -> str | None:
        """The declared unit of a metric at exactly this path, or None."""
        meta = self.metric_meta(path, metric_name)
        return None if meta is None else meta.unit


def _children(level: Equipment) -> tuple[str, Sequence[Equipment]]:
    if isinstance(level, Enterprise):
        return "sites", level.sites
    if isinstance(level, Site):
        return "areas", level.areas
    if isinstance(level, Area):
        return "lines", level.lines
    if isinstance(level, Line):
        return "cells", level.cells
    return "", []


def _dotted(loc: _Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _problem(loc: _Loc, value: object, message: str) -> InitErrorDetails:
    # the message is a format string for pydantic: braces in ids or paths must not be read as fields
    safe = message.replace("{", "{{").replace("}", "}}")
    return InitErrorDetails(type=PydanticCustomError("plant", safe), loc=loc, input=value)


def _index_tree(enterprise: Enterprise, problems: list[InitErrorDetails]) -> dict[str, Equipment]:
    """Map each path to its level, reporting ids used twice among siblings (in file order)."""
    index: dict[str, Equipment] = {enterprise.id: enterprise}
    _index_children(enterprise, enterprise.id, ("enterprise",), index, problems)
    return index


def _index_children(
    level: Equipment, path: str, loc: _Loc, index: dict[str, Equipment], problems: list[InitErrorDetails]
) -> None:
    field, children = _children(level)
    first: dict[str, int] = {}
    for i, child in enumerate(children):
        child_loc = (*loc, field, i)
        child_path = f"{path}/{child.id}"
        if child.id in first:
            where = _dotted((*loc, field, first[child.id]))
            message = f"duplicate id {child.id!r}: {child_path} is already declared at {where}"
            problems.append(_problem((*child_loc, "id"), child.id, message))
            continue
        first[child.id] = i
        index[child_path] = child
        _index_children(child, child_path, child_loc, index, problems)


def _index_bindings(
    bindings: list[SparkplugBinding], tree: dict[str, Equipment], problems: list[InitErrorDetails]
) -> dict[_BindingKey, str]:
    """Map each (group, node, device) to its path, reporting unknown paths and repeats."""
    index: dict[_BindingKey, str] = {}
    first: dict[_BindingKey, int] = {}
    for i, binding in enumerate(bindings):
        key = (binding.group, binding.node, binding.device)
        if key in first:
            what = f"group {binding.group!r} node {binding.node!r}"
            if binding.device is not None:
                what += f" device {binding.device!r}"
            problems.append(_problem(("bindings", i), None, f"{what} is already bound by bindings[{first[key]}]"))
            continue
        first[key] = i
        if binding.path not in tree:
            hint = difflib.get_close_matches(binding.path, tree, n=1)
            suffix = f"; did you mean {hint[0]!r}?" if hint else ""
            problems.append(
                _problem(("bindings", i, "path"), binding.path, f"no equipment at {binding.path!r}{suffix}")
            )
            continue
        index[key] = binding.path
    return index
