"""The maintenance panel of the MES page in a real headless Chromium against `uns up`: reliability, the fault
Pareto and the work orders from our own MES events; an operator opens an order from the page, a viewer only sees."""

from __future__ import annotations

import re
import time

from playwright.async_api import APIRequestContext, Browser, Page, expect

from tests.e2e.web_rig import open_page, skip_without_chromium

pytestmark = skip_without_chromium

LINE1 = "acme/dallas/bottling/line1"
FILLER, CAPPER = f"{LINE1}/filler", f"{LINE1}/capper"
MIN = 60_000


async def sign_in(page: Page, url: str, user: str, password: str) -> None:
    await page.goto(url + "/login")
    await page.fill("input[name=username]", user)
    await page.fill("input[name=password]", password)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#who")).to_contain_text(user, timeout=10_000)


async def send(request: APIRequestContext, url: str, path: str, event: str, body: dict[str, object]) -> None:
    answer = await request.post(f"{url}/api/mes/events/{path}/mes/{event}", data=body)
    assert answer.status == 201, await answer.text()


async def feed(request: APIRequestContext, url: str) -> None:
    """A 10-minute failure at the filler and a 5-minute one at the capper, both restored; three orders."""
    now = int(time.time() * 1000)
    for path, down, up in ((FILLER, 40, 30), (CAPPER, 20, 15)):
        for minutes, state in ((50, 10000), (down, 180000), (up, 10000)):
            await send(request, url, path, "machine_state", {"timestamp_ms": now - minutes * MIN, "state": state})
    orders: list[tuple[str, dict[str, object]]] = [
        (FILLER, {"maintenance_id": "MWO-1", "status": "closed", "fault_code": "E-DRIVE", "technician": "T. Berg",
                  "opened_ms": now - 40 * MIN, "started_ms": now - 38 * MIN, "closed_ms": now - 30 * MIN}),
        (CAPPER, {"maintenance_id": "MWO-2", "status": "started", "fault_code": "E-SENSOR", "priority": 1,
                  "opened_ms": now - 20 * MIN, "started_ms": now - 18 * MIN}),
        (FILLER, {"maintenance_id": "MWO-3", "status": "opened", "planned": True, "description": "lubrication",
                  "planned_start_ms": now + 60 * MIN, "planned_end_ms": now + 90 * MIN}),
    ]  # fmt: skip
    for path, body in orders:
        await send(request, url, path, "maintenance_order", {"timestamp_ms": now - 10 * MIN, **body})


async def listed(page: Page) -> list[str]:
    return [await row.get_attribute("data-id") or "" for row in await page.locator("#maintenance tbody tr").all()]


async def test_reliability_faults_and_orders_and_an_order_opened_from_the_page(
    locked_web_hub: str, browser: Browser
) -> None:
    url = locked_web_hub
    page, errors = await open_page(browser, url + "/login")
    await sign_in(page, url, "otto", "otto-secret")
    await feed(page.request, url)
    await page.goto(f"{url}/#mes?line={LINE1}&range=1h")
    # reliability: the line has both failures; each cell its own MTTR
    line = page.locator(f'#reliability tr[data-path="{LINE1}"]')
    await expect(line.locator(".failures")).to_have_text("2", timeout=20_000)
    await expect(page.locator(f'#reliability tr[data-path="{FILLER}"] .mttr')).to_have_text("10.0 min")
    await expect(page.locator(f'#reliability tr[data-path="{CAPPER}"] .mttr')).to_have_text("5.0 min")
    await expect(line.locator(".repairs")).to_have_text("1")  # MWO-1 closed in the range
    # the fault Pareto: the closed drive fault's time first, the open sensor fault after it
    faults = page.locator("#faults li.fault")
    await expect(faults).to_have_count(2)
    assert [await bar.get_attribute("data-fault") for bar in await faults.all()] == ["E-DRIVE", "E-SENSOR"]
    await expect(faults.first).to_contain_text("10.0 min · 1×")
    # the order list: open ones by default, closed on request, a fault picked on the Pareto narrows it
    await expect(page.locator("#maintenance tbody tr")).to_have_count(2)
    assert await listed(page) == ["MWO-3", "MWO-2"]  # newest opened first
    await page.select_option("#maintenance-status", "closed")
    await expect(page.locator("#maintenance tbody tr")).to_have_count(1)
    assert await listed(page) == ["MWO-1"]
    await page.select_option("#maintenance-status", "any")
    await expect(page.locator("#maintenance tbody tr")).to_have_count(3)
    await page.locator('#faults li[data-fault="E-SENSOR"]').click()
    await expect(page.locator("#maintenance-fault")).to_contain_text("E-SENSOR")
    await expect(page.locator("#maintenance tbody tr")).to_have_count(1)
    assert await listed(page) == ["MWO-2"]
    await page.locator('#faults li[data-fault="E-SENSOR"]').click()  # again: every fault
    await expect(page.locator("#maintenance tbody tr")).to_have_count(3)
    # an operator reports a leak at the capper from the page: it is listed, and in the Pareto
    form = page.locator("#maintenance-form")
    await form.locator("select[name=cell]").select_option(CAPPER)
    await form.locator("input[name=maintenance_id]").fill("WEB-1")
    await form.locator("input[name=fault_code]").fill("E-LEAK")
    await form.locator("input[name=description]").fill("oil under the capper")
    await form.get_by_role("button", name="Send").click()
    await expect(page.locator("#form-result")).to_have_text("maintenance_order stored")
    await expect(page.locator('#maintenance tr[data-id="WEB-1"] .status')).to_have_text("opened", timeout=15_000)
    await expect(page.locator('#faults li[data-fault="E-LEAK"]')).to_have_count(1, timeout=15_000)
    # a bad order is refused naming the field, nothing stored
    await form.locator("input[name=maintenance_id]").fill("WEB/2")
    await form.get_by_role("button", name="Send").click()
    await expect(page.locator("#form-result")).to_contain_text("maintenance_id")
    await expect(page.locator("#form-result")).to_contain_text("refused (422)")
    await page.locator("#logout").click()
    await expect(page).to_have_url(re.compile(r"/login(\?.*)?$"), timeout=10_000)
    # a viewer sees the panel, not the form
    await sign_in(page, url, "vera", "vera-secret")
    await page.goto(f"{url}/#mes?line={LINE1}&range=1h")
    await page.reload()
    await expect(page.locator('#maintenance tr[data-id="WEB-1"]')).to_have_count(1, timeout=20_000)
    await expect(page.locator("#maintenance-form")).to_be_hidden()
    body = '{"timestamp_ms": 1, "maintenance_id": "V-1", "status": "opened"}'
    topic = f"{CAPPER}/mes/maintenance_order"
    post = f"fetch('/api/mes/events/{topic}', {{method: 'POST', body: '{body}'}}).then(r => r.status)"
    assert await page.evaluate(post) == 403  # nor may the API take one from a viewer
    assert errors == []
