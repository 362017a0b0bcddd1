"""``uns fleet enrol`` refuses a bad agent id or edge node naming the option, worded as the config loader words it."""

from __future__ import annotations

import pytest

from uns.errors import ConfigError
from uns.fleet.enrolment import mosquitto_acl


@pytest.mark.parametrize(
    ("agent", "edge_nodes", "message"),
    [
        ("Bad Id", ("bad/+",), "uns fleet enrol: ID: String should match pattern"),
        ("a1", ("nogroup",), "uns fleet enrol: --edge-node: edge node 'nogroup' must be \"group/node\""),
    ],
)
def test_a_refusal_names_the_option_and_the_reason(agent: str, edge_nodes: tuple[str, ...], message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        mosquitto_acl(agent, edge_nodes)
    assert str(refused.value).startswith(message)
