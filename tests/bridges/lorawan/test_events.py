"""Network server events read from ChirpStack's schema and The Things Stack's documented examples; bad ones refused."""

from __future__ import annotations

import datetime

import orjson
import pytest
from chirpstack_api import integration  # type: ignore[import-untyped]  # no py.typed (test-only)

from bridges.lorawan.events import (
    DownlinkResult,
    EventRefused,
    Ignored,
    Join,
    LogLine,
    Status,
    Uplink,
    parse_chirpstack,
    parse_tts,
)
from bridges.lorawan.tracker import UplinkTracker
from tests.bridges.lorawan import chirpstack as cs

EUI = "0004A30B001C0530"
AT = datetime.datetime(2026, 12, 6, 10, 0, 0, 123456, tzinfo=datetime.UTC)
AT_MS = 1_796_551_200_123


def test_a_chirpstack_uplink_with_the_profile_codec_s_object() -> None:
    body = cs.up(EUI, 41, data=b"\x01\x67\x00\xff", obj={"temperature_1": 25.5}, f_port=3, rssi=(-80, -61),
                 snr=(2.5, 7.25), dedup="6a1d6a8e-0000-4000-8000-000000000001", at=AT)  # fmt: skip
    event = parse_chirpstack(cs.topic(EUI, "up"), body)
    assert event == Uplink(
        device=EUI, uplink_id="6a1d6a8e-0000-4000-8000-000000000001", time_ms=AT_MS, f_cnt=41, f_port=3,
        data=b"\x01\x67\x00\xff", decoded={"temperature_1": 25.5}, rssi=-61, snr=7.25, gateways=2, data_rate=5,
    )  # fmt: skip


def test_a_chirpstack_uplink_no_codec_ran_on() -> None:
    event = parse_chirpstack(cs.topic(EUI, "up"), cs.up(EUI, 0, data=b"\x03\x67\x01\x10"))
    assert isinstance(event, Uplink)
    assert (event.decoded, event.data, event.f_cnt) == (None, b"\x03\x67\x01\x10", 0)


def test_chirpstack_status_join_ack_txack_and_log() -> None:
    status = parse_chirpstack(cs.topic(EUI, "status"), cs.status(EUI, battery=87.5, margin=12))
    assert isinstance(status, Status)
    assert (status.battery_percent, status.external_power, status.margin_db) == (87.5, False, 12)
    mains = parse_chirpstack(cs.topic(EUI, "status"), cs.status(EUI, battery=None, external=True))
    assert isinstance(mains, Status)
    assert (mains.battery_percent, mains.external_power) == (None, True)
    assert isinstance(parse_chirpstack(cs.topic(EUI, "join"), cs.join(EUI)), Join)
    acked = parse_chirpstack(cs.topic(EUI, "ack"), cs.ack(EUI, acknowledged=True))
    nacked = parse_chirpstack(cs.topic(EUI, "ack"), cs.ack(EUI, acknowledged=False))
    assert isinstance(acked, DownlinkResult)
    assert isinstance(nacked, DownlinkResult)
    assert (acked.outcome, nacked.outcome) == ("acked", "nacked")
    tx = integration.TxAckEvent(downlink_id=7, queue_item_id="q1", f_cnt_down=3, gateway_id="0016c001f153a000")
    tx.device_info.dev_eui = EUI.lower()
    sent = parse_chirpstack(cs.topic(EUI, "txack"), cs.chirpstack_json(tx))
    assert isinstance(sent, DownlinkResult)
    assert (sent.outcome, sent.detail) == ("sent", "queue item q1")
    logged = parse_chirpstack(
        cs.topic(EUI, "log"), cs.log(EUI, code=integration.UPLINK_CODEC, description="js error: x is undefined")
    )
    assert logged == LogLine(EUI, logged.time_ms, "WARNING", "UPLINK_CODEC", "js error: x is undefined")  # type: ignore[union-attr]
    assert parse_chirpstack(f"application/{cs.APP}/device/{EUI.lower()}/event/location", b"{}") == Ignored(
        EUI, "location"
    )


def test_the_things_stack_documented_examples() -> None:
    up = parse_tts("v3/app1@tenant1/devices/dev1/up", cs.tts("tts_up.json"))
    assert up == Uplink(
        device="dev1", uplink_id="as:up:01E0WZGT6Y7657CPFPE5WEYDSQ",
        time_ms=round(datetime.datetime(2020, 2, 12, 15, 15, 46, 14773, tzinfo=datetime.UTC).timestamp() * 1000),
        f_cnt=1, f_port=0, data=b"\x82\x41\xde", decoded={"temperature": 1.0, "luminosity": 0.64}, rssi=-35,
        snr=5.0, gateways=1, data_rate=7,
    )  # fmt: skip
    assert isinstance(parse_tts("v3/app1@tenant1/devices/dev1/join", cs.tts("tts_join.json")), Join)
    acked = parse_tts("v3/app1@tenant1/devices/dev1/down/ack", cs.tts("tts_down_ack.json"))
    assert isinstance(acked, DownlinkResult)
    assert (acked.outcome, acked.detail) == ("acked", "FPort 15")
    failed = parse_tts("v3/app1@tenant1/devices/dev1/down/failed", cs.tts("tts_down_failed.json"))
    assert isinstance(failed, DownlinkResult)
    assert (failed.outcome, failed.detail) == ("failed", "application downlink payload is too long")
    assert parse_tts("v3/app1@tenant1/devices/dev1/down/queued", b"{}") == Ignored("dev1", "down/queued")


def _chirpstack_up_with(**changes: object) -> bytes:
    body = orjson.loads(cs.up(EUI, 3, data=b"\x01"))
    for key, value in changes.items():
        body[key] = value
    return orjson.dumps(body)


@pytest.mark.parametrize(
    ("payload", "field", "words"),
    [
        (b"{not json", "$", "not JSON"),
        (b"[1, 2]", "$", "not a JSON object but list"),
        (_chirpstack_up_with(deviceInfo=None), "$.deviceInfo", "missing"),
        (_chirpstack_up_with(deviceInfo={"devEui": "0000000000000001"}), "$.deviceInfo.devEui", "is not the topic's"),
        (_chirpstack_up_with(fCnt="many"), "$.fCnt", "'many' is not an integer"),
        (_chirpstack_up_with(data="not base64!"), "$.data", "is not base64"),
        (_chirpstack_up_with(object=[1]), "$.object", "is not an object"),
        (_chirpstack_up_with(time="yesterday"), "$.time", "is not an RFC 3339 time"),
        (_chirpstack_up_with(rxInfo=[{"rssi": "loud"}]), "$.rxInfo[0].rssi", "is not an integer"),
        (_chirpstack_up_with(rxInfo={"rssi": -3}), "$.rxInfo", "is not a list of objects"),
    ],
)
def test_bad_chirpstack_events_are_refused_naming_topic_and_field(payload: bytes, field: str, words: str) -> None:
    topic = cs.topic(EUI, "up")
    with pytest.raises(EventRefused) as caught:
        parse_chirpstack(topic, payload)
    assert (caught.value.topic, caught.value.field) == (topic, field)
    assert words in caught.value.reason
    assert str(caught.value).startswith(f"{topic}: {field}: ")


@pytest.mark.parametrize(
    ("topic", "payload", "field", "words"),
    [
        ("application/x/device/y/event", b"{}", "topic", "not application/<id>/device/<devEui>/event/<event>"),
        ("v3/a@t/devices/dev1/up", orjson.dumps({"end_device_ids": {"device_id": "dev1"}}), "$.uplink_message",
         "missing"),
        ("v3/a@t/devices/dev2/up", cs.tts("tts_up.json"), "$.end_device_ids.device_id", "dev1 is not the topic's dev2"),
        ("v3/a@t/devices/dev1/up", cs.tts("tts_up.json").replace(b'"gkHe"', b"12"),
         "$.uplink_message.frm_payload", "12 is not text"),
        ("v3/a@t/things/dev1/up", b"{}", "topic", "not v3/<app>@<tenant>/devices/<device id>/<event>"),
    ],
)  # fmt: skip
def test_bad_events_of_either_server_name_the_field(topic: str, payload: bytes, field: str, words: str) -> None:
    parse = parse_tts if topic.startswith("v3/") else parse_chirpstack
    with pytest.raises(EventRefused) as caught:
        parse(topic, payload)
    assert caught.value.field == field
    assert words in caught.value.reason


def test_duplicates_resets_lost_frames_and_silence() -> None:
    tracker = UplinkTracker(devices=[("A", 1000), ("B", 5000)], kept=2, now_ms=0)
    assert tracker.uplink("A", "u1", 10, now_ms=100).fresh
    assert not tracker.uplink("A", "u1", 10, now_ms=110).fresh  # the same id again (an MQTT re-delivery)
    assert not tracker.uplink("A", "u2", 10, now_ms=120).fresh  # the same frame counter under another id
    lost = tracker.uplink("A", "u3", 13, now_ms=130)
    assert (lost.fresh, lost.lost) == (True, 2)
    reset = tracker.uplink("A", "u4", 0, now_ms=140)
    assert (reset.fresh, reset.reset) == (True, True)
    tracker.joined("A", now_ms=150)
    after_join = tracker.uplink("A", "u5", 0, now_ms=160)
    assert (after_join.fresh, after_join.reset) == (True, False)
    counts = tracker.devices["A"].counts
    assert (counts["uplinks"], counts["duplicates"], counts["f_cnt_resets"], counts["frames_lost"],
            counts["joins"]) == (4, 2, 1, 2, 1)  # fmt: skip
    assert tracker.fell_silent(now_ms=1100) == []
    assert tracker.fell_silent(now_ms=1161) == [("A", 1001)]
    assert tracker.fell_silent(now_ms=1500) == []  # once per silence
    assert tracker.fell_silent(now_ms=5001) == [("B", 5001)]  # never heard: silent since the start
    assert tracker.heard("A", now_ms=6000)  # back
    assert tracker.fell_silent(now_ms=6500) == []
