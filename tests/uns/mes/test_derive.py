"""Deriving machine_state and production_count events from machine metrics."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model.config import DeriveRule
from model.mes import EVENT_MODELS, MachineState, ProductionCount
from tests.exports import assert_all_is_honest
from uns.errors import ConfigError
from uns.mes.derive import CounterBaseline, DerivedEvent, Deriver

CELL = "acme/dallas/bottling/line1/filler"
OTHER = "acme/dallas/bottling/line1/capper"
STATE = f"{CELL}/data/State"
FAULT = f"{CELL}/data/FaultCode"
GOOD = f"{CELL}/data/Production/GoodCount"
SCRAP = f"{CELL}/data/Production/ScrapCount"
PART = f"{CELL}/data/PartDone"
CELLS = "acme/+/+/+/+/data"
DEMO_MAP = {1: 10000, 2: 40100, 3: 60000, 5: 180000, 6: 100000}

Sample = tuple[str, int, float | int | bool | None, str]


def _state_rule(**extra: object) -> DeriveRule:
    return DeriveRule.model_validate({"match": f"{CELLS}/State", "kind": "state", "state_map": DEMO_MAP, **extra})


def _feed(deriver: Deriver, samples: Sequence[Sample], *, flush: bool = True) -> list[DerivedEvent]:
    out: list[DerivedEvent] = []
    for topic, ts, value, quality in samples:
        out.extend(deriver.offer(topic, ts, value, quality))
    if flush:
        out.extend(deriver.flush())
    for event in out:  # every body is a valid MES event of its kind, keyed by its id
        model = EVENT_MODELS[event.event].model_validate(event.body)
        assert model.event_id == event.event_id
        assert model.source == "derived"
    return out


def _state(event: DerivedEvent) -> MachineState:
    return MachineState.model_validate(event.body)


def _count(event: DerivedEvent) -> ProductionCount:
    return ProductionCount.model_validate(event.body)


def _states(events: Sequence[DerivedEvent]) -> list[tuple[int, int, str | None]]:
    assert all(e.event == "machine_state" and e.path == CELL for e in events)
    return [(s.timestamp_ms, s.state, s.reason_code) for s in map(_state, events)]


def _totals(events: Sequence[DerivedEvent]) -> list[tuple[int, int, int | None]]:
    assert all(e.event == "production_count" for e in events)
    return [(c.total, c.scrap, c.period_start_ms) for c in map(_count, events)]


# --- states


@pytest.mark.parametrize(
    ("samples", "expected"),
    [
        pytest.param([(STATE, 1000, 1, "good")], [(1000, 10000, None)], id="first-sample"),
        pytest.param(
            [(STATE, 1000, 1, "good"), (STATE, 2000, 1, "good"), (STATE, 3000, 1.0, "good")],
            [(1000, 10000, None)],
            id="no-change-no-event",
        ),
        pytest.param(
            [(STATE, 1000, 1, "good"), (STATE, 2000, 5, "good"), (STATE, 3000, 1, "good")],
            [(1000, 10000, None), (2000, 180000, None), (3000, 10000, None)],
            id="changes",
        ),
        pytest.param(
            [(STATE, 1000, 1, "good"), (STATE, 2000, 1, "stale"), (STATE, 3000, 1, "bad"), (STATE, 4000, 1, "good")],
            [(1000, 10000, None), (2000, 30000, None), (4000, 10000, None)],
            id="bad-quality-unknown-once",
        ),
        pytest.param(
            [(STATE, 1000, None, "good"), (STATE, 2000, None, "good")], [(1000, 30000, None)], id="no-value-unknown"
        ),
        pytest.param(
            [(STATE, 1000, 1, "good"), (STATE, 2000, 99, "good"), (STATE, 3000, 2.5, "good")],
            [(1000, 10000, None), (2000, 30000, None)],
            id="unmapped-and-fractional-unknown",
        ),
        pytest.param(
            [(STATE, 1000, 2, "uncertain"), (STATE, 500, 1, "good")], [(1000, 40100, None)], id="older-sample-skipped"
        ),
    ],
)
def test_state_events(samples: list[Sample], expected: list[tuple[int, int, str | None]]) -> None:
    assert _states(_feed(Deriver([_state_rule()]), samples)) == expected


@pytest.mark.parametrize(
    ("rule", "plc_code", "code"),
    [
        ({"state_preset": "packml", "state_map": {}}, 6, 10000),
        ({"state_preset": "packml", "state_map": {}}, 11, 220000),
        ({"state_preset": "packml", "state_map": {11: 180000}}, 11, 180000),  # state_map over the preset
        ({"state_preset": "packml", "state_map": {}}, 42, 30000),
        ({"state_preset": "weihenstephan", "state_map": {}}, 128, 10000),
        ({"state_preset": "umh", "state_map": {}}, 180100, 180100),
        ({"state_preset": None, "state_map": {}}, 10000, 30000),  # no preset, no map: unknown
    ],
)
def test_state_map_over_preset(rule: dict[str, object], plc_code: int, code: int) -> None:
    deriver = Deriver([_state_rule(**rule)])
    [event] = _feed(deriver, [(STATE, 1000, plc_code, "good")])
    assert _state(event).state == code
    assert deriver.problems.get("unmapped_state", 0) == (1 if code == 30000 else 0)


def test_state_events_are_per_topic() -> None:
    deriver = Deriver([_state_rule()])
    events = _feed(deriver, [(STATE, 1000, 1, "good"), (f"{OTHER}/data/State", 1000, 1, "good")])
    assert [(e.path, e.topic) for e in events] == [
        (CELL, f"{CELL}/mes/machine_state"),
        (OTHER, f"{OTHER}/mes/machine_state"),
    ]


def test_other_topics_derive_nothing() -> None:
    deriver = Deriver([_state_rule()])
    assert deriver.offer(f"{CELL}/data/Temperature", 1000, 71.5, "good") == []
    assert deriver.offer(f"{CELL}/kpi/State", 1000, 1, "good") == []
    assert deriver.offer("not a uns topic", 1000, 1, "good") == []
    assert deriver.offer("spBv1.0/acme/NDATA/node", 1000, 1, "good") == []


@pytest.mark.parametrize(
    ("samples", "expected"),
    [
        pytest.param(
            [(STATE, 1000, 1, "good"), (STATE, 2000, 5, "good"), (FAULT, 2000, 104, "good")],
            [(1000, 10000, None), (2000, 180000, "104")],
            id="reason-after-state-same-ts",
        ),
        pytest.param(
            [(STATE, 1000, 1, "good"), (FAULT, 2000, 104, "good"), (STATE, 2000, 5, "good")],
            [(1000, 10000, None), (2000, 180000, "104")],
            id="reason-before-state",
        ),
        pytest.param(
            [
                (STATE, 1000, 5, "good"),
                (f"{CELL}/data/Temperature", 1000, 20.0, "good"),
                (FAULT, 1000, 101.0, "good"),
                (STATE, 3000, 1, "good"),
                (FAULT, 3000, 0, "good"),
            ],
            [(1000, 180000, "101"), (3000, 10000, None)],
            id="other-metrics-between-and-producing-carries-none",
        ),
        pytest.param(
            [(STATE, 1000, 5, "good"), (FAULT, 1000, 101, "good"), (FAULT, 4000, 104, "good")],
            [(1000, 180000, "101"), (4000, 180000, "104")],
            id="reason-changes-during-stop",
        ),
        pytest.param(
            [(STATE, 1000, 5, "good"), (FAULT, 1000, 101, "good"), (FAULT, 4000, 0, "good")],
            [(1000, 180000, "101")],
            id="reason-cleared-during-stop-no-event",
        ),
        pytest.param(
            [(STATE, 1000, 1, "good"), (FAULT, 2000, 104, "good")],
            [(1000, 10000, None)],
            id="reason-while-producing-no-event",
        ),
        pytest.param(
            [(STATE, 1000, 3, "good"), (FAULT, 1000, 0, "good")],
            [(1000, 60000, None)],
            id="zero-is-no-reason",
        ),
        pytest.param(
            [(STATE, 1000, 3, "good"), (STATE, 1000, 5, "good"), (FAULT, 1000, 102, "good")],
            [(1000, 180000, "102")],
            id="second-state-same-ts-replaces",
        ),
        pytest.param(
            [(STATE, 1000, 1, "good"), (STATE, 2000, 5, "good"), (STATE, 2000, 1, "good"), (FAULT, 2000, 0, "good")],
            [(1000, 10000, None)],
            id="flicker-within-one-ts-is-nothing",
        ),
        pytest.param(
            [(STATE, 1000, 5, "good"), (FAULT, 1000, 101, "bad")],
            [(1000, 180000, None)],
            id="bad-reason-is-none",
        ),
    ],
)
def test_reason_attached(samples: list[Sample], expected: list[tuple[int, int, str | None]]) -> None:
    deriver = Deriver([_state_rule(reason_match="FaultCode")])
    assert _states(_feed(deriver, samples)) == expected


def test_state_with_reason_rule_is_held_until_time_moves_on() -> None:
    deriver = Deriver([_state_rule(reason_match="FaultCode")])
    assert deriver.offer(STATE, 1000, 5, "good") == []
    assert deriver.pending == 1
    assert deriver.offer(FAULT, 1000, 103, "good") == []
    assert deriver.flush(before_ms=1000) == []  # not before 1000
    # any later sample releases it, from any cell
    [event] = deriver.offer(f"{OTHER}/data/Speed", 1001, 0.0, "good")
    assert (_state(event).state, _state(event).reason_code, deriver.pending) == (180000, "103", 0)


def test_flush_releases_held_states_by_time() -> None:
    deriver = Deriver([_state_rule(reason_match="FaultCode")])
    deriver.offer(STATE, 1000, 5, "good")
    deriver.offer(f"{OTHER}/data/State", 1000, 1, "good")
    assert [e.path for e in deriver.flush(before_ms=1001)] == [OTHER, CELL]  # by time, then topic
    assert deriver.flush() == []


def test_rule_without_reason_emits_at_once() -> None:
    deriver = Deriver([_state_rule()])
    assert len(deriver.offer(STATE, 1000, 5, "good")) == 1
    assert deriver.pending == 0


def test_reason_of_another_cell_is_not_attached() -> None:
    deriver = Deriver([_state_rule(reason_match="FaultCode")])
    events = _feed(deriver, [(STATE, 1000, 5, "good"), (f"{OTHER}/data/FaultCode", 1000, 101, "good")])
    assert _states(events) == [(1000, 180000, None)]


# --- ids


def test_event_ids_are_deterministic_and_distinct() -> None:
    rules = [_state_rule(reason_match="FaultCode"), DeriveRule(match=f"{CELLS}/Production/GoodCount", kind="counter")]
    samples: list[Sample] = [
        (STATE, 1000, 1, "good"),
        (GOOD, 1000, 10, "good"),
        (STATE, 2000, 5, "good"),
        (FAULT, 2000, 104, "good"),
        (GOOD, 2000, 15, "good"),
        (GOOD, 3000, 21, "good"),
    ]
    first = _feed(Deriver(rules), samples)
    replayed = _feed(Deriver(rules), samples)
    assert [e.event_id for e in first] == [e.event_id for e in replayed]
    assert [e.body for e in first] == [e.body for e in replayed]
    assert len({e.event_id for e in first}) == len(first) == 4
    assert all(e.event_id.startswith("derived-") and "/" not in e.event_id for e in first)


# --- counters

_R = 2**32


@pytest.mark.parametrize(
    ("values", "rollover", "expected"),
    [
        pytest.param([100], _R, [], id="first-value-baseline"),
        pytest.param([100, 100, 100], _R, [], id="no-change-no-event"),
        pytest.param([100, 105, 112], _R, [(5, 0, 1000), (7, 0, 2000)], id="deltas"),
        pytest.param([_R - 3, 2], _R, [(5, 0, 1000)], id="rollover-2-32"),
        pytest.param([_R - 1, 0, 4], _R, [(1, 0, 1000), (4, 0, 2000)], id="rollover-to-zero"),
        pytest.param([65530, 10], 65536, [(16, 0, 1000)], id="rollover-16-bit"),
        pytest.param([5000, 12], _R, [(12, 0, 1000)], id="reset-low"),
        pytest.param([_R - 3, _R - 10], _R, [(_R - 10, 0, 1000)], id="drop-near-top-is-reset"),
        pytest.param([1000, 0, 7], _R, [(7, 0, 2000)], id="reset-to-zero-then-count"),
        pytest.param([10.0, 12.0], _R, [(2, 0, 1000)], id="whole-floats"),
    ],
)
def test_counter_deltas(values: list[int], rollover: int, expected: list[tuple[int, int, int]]) -> None:
    deriver = Deriver([DeriveRule(match=f"{CELLS}/Production/GoodCount", kind="counter", rollover=rollover)])
    samples: list[Sample] = [(GOOD, 1000 * (i + 1), value, "good") for i, value in enumerate(values)]
    events = _feed(deriver, samples)
    assert _totals(events) == expected
    assert all(e.path == CELL and e.topic == f"{CELL}/mes/production_count" for e in events)


@pytest.mark.parametrize(
    ("counts", "expected"),
    [("good", (7, 0)), ("total", (7, 0)), ("scrap", (7, 7))],
)
def test_counter_kinds(counts: str, expected: tuple[int, int]) -> None:
    deriver = Deriver([DeriveRule.model_validate({"match": f"{CELLS}/+/+", "kind": "counter", "counts": counts})])
    [event] = _feed(deriver, [(GOOD, 1000, 3, "good"), (GOOD, 2000, 10, "good")])
    assert (_count(event).total, _count(event).scrap) == expected


def test_good_and_scrap_counters_sum_to_the_cell_totals() -> None:
    deriver = Deriver(
        [
            DeriveRule(match=f"{CELLS}/Production/GoodCount", kind="counter", counts="good"),
            DeriveRule(match=f"{CELLS}/Production/ScrapCount", kind="counter", counts="scrap"),
        ]
    )
    events = _feed(
        deriver,
        [(GOOD, 0, 0, "good"), (SCRAP, 0, 0, "good"), (GOOD, 1000, 40, "good"), (SCRAP, 1000, 2, "good")],
    )
    total = sum(_count(e).total for e in events)
    scrap = sum(_count(e).scrap for e in events)
    assert (total, scrap, total - scrap) == (42, 2, 40)


@pytest.mark.parametrize(
    ("samples", "totals", "problem"),
    [
        pytest.param([(1000, 10, "good"), (2000, 15, "bad"), (3000, 20, "good")], [10], None, id="bad-skipped"),
        pytest.param([(1000, 10, "good"), (2000, None, "good"), (3000, 20, "good")], [10], None, id="none-skipped"),
        pytest.param(
            [(1000, 10, "good"), (2000, 12.5, "good"), (3000, 20, "good")], [10], "not_a_count", id="fractional"
        ),
        pytest.param([(1000, 10, "good"), (2000, -4, "good"), (3000, 20, "good")], [10], "not_a_count", id="negative"),
        pytest.param(
            [(1000, 10, "good"), (2000, float("nan"), "good"), (3000, 20, "good")], [10], "not_a_count", id="nan"
        ),
        pytest.param([(2000, 10, "good"), (1000, 5, "good"), (3000, 20, "good")], [10], "out_of_order", id="older"),
        pytest.param([(1000, 10, "good"), (1000, 10, "good"), (2000, 20, "good")], [10], None, id="duplicate"),
    ],
)
def test_counter_skips(samples: list[tuple[int, float | None, str]], totals: list[int], problem: str | None) -> None:
    deriver = Deriver([DeriveRule(match=f"{CELLS}/Production/GoodCount", kind="counter")])
    events = _feed(deriver, [(GOOD, ts, value, quality) for ts, value, quality in samples])
    assert [_count(e).total for e in events] == totals
    assert deriver.problems == ({} if problem is None else {problem: 1})


@pytest.mark.parametrize(
    ("restored", "values", "expected"),
    [
        pytest.param((1000, 500), [(5000, 530)], [(30, 0, 1000)], id="counted-while-down"),
        pytest.param((1000, 500), [(1000, 500), (5000, 530)], [(30, 0, 1000)], id="retained-repeat-then-count"),
        pytest.param((1000, _R - 10), [(5000, 20)], [(30, 0, 1000)], id="rolled-over-while-down"),
        pytest.param((1000, 500), [(5000, 20)], [(20, 0, 1000)], id="plc-restarted-while-down"),
    ],
)
def test_restore_then_first_value_yields_the_delta_since(
    restored: tuple[int, int], values: list[tuple[int, int]], expected: list[tuple[int, int, int]]
) -> None:
    deriver = Deriver([DeriveRule(match=f"{CELLS}/Production/GoodCount", kind="counter")])
    deriver.restore(GOOD, float(restored[1]), restored[0])
    events = _feed(deriver, [(GOOD, ts, value, "good") for ts, value in values])
    assert _totals(events) == expected
    assert deriver.state() == {GOOD: CounterBaseline(value=values[-1][1], ts_ms=values[-1][0])}


def test_state_survives_a_restart_without_loss_or_double_count() -> None:
    rules = [DeriveRule(match=f"{CELLS}/Production/GoodCount", kind="counter")]
    before = Deriver(rules)
    counted = _feed(before, [(GOOD, 1000, 0, "good"), (GOOD, 2000, 40, "good")])
    saved = before.state()
    after = Deriver(rules)
    for topic, baseline in saved.items():
        after.restore(topic, float(baseline.value), baseline.ts_ms)
    # the broker's retained value repeats, then the PLC counted 25 more while we were down
    counted += _feed(after, [(GOOD, 2000, 40, "good"), (GOOD, 9000, 65, "good")])
    assert sum(_count(e).total for e in counted) == 65


@pytest.mark.parametrize(("value", "ts"), [(-1.0, 1000), (1.5, 1000), (float("inf"), 1000), (5.0, -1)])
def test_restore_rejects_what_is_not_a_baseline(value: float, ts: int) -> None:
    with pytest.raises(ValueError, match="GoodCount"):
        Deriver([]).restore(GOOD, value, ts)


# --- part done


def _part_rules(*, with_counter: bool, counts: str = "good") -> list[DeriveRule]:
    rules = [DeriveRule.model_validate({"match": f"{CELLS}/PartDone", "kind": "part_done", "counts": counts})]
    if with_counter:
        rules.append(DeriveRule(match=f"{CELLS}/Production/GoodCount", kind="counter"))
    return rules


def test_part_done_cycle_time_rides_on_counts() -> None:
    deriver = Deriver(_part_rules(with_counter=True))
    samples: list[Sample] = [
        (GOOD, 0, 0, "good"),
        (PART, 0, False, "good"),
        (PART, 1000, True, "good"),  # first rising edge: no cycle yet
        (PART, 1500, False, "good"),
        (PART, 3500, True, "good"),  # 2.5 s after the first
        (GOOD, 4000, 2, "good"),
    ]
    events = _feed(deriver, samples)
    assert [(_count(e).total, _count(e).cycle_time_s) for e in events] == [(2, 2.5)]
    assert deriver.cycle_time_s(CELL) == 2.5
    assert deriver.cycle_time_s(OTHER) is None


@pytest.mark.parametrize(("counts", "scrap"), [("good", 0), ("scrap", 1)])
def test_part_done_counts_parts_when_no_counter_covers_the_cell(counts: str, scrap: int) -> None:
    deriver = Deriver(_part_rules(with_counter=False, counts=counts))
    samples: list[Sample] = [
        (PART, 0, True, "good"),  # first sample: the level only
        (PART, 500, False, "good"),
        (PART, 1000, 1, "good"),
        (PART, 1200, 1, "good"),  # still high: no edge
        (PART, 1500, 0, "good"),
        (PART, 3000, 1, "good"),
    ]
    events = _feed(deriver, samples)
    bodies = [(c.total, c.scrap, c.period_start_ms, c.cycle_time_s) for c in map(_count, events)]
    assert bodies == [(1, scrap, None, None), (1, scrap, 1000, 2.0)]


def test_a_stop_between_edges_is_no_cycle() -> None:
    deriver = Deriver([*_part_rules(with_counter=True), _state_rule()])
    samples: list[Sample] = [
        (PART, 0, False, "good"),
        (PART, 1000, True, "good"),
        (PART, 1500, False, "good"),
        (PART, 2500, True, "good"),  # 1.5 s cycle
        (PART, 3000, False, "good"),
        (STATE, 3100, 5, "good"),  # fault
        (STATE, 60000, 1, "good"),
        (PART, 61000, True, "good"),  # spans the stop: not a cycle
    ]
    _feed(deriver, samples)
    assert deriver.cycle_time_s(CELL) == 1.5


# --- config


@pytest.mark.parametrize(
    ("rule", "path"),
    [
        (DeriveRule(match="acme/#/State", kind="state"), "mes.derive[0].match"),
        (DeriveRule(match=f"{CELLS}/State", kind="state", state_map={1: 1_000_000}), "mes.derive[0].state_map.1"),
        (DeriveRule(match=f"{CELLS}/State", kind="state", reason_match="Fault/+"), "mes.derive[0].reason_match"),
        (DeriveRule(match=f"{CELLS}/State", kind="state", reason_match="Fault//Code"), "mes.derive[0].reason_match"),
    ],
)
def test_bad_rules_are_config_errors(rule: DeriveRule, path: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Deriver([rule])
    assert caught.value.path == path


def test_negative_timestamp_is_counted_and_skipped() -> None:
    deriver = Deriver([_state_rule()])
    assert deriver.offer(STATE, -5, 1, "good") == []
    assert deriver.problems == {"bad_timestamp": 1}


# --- property: counters never lose or double-count


@settings(max_examples=200, deadline=None)
@given(
    rollover=st.sampled_from([1000, 2**16, 2**32]),
    start=st.integers(min_value=0, max_value=2**32),
    increments=st.lists(st.integers(min_value=0, max_value=499), min_size=1, max_size=60),
)
def test_emitted_totals_sum_to_the_increments(rollover: int, start: int, increments: list[int]) -> None:
    deriver = Deriver([DeriveRule(match=f"{CELLS}/Production/GoodCount", kind="counter", rollover=rollover)])
    value = start % rollover
    deriver.offer(GOOD, 0, value, "good")
    emitted = 0
    for step, increment in enumerate(increments, start=1):
        value = (value + increment) % rollover  # wraps whenever it passes the rollover
        for event in deriver.offer(GOOD, step * 1000, value, "good"):
            emitted += _count(event).total
    assert emitted == sum(increments)


# --- exports


@pytest.mark.parametrize("module", ["uns.mes", "uns.mes.states", "uns.mes.derive"])
def test_all_is_honest(module: str) -> None:
    assert_all_is_honest(module, in_order=True)
