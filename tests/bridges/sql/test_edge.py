"""The SQL source under the real EdgeNode and Mosquitto: rows as DDATA, health on an outage, buffer before cursor.

An independent Sparkplug host (tests/bridges/edge/spb_host.py) checks every message against the spec.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from bridges.edge import EdgeNode
from bridges.sql import SqlSource, state_path
from model.bridges.common import EdgeNodeConfig
from tests.bridges.edge.spb_host import SpbHost, until
from tests.bridges.sql.scenario import Row, lab_config, make_lab, upsert
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.running import running
from uns.connect import network_clients
from uns.mqtt.types import BrokerUrl

_GROUP = "business"


def _node(mosquitto: Mosquitto, tmp_path: Path, url: str, host: str) -> tuple[EdgeNode, Path]:
    config = lab_config(url)
    edge = EdgeNodeConfig(group=_GROUP, primary_host_id=host, first_reading_wait_s=0.5, health_interval_s=0.2)
    config = config.model_copy(update={"edge": edge})
    path = state_path(config, tmp_path)
    source = SqlSource(config=config, clients=None, state_path=path)
    clients = network_clients(BrokerUrl(port=mosquitto.port))
    return EdgeNode(config=edge, node_id="lims", source=source, clients=clients, data_dir=tmp_path), path


def _cursor_row_id(path: Path) -> int | None:
    with contextlib.closing(sqlite3.connect(path)) as db:
        row = db.execute("SELECT cursor FROM cursors WHERE query = 'lab'").fetchone()
    return None if row is None else int(row[0].split('"int": ')[-1].rstrip("]}"))


async def test_rows_are_published_and_an_outage_shows_in_the_health(mosquitto: Mosquitto, tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'lims.db'}"
    await make_lab(url)
    await upsert(url, [Row(1, 0, 1.5), Row(2, 1, 3.0)])
    host = SpbHost(mosquitto.port, _GROUP, "h1")
    await host.start()
    node, _path = _node(mosquitto, tmp_path, url, "h1")
    try:
        async with running(node):
            seen = lambda: [v for v, _h in host.values("lab", "Lab/Viscosity", kinds=("DBIRTH", "DDATA"))]  # noqa: E731
            await until(lambda: 3.0 in seen(), what="the rows published")
            with contextlib.closing(sqlite3.connect(tmp_path / "lims.db")) as db:
                db.execute('ALTER TABLE "Lab Result" RENAME TO gone')
                db.commit()
            await until(lambda: host.of("DDEATH", "lab"), what="DDEATH of the query's device")
            await until(lambda: (False, False) in host.values(None, "Bridge/Connected", kinds=("NDATA",)),
                        what="Bridge/Connected false")  # fmt: skip
            with contextlib.closing(sqlite3.connect(tmp_path / "lims.db")) as db:
                db.execute('INSERT INTO gone VALUES (3, "2026-11-24 07:00:05", 4.5, 1)')
                db.execute('ALTER TABLE gone RENAME TO "Lab Result"')
                db.commit()
            await until(lambda: 4.5 in seen(), within_s=10, what="the row written during the outage")
            await until(lambda: (True, False) in host.values(None, "Bridge/Connected", kinds=("NDATA",)),
                        what="Bridge/Connected true again")  # fmt: skip
    finally:
        host.stop()
    assert seen().count(1.5) == 1
    assert host.violations == []


async def test_the_cursor_moves_once_the_rows_are_in_the_buffer(mosquitto: Mosquitto, tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'lims.db'}"
    await make_lab(url)
    await upsert(url, [Row(i, i, i * 1.5) for i in range(1, 6)])
    host = SpbHost(mosquitto.port, _GROUP, "h2")
    await host.start(online=False)  # the primary host is offline: every reading goes to the disk buffer
    node, path = _node(mosquitto, tmp_path, url, "h2")
    try:
        async with running(node):
            await until(lambda: node.stats.buffered >= 5, what="the rows buffered")
            await until(lambda: _cursor_row_id(path) == 5, what="the cursor at the last buffered row")
            assert host.values("lab", "Lab/Viscosity", kinds=("DBIRTH", "DDATA")) == []
            host.set_online(True)
            await until(lambda: len([h for _v, h in host.values("lab", "Lab/Viscosity") if h]) >= 4,
                        what="the buffered rows sent as historical")  # fmt: skip
    finally:
        host.stop()
    values = [v for v, _h in host.values("lab", "Lab/Viscosity", kinds=("DBIRTH", "DDATA"))]
    assert {1.5, 3.0, 4.5, 6.0, 7.5} <= set(values)
    assert host.violations == []
