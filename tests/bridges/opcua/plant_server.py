"""A real asyncua server on 127.0.0.1 for the OPC UA bridge tests: a small plant, restartable on its port."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import socket
from collections.abc import AsyncIterator
from pathlib import Path

from asyncua import ua
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.address_space import AttributeValue, NodeData
from asyncua.server.internal_server import InternalServer
from asyncua.server.server import Server
from asyncua.server.user_managers import UserManager
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.object_ids import ObjectIds
from asyncua.ua.status_codes import StatusCodes
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from bridges.sim.opcua_plant import stop_server

NS_URI = "urn:uns-hub:test:plant"
NS = 2  # the first namespace a fresh server registers
LAST_CHANGE = dt.datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=dt.UTC)

# name -> (initial value, variant type, writable on the server)
FILLER: dict[str, tuple[object, ua.VariantType, bool]] = {
    "Temperature": (21.5, ua.VariantType.Double, False),
    "Speed": (1.25, ua.VariantType.Float, False),
    "GoodCount": (10, ua.VariantType.UInt32, False),
    "Level": (-3, ua.VariantType.Int16, False),
    "Running": (True, ua.VariantType.Boolean, False),
    "Recipe": ("A", ua.VariantType.String, False),
    "LastChange": (LAST_CHANGE, ua.VariantType.DateTime, False),
    "Pressure": (2.0, ua.VariantType.Double, False),
    "Setpoint": (50.0, ua.VariantType.Double, True),
    "Mode": (2, ua.VariantType.Int32, True),
    "Enabled": (False, ua.VariantType.Boolean, True),
    "Locked": (1.0, ua.VariantType.Double, False),
}


def _nid(text: str) -> ua.NodeId:
    return ua.NodeId.from_string(f"ns={NS};s={text}")


def node_id(name: str) -> str:
    """Text node id of a Filler variable (``Temperature``) or any plant path (``Capper.Motor.Rpm``)."""
    path = name if "." in name else f"Filler.{name}"
    return f"ns={NS};s=Plant.{path}"


@dataclasses.dataclass(frozen=True)
class Certificate:
    """A self-signed application instance certificate (DER) and its key (PEM)."""

    cert: Path
    key: Path
    uri: str


def make_certificate(directory: Path, name: str, uri: str) -> Certificate:
    """Generate an RSA 2048 self-signed certificate with the application URI in subjectAltName."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier(uri), x509.DNSName(socket.gethostname()), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=True,
                data_encipherment=True,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{name}.der", directory / f"{name}.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.DER))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return Certificate(cert=cert_path, key=key_path, uri=uri)


class _Users(UserManager):
    """Accepts one user name and password, nobody else."""

    def __init__(self, username: str, password: str) -> None:
        self._login = (username, password)

    def get_user(self, iserver: object, username: str | None = None, password: str | None = None,
                  certificate: object = None) -> User | None:  # fmt: skip
        return User(role=UserRole.User) if (username, password) == self._login else None


@dataclasses.dataclass
class PlantServer:
    """A running server; ``restart`` stops it and starts a fresh one on the same port."""

    server: Server
    port: int
    users: tuple[str, str] | None = None
    certificate: Certificate | None = None

    @property
    def endpoint(self) -> str:
        return f"opc.tcp://127.0.0.1:{self.port}/plant"

    def node(self, name: str) -> ua.NodeId:
        return ua.NodeId.from_string(node_id(name))

    async def write(self, name: str, value: object, variant: ua.VariantType, status: int = 0) -> None:
        """Change a value on the server side, with a status code and a fresh source timestamp."""
        now = dt.datetime.now(dt.UTC)
        data = ua.DataValue(
            Value=ua.Variant(value, variant),
            StatusCode=ua.StatusCode(ua.UInt32(status)),
            SourceTimestamp=now,  # type: ignore[arg-type]  # asyncua's DateTime is a datetime
            ServerTimestamp=now,  # type: ignore[arg-type]
        )
        await self.server.write_attribute_value(self.node(name), data)

    async def read(self, name: str) -> ua.Variant:
        value = await self.server.get_node(self.node(name)).read_data_value()
        assert value.Value is not None
        return value.Value

    async def revoke(self, name: str) -> None:
        """Delete a node the way a conformant server reports it on its monitored items.

        asyncua 2.1.0's server never awaits its delete callback, so subscribers hear nothing; send
        the Bad_NodeIdUnknown notification ourselves, drop the callbacks, then delete.
        """
        node = self.node(name)
        await self.server.write_attribute_value(
            node, ua.DataValue(StatusCode=ua.StatusCode(ua.UInt32(StatusCodes.BadNodeIdUnknown)))
        )
        aspace = self.server.iserver.aspace
        for handle in list(aspace[node].attributes[AttributeIds.Value].datachange_callbacks):
            aspace.delete_datachange_callback(handle)
        await self.server.delete_nodes([self.server.get_node(node)])

    async def stop(self) -> None:
        await stop_server(self.server)

    async def start(self, *, without: frozenset[str] = frozenset()) -> None:
        """Start a fresh server on the same port (after ``stop``), optionally missing some Filler nodes."""
        self.server = await _build(self.port, users=self.users, certificate=self.certificate, without=without)


class _PreloadedServer(InternalServer):
    """An internal server whose OPC UA standard address space is a copy of one filled once per process.

    asyncua fills the ~6,000 standard nodes node by node on every ``init`` (about 2 s of CPU, most of
    each test's setup here); a copy takes a tenth of that. Each server gets its own node and attribute
    objects and reference lists, so writes, deletes and callbacks stay its own; the values themselves
    are shared, as asyncua replaces a value on write rather than changing it.
    """

    _template: dict[ua.NodeId, NodeData] | None = None

    async def load_standard_address_space(self, shelf_file: Path | None = None) -> None:
        template = _PreloadedServer._template
        if template is None:
            filled = InternalServer()
            await filled.load_standard_address_space()
            template = _PreloadedServer._template = _untouched(filled.aspace._nodes)
        self.aspace._nodes = {nodeid: _copy(node) for nodeid, node in template.items()}


def _untouched(nodes: dict[ua.NodeId, NodeData]) -> dict[ua.NodeId, NodeData]:
    """The freshly filled nodes, checked to hold no callbacks a copy would share between servers."""
    for node in nodes.values():
        assert node.call is None, node.nodeid
        for value in node.attributes.values():
            assert value.value_callback is None, node.nodeid
            assert value.value_setter is None, node.nodeid
            assert not value.datachange_callbacks, node.nodeid
    return nodes


def _copy(node: NodeData) -> NodeData:
    copy = NodeData(node.nodeid)
    copy.attributes = {attribute: AttributeValue(value.value) for attribute, value in node.attributes.items()}  # type: ignore[arg-type]
    copy.references = list(node.references)
    return copy


async def _build(
    port: int,
    *,
    users: tuple[str, str] | None,
    certificate: Certificate | None,
    without: frozenset[str],
) -> Server:
    server = Server(iserver=_PreloadedServer(user_manager=_Users(*users) if users else None))
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/plant")
    if users:
        server.set_identity_tokens([ua.UserNameIdentityToken])
    if certificate is not None:
        await server.set_application_uri(certificate.uri)
        await server.load_certificate(str(certificate.cert))
        await server.load_private_key(str(certificate.key))
        server.set_security_policy(
            [ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt, ua.SecurityPolicyType.Basic256Sha256_Sign]
        )
    else:
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    assert await server.register_namespace(NS_URI) == NS
    plant = await server.nodes.objects.add_object(_nid("Plant"), "Plant")
    filler = await plant.add_object(_nid("Plant.Filler"), "Filler")
    for name, (value, variant, writable) in FILLER.items():
        if name in without:
            continue
        variable = await filler.add_variable(_nid(f"Plant.Filler.{name}"), name, ua.Variant(value, variant))
        if writable:
            await variable.set_writable()
        if name == "Temperature":
            units = ua.EUInformation(DisplayName=ua.LocalizedText("degC"), Description=ua.LocalizedText("Celsius"))
            await variable.add_property(
                _nid("Plant.Filler.Temperature.EngineeringUnits"),
                ua.QualifiedName("EngineeringUnits", 0),
                units,
                datatype=ua.NodeId(ua.Int32(ObjectIds.EUInformation)),
            )
    capper = await plant.add_object(_nid("Plant.Capper"), "Capper")
    motor = await capper.add_object(_nid("Plant.Capper.Motor"), "Motor")
    await motor.add_variable(_nid("Plant.Capper.Motor.Rpm"), "Rpm", ua.Variant(1450, ua.VariantType.UInt16))
    await motor.add_variable(_nid("Plant.Capper.Motor.Current"), "Current", 3.5)
    await capper.add_variable(_nid("Plant.Capper.Torque"), "Torque", ua.Variant(0.8, ua.VariantType.Float))
    await server.start()
    return server


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def plant_server(
    *,
    users: tuple[str, str] | None = None,
    certificate: Certificate | None = None,
    without: frozenset[str] = frozenset(),
) -> AsyncIterator[PlantServer]:
    """Start the plant server on a free port; stop it on exit (whichever incarnation is running)."""
    port = _free_port()
    server = await _build(port, users=users, certificate=certificate, without=without)
    running = PlantServer(server=server, port=port, users=users, certificate=certificate)
    try:
        yield running
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(stop_server(running.server), 5)
