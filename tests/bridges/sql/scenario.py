"""One SQL source scenario run against every real database: a table, rows, restarts, updates and bad rows."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.ext.asyncio import create_async_engine

from bridges.source import DeviceDown, Samples, SourceEvent
from bridges.sql import SqlSource
from model.bridges.sql import SqlBridgeConfig

__all__ = [
    "LAB",
    "Driver",
    "Row",
    "bad_rows_are_dead_lettered",
    "lab_config",
    "make_lab",
    "outage_loses_nothing",
    "restart_neither_loses_nor_repeats",
    "rows_of",
    "state_file",
    "upsert",
]

_META = sa.MetaData()
LAB = sa.Table(
    "Lab Result",  # a space and capitals: each dialect must quote it its own way
    _META,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("updated_at", sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")),
    sa.Column("viscosity", sa.Float),
    sa.Column("batch", sa.Integer),
)
_T0 = dt.datetime(2026, 11, 24, 7, 0, 0)


@dataclasses.dataclass(frozen=True)
class Row:
    """One lab row as the test writes it; ``second`` is its updated_at offset from 07:00."""

    id: int
    second: float
    viscosity: float
    batch: int = 1

    def values(self) -> dict[str, object]:
        return {"id": self.id, "updated_at": _T0 + dt.timedelta(seconds=self.second), "viscosity": self.viscosity,
                "batch": self.batch}  # fmt: skip


async def make_lab(url: str) -> None:
    """(Re)create the lab table."""
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_META.drop_all)
            await conn.run_sync(_META.create_all)
    finally:
        await engine.dispose()


async def upsert(url: str, rows: Sequence[Row]) -> None:
    """Insert or replace rows."""
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            for row in rows:
                await conn.execute(LAB.delete().where(LAB.c.id == row.id))
                await conn.execute(LAB.insert().values(**row.values()))
    finally:
        await engine.dispose()


def lab_config(url: str, *, batch_rows: int = 3, interval_s: float = 0.05) -> SqlBridgeConfig:
    """A connector reading the lab table into metrics of device ``lab``."""
    return SqlBridgeConfig.model_validate(
        {
            "name": "lims",
            "edge": {"group": "business"},
            "url": url,
            "backoff_min_s": 0.05,
            "backoff_max_s": 0.2,
            "timeout_s": 5,
            "queries": [
                {
                    "name": "lab",
                    "table": "Lab Result",
                    "key": ["id"],
                    "watermark": {"column": "updated_at"},
                    "batch_rows": batch_rows,
                    "interval_s": interval_s,
                    "metrics": [
                        {"name": "Lab/Viscosity", "column": "viscosity"},
                        {"name": "Lab/Batch", "column": "batch", "datatype": "UInt8"},
                    ],
                }
            ],
        }
    )


def rows_of(batch: Samples) -> list[tuple[float, int]]:
    """(viscosity, timestamp) of each row a batch carries (its status samples left out)."""
    return [(float(str(s.value)), s.timestamp_ms) for s in batch.samples if s.name == "Lab/Viscosity"]


class Driver:
    """Reads a source as the edge node does: the next event is asked for only once the last one is handled."""

    def __init__(self, source: SqlSource) -> None:
        self.source = source
        self._events: AsyncGenerator[SourceEvent, None] | None = None

    async def next(self) -> SourceEvent:
        """Hand back the last event as handled (its batch is committed) and take the next one."""
        if self._events is None:
            events = self.source.events()
            assert isinstance(events, AsyncGenerator)
            self._events = events
        return await anext(self._events)

    async def batches(self, *, until_quiet: bool = True, limit: int = 50) -> list[Samples]:
        """Batches with rows until one comes with none (all caught up)."""
        out: list[Samples] = []
        for _ in range(limit):
            event = await self.next()
            if isinstance(event, DeviceDown):
                continue
            if not rows_of(event) and until_quiet:
                return out
            out.append(event)
        raise AssertionError(f"still reading rows after {limit} batches")

    async def crash(self) -> None:
        """Stop without handing back the last event: what a kill between taking and committing leaves."""
        if self._events is not None:
            await self._events.aclose()
            self._events = None


def state_file(tmp_path: Path) -> Path:
    """Where the tests keep the connector's state."""
    return tmp_path / "state" / "sql-state.sqlite"


_ROWS = [
    Row(1, 0, 1.5),
    Row(2, 0, 3.0),
    Row(3, 1, 4.5),
    Row(4, 1, 6.0),
    Row(5, 1, 7.5),
    Row(6, 2, 9.0),
    Row(7, 3, 10.5),
]
_MS0 = round(_T0.replace(tzinfo=dt.UTC).timestamp() * 1000)


def _expect(rows: Sequence[Row]) -> list[tuple[float, int]]:
    return [(row.viscosity, _MS0 + round(row.second * 1000)) for row in rows]


async def restart_neither_loses_nor_repeats(url: str, tmp_path: Path) -> None:
    """Rows sharing a timestamp across batch ends, a kill before a commit, a clean restart, an update."""
    await make_lab(url)
    await upsert(url, _ROWS)
    config, path = lab_config(url), state_file(tmp_path)
    async with SqlSource(config=config, clients=None, state_path=path) as source:
        run = Driver(source)
        first = [await run.next(), await run.next()]  # the first is committed when the second is asked for
        assert isinstance(first[1], Samples)
        taken = await run.next()  # the second is committed; the third is taken and never handed back
        assert isinstance(taken, Samples)
        await run.crash()
    assert [rows_of(b) for b in first if isinstance(b, Samples)] == [_expect(_ROWS[:3]), _expect(_ROWS[3:6])]
    assert rows_of(taken) == _expect(_ROWS[6:])
    async with SqlSource(config=config, clients=None, state_path=path) as source:
        run = Driver(source)
        again = await run.batches()
        await run.crash()
    # only the batch that was never committed comes again, with the same timestamps (consumers dedupe on them)
    assert [rows_of(b) for b in again] == [_expect(_ROWS[6:])]
    updated, new = Row(2, 10, 3.25), Row(8, 11, 12.0)
    await upsert(url, [updated, new])
    async with SqlSource(config=config, clients=None, state_path=path) as source:
        run = Driver(source)
        later = await run.batches()
        await run.crash()
    # the clean stop after `again` repeats nothing; the updated row comes again, at its new time
    assert [rows_of(b) for b in later] == [_expect([updated, new])]


async def bad_rows_are_dead_lettered(url: str, tmp_path: Path) -> None:
    """A row whose value does not fit is refused naming connector, row and field; its neighbours go through."""
    await make_lab(url)
    rows = [Row(1, 0, 1.5), Row(2, 1, 3.0, batch=300), Row(3, 2, 4.5), Row(4, 3, 6.0, batch=-1), Row(5, 4, 7.5)]
    await upsert(url, rows)
    async with SqlSource(config=lab_config(url, batch_rows=10), clients=None, state_path=state_file(tmp_path)) as src:
        run = Driver(src)
        batches = await run.batches()
        await run.crash()
        dead = src.dead_letters.dead_letters()
    assert [r for b in batches for r in rows_of(b)] == _expect([rows[0], rows[2], rows[4]])
    status = {s.name: s.value for s in batches[-1].samples if s.name.startswith("Sql/")}
    assert (status["Sql/RowsRead"], status["Sql/RowsRefused"]) == (5, 2)
    assert [(d.connector, d.query, d.row_key, d.field) for d in reversed(dead)] == [
        ("lims", "lab", "id=2", "batch"),
        ("lims", "lab", "id=4", "batch"),
    ]
    assert "300 is outside the UInt8 range" in dead[-1].reason
    assert '"viscosity": 3.0' in dead[-1].row


async def outage_loses_nothing(url: str, tmp_path: Path, *, stop: Callable[[], Awaitable[None]],
                               start: Callable[[], Awaitable[None]]) -> None:  # fmt: skip
    """A database that stops: one DeviceDown per query, retried with backoff, the rows written before it read after."""
    await make_lab(url)
    await upsert(url, _ROWS[:2])
    async with SqlSource(config=lab_config(url), clients=None, state_path=state_file(tmp_path)) as source:
        run = Driver(source)
        assert [rows_of(b) for b in await run.batches()] == [_expect(_ROWS[:2])]
        await upsert(url, _ROWS[2:4])  # written while the source waits, read only after the outage
        await stop()
        down = await run.next()
        assert isinstance(down, DeviceDown)
        assert (down.device, "database") == ("lab", down.reason.split(" ")[0])
        back = asyncio.get_running_loop().create_task(run.next())
        await asyncio.sleep(0.3)  # a few backoff rounds while it is down; none of them yields
        assert not back.done()
        await start()
        batch = await asyncio.wait_for(back, 30)
        assert isinstance(batch, Samples)
        assert rows_of(batch) == _expect(_ROWS[2:4])
        await run.crash()
