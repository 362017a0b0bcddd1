"""Our asyncio FINS client against the simulated PLC over UDP and FINS/TCP: SIDs, stale replies, handshakes."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Literal

import pytest

from bridges.fins.client import FinsClient, FinsLink
from bridges.fins.frame import FinsNode, command_frame, memory_read_body
from bridges.sim.fins_server import REQUESTS_KEPT, FinsServer
from model.bridges.fins_address import parse_address
from uns.errors import DeviceRefused, DeviceUnreachable

Transport = Literal["udp", "tcp"]


def _link(port: int, transport: Transport, **overrides: object) -> FinsLink:
    fields: dict[str, object] = {
        "bridge": "omron",
        "endpoint": f"fins {transport} 127.0.0.1:{port}",
        "host": "127.0.0.1",
        "port": port,
        "transport": transport,
        "dest": FinsNode(),
        "timeout_s": 1.0,
        "connect_timeout_s": 2.0,
    }
    fields.update(overrides)
    return FinsLink(**fields)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def _client(port: int, transport: Transport, **overrides: object) -> AsyncIterator[FinsClient]:
    client = FinsClient(_link(port, transport, **overrides))
    await client.connect()
    try:
        yield client
    finally:
        await client.close()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_reads_and_writes_words_and_bits(transport: Transport) -> None:
    async with FinsServer() as plc, _client(plc.port, transport) as client:
        plc.memory.set_words(parse_address("D100"), bytes.fromhex("12345678"))
        read = await client.read_area(parse_address("D100"), 2)
        assert (read.end.ok, read.data.hex()) == (True, "12345678")
        wrote = await client.write_area(parse_address("W10.05"), 1, b"\x01", bits=True)
        assert wrote.end.ok
        assert plc.memory.get_words(parse_address("W10"), 1).hex() == "0020"
        bits = await client.read_area(parse_address("W10.04"), 3, bits=True)
        assert bits.data.hex() == "000100"
        multiple = await client.read_multiple([parse_address("D101"), parse_address("W10.05")])
        assert multiple.data.hex() == "8256783101"


async def test_tcp_handshake_assigns_our_node_and_learns_the_plcs() -> None:
    async with FinsServer(node=7) as plc, _client(plc.port, "tcp") as client:
        assert client.source.node == 100  # assigned by the PLC
        assert client.dest.node == 7  # from the handshake
        await client.read_area(parse_address("D0"), 1)
        assert plc.tcp_clients == 1


async def test_udp_derives_nodes_from_the_ip_addresses() -> None:
    async with FinsServer() as plc, _client(plc.port, "udp") as client:
        assert (client.source.node, client.dest.node) == (1, 1)  # 127.0.0.1: last byte


async def test_a_late_reply_is_discarded_not_taken_for_the_next_answer() -> None:
    async with FinsServer() as plc, _client(plc.port, "udp", timeout_s=0.5, retries=1) as client:
        d0 = parse_address("D0")
        plc.memory.set_words(d0, b"\x00\x01")
        plc.hold = 1  # the first attempt's answer (value 1) is held back; the retry (new SID) is answered
        assert (await client.read_area(d0, 1)).data.hex() == "0001"
        plc.memory.set_words(d0, b"\x00\x02")
        assert plc.release() == 1  # the late answer, still saying 1, reaches the client before the next one
        assert (await client.read_area(d0, 1)).data.hex() == "0002"
        assert client.stale_replies == 1


async def test_no_reply_after_retries_is_unreachable_naming_what_to_check() -> None:
    async with FinsServer() as plc, _client(plc.port, "udp", timeout_s=0.2, retries=1) as client:
        plc.drop = 2
        with pytest.raises(DeviceUnreachable) as caught:
            await client.read_area(parse_address("D0"), 1)
        assert "no FINS reply within 0.2 s (2 attempt(s)) from node 0.1.0" in str(caught.value)
        assert "FINS node address" in str(caught.value)
        assert len(plc.requests) == 0  # both attempts were dropped unanswered


async def test_a_frame_for_another_node_gets_no_answer() -> None:
    async with FinsServer() as plc, _client(plc.port, "udp", timeout_s=0.2, retries=0, dest=FinsNode(0, 9, 0)) as c:
        with pytest.raises(DeviceUnreachable, match=r"from node 0\.9\.0"):
            await c.read_area(parse_address("D0"), 1)


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (0x20, "FINS/TCP error 0x20 all connections are in use: close other FINS/TCP clients"),
        (0x22, "protected node from an unspecified IP address: the PLC accepts FINS/TCP only from listed"),
    ],
)
async def test_a_refused_tcp_handshake_is_device_refused(code: int, words: str) -> None:
    async with FinsServer() as plc:
        plc.refuse_tcp = code
        client = FinsClient(_link(plc.port, "tcp"))
        with pytest.raises(DeviceRefused) as caught:
            await client.connect()
        assert words in str(caught.value)
        assert "bridge omron (fins tcp 127.0.0.1:" in str(caught.value)
        assert not client.connected


async def test_our_node_equal_to_the_plcs_is_refused() -> None:
    async with FinsServer(node=5) as plc:
        with pytest.raises(DeviceRefused, match="0x24 the same FINS node address"):
            await FinsClient(_link(plc.port, "tcp", source_node=5)).connect()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_nobody_listening_is_unreachable_over_both_transports() -> None:
    port = _free_port()
    with pytest.raises(DeviceUnreachable, match="connect failed"):
        await FinsClient(_link(port, "tcp")).connect()
    client = FinsClient(_link(port, "udp", timeout_s=0.5))
    await client.connect()  # a UDP socket opens whoever listens
    with pytest.raises(DeviceUnreachable, match="connection lost"):
        await client.read_area(parse_address("D0"), 1)  # ICMP port unreachable, not a timeout
    await client.close()


async def test_tcp_connection_dropped_by_the_plc_is_unreachable() -> None:
    async with FinsServer() as plc:
        client = FinsClient(_link(plc.port, "tcp"))
        await client.connect()
    # the PLC is gone (its sockets closed)
    with pytest.raises(DeviceUnreachable, match="connection lost"):
        await client.read_area(parse_address("D0"), 1)
    assert not client.connected


async def test_a_plc_answering_a_fixed_port_is_reached_by_sending_from_it() -> None:
    port = _free_port()
    async with FinsServer() as plc:
        plc.reply_port = port  # static IP address conversion: answers go to this port, whoever asked
        plc.memory.set_words(parse_address("D0"), b"\x00\x01")
        async with _client(plc.port, "udp", timeout_s=0.2, retries=0) as lost:
            with pytest.raises(DeviceUnreachable, match="no FINS reply"):
                await lost.read_area(parse_address("D0"), 1)
        async with _client(plc.port, "udp", source_port=port) as client:
            assert (await client.read_area(parse_address("D0"), 1)).data.hex() == "0001"
            assert client.local_port == port


async def test_a_tcp_port_that_is_not_fins_is_refused_and_one_that_hangs_up_is_unreachable() -> None:
    async def not_fins(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(20)
        writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        await writer.drain()
        writer.close()

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(20)
        writer.close()

    for handler, error, words in (
        (not_fins, DeviceRefused, "does not answer FINS/TCP"),
        (hang_up, DeviceUnreachable, "closed the connection during the FINS/TCP handshake"),
    ):
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        port = int(server.sockets[0].getsockname()[1])
        try:
            client = FinsClient(_link(port, "tcp"))
            with pytest.raises(error, match=words):
                await client.connect()
            assert not client.connected
        finally:
            server.close()
            await server.wait_closed()


async def test_zero_items_is_a_normal_completion_that_reads_nothing() -> None:
    # the CJ reference: "If the specified number of elements is 0000 hex, nothing will be read and a normal
    # response will be returned"; a Multiple Memory Area Read with no items likewise
    async with FinsServer() as plc, _client(plc.port, "udp") as client:
        empty = await client.read_area(parse_address("D0"), 0)
        assert (empty.end.ok, empty.data) == (True, b"")
        none = await client.read_multiple([])
        assert (none.end.ok, none.data) == (True, b"")


async def test_over_tcp_a_node_other_than_the_plcs_own_is_refused_naming_the_right_one() -> None:
    async with FinsServer(node=7) as plc:
        client = FinsClient(_link(plc.port, "tcp", dest=FinsNode(0, 9, 0)))
        with pytest.raises(DeviceRefused, match=r"node 9 is configured but the PLC at .* says it is FINS node 7"):
            await client.connect()
        assert not client.connected
        # through this PLC to node 9 of network 2 is a route, not a mistake
        routed = FinsClient(_link(plc.port, "tcp", dest=FinsNode(2, 9, 0)))
        await routed.connect()
        await routed.close()


def test_the_simulated_plc_remembers_only_its_last_commands() -> None:
    # the demo polls its FINS PLC all day: an unbounded log of every command grew the hub's memory (bench/soak.py)
    plc = FinsServer()
    for sid in range(REQUESTS_KEPT + 500):
        frame = command_frame(
            dest=FinsNode(0, plc.node, 0),
            source=FinsNode(0, 250, 0),
            sid=sid % 256,
            code=0x0101,
            body=memory_read_body(parse_address(f"D{sid}"), 1),
        )
        assert plc.handle(frame) is not None
    assert len(plc.requests) == REQUESTS_KEPT
    assert plc.requests[-1] == (0x0101, memory_read_body(parse_address(f"D{REQUESTS_KEPT + 499}"), 1))
    assert plc.requests[0] == (0x0101, memory_read_body(parse_address("D500"), 1))
