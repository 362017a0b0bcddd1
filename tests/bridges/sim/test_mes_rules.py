"""What the MES adapter is told about the demo plant: ideal cycle times at nameplate, in wall seconds, its commits."""

from __future__ import annotations

import pytest

from bridges.sim.mes_rules import DEMO_NAMEPLATE_HEADROOM, demo_ideal_cycle_times, demo_mes_section
from bridges.sim.rates import COMMIT_S
from model.config import MesSection, Settings
from uns.settings import load_plant

FILLER = "acme/dallas/bottling/line1/filler"
LABELER = "acme/dallas/bottling/line1/labeler"


def test_ideal_cycle_times_are_the_nameplate_rates_above_the_running_ones() -> None:
    ideal = demo_ideal_cycle_times(load_plant(None))
    assert ideal[FILLER] == pytest.approx(60 / (400 * DEMO_NAMEPLATE_HEADROOM))  # runs at 400 bpm
    assert ideal[LABELER] == pytest.approx(60 / (440 * DEMO_NAMEPLATE_HEADROOM))
    assert ideal["acme/dallas/packaging/line3/palletizer"] == pytest.approx(60 / (16 * 1.05) * 60)  # 60 cycles a pallet


@pytest.mark.parametrize("speed", [1.0, 10.0])
def test_a_fast_forwarded_demo_gets_its_ideal_cycle_times_in_wall_seconds(speed: float) -> None:
    plant = load_plant(None)
    section = demo_mes_section(MesSection(), plant, speed=speed)
    plant_seconds = demo_ideal_cycle_times(plant)
    assert section.ideal_cycle_time_s == {path: pytest.approx(s / speed) for path, s in plant_seconds.items()}


def test_the_users_ideal_cycle_times_win_over_the_demos() -> None:
    section = demo_mes_section(MesSection(ideal_cycle_time_s={FILLER: 0.2}), load_plant(None), speed=10.0)
    assert section.ideal_cycle_time_s[FILLER] == 0.2
    assert section.ideal_cycle_time_s[LABELER] == pytest.approx(60 / (440 * 1.05) / 10)


def test_the_demo_commits_every_two_seconds_unless_the_user_set_it() -> None:
    plant = load_plant(None)
    assert MesSection().commit_interval_s == 0.5  # the adapter's own default: faster than the demo's data
    assert demo_mes_section(MesSection(), plant).commit_interval_s == COMMIT_S == 2.0
    assert demo_mes_section(MesSection(commit_interval_s=0.5), plant).commit_interval_s == 0.5
    from_env = Settings.model_validate({"mes": {"commit_interval_s": 0.25}})  # a YAML or UNS_MES__ value
    assert demo_mes_section(from_env.mes, plant).commit_interval_s == 0.25


def test_the_demo_keeps_the_output_cells_it_is_given() -> None:
    """The hub carries the plant file's last cells apart, as ``plant_outputs`` (``hub.app.mes_section``); the
    demo adds no cell of its own, so a section given one line's output keeps that one alone."""
    section = demo_mes_section(MesSection(output_cells={"acme/dallas/bottling/line1": FILLER}), load_plant(None))
    assert section.output_cells == {"acme/dallas/bottling/line1": FILLER}
