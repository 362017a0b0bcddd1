"""The state catalog: categories, names, loss rules and presets."""

from __future__ import annotations

import pytest

from model.config import MesSection
from uns.errors import ConfigError
from uns.mes.states import (
    CATALOG,
    PRESETS,
    LossClass,
    LossRules,
    StateCategory,
    category_of,
    is_producing,
    preset,
    state_name,
)


@pytest.mark.parametrize(
    ("code", "category"),
    [
        (10000, StateCategory.producing),
        (19999, StateCategory.producing),
        (20000, StateCategory.producing_reduced),
        (29999, StateCategory.producing_reduced),
        (30000, StateCategory.unknown),
        (40000, StateCategory.unspecified),
        (40100, StateCategory.unspecified),
        (40200, StateCategory.unspecified),
        (50000, StateCategory.microstop),
        (60000, StateCategory.material),
        (99999, StateCategory.material),
        (100000, StateCategory.process),
        (130000, StateCategory.process),
        (140000, StateCategory.operator),
        (150000, StateCategory.operator),
        (160000, StateCategory.planning),
        (170000, StateCategory.planning),
        (180000, StateCategory.technical),
        (229999, StateCategory.technical),
        (0, StateCategory.unknown),
        (9999, StateCategory.unknown),
        (230000, StateCategory.unknown),
        (999999, StateCategory.unknown),
    ],
)
def test_category_of(code: int, category: StateCategory) -> None:
    assert category_of(code) is category


@pytest.mark.parametrize(
    ("code", "producing"), [(10000, True), (25000, True), (29999, True), (30000, False), (9999, False)]
)
def test_is_producing(code: int, producing: bool) -> None:
    assert is_producing(code) is producing


@pytest.mark.parametrize(
    ("code", "name"),
    [
        (10000, "producing at full speed"),
        (40100, "idle"),
        (60000, "inlet jam / starved"),
        (100010, "changeover preparation"),
        (150000, "operator break"),
        (180000, "equipment failure"),
        (220000, "technical other"),
        (181234, "technical 181234"),
        (20500, "producing reduced 20500"),
        (5, "unknown 5"),
    ],
)
def test_state_name(code: int, name: str) -> None:
    assert state_name(code) == name


def test_catalog_names_every_listed_code() -> None:
    listed = {10000, 20000, 30000, 40000, 40100, 40200, 50000, 60000, 70000, 80000, 90000}
    listed |= {100000, 100010, 100020, 110000, 120000, 130000, 140000, 150000, 160000, 170000}
    listed |= {180000, 190000, 200000, 210000, 220000}
    assert set(CATALOG) == listed


_DEFAULT = LossRules.from_section(MesSection())
_CHANGEOVER_PLANNED = LossRules.from_section(MesSection(changeover_planned=True, microstop_s=60))
_CUSTOM = LossRules.from_section(MesSection(planned_states=[(210000, 210000), (160000, 179999)], microstop_s=0))


@pytest.mark.parametrize(
    ("rules", "code", "duration_s", "loss"),
    [
        (_DEFAULT, 10000, 3600, LossClass.none),
        (_DEFAULT, 20000, 5, LossClass.none),
        (_DEFAULT, 150000, 1800, LossClass.planned),  # operator break: default planned range
        (_DEFAULT, 160000, 10, LossClass.planned),  # short but planned: still planned
        (_DEFAULT, 50000, 600, LossClass.performance),  # microstop code, whatever its length
        (_DEFAULT, 40000, 119.9, LossClass.performance),  # shorter than microstop_s
        (_DEFAULT, 40000, 120, LossClass.availability),  # at the threshold: not a microstop
        (_DEFAULT, 180000, 30, LossClass.performance),
        (_DEFAULT, 180000, 1200, LossClass.availability),
        (_DEFAULT, 180000, None, LossClass.availability),  # still running: not a microstop by length
        (_DEFAULT, 100000, 900, LossClass.availability),  # changeover: availability by default
        (_DEFAULT, 30000, 5, LossClass.availability),  # unknown: availability even when short
        (_DEFAULT, 30000, 5000, LossClass.availability),
        (_DEFAULT, 140000, 300, LossClass.availability),  # operator not at machine: not planned
        (_CHANGEOVER_PLANNED, 100000, 900, LossClass.planned),
        (_CHANGEOVER_PLANNED, 100020, 900, LossClass.planned),
        (_CHANGEOVER_PLANNED, 110000, 900, LossClass.availability),  # cleaning is not a changeover
        (_CHANGEOVER_PLANNED, 60000, 59, LossClass.performance),
        (_CHANGEOVER_PLANNED, 60000, 61, LossClass.availability),
        (_CUSTOM, 210000, 3600, LossClass.planned),
        (_CUSTOM, 150000, 600, LossClass.availability),  # no longer in a planned range
        (_CUSTOM, 40000, 0.5, LossClass.availability),  # microstop_s 0: no stop is a microstop by length
        (_CUSTOM, 50000, 0.5, LossClass.performance),
    ],
)
def test_loss_of(rules: LossRules, code: int, duration_s: float | None, loss: LossClass) -> None:
    assert rules.loss_of(code, duration_s) is loss


def test_loss_rules_from_section_copies_the_section() -> None:
    rules = LossRules.from_section(MesSection(microstop_s=30, planned_states=[(1, 2)], changeover_planned=True))
    assert rules == LossRules(microstop_s=30, planned_states=((1, 2),), changeover_planned=True)


def test_loss_rules_reject_an_upside_down_range() -> None:
    with pytest.raises(ConfigError) as caught:
        LossRules.from_section(MesSection(planned_states=[(150000, 179999), (200000, 100000)]))
    assert caught.value.path == "mes.planned_states[1]"


@pytest.mark.parametrize(
    ("name", "plc_code", "code"),
    [
        ("packml", 0, 30000),  # Undefined
        ("packml", 2, 40000),  # Stopped
        ("packml", 4, 40100),  # Idle
        ("packml", 5, 90000),  # Suspended
        ("packml", 6, 10000),  # Execute
        ("packml", 11, 220000),  # Held
        ("packml", 17, 40000),  # Complete
        ("weihenstephan", 128, 10000),  # Operating
        ("weihenstephan", 8, 60000),  # Lack
        ("weihenstephan", 16, 70000),  # Tailback
        ("weihenstephan", 1024, 180000),  # Equipment failure
        ("weihenstephan", 2048, 190000),  # External failure
        ("weihenstephan", 32768, 40100),  # Idle
        ("euromap", 1, 10000),  # AUTOMATIC
        ("euromap", 3, 40200),  # MANUAL
        ("euromap", 4, 130000),  # SETUP
        ("euromap_production", 4, 10000),  # PRODUCTION
        ("euromap_production", 1, 40000),  # NO_PRODUCTION
        ("umh", 10000, 10000),
        ("umh", 180123, 180123),
        ("umh", 229999, 229999),
    ],
)
def test_presets_map(name: str, plc_code: int, code: int) -> None:
    assert preset(name)[plc_code] == code


def test_packml_covers_all_eighteen_states() -> None:
    assert sorted(preset("packml")) == list(range(18))


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_targets_are_catalog_codes(name: str) -> None:
    mapping = preset(name)
    targets = {10000, 180123} if name == "umh" else set(mapping.values())
    for code in targets:
        assert category_of(code) is not StateCategory.unknown or code == 30000


@pytest.mark.parametrize(("plc_code", "mapped"), [(9999, False), (230000, False), (10000, True), (3, False)])
def test_umh_identity_maps_only_catalog_ranges(plc_code: int, mapped: bool) -> None:
    identity = preset("umh")
    assert (plc_code in identity) is mapped
    assert len(identity) == 220000


def test_unknown_preset_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="isa95"):
        preset("isa95")
