import socket

from tests.fixtures.mosquitto import Mosquitto


def test_mosquitto_listens_on_loopback(mosquitto: Mosquitto) -> None:
    with socket.create_connection(("127.0.0.1", mosquitto.port), timeout=2) as sock:
        # CONNECT, MQTT 3.1.1, clean session, keepalive 10, client id "t"
        sock.sendall(bytes([0x10, 13, 0, 4]) + b"MQTT" + bytes([4, 2, 0, 10, 0, 1]) + b"t")
        assert sock.recv(4) == bytes([0x20, 2, 0, 0])
