"""Connection slots: pending handshakes have their own bounded pool; a full broker answers CONNACK 3 (issue 13.3)."""

from __future__ import annotations

from pathlib import Path

from tests.fixtures.broker import broker_test_config, start_broker
from tests.fixtures.waiting import until
from tests.uns.broker.raw_mqtt import CONNACK_OK, connack, connect_packet, open_raw, read_or_eof


def _limits(**limits: object) -> dict[str, object]:
    return {"limits": limits}


async def test_half_open_sockets_and_partial_connects_leave_room_for_a_real_client(tmp_path: Path) -> None:
    config = broker_test_config(**_limits(max_connections=5))
    async with start_broker(tmp_path, config) as broker:
        partial = connect_packet("slow-loris")[:12]  # protocol name, level and flags: no client id yet
        silent = [await open_raw(broker.url) for _ in range(30)]
        stalled = [await open_raw(broker.url, partial) for _ in range(30)]
        try:
            reader, writer = await open_raw(broker.url, connect_packet("real-client"))
            assert await read_or_eof(reader, 4, within_s=3) == CONNACK_OK
            writer.close()
            assert broker.stats.slots_refused == 0
        finally:
            for _, item in silent + stalled:
                item.close()


async def test_a_full_pending_pool_drops_its_oldest_connection_first(tmp_path: Path) -> None:
    config = broker_test_config(**_limits(max_pending_connections=5))
    async with start_broker(tmp_path, config) as broker:
        partial = connect_packet("slow-loris")[:12]
        stalled = [await open_raw(broker.url, partial) for _ in range(5)]
        await until(lambda: broker.stats.pending == 5, what="five pending handshakes")
        reader, writer = await open_raw(broker.url, connect_packet("real-client"))
        assert await read_or_eof(reader, 4, within_s=3) == CONNACK_OK
        assert await read_or_eof(stalled[0][0], 1, within_s=3) == b""  # the oldest made room
        assert broker.stats.pending_dropped == 1
        assert broker.stats.pending == 4  # the other four still wait for their deadline
        writer.close()
        for _, item in stalled:
            item.close()


async def test_at_max_connections_the_next_client_gets_connack_3_and_a_freed_slot_is_reused(tmp_path: Path) -> None:
    config = broker_test_config(**_limits(max_connections=3))
    async with start_broker(tmp_path, config) as broker:
        clients = []
        for index in range(3):
            reader, writer = await open_raw(broker.url, connect_packet(f"c{index}"))
            assert await read_or_eof(reader, 4, within_s=3) == CONNACK_OK
            clients.append((reader, writer))
        reader, writer = await open_raw(broker.url, connect_packet("one-too-many"))
        assert await read_or_eof(reader, 5, within_s=3) == connack(3)  # CONNACK 3, then end of stream
        writer.close()
        assert broker.stats.slots_refused == 1
        clients[0][1].close()
        await until(lambda: broker.stats.connections == 2, what="the first client to be gone")
        reader, writer = await open_raw(broker.url, connect_packet("next"))
        assert await read_or_eof(reader, 4, within_s=3) == CONNACK_OK
        writer.close()
        for _, item in clients[1:]:
            item.close()


async def test_a_silent_connection_is_closed_at_the_connect_deadline(tmp_path: Path) -> None:
    config = broker_test_config(**_limits(connect_timeout_s=0.3))
    async with start_broker(tmp_path, config) as broker:
        reader, writer = await open_raw(broker.url, connect_packet("late")[:5])
        assert await read_or_eof(reader, 1, within_s=3) == b""  # closed, not answered
        writer.close()
        await until(lambda: broker.stats.handshake_failed.get("timeout") == 1, what="the timeout to be counted")


async def test_port_checks_and_non_connect_first_packets_are_counted_by_cause(tmp_path: Path) -> None:
    async with start_broker(tmp_path) as broker:
        _, writer = await open_raw(broker.url)
        writer.close()
        reader, writer = await open_raw(broker.url, b"\xc0\x00")  # PINGREQ before CONNECT
        assert await read_or_eof(reader, 1, within_s=3) == b""
        writer.close()
        await until(
            lambda: broker.stats.handshake_failed == {"no data": 1, "not a CONNECT": 1},
            what="both causes to be counted",
        )
