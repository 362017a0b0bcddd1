"""``uns up`` with ``historian.enabled: false``: the routes of what does not run say how to turn it on."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.fixtures.up import hub_up
from uns.web.mes_api import MES_OFF_HINT


async def test_the_mes_routes_answer_503_with_the_hint_not_404(tmp_path: Path) -> None:
    # the MES runs on the historian's store: with the historian off its views and events were 'no such path'
    async with (
        hub_up(tmp_path, {"historian.enabled": False}, name="test.hub-without-historian") as up,
        httpx.AsyncClient(base_url=up.endpoints["http"], timeout=5) as client,
    ):
        view = await client.get("/api/mes/current")
        event = await client.post("/api/mes/events/acme/dallas/bottling/line1/filler/mes/labor", json={})
        history = await client.get("/api/history/series")
    assert (view.status_code, view.json()) == (503, {"error": MES_OFF_HINT})
    assert (event.status_code, event.json()) == (503, {"error": MES_OFF_HINT})
    assert history.status_code == 503
    assert "historian.enabled" in MES_OFF_HINT
