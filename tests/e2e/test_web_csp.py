"""The UI under its Content-Security-Policy in a real Chromium: every page works and reports no violation,
while script or style injected inline is refused (and seen by the rig's watcher)."""

from __future__ import annotations

import re

from playwright.async_api import Browser, expect

from tests.e2e.web_rig import open_page, skip_without_chromium
from tests.fixtures.waiting import until

pytestmark = skip_without_chromium


async def test_every_page_runs_under_the_csp_without_a_violation(web_hub: str, browser: Browser) -> None:
    page, errors = await open_page(browser, web_hub + "/login")
    headers = (await page.request.get(web_hub + "/")).headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    # the login page's script is a file now: it still reads the reason from the URL
    await page.goto(web_hub + "/login?reason=expired")
    await expect(page.locator("#reason")).to_be_visible()
    # the plant page styles machines by state (element.style, not style attributes)
    await page.goto(web_hub + "/#plant")
    machine = page.locator('.machine[data-path="acme/dallas/bottling/line1/filler"]')
    await expect(machine).to_have_attribute("style", re.compile(r"^border-left-color: rgb\("), timeout=15_000)
    await page.goto(web_hub + "/#topics")
    await expect(page.locator("#tree > li > .name").first).to_have_text("acme", timeout=15_000)
    await page.goto(web_hub + "/#sparkplug")
    await expect(page.locator("#sparkplug")).to_be_visible()
    await page.goto(web_hub + "/#mes?line=acme/dallas/bottling/line1&range=1h")
    await expect(page.locator("#oee .meter span").first).to_be_attached(timeout=20_000)
    assert errors == []
    # what the policy is for: inline script and style attributes set from a page are refused
    ran = await page.evaluate(
        """() => {
            const script = document.createElement("script");
            script.textContent = "window.injected = true";
            document.body.append(script);
            document.body.setAttribute("style", "background: red");
            return [window.injected === true, getComputedStyle(document.body).backgroundColor];
        }"""
    )
    assert ran[0] is False
    assert ran[1] != "rgb(255, 0, 0)"
    await until(lambda: len(errors) >= 2, within_s=5, what="the two violations reported")
    assert all("Content Security Policy" in error for error in errors), errors
