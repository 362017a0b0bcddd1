"""The demo's ERP: products and production orders with their bills of materials in SQLite, served over REST.

``GET /api/products`` and ``GET /api/orders`` are change feeds (``demo.feed``): each record carries
``seq`` (the change number), and a record written again with different values gets a new ``seq``
and ``revision``, so a reader following the feed sees the update. Orders embed their components
(the BOM per unit of product, copied at release as an ERP's production order does).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Self

import orjson
from starlette.routing import BaseRoute

from demo.database import DemoDatabase, iso_utc
from demo.feed import feed_route
from model.mes import ProductType, WorkOrder

__all__ = ["ERP_FILE", "Erp"]

ERP_FILE = "erp.sqlite"
"""The ERP's file in the demo's data directory."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS products (
    product_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    unit TEXT NOT NULL,
    ideal_cycle_time_s REAL NOT NULL,
    line_path TEXT NOT NULL,
    revision INTEGER NOT NULL,
    seq INTEGER NOT NULL UNIQUE,
    updated_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS orders (
    order_id TEXT PRIMARY KEY,
    line_path TEXT NOT NULL,
    product_id TEXT NOT NULL REFERENCES products (product_id),
    quantity REAL NOT NULL,
    unit TEXT NOT NULL,
    planned_start_ms INTEGER,
    planned_end_ms INTEGER,
    released_ms INTEGER NOT NULL,
    revision INTEGER NOT NULL,
    seq INTEGER NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS order_components (
    order_id TEXT NOT NULL REFERENCES orders (order_id),
    position INTEGER NOT NULL,
    material_id TEXT NOT NULL,
    quantity_per_unit REAL NOT NULL,
    unit TEXT NOT NULL,
    PRIMARY KEY (order_id, position)
);
"""


def _next_seq(db: sqlite3.Connection, table: str) -> int:
    (last,) = db.execute(f"SELECT coalesce(max(seq), 0) FROM {table}").fetchone()  # noqa: S608 - fixed names
    return int(last) + 1


def _put_product(db: sqlite3.Connection, line_path: str, product: ProductType) -> bool:
    values = (product.name, product.unit, product.ideal_cycle_time_s, line_path)
    row = db.execute(
        "SELECT name, unit, ideal_cycle_time_s, line_path, revision FROM products WHERE product_id = ?",
        (product.product_id,),
    ).fetchone()
    if row is not None and tuple(row)[:4] == values:
        return False
    revision = 1 if row is None else int(row["revision"]) + 1
    db.execute(
        "INSERT INTO products (product_id, name, unit, ideal_cycle_time_s, line_path, revision, seq, updated_ms) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (product_id) DO UPDATE SET name = excluded.name, "
        "unit = excluded.unit, ideal_cycle_time_s = excluded.ideal_cycle_time_s, line_path = excluded.line_path, "
        "revision = excluded.revision, seq = excluded.seq, updated_ms = excluded.updated_ms",
        (product.product_id, *values, revision, _next_seq(db, "products"), product.timestamp_ms),
    )
    return True


def _release(db: sqlite3.Connection, line_path: str, order: WorkOrder) -> bool:
    if order.product_id is None or order.quantity is None:
        raise ValueError(f"order {order.order_id}: a release needs product_id and quantity")
    values = (line_path, order.product_id, order.quantity, order.unit, order.planned_start_ms, order.planned_end_ms)
    row = db.execute(
        "SELECT line_path, product_id, quantity, unit, planned_start_ms, planned_end_ms, revision FROM orders "
        "WHERE order_id = ?",
        (order.order_id,),
    ).fetchone()
    components = [(item.material_id, item.quantity_per_unit, item.unit) for item in order.bom]
    known = db.execute(
        "SELECT material_id, quantity_per_unit, unit FROM order_components WHERE order_id = ? ORDER BY position",
        (order.order_id,),
    ).fetchall()
    if row is not None and tuple(row)[:6] == values and [tuple(c) for c in known] == components:
        return False
    revision = 1 if row is None else int(row["revision"]) + 1
    db.execute(
        "INSERT INTO orders (order_id, line_path, product_id, quantity, unit, planned_start_ms, planned_end_ms, "
        "released_ms, revision, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (order_id) DO UPDATE SET "
        "line_path = excluded.line_path, product_id = excluded.product_id, quantity = excluded.quantity, "
        "unit = excluded.unit, planned_start_ms = excluded.planned_start_ms, planned_end_ms = "
        "excluded.planned_end_ms, released_ms = excluded.released_ms, revision = excluded.revision, seq = excluded.seq",
        (order.order_id, *values, order.timestamp_ms, revision, _next_seq(db, "orders")),
    )
    db.execute("DELETE FROM order_components WHERE order_id = ?", (order.order_id,))
    db.executemany(
        "INSERT INTO order_components VALUES (?, ?, ?, ?, ?)",
        [(order.order_id, i + 1, *component) for i, component in enumerate(components)],
    )
    return True


def _products(db: sqlite3.Connection, after: int, limit: int) -> list[dict[str, object]]:
    rows = db.execute("SELECT * FROM products WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit)).fetchall()
    out: list[dict[str, object]] = []
    for row in rows:
        item = {key: row[key] for key in row.keys() if key != "updated_ms"}  # noqa: SIM118 - sqlite3.Row
        out.append(item | {"updated_at": iso_utc(row["updated_ms"])})
    return out


def _orders(db: sqlite3.Connection, after: int, limit: int) -> list[dict[str, object]]:
    rows = db.execute(
        "SELECT o.*, (SELECT json_group_array(json_object('material_id', c.material_id, 'quantity_per_unit', "
        "c.quantity_per_unit, 'unit', c.unit)) FROM (SELECT * FROM order_components WHERE order_id = o.order_id "
        "ORDER BY position) AS c) AS bom FROM orders AS o WHERE o.seq > ? ORDER BY o.seq LIMIT ?",
        (after, limit),
    ).fetchall()
    out: list[dict[str, object]] = []
    for row in rows:
        item: dict[str, object] = {
            "seq": row["seq"],
            "order_id": row["order_id"],
            "line_path": row["line_path"],
            "product_id": row["product_id"],
            "quantity": row["quantity"],
            "unit": row["unit"],
            "status": "released",
            "revision": row["revision"],
            "released_at": iso_utc(row["released_ms"]),
            "bom": orjson.loads(row["bom"]),
        }
        for name in ("planned_start", "planned_end"):
            if row[f"{name}_ms"] is not None:
                item[name] = iso_utc(row[f"{name}_ms"])
        out.append(item)
    return out


class Erp:
    """The ERP's database and its REST routes; ``async with`` opens ``<directory>/erp.sqlite``."""

    def __init__(self, *, directory: Path) -> None:
        self.database = DemoDatabase(path=directory / ERP_FILE, schema=_SCHEMA)
        self.counters = {"products": 0, "releases": 0}

    async def __aenter__(self) -> Self:
        await self.database.__aenter__()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.database.__aexit__(*exc_info)

    async def put_product(self, line_path: str, product: ProductType) -> bool:
        """Create or change a product made on ``line_path``; False when it is already so."""
        changed = await self.database.call(lambda db: _put_product(db, line_path, product))
        self.counters["products"] += changed
        return changed

    async def release(self, line_path: str, order: WorkOrder) -> bool:
        """Release (or change) a production order with its components; False when it is already so."""
        changed = await self.database.call(lambda db: _release(db, line_path, order))
        self.counters["releases"] += changed
        return changed

    async def products(self, after: int, limit: int) -> list[dict[str, object]]:
        """Products changed after change ``after``."""
        return await self.database.call(lambda db: _products(db, after, limit))

    async def orders(self, after: int, limit: int) -> list[dict[str, object]]:
        """Orders released or changed after change ``after``, with their BOM."""
        return await self.database.call(lambda db: _orders(db, after, limit))

    def routes(self) -> list[BaseRoute]:
        """``GET /api/products`` and ``GET /api/orders``."""
        return [feed_route("/api/products", self.products), feed_route("/api/orders", self.orders)]
