"""Loss classification by state-code range (issue 15, point 1): presets iso22400 and umh, explicit ranges, errors.

The shift used below, one cell, 06:00-14:00 UTC on 2026-11-24 (28800 s), no breaks:
    06:00  10000 producing
    07:00  60000 starved, 30 min       iso22400: availability   umh: performance
    07:30  10000
    08:00 150000 operator break, 20 min iso22400: planned        umh: performance
    08:20  10000
    09:00  30000 unknown, 10 min       iso22400: availability   umh: planned (excluded from OEE)
    09:10  10000
    10:00 180000 failure, 15 min       availability under both
    10:15  10000
    14:00 160000 no shift
  Units: 4 counts of 5000 (50 scrap each) = 20000 total, 19800 good; ideal cycle time 1.0 s -> 20000 s.
  iso22400: planned 1200; PBT 27600; availability loss 1800 + 600 + 900 = 3300; APT 24300
            A = 24300/27600, P = 20000/24300, Q = 19800/20000, OEE = 19800/27600
  umh:      planned 600; PBT 28200; availability loss 900; performance-class stops 1800 + 1200 = 3000;
            APT = 28200 - 900 = 27300; A = 27300/28200, P = 20000/27300, OEE = 19800/28200
"""

from __future__ import annotations

from pathlib import Path

import pytest

from model.config import HistorianSection, MesLosses, MesSection
from tests.exports import assert_all_is_honest
from tests.fixtures.broker import start_broker
from tests.uns.mes.mes_events import Feeder, at, ms
from uns.connect import local_clients
from uns.errors import ConfigError
from uns.historian.service import Historian
from uns.mes.downtime import downtime
from uns.mes.losses import LOSS_PRESETS, loss_table, planned_ranges
from uns.mes.oee import OeeRow, oee
from uns.mes.service import MesAdapter
from uns.mes.states import LossClass, LossRules
from uns.settings import load_settings
from uns.store.database import Database

LINE = "acme/dallas/bottling/line1"
CELL = f"{LINE}/filler"
EXACT = 1e-12


def _shift(feeder: Feeder, *, breaks: list[dict[str, object]] | None = None) -> None:
    send = feeder.send
    assert send(LINE, "product_type", at(23, 12), product_id="P1", ideal_cycle_time_s=1.0).status == "stored"
    release = {"order_id": "O1", "action": "release", "product_id": "P1", "quantity": 1}
    assert send(LINE, "work_order", at(24, 5), **release).status == "stored"
    assert send(LINE, "work_order", at(24, 6), order_id="O1", action="start").status == "stored"
    shift = {"shift_id": "early", "start_ms": ms(at(24, 6)), "end_ms": ms(at(24, 14)), "breaks": breaks or []}
    assert send(LINE, "shift", at(23, 20), **shift).status == "stored"
    feeder.states(
        CELL,
        [
            (at(24, 6), 10000),
            (at(24, 7), 60000),
            (at(24, 7, 30), 10000),
            (at(24, 8), 150000),
            (at(24, 8, 20), 10000),
            (at(24, 9), 30000),
            (at(24, 9, 10), 10000),
            (at(24, 10), 180000),
            (at(24, 10, 15), 10000),
            (at(24, 14), 160000),
        ],
    )
    for hour in (11, 12, 13):
        assert send(CELL, "production_count", at(24, hour), total=5000, scrap=50).status == "stored"
    assert send(CELL, "production_count", at(24, 13, 30), total=5000, scrap=50).status == "stored"


def _row(db: Database, section: MesSection) -> OeeRow:
    cursor = db.reader()
    try:
        (row,) = oee(cursor, section, path=CELL, start=at(24, 6), end=at(24, 14), by="cell")
    finally:
        cursor.close()
    return row


def _exact(row: OeeRow, a: float, p: float, q: float, o: float) -> None:
    assert row.availability == pytest.approx(a, rel=EXACT)
    assert row.performance == pytest.approx(p, rel=EXACT)
    assert row.quality == pytest.approx(q, rel=EXACT)
    assert row.oee == pytest.approx(o, rel=EXACT)


def test_iso22400_is_the_default_and_today_s_classes(db: Database) -> None:
    section = MesSection()
    assert section.loss_preset == "iso22400"
    _shift(Feeder(db, section))
    row = _row(db, section)
    _exact(row, 24300 / 27600, 20000 / 24300, 19800 / 20000, 19800 / 27600)
    assert (row.planned_downtime_s, row.availability_loss_s, row.microstop_s) == (1200, 3300, 0)
    assert row.actual_production_time_s == 24300


def test_umh_preset_moves_material_and_operator_stops_to_performance(db: Database) -> None:
    section = MesSection(loss_preset="umh")
    _shift(Feeder(db, section))
    row = _row(db, section)
    _exact(row, 27300 / 28200, 20000 / 27300, 19800 / 20000, 19800 / 28200)
    assert (row.planned_downtime_s, row.availability_loss_s, row.microstop_s) == (600, 900, 3000)
    assert row.actual_production_time_s == 27300
    # OEE = good x ideal / PBT: the presets agree where they agree on planned time (not here: 150000, 30000)
    assert row.oee == pytest.approx(19800 * 1.0 / row.planned_busy_time_s, rel=EXACT)


def test_explicit_losses_override_the_preset_for_the_codes_they_name(db: Database) -> None:
    # iso22400 but material stops are performance loss: starved 1800 s leaves availability loss
    section = MesSection(losses=MesLosses(performance=[(60000, 99999)]))
    _shift(Feeder(db, section))
    row = _row(db, section)
    # planned 1200; PBT 27600; availability 600 + 900 = 1500; APT 26100
    _exact(row, 26100 / 27600, 20000 / 26100, 0.99, 19800 / 27600)
    assert (row.planned_downtime_s, row.availability_loss_s, row.microstop_s) == (1200, 1500, 1800)
    # umh with breaks planned (over its performance 50000-159999) and unknown as availability loss
    umh = MesSection(loss_preset="umh", losses=MesLosses(planned=[(150000, 159999)], availability=[(30000, 39999)]))
    row = _row(db, umh)
    # planned 1200; PBT 27600; availability 600 + 900 = 1500; performance 1800; APT 26100
    _exact(row, 26100 / 27600, 20000 / 26100, 0.99, 19800 / 27600)
    assert (row.planned_downtime_s, row.availability_loss_s, row.microstop_s) == (1200, 1500, 1800)


def test_changeover_and_breaks_stay_planned_on_top_of_any_class(db: Database) -> None:
    section = MesSection(loss_preset="umh", changeover_planned=True, losses=MesLosses(availability=[(100000, 109999)]))
    feeder = Feeder(db, section)
    # a break 10:00-10:15 covers the failure: planned downtime, not availability loss
    _shift(feeder, breaks=[{"start_ms": ms(at(24, 10)), "end_ms": ms(at(24, 10, 15))}])
    feeder.states(CELL, [(at(24, 12), 100000), (at(24, 12, 30), 10000)])  # a changeover, 30 min
    row = _row(db, section)
    # planned: unknown 600 + break 900 + changeover 1800 = 3300; PBT 25500; availability 0;
    # performance 1800 + 1200 = 3000; APT 25500
    _exact(row, 1.0, 20000 / 25500, 0.99, 19800 / 25500)
    assert (row.planned_downtime_s, row.availability_loss_s, row.microstop_s) == (3300, 0, 3000)


def test_the_microstop_rule_applies_on_top_of_the_umh_classes(db: Database) -> None:
    section = MesSection(loss_preset="umh")
    feeder = Feeder(db, section)
    feeder.states(
        CELL,
        [
            (at(24, 6), 10000),
            (at(24, 7), 40000),  # 60 s unspecified stop: availability class, short: microstop
            (at(24, 7, 1), 10000),
            (at(24, 8), 180000),  # 119 s failure: microstop
            (at(24, 8, 1, 59), 10000),
            (at(24, 9), 30000),  # 60 s unknown: planned under umh, whatever its length
            (at(24, 9, 1), 10000),
            (at(24, 10), 40000),  # 120 s: at the threshold, availability loss
            (at(24, 10, 2), 10000),
        ],
    )
    cursor = db.reader()
    (row,) = oee(cursor, section, path=CELL, start=at(24, 6), end=at(24, 11), by="cell")
    assert (row.planned_downtime_s, row.availability_loss_s, row.microstop_s) == (60, 120, 179)
    bars = {bar.reason: (bar.loss, bar.availability_s, bar.performance_s) for bar in downtime(
        cursor, section, path=CELL, start=at(24, 6), end=at(24, 11))}  # fmt: skip
    assert bars == {"stop": ("availability", 120, 60), "equipment failure": ("performance", 0, 119)}
    cursor.close()


@pytest.mark.parametrize(
    ("code", "iso", "umh"),
    [
        (30000, LossClass.availability, LossClass.planned),
        (40000, LossClass.availability, LossClass.availability),
        (40100, LossClass.availability, LossClass.availability),
        (50000, LossClass.performance, LossClass.performance),
        (60000, LossClass.availability, LossClass.performance),
        (70000, LossClass.availability, LossClass.performance),
        (90000, LossClass.availability, LossClass.performance),
        (100000, LossClass.availability, LossClass.performance),
        (130000, LossClass.availability, LossClass.performance),
        (140000, LossClass.availability, LossClass.performance),
        (150000, LossClass.planned, LossClass.performance),
        (159999, LossClass.planned, LossClass.performance),
        (160000, LossClass.planned, LossClass.planned),
        (170000, LossClass.planned, LossClass.planned),
        (180000, LossClass.availability, LossClass.availability),
        (210000, LossClass.availability, LossClass.availability),
        (229999, LossClass.availability, LossClass.availability),
        (300000, LossClass.availability, LossClass.availability),  # outside the catalog: lost time
        (10000, LossClass.none, LossClass.none),
        (20000, LossClass.none, LossClass.none),  # UMH's speed loss is production time here
    ],
)
def test_preset_classes_of_long_stops(code: int, iso: LossClass, umh: LossClass) -> None:
    assert LossRules().loss_of(code, 3600) is iso
    assert LossRules(loss_preset="umh").loss_of(code, 3600) is umh


def test_umh_preset_is_factoryinsight_s_default_lists_by_category() -> None:
    # golang/cmd/factoryinsight/v1/database.go GetCustomerConfiguration (commit 030b9e9): the lists
    availability = [40000, 180000, 190000, 200000, 210000, 220000]
    performance = [50000, 60000, 70000, 80000, 90000, 100000, 110000, 120000, 130000, 140000, 150000]
    table = loss_table(MesSection(loss_preset="umh"))
    for listed, name in [(availability, "availability"), (performance, "performance")]:
        for code in listed:
            assert {table.class_of(code), table.class_of(code + 9999)} == {name}, code
    for excluded in (30000, 39999, 160000, 170000, 179999):  # neither list: excluded from OEE
        assert table.class_of(excluded) == "planned"
    assert LOSS_PRESETS["umh"]["planned"] == ((30000, 39999), (160000, 179999))


def test_planned_states_replaces_the_preset_s_planned_list() -> None:
    assert planned_ranges(MesSection()) == [(150000, 179999)]
    assert planned_ranges(MesSection(loss_preset="umh")) == [(30000, 39999), (160000, 179999)]
    assert planned_ranges(MesSection(planned_states=[(210000, 219999)])) == [(210000, 219999)]
    umh = LossRules.from_section(MesSection(loss_preset="umh", planned_states=[(210000, 219999)]))
    assert umh.loss_of(210000, 3600) is LossClass.planned
    assert umh.loss_of(30000, 3600) is LossClass.availability  # no longer in a planned range


@pytest.mark.parametrize(
    ("section", "path", "reason"),
    [
        (
            MesSection(losses=MesLosses(availability=[(40000, 49999), (60000, 50000)])),
            "mes.losses.availability[1]",
            "low end is above its high end",
        ),
        (
            MesSection(losses=MesLosses(availability=[(40000, 69999)], performance=[(60000, 99999)])),
            "mes.losses.performance[0]",
            "overlaps mes.losses.availability[0] [40000, 69999]",
        ),
        (
            MesSection(losses=MesLosses(performance=[(20000, 20000)])),
            "mes.losses.performance[0]",
            "producing states (10000-29999)",
        ),
        (
            MesSection(losses=MesLosses(availability=[(200000, 229999)]), planned_states=[(210000, 210000)]),
            "mes.planned_states[0]",
            "overlaps mes.losses.availability[0]",
        ),
        (
            MesSection(losses=MesLosses(planned=[(150000, 159999), (155000, 155000)])),
            "mes.losses.planned[1]",
            "overlaps mes.losses.planned[0]",
        ),
    ],
)
def test_bad_ranges_are_a_config_error_naming_the_field(section: MesSection, path: str, reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        loss_table(section)
    assert caught.value.path == path
    assert reason in caught.value.reason
    with pytest.raises(ConfigError):
        LossRules.from_section(section)


def test_settings_file_and_environment_set_the_classification(tmp_path: Path) -> None:
    config = tmp_path / "hub.yaml"
    config.write_text("mes:\n  loss_preset: umh\n  losses:\n    planned: [[150000, 159999]]\n")
    settings = load_settings(config_file=config, overrides={}, environ={})
    assert settings.mes.loss_preset == "umh"
    assert settings.mes.losses.planned == [(150000, 159999)]
    assert LossRules.from_section(settings.mes).loss_of(150000, 60) is LossClass.planned
    env = load_settings(config_file=None, overrides={}, environ={"UNS_MES__LOSS_PRESET": "umh"})
    assert env.mes.loss_preset == "umh"
    bad = tmp_path / "bad.yaml"
    bad.write_text("mes:\n  losses:\n    availability: [[40000, 49999]]\n    performance: [[45000, 59999]]\n")
    with pytest.raises(ConfigError) as caught:
        loss_table(load_settings(config_file=bad, overrides={}, environ={}).mes)
    assert str(caught.value).startswith("settings: mes.losses.performance[0]: overlaps mes.losses.availability[0]")


def test_losses_module_exports() -> None:
    module = assert_all_is_honest("uns.mes.losses")
    assert set(module.__all__) == {"CLASSES", "LOSS_PRESETS", "PRODUCING", "LossTable", "loss_table", "planned_ranges"}


async def test_the_adapter_refuses_to_start_with_a_bad_classification(tmp_path: Path) -> None:
    bad = MesSection(losses=MesLosses(availability=[(40000, 49999)], performance=[(45000, 59999)]))
    async with start_broker(tmp_path) as broker:
        clients = local_clients(broker)
        async with Historian(
            settings=HistorianSection(), enterprise="acme", clients=clients, data_dir=tmp_path
        ) as historian:
            with pytest.raises(ConfigError) as caught:
                MesAdapter(settings=bad, enterprise="acme", clients=clients, writer=historian.writer)
            assert caught.value.path == "mes.losses.performance[0]"
            good = MesAdapter(
                settings=MesSection(loss_preset="umh"), enterprise="acme", clients=clients, writer=historian.writer
            )
            assert good.name == "mes"
