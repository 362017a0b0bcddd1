"""The process model: deterministic, plausible, coupled."""

from __future__ import annotations

import pytest

from bridges.sim.plant import (
    COUNTER_MODULUS,
    DEMO_LINES,
    DEMO_UTILITIES,
    TICK_MS,
    MachineState,
    PlantModel,
    PlantSnapshot,
)


def _values(snapshot: PlantSnapshot) -> dict[str, tuple[object, ...]]:
    return {
        name: (m.state, m.fault_code, m.good_count, m.scrap_count, m.speed, m.energy_kwh, dict(m.process), m.part_done)
        for name, m in snapshot.machines.items()
    }


@pytest.mark.parametrize("slices_ms", [[600_000], [1_000] * 600, [TICK_MS * 7, 599_300], [250, 333, 599_417]])
def test_same_seed_same_values_at_the_same_time_however_sliced(slices_ms):
    whole = PlantModel(seed=7)
    whole.advance(600_000)
    sliced = PlantModel(seed=7)
    target = 0
    for ms in slices_ms:  # as the real-time clock does: targets need not fall on ticks
        target += ms
        sliced.advance_to(target)
    sliced.advance_to(600_000)
    assert sliced.time_ms == whole.time_ms == 600_000
    assert _values(sliced.snapshot()) == _values(whole.snapshot())


def test_same_seed_same_sequence_and_other_seed_differs():
    runs = []
    for seed in (3, 3, 4):
        model = PlantModel(seed=seed)
        sequence = []
        for _ in range(50):
            model.advance(10_000)
            sequence.append(_values(model.snapshot()))
        runs.append(sequence)
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_partial_ticks_wait_for_the_next_call():
    model = PlantModel(seed=1)
    assert model.advance_to(TICK_MS - 1) == 0
    assert model.time_ms == 0
    assert model.advance_to(TICK_MS * 3 + 50) == 3
    assert model.time_ms == TICK_MS * 3


def test_counters_grow_scrap_is_a_small_part_energy_rises():
    model = PlantModel(seed=11)
    first = model.snapshot()
    previous = first
    for _ in range(2 * 60):  # two hours, a minute at a time
        model.advance(60_000)
        now = model.snapshot()
        for name, machine in now.machines.items():
            before = previous.machines[name]
            assert machine.good_count >= before.good_count
            assert machine.scrap_count >= before.scrap_count
            assert machine.energy_kwh > before.energy_kwh
            assert 0 <= machine.good_count < COUNTER_MODULUS
            assert (machine.fault_code != 0) == (machine.state == MachineState.FAULT)
            assert machine.speed == 0.0 or machine.state == MachineState.RUNNING
        previous = now
    for name, machine in previous.machines.items():
        good = machine.good_count - first.machines[name].good_count
        scrap = machine.scrap_count - first.machines[name].scrap_count
        assert good > 0, name
        assert scrap < (good + scrap) * 0.02, name


def test_state_durations_sum_to_elapsed_time_and_every_state_is_seen():
    model = PlantModel(seed=5)
    model.advance(3 * 3600_000)
    seen: set[MachineState] = set()
    for name, machine in model.snapshot().machines.items():
        assert sum(machine.state_ms.values()) == 3 * 3600_000, name
        assert machine.state_ms[MachineState.RUNNING] > 0.4 * 3 * 3600_000, name
        seen |= {state for state, ms in machine.state_ms.items() if ms}
    assert seen >= set(MachineState) - {MachineState.IDLE}


def test_process_values_stay_plausible():
    model = PlantModel(seed=9)
    for _ in range(600):
        model.advance(5_000)
        machines = model.snapshot().machines
        assert 3.0 < machines["filler"].process["Temperature"] < 10.0
        assert 150.0 < machines["labeler"].process["Temperature"] < 170.0
        assert 0.0 <= machines["rinser"].process["Flow"] < 140.0
        assert 0.0 <= machines["filler2"].process["Level"] <= 100.0


def test_counters_roll_over_at_32_bits():
    model = PlantModel(seed=2, counter_start=COUNTER_MODULUS - 10)
    model.advance(60_000)
    filler = model.snapshot().machines["filler"]
    assert filler.good_count < 1_000  # wrapped: ~390 bottles after the 10 left before 2**32


def test_a_stopped_capper_blocks_the_filler_and_starves_the_labeler():
    model = PlantModel(seed=21)
    model.set_run_enabled("capper", False)
    model.advance(120_000)  # any fault in progress ends within mttr; buffers of 60 fill/empty in seconds
    machines = model.snapshot().machines
    assert machines["capper"].state == MachineState.IDLE
    assert machines["filler"].state in (MachineState.BLOCKED, MachineState.FAULT, MachineState.PLANNED_STOP,
                                        MachineState.CHANGEOVER)  # fmt: skip
    assert machines["filler"].state_ms[MachineState.BLOCKED] > 60_000
    assert machines["labeler"].state_ms[MachineState.STARVED] > 60_000
    good = machines["filler"].good_count
    model.advance(10_000)
    assert model.snapshot().machines["filler"].good_count == good


def test_speed_setpoint_sets_the_rate_and_is_clamped():
    model = PlantModel(seed=4)
    model.set_speed_setpoint("wrapper", 1e9)
    assert model.snapshot().machines["wrapper"].speed_setpoint == pytest.approx(1.5 * 0.35)
    model.set_speed_setpoint("filler", 200.0)
    model.advance(30_000)
    filler = model.snapshot().machines["filler"]
    if filler.state == MachineState.RUNNING:
        assert filler.speed == pytest.approx(200.0, rel=0.05)
    assert filler.speed_setpoint == 200.0


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda m: m.set_run_enabled("mixer", True), "no machine 'mixer'"),
        (lambda m: m.set_speed_setpoint("filler", float("nan")), "filler: speed setpoint must be finite"),
    ],
)
def test_bad_operator_input_names_the_machine(call, match):
    with pytest.raises(ValueError, match=match):
        call(PlantModel(seed=1))


def test_demo_lines_cover_the_demo_cells():
    ids = [machine.id for line in DEMO_LINES for machine in line.machines]
    assert ids == [
        "filler",
        "capper",
        "labeler",
        "rinser",
        "filler2",
        "capper2",
        "case-packer",
        "palletizer",
        "wrapper",
    ]


_GOLDEN_SHA256 = "b19f0cd9849cb7a660bd5f1ef7a14d7ca2c33ef65bd108d99ae84f18b06b5e47"
"""Every line machine's snapshots (seed 7, every 30 s for 30 minutes) from the model before the utilities were added."""


def test_line_machines_are_byte_identical_to_before_the_utilities():
    import hashlib

    ids = [machine.id for line in DEMO_LINES for machine in line.machines]
    digest = hashlib.sha256()
    model = PlantModel(seed=7)  # with the utilities
    for i in range(60):
        model.advance(30_000)
        if i == 20:
            model.set_speed_setpoint("filler", 300.0)
            model.set_run_enabled("capper", False)
        if i == 40:
            model.set_run_enabled("capper", True)
        snapshot = model.snapshot()
        for name in ids:
            m = snapshot.machines[name]
            fields = (name, m.state, m.fault_code, m.good_count, m.scrap_count, m.speed, m.cycle_time_s,
                      m.part_done, m.energy_kwh, sorted(m.process.items()), m.speed_setpoint, m.run_enabled,
                      sorted(m.state_ms.items()))  # fmt: skip
            digest.update(repr(fields).encode())
    assert digest.hexdigest() == _GOLDEN_SHA256


def test_utilities_have_states_meters_energy_and_a_setpoint_that_drives_their_process():
    model = PlantModel(seed=3, lines=())  # the utilities alone: they do not depend on the lines
    first = model.snapshot().machines
    assert [u.id for u in DEMO_UTILITIES] == ["compressor", "boiler", "chiller", "pump"]
    model.set_setpoint("compressor", "Pressure", 8.0)
    model.set_setpoint("pump", "Flow", 1e9)  # clamped to 150 % of design
    model.advance(2 * 3600_000)
    now = model.snapshot().machines
    seen: set[MachineState] = set()
    for spec in DEMO_UTILITIES:
        before, after = first[spec.id], now[spec.id]
        assert after.energy_kwh > before.energy_kwh
        assert after.starts >= before.starts > 0
        assert after.run_hours > before.run_hours > 0
        assert after.power_kw >= 0.0
        assert sum(after.state_ms.values()) == 2 * 3600_000
        assert after.state_ms[MachineState.CHANGEOVER] == after.state_ms[MachineState.STARVED] == 0
        seen |= {state for state, ms in after.state_ms.items() if ms}
    assert {MachineState.RUNNING, MachineState.FAULT} <= seen
    assert now["compressor"].setpoints == {"Pressure": 8.0}
    assert now["pump"].setpoints == {"Flow": 45.0 * 1.5}
    model.set_run_enabled("chiller", False)
    model.advance(3600_000)
    chiller = model.snapshot().machines["chiller"]
    assert chiller.state == MachineState.IDLE
    assert chiller.process["Temperature"] == pytest.approx(14.0, abs=2.0)  # warms up towards its stopped value


def test_utility_setpoints_refuse_what_the_machine_has_not():
    model = PlantModel(seed=0)
    with pytest.raises(ValueError, match=r"machine filler: no setpoint 'Pressure' \(it has only Setpoint/Speed\)"):
        model.set_setpoint("filler", "Pressure", 3.0)
    with pytest.raises(ValueError, match=r"machine boiler: no setpoint 'Flow' \(it has Setpoint/Temperature\)"):
        model.set_setpoint("boiler", "Flow", 3.0)
    with pytest.raises(ValueError, match="setpoint Temperature must be finite"):
        model.set_setpoint("boiler", "Temperature", float("nan"))


def test_utilities_are_deterministic_per_seed_and_do_not_move_the_lines():
    def run(seed: int, utilities: bool) -> PlantSnapshot:
        model = PlantModel(seed=seed) if utilities else PlantModel(seed=seed, utilities=())
        model.advance(120_000)
        return model.snapshot()

    assert _values(run(4, True)) == _values(run(4, True))
    assert _values(run(4, True)) != _values(run(5, True))
    lines = {name: values for name, values in _values(run(4, True)).items() if name not in _UTILITY_IDS}
    assert lines == _values(run(4, False))


_UTILITY_IDS = {"compressor", "boiler", "chiller", "pump"}


def test_one_machine_s_snapshot_is_the_same_as_in_the_whole_plant_s() -> None:
    model = PlantModel(seed=42)
    model.advance(90_000)
    assert model.machine_snapshot("palletizer") == model.snapshot().machines["palletizer"]
    assert model.machine_snapshot("compressor") == model.snapshot().machines["compressor"]
    with pytest.raises(ValueError, match="no machine 'kiln'"):
        model.machine_snapshot("kiln")
