"""Topic ACL by role (DESIGN section 5): the pure policy, its counting guard, and the amqtt topic plugin."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

from amqtt.plugins.base import BaseTopicPlugin
from amqtt.session import Session

from model.broker_config import BrokerFileConfig, Role
from model.topic import TopicError, UnsTopic, at_every_depth
from uns.broker.accounts import AccountStore
from uns.broker.matcher import filter_covers, topic_matches
from uns.broker.stats import Counters
from uns.logs import RateLimitedLog

__all__ = [
    "ACTIONS",
    "FLEET_CONFIG_FILTER",
    "HUB_TOPICS",
    "STATE_FILTER",
    "AclGuard",
    "AclPolicy",
    "AclTopicPlugin",
    "Decision",
    "Principal",
    "edge_agent_grants",
    "edge_node_grants",
]

log = logging.getLogger(__name__)

ACTIONS = ("publish", "subscribe", "receive")
_NODE_TYPES = ("NBIRTH", "NDATA", "NDEATH")
_DEVICE_TYPES = ("DBIRTH", "DDATA", "DDEATH")
_COMMANDS = ("spBv1.0/+/NCMD/#", "spBv1.0/+/DCMD/#")
_SPARKPLUG = ("spBv1.0/#",)
STATE_FILTER = "spBv1.0/STATE/+"
"""Every host's STATE: a bridge reads it (to buffer while its primary host is offline), only a host writes it."""
HUB_TOPICS = ("+/hub/#", "+/unbound/#")
"""The reserved site ids: the hub's own status and unbound devices, published by the host and admin alone."""
FLEET_CONFIG_FILTER = "+/hub/edge/+/config"
"""Every edge agent's desired config: it carries the agent's connector credentials, so only the host, admin and
the agent itself read it (issue 16's security audit)."""
_MES_FILTERS = at_every_depth("mes", "#")  # below equipment of every depth
_CACHE_LIMIT = 100_000


@dataclasses.dataclass(frozen=True, slots=True)
class Principal:
    """Who a session is: the user (None when anonymous) and what that user may do."""

    user: str | None
    role: Role
    edge_nodes: tuple[str, ...] = ()
    read_sparkplug: bool = False
    host_ids: tuple[str, ...] = ()
    edge_agent: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Decision:
    """The answer to one ACL question; ``reason`` is a short key counted per denial."""

    allowed: bool
    reason: str = ""


_ALLOW = Decision(allowed=True)


@dataclasses.dataclass(frozen=True, slots=True)
class _Rules:
    publish: tuple[str, ...]
    read: tuple[str, ...]
    read_deny: tuple[tuple[str, str], ...]  # (filter, reason), checked before ``read``
    publish_denied: str  # the reason key when a publish matches nothing
    publish_deny: tuple[tuple[str, str], ...] = ()  # (filter, reason), checked before ``publish``
    publish_first: tuple[str, ...] = ()  # topics allowed before ``publish_deny`` is asked
    publish_as: tuple[tuple[str, str], ...] = ()  # (filter, class word): a UNS topic of that class matching it


class AclPolicy:
    """Pure role rules: which principal may publish, subscribe to or receive which topic.

    docs/security.md's role matrix states these rules; tests/uns/broker/test_acl_matrix.py walks it.
    """

    def __init__(
        self,
        *,
        config: BrokerFileConfig | None = None,
        app_cmd_topics: Sequence[str] = (),
        accounts: AccountStore | None = None,
    ) -> None:
        # config: accounts, anonymous role and the app role's cmd filters; without it (the web layer, which
        # asks about roles only) there are no accounts and app_cmd_topics are the app role's cmd filters
        self._config = config
        self._app_cmd_topics = tuple(config.app_cmd_topics if config is not None else app_cmd_topics)
        self._rules: dict[Principal, _Rules] = {}
        self._accounts = accounts  # enrolled edge agents, after broker.yaml's users

    @property
    def generation(self) -> int:
        """Changes whenever the runtime accounts were re-read (cached answers are then stale)."""
        return self._accounts.generation if self._accounts is not None else 0

    def principal(self, user: str | None) -> Principal | None:
        """The principal of an authenticated session's user name (None: anonymous); None if unknown."""
        if self._config is None:
            return None
        if user is None:
            return Principal(user=None, role=self._config.anonymous_role)
        account = self._config.users.get(user)
        if account is None and self._accounts is not None:
            account = self._accounts.account(user)
        if account is None:
            return None
        return Principal(
            user=user,
            role=account.role,
            edge_nodes=account.edge_nodes,
            read_sparkplug=account.read_sparkplug,
            host_ids=account.host_ids,
            edge_agent=account.edge_agent,
        )

    def decide(self, principal: Principal, action: str, topic: str) -> Decision:
        """May ``principal`` do ``action`` (publish, subscribe, receive) on ``topic`` (a filter for subscribe)?"""
        if topic.startswith("$"):
            # nobody publishes $-topics through the broker (they are the broker's own); admin and the hub's
            # components read them (the host reports what Mosquitto says it dropped, $SYS/broker/...)
            if principal.role in ("admin", "host") and action != "publish":
                return _ALLOW
            return Decision(allowed=False, reason="dollar-topic")
        if principal.role == "admin":
            return _ALLOW
        rules = self._rules_of(principal)
        if action == "publish":
            if any(topic == item for item in rules.publish_first):
                return _ALLOW
            for deny, reason in rules.publish_deny:
                if topic_matches(topic, deny):
                    return Decision(allowed=False, reason=reason)
            if any(topic_matches(topic, item) for item in rules.publish):
                return _ALLOW
            if rules.publish_as:
                # a filter's `#` also matches its parent and `+` any level: `+/+/+/+/mes/#` matches the data topic
                # acme/dallas/pack/line1/data/mes and spBv1.0/acme/NCMD/mes, so the topic's own class word decides
                class_word = _class_word(topic)
                if any(word == class_word and topic_matches(topic, item) for item, word in rules.publish_as):
                    return _ALLOW
            return Decision(allowed=False, reason=rules.publish_denied)
        # a subscription is refused only when every topic it matches is denied; delivery checks each topic
        covers = filter_covers if action == "subscribe" else _matched_by
        for deny, reason in rules.read_deny:
            if covers(deny, topic):
                return Decision(allowed=False, reason=reason)
        if any(covers(item, topic) for item in rules.read):
            return _ALLOW
        return Decision(allowed=False, reason="not-own-edge-node")

    def read_exceptions(self, principal: Principal) -> tuple[str, ...]:
        """The filters ``principal`` is refused delivery of before its read grants are asked (none for admin).

        For a role that reads ``#`` (host, app, viewer) these are where its view is cut: the web layer finds
        the subtrees to leave out of its topic tree with them and asks :meth:`decide` about each one it finds.
        ``$`` topics are refused by their own rule before these.
        """
        if principal.role == "admin":
            return ()
        return tuple(deny for deny, _ in self._rules_of(principal).read_deny)

    def _rules_of(self, principal: Principal) -> _Rules:
        rules = self._rules.get(principal)
        if rules is None:
            rules = self._rules[principal] = self._compile(principal)
        return rules

    def _compile(self, principal: Principal) -> _Rules:
        everything = ("#",)
        state_deny = ((STATE_FILTER, "host-state"),)  # only the host (and admin) may speak for the host: issue 13.4
        match principal.role:
            case "host":
                # with host_ids, only those hosts' STATE: a forged STATE takes every edge node offline
                own_state = tuple(f"spBv1.0/STATE/{host_id}" for host_id in principal.host_ids)
                return _Rules(
                    publish=everything,
                    read=everything,
                    read_deny=(),
                    publish_denied="",
                    publish_deny=state_deny if own_state else (),
                    publish_first=own_state,
                )
            case "bridge":
                publish: list[str] = []
                read = [STATE_FILTER]
                for edge_node in principal.edge_nodes:
                    node_publish, node_read = edge_node_grants(edge_node)
                    publish += node_publish
                    read += node_read
                if principal.edge_agent is not None:  # an `uns edge` agent: its own desired config and status
                    config, status = edge_agent_grants(principal.edge_agent)
                    read.append(config)
                    publish.append(status)
                return _Rules(
                    publish=tuple(publish),
                    read=tuple(read),
                    read_deny=(),
                    publish_denied="not-own-edge-node",
                    publish_deny=state_deny,
                )
            case _:
                hub = tuple((item, "hub-topic") for item in HUB_TOPICS)
                read_deny = tuple((item, "command-topic") for item in _COMMANDS)
                read_deny += ((FLEET_CONFIG_FILTER, "fleet-config"),)
                if not principal.read_sparkplug:
                    read_deny += tuple((item, "sparkplug-topic") for item in _SPARKPLUG)
                if principal.role == "app":
                    return _Rules(
                        publish=(),
                        publish_as=tuple((item, "mes") for item in _MES_FILTERS)
                        + tuple((item, "cmd") for item in self._app_cmd_topics),
                        read=everything,
                        read_deny=read_deny,
                        publish_denied="app-publish",
                        publish_deny=state_deny + hub,
                    )
                return _Rules(publish=(), read=everything, read_deny=read_deny, publish_denied="read-only")


def edge_node_grants(edge_node: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The topics a bridge publishes and reads for one of its edge nodes, ``group/node``.

    Its node's births, data and deaths and its devices' (``/+``) out; its node's and devices' commands in.
    The embedded broker's bridge role and the Mosquitto ACL of an edge agent (``uns.fleet``) both grant these.
    """
    group, node = edge_node.split("/")
    publish = (
        *(f"spBv1.0/{group}/{kind}/{node}" for kind in _NODE_TYPES),
        *(f"spBv1.0/{group}/{kind}/{node}/+" for kind in _DEVICE_TYPES),
    )
    return publish, (f"spBv1.0/{group}/NCMD/{node}", f"spBv1.0/{group}/DCMD/{node}/+")


def edge_agent_grants(agent: str) -> tuple[str, str]:
    """An ``uns edge`` agent's own hub topics: its desired config (it reads) and its status (it publishes)."""
    return f"+/hub/edge/{agent}/config", f"+/hub/edge/{agent}/status"


def _class_word(topic: str) -> str | None:
    """The class word of a valid UNS topic (its first after the equipment path), else None (Sparkplug too)."""
    try:
        return UnsTopic.from_str(topic).class_word.value
    except TopicError:
        return None


def _matched_by(topic_filter: str, topic: str) -> bool:
    return topic_matches(topic, topic_filter)


class AclGuard:
    """Applies :class:`AclPolicy` to sessions, caching answers, counting and logging denials."""

    def __init__(self, *, policy: AclPolicy, counters: Counters) -> None:
        self.policy = policy
        self._counters = counters
        self._cache: dict[tuple[str | None, str, str], Decision] = {}
        self._generation = policy.generation
        self._warn = RateLimitedLog(log)

    def allowed(self, *, client_id: str, user: str | None, action: str, topic: str) -> bool:
        """Whether the session may act on ``topic``; a denial is counted and logged (rate limited)."""
        key = (user, action, topic)
        if self.policy.generation != self._generation:  # an account was enrolled or revoked
            self._generation = self.policy.generation
            self._cache.clear()
        decision = self._cache.get(key)
        if decision is None:
            principal = self.policy.principal(user)
            if principal is None:
                decision = Decision(allowed=False, reason="unknown-user")
            else:
                decision = self.policy.decide(principal, action, topic)
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = decision
        if decision.allowed:
            return True
        self._counters.denied(action, decision.reason)
        self._warn.warning(
            f"{client_id}/{action}/{decision.reason}",
            "ACL denied %s on %r to client %s (user %s, reason %s)",
            action,
            topic,
            client_id,
            user if user is not None else "<anonymous>",
            decision.reason,
        )
        return False


class AclTopicPlugin(BaseTopicPlugin):  # type: ignore[misc]  # amqtt ships no type information
    """amqtt topic plugin enforcing :class:`AclGuard` on PUBLISH, SUBSCRIBE and RECEIVE.

    The broker subclass asks the same guard directly on its hot paths, skipping amqtt's task per plugin call.
    """

    @dataclasses.dataclass
    class Config:
        """Filled by the broker: the guard to ask."""

        guard: AclGuard

    async def topic_filtering(
        self, *, session: Session | None = None, topic: str | None = None, action: object = None
    ) -> bool:
        """Ask the guard; no session or topic means no."""
        if session is None or topic is None or action is None:
            return False
        guard: AclGuard = self.config.guard
        return guard.allowed(client_id=str(session.client_id), user=session.username, action=str(action), topic=topic)
