"""ERP rows to MES events over a real broker: work orders with their BOM, updates, refusals, the cursor after PUBACK."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path

from bridges.source import Samples
from bridges.sql import SqlSource
from model.bridges.sql import SqlBridgeConfig
from model.mes import WorkOrder
from tests.bridges.sql.scenario import Driver
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.recording import recording
from tests.fixtures.waiting import until
from uns.connect import network_clients
from uns.mqtt.types import BrokerUrl

_BOM = json.dumps(
    [
        {"material_id": "can-330", "quantity_per_unit": 1},
        {"material_id": "syrup", "quantity_per_unit": 0.04, "unit": "l"},
    ]
)
_L1, _L2 = "acme/dallas/packaging/line1", "acme/dallas/packaging/line2"


def _erp(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE erp_orders (order_no TEXT PRIMARY KEY, changed_at TEXT, line_path TEXT, material TEXT, "
            "qty NUMERIC, start_at TEXT, bom TEXT)"
        )
        db.executemany(
            "INSERT INTO erp_orders VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                ("4711", "2026-11-24 06:00:00", _L1, "cola-330", 1200, "2026-11-24 07:00:00", _BOM),
                ("4712", "2026-11-24 06:01:00", _L1, "cola-330", -5, "2026-11-24 09:00:00", _BOM),
                ("4713", "2026-11-24 06:02:00", _L2, "lemon-330", 800, "2026-11-24 07:30:00", "[]"),
                ("4714", "2026-11-24 06:03:00", "Line 3", "lemon-330", 800, "2026-11-24 07:30:00", "[]"),
                ("4715", "2026-11-24 06:04:00", _L2, "lemon-330", 900, None, "[]"),
            ],
        )  # fmt: skip


def _config(db: Path) -> SqlBridgeConfig:
    return SqlBridgeConfig.model_validate(
        {
            "name": "erp",
            "edge": {"group": "business"},
            "url": f"sqlite+aiosqlite:///{db}",
            "timezone": "America/Chicago",
            "queries": [
                {
                    "name": "orders",
                    "table": "erp_orders",
                    "key": ["order_no"],
                    "watermark": {"column": "changed_at"},
                    "interval_s": 0.05,
                    "mes": {
                        "event": "work_order",
                        "path_column": "line_path",
                        "fields": {"order_id": "order_no", "product_id": "material", "quantity": "qty",
                                   "planned_start_ms": "start_at", "bom": "bom"},
                        "values": {"action": "release"},
                    },
                }
            ],
        }
    )  # fmt: skip


async def test_rows_become_work_orders_acknowledged_before_the_cursor_moves(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    db = tmp_path / "erp.db"
    _erp(db)
    clients = network_clients(BrokerUrl(port=mosquitto.port))
    async with (
        clients(client_id="mes-listener") as listener,
        recording(listener, ["+/+/+/+/mes/work_order"]) as listened,
    ):
        got = listened.messages
        state = tmp_path / "state.sqlite"
        async with SqlSource(config=_config(db), clients=clients, state_path=state) as source:
            run = Driver(source)
            batch = await run.next()
            # yielded only after every PUBACK: the events are at the broker before the cursor is saved
            assert isinstance(batch, Samples)
            await until(lambda: len(got) == 3, what="three work orders")
            status = {s.name: s.value for s in batch.samples}
            assert (status["Sql/RowsRead"], status["Sql/RowsRefused"]) == (5, 2)
            await run.next()  # hands the batch back: the cursor is saved
            dead = source.dead_letters.dead_letters()
            with sqlite3.connect(db) as conn:
                conn.execute(
                    "UPDATE erp_orders SET qty = 1500, changed_at = '2026-11-24 06:30:00' WHERE order_no = '4711'"
                )
            await run.next()  # the poll that reads the update (the source reads only when the edge node asks)
            await until(lambda: len(got) == 4, what="the updated order")
            await run.crash()
    bodies = [(m.topic, WorkOrder.model_validate_json(m.payload)) for m in got]
    assert [(t, o.order_id, o.quantity) for t, o in bodies] == [
        ("acme/dallas/packaging/line1/mes/work_order", "4711", 1200),
        ("acme/dallas/packaging/line2/mes/work_order", "4713", 800),
        ("acme/dallas/packaging/line2/mes/work_order", "4715", 900),
        ("acme/dallas/packaging/line1/mes/work_order", "4711", 1500),
    ]
    first = bodies[0][1]
    assert [(b.material_id, b.quantity_per_unit, b.unit) for b in first.bom] == [
        ("can-330", 1, "pcs"),
        ("syrup", 0.04, "l"),
    ]
    # naive times are the plant's (America/Chicago: UTC-6 in November)
    assert first.planned_start_ms == round(dt.datetime(2026, 11, 24, 13, tzinfo=dt.UTC).timestamp() * 1000)
    assert first.timestamp_ms == round(dt.datetime(2026, 11, 24, 12, tzinfo=dt.UTC).timestamp() * 1000)
    assert bodies[2][1].planned_start_ms is None
    # the update is a new event (stored as such), under the same row's id prefix
    assert bodies[3][1].event_id != first.event_id
    assert (first.event_id or "").rsplit(":", 1)[0] == (bodies[3][1].event_id or "").rsplit(":", 1)[0]
    assert [(d.connector, d.row_key, d.field) for d in reversed(dead)] == [
        ("erp", "order_no=4712", "quantity (column qty)"),
        ("erp", "order_no=4714", "line_path"),
    ]
