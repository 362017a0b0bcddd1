"""The LwM2M server as a Sparkplug edge node, with the aiocoap test client (TLV, SenML JSON/CBOR) as the device.

Checked by the independent test host (raw paho + protobuf): DBIRTH on Register, DDATA on notifications,
DDEATH on De-register and on a lifetime ending, writes and executes from DCMD, broken payloads refused
with their byte or field while the device stays alive.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import cbor2
import pytest

from bridges.lwm2m.content import SENML_CBOR, SENML_JSON, TLV
from bridges.lwm2m.tlv import encode_tlv
from bridges.lwm2m.udp import claim_port
from bridges.sim.lwm2m_client import Lwm2mClient
from tests.bridges.edge.spb_host import BOOLEAN, DOUBLE, until
from tests.bridges.lwm2m.rig import TH, config, last, running
from uns.broker import EmbeddedBroker


@pytest.mark.parametrize("accept", [None, "tlv", "senml_json", "senml_cbor"])
async def test_register_observe_and_deregister(broker: EmbeddedBroker, tmp_path: Path, accept: str | None) -> None:
    cfg = config(accept=accept)
    async with running(broker.url.port, cfg, tmp_path) as rig, Lwm2mClient(endpoint="th-1", resources=TH) as client:
        assert rig.host.count("DBIRTH") == 1  # only the status device: th1 is down until it registers
        answer = await client.register("127.0.0.1", rig.source.port)
        assert str(answer.code) == "2.01 Created"
        await until(lambda: rig.host.of("DBIRTH", "th1") != [], what="th1 DBIRTH on Register")
        await rig.wait_value("Temperature/0/SensorValue", 21.5)
        await rig.wait_value("Humidity/0/SensorValue", 40.0)
        await rig.wait_value("Location", "warehouse")
        client.set("3303/0/5700", 23.25)
        client.set("3304/0/5700", 55.5)
        await rig.wait_value("Temperature/0/SensorValue", 23.25)
        await rig.wait_value("Humidity/0/SensorValue", 55.5)
        assert str((await client.deregister()).code) == "2.02 Deleted"
        await until(lambda: rig.host.of("DDEATH", "th1") != [], what="th1 DDEATH on De-register")
        await until(lambda: last(rig, "Deregistrations") == 1, what="the de-registration counted")
        assert last(rig, "Registered") == 0
    birth = rig.host.of("DBIRTH", "th1")[0]
    units = {
        m.name: [v.string_value for k, v in zip(m.properties.keys, m.properties.values, strict=True) if k == "engUnit"]
        for m in birth.payload.metrics
    }
    assert units["Temperature/0/SensorValue"] == ["Cel"]
    assert units["Humidity/0/SensorValue"] == ["%RH"]
    assert rig.host.violations == []


async def test_lifetime_expiry_is_device_death_and_register_again_rebirths(
    broker: EmbeddedBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bridges.edge.node")
    async with (
        running(broker.url.port, config(), tmp_path) as rig,
        Lwm2mClient(endpoint="th-1", resources=TH, lifetime_s=1) as client,
    ):
        # not registered since the server started: awaited (no DBIRTH), said at INFO, no warning
        assert rig.host.of("DBIRTH", "th1") == []
        assert _th1_logged(caplog) == [
            ("INFO", "edge env: device th1 not up yet: waiting for LwM2M client th-1 to register")
        ]
        await client.register("127.0.0.1", rig.source.port)
        await rig.wait_value("Temperature/0/SensorValue", 21.5)
        assert str((await client.update()).code) == "2.04 Changed"  # an update renews the lifetime
        await until(lambda: rig.host.of("DDEATH", "th1") != [], what="th1 DDEATH once its lifetime ran out")
        await until(lambda: last(rig, "Expired") == 1, what="the expiry counted")
        # registered, then lost: a warning
        expired = "edge env: device th1 down: LwM2M client th-1 expired: no Update within its lifetime of 1 s"
        assert _th1_logged(caplog)[1:] == [("WARNING", expired)]
        answer = await client.update()
        assert str(answer.code) == "4.04 Not Found"  # expired: its location is gone
        client.lifetime_s = 60
        client.set("3303/0/5700", 19.0)
        await client.register("127.0.0.1", rig.source.port)
        await until(lambda: len(rig.host.of("DBIRTH", "th1")) == 2, what="th1 born again on Register")
        await rig.wait_value("Temperature/0/SensorValue", 19.0)
    assert rig.host.violations == []


def _th1_logged(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    """The edge node's records about device th1 coming and going: level and message."""
    return [
        (r.levelname, r.getMessage())
        for r in caplog.records
        if r.name == "bridges.edge.node" and "device th1 " in r.getMessage()
    ]


async def test_a_client_lost_while_the_server_was_down_is_awaited_then_a_warning(
    broker: EmbeddedBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """th-1 registered, then the server stopped and th-1's lifetime ran out meanwhile (its saved registration is not
    restored) and it never comes back: awaited at INFO at the restart, lost at WARNING after ``register_within_s``.
    th-2, also awaited at the restart, registers in time: no warning."""
    caplog.set_level(logging.INFO)
    th2 = {**config().devices[0].model_dump(exclude_unset=True), "endpoint": "th-2", "id": "th2"}
    cfg = config(port=claim_port("127.0.0.1", 0), register_within_s=2.0)  # th-2 in time on a loaded box too
    cfg = cfg.model_copy(update={"devices": [*cfg.devices, type(cfg.devices[0]).model_validate(th2)]})
    async with (
        Lwm2mClient(endpoint="th-1", resources=TH, lifetime_s=1) as lost,
        Lwm2mClient(endpoint="th-2", resources=TH) as back,
    ):
        async with running(broker.url.port, cfg, tmp_path) as first:
            await lost.register("127.0.0.1", first.source.port)
            await first.wait_value("Temperature/0/SensorValue", 21.5)
        await asyncio.sleep(1.2)  # the server is down past th-1's lifetime: its registration is not restored
        caplog.clear()
        async with running(broker.url.port, cfg, tmp_path) as second:
            await back.register("127.0.0.1", second.source.port)
            await second.wait_value("Temperature/0/SensorValue", 21.5, device="th2")
            await until(lambda: _lost(caplog) != [], what="th-1 not back within register_within_s")
            await asyncio.sleep(0.3)  # said once
            assert second.host.of("DBIRTH", "th1") == []
    assert _th1_logged(caplog) == [
        ("INFO", "edge env: device th1 not up yet: waiting for LwM2M client th-1 to register")
    ]
    assert _lost(caplog) == [
        (
            "WARNING",
            "lwm2m env: client th-1 (device th1) has not registered within 2 s of the server starting: lost, "
            "or its ep= is not th-1",
        )
    ]


def _lost(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    """The LwM2M source's records of a client not registered in time: level and message."""
    return [
        (r.levelname, r.getMessage())
        for r in caplog.records
        if r.name == "bridges.lwm2m.source" and "has not registered" in r.getMessage()
    ]


async def test_dcmd_writes_and_executes(broker: EmbeddedBroker, tmp_path: Path) -> None:
    cfg = config(write_format="tlv")
    async with running(broker.url.port, cfg, tmp_path) as rig, Lwm2mClient(endpoint="th-1", resources=TH) as client:
        await client.register("127.0.0.1", rig.source.port)
        await rig.wait_value("Temperature/0/SensorValue", 21.5)
        rig.dcmd("Location", "cold store", 12)
        await until(lambda: client.writes != [], what="the client written")
        assert client.writes == [((3303, 0, 5750), "cold store")]
        await rig.wait_value("Location", "cold store")  # observed back from the client
        rig.dcmd("Device/0/Reboot", True, BOOLEAN)
        await until(lambda: client.executed != [], what="the client's Reboot executed")
        assert client.executed == [(3, 0, 4)]
        rig.dcmd("Temperature/0/SensorValue", 5.0, DOUBLE)  # a sensor value is read-only: refused by the node
        await until(lambda: last(rig, "Writes") == 2, what="two writes counted")
    assert client.writes == [((3303, 0, 5750), "cold store")]
    assert rig.host.violations == []


@pytest.mark.parametrize(
    ("accept", "payload", "fmt", "where"),
    [
        ("tlv", bytes.fromhex("c8 00 14 4f 70"), TLV, "TLV at byte 0: value of 20 bytes overruns"),
        ("senml_json", b'[{"n":"/3303/0/5700","v":"hot"}]', SENML_JSON, "SenML JSON at record 0 'v'"),
        (
            "senml_cbor",
            cbor2.dumps([{0: "/3303/0/5700", 2: 1.0}]) + b"\xff",
            SENML_CBOR,
            "SenML CBOR at byte 26: 1 bytes after the pack",
        ),
    ],
)
async def test_a_broken_notification_is_refused_and_counted_and_the_device_kept(
    broker: EmbeddedBroker, tmp_path: Path, accept: str, payload: bytes, fmt: int, where: str
) -> None:
    async with (
        running(broker.url.port, config(accept=accept), tmp_path) as rig,
        Lwm2mClient(endpoint="th-1", resources=TH) as client,
    ):
        await client.register("127.0.0.1", rig.source.port)
        await rig.wait_value("Temperature/0/SensorValue", 21.5)
        client.inject("3303/0/5700", payload, fmt)
        await until(lambda: last(rig, "Refused") == 1, what="the broken notification counted")
        refusal = last(rig, "LastRefusal")
        assert isinstance(refusal, str)
        assert refusal.startswith(f"th-1 /3303/0/5700: {where}"), refusal
        client.set("3303/0/5700", 24.0)  # the next good notification of the same observation goes through
        await rig.wait_value("Temperature/0/SensorValue", 24.0)
        assert rig.host.of("DDEATH", "th1") == []
    assert rig.host.violations == []


async def test_instance_observe_in_one_tlv_and_a_value_unfit_for_its_resource(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    cfg = config(accept="tlv")
    device = cfg.devices[0].model_copy(update={"observe": ["3303/0", "3304/0/5700"]})
    cfg = cfg.model_copy(update={"devices": [device]})
    async with running(broker.url.port, cfg, tmp_path) as rig, Lwm2mClient(endpoint="th-1", resources=TH) as client:
        await client.register("127.0.0.1", rig.source.port)
        await rig.wait_value("Location", "warehouse")
        await rig.wait_value("Temperature/0/SensorValue", 21.5)
        bad = encode_tlv([(5700, b"\x01\x02\x03"), (5750, b"dock 4")])  # a 3-byte float, then a good name
        client.inject("3303/0", bad, TLV)
        await rig.wait_value("Location", "dock 4")
        await until(lambda: last(rig, "Refused") == 1, what="the unfit value counted")
        assert last(rig, "LastRefusal") == (
            "th-1 /3303/0: 3303/0/5700 (TLV byte 3): a TLV float is 4 or 8 bytes (got 3)"
        )
    assert rig.values("Temperature/0/SensorValue")[-1] == 21.5
    assert rig.host.violations == []


async def test_registrations_refused_with_a_reason(broker: EmbeddedBroker, tmp_path: Path) -> None:
    async with (
        running(broker.url.port, config(), tmp_path) as rig,
        Lwm2mClient(endpoint="stranger", resources=TH) as stranger,
        Lwm2mClient(endpoint="th-1", resources=TH) as client,
    ):
        answer = await stranger.register("127.0.0.1", rig.source.port)
        assert (str(answer.code), answer.payload) == (
            "4.03 Forbidden",
            b"ep: endpoint 'stranger' is not configured on this server",
        )
        answer = await client.register("127.0.0.1", rig.source.port, query=["lt=60"])
        assert (str(answer.code), answer.payload) == ("4.00 Bad Request", b"ep: a Register needs the endpoint name")
        answer = await client.register("127.0.0.1", rig.source.port, query=["ep=th-1", "lt=soon"])
        assert str(answer.code) == "4.00 Bad Request"
        assert answer.payload.startswith(b"lt: a lifetime is whole seconds")
        await until(lambda: last(rig, "RegistrationsRefused") == 3, what="three refusals counted")
        assert rig.host.of("DBIRTH", "th1") == []
    assert rig.host.violations == []


async def test_a_restarted_server_observes_its_clients_again_without_a_new_register(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    cfg = config(port=claim_port("127.0.0.1", 0))  # a fixed port: the client updates where it registered
    async with Lwm2mClient(endpoint="th-1", resources=TH) as client:
        async with running(broker.url.port, cfg, tmp_path) as first:
            await client.register("127.0.0.1", first.source.port)
            await first.wait_value("Temperature/0/SensorValue", 21.5)
        saved = json.loads((tmp_path / "lwm2m/env/registrations.json").read_text())
        assert [(row["endpoint"], row["location"]) for row in saved] == [("th-1", "rd/1")]
        client.set("3303/0/5700", 30.5)  # while the server is away: nobody observes it
        async with running(broker.url.port, cfg, tmp_path) as second:
            await until(
                lambda: second.host.of("DBIRTH", "th1") != [], what="th1 born again from the saved registration"
            )
            await second.wait_value("Temperature/0/SensorValue", 30.5)
            assert str((await client.update()).code) == "2.04 Changed"  # its location is still known
            client.set("3303/0/5700", 31.0)
            await second.wait_value("Temperature/0/SensorValue", 31.0)
            assert last(second, "Registrations") == 0  # no Register was needed
    assert first.host.violations == second.host.violations == []
