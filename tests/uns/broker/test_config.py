from pathlib import Path

import pytest

from uns.broker import hash_password, load_broker_config, verify_password
from uns.errors import ConfigError

_HASH = "$argon2id$v=19$m=65536,t=3,p=4$placeholder"
_USER = "listeners: {tcp: {port: 1}}\nusers: {u: {password_hash: '" + _HASH + "', "
GOOD = """
listeners:
  tcp: {bind: 127.0.0.1, port: 1883}
allow_anonymous: true
anonymous_role: admin
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "broker.yaml"
    path.write_text(text)
    return path


def test_repo_broker_yaml_loads() -> None:
    config = load_broker_config(Path(__file__).parents[3] / "broker.yaml")
    assert config.listeners.tcp.port == 1883
    assert config.listeners.ws is not None
    assert config.listeners.ws.port == 9001
    assert config.limits.max_payload_bytes == 1_048_576


@pytest.mark.parametrize(
    ("text", "path", "fragment"),
    [
        ("listeners: {tcp: {port: 70000}}", "listeners.tcp.port", "65535"),
        ("listeners: {}", "listeners.tcp", "required"),
        ("{}", "listeners", "required"),
        ("listeners: {tcp: {port: 1}}\nallow_anonymos: true", "allow_anonymos", "not permitted"),
        ("listeners: {tcp: {port: 1}}\nanonymous_role: boss", "anonymous_role", "admin"),
        (
            "listeners: {tcp: {port: 1}}\nusers: {u: {password_hash: plain, role: app}}",
            "users.u.password_hash",
            "argon2",
        ),
        (
            _USER + "role: app, edge_nodes: [a/b]}}",
            "users.u.edge_nodes",
            "bridge",
        ),
        (
            _USER + "role: bridge, edge_nodes: [ab]}}",
            "users.u.edge_nodes",
            "group/node",
        ),
        (
            "listeners: {tcp: {bind: 0.0.0.0, port: 1}}\nallow_anonymous: true",
            "allow_anonymous",
            "anonymous_on_network",
        ),
        ("listeners: {tcp: {port: 1}}\napp_cmd_topics: ['a/#/b']", "app_cmd_topics", "'#'"),
        ("listeners: {tcp: {port: 1}}\nlimits: {max_payload_bytes: 0}", "limits.max_payload_bytes", "greater"),
        (
            "listeners: {tcp: {port: 1}, tls: {port: 2, certfile: /nope.pem, keyfile: /nope.key}}",
            "listeners.tls.certfile",
            "not found",
        ),
    ],
)
def test_errors_name_the_field(tmp_path: Path, text: str, path: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_broker_config(write(tmp_path, text))
    assert caught.value.path == path
    assert fragment in caught.value.reason
    assert str(caught.value).startswith(f"{tmp_path / 'broker.yaml'}: {path}: ")


def test_error_carries_the_bad_value(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_broker_config(write(tmp_path, "listeners: {tcp: {port: 70000}}"))
    assert caught.value.value == 70000
    assert "(got 70000)" in str(caught.value)


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file; looked in"):
        load_broker_config(tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match="YAML syntax error at line 1"):
        load_broker_config(write(tmp_path, "listeners: {tcp: [}"))
    with pytest.raises(ConfigError, match="must be a YAML mapping"):
        load_broker_config(write(tmp_path, "- a\n- b\n"))


def test_overrides(tmp_path: Path) -> None:
    config = load_broker_config(write(tmp_path, GOOD), bind="::1", mqtt_port=0, ws_port=0, max_payload_bytes=10)
    assert (config.listeners.tcp.bind, config.listeners.tcp.port) == ("::1", 0)
    assert config.listeners.ws is not None  # absent in the file: the override turns it on
    assert (config.listeners.ws.bind, config.listeners.ws.port) == ("::1", 0)
    assert config.limits.max_payload_bytes == 10


def test_override_is_validated(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_broker_config(write(tmp_path, GOOD), mqtt_port=-1)
    assert caught.value.path == "listeners.tcp.port"


def test_tls_port_without_cert_files_names_the_fields(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_broker_config(write(tmp_path, GOOD), tls_port=0)
    # every problem is reported, not only the first (the one loader, uns.config_file)
    assert str(caught.value).splitlines()[1:] == [
        f"{tmp_path / 'broker.yaml'}: listeners.tls.certfile: Field required",
        f"{tmp_path / 'broker.yaml'}: listeners.tls.keyfile: Field required",
    ]


def test_password_hash_round_trip() -> None:
    hashed = hash_password("s3cret")
    assert hashed.startswith("$argon2id$")
    assert verify_password("s3cret", hashed)
    assert not verify_password("wrong", hashed)
    assert not verify_password("s3cret", "not-a-hash")
    with pytest.raises(ValueError, match="empty"):
        hash_password("")
