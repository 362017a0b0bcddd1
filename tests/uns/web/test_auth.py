from __future__ import annotations

import asyncio
import base64
import functools
import time
from collections.abc import AsyncIterator, Callable, Mapping

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import Message
from starlette.websockets import WebSocket

from model.broker_config import BrokerFileConfig, Role, UserConfig
from tests.exports import assert_all_is_honest
from tests.fixtures.passwords import quick_hash
from tests.uns.web.serving import serve_with_auth
from uns.web.auth import COOKIE, SessionCodec, SessionInvalid, WebAuth, identity_of
from uns.web.history_api import json_response
from uns.web.roles import Action, Identity, RoutePolicy, classify

SECRET = b"s" * 32
PASSWORDS: Mapping[str, tuple[str, Role]] = {
    "ada": ("ada-pw", "admin"),
    "hal": ("hal-pw", "host"),
    "amy": ("amy-pw", "app"),
    "vic": ("vic-pw", "viewer"),
    "bob": ("bob-pw", "bridge"),
}
MES_EVENT = "/api/mes/events/acme/dallas/packaging/line1/filler/mes/downtime_reason"
HISTORY = "/api/history/series"


@pytest.fixture(scope="module")
def users() -> dict[str, UserConfig]:
    return {
        name: UserConfig(password_hash=quick_hash(password), role=role) for name, (password, role) in PASSWORDS.items()
    }


def _echo(what: str) -> Callable[[Request], object]:
    async def answer(request: Request) -> Response:
        identity = identity_of(request)
        body = await request.body()
        user = identity.user if identity else None
        return json_response({"route": what, "user": user, "body": body.decode()}, 201)

    return answer


async def _page(request: Request) -> Response:
    return HTMLResponse("<h1>page</h1>")


async def _static(request: Request) -> Response:
    return PlainTextResponse("console.log(1)")


STUB_ROUTES = [
    Route("/", _page, methods=["GET"]),
    Route("/login", _page, methods=["GET"]),
    Route("/static/{name:path}", _static, methods=["GET"]),
    Route("/api/mes/events/{topic:path}", _echo("mes"), methods=["POST"]),
    Route("/api/publish", _echo("publish"), methods=["POST"]),
    Route("/api/sparkplug/rebirth", _echo("rebirth"), methods=["POST"]),
]


serve = functools.partial(serve_with_auth, routes=STUB_ROUTES)


def make_auth(users: Mapping[str, UserConfig], **options: object) -> WebAuth:
    return WebAuth(users=users, secret=SECRET, app_cmd_topics=("acme/+/+/+/+/cmd/#",), **options)  # type: ignore[arg-type]


@pytest.fixture
async def client(users) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(make_auth(users)) as http:
        yield http


async def login(client: httpx.AsyncClient, user: str) -> httpx.Response:
    response = await client.post("/api/login", json={"username": user, "password": PASSWORDS[user][0]})
    assert response.status_code == 200, response.text
    return response


# --- pure cores -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "action"),
    [
        ("GET", "/healthz", "public"),
        ("HEAD", "/healthz", "public"),
        ("GET", "/login", "public"),
        ("POST", "/api/login", "public"),
        ("POST", "/api/logout", "public"),
        ("GET", "/static/app.js", "public"),
        ("GET", "/static/../api/health", "read"),
        ("GET", "/api/me", "session"),
        ("GET", "/api/health", "read"),
        ("GET", "/", "read"),
        ("GET", "/api/mes/events/x/mes/y", "read"),
        ("POST", MES_EVENT, "mes-event"),
        ("POST", "/api/mes/events/", "write"),
        ("POST", "/api/publish", "publish"),
        ("POST", "/api/sparkplug/rebirth", "rebirth"),
        ("DELETE", "/api/mes/events/x/mes/y", "write"),
        ("POST", "/login", "write"),
        ("PUT", "/api/publish", "write"),
    ],
)
def test_classify(method: str, path: str, action: Action) -> None:
    assert classify(method, path) == action


@pytest.mark.parametrize(
    ("role", "action", "allowed"),
    [
        ("viewer", "read", True),
        ("viewer", "mes-event", False),
        ("viewer", "publish", False),
        ("app", "mes-event", True),
        ("app", "publish", True),
        ("app", "rebirth", False),
        ("app", "write", False),
        ("host", "rebirth", True),
        ("admin", "rebirth", True),
        ("admin", "write", True),
        ("bridge", "read", False),
        ("bridge", "session", True),
    ],
)
def test_grants(role: Role, action: Action, allowed: bool) -> None:
    assert RoutePolicy().allows(role, action) is allowed


@pytest.mark.parametrize(
    ("role", "topic", "allowed"),
    [
        ("app", "acme/mes/work_order", True),
        ("app", "acme/dallas/packaging/line1/filler/mes/downtime_reason", True),
        ("app", "acme/dallas/packaging/line1/filler/data/Temp", False),
        ("app", "acme/dallas/packaging/line1/filler/cmd/Speed", True),
        ("app", "acme/dallas/packaging/line1/cmd/Speed", False),
        ("app", "spBv1.0/g/NCMD/n", False),
        ("app", "acme/hub/mes/errors", False),  # matches +/+/mes/#, yet it is the hub's own
        ("app", "acme/unbound/g/n/mes/count", False),
        ("host", "acme/hub/mes/errors", True),
        ("viewer", "acme/mes/work_order", False),
        ("bridge", "acme/mes/work_order", False),
        ("host", "acme/dallas/data/x", True),
        ("host", "$SYS/broker", False),
        ("admin", "$SYS/broker", False),
        ("admin", "acme/hub/mes/errors", True),
    ],
)
def test_may_publish(role: Role, topic: str, allowed: bool) -> None:
    assert RoutePolicy(app_cmd_topics=("acme/+/+/+/+/cmd/#",)).may_publish(role, topic) is allowed


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _resign_payload(token: str, payload: dict[str, object]) -> str:
    """The token with a different payload but the old signature."""
    version, _, mac = token.split(".")
    return f"{version}.{_b64(orjson.dumps(payload))}.{mac}"


NOW_MS = 1_764_000_000_000
GOOD = Identity(user="vic", role="viewer", expires_ms=NOW_MS + 1000)


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda t: t, None),
        (lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"), "has a bad signature"),
        (lambda t: _resign_payload(t, {"u": "vic", "r": "admin", "e": NOW_MS + 1000}), "has a bad signature"),
        (lambda t: "v2" + t[2:], "is malformed"),
        (lambda t: t.replace(".", "", 1), "is malformed"),
        (lambda t: "", "is malformed"),
        (lambda t: SessionCodec(secret=b"x" * 32).encode(GOOD), "has a bad signature"),
    ],
)
def test_session_codec(mangle: Callable[[str], str], reason: str | None) -> None:
    codec = SessionCodec(secret=SECRET)
    token = mangle(codec.encode(GOOD))
    if reason is None:
        assert codec.decode(token, now_ms=NOW_MS) == GOOD
    else:
        with pytest.raises(SessionInvalid) as caught:
            codec.decode(token, now_ms=NOW_MS)
        assert caught.value.reason == reason


def test_session_codec_expiry_and_short_secret() -> None:
    codec = SessionCodec(secret=SECRET)
    token = codec.encode(GOOD)
    assert codec.decode(token, now_ms=NOW_MS + 999) == GOOD
    with pytest.raises(SessionInvalid, match="has expired"):
        codec.decode(token, now_ms=NOW_MS + 1000)
    with pytest.raises(ValueError, match="at least 16 bytes"):
        SessionCodec(secret=b"short")


def test_exports() -> None:
    for name in ("uns.web.auth", "uns.web.roles"):
        assert_all_is_honest(name)


# --- the real server ----------------------------------------------------------------------------------------------


async def test_login_sets_a_strict_httponly_cookie_and_me_answers(client) -> None:
    response = await login(client, "vic")
    assert response.json()["user"] == "vic"
    assert response.json()["role"] == "viewer"
    cookie = response.headers["set-cookie"]
    for part in ("uns_session=v1.", "HttpOnly", "SameSite=strict", "Path=/", "Max-Age=28800"):
        assert part.lower() in cookie.lower()
    me = await client.get("/api/me")
    assert me.status_code == 200
    assert me.json() == {
        "user": "vic",
        "role": "viewer",
        "expires_ms": response.json()["expires_ms"],
        "anonymous": False,
        "may": ["read"],
    }
    assert abs(me.json()["expires_ms"] - (time.time() + 8 * 3600) * 1000) < 60_000


async def test_login_with_a_form(client) -> None:
    response = await client.post("/api/login", data={"username": "amy", "password": "amy-pw"})
    assert response.status_code == 200
    me = (await client.get("/api/me")).json()
    assert (me["role"], me["may"]) == ("app", ["mes-event", "publish", "read"])


@pytest.mark.parametrize(
    ("kwargs", "status", "field", "error"),
    [
        ({"json": {"username": "vic", "password": "nope"}}, 401, "password", "wrong user name or password"),
        ({"json": {"username": "nobody", "password": "nope"}}, 401, "password", "wrong user name or password"),
        ({"json": {"password": "x"}}, 400, "username", "username: required"),
        ({"json": {"username": "vic", "password": ""}}, 400, "password", "password: required"),
        ({"json": ["vic"]}, 400, "body", "must be a JSON object"),
        ({"content": b"{oops", "headers": {"content-type": "application/json"}}, 400, "body", "not JSON"),
        ({"content": b"vic:pw", "headers": {"content-type": "text/plain"}}, 415, "body", "application/json"),
    ],
)
async def test_bad_logins(client, kwargs, status, field, error) -> None:
    response = await client.post("/api/login", **kwargs)
    assert response.status_code == status
    assert response.json()["field"] == field
    assert error in response.json()["error"]
    assert "set-cookie" not in response.headers
    assert (await client.get("/api/me")).status_code == 401


async def test_bridge_accounts_cannot_use_the_web(client) -> None:
    response = await client.post("/api/login", json={"username": "bob", "password": "bob-pw"})
    assert response.status_code == 403
    assert "role bridge" in response.json()["error"]
    assert "set-cookie" not in response.headers


async def test_unauthenticated_requests(client) -> None:
    for path in ("/healthz", "/login", "/static/app.js"):
        assert (await client.get(path)).status_code == 200, path
    for path in ("/api/me", "/api/health", HISTORY):
        response = await client.get(path)
        assert response.status_code == 401, path
        assert "not signed in" in response.json()["error"]
    page = await client.get("/?tab=oee")
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=%2F%3Ftab%3Doee"
    assert (await client.post(MES_EVENT, json={})).status_code == 401
    assert (await client.post("/api/sparkplug/rebirth", json={})).status_code == 401


async def test_session_expires(users) -> None:
    async with serve(make_auth(users, session_ttl_s=0.5)) as client:
        response = await login(client, "vic")
        assert "max-age=1" in response.headers["set-cookie"].lower()
        token = response.cookies[COOKIE]
        client.cookies.clear()
        headers = {"cookie": f"{COOKIE}={token}"}  # sent by hand: the client's own jar would drop it at Max-Age
        assert (await client.get("/api/me", headers=headers)).status_code == 200
        deadline = time.monotonic() + 5
        while (me := await client.get("/api/me", headers=headers)).status_code == 200:
            assert time.monotonic() < deadline, "session never expired"
            await asyncio.sleep(0.05)
        assert me.status_code == 401
        assert "has expired" in me.json()["error"]
        assert f'{COOKIE}=""' in me.headers["set-cookie"]  # the stale cookie is deleted
        page = await client.get("/", headers=headers)
        assert page.status_code == 303


async def test_tampered_cookie_is_refused(client) -> None:
    token = (await login(client, "vic")).cookies[COOKIE]
    client.cookies.clear()
    forged = _resign_payload(token, {"u": "vic", "r": "admin", "e": int(time.time() * 1000) + 60_000})
    response = await client.post("/api/sparkplug/rebirth", headers={"cookie": f"{COOKIE}={forged}"})
    assert response.status_code == 401
    assert "bad signature" in response.json()["error"]
    # a stale cookie never blocks logging in again
    assert (await client.get("/login", headers={"cookie": f"{COOKIE}={forged}"})).status_code == 200


async def test_logout(client) -> None:
    await login(client, "vic")
    assert (await client.get("/api/me")).status_code == 200
    response = await client.post("/api/logout")
    assert response.status_code == 200
    assert (await client.get("/api/me")).status_code == 401


async def test_viewer_reads_but_cannot_write(client) -> None:
    await login(client, "vic")
    assert (await client.get(HISTORY)).status_code == 503  # let through: the historian is off in this test
    assert (await client.get("/")).status_code == 200
    refused = await client.post(MES_EVENT, json={"reason": "jam"})
    assert refused.status_code == 403
    assert refused.json() == {
        "role": "viewer",
        "error": f"role viewer may not POST {MES_EVENT}: needs admin, host, app",
    }
    assert (await client.post("/api/publish", json={"topic": "acme/mes/x"})).status_code == 403
    assert (await client.post("/api/sparkplug/rebirth", json={})).status_code == 403


async def test_app_posts_mes_events_and_publishes_allowed_topics(client) -> None:
    await login(client, "amy")
    posted = await client.post(MES_EVENT, json={"reason": "jam"})
    assert posted.status_code == 201
    assert posted.json() == {"route": "mes", "user": "amy", "body": '{"reason":"jam"}'}
    mes_topic = "acme/dallas/packaging/line1/filler/mes/inspection"
    published = await client.post("/api/publish", json={"topic": mes_topic, "payload": "x"})
    assert published.status_code == 201
    assert orjson.loads(published.json()["body"])["topic"] == mes_topic  # the body reaches the route intact
    cmd = await client.post("/api/publish", params={"topic": "acme/dallas/packaging/line1/filler/cmd/Speed"})
    assert cmd.status_code == 201
    data = await client.post("/api/publish", json={"topic": "acme/dallas/packaging/line1/filler/data/Temp"})
    assert data.status_code == 403
    assert "may not publish on 'acme/dallas/packaging/line1/filler/data/Temp'" in data.json()["error"]
    missing = await client.post("/api/publish", json={"payload": 1})
    assert (missing.status_code, missing.json()["field"]) == (400, "topic")
    assert (await client.post("/api/sparkplug/rebirth", json={})).status_code == 403


@pytest.mark.parametrize("user", ["ada", "hal"])
async def test_admin_and_host_request_rebirths(client, user) -> None:
    await login(client, user)
    response = await client.post("/api/sparkplug/rebirth", json={"group": "g", "node": "n"})
    assert response.status_code == 201
    assert response.json()["user"] == user


async def test_nobody_publishes_dollar_topics_admin_included(client) -> None:
    for user in ("hal", "ada"):
        await login(client, user)
        assert (await client.post("/api/publish", json={"topic": "$SYS/x"})).status_code == 403
    assert (await client.post("/api/publish", json={"topic": "acme/x/data/y"})).status_code == 201


async def test_no_anonymous_access_by_default(client) -> None:
    response = await client.get("/api/health")
    assert response.status_code == 401
    assert "x-uns-anonymous-role" not in response.headers


async def test_demo_anonymous_role_viewer(users) -> None:
    async with serve(make_auth(users, allow_anonymous_role="viewer")) as client:
        me = await client.get("/api/me")
        assert me.status_code == 200
        assert me.json()["anonymous"] is True
        assert me.json()["role"] == "viewer"
        assert "ANONYMOUS ACCESS ON" in me.json()["warning"]
        assert me.headers["x-uns-anonymous-role"] == "viewer"
        health = await client.get("/api/health")
        assert health.status_code == 200
        assert health.json()["auth"]["anonymous_role"] == "viewer"
        assert (await client.get("/")).status_code == 200
        assert (await client.post(MES_EVENT, json={})).status_code == 403
        # signing in still works and lifts the anonymous role
        await login(client, "amy")
        posted = await client.post(MES_EVENT, json={})
        assert (posted.status_code, posted.json()["user"]) == (201, "amy")
        assert "x-uns-anonymous-role" not in posted.headers


async def test_demo_anonymous_role_from_broker_yaml(users) -> None:
    config = BrokerFileConfig.model_validate(
        {"listeners": {"tcp": {"bind": "127.0.0.1", "port": 0}}, "allow_anonymous": True, "anonymous_role": "admin"}
    )
    auth = WebAuth.from_broker_config(config, secret=SECRET)
    assert auth.anonymous_role == "admin"
    async with serve(auth) as client:
        response = await client.post("/api/sparkplug/rebirth", json={})
        assert response.status_code == 201
        assert response.headers["x-uns-anonymous-role"] == "admin"
    closed = config.model_copy(update={"allow_anonymous": False})
    assert WebAuth.from_broker_config(closed, secret=SECRET).anonymous_role is None


async def test_failed_logins_lock_the_user(users) -> None:
    # a 1.5 s window: three (cheap-hash) argon2 checks on a loaded CI box must fit in it, or no lock is reached
    auth = make_auth(users, max_failures_per_user=3, failure_window_s=1.5)
    async with serve(auth) as client:
        for _ in range(3):
            bad = await client.post("/api/login", json={"username": "vic", "password": "guess"})
            assert bad.status_code == 401
        locked = await client.post("/api/login", json={"username": "vic", "password": "vic-pw"})
        assert locked.status_code == 429
        assert 1 <= int(locked.headers["retry-after"]) <= 2
        assert "too many failed logins for user 'vic'" in locked.json()["error"]
        await login(client, "amy")  # another user from the same address is not locked
        deadline = time.monotonic() + 10
        while (
            again := await client.post("/api/login", json={"username": "vic", "password": "vic-pw"})
        ).status_code != 200:
            assert again.status_code == 429
            assert time.monotonic() < deadline, "lock never lifted"
            await asyncio.sleep(0.1)
        health = (await client.get("/api/health")).json()["auth"]
        assert health["login_failed"] == 3
        assert health["login_throttled"] >= 1
        assert health["login_ok"] == 2


async def test_failed_logins_lock_the_address_across_users(users) -> None:
    async with serve(make_auth(users, max_failures_per_address=3)) as client:
        for user in ("u1", "u2", "u3"):
            assert (await client.post("/api/login", json={"username": user, "password": "x"})).status_code == 401
        locked = await client.post("/api/login", json={"username": "vic", "password": "vic-pw"})
        assert locked.status_code == 429
        assert "from 127.0.0.1" in locked.json()["error"]


async def test_parallel_guesses_all_count(users) -> None:
    async with serve(make_auth(users, max_failures_per_user=3)) as client:
        guesses = [client.post("/api/login", json={"username": "vic", "password": f"g{n}"}) for n in range(8)]
        statuses = sorted(response.status_code for response in await asyncio.gather(*guesses))
        assert statuses == [401, 401, 401, 429, 429, 429, 429, 429]


async def test_sessions_survive_a_restart_with_the_same_secret_unless_the_account_changed(users) -> None:
    async with serve(make_auth(users)) as first:
        token = (await login(first, "vic")).cookies[COOKIE]
    headers = {"cookie": f"{COOKIE}={token}"}
    async with serve(make_auth(users)) as again:
        assert (await again.get("/api/me", headers=headers)).json()["user"] == "vic"
    promoted = {**users, "vic": users["vic"].model_copy(update={"role": "app"})}
    async with serve(make_auth(promoted)) as changed:
        response = await changed.get("/api/me", headers=headers)
        assert response.status_code == 401
        assert "changed role" in response.json()["error"]
    async with serve(WebAuth(users=users, secret=b"k" * 32)) as other_secret:
        assert (await other_secret.get("/api/me", headers=headers)).status_code == 401


async def _websocket_outcome(auth: WebAuth, cookie: str | None) -> Message:
    """Open a WebSocket on the middleware directly (uvicorn serves no WebSockets yet); the first message sent."""

    async def live(websocket: WebSocket) -> None:
        await websocket.accept()

    app = Starlette(routes=[WebSocketRoute("/api/live", live)], middleware=auth.middleware())
    headers = [(b"host", b"127.0.0.1:8080")]
    headers += [(b"cookie", f"{COOKIE}={cookie}".encode())] if cookie else []
    scope = {
        "type": "websocket",
        "path": "/api/live",
        "headers": headers,
        "query_string": b"",
        "subprotocols": [],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
    }
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent[0]


async def test_websockets_need_a_reading_role(users) -> None:
    auth = make_auth(users)
    codec = SessionCodec(secret=SECRET)
    expires = int(time.time() * 1000) + 60_000
    viewer = codec.encode(Identity(user="vic", role="viewer", expires_ms=expires))
    bridge = codec.encode(Identity(user="bob", role="bridge", expires_ms=expires))
    assert (await _websocket_outcome(auth, viewer))["type"] == "websocket.accept"
    for cookie in (None, bridge, viewer[:-3] + "AAA"):
        refused = await _websocket_outcome(auth, cookie)
        assert (refused["type"], refused["code"]) == ("websocket.close", 1008)
    anonymous = make_auth(users, allow_anonymous_role="viewer")
    assert (await _websocket_outcome(anonymous, None))["type"] == "websocket.accept"


async def test_cross_site_writes_are_refused(client) -> None:
    await login(client, "amy")
    own = str(client.base_url).rstrip("/")
    assert (await client.post(MES_EVENT, json={}, headers={"origin": own})).status_code == 201
    for headers in ({"origin": "http://evil.example"}, {"origin": "null"}, {"sec-fetch-site": "cross-site"}):
        refused = await client.post(MES_EVENT, json={}, headers=headers)
        assert refused.status_code == 403, headers
        assert refused.json()["field"] == "origin"
    login_csrf = await client.post(
        "/api/login", data={"username": "ada", "password": "ada-pw"}, headers={"origin": "http://evil.example"}
    )
    assert login_csrf.status_code == 403
    # reading stays possible: browsers send Origin on some GETs too, and GET changes nothing
    assert (await client.get("/api/me", headers={"origin": "http://evil.example"})).status_code == 200


@pytest.mark.parametrize(
    "forwarded",
    [{"x-forwarded-for": "203.0.113.7"}, {"forwarded": "for=203.0.113.7"}, {"x-real-ip": "203.0.113.7"}],
)
async def test_anonymous_role_not_for_requests_through_an_untrusted_proxy(users, forwarded) -> None:
    # a reverse proxy on this machine (nginx's default Host is its proxy_pass address) relays the network:
    # the peer and the Host are loopback, only the forwarding header tells the request came from elsewhere
    auth = make_auth(users, allow_anonymous_role="admin")
    async with serve(auth) as client:
        relayed = await client.post("/api/sparkplug/rebirth", headers={"host": "127.0.0.1:8080", **forwarded})
        assert relayed.status_code == 401
        assert relayed.headers.get("x-uns-anonymous-role") is None
        assert (await client.get("/api/me", headers=forwarded)).status_code == 401
        local = await client.post("/api/sparkplug/rebirth", headers={"host": "127.0.0.1:8080"})
        assert local.status_code == 201


@pytest.mark.parametrize(("from_network", "status"), [(False, 401), (True, 201)])
async def test_anonymous_role_only_for_requests_naming_this_machine(users, from_network, status) -> None:
    auth = make_auth(users, allow_anonymous_role="admin", anonymous_from_network=from_network)
    async with serve(auth) as client:
        # a DNS-rebound page: the browser on this machine, but the Host is the attacker's name
        rebound = await client.post("/api/sparkplug/rebirth", headers={"host": "evil.example"})
        assert rebound.status_code == status
        for host in ("localhost", "127.0.0.1:1"):
            assert (await client.post("/api/sparkplug/rebirth", headers={"host": host})).status_code == 201
