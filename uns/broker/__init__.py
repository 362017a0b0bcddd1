"""The embedded MQTT broker: amqtt started from broker.yaml, with auth, ACLs and limits."""

from uns.broker.acl import AclPolicy, Decision, Principal
from uns.broker.config import load_broker_config, validate_broker_config
from uns.broker.embedded import EmbeddedBroker
from uns.broker.local import LocalClient
from uns.broker.passwords import hash_password, verify_password
from uns.broker.stats import BrokerStats

__all__ = [
    "AclPolicy",
    "BrokerStats",
    "Decision",
    "EmbeddedBroker",
    "LocalClient",
    "Principal",
    "hash_password",
    "load_broker_config",
    "validate_broker_config",
    "verify_password",
]
