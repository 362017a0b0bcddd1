"""``GET /api/plant``: the plant file's equipment tree for the UI (names, descriptions, declared metrics).

The topic tree shows what is published; this shows what the plant *is*: display names, what each
cell does, which metrics it declares with units and descriptions, and which cell counts a line's
output. The overview page joins the two.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Mapping

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from model.equipment import Cell, Equipment, MetricMeta, Plant
from uns.mes.line_output import line_output
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
    plant: Plant, output_cells: Mapping[str, str] | None = None, counted: Collection[str] = ()
) -> dict[str, object]:
    """The equipment tree as JSON: every level's kind, id, path, display name, metrics, children.

    Sites add their ``timezone``; lines add ``output_cell``, the cell (or the line itself) whose counts are the
    line's output, and ``output_source``, which step of the MES's rule (``uns.mes.line_output``) chose it:
    ``settings`` (``output_cells``, ``mes.output_cells``: it stays when cells are added), ``line`` (no setting,
    and the line path has counted, ``counted``: the line's own counts), ``plant`` (the line's last cell in the
    plant file: appending or reordering cells moves it, every figure of the line, past ones included, with it),
    ``counts`` (a line without cells: its last cell by path that counted), None for a line without one.
    """
    enterprise = plant.enterprise
    configured = output_cells or {}
    defaults = plant.line_outputs()
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
                output = line_output(line_path, counted, configured, defaults)
                document["output_cell"] = None if output is None else output.path
                document["output_source"] = None if output is None else output.source
                lines.append(document)
            areas.append(_level("area", area_path, area, lines))
        document = _level("site", site_path, site, areas)
        document["timezone"] = site.timezone
        sites.append(document)
    return _level("enterprise", enterprise.id, enterprise, sites)


def plant_routes(
    plant: Plant,
    output_cells: Mapping[str, str] | None = None,
    counted: Callable[[], Collection[str]] | None = None,
) -> list[Route]:
    """``GET /api/plant`` (read role, like every GET).

    ``output_cells``: ``mes.output_cells`` (the settings'); ``counted``: the paths production counts are stored
    at (``MesAdapter.counted_paths``, when the MES runs in this process), asked at each request so a line that
    starts counting at its own path shows it; without it the page sees no count (``uns web`` alone: a line whose
    own counts are its units shows its plant default).
    """

    @functools.lru_cache(maxsize=1)  # made again only when the paths counted changed
    def document(paths: frozenset[str]) -> dict[str, object]:
        return plant_document(plant, output_cells, paths)

    async def answer(request: Request) -> Response:
        return json_response(document(frozenset() if counted is None else frozenset(counted())))

    return [Route("/api/plant", answer, methods=["GET"], name="plant")]
