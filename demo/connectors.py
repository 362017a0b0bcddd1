"""The connectors that feed the MES from the demo's business systems: HTTP and SQL sources, configured as a user would.

- ``erp-products``: ``GET <erp>/api/products`` (a change feed, cursor paged) -> ``product_type`` on the product's line.
- ``erp-orders``: ``GET <erp>/api/orders`` -> ``work_order`` releases with their BOM; a changed order comes again
  with a new ``revision``, so a new event id, and the MES takes the latest release.
- ``qms-results``: ``GET <qms>/api/inspections`` -> ``quality_inspection`` (line inspections and lab results).
- ``cmms``: the SQL source on the CMMS's ``maintenance_work_orders`` table, watermark ``updated_at`` ->
  ``maintenance_order`` on the machine; a row changed later (started, closed) is read again as a new version.

Each is an edge node of the demo's Sparkplug group with its status device; its cursor lives in the data
directory, so a restarted hub reads only what changed since.
"""

from __future__ import annotations

from pydantic import TypeAdapter

from bridges.sim.layout import GROUP
from demo.cmms import CMMS_TABLE
from demo.qms import INSPECTION_FIELDS
from model.bridges import BridgeConfig

__all__ = ["CMMS", "CONNECTORS", "ERP_ORDERS", "ERP_PRODUCTS", "POLL_S", "QMS_RESULTS", "business_connectors"]

ERP_PRODUCTS, ERP_ORDERS, QMS_RESULTS, CMMS = "erp-products", "erp-orders", "qms-results", "cmms"
"""The connectors' names (and edge node ids)."""
CONNECTORS = (ERP_PRODUCTS, ERP_ORDERS, QMS_RESULTS, CMMS)
"""Every business connector of the demo: one edge node each."""

POLL_S = 5.0
"""Poll interval of the order, inspection and maintenance feeds (products: twice it), as an MES polls its business
systems: every few seconds, not at the machines' pace (a poll that finds nothing new costs one 304 or one query)."""

_BRIDGE: TypeAdapter[BridgeConfig] = TypeAdapter(BridgeConfig)


def _feed(url: str, interval_s: float) -> dict[str, object]:
    return {
        "url": url,
        "interval_s": interval_s,
        "items_path": "$.items",
        "params": {"limit": "200"},
        "pagination": {"kind": "cursor", "cursor_path": "$.next_cursor", "cursor_param": "after"},
        "backoff_max_s": 10.0,
    }


def _erp(erp_url: str, poll_s: float) -> list[dict[str, object]]:
    products: dict[str, object] = {
        "kind": "http",
        "name": ERP_PRODUCTS,
        "poll": _feed(f"{erp_url}/api/products", 2 * poll_s),
        "key_path": "$.product_id",
        "events": [
            {
                "event": "product_type",
                "equipment_path_from": "$.line_path",
                "id_paths": ["$.product_id", "$.revision"],
                "fields": {
                    "product_id": "$.product_id",
                    "name": "$.name",
                    "ideal_cycle_time_s": "$.ideal_cycle_time_s",
                    "unit": "$.unit",
                    "timestamp_ms": "$.updated_at",
                },
            }
        ],
    }
    orders: dict[str, object] = {
        "kind": "http",
        "name": ERP_ORDERS,
        "poll": _feed(f"{erp_url}/api/orders", poll_s),
        "key_path": "$.order_id",
        "events": [
            {
                "event": "work_order",
                "equipment_path_from": "$.line_path",
                "id_paths": ["$.order_id", "$.revision"],
                "fields": {
                    "order_id": "$.order_id",
                    "product_id": "$.product_id",
                    "quantity": "$.quantity",
                    "unit": "$.unit",
                    "planned_start_ms": "$.planned_start",
                    "planned_end_ms": "$.planned_end",
                    "bom": "$.bom",
                    "timestamp_ms": "$.released_at",
                },
                "constants": {"action": "release"},
            }
        ],
    }
    return [products, orders]


def _qms(qms_url: str, poll_s: float) -> dict[str, object]:
    fields = {name: f"$.{name}" for name in INSPECTION_FIELDS}
    return {
        "kind": "http",
        "name": QMS_RESULTS,
        "poll": _feed(f"{qms_url}/api/inspections", poll_s),
        "key_path": "$.result_id",
        "events": [
            {
                "event": "quality_inspection",
                "equipment_path_from": "$.path",
                "id_paths": ["$.result_id"],
                "fields": {**fields, "timestamp_ms": "$.taken_at"},
            }
        ],
    }


def _cmms(cmms_url: str, poll_s: float) -> dict[str, object]:
    columns = ("status", "planned", "fault_code", "description", "technician", "priority")
    times = {"opened_ms": "opened_at", "started_ms": "started_at", "closed_ms": "closed_at"}
    planned = {"planned_start_ms": "planned_start", "planned_end_ms": "planned_end"}
    return {
        "kind": "sql",
        "name": CMMS,
        "url": cmms_url,
        "timezone": "UTC",
        "queries": [
            {
                "name": "work-orders",
                "table": CMMS_TABLE,
                "key": ["wo_id"],
                "watermark": {"column": "updated_at", "kind": "timestamp"},
                "interval_s": poll_s,
                "mes": {
                    "event": "maintenance_order",
                    "path_column": "machine_path",
                    "fields": {"maintenance_id": "wo_id", **{c: c for c in columns}, **times, **planned},
                },
            }
        ],
        "backoff_max_s": 10.0,
    }


def business_connectors(
    *, erp_url: str, qms_url: str, cmms_url: str, host_id: str | None, poll_s: float = POLL_S
) -> list[BridgeConfig]:
    """The demo's business connectors reading the ERP, QMS and CMMS there, for the primary host ``host_id``.

    ``poll_s``: their poll interval (``POLL_S``; a test running the business clock fast polls faster).
    """
    edge = {"group": GROUP, "primary_host_id": host_id}
    configs = [*_erp(erp_url, poll_s), _qms(qms_url, poll_s), _cmms(cmms_url, poll_s)]
    return [_BRIDGE.validate_python({**config, "edge": edge}) for config in configs]
