"""uns.backoff.Backoff (delays, cap, jitter, reset) and the PLC config base (model/bridges/plc.py)."""

from __future__ import annotations

import random

import pytest
from pydantic import ValidationError

from bridges.plc import PlcSource
from bridges.source import Source
from model.bridges.plc import PlcDeviceBase, PlcLinkSettings
from tests.exports import assert_all_is_honest
from uns.backoff import Backoff


@pytest.mark.parametrize(
    ("failures", "base"), [(1, 0.5), (2, 1.0), (3, 2.0), (6, 16.0), (7, 30.0), (60, 30.0), (10_000, 30.0)]
)
def test_delay_doubles_from_min_to_the_cap_with_jitter_of_half_to_one(failures: int, base: float) -> None:
    backoff = Backoff(min_s=0.5, max_s=30.0, rng=random.Random(7))
    delays = [backoff.delay_s(failures) for _ in range(200)]
    assert base * 0.5 <= min(delays) < base * 0.6
    assert base * 0.9 < max(delays) <= base


def test_failures_count_up_and_success_starts_over() -> None:
    backoff = Backoff(min_s=1.0, max_s=8.0, rng=random.Random(1))
    for base in (1.0, 2.0, 4.0, 8.0, 8.0):
        assert base * 0.5 <= backoff.failed() <= base
    assert backoff.failures == 5
    backoff.succeeded()
    assert backoff.failures == 0
    assert 0.5 <= backoff.failed() <= 1.0
    assert 4.0 <= backoff.at_max() <= 8.0  # a refusal waits the cap, whatever the count


@pytest.mark.parametrize(("low", "high"), [(0.0, 1.0), (2.0, 1.0), (-1.0, 1.0)])
def test_backoff_refuses_bad_bounds(low: float, high: float) -> None:
    with pytest.raises(ValueError, match=r"0 < min_s <= max_s"):
        Backoff(min_s=low, max_s=high)


def test_link_settings_defaults_and_checks() -> None:
    assert PlcLinkSettings() == PlcLinkSettings(
        timeout_s=2.0, connect_timeout_s=5.0, backoff_min_s=0.5, backoff_max_s=30
    )
    with pytest.raises(ValidationError, match=r"backoff_min_s \(5.0\) exceeds backoff_max_s \(1.0\)"):
        PlcLinkSettings(backoff_min_s=5.0, backoff_max_s=1.0)
    with pytest.raises(ValidationError, match="timeout_s"):
        PlcLinkSettings(timeout_s=0)
    with pytest.raises(ValidationError, match="extra_forbidden"):
        PlcLinkSettings(timeout=1)  # type: ignore[call-arg]


def test_device_base_checks_poll_groups() -> None:
    assert PlcDeviceBase(id="press").poll_groups == {"default": 1.0}
    with pytest.raises(ValidationError, match=r"device press: poll group 'fast': interval must be > 0 \(got 0.0\)"):
        PlcDeviceBase(id="press", poll_groups={"fast": 0.0})
    with pytest.raises(ValidationError, match="device press: poll_groups is empty"):
        PlcDeviceBase(id="press", poll_groups={})
    with pytest.raises(ValidationError, match="id"):
        PlcDeviceBase(id="a/b")


def test_every_field_is_described() -> None:
    schema = PlcDeviceBase.model_json_schema()
    assert {name for name, field in schema["properties"].items() if not field.get("description")} == set()


@pytest.mark.parametrize(
    "name", ["bridges.plc", "bridges.plc.device", "bridges.plc.source", "uns.backoff", "model.bridges.plc"]
)
def test_exports_are_honest(name: str) -> None:
    assert_all_is_honest(name)


def test_plc_source_is_a_source() -> None:
    source: Source = PlcSource(name="plc", kind="toy", devices=[])
    assert (source.name, source.tags()) == ("plc", [])
