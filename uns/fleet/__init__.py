"""Edge fleet, the hub's side: each agent's versioned desired config, its enrolment and the fleet's topics.

The agent that applies a version runs bridges, so it lives in ``bridges.fleet``; nothing here imports bridge code.
"""

from uns.fleet.enrolment import AgentAccount, account_of, enrol, revoke
from uns.fleet.store import FleetStore, config_hash, validate_agent_config
from uns.fleet.topics import config_topic, status_topic

__all__ = [
    "AgentAccount",
    "FleetStore",
    "account_of",
    "config_hash",
    "config_topic",
    "enrol",
    "revoke",
    "status_topic",
    "validate_agent_config",
]
