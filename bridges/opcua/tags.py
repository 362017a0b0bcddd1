"""Resolve a bridge config against a server: configured nodes and browsed subtrees become tags."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Final, Literal

from asyncua import ua
from asyncua.client.client import Client
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.uaerrors import UaError

from bridges.opcua.discovery import browse_variables
from bridges.opcua.mapping import (
    Converter,
    converter_for,
    datatype_for_variant,
    variant_for_datatype,
    variant_for_datatype_id,
)
from bridges.source import TagSpec
from model.bridges import OpcUaBridgeConfig, OpcUaNode
from uns.sparkplug import DataType

__all__ = ["OpcUaTag", "parse_node_id", "resolve_tags", "static_tags"]

log = logging.getLogger(__name__)

_CHUNK: Final = 1000
"""Nodes per Read or TranslateBrowsePaths request."""


@dataclasses.dataclass(frozen=True, slots=True)
class OpcUaTag:
    """One tag and where it lives on the server."""

    spec: TagSpec
    node_id: ua.NodeId
    mode: Literal["subscribe", "poll"]
    sampling_interval_ms: float
    variant: ua.VariantType
    """The node's own value type: what a write sends."""
    convert: Converter

    @property
    def node(self) -> str:
        """The node id as text, for logs and errors."""
        return self.node_id.to_string()


def parse_node_id(text: str) -> ua.NodeId:
    """Parse ``ns=2;s=Filler.Temperature``; raises ValueError naming the text."""
    try:
        return ua.NodeId.from_string(text)
    except (UaError, ValueError) as exc:
        raise ValueError(f"not a node id: {text!r}") from exc


@dataclasses.dataclass(slots=True)
class _Candidate:
    device: str
    name: str
    node_id: ua.NodeId
    mode: Literal["subscribe", "poll"]
    sampling_interval_ms: float
    configured: OpcUaNode | None = None
    variant: ua.VariantType | None = None
    unit: str | None = None


def _make_tag(candidate: _Candidate, variant: ua.VariantType, datatype: DataType) -> OpcUaTag:
    node = candidate.configured
    spec = TagSpec(
        device=candidate.device,
        name=candidate.name,
        datatype=datatype,
        unit=node.unit if node is not None and node.unit is not None else candidate.unit,
        writable=node.writable if node is not None else False,
        deadband=node.deadband if node is not None else 0.0,
        description=candidate.node_id.to_string(),
    )
    return OpcUaTag(
        spec=spec,
        node_id=candidate.node_id,
        mode=candidate.mode,
        sampling_interval_ms=candidate.sampling_interval_ms,
        variant=variant,
        convert=converter_for(datatype, variant),
    )


def static_tags(config: OpcUaBridgeConfig) -> list[OpcUaTag] | None:
    """Tags from the config alone, or None when the server must be asked (browse roots, datatypes left out)."""
    tags: list[OpcUaTag] = []
    for device in config.devices:
        if device.browse:
            return None
        for node in device.nodes:
            if node.datatype is None:
                return None
            datatype = DataType[node.datatype]
            candidate = _Candidate(device.id, node.name, parse_node_id(node.node_id), node.mode,
                                   node.sampling_interval_ms, configured=node)  # fmt: skip
            tags.append(_make_tag(candidate, variant_for_datatype(datatype), datatype))
    return tags


async def _read(client: Client, node_ids: Sequence[ua.NodeId], attribute: AttributeIds) -> list[ua.DataValue]:
    values: list[ua.DataValue] = []
    for start in range(0, len(node_ids), _CHUNK):
        values.extend(await client.uaclient.read_attributes(list(node_ids[start : start + _CHUNK]), attribute))
    return values


async def _candidates(client: Client, config: OpcUaBridgeConfig) -> list[_Candidate]:
    found: list[_Candidate] = []
    for device in config.devices:
        names: set[str] = set()
        for node in device.nodes:
            names.add(node.name)
            found.append(_Candidate(device.id, node.name, parse_node_id(node.node_id), node.mode,
                                    node.sampling_interval_ms, configured=node))  # fmt: skip
        for root in device.browse:
            for variable in await browse_variables(client, parse_node_id(root.root), max_depth=root.max_depth):
                if variable.name in names:
                    log.warning("opcua bridge %s: device %s: %s (%s) skipped: metric name %r already taken",
                                config.name, device.id, variable.node_id.to_string(), root.root,
                                variable.name)  # fmt: skip
                    continue
                names.add(variable.name)
                found.append(_Candidate(device.id, variable.name, variable.node_id, root.mode,
                                        root.sampling_interval_ms))  # fmt: skip
    return found


async def _fill_variants(client: Client, candidates: list[_Candidate]) -> None:
    """Each candidate's variant type: from its DataType attribute, else from the type of its current value."""
    types = await _read(client, [c.node_id for c in candidates], AttributeIds.DataType)
    unknown: list[_Candidate] = []
    for candidate, value in zip(candidates, types, strict=True):
        type_id = value.Value.Value if value.Value is not None else None
        if isinstance(type_id, ua.NodeId):
            candidate.variant = variant_for_datatype_id(type_id.NamespaceIndex, type_id.Identifier)
        if candidate.variant is None:
            unknown.append(candidate)
    if unknown:
        for candidate, value in zip(unknown, await _read(client, [c.node_id for c in unknown],
                                                         AttributeIds.Value), strict=True):  # fmt: skip
            if value.Value is not None and value.Value.VariantType is not ua.VariantType.Null:
                candidate.variant = value.Value.VariantType


async def _fill_units(client: Client, candidates: list[_Candidate]) -> None:
    """Each candidate's EngineeringUnits property (its DisplayName), where the config names no unit."""
    wanted = [c for c in candidates if c.configured is None or c.configured.unit is None]
    if not wanted:
        return
    target = ua.RelativePath.from_string("0:EngineeringUnits")
    found: list[tuple[_Candidate, ua.NodeId]] = []
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        paths = [ua.BrowsePath(StartingNode=c.node_id, RelativePath=target) for c in chunk]
        for candidate, result in zip(chunk, await client.uaclient.translate_browsepaths_to_nodeids(paths),
                                     strict=True):  # fmt: skip
            if result.StatusCode.is_good() and result.Targets:
                target_id = result.Targets[0].TargetId
                found.append((candidate, ua.NodeId(target_id.Identifier, target_id.NamespaceIndex)))
    values = await _read(client, [node_id for _, node_id in found], AttributeIds.Value)
    for (candidate, _), value in zip(found, values, strict=True):
        info = value.Value.Value if value.Value is not None else None
        if isinstance(info, ua.EUInformation) and info.DisplayName is not None and info.DisplayName.Text:
            candidate.unit = info.DisplayName.Text


async def resolve_tags(client: Client, config: OpcUaBridgeConfig) -> list[OpcUaTag]:
    """Every tag of every device: configured nodes first, then browsed ones, in config order.

    A configured node the server does not know keeps its tag when the config gives its datatype
    (its quality stays bad until the node appears) and is left out with a WARNING otherwise; a
    browsed variable of a type with no Sparkplug counterpart (arrays, structures) is left out.
    """
    candidates = await _candidates(client, config)
    await _fill_variants(client, candidates)
    await _fill_units(client, candidates)
    tags: list[OpcUaTag] = []
    for candidate in candidates:
        node = candidate.configured
        declared = DataType[node.datatype] if node is not None and node.datatype is not None else None
        variant = candidate.variant
        if variant is None and declared is not None:
            variant = variant_for_datatype(declared)
        datatype = declared or (datatype_for_variant(variant) if variant is not None else None)
        if variant is None or datatype is None:
            where = f"{candidate.device}/{candidate.name} ({candidate.node_id.to_string()})"
            if node is not None:
                log.warning("opcua bridge %s: %s left out: the server gives no usable type (%s); set its datatype",
                            config.name, where, variant.name if variant is not None else "node unknown")  # fmt: skip
            else:
                log.debug("opcua bridge %s: %s skipped: no scalar Sparkplug type", config.name, where)
            continue
        tags.append(_make_tag(candidate, variant, datatype))
    return tags
