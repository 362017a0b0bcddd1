"""``GET /api/plant``: the plant file's equipment tree for the UI (names, descriptions, declared metrics).

The topic tree shows what is published; this shows what the plant *is*: display names, what each
cell does, which metrics it declares with units and descriptions, and which cell counts a line's
output. The overview page joins the two.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from model.equipment import Cell, Equipment, MetricMeta, Plant
from uns.web.history_api import json_response

__all__ = ["plant_document", "plant_routes"]


def _metrics(metrics: dict[str, MetricMeta]) -> list[dict[str, object]]:
    return [
        {"name": name, "unit": meta.unit, "description": meta.description, "datatype": meta.datatype}
        for name, meta in metrics.items()
    ]


def _level(kind: str, path: str, level: Equipment, children: list[dict[str, object]]) -> dict[str, object]:
    document: dict[str, object] = {
        "kind": kind,
        "id": level.id,
        "path": path,
        "name": level.name or level.id,
        "metrics": _metrics(level.metrics),
        "children": children,
    }
    if isinstance(level, Cell) and level.description:
        document["description"] = level.description
    return document


def plant_document(
    plant: Plant, outputs: Mapping[str, str] | None = None, configured: Collection[str] = ()
) -> dict[str, object]:
    """The equipment tree as JSON: every level's kind, id, path, display name, metrics, children.

    Sites add their ``timezone``; lines add ``output_cell``, the cell (or the line itself) whose counts are the
    line's output: from ``outputs`` (line path -> cell path, the MES's: ``mes.output_cells`` over the plant's last
    cells), else the line's last cell in the plant file; and ``output_source``, what chose it: ``settings`` for
    the lines of ``configured`` (``mes.output_cells``' keys: it stays when cells are added), else ``plant`` (the
    line's last cell in the plant file: appending or reordering cells moves it, every figure of the line, past
    ones included, with it), None for a line without one.
    """
    enterprise = plant.enterprise
    outputs = plant.line_outputs() if outputs is None else outputs
    sites = []
    for site in enterprise.sites:
        site_path = f"{enterprise.id}/{site.id}"
        areas = []
        for area in site.areas:
            area_path = f"{site_path}/{area.id}"
            lines = []
            for line in area.lines:
                line_path = f"{area_path}/{line.id}"
                cells = [_level("cell", f"{line_path}/{cell.id}", cell, []) for cell in line.cells]
                document = _level("line", line_path, line, cells)
                output = outputs.get(line_path)
                document["output_cell"] = output
                document["output_source"] = _source(line_path, output, configured)
                lines.append(document)
            areas.append(_level("area", area_path, area, lines))
        document = _level("site", site_path, site, areas)
        document["timezone"] = site.timezone
        sites.append(document)
    return _level("enterprise", enterprise.id, enterprise, sites)


def _source(line: str, output: str | None, configured: Collection[str]) -> str | None:
    if output is None:
        return None
    return "settings" if line in configured else "plant"


def plant_routes(
    plant: Plant, outputs: Mapping[str, str] | None = None, configured: Collection[str] = ()
) -> list[Route]:
    """``GET /api/plant`` (read role, like every GET).

    ``outputs``: the lines' output cells as the MES takes them; ``configured``: the lines ``mes.output_cells``
    names (``plant_document``).
    """
    document = plant_document(plant, outputs, configured)  # the plant file is read once at start

    async def answer(request: Request) -> Response:
        return json_response(document)

    return [Route("/api/plant", answer, methods=["GET"], name="plant")]
