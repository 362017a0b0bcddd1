"""The MES dashboards in a real headless Chromium against `uns up` with the demo plant, fed with our own MES events."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.async_api import APIRequestContext, Browser, Page, expect

from demo.shifts import shifts_around
from tests.e2e.web_rig import open_page, skip_without_chromium
from tests.fixtures.waiting import until_probed
from uns.clock import now_ms

pytestmark = [skip_without_chromium, pytest.mark.asyncio(loop_scope="module")]  # for module_browser

LINE1 = "acme/dallas/bottling/line1"
FILLER, CAPPER, LABELER = (f"{LINE1}/{cell}" for cell in ("filler", "capper", "labeler"))
# fill volume around 500 ml; one bottle at 530 ml (index 18) is far outside the process's spread
NOISE = [1.5, -1.0, 2.5, -2.0, 0.5, 2.0, -1.5, -0.5, 2.5, -2.5, 1.0, 0.0, 2.0, -1.0, -2.0, 1.5, 3.0, -0.5, 30.0]
NOISE += [2.0, -1.5, 0.5, 2.5, -2.5, 1.0]
OUTLIER = 530.0
MIN = 60_000
SITE_ZONE = ZoneInfo("America/Chicago")  # the demo site's time zone (model/demo/plant.yaml)


def unplanned_stop(now: int) -> tuple[int, int]:
    """A 3-minute stop ending 3 minutes ago, or, if that falls in a shift's break (planned downtime, so no
    "equipment failure" bar), the same stop ending 3 minutes before that break began."""
    start, end = now - 6 * MIN, now - 3 * MIN
    for shift in shifts_around(now, SITE_ZONE):
        if start < shift.break_end_ms and shift.break_start_ms < end:
            start, end = shift.break_start_ms - 6 * MIN, shift.break_start_ms - 3 * MIN
    return start, end


def send(http: httpx.Client, cell: str, event: str, body: dict[str, object]) -> None:
    answer = http.post(f"/api/mes/events/{cell}/mes/{event}", json=body)
    assert answer.status_code == 201, answer.text


def feed(http: httpx.Client) -> int:
    """A 3-level lot tree, 25 inspections with one outlier, a 3-minute failure at the capper outside any break;
    returns now (ms)."""
    now = now_ms()
    lots = [
        (FILLER, "BATCH-1", "syrup", [{"lot_id": "SUGAR-1", "material_id": "sugar"}, {"lot_id": "WATER-1"}]),
        (CAPPER, "BOTTLE-1", "cola-05", [{"lot_id": "BATCH-1", "quantity": 600}]),
        (LABELER, "PAL-1", "pallet-cola", [{"lot_id": "BOTTLE-1"}]),
    ]
    for index, (cell, lot, product, inputs) in enumerate(lots):
        body = {"timestamp_ms": now - (30 - index) * MIN, "lot_id": lot, "product_id": product, "input_lots": inputs}
        send(http, cell, "lot_production", {**body, "quantity": 1200})
    for index, noise in enumerate(NOISE):
        inspection: dict[str, object] = {
            "timestamp_ms": now - 28 * MIN + index * 30_000, "characteristic": "fill_volume", "value": 500 + noise,
            "lower_limit": 490, "upper_limit": 510, "unit": "ml",
        }  # fmt: skip
        if index < 3:
            inspection["lot_id"] = "BOTTLE-1"  # the first bottles' inspections name their lot
        send(http, FILLER, "quality_inspection", inspection)
    stop_start, stop_end = unplanned_stop(now)
    send(http, CAPPER, "machine_state", {"timestamp_ms": stop_start, "state": 180000})
    send(http, CAPPER, "machine_state", {"timestamp_ms": stop_end, "state": 10000})
    return now


@pytest.fixture(scope="module")
def fed_hub(module_web_hub: str) -> str:
    """One demo hub for this file, fed once: each test reads what feed() sent (a second feed would double the
    SPC points), and the reason the timeline test assigns at the capper is in no view the SPC test reads."""
    with httpx.Client(base_url=module_web_hub, timeout=10) as http:
        feed(http)
    return module_web_hub


async def filler_counted(request: APIRequestContext, url: str) -> None:
    """Wait until the demo's filler has counted units in the last hour: a cell that reports its state but no count
    yet (for a second or two after `uns up` starts) has no quality and no OEE, and the page shows that until its
    next refresh (10 s)."""

    async def counted() -> bool:
        answer = await request.get(f"{url}/api/mes/oee?path={FILLER}&start=-1h")
        return answer.status == 200 and any(row["total"] > 0 for row in (await answer.json())["rows"])

    await until_probed(counted, within_s=30, what="the demo filler's first counted units")


async def pareto_reasons(page: Page) -> list[str]:
    return [await bar.get_attribute("data-reason") or "" for bar in await page.locator("#pareto g.bar").all()]


async def test_timeline_pareto_and_a_reason_assigned_from_the_timeline(fed_hub: str, module_browser: Browser) -> None:
    page, errors = await open_page(module_browser, f"{fed_hub}/#mes?line={LINE1}&range=1h")
    await filler_counted(page.request, fed_hub)
    await page.reload()
    # OEE per line and cell, the line first
    await expect(page.locator("#oee tbody tr").first).to_have_attribute("data-path", LINE1, timeout=20_000)
    await expect(page.locator(f'#oee tbody tr[data-path="{FILLER}"] .oee')).to_contain_text("%")
    # one timeline lane per cell of line1, each with segments
    lanes = page.locator("#timeline g.lane")
    await expect(lanes).to_have_count(3, timeout=15_000)
    assert [await lane.get_attribute("data-path") for lane in await lanes.all()] == [CAPPER, FILLER, LABELER]
    for lane in await lanes.all():
        assert await lane.locator("rect.seg").count() >= 1
    # the Pareto follows the scope: the capper's failure is not the filler's
    await page.select_option("#cell", FILLER)
    await expect(page.locator("#pareto-scope")).to_have_text("filler")
    await expect(page).to_have_url(f"{fed_hub}/#mes?line={LINE1}&cell={FILLER}&range=1h")
    assert "equipment failure" not in await pareto_reasons(page)
    await page.locator(f'#oee tbody tr[data-path="{CAPPER}"]').click()  # clicking a cell narrows the page to it
    await expect(page.locator("#pareto-scope")).to_have_text("capper")
    await expect(page.locator('#pareto g.bar[data-reason="equipment failure"]')).to_have_count(1, timeout=15_000)
    assert await page.locator("#timeline g.lane").count() == 1
    # click the stop on the timeline: the reason form takes its cell and interval; the reason lands in the Pareto
    await page.locator('#timeline rect.seg[data-state="180000"][data-reason=""]').first.click()
    form = page.locator("#reason")
    await expect(form.locator("select[name=cell]")).to_have_value(CAPPER)
    await expect(page.locator("#reason-interval")).to_contain_text("capper")
    await form.locator("input[name=reason_code]").fill("JAM-CAPS")
    await form.get_by_role("button", name="Assign").click()
    await expect(page.locator("#form-result")).to_have_text("downtime_reason stored")
    await expect(page.locator('#pareto g.bar[data-reason="JAM-CAPS"]')).to_have_count(1, timeout=10_000)
    await expect(page.locator('#pareto g.bar[data-reason="equipment failure"]')).to_have_count(0)
    await expect(page.locator('#timeline rect.seg[data-reason="JAM-CAPS"]')).to_have_count(1)
    assert errors == []


async def test_spc_chart_and_genealogy_drill_down(fed_hub: str, module_browser: Browser) -> None:
    # the demo's QMS inspects line1 too (cap_torque_nm sorts before fill_volume): the page is asked for ours
    page, errors = await open_page(module_browser, f"{fed_hub}/#mes?line={LINE1}&range=1h&char=fill_volume")
    # SPC: the characteristic inspected in scope, 25 points with limits, the outlier marked with its rule
    await expect(page.locator("#characteristic")).to_have_value("fill_volume", timeout=20_000)
    chart = page.locator("#spc svg.spc").first
    await expect(chart.locator("circle.point")).to_have_count(25)
    for limit in ("CL", "UCL", "LCL", "USL", "LSL"):
        await expect(chart.locator(f'line[data-limit="{limit}"]')).to_have_count(1)
    beyond = chart.locator('circle.violation[data-rules*="beyond_3_sigma"]')
    await expect(beyond).to_have_count(1)
    assert await beyond.get_attribute("data-value") == str(int(OUTLIER))
    assert "beyond_3_sigma" in (await beyond.locator("title").text_content() or "")
    await expect(page.locator("#spc svg.spc").nth(1).locator("circle.point")).to_have_count(24)  # moving ranges
    await expect(page.locator("#spc-stats")).to_contain_text("Cpk")
    # genealogy: find the pallet, its tree goes back to the raw lots
    await page.fill("#lot-search", "pal")
    await page.locator('#lot-list button[data-lot="PAL-1"]').click()
    await expect(page.locator("#lot-root")).to_have_text("PAL-1")
    backward = page.locator("#lots .trace.backward")
    for lot in ("BOTTLE-1", "BATCH-1", "SUGAR-1", "WATER-1"):
        await expect(backward.locator(f'li[data-lot="{lot}"]')).to_have_count(1)
    sugar = backward.locator('li[data-lot="BATCH-1"] li[data-lot="SUGAR-1"]')
    await expect(sugar).to_contain_text("sugar")
    # drill into the batch: it becomes the root, forward it went into the bottles and the pallet
    await backward.locator('li[data-lot="BATCH-1"] > button.lot').click()
    await expect(page.locator("#lot-root")).to_have_text("BATCH-1")
    await expect(page).to_have_url(f"{fed_hub}/#mes?line={LINE1}&range=1h&char=fill_volume&lot=BATCH-1")
    forward = page.locator("#lots .trace.forward")
    await expect(forward.locator('li[data-lot="BOTTLE-1"] li[data-lot="PAL-1"]')).to_have_count(1)
    await expect(page.locator("#lots .trace.backward li")).to_have_count(3)  # the batch and its two raw lots
    # the breadcrumb leads back to the pallet; the bottles' inspections are listed on their lot
    await page.locator("#lot-crumbs button.crumb", has_text="PAL-1").click()
    await expect(page.locator("#lot-root")).to_have_text("PAL-1")
    await page.locator('#lots .trace.backward li[data-lot="BOTTLE-1"] > button.lot').click()
    await expect(page.locator("#lots table.lot-inspections tbody tr")).to_have_count(3)
    assert errors == []
