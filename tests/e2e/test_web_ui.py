"""The web UI in a real headless Chromium (Debian's, driven by Playwright) against `uns up` with the demo plant."""

from __future__ import annotations

import os
import re
from collections.abc import Awaitable
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from bridges.sim.utilities import UTILITY_PLANTS
from demo.connectors import CONNECTORS
from tests.e2e.web_rig import PORTS, accounts, open_page, running_hub, skip_without_chromium
from tests.fixtures.waiting import until_probed

pytestmark = [skip_without_chromium, pytest.mark.asyncio(loop_scope="module")]  # for module_browser


async def _at_least(count: Awaitable[int], least: int) -> bool:
    return await count >= least


@pytest.mark.timeout(180)  # the whole demo hub starts (25 s seen at load 12), then three 10 s buckets of history accrue
async def test_topics_live_values_history_sparkplug_and_mes(web_hub: str, module_browser: Browser) -> None:
    page, errors = await open_page(module_browser, web_hub + "/")
    # the anonymous demo says so loudly
    await expect(page.locator("#anonymous")).to_contain_text("ANONYMOUS ACCESS")
    # the landing page: the plant's lines with OEE now; a machine's declared values, live, with units
    await expect(page.locator(".line-card h3")).to_have_text(
        [
            "Bottling line 1 (PET 0.5 l)",
            "Bottling line 2 (glass 0.33 l)",
            "Packaging line 3",
            "Powerhouse",
            "Finished goods warehouse",
            "Site energy",
        ],
        timeout=15_000,
    )
    await page.locator('.machine[data-path="acme/dallas/bottling/line1/filler"]').click()
    speed = page.locator('#machine tr[data-topic="acme/dallas/bottling/line1/filler/data/Speed"]')
    await expect(speed.locator(".value")).to_have_text(re.compile(r"^\d"), timeout=15_000)
    await expect(speed).to_contain_text("bpm")
    # each value leads to its history: the Topics page opens on that topic
    await speed.get_by_role("link", name="Speed").click()
    await expect(page.locator("#detail h3")).to_contain_text("line1/filler/data/Speed", timeout=10_000)
    # Sparkplug: every demo edge node online (bottling, packaging, LwM2M, LoRaWAN, serial, utilities, business)
    await page.goto(web_hub + "/#sparkplug")
    await page.reload()
    rows = page.locator("#nodes tbody tr:not(.device)")
    await expect(rows).to_have_count(5 + len(UTILITY_PLANTS) + len(CONNECTORS), timeout=10_000)
    assert all("online" in text for text in await rows.all_text_contents())
    # MES from the bridges alone: OEE per cell and line
    await page.goto(web_hub + "/#mes")
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
    # the other operator forms write the same events as the API: an inspection, clock on, material used
    cell = "acme/dallas/bottling/line1/capper"
    forms = {
        "#inspection": (
            {"characteristic": "cap_height_mm", "value": "12.4", "lower_limit": "12", "upper_limit": "13"}, "Record"
        ),
        "#labor": ({"operator_id": "op-42"}, "Send"),
        "#material": ({"material_id": "CAP-RED", "lot_id": "CAP-LOT-9", "quantity": "500"}, "Send"),
    }  # fmt: skip
    for selector, (fields, button) in forms.items():
        form = page.locator(selector)
        await form.locator("select[name=cell]").select_option(cell)
        for name, text in fields.items():
            await form.locator(f"input[name={name}]").fill(text)
        await form.get_by_role("button", name=button).click()
        event = await form.get_attribute("data-event")
        await expect(page.locator("#form-result")).to_have_text(f"{event} stored")
    views = {
        "characteristics": f"/api/mes/characteristics?path={cell}&start=-1h",
        "labor": f"/api/mes/labor?path={cell}&by=operator&start=-1h",
    }
    got = {name: await page.evaluate(f"fetch('{url}').then(r => r.json())") for name, url in views.items()}
    # (the demo's QMS and crews add their own rows beside these)
    assert "cap_height_mm" in [row["characteristic"] for row in got["characteristics"]["rows"]]
    assert "op-42" in [row["group"] for row in got["labor"]["rows"]]
    # the history has been accruing meanwhile: the Topics page last
    await page.goto(web_hub + "/#topics")
    await page.reload()
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
    # at least three 10 s buckets of history (the hub has been storing since it started)
    history = f"/api/history/aggregate?topic={count}&start=-15m&bucket=10s&agg=avg,min,max&fill=none"
    buckets = "(url) => fetch(url).then(r => r.json()).then(a => a.rows.filter(row => row.avg !== null).length)"
    await until_probed(
        lambda: _at_least(page.evaluate(buckets, history), 3), within_s=40, what="three 10 s buckets", every_s=0.5
    )
    await page.get_by_role("button", name="15 min").click()
    await expect(page.locator("#chart .hint")).to_contain_text("15 min:", timeout=10_000)
    polyline = page.locator("#chart svg polyline")
    points = (await polyline.get_attribute("points") or "").split()
    assert len(points) >= 2
    assert errors == []


async def test_login_and_roles_a_viewer_cannot_publish(locked_web_hub: str, module_browser: Browser) -> None:
    url = locked_web_hub
    page, errors = await open_page(module_browser, url + "/")
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
        # the page offers only what the role may do: no operator forms for a viewer
        await page.goto(url + "/#mes")
        await page.reload()
        await expect(page.locator("#reason")).to_be_visible(visible=user == "otto", timeout=10_000)
        # the page's own sign-out; a bare POST /api/logout would race the page's own move to the login page
        await page.locator("#logout").click()
        await expect(page).to_have_url(re.compile(r"/login(\?.*)?$"), timeout=10_000)
    assert errors == []


async def test_an_ended_session_leads_to_the_login_page_and_back(tmp_path: Path, module_browser: Browser) -> None:
    args = ["up", "--no-demo", *PORTS, "--broker-config", str(accounts(tmp_path)), "--data-dir", str(tmp_path)]
    env = {**os.environ, "UNS_WEB__SESSION_TTL_S": "4"}
    with running_hub(args, tmp_path / "hub.log", env) as url:
        page, errors = await open_page(module_browser, url + "/login?next=%2F%23sparkplug")
        await page.fill("input[name=username]", "vera")
        await page.fill("input[name=password]", "vera-secret")
        await page.get_by_role("button", name="Sign in").click()
        await expect(page).to_have_url(url + "/#sparkplug", timeout=10_000)
        # the page itself notices the end of the session, without a click
        await expect(page.locator("#reason")).to_be_visible(timeout=15_000)
        assert "reason=expired" in page.url
        assert "next=%2F%23sparkplug" in page.url
        assert (await page.evaluate("fetch('/api/me').then(r => r.status)")) == 401
        await page.fill("input[name=username]", "vera")
        await page.fill("input[name=password]", "vera-secret")
        await page.get_by_role("button", name="Sign in").click()
        await expect(page).to_have_url(url + "/#sparkplug", timeout=10_000)  # back where she was
        assert errors == []
