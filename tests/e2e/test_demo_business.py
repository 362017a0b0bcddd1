"""`uns up` as a process: the demo's ERP, QMS and CMMS are in the ready line and feed the MES through their connectors.

The ERP's REST feed is read over HTTP like any client would; the MES's order view answers the ERP's
orders (released from the ERP connector); once the hub has stopped, its DuckDB file holds the product
types, releases, inspections and maintenance orders, each stored with the connector that brought it.
"""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.fixtures.processes import hub_process
from tests.fixtures.waiting import until

L1 = "acme/dallas/bottling/line1"


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - our own http://127.0.0.1 endpoint
        return json.loads(response.read())


def _released(http: str) -> set[str]:
    rows = _get(f"{http}/api/mes/orders?line={L1}")["rows"]
    return {str(row["order_id"]) for row in rows}


@pytest.mark.timeout(120)  # a whole hub starting and stopping on a loaded 2-core box
async def test_up_feeds_the_mes_from_the_demo_erp_qms_and_cmms(tmp_path: Path) -> None:
    args = ["up", "--mqtt-port", "0", "--ws-port", "0", "--http-port", "0", "--data-dir", str(tmp_path)]
    env = {**os.environ, "UNS_SIM__SPEED": "10", "UNS_HISTORIAN__FLUSH_INTERVAL_S": "0.2"}
    with hub_process(args, log=tmp_path / "hub.log", env=env, stop_s=20) as (proc, endpoints):
        assert endpoints["cmms"] == str(tmp_path / "demo" / "cmms.sqlite")
        erp, http = endpoints["erp"], endpoints["http"]
        await until(lambda: len(_get(f"{erp}/api/orders")["items"]) >= 3, within_s=15, what="orders in the ERP")
        ours = {item["order_id"] for item in _get(f"{erp}/api/orders")["items"] if item["line_path"] == L1}
        await until(lambda: ours <= _released(http), within_s=20, what=f"the ERP's orders {ours} in the MES")
        await until(
            lambda: _get(f"{http}/api/mes/characteristics?path={L1}&start=-1h")["rows"] != [],
            within_s=20,
            what="the QMS's inspections in the MES",
        )
    assert proc.returncode == 0
    with duckdb.connect(str(tmp_path / "historian.duckdb"), read_only=True) as db:

        def sources(sql: str) -> list[tuple[Any, ...]]:
            return db.execute(sql).fetchall()

        assert sources("SELECT source, count(*) FROM mes_products GROUP BY ALL") == [("erp-products", 3)]
        releases = sources("SELECT DISTINCT source FROM mes_work_orders WHERE action = 'release'")
        assert releases == [("erp-orders",)]
        assert ours <= {o for (o,) in sources("SELECT order_id FROM mes_work_orders WHERE action = 'release'")}
        assert sources("SELECT DISTINCT source FROM mes_inspections") == [("qms-results",)]
        planned = sources("SELECT count(DISTINCT maintenance_id) FROM mes_maintenance_orders WHERE planned")
        assert planned[0][0] >= 3  # one scheduled per line at start, in the next shift break
        assert sources("SELECT DISTINCT source FROM mes_maintenance_orders") == [("sql:cmms",)]
        assert sources("SELECT count(*) FROM mes_dead_letters") == [(0,)]
