"""``uns up --hand-off NODE=AGENT``: a bridge the hub would run moves into an edge agent's desired config instead.

The hub stops running it (it is left out of the bridges ``uns up`` starts) and stores the agent's
next version with that bridge in it (replacing one with the same edge node id), which ``uns up``
publishes retained on the agent's config topic; ``uns edge --id AGENT`` started beside the hub then
runs it. A restart with the same bridge config adds no version.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from model.bridges import BridgeConfig
from model.fleet import DesiredVersion
from model.topic import SLUG_PATTERN
from uns.errors import ConfigError
from uns.fleet import FleetStore, config_hash, validate_agent_config

__all__ = ["hand_off", "parse_hand_offs"]

_FLAG = "--hand-off"
_SLUG = re.compile(SLUG_PATTERN)


def parse_hand_offs(items: Sequence[str]) -> dict[str, str]:
    """``["NODE=AGENT", ...]`` as ``{node: agent}``; ``ConfigError`` naming the item that is not one."""
    found: dict[str, str] = {}
    for item in items:
        node, _sep, agent = item.partition("=")
        if not node or not _SLUG.fullmatch(agent):
            raise ConfigError(source="command line", path=_FLAG, value=item, reason="write NODE=AGENT (AGENT a slug)")
        found[node] = agent
    return found


def hand_off(
    configs: Sequence[BridgeConfig], hand_offs: Mapping[str, str], store: FleetStore, *, author: str = "uns up"
) -> tuple[list[BridgeConfig], list[DesiredVersion]]:
    """The bridges the hub keeps, and each receiving agent's desired version (new, or its latest if unchanged).

    Raises:
        ConfigError: a named edge node is not among ``configs``, or its config does not survive JSON
            (a secret would be lost: such a bridge is configured on the agent by ``uns fleet deploy``).
    """
    by_node = {config.node_id: config for config in configs}
    missing = sorted(set(hand_offs) - set(by_node))
    if missing:
        reason = f"no bridge with that edge node id; the hub's bridges are {', '.join(sorted(by_node))}"
        raise ConfigError(source="command line", path=_FLAG, value=missing[0], reason=reason)
    versions: list[DesiredVersion] = []
    for agent in sorted(set(hand_offs.values())):
        moved = [by_node[node] for node, to in hand_offs.items() if to == agent]
        latest = store.latest(agent)
        bridges = [dict(b) for b in _bridges(latest)]  # the agent's other bridges stay
        kept = [b for b in bridges if _node_of(b) not in {config.node_id for config in moved}]
        config: dict[str, object] = {"bridges": [*kept, *(_as_json(c) for c in moved)]}
        if latest is not None and config_hash(config) == latest.hash:
            versions.append(latest)
            continue
        note = "handed off by uns up: " + ", ".join(c.node_id for c in moved)
        versions.append(store.deploy(agent, config, author=author, note=note))
    return [c for c in configs if c.node_id not in hand_offs], versions


def _bridges(latest: DesiredVersion | None) -> list[Mapping[str, object]]:
    found = latest.config.get("bridges") if latest is not None else None
    return [b for b in found if isinstance(b, Mapping)] if isinstance(found, list) else []


def _node_of(bridge: Mapping[str, object]) -> str | None:
    edge = bridge.get("edge")
    node = edge.get("node") if isinstance(edge, Mapping) else None
    name = bridge.get("name")
    return str(node) if node else str(name) if name else None


def _as_json(config: BridgeConfig) -> dict[str, object]:
    dumped: dict[str, object] = config.model_dump(mode="json", exclude_defaults=True)
    dumped["kind"] = config.kind  # the discriminator, even where it is a default
    back = validate_agent_config({"bridges": [dumped]}, f"{_FLAG} {config.node_id}").bridges[0]
    if back != config:
        reason = "its config does not survive JSON (a secret?): deploy it to the agent with uns fleet deploy"
        raise ConfigError(source="command line", path=_FLAG, value=config.node_id, reason=reason)
    return dumped
