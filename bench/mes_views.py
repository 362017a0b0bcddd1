"""Benchmark: the MES views on a month of demo MES data, built in-process through the real Deriver and MesStore.

Generation: the real ``PlantModel`` (seed 42) runs each demo line for ``--days`` simulated days in
its own worker process (the lines are not coupled and each machine has its own seeded random
stream, so a one-line model gives that line's history of the whole plant). Every ``--sample-s``
the worker reads each machine and offers ``State`` and ``FaultCode`` when they change (report by
exception, as the Sparkplug bridges publish), and ``Production/GoodCount`` / ``ScrapCount`` every
``--count-s``, on ``acme/dallas/<area>/<line>/<cell>/data/<metric>``, to the real ``Deriver`` with
the demo derive rules. The main process adds what an ERP and operators send (product types, 3
shifts a day with a 30-min break, a work order per line and shift, inspections, labor, material
consumption, lots in a 3-level genealogy), validates every body as the MES intake does
(``read_event``) and stores everything with ``MesStore.apply`` in batches, line by line in time
order, into a DuckDB file.

Views: each runs through ``run_view`` on a freshly opened read-only database: the first run, then
the median of ``--runs`` more, three ways in the same run: old (direct, no facts), the facts read
from DuckDB alone, and new (facts through a fresh ``uns.mes.memo.ViewMemo``, as the adapter serves
them), each line with the 1-minute load average. ``--year FILE`` adds a year
(``bench.mes_views_year``). Then the month's OEE per line, against the model's own running time.
Last, ``--pages`` dashboards asking for ``current`` at once: through the shared ``LivePicture`` (what
``/api/mes/current`` serves) against the baseline of each page computing its own.

    uv run python -m bench.mes_views [--days 30] [--tick-ms 200] [--sample-s 10] [--count-s 300] [--keep FILE [--reuse]]
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import dataclasses
import os
import random
import statistics
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from bridges.sim import plant as sim_plant
from bridges.sim.layout import MACHINE_METRICS
from bridges.sim.mes_rules import DEMO_PLANNED, demo_derive_rules
from bridges.sim.plant import DEMO_LINES, LineSpec, MachineState, PlantModel
from model.config import MesSection, Settings
from uns.mes import facts
from uns.mes import memo as views_memo
from uns.mes.derive import Deriver
from uns.mes.downtime import CurrentRow, current
from uns.mes.intake import Accepted, read_event
from uns.mes.live import LivePicture
from uns.mes.store import Incoming, MesStore
from uns.mes.views_api import run_view
from uns.query.args import document_bytes
from uns.settings import load_plant
from uns.store.database import Database

START = datetime(2026, 11, 1, tzinfo=UTC)
START_MS = int(START.timestamp() * 1000)
HOUR_MS, DAY_MS = 3_600_000, 86_400_000
SHIFTS = (("early", 6), ("late", 14), ("night", 22))  # UTC start hours, 8 h each
_BATCH = 2_000

# line id -> (product id, name, ideal cycle time s per counted unit of the line's output, BOM per unit)
_PRODUCTS: dict[str, tuple[str, str, float, tuple[tuple[str, float, str], ...]]] = {
    "line1": ("cola-05-pet", "Cola 0.5 l PET", 60.0 / 400.0,
              (("preform-23g", 1.0, "pcs"), ("cap-28mm", 1.0, "pcs"), ("label-05", 1.0, "pcs"), ("syrup", 0.05, "l"))),
    "line2": ("lemon-033-glass", "Lemonade 0.33 l glass", 60.0 / 300.0,
              (("bottle-033", 1.0, "pcs"), ("crown-26mm", 1.0, "pcs"), ("syrup", 0.033, "l"))),
    # line3 counts pallets at its output cell: 60 cases, made at the case packer's 14 cases/min
    "line3": ("pallet-mixed", "Pallet of 60 cases", 60 * 60.0 / 14.0,
              (("case-blank", 60.0, "pcs"), ("stretch-film", 1.5, "m2"))),
}  # fmt: skip


def _paths() -> dict[str, str]:
    """Cell id -> equipment path, from the demo plant file."""
    paths = load_plant(None).equipment_paths()
    out: dict[str, str] = {}
    for line in DEMO_LINES:
        for machine in line.machines:
            out[machine.id] = next(p for p in paths if p.endswith(f"/{line.id}/{machine.id}"))
    return out


# -- generation, part 1: the plant and the Deriver (one worker process per line) -----------------------


@dataclasses.dataclass(frozen=True, slots=True)
class LineRun:
    """What one line's worker produced: derived events as (topic, body) and the model's own figures."""

    line: str
    path: str
    events: list[tuple[str, bytes]]
    offers: int
    seconds: float
    running_share: dict[str, float]
    """Cell id -> share of simulated time the model spent RUNNING."""
    good: dict[str, int]


def simulate_line(index: int, days: float, tick_ms: int, sample_s: int, count_s: int) -> LineRun:
    """Run one demo line through the model and the Deriver; runs in a worker process."""
    sim_plant.TICK_MS = tick_ms  # this process only: the model steps in ticks of this length
    started = time.perf_counter()
    line: LineSpec = DEMO_LINES[index]
    paths = _paths()
    model = PlantModel(seed=42, lines=[line], utilities=())  # the utilities run no MES
    deriver = Deriver(demo_derive_rules("acme"))
    first = model.snapshot()
    metrics = {m.id: [x.name for x in MACHINE_METRICS[m.id] if x.name.startswith("Production/")] for m in line.machines}
    last: dict[str, int] = {}
    events: list[tuple[str, bytes]] = []
    offers = 0
    steps = round(days * DAY_MS / (sample_s * 1000))
    for step in range(1, steps + 1):
        model.advance(sample_s * 1000)
        snap, ts = model.snapshot(), START_MS + model.time_ms
        counting = step * sample_s % count_s == 0
        for cell, machine in snap.machines.items():
            base = f"{paths[cell]}/data/"
            values: list[tuple[str, int]] = [("State", int(machine.state)), ("FaultCode", machine.fault_code)]
            if counting:
                values += [
                    (n, machine.good_count if n.endswith("GoodCount") else machine.scrap_count) for n in metrics[cell]
                ]
            for name, value in values:
                topic = base + name
                if name in ("State", "FaultCode") and last.get(topic) == value:
                    continue  # report by exception, as the bridges publish
                last[topic] = value
                offers += 1
                events.extend((e.topic, orjson.dumps(e.body)) for e in deriver.offer(topic, ts, value, "good"))
    events.extend((e.topic, orjson.dumps(e.body)) for e in deriver.flush())
    end = model.snapshot()
    share = {c: m.state_ms[MachineState.RUNNING] / max(model.time_ms, 1) for c, m in end.machines.items()}
    good = {c: m.good_count - first.machines[c].good_count for c, m in end.machines.items()}
    line_path = paths[line.machines[0].id].rsplit("/", 1)[0]
    return LineRun(line.id, line_path, events, offers, time.perf_counter() - started, share, good)


# -- generation, part 2: what an ERP and operators send ---------------------------------------------


def _ev(path: str, event: str, ts: int, **body: object) -> tuple[str, bytes]:
    return f"{path}/mes/{event}", orjson.dumps({"timestamp_ms": ts, **body})


def products(site: str) -> list[tuple[str, bytes]]:
    """Each line's product type, sent once by the ERP before the month."""
    return [
        _ev(site, "product_type", START_MS - DAY_MS, product_id=pid, name=name, ideal_cycle_time_s=ideal, source="erp")
        for pid, name, ideal, _ in _PRODUCTS.values()
    ]


def _shift_key(line: str, day: int, shift: str) -> str:
    return f"{line}-{(START + timedelta(days=day)).date().isoformat()}-{shift}"


def erp_and_operators(run: LineRun, cells: list[str], days: int, paths: dict[str, str]) -> list[tuple[str, bytes]]:
    """Shifts, orders, labor, consumption, inspections and lots of one line for the month."""
    rng = random.Random(f"42:{run.line}:erp")
    pid, _, ideal, bom = _PRODUCTS[run.line]
    line, out = run.path, []
    for day in range(days):
        for name, hour in SHIFTS:
            key = _shift_key(run.line, day, name)
            start = START_MS + day * DAY_MS + hour * HOUR_MS
            end, brk = start + 8 * HOUR_MS, start + 4 * HOUR_MS
            if end > START_MS + days * DAY_MS:
                continue
            out.append(
                _ev(
                    line,
                    "shift",
                    start - HOUR_MS,
                    shift_id=key,
                    name=name,
                    start_ms=start,
                    end_ms=end,
                    breaks=[{"start_ms": brk, "end_ms": brk + HOUR_MS // 2, "name": "break"}],
                    source="erp",
                )
            )
            qty = round(7.5 * 3600 / ideal * 0.85)
            order = f"WO-{key}"
            bom_items = [{"material_id": m, "quantity_per_unit": q, "unit": u} for m, q, u in bom]
            out.append(
                _ev(
                    line,
                    "work_order",
                    start - HOUR_MS,
                    order_id=order,
                    action="release",
                    product_id=pid,
                    quantity=qty,
                    planned_start_ms=start,
                    planned_end_ms=end,
                    bom=bom_items,
                    source="erp",
                )
            )
            out.append(_ev(line, "work_order", start, order_id=order, action="start", source="erp"))
            out.append(_ev(line, "work_order", end - 1, order_id=order, action="complete", source="erp"))
            for k, cell in enumerate(cells[:2]):
                operator = f"op-{run.line}-{name}-{k}"
                out.append(_ev(paths[cell], "labor", start + 60_000, operator_id=operator, action="on", order_id=order))
                out.append(_ev(paths[cell], "labor", end - 60_000, operator_id=operator, action="off", order_id=order))
            made = qty / 7.5  # per hour, about
            for hours in range(2, 9, 2):  # material booked every 2 h against the BOM
                for material, per_unit, unit in bom:
                    quantity = round(made * 2 * per_unit * rng.uniform(0.9, 1.05), 1)
                    out.append(_ev(paths[cells[0]], "material_consumption", start + hours * HOUR_MS - 2,
                                   material_id=material, lot_id=f"{material}-{day:02d}", quantity=quantity, unit=unit,
                                   order_id=order))  # fmt: skip
            out.extend(_inspections(rng, run.line, paths[cells[0]], order, key, start, end))
            out.append(_lot(run.line, line, order, key, pid, bom, day, qty, end - 2))
    return out


def _inspections(
    rng: random.Random, line: str, cell: str, order: str, key: str, start: int, end: int
) -> Iterator[tuple[str, bytes]]:
    if line == "line3":
        return
    target = 500.0 if line == "line1" else 330.0
    for n, ts in enumerate(range(start + 15 * 60_000, end, 15 * 60_000)):
        value = round(rng.gauss(target + 0.4, 1.3), 2)
        body: dict[str, object] = {"characteristic": "fill_volume_ml", "value": value, "lower_limit": target - 5,
                                   "upper_limit": target + 5, "target": target, "unit": "ml", "order_id": order,
                                   "lot_id": f"LOT-{key}", "sample_id": f"{key}-{n}"}  # fmt: skip
        if rng.random() < 0.01:  # a few rejected samples with a defect type
            defect = rng.choice(("underfill", "cap loose", "label skew", "foreign particle"))
            body.update(result="fail", defect_type=defect, severity=rng.choice(("minor", "major", "critical")))
            if defect == "underfill":
                body["value"] = round(target - rng.uniform(5.5, 9.0), 2)
        yield _ev(cell, "quality_inspection", ts, **body)


def _lot(
    line_id: str,
    line: str,
    order: str,
    key: str,
    pid: str,
    bom: tuple[tuple[str, float, str], ...],
    day: int,
    qty: int,
    ts: int,
) -> tuple[str, bytes]:
    """The shift's output lot: bottles from material lots (level 1), pallets from both bottle lots (level 2)."""
    if line_id == "line3":
        inputs = [{"lot_id": f"LOT-{key.replace('line3', other)}", "material_id": _PRODUCTS[other][0]}
                  for other in ("line1", "line2")]  # fmt: skip
        inputs += [{"lot_id": f"{m}-{day:02d}", "material_id": m} for m, _, _ in bom]
    else:
        inputs = [{"lot_id": f"{m}-{day:02d}", "material_id": m} for m, _, _ in bom]
    return _ev(line, "lot_production", ts, lot_id=f"LOT-{key}", product_id=pid, quantity=qty, order_id=order,
               input_lots=inputs)  # fmt: skip


# -- generation, part 3: into DuckDB through the MES intake and store ------------------------------


@dataclasses.dataclass(slots=True)
class Stored:
    """Outcomes of ``MesStore.apply`` and the time spent in it."""

    counts: dict[str, int] = dataclasses.field(default_factory=lambda: {"stored": 0, "duplicate": 0, "rejected": 0})
    by_event: dict[str, int] = dataclasses.field(default_factory=dict)
    seconds: float = 0.0
    reasons: dict[str, int] = dataclasses.field(default_factory=dict)


def store(mes: MesStore, messages: list[tuple[str, bytes]], tally: Stored) -> None:
    """Validate each message as the intake does, then store in time order, in batches."""
    items: list[tuple[int, int, Incoming]] = []
    for seq, (topic, raw) in enumerate(messages):
        read = read_event(topic, raw)
        if not isinstance(read, Accepted):
            raise SystemExit(f"bench bug: {topic} {raw[:200]!r} -> {read}")
        incoming = Incoming(topic=read.topic, path=read.path, event=read.event, body=read.body,
                            received_ms=read.body.timestamp_ms + 40, raw=raw)  # fmt: skip
        items.append((read.body.timestamp_ms, seq, incoming))
    items.sort(key=lambda item: (item[0], item[1]))
    started = time.perf_counter()
    for k in range(0, len(items), _BATCH):
        batch = [item for _, _, item in items[k : k + _BATCH]]
        for item, outcome in zip(batch, mes.apply(batch), strict=True):
            tally.counts[outcome.status] += 1
            tally.by_event[item.event] = tally.by_event.get(item.event, 0) + (outcome.status == "stored")
            if outcome.status == "rejected":
                why = f"{item.event}.{outcome.field}: {outcome.reason}"
                tally.reasons[why] = tally.reasons.get(why, 0) + 1
    tally.seconds += time.perf_counter() - started


def mes_section() -> MesSection:
    """The MES settings ``uns up`` gives the demo plant: ``hub.app.mes_section`` itself (no ``mes.output_cells``,
    the plant file's last cells as ``plant_outputs``, the demo's rules)."""
    from hub.app import mes_section as hub_mes_section  # the composition root: only the bench's main process

    return hub_mes_section(Settings(), load_plant(None))


def generate(args: argparse.Namespace, path: Path) -> list[LineRun]:
    """Build the month into ``path``; print the generation figures."""
    paths, section = _paths(), mes_section()
    cells = {line.id: [m.id for m in line.machines] for line in DEMO_LINES}
    tally, runs = Stored(), []
    started = time.perf_counter()
    with Database(path=path) as db, concurrent.futures.ProcessPoolExecutor(max_workers=args.workers) as pool:
        mes = MesStore(db.connection, section)
        store(mes, products("acme/dallas"), tally)
        futures = [
            pool.submit(simulate_line, index, args.days, args.tick_ms, args.sample_s, args.count_s)
            for index in range(len(DEMO_LINES))
        ]
        for future in concurrent.futures.as_completed(futures):
            run = future.result()
            runs.append(run)
            erp = erp_and_operators(run, cells[run.line], int(args.days), paths)
            before = tally.seconds
            store(mes, [*run.events, *erp], tally)
            print(f"  {run.line}: model + Deriver {run.seconds:.0f} s ({run.offers:,} samples offered, "
                  f"{len(run.events):,} derived events); {len(erp):,} ERP/operator events; "
                  f"stored in {tally.seconds - before:.0f} s", flush=True)  # fmt: skip
            shares = ", ".join(f"{cell} {100 * share:.1f}%" for cell, share in run.running_share.items())
            print(f"    model RUNNING share: {shares}; good units {run.good}")
        db.connection.execute("CHECKPOINT")
    total = time.perf_counter() - started
    size = path.stat().st_size / 2**20
    print(f"generated {args.days:g} days in {total:.0f} s: {tally.counts}")
    print(f"  stored by event: {dict(sorted(tally.by_event.items()))}")
    for why, n in tally.reasons.items():
        print(f"  rejected {n} x {why}")
    stored = sum(tally.counts.values())
    print(f"  MesStore.apply: {stored:,} events in {tally.seconds:.0f} s = {stored / tally.seconds:,.0f} events/s;"
          f" overall {stored / total:,.0f} events/s; DB {size:.1f} MiB")  # fmt: skip
    return runs


# -- the views --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Timing:
    """First run on a fresh connection, median of the next runs, rows of the answer."""

    first: float
    median: float
    rows: int


def _size(document: dict[str, object]) -> int:
    """Rows of an answer: ``rows``, else every list in the object (points, nodes, edges, ...)."""
    if isinstance(document.get("rows"), list):
        return len(document["rows"])  # type: ignore[arg-type]
    return sum(len(v) for v in document.values() if isinstance(v, list | tuple))


def load() -> str:
    """The 1-minute load average of the shared box, printed beside every figure."""
    return f"{os.getloadavg()[0]:.1f}"


def time_view(
    path: Path,
    view: str,
    params: dict[str, list[str]],
    now: datetime,
    runs: int,
    *,
    direct: bool = False,
    memo: bool = True,
) -> tuple[Timing, bytes]:
    """Run one view ``1 + runs`` times on a freshly opened read-only database.

    ``direct``: without the facts (the old way); else from facts, through a new memo (``uns.mes.memo``,
    as the adapter attaches one: the first run loads it) unless ``memo`` is false.
    """
    section = mes_section()
    with (
        Database(path=path, read_only=True) as db,
        contextlib.closing(db.reader()) as cursor,
        facts.bypassed() if direct else contextlib.nullcontext(),
    ):
        detach = views_memo.attach(cursor, views_memo.ViewMemo()) if memo and not direct else (lambda: None)
        times, rows, answer = [], 0, b""
        for _ in range(1 + runs):
            started = time.perf_counter()
            document = run_view(cursor, section, view, params, now=now)
            times.append(time.perf_counter() - started)
            rows, answer = _size(document), document_bytes(document)
        detach()
    return Timing(times[0], statistics.median(times[1:]), rows), answer


def build_facts(path: Path, now: datetime) -> tuple[float, int, int]:
    """Build the per-hour facts as the running adapter does (a week per writer call): seconds, calls, hours."""
    with Database(path=path) as db:
        builder = facts.FactBuilder(db.connection, mes_section())
        started, calls, hours = time.perf_counter(), 0, 0
        while built := builder.build(now):
            calls, hours = calls + 1, hours + built
        db.connection.execute("CHECKPOINT")
        return time.perf_counter() - started, calls, hours


def time_pages(path: Path, now: datetime, pages: int) -> tuple[float, float, int]:
    """Wall seconds for ``pages`` concurrent reads of ``current``: each computing its own, then sharing one."""
    section = mes_section()
    with Database(path=path, read_only=True) as db:

        def compute(_now: datetime) -> list[CurrentRow]:
            with contextlib.closing(db.reader()) as cursor:
                return current(
                    cursor, section, now=now, output_cells=section.output_cells, plant_outputs=section.plant_outputs
                )

        async def alone() -> None:
            await asyncio.gather(*(asyncio.to_thread(compute, now) for _ in range(pages)))

        picture = LivePicture(compute, max_age_s=section.kpi_interval_s)

        async def shared() -> None:
            await asyncio.gather(*(picture.read() for _ in range(pages)))

        compute(now)  # warm the connection, as a running hub's is
        started = time.perf_counter()
        asyncio.run(alone())
        naive = time.perf_counter() - started
        started = time.perf_counter()
        asyncio.run(shared())
        return naive, time.perf_counter() - started, picture.computations


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def cases(days: int, lot: str, raw_lot: str, order: str) -> list[tuple[str, dict[str, list[str]]]]:
    """Every view with realistic parameters: (view, params)."""
    end = START + timedelta(days=days)
    day, week, month = end - timedelta(days=1), end - timedelta(days=min(7, days)), START
    site, line = "acme/dallas", "acme/dallas/bottling/line1"

    def win(p: str, lo: datetime, **more: str) -> dict[str, list[str]]:
        return {"path": [p], "start": [_iso(lo)], "end": [_iso(end)], **{k: [v] for k, v in more.items()}}

    return [
        ("oee", win(site, day, by="line")),
        ("oee", win(site, week, by="line")),
        ("oee", win(site, month, by="line")),
        ("oee", win(site, day, by="cell")),
        ("oee", win(site, week, by="cell")),
        ("oee", win(site, month, by="cell")),
        ("oee", win(line, month, by="shift")),
        ("oee", win(line, month, by="day")),
        ("downtime", win(line, month)),
        ("downtime", win("acme/dallas/bottling/line2", month)),
        ("downtime", win("acme/dallas/packaging/line3", month)),
        ("timeline", win(line, day)),
        ("current", {}),
        ("orders", {}),
        ("orders", {"line": [line], "status": ["completed"]}),
        ("scrap", win(site, month, by="day")),
        ("defects", win(site, month)),
        (
            "spc",
            {
                "characteristic": ["fill_volume_ml"],
                "path": [line],
                "start": [_iso(month)],
                "end": [_iso(end)],
                "subgroup": ["5"],
            },
        ),
        ("labor", win(site, month, by="order")),
        ("material", {"order_id": [order]}),
        ("genealogy", {"lot": [lot], "direction": ["backward"]}),
        ("genealogy", {"lot": [raw_lot], "direction": ["forward"]}),
    ]


def _label(params: dict[str, list[str]]) -> str:
    def short(key: str, value: str) -> str:
        if key in ("start", "end"):
            return ""
        return value.removeprefix("acme/dallas/").removeprefix("acme/dallas") or "site"

    text = " ".join(filter(None, (short(k, v[0]) for k, v in params.items())))
    if "start" in params:
        span = datetime.fromisoformat(params["end"][0]) - datetime.fromisoformat(params["start"][0])
        text += f" {span.days}d" if span.days else f" {span.seconds // 3600}h"
    return text


def _plain(row: object) -> dict[str, object]:
    if dataclasses.is_dataclass(row) and not isinstance(row, type):
        return dataclasses.asdict(row)
    assert isinstance(row, dict)
    return row


def sanity(path: Path, days: int, runs: list[LineRun]) -> None:
    """The month's OEE per line, beside the model's own running share of its cells."""
    end = START + timedelta(days=days)
    params = {"path": ["acme/dallas"], "start": [_iso(START)], "end": [_iso(end)], "by": ["line"]}
    with Database(path=path, read_only=True) as db, contextlib.closing(db.reader()) as cursor:
        found = run_view(cursor, mes_section(), "oee", params, now=end)["rows"]
    assert isinstance(found, list)  # the oee view answers rows
    rows: list[dict[str, object]] = [_plain(r) for r in found]
    share = {run.path: run.running_share for run in runs}
    print(f"\n== month OEE per line (ISO 22400; demo planned states {DEMO_PLANNED})")
    print(f"  {'line':<28} {'OEE':>7} {'avail':>7} {'perf':>7} {'qual':>7}  model RUNNING share per cell")
    for row in rows:

        def pct(key: str, row: dict[str, object] = row) -> str:
            value = row[key]
            return "-" if not isinstance(value, float | int) else f"{100 * value:.1f}%"

        cells = " ".join(f"{c} {100 * s:.1f}%" for c, s in share.get(str(row["path"]), {}).items())
        print(f"  {row['path']!s:<28} {pct('oee'):>7} {pct('availability'):>7} {pct('performance'):>7}"
              f" {pct('quality'):>7}  {cells}")  # fmt: skip
    for row in rows:
        print(
            f"  {row['path']}: "
            + ", ".join(f"{k} {v:.0f}" for k, v in row.items() if k.endswith("_s") and isinstance(v, float | int))
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=30, help="simulated days")
    parser.add_argument("--tick-ms", type=int, default=200, help="model tick (the model's own is 100 ms)")
    parser.add_argument("--sample-s", type=int, default=10, help="how often State/FaultCode are read")
    parser.add_argument("--count-s", type=int, default=300, help="how often the counters are published")
    parser.add_argument("--workers", type=int, default=2, help="model processes (one line each at a time)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per view after the first")
    parser.add_argument("--pages", type=int, default=20, help="dashboards reading `current` at once")
    parser.add_argument("--keep", type=Path, default=None, help="keep the DuckDB file here")
    parser.add_argument("--reuse", action="store_true", help="with --keep: time the views on the kept file")
    parser.add_argument("--year", type=Path, default=None, help="also time year views on 12 copies of the month here")
    parser.add_argument("--generate-only", action="store_true", help="with --keep: build the file and stop")
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="uns-bench-mes-") as name:
        path = args.keep or Path(name) / "mes.duckdb"
        print(f"== generating {args.days} days of demo MES data (tick {args.tick_ms} ms, states every"
              f" {args.sample_s} s, counters every {args.count_s} s, {args.workers} model processes)")  # fmt: skip
        runs = [] if args.reuse and path.exists() else generate(args, path)
        if args.generate_only:
            return
        last_day = (START + timedelta(days=args.days - 1)).date().isoformat()
        lot, raw_lot = f"LOT-line3-{last_day}-early", f"preform-23g-{max(args.days - 2, 0):02d}"
        order = f"WO-line1-{last_day}-early"
        now = START + timedelta(days=args.days)
        seconds, calls, hours = build_facts(path, now)
        print(f"\n== per-hour facts built in {seconds:.1f} s ({calls} writer calls, {hours} hours per state path)")
        print(f"\n== views (ms: first run on a fresh connection / median of {args.runs}); now = {now:%Y-%m-%d %H:%M}Z;"
              " old = direct (no facts), facts = facts alone (no memo), new = through the memo;"
              " same = byte-equal")  # fmt: skip
        print(f"  {'view':<10} {'parameters':<44} {'rows':>6} {'old first':>9} {'old med':>8} {'facts med':>9}"
              f" {'new first':>9} {'new med':>8} {'old/new':>7} same load")  # fmt: skip
        for view, params in cases(args.days, lot, raw_lot, order):
            old, old_answer = time_view(path, view, params, now, args.runs, direct=True)
            alone, alone_answer = time_view(path, view, params, now, args.runs, memo=False)
            t, answer = time_view(path, view, params, now, args.runs)
            same = answer == old_answer == alone_answer
            print(f"  {view:<10} {_label(params):<44} {t.rows:>6} {old.first * 1000:>9.0f} {old.median * 1000:>8.0f}"
                  f" {alone.median * 1000:>9.0f} {t.first * 1000:>9.0f} {t.median * 1000:>8.0f}"
                  f" {old.median / t.median:>6.1f}x {'yes' if same else 'NO'} {load()}", flush=True)  # fmt: skip
        print(f"  {'process-values':<10} skipped: the bench stores no historian samples")
        if args.year:
            from bench.mes_views_year import time_year  # it imports this module: imported when asked

            time_year(path, args.year, args.runs, reuse=args.reuse)
        sanity(path, args.days, runs)
        naive, shared, computations = time_pages(path, now, args.pages)
        print(f"\n== {args.pages} dashboards reading `current` at once: shared picture {shared * 1000:.0f} ms"
              f" ({computations} computation) vs each its own {naive * 1000:.0f} ms ({args.pages} computations):"
              f" {naive / shared:.0f}x")  # fmt: skip
    print(f"\n(whole bench {time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
