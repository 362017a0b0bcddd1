"""MTBF and MTTR per cell and line, the fault-code Pareto and the order list, computed by hand.

Window 06:00-14:00 UTC on 2026-11-24, now 15:00, iso22400 (microstop_s 120).
  filler: 05:00 10000, 05:50 180000, 06:10 10000, 07:00 180000, 07:20 10000, 09:00 180000, 09:01 10000,
          10:00 40000 (an operator labels [10:00, 10:30) state 180000), 10:30 10000, 13:30 180000, 14:30 10000.
    05:50 failure: began before the window -> not this window's (its 600 s in the window are availability loss)
    07:00 failure, TTR 1200; 09:00 failure of 60 s: a microstop (performance loss), not a failure;
    10:00 labelled failure, TTR 1800; 13:30 failure, TTR 3600 (ends 14:30, after the window, before now)
    FE = 3, all restored: MTTR = (1200 + 1800 + 3600) / 3 = 2200 s
    availability loss in the window = 600 + 1200 + 1800 + 1800 = 5400 -> APT = 28800 - 5400 = 23400
    MTBF = 23400 / 3 = 7800 s
  capper: 06:00 10000, 12:00 180000 (still failed at now): FE = 1, open, no MTTR; APT = 21600, MTBF 21600
  line1 (no states of its own: its cells'): FE = 4, 3 restored, MTTR 2200; APT of the union view:
    only 13:30-14:00 has both cells down -> 28800 - 1800 = 27000; MTBF = 27000 / 4 = 6750
  Corrective orders closed in the window: C1 (filler, opened 07:00, started 07:05, closed 07:20: response 300,
    repair 900), C2 (filler, 10:00 / 10:10 / 10:30: 600, 1200), C4 (capper, 08:00 / 08:00 / 08:10: 0, 600),
    C5 (filler, no fault code, 11:00 / 11:00 / 11:05: 0, 300); C0 closed 05:55 is before the window, P1 is
    planned. Filler: 3 orders, mean repair 2400 / 3 = 800, response 900 / 3 = 300; capper: 1, 600, 0;
    line: 4, 3000 / 4 = 750, 900 / 4 = 225.
  Fault Pareto of corrective orders opened in the window (duration = opened to closed):
    E-DRIVE: C1 1200 + C2 1800 = 3000 (2 orders); E-SENSOR: C4 600 + C3 open (2 orders, 1 open);
    no code: C5 11:00-11:05 300. Total 3900: shares 0.769231, 0.153846, 0.076923.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest

from hub.cli import main
from model.config import MesSection
from tests.exports import assert_all_is_honest
from tests.uns.mes.mes_events import Feeder, at, ms, open_db
from uns.errors import BadArgument
from uns.mes import facts
from uns.mes.facts import FactBuilder
from uns.mes.maintenance_reliability import reliability
from uns.mes.maintenance_views import fault_pareto, maintenance_orders
from uns.mes.views_api import run_view
from uns.query.args import document_bytes
from uns.store.database import Database

LINE = "acme/dallas/bottling/line1"
FILLER, CAPPER = f"{LINE}/filler", f"{LINE}/capper"
START, END, NOW = at(24, 6), at(24, 14), at(24, 15)


def _order(feeder: Feeder, path: str, mid: str, **body: object) -> None:
    outcome = feeder.send(path, "maintenance_order", at(24, 15), event_id=mid, maintenance_id=mid, **body)
    assert outcome.status == "stored"


def _plant(feeder: Feeder) -> None:
    feeder.states(FILLER, [(at(24, 5), 10000), (at(24, 5, 50), 180000), (at(24, 6, 10), 10000),
                           (at(24, 7), 180000), (at(24, 7, 20), 10000), (at(24, 9), 180000), (at(24, 9, 1), 10000),
                           (at(24, 10), 40000), (at(24, 10, 30), 10000), (at(24, 13, 30), 180000),
                           (at(24, 14, 30), 10000)])  # fmt: skip
    feeder.send(FILLER, "downtime_reason", at(24, 11), start_ms=ms(at(24, 10)), end_ms=ms(at(24, 10, 30)),
                state=180000)  # fmt: skip
    feeder.states(CAPPER, [(at(24, 6), 10000), (at(24, 12), 180000)])

    def times(
        opened: tuple[int, int], started: tuple[int, int] | None, closed: tuple[int, int] | None
    ) -> dict[str, object]:
        found: dict[str, object] = {"opened_ms": ms(at(24, *opened))}
        if started:
            found["started_ms"] = ms(at(24, *started))
        if closed:
            found["closed_ms"] = ms(at(24, *closed))
        return found

    _order(feeder, FILLER, "C0", status="closed", fault_code="E-DRIVE", **times((5, 0), (5, 10), (5, 55)))
    _order(feeder, FILLER, "C1", status="closed", fault_code="E-DRIVE", technician="T. Berg", priority=1,
           **times((7, 0), (7, 5), (7, 20)))  # fmt: skip
    _order(feeder, FILLER, "C2", status="closed", fault_code="E-DRIVE", **times((10, 0), (10, 10), (10, 30)))
    _order(feeder, CAPPER, "C3", status="started", fault_code="E-SENSOR", **times((12, 0), (12, 30), None))
    _order(feeder, CAPPER, "C4", status="closed", fault_code="E-SENSOR", **times((8, 0), (8, 0), (8, 10)))
    _order(feeder, FILLER, "C5", status="closed", **times((11, 0), (11, 0), (11, 5)))
    _order(feeder, FILLER, "P1", status="opened", planned=True, planned_start_ms=ms(at(24, 12)),
           planned_end_ms=ms(at(24, 12, 30)), **times((5, 0), None, None))  # fmt: skip


@pytest.fixture
def feeder(db: Database) -> Feeder:
    feeder = Feeder(db, MesSection())
    _plant(feeder)
    return feeder


def _reliability(cursor: duckdb.DuckDBPyConnection, by: str) -> dict[str, tuple[object, ...]]:
    rows = reliability(cursor, MesSection(), path=LINE, start=START, end=END, now=NOW, by=by)  # type: ignore[arg-type]
    return {
        r.path: (r.failures, r.open_failures, r.operating_s, r.failure_downtime_s, r.mtbf_s, r.mttr_s,
                 r.repair_orders, r.mean_repair_s, r.mean_response_s)
        for r in rows
    }  # fmt: skip


def test_mtbf_and_mttr_per_cell_and_line_by_hand(feeder: Feeder, cursor: duckdb.DuckDBPyConnection) -> None:
    cells = _reliability(cursor, "cell")
    assert cells[FILLER] == (3, 0, 23400.0, 6600.0, 7800.0, 2200.0, 3, 800.0, 300.0)
    assert cells[CAPPER] == (1, 1, 21600.0, 0.0, 21600.0, None, 1, 600.0, 0.0)
    assert _reliability(cursor, "line") == {LINE: (4, 1, 27000.0, 6600.0, 6750.0, 2200.0, 4, 750.0, 225.0)}


def test_the_capper_restored_later_gets_its_ttr(feeder: Feeder, cursor: duckdb.DuckDBPyConnection) -> None:
    feeder.states(CAPPER, [(at(24, 14, 45), 10000)])  # restored after the window, before now
    assert _reliability(cursor, "cell")[CAPPER][:6] == (1, 0, 21600.0, 9900.0, 21600.0, 9900.0)


def test_reliability_from_facts_equals_the_direct_answer(
    db: Database, feeder: Feeder, cursor: duckdb.DuckDBPyConnection
) -> None:
    builder = FactBuilder(db.connection, feeder.section)
    while builder.build(NOW, hours=100):
        pass
    params = {"path": [LINE], "start": [at(24, 0).isoformat()], "end": [at(24, 14).isoformat()]}
    with facts.bypassed():
        direct = document_bytes(run_view(cursor, feeder.section, "reliability", params, now=NOW))
    assert facts.plan(cursor, feeder.section, [FILLER, CAPPER], at(24, 0), at(24, 14))[0].from_facts is False
    assert any(s.from_facts for s in facts.plan(cursor, feeder.section, [FILLER, CAPPER], at(24, 5), at(24, 14)))
    assert document_bytes(run_view(cursor, feeder.section, "reliability", params, now=NOW)) == direct
    rows = {row["path"]: row for row in orjson.loads(direct)["rows"]}
    assert rows[FILLER]["failures"] == 4  # from midnight the 05:50 failure is this window's too


def test_fault_pareto_by_time_and_by_count(feeder: Feeder, cursor: duckdb.DuckDBPyConnection) -> None:
    bars = fault_pareto(cursor, path=LINE, start=START, end=END)
    assert [(b.fault_code, b.orders, b.closed, b.open, b.duration_s, b.repair_s) for b in bars] == [
        ("E-DRIVE", 2, 2, 0, 3000.0, 2100.0),
        ("E-SENSOR", 2, 1, 1, 600.0, 600.0),
        (None, 1, 1, 0, 300.0, 300.0),
    ]
    assert [round(b.share or 0, 6) for b in bars] == [0.769231, 0.153846, 0.076923]
    assert bars[-1].cumulative_share == pytest.approx(1.0)
    assert [b.count_share for b in bars] == [0.4, 0.4, 0.2]
    assert (bars[0].mean_duration_s, bars[0].mean_repair_s, bars[1].mean_duration_s) == (1500.0, 1050.0, 600.0)
    by_count = fault_pareto(cursor, path=CAPPER, start=START, end=END, rank="count")
    assert [(b.fault_code, b.orders) for b in by_count] == [("E-SENSOR", 2)]
    planned = fault_pareto(cursor, path=LINE, start=at(24, 0), end=END, kind="planned")
    assert [(b.fault_code, b.orders, b.open) for b in planned] == [(None, 1, 1)]


def test_order_list_filters(feeder: Feeder, cursor: duckdb.DuckDBPyConnection) -> None:
    def ids(**given: object) -> list[str]:
        kwargs: dict[str, Any] = {"path": LINE, "start": START, "end": END, "now": NOW} | given
        return [row.maintenance_id for row in maintenance_orders(cursor, **kwargs)]

    assert ids() == ["C3", "C5", "C2", "C4", "C1", "P1"]  # newest opened first; C0 was done before the window
    assert ids(start=at(24, 5)) == ["C3", "C5", "C2", "C4", "C1", "C0", "P1"]
    assert ids(status="open") == ["C3", "P1"]
    assert ids(status="open", kind="corrective") == ["C3"]
    assert ids(kind="planned") == ["P1"]
    assert ids(fault_code="E-DRIVE") == ["C2", "C1"]
    assert ids(path=CAPPER) == ["C3", "C4"]
    assert ids(limit=2) == ["C3", "C5"]
    c1 = maintenance_orders(cursor, path=FILLER, start=START, end=END, now=NOW, fault_code="E-DRIVE")[-1]
    assert (c1.technician, c1.priority, c1.response_s, c1.repair_s, c1.age_s) == ("T. Berg", 1, 300.0, 900.0, None)
    c3 = maintenance_orders(cursor, path=CAPPER, start=START, end=END, now=NOW, status="open")[0]
    assert (c3.status, c3.closed, c3.repair_s, c3.age_s) == ("started", None, None, 3 * 3600.0)


def test_views_refuse_bad_parameters_naming_them(feeder: Feeder, cursor: duckdb.DuckDBPyConnection) -> None:
    for view, params, field in (
        ("maintenance", {"status": ["done"]}, "status"),
        ("maintenance", {"kind": ["preventive"]}, "kind"),
        ("faults", {"rank": ["size"]}, "rank"),
        ("reliability", {"path": [LINE], "by": ["shift"]}, "by"),
        ("reliability", {}, "path"),
    ):
        with pytest.raises(BadArgument) as refused:
            run_view(cursor, MesSection(), view, params, now=NOW)
        assert refused.value.field == field


def test_the_cli_prints_the_views(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    database = open_db(tmp_path / "historian.duckdb")
    try:
        _plant(Feeder(database))
    finally:
        database.close()
    for key in [key for key in os.environ if key.startswith("UNS_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("UNS_DATA_DIR", str(tmp_path))
    window = ["--start", START.isoformat(), "--end", END.isoformat(), "--format", "json"]
    for argv, check in (
        (["faults", "--path", LINE, "--rank", "count"], lambda rows: rows[0]["fault_code"] == "E-DRIVE"),
        (["maintenance", "--status", "open", "--kind", "corrective"], lambda rows: rows[0]["maintenance_id"] == "C3"),
        (["reliability", "--path", LINE, "--by", "line"], lambda rows: rows[0]["failures"] == 4),
    ):
        assert main(["mes", *argv, *window]) == 0, capsys.readouterr().err
        rows = orjson.loads(capsys.readouterr().out)["rows"]
        assert check(rows), rows
    assert main(["mes", "maintenance", "--status", "done"]) == 2
    assert "uns mes maintenance: --status: one of any, open, opened" in capsys.readouterr().err


def test_exports() -> None:
    for name in ("uns.mes.maintenance_views", "uns.mes.maintenance_reliability", "uns.mes.maintenance_store"):
        assert_all_is_honest(name)


def test_a_repair_closed_before_its_start_is_0_s_in_every_mean(db: Database) -> None:
    """Order A's versions: 09:00 started, 09:10 closed (no times: closed at 09:10), 09:15 closed again with
    started_ms 09:12 (the CMMS corrected the start after the close): repair 09:12 -> 09:10 = -120 -> 0 s, as the
    order list shows it; B: opened 10:00, started 10:10, closed 10:40, repair 1800. The mean repair is (0 + 1800) / 2
    = 900 in the Pareto (fault E1) as in the reliability view, not 1800 with A left out."""
    feeder = Feeder(db)
    feeder.states(FILLER, [(at(24, 6), 10000)])
    versions = [(at(24, 9), "A", "started", {}), (at(24, 9, 10), "A", "closed", {}),
                (at(24, 9, 15), "A", "closed", {"started_ms": ms(at(24, 9, 12))}),
                (at(24, 10), "B", "opened", {}), (at(24, 10, 10), "B", "started", {}),
                (at(24, 10, 40), "B", "closed", {})]  # fmt: skip
    for when, mid, status, body in versions:
        outcome = feeder.send(FILLER, "maintenance_order", when, maintenance_id=mid, status=status, fault_code="E1",
                              **body)  # fmt: skip
        assert outcome.status == "stored"
    cursor = db.reader()
    listed = maintenance_orders(cursor, path=FILLER, start=START, end=END, now=NOW)
    assert {o.maintenance_id: o.repair_s for o in listed} == {"A": 0.0, "B": 1800.0}
    (bar,) = fault_pareto(cursor, path=FILLER, start=START, end=END)
    assert (bar.fault_code, bar.closed, bar.repair_s, bar.mean_repair_s) == ("E1", 2, 1800.0, 900.0)
    (row,) = reliability(cursor, MesSection(), path=FILLER, start=START, end=END, now=NOW)
    assert (row.repair_orders, row.mean_repair_s) == (2, 900.0)
    cursor.close()


def test_failure_downtime_and_means_are_what_a_hand_computes(db: Database, cursor: duckdb.DuckDBPyConnection) -> None:
    # three failures of 120.1 s, 130.2 s and 125 s: 375.3 s of failure downtime, MTTR 125.1 s, as a hand sums and
    # divides them (in float seconds the sum is 375.29999999999995, and 375.3 / 3 is 125.10000000000001);
    # the same three as corrective orders: the fault Pareto's mean duration and repair are 125.1 s too
    feeder = Feeder(db, MesSection())
    ttrs = [120.1, 130.2, 125.0]
    changes: list[tuple[datetime, int]] = [(at(24, 6), 10000)]
    for n, ttr in enumerate(ttrs):
        down = at(24, 7 + n)
        changes += [(down, 180000), (down + timedelta(seconds=ttr), 10000)]
        times = {"opened_ms": ms(down), "started_ms": ms(down), "closed_ms": ms(down + timedelta(seconds=ttr))}
        _order(feeder, FILLER, f"X{n}", status="closed", fault_code="E-X", **times)
    feeder.states(FILLER, changes)
    row = reliability(cursor, MesSection(), path=FILLER, start=START, end=END, now=NOW)[0]
    assert (row.failures, row.open_failures, row.failure_downtime_s, row.mttr_s) == (3, 0, 375.3, 125.1)
    assert (row.operating_s, row.mtbf_s) == (8 * 3600 - 375.3, (8 * 3600 - 375.3) / 3)
    assert (row.repair_orders, row.mean_repair_s, row.mean_response_s) == (3, 125.1, 0.0)
    (bar,) = fault_pareto(cursor, path=FILLER, start=START, end=END)
    found = (bar.orders, bar.duration_s, bar.mean_duration_s, bar.repair_s, bar.mean_repair_s)
    assert found == (3, 375.3, 125.1, 375.3, 125.1)


def test_mtbf_is_the_operating_time_divided_once(db: Database, cursor: duckdb.DuckDBPyConnection) -> None:
    # failures of 120.1, 130.2 and 121.013 s in 8 h: 28428.687 s operated, MTBF 9476.229 s (as float seconds divided
    # by 3: 9476.229000000001)
    feeder = Feeder(db, MesSection())
    changes: list[tuple[datetime, int]] = [(at(24, 6), 10000)]
    for n, ttr in enumerate([120.1, 130.2, 121.013]):
        changes += [(at(24, 7 + n), 180000), (at(24, 7 + n) + timedelta(seconds=ttr), 10000)]
    feeder.states(FILLER, changes)
    row = reliability(cursor, MesSection(), path=FILLER, start=START, end=END, now=NOW)[0]
    assert (row.failures, row.failure_downtime_s, row.operating_s, row.mtbf_s) == (3, 371.313, 28428.687, 9476.229)


def test_the_mean_repair_and_response_are_divided_once_as_the_paretos(
    db: Database, cursor: duckdb.DuckDBPyConnection
) -> None:
    # three corrective orders repaired in 120.001, 130.201 and 125 s after answering in as many: 375.202 s over 3,
    # divided once 125.06733333333334 s, the fault Pareto's mean repair; as the SQL average of milliseconds divided
    # by 1000 again, the reliability view read 125.06733333333332 s for the same orders
    feeder = Feeder(db, MesSection())
    for n, seconds in enumerate([120.001, 130.201, 125.0]):
        down = at(24, 7 + n)
        taken = timedelta(seconds=seconds)
        times = {"opened_ms": ms(down - taken), "started_ms": ms(down), "closed_ms": ms(down + taken)}
        _order(feeder, FILLER, f"X{n}", status="closed", fault_code="E-X", **times)
    feeder.states(FILLER, [(at(24, 6), 10000)])
    (bar,) = fault_pareto(cursor, path=FILLER, start=START, end=END)
    (row,) = reliability(cursor, MesSection(), path=FILLER, start=START, end=END, now=NOW)
    assert (bar.mean_repair_s, row.mean_repair_s, row.mean_response_s) == (375202 / 3000,) * 3
    assert row.mean_repair_s == 125.06733333333334
