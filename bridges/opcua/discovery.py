"""Browse-based discovery: every variable below a root node, named by its browse path."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Final

from asyncua import ua
from asyncua.client.client import Client
from asyncua.ua.object_ids import ObjectIds

__all__ = ["FoundVariable", "browse_variables", "metric_name"]

log = logging.getLogger(__name__)

_CHUNK: Final = 500
"""Nodes per Browse request: well below the usual MaxNodesPerBrowse of servers."""

_HAS_PROPERTY: Final = ua.NodeId(ua.Int32(ObjectIds.HasProperty))


@dataclasses.dataclass(frozen=True, slots=True)
class FoundVariable:
    """A variable found below a browse root."""

    path: tuple[str, ...]
    """Browse names from just below the root down to the variable."""
    node_id: ua.NodeId

    @property
    def name(self) -> str:
        """The metric name: the browse path joined with ``/``."""
        return metric_name(self.path)


def metric_name(path: Sequence[str]) -> str:
    """Join browse names into a Sparkplug metric name; a ``/`` inside one name becomes ``_``."""
    return "/".join(part.replace("/", "_") for part in path)


def _description(node_id: ua.NodeId) -> ua.BrowseDescription:
    desc = ua.BrowseDescription()
    desc.NodeId = node_id
    desc.BrowseDirection = ua.BrowseDirection.Forward
    desc.ReferenceTypeId = ua.NodeId(ua.Int32(ObjectIds.HierarchicalReferences))
    desc.IncludeSubtypes = True
    desc.NodeClassMask = ua.NodeClass.Object | ua.NodeClass.Variable
    desc.ResultMask = ua.BrowseResultMask.All
    return desc


async def _browse(client: Client, node_ids: Sequence[ua.NodeId]) -> list[list[ua.ReferenceDescription]]:
    """Forward hierarchical references of each node, following continuation points."""
    found: list[list[ua.ReferenceDescription]] = []
    for start in range(0, len(node_ids), _CHUNK):
        params = ua.BrowseParameters()
        params.View = ua.ViewDescription()
        params.RequestedMaxReferencesPerNode = 0
        params.NodesToBrowse = [_description(node_id) for node_id in node_ids[start : start + _CHUNK]]
        for result in await client.uaclient.browse(params):
            references = list(result.References or [])
            point = result.ContinuationPoint
            while point:
                more = ua.BrowseNextParameters()
                more.ContinuationPoints = [point]
                (next_result,) = await client.uaclient.browse_next(more)
                references.extend(next_result.References or [])
                point = next_result.ContinuationPoint
            found.append(references)
    return found


def _remote(node_id: ua.NodeId) -> bool:
    # Decoded references are plain NodeIds unless the server set an expanded part.
    return isinstance(node_id, ua.ExpandedNodeId) and bool(node_id.NamespaceUri or node_id.ServerIndex)


async def browse_variables(client: Client, root: ua.NodeId, *, max_depth: int) -> list[FoundVariable]:
    """Every variable up to ``max_depth`` levels below ``root``, breadth first.

    Follows hierarchical references (Organizes, HasComponent, ...) into objects and variables,
    but not HasProperty: properties such as EngineeringUnits describe a variable, they are not
    metrics. A node reached twice (the address space is a graph) is kept once, by its first path.
    """
    seen = {root}
    level: list[tuple[tuple[str, ...], ua.NodeId]] = [((), root)]
    variables: list[FoundVariable] = []
    for _ in range(max_depth):
        if not level:
            break
        results = await _browse(client, [node_id for _, node_id in level])
        next_level: list[tuple[tuple[str, ...], ua.NodeId]] = []
        for (path, _), references in zip(level, results, strict=True):
            for ref in references:
                if ref.ReferenceTypeId == _HAS_PROPERTY or _remote(ref.NodeId):
                    continue  # properties, and nodes on other servers
                node_id = ua.NodeId(ref.NodeId.Identifier, ref.NodeId.NamespaceIndex, ref.NodeId.NodeIdType)
                if node_id in seen:
                    continue
                seen.add(node_id)
                child = (*path, ref.BrowseName.Name or str(node_id.Identifier))
                if ref.NodeClass == ua.NodeClass.Variable:
                    variables.append(FoundVariable(path=child, node_id=node_id))
                next_level.append((child, node_id))
        level = next_level
    log.debug("browse of %s found %d variables", root.to_string(), len(variables))
    return variables
