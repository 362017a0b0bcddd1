"""The web UI in a real headless Chromium (Debian's, driven by Playwright) against `uns up` with the demo plant."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
_FLAGS = [
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-background-networking",  # the machine's network is closed: no update or sync calls
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (.ci/run installs it)"
)


@contextlib.contextmanager
def _running_hub(args: list[str], log_path: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """``uns <args>`` as a process; yields its HTTP url from the ready line."""
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uns.cli", *args], stdout=subprocess.PIPE, stderr=log, text=True, env=env
        )
    try:
        assert proc.stdout is not None
        ready = proc.stdout.readline()
        assert ready.startswith("uns-hub ready"), log_path.read_text()
        yield dict(part.split("=", 1) for part in ready.split() if "=" in part)["http"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


_PORTS = ["--mqtt-port", "0", "--ws-port", "0", "--http-port", "0"]


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[str]:
    """`uns up` with the demo plant; yields its HTTP url."""
    env = {**os.environ, "UNS_MES__KPI_INTERVAL_S": "1", "UNS_HISTORIAN__FLUSH_INTERVAL_S": "0.2"}
    with _running_hub(["up", *_PORTS, "--data-dir", str(tmp_path)], tmp_path / "hub.log", env) as url:
        yield url


@pytest.fixture
def locked_hub(tmp_path: Path) -> Iterator[str]:
    """`uns up --no-demo` with no anonymous access: users vera (viewer) and otto (app)."""
    args = ["up", "--no-demo", *_PORTS, "--broker-config", str(_accounts(tmp_path)), "--data-dir", str(tmp_path)]
    with _running_hub(args, tmp_path / "hub.log") as url:
        yield url


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=_FLAGS)
        try:
            yield launched
        finally:
            await launched.close()


async def _page(browser: Browser, url: str) -> tuple[Page, list[str]]:
    page = await browser.new_page(viewport={"width": 1300, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(url)
    return page, errors


async def test_topics_live_values_history_sparkplug_and_mes(hub: str, browser: Browser) -> None:
    page, errors = await _page(browser, hub + "/")
    # the anonymous demo says so loudly
    await expect(page.locator("#anonymous")).to_contain_text("ANONYMOUS ACCESS")
    # the live tree: ISA-95 levels first, then the Sparkplug namespace
    await expect(page.locator("#tree > li > .name").first).to_have_text("acme", timeout=15_000)
    assert "spBv1.0" in await page.locator("#tree > li > .name").all_text_contents()
    # find a counter and watch it move (Server-Sent Events)
    count = "acme/dallas/bottling/line1/filler/data/Production/GoodCount"
    await page.fill("#search", "line1/filler/data/Production/GoodCount")
    item = page.locator(f'#tree li[data-path="{count}"]')
    await expect(item.locator(".value")).not_to_have_text("", timeout=15_000)
    first = await item.locator(".value").text_content()
    await expect(item.locator(".value")).not_to_have_text(first or "", timeout=15_000)
    # its payload and its history chart (drawn from the historian, 10 s buckets)
    await item.locator(".name").click()
    await expect(page.locator("#payload")).to_contain_text('"datatype": "UInt32"')
    await page.wait_for_timeout(21_000)  # at least three 10 s buckets of history
    await page.get_by_role("button", name="15 min").click()
    await expect(page.locator("#chart .hint")).to_contain_text("15 min:", timeout=10_000)
    polyline = page.locator("#chart svg polyline")
    points = (await polyline.get_attribute("points") or "").split()
    assert len(points) >= 2
    # Sparkplug: both demo edge nodes online, decoded by topic
    await page.goto(hub + "/#sparkplug")
    await page.reload()
    rows = page.locator("#nodes tbody tr:not(.device)")
    await expect(rows).to_have_count(2, timeout=10_000)
    assert all("online" in text for text in await rows.all_text_contents())
    # MES from the bridges alone: OEE per cell and line
    await page.goto(hub + "/#mes")
    await page.reload()
    filler = page.locator('#oee tbody tr[data-path="acme/dallas/bottling/line1/filler"]')
    await expect(filler.locator(".oee")).to_contain_text("%", timeout=15_000)
    # an operator assigns a downtime reason in the form: it lands in the MES views
    form = page.locator("#reason")
    await form.locator("select[name=cell]").select_option("acme/dallas/bottling/line1/filler")
    await form.locator("input[name=reason_code]").fill("TEST-JAM")
    await form.get_by_role("button", name="Assign").click()
    await expect(page.locator("#form-result")).to_have_text("downtime_reason stored")
    timeline = await page.evaluate(
        "fetch('/api/mes/timeline?path=acme/dallas/bottling/line1/filler&start=-30m').then(r => r.json())"
    )
    assert "TEST-JAM" in {row["reason_code"] for row in timeline["rows"]}
    # a refused event shows the field
    await form.locator("input[name=from_min]").fill("1")
    await form.locator("input[name=to_min]").fill("5")
    await form.get_by_role("button", name="Assign").click()
    await expect(page.locator("#form-result")).to_contain_text("refused (422): end_ms: must be after start_ms")
    assert errors == []


def _accounts(tmp_path: Path) -> Path:
    """A broker.yaml with no anonymous access: a viewer and an app user."""
    from uns.broker import hash_password  # the same hashes `uns passwd` prints

    text = (Path(__file__).parents[2] / "broker.yaml").read_text()
    users = (
        f'users:\n  vera: {{password_hash: "{hash_password("vera-secret")}", role: viewer}}\n'
        f'  otto: {{password_hash: "{hash_password("otto-secret")}", role: app}}\n'
    )
    text = text.replace("allow_anonymous: true", "allow_anonymous: false").replace("users: {}\n", users)
    path = tmp_path / "broker.yaml"
    path.write_text(text)
    return path


async def test_login_and_roles_a_viewer_cannot_publish(locked_hub: str, browser: Browser) -> None:
    url = locked_hub
    page, errors = await _page(browser, url + "/")
    await expect(page).to_have_url(url + "/login?next=%2F", timeout=10_000)  # no page without a session
    body = "JSON.stringify({topic: 'acme/x/mes/note', payload: 'hi'})"
    publish = f"fetch('/api/publish', {{method: 'POST', body: {body}}}).then(r => r.status)"
    for user, password, status in (("vera", "vera-secret", 403), ("otto", "otto-secret", 201)):
        await page.goto(url + "/login")
        await page.fill("input[name=username]", user)
        await page.fill("input[name=password]", "wrong")
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.locator("#error")).to_contain_text("wrong user name or password")
        await page.fill("input[name=password]", password)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.locator("#who")).to_contain_text(user, timeout=10_000)
        assert await page.evaluate(publish) == status
        await page.evaluate("fetch('/api/logout', {method: 'POST'})")
    assert errors == []
