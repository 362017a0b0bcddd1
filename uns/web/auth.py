"""Login, signed session cookies, failed-login throttling and role enforcement for every HTTP route.

A session is a cookie ``uns_session=v1.<payload>.<mac>``: the payload (user, role, expiry) in base64url
JSON, the MAC HMAC-SHA256 over it with the hub's secret. The server keeps no session state, so a
restart with the same secret keeps everyone signed in, and logging out only deletes the cookie
(a copied cookie stays good until it expires: keep ``session_ttl_s`` short where that matters).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import dataclasses
import hashlib
import hmac
import logging
import math
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Self

import orjson
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from model.broker_config import ROLES, BrokerFileConfig, Role, UserConfig, is_loopback
from uns.broker.passwords import DUMMY_HASH, verify_password
from uns.clock import now_ms
from uns.errors import UnsError
from uns.logs import RateLimitedLog
from uns.web.history_api import json_response
from uns.web.roles import GRANTS, UNRESTRICTED, Action, Identity, RoutePolicy, TopicAccess, classify, is_api
from uns.web.throttle import FailureLimiter

__all__ = [
    "ANONYMOUS_WARNING",
    "COOKIE",
    "SessionCodec",
    "SessionInvalid",
    "WebAuth",
    "count_refusal",
    "identity_of",
    "topic_access",
]

log = logging.getLogger(__name__)

COOKIE = "uns_session"
ANONYMOUS_WARNING = "ANONYMOUS ACCESS ON: demo only, anyone on this machine has role {role} (see broker.yaml)"
_VERSION = "v1"
_MIN_SECRET = 16
_MAX_LOGIN_BODY = 16_384
_MAX_PUBLISH_BODY = 1_048_576 + 65_536  # the broker's default payload limit plus room for the JSON around it
_STATE_KEY = "uns_identity"
_ACCESS_KEY = "uns_topic_access"
_AUTH_KEY = "uns_web_auth"
_ANONYMOUS_HEADER = b"x-uns-anonymous-role"
_POLICY_VIOLATION = 1008  # WebSocket close code


class SessionInvalid(UnsError):
    """A session cookie is malformed, tampered with, expired or no longer matches its account."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"session cookie {reason}: sign in again at /login")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionCodec:
    """Signs and checks session tokens (pure: the caller passes the time)."""

    def __init__(self, *, secret: bytes) -> None:
        if len(secret) < _MIN_SECRET:
            raise ValueError(f"session secret must be at least {_MIN_SECRET} bytes (got {len(secret)})")
        self._secret = secret

    def _mac(self, signed: str) -> str:
        return _b64(hmac.new(self._secret, signed.encode("ascii"), hashlib.sha256).digest())

    def encode(self, identity: Identity) -> str:
        """The token for a signed-in ``identity`` (which must have a user and an expiry)."""
        if identity.user is None or identity.expires_ms is None:
            raise ValueError("only a signed-in user with an expiry gets a session token")
        payload = _b64(orjson.dumps({"u": identity.user, "r": identity.role, "e": identity.expires_ms}))
        signed = f"{_VERSION}.{payload}"
        return f"{signed}.{self._mac(signed)}"

    def decode(self, token: str, *, now_ms: int) -> Identity:
        """The identity in ``token``; raises :class:`SessionInvalid` saying why it is not good."""
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != _VERSION:
            raise SessionInvalid("is malformed")
        signed = f"{parts[0]}.{parts[1]}"
        if not hmac.compare_digest(self._mac(signed), parts[2]):
            raise SessionInvalid("has a bad signature")
        try:
            fields = orjson.loads(_unb64(parts[1]))
        except (binascii.Error, ValueError) as exc:  # a signed payload never fails here unless the secret leaked
            raise SessionInvalid("has an unreadable payload") from exc
        if not isinstance(fields, dict):
            raise SessionInvalid("has an unreadable payload")
        user, role, expires = fields.get("u"), fields.get("r"), fields.get("e")
        if not isinstance(user, str) or role not in ROLES or not isinstance(expires, int):
            raise SessionInvalid("has an unreadable payload")
        if expires <= now_ms:
            raise SessionInvalid("has expired")
        return Identity(user=user, role=role, expires_ms=expires)


def identity_of(request: HTTPConnection) -> Identity | None:
    """Who sent ``request``, as the auth middleware found out; None on public routes without a session."""
    found = request.scope.get("state", {}).get(_STATE_KEY)
    return found if isinstance(found, Identity) else None


def topic_access(connection: HTTPConnection) -> TopicAccess:
    """Which topics the sender of ``connection`` may read (:class:`TopicAccess`), as the auth middleware found.

    A server without the middleware (no ``WebAuth``: tests, embedding) has no roles: everything.
    """
    found = connection.scope.get("state", {}).get(_ACCESS_KEY)
    return found if isinstance(found, TopicAccess) else UNRESTRICTED


def count_refusal(connection: HTTPConnection, reason: str, *, count: str = "forbidden") -> None:
    """Count (as ``count`` in the auth's health) and log, rate-limited, a read a route refuses by topic.

    The middleware counts what it refuses by route; a route that refuses what a topic holds (Sparkplug
    status, an agent's config) says so here. Nothing without the middleware.
    """
    auth = connection.scope.get("state", {}).get(_AUTH_KEY)
    if isinstance(auth, WebAuth):
        auth.refused(identity_of(connection), reason, count=count)


def _identity_document(identity: Identity) -> dict[str, object]:
    document: dict[str, object] = {
        "user": identity.user,
        "role": identity.role,
        "expires_ms": identity.expires_ms,
        "anonymous": identity.anonymous,
        # what the page may offer this user (the server still checks every request)
        "may": sorted(GRANTS[identity.role] - {"public", "session"}),
    }
    if identity.anonymous:
        document["warning"] = ANONYMOUS_WARNING.format(role=identity.role)
    return document


class WebAuth:
    """Login, sessions and roles for the web UI and every HTTP API (DESIGN section 5).

    Args:
        users: the accounts of broker.yaml by user name (argon2 ``password_hash`` and ``role``).
        secret: key of the cookie signatures, at least 16 bytes; a random one per start signs everyone
            out at restart, a configured one keeps sessions across restarts.
        session_ttl_s: how long a session lasts after login.
        allow_anonymous_role: the role of requests without a session (broker.yaml's ``anonymous_role``
            when ``allow_anonymous`` is on), or None to require a login.
        anonymous_from_network: give ``allow_anonymous_role`` to requests from other machines too
            (broker.yaml's ``anonymous_on_network``); by default only loopback requests that name a
            loopback host get it, which also defeats DNS rebinding from a web page.
        app_cmd_topics: broker.yaml's cmd filters the app role may publish to.
        secure_cookie: always mark the cookie ``Secure``; without it, it is ``Secure`` on requests that
            came over HTTPS (served with TLS, or ``X-Forwarded-Proto: https`` from a trusted proxy).
        max_failures_per_user: failed logins per user name within ``failure_window_s`` before it is locked.
        max_failures_per_address: the same per client address.
        failure_window_s: the sliding window of the failure counts.
        max_tracked_logins: user names (and, apart, addresses) whose failures are tracked at most;
            past it the oldest unlocked one is forgotten, and when all are locked a new one gets 429.
    """

    def __init__(
        self,
        *,
        users: Mapping[str, UserConfig],
        secret: bytes,
        session_ttl_s: float = 8 * 3600.0,
        allow_anonymous_role: Role | None = None,
        anonymous_from_network: bool = False,
        app_cmd_topics: Sequence[str] = (),
        secure_cookie: bool = False,
        max_failures_per_user: int = 5,
        max_failures_per_address: int = 20,
        failure_window_s: float = 300.0,
        max_tracked_logins: int = 10_000,
    ) -> None:
        if session_ttl_s <= 0:
            raise ValueError(f"session_ttl_s must be > 0 (got {session_ttl_s})")
        self._users = dict(users)
        self._codec = SessionCodec(secret=secret)
        self._ttl_s = session_ttl_s
        self.anonymous_role = allow_anonymous_role
        self._anonymous_from_network = anonymous_from_network
        self.policy = RoutePolicy(app_cmd_topics=app_cmd_topics)
        self._secure = secure_cookie
        window, most = failure_window_s, max_tracked_logins
        self._by_user = FailureLimiter(limit=max_failures_per_user, window_s=window, max_keys=most)
        self._by_address = FailureLimiter(limit=max_failures_per_address, window_s=window, max_keys=most)
        self._argon2 = asyncio.Semaphore(2)  # argon2 is CPU- and memory-heavy: a login flood must not starve the hub
        self.warn = RateLimitedLog(log)
        self.counts: collections.Counter[str] = collections.Counter()

    @classmethod
    def from_broker_config(cls, config: BrokerFileConfig, *, secret: bytes, session_ttl_s: float = 8 * 3600.0) -> Self:
        """Accounts, anonymous role and app cmd topics taken from broker.yaml."""
        return cls(
            users=config.users,
            secret=secret,
            session_ttl_s=session_ttl_s,
            allow_anonymous_role=config.anonymous_role if config.allow_anonymous else None,
            anonymous_from_network=config.anonymous_on_network,
            app_cmd_topics=config.app_cmd_topics,
        )

    def routes(self) -> list[Route]:
        """``POST /api/login``, ``POST /api/logout`` and ``GET /api/me``."""
        return [
            Route("/api/login", self._login, methods=["POST"], name="login"),
            Route("/api/logout", self._logout, methods=["POST"], name="logout"),
            Route("/api/me", self._me, methods=["GET"], name="me"),
        ]

    def middleware(self) -> list[Middleware]:
        """The middleware that enforces the roles on every route; pass it to ``WebServer(middleware=...)``."""
        return [Middleware(_AuthMiddleware, auth=self)]

    def health(self) -> dict[str, object]:
        """Counts of logins, refusals and denials, the failure trackers' sizes, and the anonymous role."""
        trackers = {
            "login_tracked_users": len(self._by_user),
            "login_tracked_addresses": len(self._by_address),
            "login_tracker_evicted": self._by_user.evicted + self._by_address.evicted,
        }
        return {"anonymous_role": self.anonymous_role, **trackers, **self.counts}

    def refused(self, identity: Identity | None, reason: str, *, count: str = "forbidden") -> None:
        """Count a refusal as ``count`` and log it (rate-limited per user and reason)."""
        self.counts[count] += 1
        who = identity.user if identity is not None and identity.user is not None else "<anonymous>"
        self.warn.warning(f"{count}/{who}/{reason}", "web request refused for user %s: %s", who, reason)

    # --- sessions -------------------------------------------------------------------------------------------

    def identify(self, token: str | None, *, local: bool) -> Identity | None:
        """The identity of a request with session cookie ``token`` (None: not signed in).

        Args:
            token: the session cookie, or None when the request has none.
            local: whether the request comes from this machine and names it in its Host header; the
                anonymous role only applies to such requests unless ``anonymous_from_network`` is set.

        Raises:
            SessionInvalid: the cookie is malformed, tampered with, expired, or its account changed.
        """
        if token is None:
            if self.anonymous_role is None or not (local or self._anonymous_from_network):
                return None
            return Identity(user=None, role=self.anonymous_role, expires_ms=None)
        identity = self._codec.decode(token, now_ms=now_ms())
        account = self._users.get(identity.user or "")
        if account is None or account.role != identity.role:
            raise SessionInvalid("belongs to an account that was removed or changed role")
        return dataclasses.replace(identity, read_sparkplug=account.read_sparkplug)

    def _secure_for(self, request: HTTPConnection) -> bool:
        """Whether the cookie gets ``Secure``: always when configured, else when the request came over HTTPS."""
        return self._secure or request.url.scheme in ("https", "wss")

    def _set_cookie(self, request: HTTPConnection, response: Response, identity: Identity) -> None:
        response.set_cookie(
            COOKIE,
            self._codec.encode(identity),
            max_age=math.ceil(self._ttl_s),
            path="/",
            httponly=True,
            samesite="strict",
            secure=self._secure_for(request),
        )

    def clear_cookie(self, request: HTTPConnection, response: Response) -> None:
        """Make the browser drop its session cookie."""
        secure = self._secure_for(request)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict", secure=secure)

    # --- routes ---------------------------------------------------------------------------------------------

    async def _login(self, request: Request) -> Response:
        form = await _login_form(request)
        if isinstance(form, Response):
            self.counts["login_bad_request"] += 1
            return form
        user, password = form
        address = request.client.host if request.client else "unknown"
        keys = ((self._by_user, f"user:{user}"), (self._by_address, f"address:{address}"))
        now = time.monotonic()
        wait = max(limiter.retry_after(key, now) for limiter, key in keys)
        if wait > 0:
            self.counts["login_throttled"] += 1
            self.warn.warning(
                f"throttled/{user}/{address}", "login throttled for user %r from %s: too many failures", user, address
            )
            seconds = math.ceil(wait)
            message = f"too many failed logins for user {user!r} or from {address}: try again in {seconds} s"
            response = json_response({"error": message, "retry_after_s": seconds}, 429)
            response.headers["Retry-After"] = str(seconds)
            return response
        room = max(limiter.admit(key, now) for limiter, key in keys)
        if room > 0:
            # every tracked name is locked: refusing a new one keeps the locks (evicting them would free them)
            self.counts["login_tracker_full"] += 1
            self.warn.warning(
                "tracker-full", "login refused for user %r from %s: every tracked login is locked", user, address
            )
            seconds = math.ceil(room)
            message = f"too many locked logins: new user names or addresses may try again in {seconds} s"
            response = json_response({"error": message, "retry_after_s": seconds}, 429)
            response.headers["Retry-After"] = str(seconds)
            return response
        for limiter, key in keys:
            limiter.fail(key, now)  # counted before the slow check, so parallel guesses all count
        account = self._users.get(user)
        if not await self._verify(password, account.password_hash if account else None) or account is None:
            self.counts["login_failed"] += 1
            self.warn.warning(f"failed/{user}/{address}", "login failed for user %r from %s", user, address)
            return json_response({"error": "wrong user name or password", "field": "password"}, 401)
        self._by_user.forgive(keys[0][1], all_of_them=True)
        self._by_address.forgive(keys[1][1])
        if not self.policy.allows(account.role, "read"):
            self.counts["login_no_web_role"] += 1
            reason = f"user {user!r} has role {account.role}, which has no access to the web UI"
            return json_response({"error": reason, "role": account.role}, 403)
        expires_ms = now_ms() + int(self._ttl_s * 1000)
        identity = Identity(user=user, role=account.role, expires_ms=expires_ms)
        self.counts["login_ok"] += 1
        log.info("web login: user %s (role %s) from %s", user, account.role, address)
        response = json_response(_identity_document(identity))
        self._set_cookie(request, response, identity)
        return response

    async def _verify(self, password: str, hashed: str | None) -> bool:
        async with self._argon2:
            if hashed is None:
                # an unknown user costs the same time as a wrong password, from the first: no probing for names
                await asyncio.to_thread(verify_password, password, DUMMY_HASH)
                return False
            return await asyncio.to_thread(verify_password, password, hashed)

    async def _logout(self, request: Request) -> Response:
        response = json_response({"user": None})
        self.clear_cookie(request, response)
        return response

    async def _me(self, request: Request) -> Response:
        identity = identity_of(request)
        if identity is None:  # only when mounted without the middleware
            return json_response({"error": "not signed in: POST /api/login"}, 401)
        return json_response(_identity_document(identity))


async def _login_form(request: Request) -> tuple[str, str] | Response:
    """``(username, password)`` from a JSON or urlencoded body, or the error response naming the field."""
    body = await request.body()
    if len(body) > _MAX_LOGIN_BODY:
        return json_response({"error": f"login body larger than {_MAX_LOGIN_BODY} bytes", "field": "body"}, 413)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    fields: dict[str, object]
    if kind == "application/json":
        try:
            loaded = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return json_response({"error": f"login body is not JSON: {exc}", "field": "body"}, 400)
        if not isinstance(loaded, dict):
            return json_response({"error": "login body must be a JSON object", "field": "body"}, 400)
        fields = loaded
    elif kind == "application/x-www-form-urlencoded":
        try:
            pairs = urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            return json_response({"error": "login form is not UTF-8", "field": "body"}, 400)
        fields = dict(pairs)
    else:
        reason = "send the login as application/json or application/x-www-form-urlencoded"
        return json_response({"error": f"{reason} (got {kind or 'no content type'})", "field": "body"}, 415)
    found: list[str] = []
    for name in ("username", "password"):
        value = fields.get(name)
        if not isinstance(value, str) or not value:
            return json_response({"error": f"{name}: required, a non-empty string", "field": name}, 400)
        found.append(value)
    return found[0], found[1]


class _AuthMiddleware:
    """Pure ASGI middleware: who is calling, and may they do what they ask (rules in :mod:`uns.web.roles`)."""

    def __init__(self, app: ASGIApp, *, auth: WebAuth) -> None:
        self._app = app
        self._auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
            return
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        request = Request(scope, receive)
        method, path = request.method, request.url.path
        action = classify(method, path)
        token = request.cookies.get(COOKIE)
        try:
            identity = self._auth.identify(token, local=_is_local(request))
        except SessionInvalid as exc:
            if action == "public":
                identity = None  # a stale cookie must not block the login page or logging out
            else:
                self._auth.counts["session_invalid"] += 1
                await self._unauthenticated(request, str(exc), clear=True)(scope, receive, send)
                return
        self._remember(scope, identity)
        if method not in ("GET", "HEAD") and _cross_site(request):
            self._auth.counts["cross_site"] += 1
            reason = f"cross-site {method} {path} from {request.headers.get('origin')!r} refused"
            await json_response({"error": reason, "field": "origin"}, 403)(scope, receive, send)
            return
        if action != "public":
            refusal = await self._refusal(request, identity, action)
            if isinstance(refusal, Response):
                await refusal(scope, receive, send)
                return
            receive = refusal
        if identity is not None and identity.anonymous:
            send = _mark_anonymous(send, identity.role)
        await self._app(scope, receive, send)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A WebSocket is a live read: it needs a role that may read, or it is closed before it opens."""
        websocket = WebSocket(scope, receive, send)
        try:
            identity = self._auth.identify(websocket.cookies.get(COOKIE), local=_is_local(websocket))
        except SessionInvalid:
            identity = None
        if identity is None or not self._auth.policy.allows(identity.role, "read"):
            self._auth.counts["forbidden" if identity else "unauthenticated"] += 1
            await websocket.close(code=_POLICY_VIOLATION, reason="sign in at /login with a role that may read")
            return
        self._remember(scope, identity)
        await self._app(scope, receive, send)

    def _remember(self, scope: Scope, identity: Identity | None) -> None:
        """Keep who is asking, and what they may read, for the routes (``identity_of``, ``topic_access``)."""
        state = scope.setdefault("state", {})
        state[_STATE_KEY] = identity
        state[_AUTH_KEY] = self._auth
        # nobody signed in (only public routes get here): the narrowest reading role, never more by mistake
        state[_ACCESS_KEY] = self._auth.policy.access(identity or Identity(user=None, role="viewer", expires_ms=None))

    async def _refusal(self, request: Request, identity: Identity | None, action: Action) -> Response | Receive:
        """The response refusing the request, or the ``receive`` to pass on when it is allowed."""
        method, path = request.method, request.url.path
        if identity is None:
            self._auth.counts["unauthenticated"] += 1
            return self._unauthenticated(request, "not signed in: POST /api/login first", clear=False)
        policy = self._auth.policy
        if not policy.allows(identity.role, action):
            needs = ", ".join(policy.needs(action))
            return self._forbidden(request, identity, f"role {identity.role} may not {method} {path}: needs {needs}")
        if action != "publish":
            return request.receive
        body, receive = await _buffer_body(request)
        if body is None:
            return json_response({"error": f"publish body larger than {_MAX_PUBLISH_BODY} bytes", "field": "body"}, 413)
        topic = _publish_topic(request, body)
        if topic is None:
            return json_response({"error": "topic: required, a non-empty string", "field": "topic"}, 400)
        if not policy.may_publish(identity.role, topic):
            reason = f"role {identity.role} may not publish on {topic!r}"
            if identity.role == "app":
                reason += ": only .../mes/<event> topics and broker.yaml's app_cmd_topics"
            return self._forbidden(request, identity, reason)
        return receive

    def _unauthenticated(self, request: Request, reason: str, *, clear: bool) -> Response:
        response: Response
        if is_api(request.url.path) or request.method not in ("GET", "HEAD"):
            response = json_response({"error": reason}, 401)
            response.headers["WWW-Authenticate"] = 'Cookie realm="uns-hub", form="/login"'
        else:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            response = RedirectResponse("/login?" + urllib.parse.urlencode({"next": target}), status_code=303)
        if clear:
            self._auth.clear_cookie(request, response)
        return response

    def _forbidden(self, request: Request, identity: Identity, reason: str) -> Response:
        self._auth.refused(identity, reason)
        return json_response({"error": reason, "role": identity.role}, 403)


_FORWARDING_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")


def _is_local(connection: HTTPConnection) -> bool:
    """Whether the peer is this machine and the Host header names it (a DNS-rebound page names another).

    A request a reverse proxy relays is not local, even from a proxy on this machine that sends a loopback
    Host (nginx's default): it carries a forwarding header, which nobody on this machine needs to send.
    """
    if any(name in connection.headers for name in _FORWARDING_HEADERS):
        return False
    peer = connection.client.host if connection.client else ""
    host = connection.url.hostname or ""
    return is_loopback(peer) and is_loopback(host.strip("[]"))


def _cross_site(request: Request) -> bool:
    """Whether a browser says the request comes from another site's page (CSRF, even without cookies)."""
    if request.headers.get("sec-fetch-site") == "cross-site":
        return True
    origin = request.headers.get("origin")
    if origin is None:
        return False  # not a browser, or a same-origin request from an old one
    return urllib.parse.urlsplit(origin).netloc != request.headers.get("host")


async def _buffer_body(request: Request) -> tuple[bytes | None, Receive]:
    """The whole body (None past the limit) and a ``receive`` that replays it to the app."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > _MAX_PUBLISH_BODY:
            return None, request.receive
        chunks.append(chunk)
    body = b"".join(chunks)
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await request.receive()

    return body, replay


def _publish_topic(request: Request, body: bytes) -> str | None:
    """The topic of a publish request: ``?topic=`` or the JSON body's ``topic``."""
    topic: object = request.query_params.get("topic")
    if not topic:
        try:
            document = orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            return None
        topic = document.get("topic") if isinstance(document, dict) else None
    return topic if isinstance(topic, str) and topic else None


def _mark_anonymous(send: Send, role: Role) -> Send:
    """Tag every response to an anonymous request, so no client can miss that nobody signed in."""

    async def marked(message: Message) -> None:
        if message["type"] == "http.response.start":
            MutableHeaders(scope=message).append(_ANONYMOUS_HEADER.decode(), role)
        await send(message)

    return marked
