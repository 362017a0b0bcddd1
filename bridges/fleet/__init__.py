"""Edge fleet, the agent's side: ``uns edge`` runs bridges from the versioned desired config the hub publishes.

It lives in ``bridges/`` because the agent runs bridges (it imports ``bridges.registry``). The hub's side,
the version store, enrolment and the two topics, is ``uns.fleet``: it needs no bridge code.
"""

from bridges.fleet.agent import EdgeAgent
from bridges.fleet.bridgeset import BridgeSet, BridgeStartError

__all__ = ["BridgeSet", "BridgeStartError", "EdgeAgent"]
