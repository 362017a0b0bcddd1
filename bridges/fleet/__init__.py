"""Edge fleet: ``uns edge`` agents running bridges from a versioned desired config the hub publishes.

It lives in ``bridges/`` because the agent runs bridges (it imports ``bridges.registry``); the hub's
side (the version store, deploy) needs nothing of the hub's internals either.
"""

from bridges.fleet.agent import EdgeAgent
from bridges.fleet.bridgeset import BridgeSet, BridgeStartError
from bridges.fleet.enrolment import AgentAccount, account_of, enrol, revoke
from bridges.fleet.store import FleetStore, config_hash, validate_agent_config
from bridges.fleet.topics import config_topic, status_topic

__all__ = [
    "AgentAccount",
    "BridgeSet",
    "BridgeStartError",
    "EdgeAgent",
    "FleetStore",
    "account_of",
    "config_hash",
    "config_topic",
    "enrol",
    "revoke",
    "status_topic",
    "validate_agent_config",
]
