"""The shared node-control vocabulary: bdSeq, the rebirth NCMD and how seq counts."""

from __future__ import annotations

import pytest

from tests.exports import assert_all_is_honest
from uns.sparkplug import DataType, Metric, decode_payload
from uns.sparkplug.node_control import BD_SEQ, REBIRTH, bd_seq_of, next_seq, rebirth_command


def test_exports() -> None:
    assert_all_is_honest("uns.sparkplug.node_control")


def test_rebirth_command_is_an_ncmd_with_boolean_true() -> None:
    topic, payload = rebirth_command("plant", "edge-1", 1_700_000_000_000)
    assert topic == "spBv1.0/plant/NCMD/edge-1"
    decoded = decode_payload(payload).payload
    assert decoded.timestamp == 1_700_000_000_000
    assert [(m.name, m.datatype, m.value) for m in decoded.metrics] == [(REBIRTH, DataType.Boolean, True)]


def test_bd_seq_of_takes_an_integer_only() -> None:
    assert bd_seq_of([Metric(name="x", datatype=DataType.Int64, value=3), Metric(name=BD_SEQ, value=7)]) == 7
    assert bd_seq_of([Metric(name=BD_SEQ, datatype=DataType.Boolean, value=True)]) is None
    assert bd_seq_of([]) is None


@pytest.mark.parametrize(("seq", "following"), [(0, 1), (1, 2), (254, 255), (255, 0)])
def test_seq_counts_to_255_then_wraps_to_0(seq: int, following: int) -> None:
    assert next_seq(seq) == following
