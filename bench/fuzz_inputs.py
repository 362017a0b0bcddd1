"""Malformed inputs for the fuzz bench: Sparkplug payloads, JSON envelopes and MES events, from one seed.

Pure: each generator takes a ``random.Random`` and returns ``Input`` values (topic, payload and the
class and kind they count under); nothing here touches the network. The Sparkplug inputs aim at a
few edge nodes the bench births first (``fuzz_births``), so the host's alias, datatype and seq checks
are reached and not only its decoder. Raw MQTT packets are in ``bench.fuzz_raw``.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Iterator

import orjson

from model.mes import EVENT_MODELS
from uns.sparkplug import DataType, Metric, Payload, encode_payload
from uns.sparkplug.node_control import BD_SEQ
from uns.sparkplug.sparkplug_b_pb2 import Payload as PbPayload

__all__ = [
    "FUZZ_GROUP",
    "FUZZ_NODES",
    "FUZZ_TEMPLATE_METRICS",
    "Input",
    "InputMix",
    "fuzz_births",
    "json_input",
    "mes_input",
    "sparkplug_input",
]

FUZZ_GROUP = "fuzz"
FUZZ_NODES = 20
FUZZ_TEMPLATE_METRICS = 8
"""Double metrics each fuzz node's device declares (aliases 1..8)."""

_YEAR_MS = 365 * 24 * 3600 * 1000
_MAX_PAYLOAD = 1_000_000


@dataclasses.dataclass(frozen=True, slots=True)
class Input:
    """One malformed input: it reaches the hub as one MQTT message."""

    cls: str
    kind: str
    topic: str
    payload: bytes
    retain: bool = False


def _node(i: int) -> str:
    return f"f{i}"


def fuzz_births(now_ms: int) -> list[tuple[str, bytes]]:
    """Valid NBIRTH + DBIRTH of every fuzz node (sent before the fuzzing; not counted as inputs)."""
    out: list[tuple[str, bytes]] = []
    for n in range(FUZZ_NODES):
        nbirth = Payload(timestamp=now_ms, seq=0, metrics=[Metric(name=BD_SEQ, datatype=DataType.Int64, value=0)])
        out.append((f"spBv1.0/{FUZZ_GROUP}/NBIRTH/{_node(n)}", encode_payload(nbirth)))
        metrics = [
            Metric(name=f"M{i}", alias=i + 1, datatype=DataType.Double, value=0.0) for i in range(FUZZ_TEMPLATE_METRICS)
        ]
        out.append(
            (
                f"spBv1.0/{FUZZ_GROUP}/DBIRTH/{_node(n)}/d",
                encode_payload(Payload(timestamp=now_ms, seq=1, metrics=metrics)),
            )
        )
    return out


def _ddata(rng: random.Random, now_ms: int, *, seq: int | None = None) -> bytes:
    metrics = [
        Metric(
            alias=rng.randint(1, FUZZ_TEMPLATE_METRICS), timestamp=now_ms, datatype=DataType.Double, value=rng.random()
        )
        for _ in range(rng.randint(1, 4))
    ]
    return encode_payload(Payload(timestamp=now_ms, seq=rng.randrange(256) if seq is None else seq, metrics=metrics))


def _flip(rng: random.Random, data: bytes, flips: int) -> bytes:
    out = bytearray(data)
    for _ in range(flips):
        out[rng.randrange(len(out))] = rng.randrange(256)
    return bytes(out)


def _random_bytes(rng: random.Random, longest: int) -> bytes:
    return rng.randbytes(rng.randint(0, longest))


def _pb_ddata(now_ms: int, fill: Callable[[PbPayload.Metric], None]) -> bytes:
    payload = PbPayload(timestamp=now_ms, seq=0)
    fill(payload.metrics.add())
    return payload.SerializeToString()


def _wrong_datatype(rng: random.Random, now_ms: int) -> bytes:
    alias = rng.randint(1, FUZZ_TEMPLATE_METRICS)

    def string_for_double(m: PbPayload.Metric) -> None:
        m.alias, m.datatype, m.string_value = alias, DataType.String, "not a number"

    def unknown_type(m: PbPayload.Metric) -> None:
        m.alias, m.datatype, m.double_value = alias, rng.choice([0, 99, 4_000_000]), 1.0

    def value_of_other_field(m: PbPayload.Metric) -> None:
        m.alias, m.bytes_value = alias, rng.randbytes(8)

    def no_value(m: PbPayload.Metric) -> None:
        m.alias = alias

    return _pb_ddata(now_ms, rng.choice([string_for_double, unknown_type, value_of_other_field, no_value]))


def _huge_birth(rng: random.Random, now_ms: int) -> bytes:
    """20k-40k metrics, kept under the broker's 1 MiB payload limit (a larger one closes the publisher)."""
    count = rng.randint(20_000, 40_000)
    while True:
        metrics = [Metric(name=f"H{i}", alias=i + 1, datatype=DataType.Double, value=0.0) for i in range(count)]
        payload = encode_payload(Payload(timestamp=now_ms, seq=rng.randrange(256), metrics=metrics))
        if len(payload) <= _MAX_PAYLOAD:
            return payload
        count = count * 9 // 10


_BAD_SP_TOPICS = (
    "spBv1.0",
    "spBv1.0/",
    "spBv1.0/fuzz",
    "spBv1.0/fuzz/DDATA",
    "spBv1.0/fuzz/XDATA/f0",
    "spBv1.0/fuzz/DDATA/f0/d/extra",
    "spBv1.0//DDATA/f0/d",
    "spBv1.0/fuzz/NDATA/",
    "spBv1.0/fuzz/DBIRTH/f0",
    "spBv1.0/STATE",
)


def sparkplug_input(rng: random.Random, now_ms: int) -> Input:
    """One malformed Sparkplug message aimed at a fuzz node (or at the host's topic parser)."""
    node = _node(rng.randrange(FUZZ_NODES))
    ddata = f"spBv1.0/{FUZZ_GROUP}/DDATA/{node}/d"
    roll = rng.random()
    if roll < 0.20:
        types = ("DDATA", "NDATA", "DBIRTH", "NBIRTH", "DDEATH", "NDEATH")
        kind = rng.choice(types)
        topic = f"spBv1.0/{FUZZ_GROUP}/{kind}/{node}" + ("/d" if kind.startswith("D") else "")
        return Input("sparkplug", "random_bytes", topic, _random_bytes(rng, 400))
    if roll < 0.38:
        valid = _ddata(rng, now_ms)
        return Input("sparkplug", "truncated", ddata, valid[: rng.randrange(len(valid))])
    if roll < 0.56:
        valid = _ddata(rng, now_ms)
        return Input("sparkplug", "mutated", ddata, _flip(rng, valid, rng.randint(1, 6)))
    if roll < 0.68:
        return Input("sparkplug", "wrong_datatype", ddata, _wrong_datatype(rng, now_ms))
    if roll < 0.78:
        metric = Metric(alias=rng.randint(1_000, 2**40), timestamp=now_ms, datatype=DataType.Double, value=1.0)
        payload = encode_payload(Payload(timestamp=now_ms, seq=rng.randrange(256), metrics=[metric]))
        return Input("sparkplug", "unknown_alias", ddata, payload)
    if roll < 0.88:
        return Input("sparkplug", "seq_jump", ddata, _ddata(rng, now_ms))
    if roll < 0.93:
        ghost = f"spBv1.0/{FUZZ_GROUP}/DDATA/ghost{rng.randrange(200)}/d"
        return Input("sparkplug", "data_before_birth", ghost, _ddata(rng, now_ms))
    if roll < 0.97:
        return Input("sparkplug", "bad_topic", rng.choice(_BAD_SP_TOPICS), _ddata(rng, now_ms))
    if roll < 0.9995:
        birth = f"spBv1.0/{FUZZ_GROUP}/DBIRTH/{node}/d"
        valid = encode_payload(
            Payload(
                timestamp=now_ms,
                seq=rng.randrange(256),
                metrics=[Metric(name=f"M{i}", alias=i + 1, datatype=DataType.Double, value=0.0) for i in range(8)],
            )
        )
        return Input("sparkplug", "mutated_birth", birth, _flip(rng, valid, rng.randint(1, 4)))
    topic = f"spBv1.0/{FUZZ_GROUP}/DBIRTH/{node}/big{rng.randrange(4)}"
    return Input("sparkplug", "huge_birth", topic, _huge_birth(rng, now_ms))


def _json_body(rng: random.Random, now_ms: int) -> tuple[str, object]:
    roll = rng.random()
    if roll < 0.2:
        return "wrong_types", {
            "value": rng.choice([{"a": 1}, [1, 2], None]),
            "timestamp_ms": rng.choice(["soon", 1.5e300, [], True, -5]),
            "quality": rng.choice([3, "excellent", None]),
        }
    if roll < 0.35:
        return "missing_fields", rng.choice([{}, {"timestamp_ms": now_ms}, {"quality": "good"}, {"unit": "degC"}])
    if roll < 0.55:
        return "far_future", {"value": rng.random(), "timestamp_ms": now_ms + rng.randint(2, 50) * _YEAR_MS}
    if roll < 0.65:
        return "bad_timestamp", {"value": 1.0, "timestamp_ms": rng.choice([-1, -(2**62), 2**63 - 1])}
    if roll < 0.75:
        return "bad_datatype", {"value": "abc", "timestamp_ms": now_ms, "datatype": rng.choice(["Double", "Nope", 7])}
    return "bad_quality", {"value": 1.0, "timestamp_ms": now_ms, "quality": rng.choice(["perfect", "", "GOOD!"])}


def json_input(rng: random.Random, now_ms: int, cell: str) -> Input:
    """One malformed JSON envelope on a ``data`` topic of ``cell`` (200 metric names, so series stay few)."""
    topic = f"{cell}/data/fuzz/m{rng.randrange(200)}"
    roll = rng.random()
    if roll < 0.3:
        text = orjson.dumps({"value": rng.random(), "timestamp_ms": now_ms})
        cut = text[: rng.randrange(1, len(text))] if rng.random() < 0.5 else _flip(rng, text, rng.randint(1, 3))
        return Input("json", "bad_json", topic, cut, retain=rng.random() < 0.05)
    kind, body = _json_body(rng, now_ms)
    return Input("json", kind, topic, orjson.dumps(body), retain=rng.random() < 0.05)


_EVENTS = sorted(EVENT_MODELS)


def _mes_body(rng: random.Random, event: str, now_ms: int) -> tuple[str, object]:
    roll = rng.random()
    if roll < 0.25:
        return "missing_fields", {"source": "fuzz"} if rng.random() < 0.5 else {}
    if roll < 0.5:
        return "wrong_types", {
            "timestamp_ms": rng.choice(["now", 1.5, None, [now_ms]]),
            "event_id": rng.choice([5, {}]),
        }
    if roll < 0.7:
        return "extra_fields", {"timestamp_ms": now_ms, "bogus": rng.random(), "event_id": f"fz{rng.randrange(10**9)}"}
    if roll < 0.85:
        bodies: dict[str, dict[str, object]] = {
            "production_count": {"timestamp_ms": now_ms, "total": -rng.randint(1, 9)},
            "machine_state": {"timestamp_ms": now_ms, "state": 10_000_000},
            "downtime_reason": {"timestamp_ms": now_ms, "start_ms": -1, "end_ms": "x"},
        }
        return "invalid_values", bodies.get(event, {"timestamp_ms": -now_ms})
    return "not_an_object", rng.choice([[1, 2, 3], "count", 42, None])


def mes_input(rng: random.Random, now_ms: int, cell: str) -> Input:
    """One invalid MES event body on ``cell/mes/<event>`` (or an event name that does not exist)."""
    if rng.random() < 0.1:
        text = orjson.dumps({"timestamp_ms": now_ms, "total": 5})
        return Input("mes", "bad_json", f"{cell}/mes/production_count", text[: rng.randrange(1, len(text))])
    if rng.random() < 0.05:
        return Input("mes", "unknown_event", f"{cell}/mes/teleport", orjson.dumps({"timestamp_ms": now_ms}))
    event = rng.choice(_EVENTS)
    kind, body = _mes_body(rng, event, now_ms)
    return Input("mes", kind, f"{cell}/mes/{event}", orjson.dumps(body))


@dataclasses.dataclass(frozen=True, slots=True)
class InputMix:
    """Shares of each class among the published inputs (raw MQTT packets are counted apart)."""

    sparkplug: float = 0.55
    json: float = 0.30
    mes: float = 0.15

    def stream(self, rng: random.Random, cell: str, clock: Callable[[], int]) -> Iterator[Input]:
        """Endless inputs in these shares, each built at ``clock()`` milliseconds."""
        while True:
            roll = rng.random()
            now = clock()
            if roll < self.sparkplug:
                yield sparkplug_input(rng, now)
            elif roll < self.sparkplug + self.json:
                yield json_input(rng, now, cell)
            else:
                yield mes_input(rng, now, cell)
