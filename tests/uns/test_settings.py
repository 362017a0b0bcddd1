"""Loading Settings and plant files: precedence, shortcuts, paths and exact error messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from model.config import Settings
from model.equipment import Cell, Plant, ResolvedPath
from uns.errors import ConfigError
from uns.settings import ENV_SHORTCUTS, flag_for, load_plant, load_settings


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty directory so file names in messages are short and exact."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _load(
    yaml_text: str | None = None, env: dict[str, str] | None = None, overrides: dict[str, object] | None = None
) -> Settings:
    config = _write(Path("hub.yaml"), yaml_text) if yaml_text is not None else None
    return load_settings(config_file=config, overrides=overrides or {}, environ=env or {})


def _error(yaml_text: str | None = None, env=None, overrides=None) -> str:
    with pytest.raises(ConfigError) as info:
        _load(yaml_text, env, overrides)
    return str(info.value)


@pytest.mark.parametrize(
    ("yaml_text", "env", "overrides", "expected"),
    [
        (None, {}, {}, None),
        ("broker: {mqtt_port: 1001}", {}, {}, 1001),
        ("broker: {mqtt_port: 1001}", {"UNS_BROKER__MQTT_PORT": "1002"}, {}, 1002),
        ("broker: {mqtt_port: 1001}", {"UNS_MQTT_PORT": "1003"}, {}, 1003),
        ("broker: {mqtt_port: 1001}", {"UNS_MQTT_PORT": "1003", "UNS_BROKER__MQTT_PORT": "1002"}, {}, 1002),
        ("broker: {mqtt_port: 1001}", {"UNS_MQTT_PORT": "1003"}, {"broker.mqtt_port": 1004}, 1004),
        (None, {"UNS_MQTT_PORT": "1003"}, {"broker.mqtt_port": 0}, 0),
        # a None override means "flag not given"
        ("broker: {mqtt_port: 1001}", {}, {"broker.mqtt_port": None}, 1001),
        # an empty variable is as good as unset
        ("broker: {mqtt_port: 1001}", {"UNS_MQTT_PORT": ""}, {}, 1001),
        # names are matched case-insensitively, like pydantic-settings does
        (None, {"uns_broker__mqtt_port": "1005"}, {}, 1005),
    ],
)
def test_precedence(here, yaml_text, env, overrides, expected):
    assert _load(yaml_text, env, overrides).broker.mqtt_port == expected


@pytest.mark.parametrize(
    ("yaml_text", "env", "overrides", "demo"),
    [
        (None, {}, {}, True),  # uns up: the shipped plant, simulated
        (None, {"UNS_PLANT": "my.yaml"}, {}, False),  # the user's plant: no simulated machines beside it
        ("plant: my.yaml", {}, {}, False),
        (None, {}, {"plant": Path("my.yaml")}, False),  # --plant
        (None, {"UNS_PLANT": "my.yaml", "UNS_DEMO": "true"}, {}, True),  # asked for: the simulator beside it
        ("plant: my.yaml\ndemo: true", {}, {}, True),
        (None, {"UNS_DEMO": "false"}, {}, False),  # --no-demo
    ],
)
def test_demo_is_off_by_default_with_a_plant_file(here, yaml_text, env, overrides, demo):
    assert _load(yaml_text, env, overrides).demo is demo


def test_sections_merge_across_sources(here):
    settings = _load(
        "broker: {bind: 10.0.0.1, mqtt_port: 1}\nweb: {bind: 10.0.0.1}\nhost: {host_id: yaml-host}",
        {"UNS_BROKER__WS_PORT": "2", "UNS_HOST__REBIRTH_MIN_INTERVAL_S": "0.5"},
        {"broker.tls_port": 3, "web.http_port": 4},
    )
    assert (settings.broker.bind, settings.broker.mqtt_port, settings.broker.ws_port) == ("10.0.0.1", 1, 2)
    assert settings.broker.tls_port == 3
    assert (settings.web.bind, settings.web.http_port) == ("10.0.0.1", 4)
    assert (settings.host.host_id, settings.host.rebirth_min_interval_s) == ("yaml-host", 0.5)


@pytest.mark.parametrize(
    ("name", "raw", "attr", "expected"),
    [
        ("UNS_BROKER", "mqtt://u:p@broker:1884", "broker.url", "mqtt://u:p@broker:1884"),
        ("UNS_MQTT_PORT", "0", "broker.mqtt_port", 0),
        ("UNS_WS_PORT", "9001", "broker.ws_port", 9001),
        ("UNS_HTTP_PORT", "8081", "web.http_port", 8081),
        ("UNS_DATA_DIR", "/var/lib/uns", "data_dir", Path("/var/lib/uns")),
        ("UNS_DATA_DIR", "rel/data", "data_dir", Path("rel/data")),
        ("UNS_DEMO", "false", "demo", False),
        ("UNS_DEMO", "0", "demo", False),
        ("UNS_PLANT", "/etc/uns/plant.yaml", "plant", Path("/etc/uns/plant.yaml")),
        ("UNS_LOG_LEVEL", "debug", "log_level", "DEBUG"),
        ("UNS_HOST__GROUPS", "a, b", "host.groups", ["a", "b"]),
        ("UNS_HOST__GROUPS", '["x"]', "host.groups", ["x"]),
        ("UNS_HOST__DBIRTH_GRACE_S", "2.5", "host.dbirth_grace_s", 2.5),
        ("UNS_WEB", '{"http_port": 1}', "web.http_port", 1),
        ("UNS_BROKER__CONFIG", "conf/broker.yaml", "broker.config", Path("conf/broker.yaml")),
    ],
)
def test_environment_names(here, name, raw, attr, expected):
    value: object = _load(env={name: raw})
    for part in attr.split("."):
        value = getattr(value, part)
    assert value == expected


def test_every_shortcut_has_a_flag_name():
    assert {key: flag_for(key) for key in ENV_SHORTCUTS.values()} == {
        "broker.url": "--broker",
        "broker.mqtt_port": "--mqtt-port",
        "broker.ws_port": "--ws-port",
        "web.http_port": "--http-port",
        "data_dir": "--data-dir",
        "demo": "--demo",
        "plant": "--plant",
    }
    assert flag_for("host.host_id") == "--host.host-id"


def test_unknown_top_level_environment_is_ignored(here):
    assert _load(env={"UNS_SOMETHING_ELSE": "1", "PATH": "/bin", "UNS_TOKEN": "x"}) == Settings()


def test_config_file_from_environment(here):
    _write(here / "conf" / "hub.yaml", "demo: false\n")
    assert load_settings(config_file=None, overrides={}, environ={"UNS_CONFIG": "conf/hub.yaml"}).demo is False
    # an explicit --config wins over UNS_CONFIG
    explicit = _write(here / "other.yaml", "demo: true\n")
    assert load_settings(config_file=explicit, overrides={}, environ={"UNS_CONFIG": "conf/hub.yaml"}).demo is True


def test_relative_paths_in_yaml_resolve_against_its_directory(here):
    config = _write(
        here / "etc" / "hub.yaml", "plant: plant.yaml\ndata_dir: ../var\nbroker: {config: /abs/broker.yaml}\n"
    )
    settings = load_settings(config_file=config, overrides={}, environ={"UNS_PLANT": "from-env.yaml"})
    assert settings.plant == Path("from-env.yaml")  # the environment's path is relative to the working directory
    assert settings.data_dir == here / "etc" / ".." / "var"
    assert settings.broker.config == Path("/abs/broker.yaml")
    relative = load_settings(config_file=Path("etc/hub.yaml"), overrides={}, environ={})
    assert relative.plant == Path("etc/plant.yaml")


def test_empty_yaml_is_defaults(here):
    assert _load("# nothing yet\n") == Settings()


@pytest.mark.parametrize(
    ("yaml_text", "env", "overrides", "message"),
    [
        (
            "broker:\n  mqtt_port: 70000\n",
            {},
            {},
            "hub.yaml: broker.mqtt_port: Input should be less than or equal to 65535 (got 70000)",
        ),
        (
            None,
            {"UNS_MQTT_PORT": "abc"},
            {},
            "environment UNS_MQTT_PORT: broker.mqtt_port: Input should be a valid integer, "
            "unable to parse string as an integer (got 'abc')",
        ),
        (
            None,
            {"UNS_BROKER__MQTT_PORT": "70000"},
            {},
            "environment UNS_BROKER__MQTT_PORT: broker.mqtt_port: Input should be less than or equal to 65535 "
            "(got '70000')",
        ),
        (
            "broker: {mqtt_port: 1}",
            {},
            {"broker.mqtt_port": 70000},
            "--mqtt-port: broker.mqtt_port: Input should be less than or equal to 65535 (got 70000)",
        ),
        (
            None,
            {},
            {"host.republish_qos": 2},
            "--host.republish-qos: host.republish_qos: Input should be less than or equal to 1 (got 2)",
        ),
        ("brokr: {}\n", {}, {}, "hub.yaml: brokr: Extra inputs are not permitted (got {})"),
        (
            None,
            {"UNS_BROKER__MQTT_PROT": "1"},
            {},
            "environment UNS_BROKER__MQTT_PROT: broker.mqtt_prot: Extra inputs are not permitted (got '1')",
        ),
        (
            "host:\n  groups: [a, 'b/c']\n",
            {},
            {},
            "hub.yaml: host.groups[1]: Sparkplug id 'b/c' may not contain '/' (got 'b/c')",
        ),
        (
            None,
            {"UNS_HOST__GROUPS": "[1,"},
            {},
            "environment UNS_HOST__GROUPS: host.groups: not valid JSON at character 3: Expecting value (got '[1,')",
        ),
        (
            None,
            {"UNS_HOST__DBIRTH_GRACE_S": "0"},
            {},
            "environment UNS_HOST__DBIRTH_GRACE_S: host.dbirth_grace_s: Input should be greater than 0 (got '0')",
        ),
        (
            None,
            {"UNS_BROKER": "http://user:s3cret@h:1"},
            {},
            "environment UNS_BROKER: broker.url: broker url scheme must be one of mqtt, mqtts, ws, wss, "
            "like mqtt://host:1883 (got 'http://user:***@h:1')",
        ),
        (
            "log_level: loud\n",
            {},
            {},
            "hub.yaml: log_level: Input should be 'DEBUG', 'INFO', 'WARNING', 'ERROR' or 'CRITICAL' (got 'loud')",
        ),
        (
            "broker: 5\n",
            {},
            {},
            "hub.yaml: broker: Input should be a valid dictionary or instance of BrokerSection (got 5)",
        ),
        (
            "mes:\n  output_cells: {acme/dallas/bottling/line1: ''}\n",
            {},
            {},
            "hub.yaml: mes.output_cells: acme/dallas/bottling/line1: empty; name a cell of the line, like "
            "acme/dallas/bottling/line1/filler, or the line itself, or leave the line out for the default (its own "
            "counts if it publishes any, else its last cell in the plant file) "
            "(got {'acme/dallas/bottling/line1': ''})",
        ),
    ],
)
def test_error_names_source_path_and_value(here, yaml_text, env, overrides, message):
    assert _error(yaml_text, env, overrides) == message


def test_error_attributes(here):
    with pytest.raises(ConfigError) as info:
        _load("web: {http_port: 70000}")
    assert (info.value.source, info.value.path, info.value.value) == ("hub.yaml", "web.http_port", 70000)
    assert info.value.reason == "Input should be less than or equal to 65535"


def test_all_problems_reported_one_per_line(here):
    message = _error(
        "broker: {mqtt_port: 70000}\nweb: {http_port: -1}\n",
        {"UNS_WS_PORT": "x"},
        {"host.health_interval_s": 0},
    )
    assert message.splitlines() == [
        "configuration: 4 problems:",
        "hub.yaml: broker.mqtt_port: Input should be less than or equal to 65535 (got 70000)",
        "environment UNS_WS_PORT: broker.ws_port: Input should be a valid integer, "
        "unable to parse string as an integer (got 'x')",
        "--host.health-interval-s: host.health_interval_s: Input should be greater than 0 (got 0)",
        "hub.yaml: web.http_port: Input should be greater than or equal to 0 (got -1)",
    ]


def test_problems_from_one_file_name_it_once_on_top(here):
    assert _error("web: {http_port: -1}\ndemo: maybe\n").splitlines() == [
        "hub.yaml: 2 problems:",
        "hub.yaml: demo: Input should be a valid boolean, unable to interpret input (got 'maybe')",
        "hub.yaml: web.http_port: Input should be greater than or equal to 0 (got -1)",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "broker:\n  mqtt_port: [1\n",
            "hub.yaml: YAML syntax error at line 3, column 1: expected ',' or ']', but got '<stream end>'",
        ),
        ("a: b: c\n", "hub.yaml: YAML syntax error at line 1, column 5: mapping values are not allowed here"),
        (
            "broker:\n\tmqtt_port: 1\n",
            "hub.yaml: YAML syntax error at line 2, column 1: found character '\\t' that cannot start any token",
        ),
        ("- a\n- b\n", "hub.yaml: must be a YAML mapping of keys to values, not a list"),
        ("just text\n", "hub.yaml: must be a YAML mapping of keys to values, not a str"),
    ],
)
def test_yaml_syntax_errors_name_line_and_column(here, text, message):
    assert _error(text) == message


def test_missing_config_file_says_what_to_do(here):
    with pytest.raises(ConfigError) as info:
        load_settings(config_file=Path("nope/hub.yaml"), overrides={}, environ={})
    assert str(info.value) == (
        "nope/hub.yaml: no such file; create it, or point --config / UNS_CONFIG at an existing file"
    )


def test_non_utf8_file(here):
    Path("hub.yaml").write_bytes(b"demo: true\n\xff\n")
    with pytest.raises(ConfigError, match=r"^hub.yaml: not UTF-8 text at byte 11$"):
        load_settings(config_file=Path("hub.yaml"), overrides={}, environ={})


def test_demo_plant_loads():
    plant = load_plant(None)
    assert plant.enterprise.id == "acme"
    [site] = plant.enterprise.sites
    assert (site.id, site.timezone) == ("dallas", "America/Chicago")
    assert [area.id for area in site.areas] == ["bottling", "packaging", "utilities", "environment", "business"]
    lines = {f"{area.id}/{line.id}" for area in site.areas for line in area.lines}
    assert {"bottling/line1", "bottling/line2", "packaging/line3"} <= lines
    cells = [p for p in plant.equipment_paths() if isinstance(plant.equipment(p), Cell)]
    assert len(cells) >= 5
    # every cell is bound as a device named after it, under one node per area (utilities: one per PLC;
    # environment: one per protocol)
    utilities = {"compressor": "s7-utilities", "boiler": "ethernetip-utilities", "chiller": "slmp-utilities",
                 "pump": "fins-utilities", "climate-north": "lwm2m-warehouse", "climate-south": "lwm2m-warehouse",
                 "main-meter": "lorawan-environment"}  # fmt: skip
    for path in cells:
        area = path.split("/")[2]
        cell = path.rsplit("/", 1)[1]
        node = {"bottling": "modbus-bottling", "packaging": "opcua-packaging"}.get(area) or utilities[cell]
        assert plant.resolve("acme-dallas", node, path.rsplit("/", 1)[1]) == ResolvedPath(path, bound=True)
    assert plant.resolve("acme-dallas", "modbus-bottling") == ResolvedPath("acme/dallas/bottling", bound=True)
    assert plant.resolve("acme-dallas", "opcua-packaging") == ResolvedPath("acme/dallas/packaging", bound=True)
    assert {b.group for b in plant.bindings} == {"acme-dallas"}
    filler = "acme/dallas/bottling/line1/filler"
    units = {name: plant.unit_of(filler, name) for name in ("Temperature", "Pressure", "Speed", "Energy")}
    assert units == {"Temperature": "degC", "Pressure": "bar", "Speed": "bpm", "Energy": "kWh"}


def test_plant_file_loads(here):
    _write(here / "plant.yaml", "enterprise:\n  id: acme\n  sites: [{id: s1, timezone: Europe/Berlin}]\n")
    plant = load_plant(Path("plant.yaml"))
    assert isinstance(plant, Plant)
    assert plant.equipment_paths() == {"acme", "acme/s1"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "enterprise:\n  id: acme\n  sites: [{id: s, areas: [{id: a}, {id: a}]}]\n",
            "plant.yaml: enterprise.sites[0].areas[1].id: duplicate id 'a': acme/s/a is already declared at "
            "enterprise.sites[0].areas[0] (got 'a')",
        ),
        (
            "enterprise: {id: acme, sites: [{id: hub}]}\n",
            "plant.yaml: enterprise.sites[0].id: site id 'hub' is reserved: the hub publishes under "
            "<enterprise>/hub/...; pick another (got 'hub')",
        ),
        (
            "enterprise: {id: acme, sites: [{id: s, timezone: Nowhere/City}]}\n",
            "plant.yaml: enterprise.sites[0].timezone: timezone 'Nowhere/City' is not an IANA time zone "
            "(e.g. 'America/Chicago', 'UTC') (got 'Nowhere/City')",
        ),
        (
            "enterprise: {id: acme}\nbindings:\n  - {group: g, node: n, path: acme}\n"
            "  - {group: g, node: m, path: acme}\n  - {group: g, node: n, device: d, path: acme/s}\n",
            "plant.yaml: bindings[2].path: no equipment at 'acme/s'; did you mean 'acme'? (got 'acme/s')",
        ),
        (
            "enterprise: {id: acme, sites: [{id: s}]\n",
            "plant.yaml: YAML syntax error at line 2, column 1: expected ',' or '}', but got '<stream end>'",
        ),
        ("", "plant.yaml: enterprise: Field required"),
    ],
)
def test_plant_errors(here, text, message):
    _write(here / "plant.yaml", text)
    with pytest.raises(ConfigError) as info:
        load_plant(Path("plant.yaml"))
    assert str(info.value) == message


def test_plant_errors_all_reported(here):
    _write(here / "plant.yaml", "enterprise: {id: Acme, sites: [{id: data}]}\nbindings: [{group: g}]\n")
    with pytest.raises(ConfigError) as info:
        load_plant(Path("plant.yaml"))
    assert str(info.value).splitlines() == [
        "plant.yaml: 4 problems:",
        "plant.yaml: enterprise.id: id 'Acme' is not a slug: use a-z, 0-9, '_' and '-', starting with a letter or "
        "digit, at most 64 characters (got 'Acme')",
        "plant.yaml: enterprise.sites[0].id: id 'data' is a reserved class word (alarm, cmd, data, kpi, mes); "
        "pick another (got 'data')",
        "plant.yaml: bindings[0].node: Field required",
        "plant.yaml: bindings[0].path: Field required",
    ]


def test_missing_plant_file(here):
    with pytest.raises(ConfigError) as info:
        load_plant(Path("plants/acme.yaml"))
    assert str(info.value) == (
        "plants/acme.yaml: no such file; create it, or point plant: / --plant / UNS_PLANT at an existing plant file"
    )
