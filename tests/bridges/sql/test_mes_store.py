"""ERP rows through the real MES adapter into DuckDB: a kill before the cursor is saved stores nothing twice,
an update is the order's latest release, and an order no release named is the MES's dead letter naming the row."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path

from bridges.source import Samples
from bridges.sql import SqlSource
from model.bridges.sql import SqlBridgeConfig
from model.config import MesSection
from tests.bridges.sql.scenario import Driver
from tests.fixtures.broker import start_broker
from tests.fixtures.waiting import until
from tests.uns.mes.test_adapter import mes_hub
from uns.connect import local_clients

_LINE = "acme/dallas/bottling/line1"


def _erp(path: Path) -> None:
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute(
            "CREATE TABLE orders (order_no TEXT, step TEXT, changed_at TEXT, qty REAL, PRIMARY KEY (order_no, step))"
        )
        db.executemany(
            "INSERT INTO orders VALUES (?, ?, ?, ?)",
            [("WO-1", "release", "2026-11-24 06:00:00", 100), ("WO-2", "release", "2026-11-24 06:01:00", 200),
             ("WO-9", "start", "2026-11-24 06:02:00", None), ("WO-1", "start", "2026-11-24 06:03:00", None)],
        )  # fmt: skip
        db.commit()


def _config(db: Path) -> SqlBridgeConfig:
    return SqlBridgeConfig.model_validate(
        {"name": "erp", "edge": {"group": "business"}, "url": f"sqlite+aiosqlite:///{db}",
         "queries": [{"name": "orders", "table": "orders", "key": ["order_no", "step"], "batch_rows": 2,
                      "watermark": {"column": "changed_at"}, "interval_s": 0.05,
                      "mes": {"event": "work_order", "path": _LINE,
                              "fields": {"order_id": "order_no", "action": "step", "quantity": "qty"},
                              "values": {"product_id": "cola"}}}]}
    )  # fmt: skip


async def test_orders_are_stored_once_across_a_kill_and_updated(tmp_path: Path) -> None:
    db, state = tmp_path / "erp.db", tmp_path / "sql-state.sqlite"
    _erp(db)
    settings = MesSection(kpi_interval_s=0.2)
    async with start_broker(tmp_path) as broker, mes_hub(broker, tmp_path / "hub", settings) as hub:
        clients = local_clients(broker)
        async with SqlSource(config=_config(db), clients=clients, state_path=state) as source:
            run = Driver(source)
            await run.next()  # WO-1 and WO-2 released (acknowledged), their cursor saved on the next call
            await run.next()  # WO-9's start and WO-1's start sent and acknowledged, never handed back
            await run.crash()  # killed before that batch's cursor was saved
        await until(lambda: hub.rows("SELECT count(*) FROM mes_work_orders") == [(3,)], what="three stored")
        async with SqlSource(config=_config(db), clients=clients, state_path=state) as source:
            run = Driver(source)
            await run.next()  # the unsaved batch read and sent again: same event ids
            with contextlib.closing(sqlite3.connect(db)) as conn:
                conn.execute("UPDATE orders SET qty = 250, changed_at = '2026-11-24 06:10:00' WHERE order_no = 'WO-2'")
                conn.commit()
            await run.next()
            update = await run.next()
            await run.crash()
        assert isinstance(update, Samples)
        status = {s.name: s.value for s in update.samples}
        assert status["Sql/RowsRead"] == 3  # the batch read again, then the update
        await until(lambda: hub.rows("SELECT count(*) FROM mes_work_orders") == [(4,)], what="the update stored")
        dead = hub.rows("SELECT field, body FROM mes_dead_letters")
        stored = hub.rows("SELECT order_id, action, quantity FROM mes_work_orders ORDER BY ts")
    assert stored == [("WO-1", "release", 100.0), ("WO-2", "release", 200.0), ("WO-1", "start", None),
                      ("WO-2", "release", 250.0)]  # fmt: skip
    # the start of an order no release named is refused by the MES; its body names connector and row
    assert len(dead) >= 1
    assert {field for field, _body in dead} == {"order_id"}
    assert all(
        json.loads(str(body))["event_id"].startswith("sql:erp:orders:order_no=WO-9,step=start:") for _f, body in dead
    )
