"""Lot genealogy over a real DuckDB file: a multi-level tree traced both ways, cycles, and process values."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import duckdb
import pytest

from tests.uns.historian.fill import add_samples, add_series
from tests.uns.mes.mes_rows import put
from uns.errors import BadArgument
from uns.mes.genealogy import LotEdge, LotTree, process_values, trace
from uns.store.database import Database

LINE = "acme/dallas/bottling/line1"
MIXER = f"{LINE}/mixer"
FILLER = f"{LINE}/filler"
PALLETIZER = f"{LINE}/palletizer"
RECEIVING = "acme/dallas/warehouse/receiving"
T0 = datetime(2026, 11, 24, tzinfo=UTC)
H = timedelta(hours=1)


def make_lot(
    connection: duckdb.DuckDBPyConnection,
    path: str,
    hour: float,
    lot_id: str,
    order: str | None,
    inputs: Sequence[tuple[str, str | None]] = (),
) -> None:
    """A lot_production event: the lot row and one input row per (input lot, material)."""
    key = put(connection, "mes_lots", path=path, ts=T0 + hour * H, lot_id=lot_id, product_id="p-" + lot_id,
              quantity=10.0, unit="pcs", order_id=order)  # fmt: skip
    for input_lot, material_id in inputs:
        connection.execute(
            "INSERT INTO mes_lot_inputs VALUES (?, ?, ?, ?, 1.0)", [key, lot_id, input_lot, material_id]
        )  # fmt: skip


def order(connection: duckdb.DuckDBPyConnection, order_id: str, start: float, complete: float | None) -> None:
    put(connection, "mes_work_orders", path=LINE, ts=T0 + start * H, order_id=order_id, action="start")
    if complete is not None:
        put(connection, "mes_work_orders", path=LINE, ts=T0 + complete * H, order_id=order_id, action="complete")


def consume(connection: duckdb.DuckDBPyConnection, path: str, hour: float, lot_id: str, order_id: str) -> None:
    put(connection, "mes_consumption", path=path, ts=T0 + hour * H, material_id="m-" + lot_id, lot_id=lot_id,
        quantity=1.0, unit="pcs", order_id=order_id)  # fmt: skip


@pytest.fixture
def plant(db: Database) -> None:
    """Raw lots -> syrup batches -> filled lots -> a pallet.

    ```
    S1 (sugar) ─┬─▶ SYR1 ─┬─▶ F1 ─┬─▶ PAL1
    W1 (water) ─┘         │  B1 ─┘│
                          └─▶ F2 ─┘
                             C1 ─┘
    S1 ────────────▶ SYR2            (S1 is shared by SYR1 and SYR2; SYR1 by F1 and F2)
    ```
    """
    c = db.connection
    order(c, "mix1", 1, 2)
    order(c, "fill1", 8, 10)
    order(c, "fill2", 10, None)  # still running
    make_lot(c, MIXER, 2, "SYR1", "mix1", [("S1", "sugar"), ("W1", "water")])
    make_lot(c, MIXER, 3, "SYR2", "mix1", [("S1", "sugar")])
    make_lot(c, FILLER, 9.5, "F1", "fill1", [("SYR1", "syrup"), ("B1", "bottle")])
    make_lot(c, FILLER, 11, "F2", "fill2", [("SYR1", "syrup"), ("C1", "cap")])
    make_lot(c, PALLETIZER, 12, "PAL1", None, [("F1", None), ("F2", None)])
    consume(c, MIXER, 1.5, "S1", "mix1")
    consume(c, FILLER, 8.5, "B1", "fill1")
    consume(c, FILLER, 8.5, "SYR1", "fill1")
    consume(c, FILLER, 10.5, "SYR1", "fill2")
    consume(c, PALLETIZER, 11.5, "F1", "pack1")
    put(c, "mes_inspections", path=RECEIVING, ts=T0, characteristic="brix", value=65.0, result="pass", lot_id="S1")
    put(c, "mes_inspections", path=FILLER, ts=T0 + 9 * H, characteristic="fill_ml", value=498.0, result="fail",
        defect_type="underfill", severity="major", lot_id="F1")  # fmt: skip
    put(c, "mes_inspections", path=FILLER, ts=T0 + 9.2 * H, characteristic="fill_ml", value=500.0, result="pass",
        lot_id="F1")  # fmt: skip


def _depths(tree: LotTree) -> dict[str, int]:
    return {node.lot_id: node.depth for node in tree.nodes}


def _edges(tree: LotTree) -> set[tuple[str, str]]:
    return {(edge.lot_id, edge.input_lot_id) for edge in tree.edges}


def test_backward_trace_reaches_every_input_at_its_depth(cursor, plant) -> None:
    tree = trace(cursor, "PAL1", direction="backward")
    assert _depths(tree) == {"PAL1": 0, "F1": 1, "F2": 1, "SYR1": 2, "B1": 2, "C1": 2, "S1": 3, "W1": 3}
    assert [node.lot_id for node in tree.nodes] == ["PAL1", "F1", "F2", "B1", "C1", "SYR1", "S1", "W1"]
    assert _edges(tree) == {
        ("PAL1", "F1"), ("PAL1", "F2"), ("F1", "SYR1"), ("F1", "B1"),
        ("F2", "SYR1"), ("F2", "C1"), ("SYR1", "S1"), ("SYR1", "W1"),
    }  # fmt: skip
    assert (tree.cycles, tree.truncated) == ((), False)
    assert LotEdge(lot_id="SYR1", input_lot_id="S1", material_id="sugar", quantity=1.0) in tree.edges


def test_forward_trace_finds_every_lot_an_input_went_into(cursor, plant) -> None:
    tree = trace(cursor, "S1", direction="forward")
    assert _depths(tree) == {"S1": 0, "SYR1": 1, "SYR2": 1, "F1": 2, "F2": 2, "PAL1": 3}
    assert _edges(tree) == {
        ("SYR1", "S1"), ("SYR2", "S1"), ("F1", "SYR1"), ("F2", "SYR1"), ("PAL1", "F1"), ("PAL1", "F2"),
    }  # fmt: skip
    assert _depths(trace(cursor, "B1", direction="forward")) == {"B1": 0, "F1": 1, "PAL1": 2}
    assert _depths(trace(cursor, "PAL1", direction="forward")) == {"PAL1": 0}


@pytest.mark.parametrize(
    ("max_depth", "truncated", "deepest"), [(0, True, 0), (1, True, 1), (2, True, 2), (3, False, 3)]
)
def test_max_depth_cuts_the_walk_and_says_so(cursor, plant, max_depth, truncated, deepest) -> None:
    tree = trace(cursor, "PAL1", max_depth=max_depth)
    assert tree.truncated is truncated
    assert max(_depths(tree).values()) == deepest


def test_nodes_carry_order_cells_inspections_and_window(cursor, plant) -> None:
    tree = trace(cursor, "PAL1", tz=ZoneInfo("Europe/Berlin"))
    f1 = tree.node("F1")
    assert (f1.produced, f1.order_id, f1.product_id, f1.quantity) == (True, "fill1", "p-F1", 10.0)
    assert (f1.made_at, f1.consumed_at, f1.consumed_for) == ((FILLER,), (PALLETIZER,), ("pack1",))
    assert f1.cells == (FILLER, PALLETIZER)
    assert (f1.created, f1.made_from, f1.made_to) == (T0 + 9.5 * H, T0 + 8 * H, T0 + 10 * H)
    assert f1.created is not None
    assert f1.created.utcoffset() == H  # Berlin in November
    assert [(i.characteristic, i.result, i.defect_type, i.severity) for i in f1.inspections] == [
        ("fill_ml", "fail", "underfill", "major"),
        ("fill_ml", "pass", None, None),
    ]
    f2 = tree.node("F2")  # its order has not completed: the window ends at the lot event
    assert (f2.made_from, f2.made_to) == (T0 + 10 * H, T0 + 11 * H)
    pal = tree.node("PAL1")  # no order: the window is the lot event's instant
    assert (pal.order_id, pal.made_from, pal.made_to) == (None, T0 + 12 * H, T0 + 12 * H)
    syr1 = tree.node("SYR1")
    assert (syr1.material_id, syr1.consumed_for) == ("syrup", ("fill1", "fill2"))
    s1 = tree.node("S1")  # a raw lot: no production event
    assert (s1.produced, s1.order_id, s1.made_from, s1.material_id) == (False, None, None, "sugar")
    assert (s1.made_at, s1.consumed_at) == ((), (MIXER,))
    assert [(i.path, i.value) for i in s1.inspections] == [(RECEIVING, 65.0)]
    with pytest.raises(KeyError):
        tree.node("SYR2")


def test_a_cycle_in_bad_data_is_reported_not_followed(db, cursor) -> None:
    c = db.connection
    make_lot(c, MIXER, 1, "X", None, [("Y", None)])
    make_lot(c, MIXER, 2, "Y", None, [("Z", None)])
    make_lot(c, MIXER, 3, "Z", None, [("X", None)])
    make_lot(c, MIXER, 4, "Q", None, [("Q", None)])  # its own input
    back = trace(cursor, "X", max_depth=1000)
    assert _depths(back) == {"X": 0, "Y": 1, "Z": 2}
    assert _edges(back) == {("X", "Y"), ("Y", "Z")}
    assert [(e.lot_id, e.input_lot_id) for e in back.cycles] == [("Z", "X")]
    assert back.truncated is False
    forward = trace(cursor, "X", direction="forward", max_depth=1000)
    assert _depths(forward) == {"X": 0, "Z": 1, "Y": 2}
    assert [(e.lot_id, e.input_lot_id) for e in forward.cycles] == [("X", "Y")]
    self_loop = trace(cursor, "Q")
    assert (_depths(self_loop), _edges(self_loop)) == ({"Q": 0}, set())
    assert [(e.lot_id, e.input_lot_id) for e in self_loop.cycles] == [("Q", "Q")]


def test_a_lattice_of_shared_inputs_stays_cheap(db, cursor) -> None:
    """40 levels of two lots, each made from both lots below: 2^40 paths, 80 lots."""
    c = db.connection
    for level in range(1, 41):
        for side in "ab":
            make_lot(c, MIXER, level, f"L{level}{side}", None, [(f"L{level - 1}a", None), (f"L{level - 1}b", None)])
    back = trace(cursor, "L40a", max_depth=1000)
    assert _depths(back) == {"L40a": 0} | {f"L{n}{side}": 40 - n for n in range(40) for side in "ab"}
    assert len(back.edges) == 2 + 39 * 4
    assert back.cycles == ()
    forward = trace(cursor, "L0a", direction="forward", max_depth=10)
    assert len(forward.nodes) == 1 + 2 * 10
    assert forward.truncated is True


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"lot_id": "nope"}, "lot_id"), ({"direction": "sideways"}, "direction"), ({"max_depth": -1}, "max_depth")],
)
def test_trace_refuses_bad_arguments(cursor, plant, kwargs, field) -> None:
    arguments: dict[str, object] = {"lot_id": "PAL1"} | kwargs
    with pytest.raises(BadArgument) as caught:
        trace(cursor, **arguments)  # type: ignore[arg-type]
    assert caught.value.field == field


# --- process values ----------------------------------------------------------------------------


@pytest.fixture
def history(db: Database, plant: None) -> None:
    c = db.connection
    add_series(c, 1, f"{FILLER}/data/Temperature")
    temperatures = [(7, 50.0), (8, 60.0), (9, 62.0), (9.25, 64.0), (10, 70.0), (10.5, 99.0)]
    add_samples(c, 1, [(T0 + h * H, v, "good") for h, v in temperatures])
    add_series(c, 2, f"{FILLER}/data/Pressure")
    add_samples(c, 2, [(T0 + 9.75 * H, 2.0, "good")])
    add_series(c, 3, f"{FILLER}/data/Mode", datatype="String")
    add_samples(c, 3, [(T0 + 8 * H, None, "good")], value_text="auto")
    add_series(c, 4, f"{MIXER}/data/Temperature")  # another cell
    add_samples(c, 4, [(T0 + 1.5 * H, 75.0, "good"), (T0 + 9 * H, 80.0, "good")])
    add_series(c, 5, "acme/dallas/bottling/line2/filler/data/Temperature")  # another line
    add_samples(c, 5, [(T0 + 9 * H, 90.0, "good")])


def test_process_values_over_the_lots_window_with_asof_at_creation(cursor, history) -> None:
    values = process_values(cursor, "F1", metrics=["acme/+/+/+/+/data/#"])
    by_metric = {v.metric: v for v in values}
    assert sorted(by_metric) == ["Mode", "Pressure", "Temperature"]
    temperature = by_metric["Temperature"]
    assert (temperature.topic, temperature.path, temperature.unit) == (f"{FILLER}/data/Temperature", FILLER, "degC")
    assert (temperature.samples, temperature.min, temperature.max) == (4, 60.0, 70.0)  # 08:00..10:00 inclusive
    assert temperature.avg == pytest.approx((60 + 62 + 64 + 70) / 4)
    assert (temperature.at_creation, temperature.at_creation_ts) == (64.0, T0 + 9.25 * H)  # as of 09:30
    pressure = by_metric["Pressure"]
    assert (pressure.samples, pressure.max, pressure.at_creation, pressure.at_creation_ts) == (1, 2.0, None, None)
    mode = by_metric["Mode"]
    assert (mode.samples, mode.min, mode.at_creation) == (0, None, "auto")


def test_process_values_follow_the_filter(cursor, history) -> None:
    values = process_values(cursor, "SYR1", metrics=[f"{LINE}/+/data/Temperature"])
    assert [(v.path, v.samples, v.at_creation) for v in values] == [(MIXER, 1, 75.0)]  # made 01:00-02:00 at the mixer
    assert process_values(cursor, "F1", metrics=["nothing/+/data/x"]) == []


def test_process_values_need_a_produced_lot(cursor, history) -> None:
    with pytest.raises(BadArgument) as caught:
        process_values(cursor, "S1", metrics=["#"])
    assert caught.value.field == "lot_id"
    with pytest.raises(BadArgument) as caught:
        process_values(cursor, "F1", metrics=["a/#/b"])
    assert caught.value.field == "metrics"
