"""The LwM2M server's config (errors name the field) and its registration table (pure: lifetimes, refusals)."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest

from bridges.lwm2m import Lwm2mSource
from bridges.lwm2m.registration import RegistrationRefused, Registry, parse_links
from bridges.lwm2m.state import load_registrations, save_registrations
from bridges.registry import KINDS, build_source
from model.bridges import Lwm2mBridgeConfig
from model.config import Settings
from tests.bridges.lwm2m.rig import config
from uns.connect import network_clients
from uns.errors import BridgeError
from uns.mqtt.types import BrokerUrl
from uns.sparkplug import DataType


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"port": 70000}, ("port",), "less than or equal to 65535"),
        ({"devices": []}, ("devices",), "at least 1 item"),
        ({"accept": "json"}, ("accept",), "'text', 'opaque', 'cbor', 'senml_json', 'senml_cbor' or 'tlv'"),
        ({"devices": [{"endpoint": "a", "id": "a", "resources": [{"path": "3303/0"}]}]},
         ("devices", 0, "resources", 0, "path"), "String should match pattern"),
        ({"devices": [{"endpoint": "a", "id": "a", "resources": [{"path": "3303/0/5700"}], "observe": ["x"]}]},
         ("devices", 0, "observe"), "observe[0]: 'x' is not an LwM2M path"),
        ({"devices": [{"endpoint": "a", "id": "a", "resources": [{"path": "3303/0/5700"}, {"path": "/3303/0/5700"}]}]},
         ("devices", 0), "resources[1].path: '/3303/0/5700' is listed twice"),
        ({"devices": [{"endpoint": "a", "id": "a", "resources": [{"path": "1/0/1"}]},
                      {"endpoint": "a", "id": "b", "resources": [{"path": "1/0/1"}]}]},
         (), "devices[1].endpoint: 'a' is listed twice"),
        ({"devices": [{"endpoint": "a", "id": "server", "resources": [{"path": "1/0/1"}]}]},
         (), "id 'server' is the server's status device"),
    ],
)  # fmt: skip
def test_config_refusals_name_the_field(change: dict[str, object], field: tuple[object, ...], message: str) -> None:
    base = config().model_dump()
    with pytest.raises(pydantic.ValidationError) as caught:
        Lwm2mBridgeConfig.model_validate({**base, **change})
    errors = caught.value.errors()
    assert [e["loc"] for e in errors] == [field]
    assert message in errors[0]["msg"]


def test_kind_lwm2m_in_settings_its_schema_and_the_registry(tmp_path: Path) -> None:
    settings = Settings.model_validate({"bridges": [config().model_dump()]})
    assert isinstance(settings.bridges[0], Lwm2mBridgeConfig)
    assert "lwm2m" in KINDS
    assert isinstance(build_source(settings.bridges[0], network_clients(BrokerUrl(port=1)), tmp_path), Lwm2mSource)
    schema = Settings.model_json_schema(mode="validation")
    fields = schema["$defs"]["Lwm2mBridgeConfig"]["properties"]
    assert all(spec.get("description") for name, spec in fields.items() if name != "kind")


def test_resources_take_names_types_and_units_from_the_registry_or_the_config() -> None:
    cfg = config(
        devices=[
            {
                "endpoint": "m",
                "id": "meter",
                "resources": [
                    {"path": "3331/0/5805"},
                    {"path": "3316/0/5700", "unit": "mV"},
                    {"path": "3200/0/5500", "name": "Door"},
                    {"path": "3201/0/5550"},
                    {"path": "32769/0/1", "datatype": "Int32"},
                ],
            }
        ]
    )
    tags = [(t.name, t.datatype, t.unit, t.writable) for t in Lwm2mSource(config=cfg).tags() if t.device == "meter"]
    assert tags == [
        ("Energy/0/CumulativeActivePower", DataType.Double, "Wh", False),
        ("Voltage/0/SensorValue", DataType.Double, "mV", False),
        ("Door", DataType.Boolean, None, False),
        ("DigitalOutput/0/DigitalOutputState", DataType.Boolean, None, True),
        ("32769/0/1", DataType.Int32, None, False),
    ]
    unknown = config(devices=[{"endpoint": "m", "id": "meter", "resources": [{"path": "32769/0/1"}]}])
    with pytest.raises(
        BridgeError, match=r"32769/0/1 is not in the IPSO registry this server knows: give its datatype"
    ):
        Lwm2mSource(config=unknown)


def test_registry_lifetimes_updates_and_refusals() -> None:
    registry = Registry(allowed=lambda ep: ep in ("a", "b"), min_lifetime_s=5)
    reg, old = registry.register({"ep": "a", "lt": "10", "b": "U"}, b'</>;rt="oma.lwm2m",</1/0>,</3303/0>', now_ms=0)
    assert (reg.location, reg.lifetime_s, reg.objects, old) == ("rd/1", 10, ((1, 0), (3303, 0)), None)
    again, old = registry.register({"ep": "a"}, b"", now_ms=1000)
    assert (again.location, again.lifetime_s, old) == ("rd/2", 86400, reg)  # a Register without lt: a day
    with pytest.raises(RegistrationRefused, match="no registration at /rd/1"):
        registry.update("rd/1", {}, b"", now_ms=1000)
    registry.update("/rd/2/", {"lt": "20"}, b"", now_ms=2000)
    assert registry.next_expiry_ms() == 22_000
    assert registry.expired(now_ms=22_000) == []
    assert [r.endpoint for r in registry.expired(now_ms=22_001)] == ["a"]
    assert len(registry) == 0
    for query, code, reason in [
        ({"lt": "10"}, "4.00", "ep: a Register needs the endpoint name"),
        ({"ep": "c"}, "4.03", "ep: endpoint 'c' is not configured on this server"),
        ({"ep": "b", "lt": "4"}, "4.00", "lt: a lifetime is whole seconds >= 5 (got '4')"),
        ({"ep": "b", "b": "X"}, "4.00", "b: binding 'X' is not letters of U, M, H, T, S, N, Q"),
    ]:
        with pytest.raises(RegistrationRefused) as caught:
            registry.register(query, b"", now_ms=0)
        assert (caught.value.code, caught.value.reason) == (code, reason)
    with pytest.raises(RegistrationRefused, match="object link at character 7: '3303/x'"):
        parse_links(b"</1/0>,<3303/x>")
    with pytest.raises(RegistrationRefused, match="object link at character 0 is not <path>"):
        parse_links(b"/1/0")


def test_saved_registrations_round_trip_and_what_is_not_read_back(tmp_path: Path) -> None:
    path = tmp_path / "lwm2m/env/registrations.json"
    registry = Registry(allowed=lambda ep: True)
    live, _ = registry.register({"ep": "a", "lt": "60"}, b"</3303/0>", now_ms=1_000)
    gone, _ = registry.register({"ep": "b", "lt": "1"}, b"", now_ms=1_000)
    save_registrations(path, [(live, "127.0.0.1:5690"), (gone, "[::1]:5691")])
    assert load_registrations(path, now_ms=2_001) == [(live, "127.0.0.1:5690")]  # b's lifetime ran out at 2000
    restored = Registry(allowed=lambda ep: True)
    restored.restore(live)
    again, _ = restored.register({"ep": "c"}, b"", now_ms=3_000)
    assert again.location == "rd/2"  # numbered after the restored rd/1
    path.write_text("[{")
    assert load_registrations(path, now_ms=0) == []
    assert not path.exists()
    assert path.with_suffix(".bad").read_text() == "[{"
