"""bridges.status: a connector's status device (counters and last refusal), shared by HTTP, AMQP and LoRaWAN."""

from __future__ import annotations

import pytest

from bridges.source import Sample, Samples, TagSpec
from bridges.status import StatusDevice, camel
from model.envelope import Quality
from tests.exports import assert_all_is_honest
from uns.sparkplug import DataType


def test_exports() -> None:
    assert_all_is_honest("bridges.status")


@pytest.mark.parametrize(
    ("counter", "name"),
    [("refused", "Refused"), ("webhooks_failed", "WebhooksFailed"), ("f_cnt_resets", "FCntResets")],
)
def test_camel(counter: str, name: str) -> None:
    assert camel(counter) == name


def test_tags_are_the_counters_then_the_last_refusal() -> None:
    status = StatusDevice(device="_status", counters=("events", "refused"))
    assert status.tags() == [
        TagSpec("_status", "Status/Events", DataType.Int64),
        TagSpec("_status", "Status/Refused", DataType.Int64),
        TagSpec("_status", "Status/LastRefusal", DataType.String),
    ]


def test_a_refusal_is_counted_and_reported_once() -> None:
    status = StatusDevice(device="_status", counters=("events", "refused"))
    status.counts["events"] += 2
    status.refused("$.items[3].temp: not a number" + "x" * 600)
    first = status.samples(1_000)
    assert first == Samples(
        "_status",
        [
            Sample("Status/Events", 2, 1_000),
            Sample("Status/Refused", 1, 1_000),
            Sample("Status/LastRefusal", ("$.items[3].temp: not a number" + "x" * 600)[:500], 1_000, Quality.uncertain),
        ],
    )
    second = status.samples(2_000)
    assert second.samples[1] == Sample("Status/Refused", 1, 2_000)
    assert second.samples[2] == Sample("Status/LastRefusal", "", 2_000, Quality.good)
