import importlib

import pytest

import uns.mqtt


@pytest.mark.parametrize(
    "module", ["uns.mqtt", "uns.mqtt.codec", "uns.mqtt.client", "uns.mqtt.connection", "uns.mqtt.inflight"]
)
def test_all_names_exist_and_are_public(module: str) -> None:
    mod = importlib.import_module(module)
    for name in mod.__all__:
        assert not name.startswith("_")
        assert hasattr(mod, name), f"{module}.{name}"


def test_package_reexports_the_client() -> None:
    assert {"MqttClient", "ClientStats", "ProtocolError", "BrokerUrl", "Message", "PubSub"} <= set(uns.mqtt.__all__)
