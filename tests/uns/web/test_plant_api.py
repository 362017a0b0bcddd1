"""``GET /api/plant``: the demo plant file as the overview page reads it."""

from __future__ import annotations

from typing import Any

import httpx
from starlette.applications import Starlette

from demo.connectors import CONNECTORS
from uns.settings import load_plant
from uns.web.plant_api import plant_document, plant_routes


def test_the_demo_plant_document_has_names_paths_metrics_and_line_outputs() -> None:
    document: Any = plant_document(load_plant(None))  # nested JSON
    assert (document["kind"], document["path"], document["name"]) == ("enterprise", "acme", "ACME Beverages")
    site = document["children"][0]
    assert (site["path"], site["timezone"]) == ("acme/dallas", "America/Chicago")
    lines = {line["path"]: line for area in site["children"] for line in area["children"]}
    business = {f"acme/dallas/business/{connector}" for connector in CONNECTORS}
    assert set(lines) == {
        "acme/dallas/bottling/line1",
        "acme/dallas/bottling/line2",
        "acme/dallas/packaging/line3",
        "acme/dallas/utilities/powerhouse",
        "acme/dallas/environment/warehouse",
        "acme/dallas/environment/energy",
        *business,
    }
    # the business connectors' lines hold their health alone: no cells, no output (the Plant page shows no card)
    assert [(lines[path]["children"], lines[path]["output_cell"]) for path in sorted(business)] == [([], None)] * 4
    line1 = lines["acme/dallas/bottling/line1"]
    assert line1["name"] == "Bottling line 1 (PET 0.5 l)"
    assert (line1["output_cell"], line1["output_source"]) == ("acme/dallas/bottling/line1/labeler", "plant")
    filler = line1["children"][0]
    assert (filler["kind"], filler["name"], filler["description"]) == (
        "cell",
        "Rotary filler",
        "Fills bottles with product",
    )
    temperature = next(metric for metric in filler["metrics"] if metric["name"] == "Temperature")
    assert (temperature["unit"], temperature["datatype"]) == ("degC", "Float")
    assert temperature["description"] == "Product temperature at the filler bowl"


async def test_the_route_answers_json() -> None:
    app = Starlette(routes=plant_routes(load_plant(None)))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        answer = await client.get("/api/plant")
    assert answer.status_code == 200
    assert answer.json()["children"][0]["id"] == "dallas"


async def test_the_route_names_a_line_s_own_counts_once_the_mes_has_stored_one() -> None:
    """Asked at each request (``MesAdapter.counted_paths``): line2 unpinned shows the plant file's last cell until a
    count is stored on its own path, then the line itself (``output_source: line``), as the MES views count it."""
    line2 = "acme/dallas/bottling/line2"
    counted: set[str] = {f"{line2}/filler2"}
    app = Starlette(routes=plant_routes(load_plant(None), {}, lambda: counted))

    async def line2_output() -> tuple[str, str]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            document = (await client.get("/api/plant")).json()
        lines = {line["path"]: line for area in document["children"][0]["children"] for line in area["children"]}
        return lines[line2]["output_cell"], lines[line2]["output_source"]

    assert await line2_output() == (f"{line2}/capper2", "plant")
    counted.add(line2)
    assert await line2_output() == (line2, "line")
