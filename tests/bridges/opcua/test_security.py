"""OpcUaSource logging in with user name and password, and over Basic256Sha256 Sign / SignAndEncrypt."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from asyncua import ua

from bridges.opcua import OpcUaSource
from tests.bridges.opcua.harness import config, running, until
from tests.bridges.opcua.plant_server import Certificate, PlantServer, make_certificate, node_id, plant_server
from uns.errors import DeviceUnreachable

pytestmark = pytest.mark.asyncio(loop_scope="module")

_DEVICES = [
    {
        "id": "filler",
        "nodes": [
            {"name": "Temperature", "node_id": node_id("Temperature")},
            {"name": "Mode", "node_id": node_id("Mode"), "writable": True},
        ],
    }
]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def guarded() -> AsyncIterator[PlantServer]:
    """A server that takes one user name and password, and no anonymous sessions."""
    async with plant_server(users=("operator", "s3cret")) as server:
        yield server


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> tuple[Certificate, Certificate]:
    directory = tmp_path_factory.mktemp("pki")
    server = make_certificate(directory, "server", "urn:uns-hub:test:server")
    client = make_certificate(directory, "client", "urn:uns-hub:test:bridge")
    return server, client


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def secured(certificates: tuple[Certificate, Certificate]) -> AsyncIterator[PlantServer]:
    """A server that only offers Basic256Sha256 endpoints."""
    async with plant_server(certificate=certificates[0]) as server:
        yield server


async def test_login_with_user_name_and_password(guarded: PlantServer) -> None:
    login = {"username": "operator", "password": "s3cret"}  # the test server's own user
    source = OpcUaSource(config=config(guarded.endpoint, _DEVICES, **login))
    async with running(source) as events:
        await until(lambda: events.value("filler", "Temperature") == 21.5, what="data after login")


@pytest.mark.parametrize(
    ("login", "reason"),
    [
        ({"username": "operator", "password": "wrong"}, "login refused for user 'operator'"),
        ({"username": "intruder", "password": "s3cret"}, "login refused for user 'intruder'"),
        ({}, "server refused the connection"),
    ],
)
async def test_refused_logins_are_named(guarded: PlantServer, login: dict[str, str], reason: str) -> None:
    with pytest.raises(DeviceUnreachable, match=reason) as caught:
        async with OpcUaSource(config=config(guarded.endpoint, _DEVICES, **login)):
            pass
    assert guarded.endpoint in str(caught.value)


@pytest.mark.parametrize("pin_server", [False, True], ids=["server-cert-from-endpoint", "server-cert-pinned"])
@pytest.mark.parametrize("mode", ["SignAndEncrypt", "Sign"])
async def test_basic256sha256(
    secured: PlantServer, certificates: tuple[Certificate, Certificate], mode: str, pin_server: bool
) -> None:
    server_cert, client_cert = certificates
    security: dict[str, object] = {
        "policy": "Basic256Sha256",
        "mode": mode,
        "certificate": str(client_cert.cert),
        "private_key": str(client_cert.key),
        "server_certificate": str(server_cert.cert) if pin_server else None,
    }
    source = OpcUaSource(config=config(secured.endpoint, _DEVICES, security=security))
    async with running(source) as events:
        await until(lambda: events.value("filler", "Temperature") == 21.5, what="data over a secure channel")
        await source.write("filler", "Mode", 7)
        assert (await secured.read("Mode")) == ua.Variant(7, ua.VariantType.Int32)
        await until(lambda: events.value("filler", "Mode") == 7, what="the write, seen by the subscription")


async def test_unsecured_client_is_refused_by_a_secure_only_server(secured: PlantServer) -> None:
    with pytest.raises(DeviceUnreachable, match=secured.endpoint):
        async with OpcUaSource(config=config(secured.endpoint, _DEVICES)):
            pass
