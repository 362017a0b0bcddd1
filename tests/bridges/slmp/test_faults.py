"""SlmpPlc when the link fails: virtual-plc's fault plans (silence, resets, garbage), a PLC down, UDP."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bridges.slmp.counterpart import VirtualPlc, virtual_plc
from tests.bridges.slmp.test_device import library_client, plc, values
from tests.bridges.slmp.udp_relay import UdpRelay
from uns.errors import DeviceUnreachable

_TAGS: list[dict[str, object]] = [{"name": "a", "address": "D0"}, {"name": "f", "address": "D10", "type": "float32"}]


@pytest.mark.parametrize(
    ("action", "reason"),
    [
        (
            {"type": "silent_hold"},
            "no answer in time",
        ),  # a half-open connection: the PLC keeps the socket, says nothing
        ({"type": "rst"}, "random read of D0"),
        ({"type": "close_before_response"}, "random read of D0"),
        ({"type": "corrupt_header", "offset": 0, "xor": 255}, "random read of D0"),
        ({"type": "truncate", "n": 5}, "random read of D0"),
    ],
)
async def test_a_failing_link_is_unreachable_and_the_next_connect_reads_again(
    tmp_path: Path, action: dict[str, object], reason: str
) -> None:
    # the first random read on the first connection fails; connection 2 is healthy
    faults = [{"match": {"command": 0x0403, "connection": 1}, "action": action}]
    with virtual_plc(tmp_path, faults=faults, seed={"D": {"0": [42]}}) as server:
        device = plc(server, "iQ-R", _TAGS, timeout_s=0.5)
        await device.connect()
        try:
            with pytest.raises(DeviceUnreachable, match=reason) as lost:
                await device.read("default")
            await device.close()
            await device.connect()
            read = await device.read("default")
        finally:
            await device.close()
    assert "plc1" in str(lost.value)
    assert values(read) == {"a": 42, "f": 0.0}


async def test_a_plc_that_is_not_there_is_unreachable(tmp_path: Path) -> None:
    with virtual_plc(tmp_path) as server:
        pass  # gone: its port now refuses
    device = plc(server, "iQ-R", _TAGS)
    with pytest.raises(DeviceUnreachable, match="connect"):
        await device.connect()
    await device.close()
    await device.close()  # idempotent


async def test_close_then_connect_recreates_the_client(tmp_path: Path) -> None:
    with virtual_plc(tmp_path, seed={"D": {"0": [7]}}) as server:
        device = plc(server, "iQ-R", _TAGS)
        for _ in range(3):
            await device.connect()
            assert values(await device.read("default"))["a"] == 7
            await device.close()


@pytest.mark.parametrize("frame", ["3E", "4E"])
async def test_udp_reads_and_writes(tmp_path: Path, frame: str) -> None:
    tags = [*_TAGS, {"name": "m", "address": "M3", "type": "bool", "writable": True}]
    with virtual_plc(tmp_path, profile="Q", seed={"D": {"0": [9]}}) as server:
        async with UdpRelay(server.port) as relay:
            udp = VirtualPlc(server.host, relay.port)
            device = plc(udp, "Q", tags, transport="udp", frame=frame)
            await device.connect()
            try:
                await device.write("m", True)
                read = await device.read("default")
            finally:
                await device.close()
    assert values(read) == {"a": 9, "f": 0.0, "m": True}
    assert relay.datagrams == 3  # probe, write, one random read
    assert device.endpoint.startswith(f"slmp udp 127.0.0.1:{relay.port} Q {frame}")


async def test_udp_with_nobody_listening_is_unreachable(tmp_path: Path) -> None:
    async with UdpRelay(1) as relay:
        port = relay.port
    with virtual_plc(tmp_path) as server:
        device = plc(VirtualPlc(server.host, port), "iQ-R", _TAGS, transport="udp", timeout_s=0.3,
                     connect_timeout_s=0.3)  # fmt: skip
        with pytest.raises(DeviceUnreachable, match="SD203"):
            await device.connect()
        await device.close()


async def test_udp_after_a_timeout_a_new_socket_never_takes_the_late_answer(tmp_path: Path) -> None:
    # the first random read is answered 0.6 s late, saying D0 = 1; by then the driver gave up (0.3 s),
    # D0 became 2, and the late answer goes to the old socket: the new one reads 2
    faults = [{"match": {"command": 0x0403}, "action": {"type": "delay", "seconds": 0.6}}]
    with virtual_plc(tmp_path, profile="Q", faults=faults, seed={"D": {"0": [1]}}) as server:
        async with UdpRelay(server.port) as relay:
            device = plc(VirtualPlc(server.host, relay.port), "Q", _TAGS, transport="udp", frame="3E",
                         timeout_s=0.3, connect_timeout_s=2.0)  # fmt: skip
            await device.connect()
            try:
                with pytest.raises(DeviceUnreachable, match="no answer in time"):
                    await device.read("default")
                await device.close()
                client = await library_client(server, "Q")
                try:
                    await client.write_devices("D0", [2], bit_unit=False)
                finally:
                    await client.close()
                await device.connect()  # its probe waits behind the late answer in the relay
                read = await device.read("default")
            finally:
                await device.close()
    assert values(read)["a"] == 2
