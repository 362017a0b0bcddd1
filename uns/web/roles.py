"""Who may call which HTTP route: the DESIGN section 5 roles as a pure policy table for the web layer.

A request is first sorted into one :data:`Action` by method and path (:func:`classify`), then the role's
grants say yes or no (:meth:`RoutePolicy.allows`). Publishing is the one action that also depends on
the topic (:meth:`RoutePolicy.may_publish`), which the broker's ACL policy (``uns.broker.acl``) decides.

| action      | requests                                                      | roles                    |
| ----------- | ------------------------------------------------------------- | ------------------------ |
| `public`    | `GET /healthz`, `GET /login`, `POST /api/login`, `POST /api/logout`, `GET /static/...` | anyone |
| `session`   | `GET /api/me`                                                 | any signed-in role       |
| `read`      | any other `GET` / `HEAD` (API and pages)                      | viewer, app, host, admin |
| `mes-event` | `POST /api/mes/events/<topic>`, `POST /api/alarms/ack`         | app, host, admin         |
| `publish`   | `POST /api/publish` (topic checked per role)                  | app, host, admin         |
| `rebirth`   | `POST /api/sparkplug/rebirth`                                 | host, admin              |
| `write`     | any other method on any other path                            | host, admin              |

The ``bridge`` role has no business in the web layer: it gets ``session`` only.

Reading a topic's data (the topic cache's tree, payloads, search, streams, Sparkplug status, an edge
agent's config) is one more question, per topic: the web shows a role exactly what the broker would
deliver to it, so :meth:`RoutePolicy.access` answers with the broker's own policy
(``AclPolicy.decide(principal, "receive", topic)``) for the identity's principal (its role and its
account's ``read_sparkplug``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Literal

from model.broker_config import Role
from uns.broker.acl import AclPolicy, Principal

__all__ = [
    "ACTIONS",
    "GRANTS",
    "SPARKPLUG_GRANT",
    "UNRESTRICTED",
    "Action",
    "Identity",
    "RoutePolicy",
    "TopicAccess",
    "classify",
    "is_api",
]

Action = Literal["public", "session", "read", "mes-event", "publish", "rebirth", "write"]
ACTIONS: tuple[Action, ...] = ("public", "session", "read", "mes-event", "publish", "rebirth", "write")

_EVERYTHING: frozenset[Action] = frozenset(ACTIONS)
GRANTS: Mapping[Role, frozenset[Action]] = {
    "admin": _EVERYTHING,
    "host": _EVERYTHING,
    "app": frozenset({"public", "session", "read", "mes-event", "publish"}),
    "viewer": frozenset({"public", "session", "read"}),
    "bridge": frozenset({"public", "session"}),
}
"""What each role may do in the web layer."""

_READ_METHODS = frozenset({"GET", "HEAD"})
_PUBLIC_EXACT: frozenset[tuple[str, str]] = frozenset(
    {
        ("GET", "/healthz"),
        ("GET", "/login"),
        ("GET", "/favicon.ico"),
        ("POST", "/api/login"),
        ("POST", "/api/logout"),  # clears a cookie: harmless for anyone, and must work with an expired one
    }
)
_PUBLIC_PREFIXES = ("/static/",)
_EXACT_ACTIONS: Mapping[tuple[str, str], Action] = {
    ("GET", "/api/me"): "session",
    ("POST", "/api/publish"): "publish",
    ("POST", "/api/sparkplug/rebirth"): "rebirth",
    ("POST", "/api/alarms/ack"): "mes-event",  # an operator's input, like a downtime reason
}
_MES_EVENTS = "/api/mes/events/"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Identity:
    """Who a request comes from.

    Attributes:
        user: the user name, or None for an anonymous request let in by ``allow_anonymous_role``.
        role: what the user may do (DESIGN section 5).
        expires_ms: when the session ends (Unix ms); None for anonymous.
        read_sparkplug: the account may read raw Sparkplug (roles app and viewer; anonymous never).
    """

    user: str | None
    role: Role
    expires_ms: int | None
    read_sparkplug: bool = False
    """The account's ``read_sparkplug`` in broker.yaml, read at each request (never from the cookie)."""

    @property
    def anonymous(self) -> bool:
        """Whether nobody signed in (the loopback demo)."""
        return self.user is None


SPARKPLUG_GRANT = "read_sparkplug: true on its account in broker.yaml, or role host or admin"
"""What lets a role read raw Sparkplug (``spBv1.0/...``), for refusals."""


@dataclasses.dataclass(frozen=True, slots=True)
class TopicAccess:
    """Which topics one identity may read: the broker's answers for its principal (``policy`` None: all)."""

    policy: AclPolicy | None
    principal: Principal

    @property
    def everything(self) -> bool:
        """Whether nothing is hidden from it (admin, host, or a server without the auth middleware)."""
        return self.policy is None or (self.principal.role in ("admin", "host") and not self.hidden_filters)

    @property
    def hidden_filters(self) -> tuple[str, ...]:
        """The broker's filters this reader is refused (``$`` topics apart): where its view of the tree is cut."""
        return () if self.policy is None else self.policy.read_exceptions(self.principal)

    def may_read(self, topic: str) -> bool:
        """Whether the broker would deliver a message on ``topic`` to this reader."""
        return self.policy is None or self.policy.decide(self.principal, "receive", topic).allowed

    def may_read_any(self, topic_filter: str) -> bool:
        """Whether the broker would deliver this reader any topic ``topic_filter`` matches (a subscription's answer)."""
        return self.policy is None or self.policy.decide(self.principal, "subscribe", topic_filter).allowed

    def hides_subtree(self, path: str) -> bool:
        """Whether every topic at and under ``path`` is refused (``""``: the whole tree)."""
        return not self.may_read_any(f"{path}/#" if path else "#")


UNRESTRICTED = TopicAccess(policy=None, principal=Principal(user=None, role="admin"))
"""The access of a request no auth middleware looked at (a server built without ``WebAuth``: tests, embedding)."""


def is_api(path: str) -> bool:
    """Whether ``path`` is an API call (answered 401 JSON) rather than a page (redirected to ``/login``)."""
    return path == "/api" or path.startswith("/api/")


def classify(method: str, path: str) -> Action:
    """The action a request asks for, from its method and path alone."""
    method = "GET" if method == "HEAD" else method
    if (method, path) in _PUBLIC_EXACT:
        return "public"
    if method == "GET" and path.startswith(_PUBLIC_PREFIXES) and ".." not in path:
        return "public"
    exact = _EXACT_ACTIONS.get((method, path))
    if exact is not None:
        return exact
    if method in _READ_METHODS:
        return "read"
    if method == "POST" and path.startswith(_MES_EVENTS) and len(path) > len(_MES_EVENTS):
        return "mes-event"
    return "write"


class RoutePolicy:
    """The role rules of the web layer; ``app_cmd_topics`` are broker.yaml's cmd filters for the app role."""

    def __init__(self, *, app_cmd_topics: Sequence[str] = ()) -> None:
        self._acl = AclPolicy(app_cmd_topics=app_cmd_topics)

    def allows(self, role: Role, action: Action) -> bool:
        """Whether ``role`` may do ``action`` (for ``publish``, the topic is checked by :meth:`may_publish`)."""
        return action in GRANTS[role]

    def may_publish(self, role: Role, topic: str) -> bool:
        """Whether ``role`` may publish on ``topic`` through the web layer: the broker's ACL answers."""
        return self._acl.decide(Principal(user=None, role=role), "publish", topic).allowed

    def access(self, identity: Identity) -> TopicAccess:
        """What ``identity`` may read, asked of the broker's policy with its role and ``read_sparkplug``."""
        principal = Principal(user=None, role=identity.role, read_sparkplug=identity.read_sparkplug)
        return TopicAccess(policy=self._acl, principal=principal)

    def needs(self, action: Action) -> tuple[Role, ...]:
        """The roles granted ``action``, for error messages."""
        return tuple(role for role, grants in GRANTS.items() if action in grants)
