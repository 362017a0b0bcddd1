"""The demo business planner (pure): order sizing and sequencing, counters, lots, inspections, shifts, labor."""

from __future__ import annotations

import collections
import itertools
from collections.abc import Iterable, Mapping
from datetime import date
from zoneinfo import ZoneInfo

import pytest

from bridges.sim.plant import COUNTER_MODULUS
from demo.catalog import RECIPES, LineSetup, Material, demo_line_setups
from demo.lots import LotIds, RawLots
from demo.plan import ORDER_MINUTES, BusinessPlan, Outgoing, counter_delta
from demo.quality import FILL_NOISE_ML, FILL_TOLERANCE_ML, OUTLIER_ML
from demo.shifts import shift_at, shifts_around, shifts_of_day
from model.equipment import Plant
from model.mes import EVENT_MODELS
from uns.settings import load_plant

TZ = ZoneInfo("America/Chicago")
T0 = 1_764_000_000_000  # 2025-11-24 10:00 local, inside the early shift
L1, L2, L3 = "acme/dallas/bottling/line1", "acme/dallas/bottling/line2", "acme/dallas/packaging/line3"
# output units per plant second at the nominal rate of each line's output cell
RATES = {L1: 400 / 60, L2: 300 / 60, L3: 0.35 / 60}


@pytest.fixture(scope="module")
def plant() -> Plant:
    return load_plant(None)


@pytest.fixture(scope="module")
def setups(plant: Plant) -> list[LineSetup]:
    return demo_line_setups(plant)


def new_plan(setups: list[LineSetup], *, speed: float = 1.0, seed: int = 42, start: int = T0) -> BusinessPlan:
    return BusinessPlan(setups=setups, tz=TZ, speed=speed, seed=seed, start_ms=start, settle_ms=2000)


def drive(
    plan: BusinessPlan, seconds: int, *, rates: Mapping[str, float] = RATES, start: int = T0, step_s: int = 1
) -> list[Outgoing]:
    """``begin`` then ``seconds`` of wall time: counters rising at ``rates`` (per wall second), torque at target."""
    out = plan.begin()
    made = dict.fromkeys(rates, 0.0)
    for line in rates:
        out += plan.count(line, 1000, start)  # the baseline
    for second in range(0, seconds + 1, step_s):
        now = start + second * 1000
        out += plan.tick(now)
        plan.torque(L1, 1.8)
        plan.torque(L2, 2.2)
        for line, rate in rates.items():
            made[line] += rate * step_s
            out += plan.count(line, 1000 + int(made[line]), now)
    return out


def num(value: object) -> float:
    assert isinstance(value, int | float), value
    return float(value)


def of(events: Iterable[Outgoing], event: str, line: str | None = None) -> list[Outgoing]:
    return [e for e in events if e.event == event and (line is None or e.topic.startswith(line + "/"))]


@pytest.mark.parametrize(
    ("previous", "value", "delta"),
    [
        (None, 500, 0),  # first value: a baseline
        (100, 100, 0),
        (100, 160, 60),
        (COUNTER_MODULUS - 10, 5, 15),  # 32-bit wrap
        (5000, 20, 20),  # PLC reset: counted 20 since
        (5000, 0, 0),
        (COUNTER_MODULUS - 10, COUNTER_MODULUS // 2, COUNTER_MODULUS // 2),  # a big drop is a reset, not a wrap
    ],
)
def test_counter_delta(previous: int | None, value: int, delta: int) -> None:
    assert counter_delta(previous, value) == delta


def test_line_setups_follow_the_plant_and_the_sim(setups: list[LineSetup]) -> None:
    got = {s.path: (s.output_cell.rsplit("/", 1)[1], s.nominal_cycle_time_s, s.torque_target) for s in setups}
    assert got == {
        L1: ("labeler", 0.15, 1.8),  # the filler's 400 bpm is line1's bottleneck
        L2: ("capper2", 0.2, 2.2),  # the rinser's 300 bpm
        L3: ("wrapper", pytest.approx(60 / 14 * 60, abs=1e-3), None),  # 14 cases/min, 60 cases a pallet
    }
    assert [s.recipe for s in setups] == [RECIPES["line1"], RECIPES["line2"], RECIPES["line3"]]
    # the product's ideal cycle time is the fastest machine's nameplate (5 % above its running rate),
    # so no machine runs above 100 % performance
    fastest = {s.path: s.product_cycle_time_s for s in setups}
    assert fastest == {L1: 0.1299, L2: 0.1786, L3: pytest.approx(163.2653)}  # line1: the labeler at 440 * 1.05 bpm


@pytest.mark.parametrize("speed", [1.0, 10.0])
def test_the_product_type_carries_the_fastest_machines_cycle_in_wall_seconds(
    setups: list[LineSetup], speed: float
) -> None:
    """MES times are wall times: at x10 the sim makes a unit in a tenth of the wall seconds."""
    products = {e.body["product_id"]: e.body["ideal_cycle_time_s"] for e in new_plan(setups, speed=speed).begin()
                if e.event == "product_type"}  # fmt: skip
    assert products == {s.recipe.product_id: pytest.approx(s.product_cycle_time_s / speed) for s in setups}


@pytest.mark.parametrize("speed", [1.0, 10.0])
def test_orders_are_sized_at_nominal_rate_and_planned_back_to_back(setups: list[LineSetup], speed: float) -> None:
    plan = new_plan(setups, speed=speed)
    releases = [e.body for e in plan.begin() if e.event == "work_order"]
    assert len(releases) == 9  # three ahead on each line
    cycle = {s.recipe.product_id: s.nominal_cycle_time_s for s in setups}
    previous_end: dict[object, int] = {}
    for body in releases:
        ict = cycle[str(body["product_id"])]
        quantity = body["quantity"]
        assert isinstance(quantity, int)
        minutes = quantity * ict / 60
        assert ORDER_MINUTES[0] - 2.5 <= minutes <= ORDER_MINUTES[1] + 2.5, (body, minutes)  # rounding to 100s
        start, end = body["planned_start_ms"], body["planned_end_ms"]
        assert isinstance(start, int)
        assert isinstance(end, int)
        assert end - start == round(quantity * ict * 1000 / speed)
        product = body["product_id"]
        assert start == previous_end.get(product, T0 + 2000 - round(60_000 / speed)) + round(60_000 / speed)
        previous_end[product] = end
    assert len({b["order_id"] for b in releases}) == 9


def test_orders_run_one_after_another_and_complete_at_quantity(setups: list[LineSetup]) -> None:
    speed = 20.0
    plan = new_plan(setups, speed=speed)
    fast = {L1: 400 / 60, L2: 300 / 60, L3: 14 / 60 / 60}  # nominal output per plant second (line3: case-packer)
    events = drive(plan, 1200, rates={line: rate * speed * 1.2 for line, rate in fast.items()})  # 20 % above plan
    for line in (L1, L2, L3):
        orders = of(events, "work_order", line)
        released = [e.body["order_id"] for e in orders if e.body["action"] == "release"]
        flow = [(e.body["action"], e.body["order_id"], num(e.body["timestamp_ms"])) for e in orders if e.retain]
        assert [a for a, _, _ in flow[:4]] == ["start", "complete", "start", "complete"], line
        assert [o for a, o, _ in flow if a == "start"] == released[: len(flow[::2])]  # in release order
        for (a1, o1, t1), (a2, o2, t2) in itertools.pairwise(flow):
            if a1 == "start":
                assert (a2, o2) == ("complete", o1)  # never two orders running on a line
            else:
                assert t2 - t1 == pytest.approx(60_000 / speed, abs=1000)  # the changeover gap
        quantities = {e.body["order_id"]: num(e.body["quantity"]) for e in orders if e.body["action"] == "release"}
        completed = [o for a, o, _ in flow if a == "complete"]
        for order in completed:
            lots = of(events, "lot_production", line)
            made = sum(
                num(e.body["quantity"])
                for e in lots
                if e.body["order_id"] == order and not str(e.body["lot_id"]).startswith("SYR")
            )
            assert quantities[order] <= made < quantities[order] + 200
        assert len(released) == len(completed) + 3  # the queue is topped up as orders complete


def test_an_order_without_counts_completes_at_planned_end(setups: list[LineSetup]) -> None:
    plan = new_plan(setups[:1], speed=60.0)
    events = drive(plan, 60, rates={L1: 0.0})
    release = of(events, "work_order")[0].body
    complete = next(e.body for e in of(events, "work_order") if e.body["action"] == "complete")
    assert complete["order_id"] == release["order_id"]
    assert 0 <= complete["timestamp_ms"] - release["planned_end_ms"] < 1000  # type: ignore[operator]  # the next tick
    assert not of(events, "lot_production", L1 + "/labeler")  # nothing was made


def test_a_counter_reset_keeps_counting(setups: list[LineSetup]) -> None:
    plan = new_plan(setups[:1])
    plan.begin()
    plan.count(L1, 50_000, T0)
    plan.tick(T0 + 2000)  # the first order starts
    out = plan.count(L1, 50_290, T0 + 3000)
    assert not of(out, "lot_production")  # 290 of 300
    out = plan.count(L1, 20, T0 + 4000)  # the PLC was reset: 20 counted since
    lots = of(out, "lot_production")
    assert [lot.body["quantity"] for lot in lots] == [300]
    out = plan.count(L1, 300, T0 + 5000)
    assert not of(out, "lot_production")  # 10 + 280 of the next lot
    out = plan.count(L1, 310, T0 + 6000)
    assert [lot.body["quantity"] for lot in of(out, "lot_production")] == [300]


def test_lot_trees_reach_raw_lots_three_levels_down(setups: list[LineSetup]) -> None:
    events = drive(new_plan(setups, speed=10.0), 240)
    inputs: dict[str, list[str]] = {}
    for e in of(events, "lot_production"):
        lots = e.body["input_lots"]
        assert isinstance(lots, list)
        inputs[str(e.body["lot_id"])] = [str(i["lot_id"]) for i in lots]

    def depth(lot: str) -> int:
        return 1 + max((depth(i) for i in inputs.get(lot, [])), default=-1)

    pallets = [lot for lot in inputs if lot.startswith("PAL-")]
    bottled = [lot for lot in inputs if lot.startswith(("B1-", "B2-"))]
    syrups = [lot for lot in inputs if lot.startswith("SYR-")]
    assert pallets
    assert bottled
    assert syrups
    assert all(depth(p) == 3 for p in pallets)  # pallet <- bottled lot <- syrup batch <- sugar lot
    assert all(depth(b) == 2 for b in bottled)
    assert all(depth(s) == 1 for s in syrups)
    for pallet in pallets:
        assert {i.split("-")[0] for i in inputs[pallet]} == {"B1", "CTN", "EUR", "FLM"}
    for lot in bottled:
        prefixes = {i.split("-")[0] for i in inputs[lot]}
        assert prefixes in ({"PRE", "SYR", "CAP", "LBL"}, {"GLS", "SYR", "CRN"})
    for syrup in syrups:
        assert {i.split("-")[0] for i in inputs[syrup]} == {"SUG", "WTR", "CNC"}
    # every lot a pallet names was made before it
    produced_at = {str(e.body["lot_id"]): e.body["timestamp_ms"] for e in of(events, "lot_production")}
    pallet_events = [e for e in of(events, "lot_production") if str(e.body["lot_id"]).startswith("PAL-")]
    for e in pallet_events:
        for lot in inputs[str(e.body["lot_id"])]:
            if lot.startswith("B1-"):
                assert num(produced_at[lot]) <= num(e.body["timestamp_ms"])


def test_consumption_follows_the_bom_and_rotates_raw_lots(setups: list[LineSetup]) -> None:
    events = drive(new_plan(setups[:1], speed=10.0), 300, rates={L1: 400 / 60 * 10})
    used: dict[str, float] = collections.defaultdict(float)
    lots: dict[str, set[str]] = collections.defaultdict(set)
    for e in of(events, "material_consumption"):
        used[str(e.body["material_id"])] += num(e.body["quantity"])
        lots[str(e.body["material_id"])].add(str(e.body["lot_id"]))
    bottles = sum(num(e.body["quantity"]) for e in of(events, "lot_production", L1 + "/labeler"))
    assert bottles > 6000
    assert used["PREFORM-PET-28G"] == pytest.approx(bottles)
    assert used["SYRUP-COLA"] == pytest.approx(bottles * 0.09)
    assert len(lots["PREFORM-PET-28G"]) >= 2  # a 6000-preform lot ran out: the next one opened
    topics = {
        e.body["material_id"]: e.topic.rsplit("/mes/", 1)[0].rsplit("/", 1)[1]
        for e in of(events, "material_consumption")
    }
    assert topics == {
        "PREFORM-PET-28G": "filler",
        "SYRUP-COLA": "filler",
        "CAP-PCO-28": "capper",
        "LABEL-COLA-050": "labeler",
    }


def test_inspections_stay_in_their_bands(setups: list[LineSetup]) -> None:
    events = drive(new_plan(setups, speed=10.0), 600)
    fills = [e.body for e in of(events, "quality_inspection") if e.body["characteristic"] == "fill_volume_ml"]
    assert len(fills) > 300
    far = 1.8 + OUTLIER_ML[1]  # drift + the largest outlier
    normal = 1.8 + 4.5 * FILL_NOISE_ML
    outside = 0
    for body in fills:
        target, value = num(body["target"]), num(body["value"])
        assert target in (500.0, 330.0)
        assert abs(value - target) <= far
        assert (body["lower_limit"], body["upper_limit"]) == (target - FILL_TOLERANCE_ML, target + FILL_TOLERANCE_ML)
        outside += abs(value - target) > normal
        assert body["result"] == ("pass" if abs(value - target) <= FILL_TOLERANCE_ML else "fail")
        assert str(body["order_id"]).startswith("WO-")
        assert str(body["lot_id"]).startswith(("B1-", "B2-"))
    assert 0 < outside < len(fills) * 0.1  # an occasional outlier, for the SPC rules
    torques = [e.body for e in of(events, "quality_inspection") if e.body["characteristic"] == "cap_torque_nm"]
    assert {(b["value"], b["target"]) for b in torques} == {(1.8, 1.8), (2.2, 2.2)}  # the live values
    visual = [e.body for e in of(events, "quality_inspection") if e.body["characteristic"] == "visual_check"]
    failed = [b for b in visual if b["result"] == "fail"]
    assert 0 < len(failed) < len(visual)
    assert all(b["defect_type"] and b["severity"] in ("minor", "major", "critical") for b in failed)


def test_torque_is_not_sampled_while_the_capper_stands(setups: list[LineSetup]) -> None:
    plan = new_plan(setups[:1], speed=10.0)
    plan.begin()
    plan.torque(L1, 0.02)
    out = [e for s in range(0, 60) for e in plan.tick(T0 + s * 1000)]
    assert not [e for e in of(out, "quality_inspection") if e.body["characteristic"] == "cap_torque_nm"]
    assert [e for e in of(out, "quality_inspection") if e.body["characteristic"] == "fill_volume_ml"]


def test_every_event_validates_and_has_a_unique_id_per_topic(setups: list[LineSetup]) -> None:
    events = drive(new_plan(setups, speed=10.0), 600)
    kinds = collections.Counter(e.event for e in events)
    # the machines say the rest; maintenance orders come from the CMMS (demo.maintenance)
    assert set(kinds) == set(EVENT_MODELS) - {
        "production_count",
        "machine_state",
        "downtime_reason",
        "maintenance_order",
    }
    for e in events:
        EVENT_MODELS[e.event].model_validate(e.body)
        assert e.topic.endswith(f"/mes/{e.event}")
        assert e.retain == (e.event == "work_order" and e.body["action"] != "release")
    keys = [(e.topic, e.body["event_id"]) for e in events]
    assert len(keys) == len(set(keys))


def test_the_same_seed_gives_the_same_events(setups: list[LineSetup]) -> None:
    first = [e.payload for e in drive(new_plan(setups, speed=10.0), 120)]
    again = [e.payload for e in drive(new_plan(setups, speed=10.0), 120)]
    other = [e.payload for e in drive(new_plan(setups, speed=10.0, seed=7), 120)]
    assert first == again
    assert first != other


def test_a_previous_runs_order_is_completed_before_the_first_start(setups: list[LineSetup]) -> None:
    plan = new_plan(setups[:1])
    plan.begin()
    plan.order_seen(L1, "WO-L1-OLD")
    plan.order_seen(L1, "WO-L1-OLD")  # from the retained event and from kpi/order: closed once
    closed = of(plan.tick(T0 + 1000), "work_order")
    assert [(e.body["action"], e.body["order_id"], e.retain) for e in closed] == [("complete", "WO-L1-OLD", True)]
    plan.order_seen(L1, "WO-L1-OLD")  # the MES KPI still names it for a while
    started = of(plan.tick(T0 + 2000), "work_order")
    assert [(e.body["action"], e.body["order_id"]) for e in started] == [("start", plan.running_order(L1))]
    plan.order_seen(L1, str(started[0].body["order_id"]))  # our own order: nothing to do
    plan.order_seen(L1, "WO-L1-OTHER")  # while ours runs: not ours to close
    assert not [e for e in of(plan.tick(T0 + 3000), "work_order") if e.body["action"] == "complete"]


@pytest.mark.parametrize(
    ("day", "hours"),
    [
        (date(2026, 6, 10), [8, 8, 8]),
        (date(2026, 10, 31), [8, 8, 9]),  # the night into Sunday 1 Nov: clocks go back, the wall says 8 h
        (date(2026, 3, 7), [8, 8, 7]),  # the night into Sunday 8 Mar: clocks go forward
    ],
)
def test_shifts_of_a_day(day: date, hours: list[int]) -> None:
    shifts = shifts_of_day(day, TZ)
    assert [s.shift_id for s in shifts] == [f"{day.isoformat()}-{n}" for n in ("early", "late", "night")]
    assert [(s.end_ms - s.start_ms) / 3_600_000 for s in shifts] == hours
    for s in shifts:
        assert s.start_ms < s.break_start_ms < s.break_end_ms < s.end_ms
        assert s.break_end_ms - s.break_start_ms == 30 * 60_000
    assert [s.end_ms for s in shifts[:2]] == [s.start_ms for s in shifts[1:]]


def test_shifts_around_now_cover_today_and_tomorrow() -> None:
    at_3am = 1_764_061_200_000  # 2025-11-25 03:00 local: yesterday's night still runs
    ids = [s.shift_id for s in shifts_around(at_3am, TZ)]
    assert ids == ["2025-11-24-night"] + [f"2025-11-{d}-{n}" for d in (25, 26) for n in ("early", "late", "night")]
    assert shift_at(at_3am, TZ).shift_id == "2025-11-24-night"


def test_shifts_are_published_each_day_and_crews_change_with_the_shift(setups: list[LineSetup]) -> None:
    plan = new_plan(setups[:1], speed=1.0)
    first = plan.begin()
    assert [e.body["shift_id"] for e in of(first, "shift")] == [
        f"2025-11-{d}-{n}" for d in (24, 25) for n in ("early", "late", "night")
    ]
    assert all(e.topic == "acme/dallas/mes/shift" for e in of(first, "shift"))
    assert [(e.body["operator_id"], e.body["action"]) for e in of(first, "labor")] == [
        ("OP-101", "on"),
        ("OP-102", "on"),
    ]
    late_start = shifts_of_day(date(2025, 11, 24), TZ)[1].start_ms
    change = of(plan.tick(late_start + 100), "labor")
    assert [(e.body["operator_id"], e.body["action"], e.body["timestamp_ms"]) for e in change] == [
        ("OP-101", "off", late_start),
        ("OP-102", "off", late_start),
        ("OP-111", "on", late_start),
        ("OP-112", "on", late_start),
    ]
    assert [e.topic.rsplit("/mes/", 1)[0] for e in change[:2]] == [L1 + "/filler", L1 + "/labeler"]
    next_day = shifts_of_day(date(2025, 11, 25), TZ)[0].start_ms
    new_shifts = of(plan.tick(next_day - 3_600_000), "shift")  # past midnight
    assert [e.body["shift_id"] for e in new_shifts] == [f"2025-11-26-{n}" for n in ("early", "late", "night")]


def test_raw_lots_open_the_next_lot_when_one_is_used_up() -> None:
    lots = RawLots(seed=1, tz=TZ)
    film = Material(material_id="FILM", lot_prefix="FLM", unit="kg", lot_size=10.0)
    first = lots.take(film, 6.0, T0)
    assert [amount for _, amount in first] == [6.0]
    lot, seq = first[0][0].rsplit("-", 1)
    assert lot == "FLM-2511"
    split = lots.take(film, 6.0, T0)
    assert split == [(first[0][0], 4.0), (f"FLM-2511-{int(seq) + 1:03d}", 2.0)]
    assert RawLots(seed=1, tz=TZ).take(film, 1.0, T0)[0][0] == first[0][0]  # seeded numbering


def test_produced_lot_ids_are_unique_within_a_run() -> None:
    ids = LotIds(tz=TZ)
    assert [ids.new("B1", T0) for _ in range(3)] == ["B1-251124-100000", "B1-251124-100000-2", "B1-251124-100000-3"]
