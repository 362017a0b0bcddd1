"""Web hardening against a running server: throttling that proxies headers and made-up names cannot bypass,
security headers on every response, a Secure cookie over HTTPS (TLS or a trusted proxy's), no inline script."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from pathlib import Path

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from model.broker_config import Role, UserConfig
from tests.exports import assert_all_is_honest
from tests.fixtures.passwords import quick_hash
from tests.fixtures.tls import self_signed_cert
from tests.uns.web.serving import serve_with_auth, serving
from uns.errors import ConfigError
from uns.web import WebServer
from uns.web.auth import COOKIE, WebAuth
from uns.web.headers import CONTENT_SECURITY_POLICY
from uns.web.pages import STATIC_DIR, page_routes
from uns.web.proxy import TrustedProxies
from uns.web.throttle import FailureLimiter

SECRET = b"h" * 32
PASSWORDS: Mapping[str, tuple[str, Role]] = {"vic": ("vic-pw", "viewer"), "amy": ("amy-pw", "app")}
NO_ADDRESS_LIMIT = 10_000


@pytest.fixture(scope="module")
def users() -> dict[str, UserConfig]:
    return {name: UserConfig(password_hash=quick_hash(pw), role=role) for name, (pw, role) in PASSWORDS.items()}


serve = functools.partial(serve_with_auth, routes=page_routes())


def make_auth(users: Mapping[str, UserConfig], **options: object) -> WebAuth:
    return WebAuth(users=users, secret=SECRET, **options)  # type: ignore[arg-type]


async def attempt(client: httpx.AsyncClient, user: str, password: str, **headers: str) -> httpx.Response:
    return await client.post("/api/login", json={"username": user, "password": password}, headers=headers)


@pytest.mark.parametrize("module", ["uns.web.headers", "uns.web.proxy", "uns.web.throttle"])
def test_exports(module: str) -> None:
    assert_all_is_honest(module)


@pytest.mark.parametrize(
    ("trusted", "peer", "forwarded", "client"),
    [
        ((), "127.0.0.1", "10.0.0.9", "127.0.0.1"),  # nobody is trusted by default, loopback included
        (("127.0.0.1",), "127.0.0.1", "10.0.0.9", "10.0.0.9"),
        (("127.0.0.1",), "127.0.0.1", None, "127.0.0.1"),
        (("127.0.0.1",), "10.0.0.7", "10.0.0.9", "10.0.0.7"),  # the header of an untrusted peer is ignored
        (("127.0.0.1", "10.1.0.0/16"), "127.0.0.1", "6.6.6.6, 10.0.0.9, 10.1.2.3", "10.0.0.9"),  # spoofed left part
        (("127.0.0.0/8",), "127.0.0.1", "127.0.0.2", "127.0.0.2"),  # only proxies: the leftmost hop
        (("::1",), "::1", "2001:db8::5", "2001:db8::5"),
    ],
)
def test_trusted_proxies_client(trusted: tuple[str, ...], peer: str, forwarded: str | None, client: str) -> None:
    assert TrustedProxies(trusted).client(peer, forwarded) == client


def test_a_bad_trusted_proxy_names_the_setting() -> None:
    with pytest.raises(ConfigError, match=r"web\.trusted_proxies: trusted proxy 'proxy\.lan' is not an IP"):
        WebServer(bind="127.0.0.1", port=0, health={}, history=None, trusted_proxies=["proxy.lan"])


# --- point 8: throttling bypasses -----------------------------------------------------------------------------


def test_the_tracker_evicts_the_oldest_unlocked_key_and_never_a_lock() -> None:
    tracker = FailureLimiter(limit=2, window_s=100.0, max_keys=3)
    for key, at in (("locked", 0.0), ("locked", 1.0), ("old", 2.0), ("new", 3.0)):
        assert tracker.admit(key, at) == 0.0
        tracker.fail(key, at)
    assert tracker.admit("fake1", 4.0) == 0.0  # evicts "old", passing over the older but locked key
    tracker.fail("fake1", 4.0)
    assert tracker.retry_after("locked", 4.0) == 96.0
    assert tracker.retry_after("old", 4.0) == 0.0
    assert (len(tracker), tracker.evicted) == (3, 1)
    for key in ("new", "fake1"):
        tracker.fail(key, 5.0)  # now every tracked key is locked
    assert tracker.admit("fake2", 6.0) == 94.0  # "locked" unlocks first, at 0 + 100 (its failures: 0 and 1)
    assert tracker.admit("fake2", 50.0) == 50.0  # answered from the remembered time, without a sweep
    assert tracker.admit("fake2", 101.0) == 0.0  # "locked" left its window: room again
    assert tracker.retry_after("new", 101.0) > 0
    assert tracker.retry_after("fake1", 101.0) > 0


async def test_rotating_forwarded_for_from_loopback_does_not_escape_the_address_lock(users) -> None:
    async with serve(make_auth(users, max_failures_per_address=3)) as client:
        for n in range(3):
            bad = await attempt(client, f"u{n}", "x", **{"X-Forwarded-For": f"10.0.0.{n}"})
            assert bad.status_code == 401
        locked = await attempt(client, "vic", "vic-pw", **{"X-Forwarded-For": "10.0.0.99"})
        assert locked.status_code == 429
        assert "from 127.0.0.1" in locked.json()["error"]


async def test_a_trusted_proxy_names_the_client_it_forwards(users) -> None:
    auth = make_auth(users, max_failures_per_address=3)
    async with serve(auth, trusted_proxies=("127.0.0.1",)) as client:
        for n in range(3):  # the part left of the proxy's own entry is the caller's to write: not believed
            bad = await attempt(client, f"u{n}", "x", **{"X-Forwarded-For": f"6.6.6.{n}, 10.0.0.5"})
            assert bad.status_code == 401
        locked = await attempt(client, "vic", "vic-pw", **{"X-Forwarded-For": "10.0.0.5"})
        assert locked.status_code == 429
        assert "from 10.0.0.5" in locked.json()["error"]
        assert (await attempt(client, "vic", "vic-pw", **{"X-Forwarded-For": "10.0.0.6"})).status_code == 200


async def test_made_up_user_names_do_not_clear_a_lock(users) -> None:
    auth = make_auth(users, max_failures_per_user=3, max_failures_per_address=NO_ADDRESS_LIMIT, max_tracked_logins=4)
    async with serve(auth) as client:
        for _ in range(3):
            assert (await attempt(client, "vic", "guess")).status_code == 401
        for n in range(12):  # three times the tracker's size: each new name evicts the oldest unlocked one
            assert (await attempt(client, f"fake{n}", "x")).status_code == 401
            assert (await attempt(client, "vic", "vic-pw")).status_code == 429
        health = auth.health()
        assert health["login_tracked_users"] == 4
        assert health["login_tracker_evicted"] == 9  # fake0..fake2 filled it, fake3..fake11 each evicted one
        assert health["login_failed"] == 15


async def test_a_tracker_full_of_locks_refuses_new_names_and_keeps_the_locks(users) -> None:
    auth = make_auth(users, max_failures_per_user=2, max_failures_per_address=NO_ADDRESS_LIMIT, max_tracked_logins=3)
    async with serve(auth) as client:
        for name in ("x1", "x2", "x3"):
            for _ in range(2):
                assert (await attempt(client, name, "x")).status_code == 401
        refused = await attempt(client, "amy", "amy-pw")
        assert refused.status_code == 429
        assert "too many locked logins" in refused.json()["error"]
        assert 290 <= int(refused.headers["retry-after"]) <= 300
        for name in ("x1", "x2", "x3"):
            assert (await attempt(client, name, "x")).status_code == 429  # still locked, never evicted
        health = auth.health()
        assert health["login_tracker_full"] == 1
        assert health["login_tracker_evicted"] == 0
        assert health["login_failed"] == 6


# --- point 12: headers, Secure cookie --------------------------------------------------------------------------


EXPECTED_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


async def test_security_headers_on_pages_apis_errors_and_redirects(users) -> None:
    assert "script-src 'self';" in CONTENT_SECURITY_POLICY
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
    async with serve(make_auth(users)) as client:
        answers = [
            await client.get("/login"),
            await client.get("/static/login.js"),
            await client.get("/"),  # 303 to /login
            await client.get("/api/me"),  # 401
            await client.get("/healthz"),
            await client.get("/api/nowhere"),  # 401 before 404: not signed in
            await attempt(client, "vic", "nope"),
        ]
        signed_in = await attempt(client, "vic", "vic-pw")
        answers += [signed_in, await client.get("/api/me"), await client.get("/"), await client.get("/nowhere")]
    assert [answer.status_code for answer in answers] == [200, 200, 303, 401, 200, 401, 401, 200, 200, 200, 404]
    for answer in answers:
        got = {name: answer.headers.get(name) for name in EXPECTED_HEADERS}
        assert got == EXPECTED_HEADERS, answer.request.url


async def test_security_headers_on_an_unhandled_error() -> None:
    async def broken(request: Request) -> Response:
        raise RuntimeError("bug")

    web = WebServer(bind="127.0.0.1", port=0, health={}, history=None, routes=[Route("/broken", broken)])
    async with serving(web) as client:
        answer = await client.get("/broken")
    assert answer.status_code == 500
    assert {name: answer.headers.get(name) for name in EXPECTED_HEADERS} == EXPECTED_HEADERS


def test_static_pages_have_no_inline_script_or_style() -> None:
    """Under ``script-src 'self'`` and ``style-src 'self'`` inline code would not run: none is shipped."""
    for page in sorted(STATIC_DIR.glob("*.html")):
        text = page.read_text()
        for tag in re.findall(r"<script\b[^>]*>", text):
            assert "src=" in tag, f"{page.name}: inline {tag}"
        assert not re.search(r"<style\b|\sstyle\s*=|\son[a-z]+\s*=|javascript:", text, re.IGNORECASE), page.name
    for script in sorted(STATIC_DIR.glob("*.js")):
        text = script.read_text()
        assert not re.search(r"setAttribute\(\s*[\"']style|\beval\(|new Function\(", text), script.name


def _cookie_header(response: httpx.Response) -> str:
    [cookie] = [value for value in response.headers.get_list("set-cookie") if value.startswith(f"{COOKIE}=")]
    return cookie.lower()


async def test_cookie_is_not_secure_on_plain_loopback_even_if_a_header_says_https(users) -> None:
    async with serve(make_auth(users)) as client:
        for headers in ({}, {"X-Forwarded-Proto": "https"}):
            cookie = _cookie_header(await attempt(client, "vic", "vic-pw", **headers))
            assert "httponly" in cookie
            assert "secure" not in cookie.split("; ")


async def test_cookie_is_secure_behind_a_trusted_tls_proxy(users) -> None:
    async with serve(make_auth(users), trusted_proxies=("127.0.0.1",)) as client:
        cookie = _cookie_header(await attempt(client, "vic", "vic-pw", **{"X-Forwarded-Proto": "https"}))
        assert "secure" in cookie.split("; ")
        logout = await client.post("/api/logout", headers={"X-Forwarded-Proto": "https"})
        assert "secure" in _cookie_header(logout).split("; ")
        plain = _cookie_header(await attempt(client, "vic", "vic-pw", **{"X-Forwarded-Proto": "http"}))
        assert "secure" not in plain.split("; ")


@pytest.fixture(scope="module")
def web_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed_cert(tmp_path_factory.mktemp("web-tls"))


async def test_cookie_is_secure_when_served_over_tls(users, web_cert: tuple[Path, Path]) -> None:
    async with serve(make_auth(users), tls=web_cert) as client:
        assert str(client.base_url).startswith("https://127.0.0.1:")
        answer = await attempt(client, "vic", "vic-pw")
        assert answer.status_code == 200
        assert "secure" in _cookie_header(answer).split("; ")
        assert answer.headers["x-frame-options"] == "DENY"


async def test_a_bad_web_certificate_fails_the_start_naming_the_setting(users, tmp_path: Path) -> None:
    bad = tmp_path / "cert.pem"
    bad.write_text("not a certificate")
    web = WebServer(bind="127.0.0.1", port=0, health={}, history=None, tls_cert_file=bad)
    with pytest.raises(ConfigError, match=r"web\.tls_cert_file: cannot load the TLS certificate"):
        async with web:
            pass
