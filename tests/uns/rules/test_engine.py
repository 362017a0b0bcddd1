"""Every trigger and action kind through a real broker (the embedded one), webhooks to a real uvicorn receiver."""

from __future__ import annotations

import orjson

from model.mes import WorkOrder
from tests.fixtures.asgi import serve
from tests.fixtures.recording import recorder_on
from tests.fixtures.waiting import until
from tests.uns.rules.harness import Receiver, engine_on
from uns.broker.embedded import EmbeddedBroker
from uns.sparkplug.payload import decode_payload

FILLER = "acme/dallas/bottling/line1/filler"
LINE = "acme/dallas/bottling/line1"


async def _publish(broker: EmbeddedBroker, topic: str, body: object, *, retain: bool = False) -> None:
    from uns.connect import network_clients

    async with network_clients(broker.url)(client_id="rules-test-publisher") as client:
        await client.publish(topic, orjson.dumps(body), qos=1, retain=retain)


async def test_topic_trigger_publishes_a_templated_uns_message(broker: EmbeddedBroker) -> None:
    rules: list[object] = [
        {
            "name": "echo",
            "trigger": {"kind": "topic", "filter": f"{FILLER}/data/+"},
            "actions": [
                {
                    "kind": "publish",
                    "topic": "${path}/kpi/echo",
                    "payload": {"value": "${value}", "from": "${topic}", "note": "v=${value}"},
                    "retain": True,
                }
            ],
        }
    ]
    async with recorder_on(broker.url, [f"{FILLER}/kpi/#"]) as seen, engine_on(broker.url, rules) as engine:
        await _publish(broker, f"{FILLER}/data/Temp", {"value": 21.5})
        await until(lambda: seen.on(f"{FILLER}/kpi/echo"), what="the echo")
        assert seen.bodies(f"{FILLER}/kpi/echo") == [{"value": 21.5, "from": f"{FILLER}/data/Temp", "note": "v=21.5"}]
        assert engine.stats()["echo"].fired == 1


async def test_value_trigger_raises_and_clears_an_alarm_and_an_operator_acknowledges(broker: EmbeddedBroker) -> None:
    rules: list[object] = [
        {
            "name": "hot",
            "trigger": {"kind": "value", "topic": f"{FILLER}/data/Temp", "above": 80, "hysteresis": 5, "for_s": 0.2},
            "actions": [
                {"kind": "alarm", "path": "${path}", "name": "too-hot", "priority": 800, "message": "Temp ${value}"}
            ],
        }
    ]
    topic = f"{FILLER}/alarm/too-hot"
    async with recorder_on(broker.url, [topic]) as seen, engine_on(broker.url, rules) as engine:
        await _publish(broker, f"{FILLER}/data/Temp", {"value": 85})
        await until(lambda: seen.on(topic), what="the alarm")
        alarm = seen.bodies(topic)[0]
        assert isinstance(alarm, dict)
        assert (alarm["state"], alarm["acknowledged"], alarm["priority"], alarm["message"], alarm["value"]) == (
            "active",
            False,
            800,
            "Temp 85",
            85,
        )
        assert all(m.retain is False for m in seen.on(topic))  # live delivery; the broker keeps it retained
        await _publish(broker, f"{FILLER}/data/Temp", {"value": 77})  # inside the band: still active
        await _publish(broker, f"{FILLER}/data/Temp", {"value": 70})
        await until(lambda: len(seen.on(topic)) == 2, what="the clear")
        cleared = seen.bodies(topic)[1]
        assert isinstance(cleared, dict)
        assert (cleared["state"], cleared["acknowledged"]) == ("cleared", False)
        acked = await engine.acknowledge(path=FILLER, name="too-hot", user="ann", comment="checked")
        assert acked.state == "normal"
        await until(lambda: len(seen.on(topic)) == 3, what="the acknowledgement")
        last = seen.bodies(topic)[2]
        assert isinstance(last, dict)
        assert (last["state"], last["acked_by"], last["ack_comment"]) == ("normal", "ann", "checked")
        assert engine.alarms.listed() == []
    # the retained state is what a newcomer (a restarted engine) reads back
    async with recorder_on(broker.url, [topic]) as late:
        await until(lambda: late.on(topic), what="the retained alarm")
        assert late.on(topic)[0].retain


async def test_an_active_alarm_is_restored_from_its_retained_topic_after_a_restart(broker: EmbeddedBroker) -> None:
    rules: list[object] = [
        {
            "name": "faulted",
            "trigger": {"kind": "state", "topic": f"{FILLER}/data/State", "to": [180000]},
            "actions": [{"kind": "alarm", "path": FILLER, "name": "faulted"}],
        }
    ]
    async with engine_on(broker.url, rules) as engine:
        await _publish(broker, f"{FILLER}/data/State", {"value": 180000})
        await until(lambda: engine.alarms.listed(), what="the alarm")
    async with engine_on(broker.url, rules) as again:
        await until(lambda: again.alarms.listed(), what="the restored alarm")
        restored = again.alarms.listed()[0]
        assert (restored.name, restored.state, restored.rule) == ("faulted", "active", "faulted")
        acked = await again.acknowledge(path=FILLER, name="faulted", user="bob")
        assert acked.acked_by == "bob"


async def test_state_trigger_posts_an_mes_event_through_the_intake_topic(broker: EmbeddedBroker) -> None:
    rules: list[object] = [
        {
            "name": "running-to-complete",
            "trigger": {"kind": "state", "topic": f"{LINE}/filler/data/OrderDone", "to": [True]},
            "actions": [
                {
                    "kind": "mes_event",
                    "path": LINE,
                    "event": "work_order",
                    "body": {"order_id": "${body.order}", "action": "complete"},
                }
            ],
        }
    ]
    topic = f"{LINE}/mes/work_order"
    async with recorder_on(broker.url, [topic]) as seen, engine_on(broker.url, rules):
        await _publish(broker, f"{LINE}/filler/data/OrderDone", {"value": False, "order": "WO-1"})
        await _publish(broker, f"{LINE}/filler/data/OrderDone", {"value": True, "order": "WO-1"})
        await until(lambda: seen.on(topic), what="the MES event")
        event = WorkOrder.model_validate_json(seen.on(topic)[0].payload)  # the MES intake's own model accepts it
        assert (event.order_id, event.action.value) == ("WO-1", "complete")
        assert event.timestamp_ms > 0


async def test_order_completed_calls_a_webhook_with_a_templated_body(broker: EmbeddedBroker) -> None:
    receiver = Receiver(fail_next=1)  # one 503 with Retry-After: 0, then it takes it
    async with serve(receiver.app()) as base:
        rules: list[object] = [
            {
                "name": "order-done",
                "trigger": {"kind": "mes", "event": "order_completed", "path": "acme/dallas/+/+"},
                "actions": [
                    {
                        "kind": "webhook",
                        "url": base + "/orders/${value}/done",
                        "headers": {"x-rule": "${rule}"},
                        "body": {"order": "${value}", "line": "${path}", "quantity": "${body.quantity?}"},
                    }
                ],
            }
        ]
        async with engine_on(broker.url, rules) as engine:
            body = {"order_id": "WO 9", "action": "complete", "timestamp_ms": 1_764_000_000_000}
            await _publish(broker, f"{LINE}/mes/work_order", body)
            await until(lambda: receiver.requests, what="the webhook")
            path, headers, sent = receiver.requests[0]
            assert path == "/orders/WO%209/done"
            assert headers["x-rule"] == "order-done"
            assert sent == {"order": "WO 9", "line": LINE, "quantity": None}
            assert receiver.attempts == 2
            await until(lambda: engine.stats()["order-done"].fired == 1, what="the count")


async def test_downtime_longer_than_minutes_raises_an_alarm(broker: EmbeddedBroker) -> None:
    rules: list[object] = [
        {
            "name": "long-stop",
            "trigger": {"kind": "mes", "event": "downtime", "path": "acme/#", "min_minutes": 0.005},  # 0.3 s
            "actions": [{"kind": "alarm", "path": "${path}", "name": "long-stop", "message": "state ${value}"}],
        }
    ]
    async with engine_on(broker.url, rules) as engine:
        await _publish(broker, f"{FILLER}/mes/machine_state", {"state": 180000, "timestamp_ms": 1})
        await until(lambda: engine.alarms.listed(), what="the downtime alarm")
        assert engine.alarms.listed()[0].message == "state 180000"
        await _publish(broker, f"{FILLER}/mes/machine_state", {"state": 10000, "timestamp_ms": 2})
        await until(lambda: engine.alarms.listed()[0].state == "cleared", what="the clear")


async def test_cron_trigger_fires_on_its_schedule(broker: EmbeddedBroker) -> None:
    rules: list[object] = [
        {
            "name": "tick",
            "trigger": {"kind": "cron", "schedule": "* * * * * *", "timezone": "America/Chicago"},  # every second
            "actions": [{"kind": "publish", "topic": "acme/dallas/kpi/tick", "payload": {"at": "${value}"}}],
        }
    ]
    async with recorder_on(broker.url, ["acme/dallas/kpi/tick"]) as seen, engine_on(broker.url, rules):
        await until(lambda: len(seen.messages) >= 2, within_s=10, what="two ticks")
        stamps = [b["at"] for b in seen.bodies("acme/dallas/kpi/tick") if isinstance(b, dict)]
        assert all(isinstance(s, int) and s % 1000 == 0 for s in stamps)  # on whole seconds
        assert stamps[1] - stamps[0] >= 1000


async def test_write_sends_a_dcmd_role_checked_rate_limited_and_dry_run(broker: EmbeddedBroker) -> None:
    def write(name: str, **extra: object) -> dict[str, object]:
        action = {
            "kind": "write",
            "path": FILLER,
            "metric": "Setpoints/Speed",
            "value": "${value}",
            "datatype": "Int32",
        }
        return {
            "name": name,
            "trigger": {"kind": "topic", "filter": f"acme/dallas/bottling/line1/{name}/data/Go"},
            "actions": [action | extra],
        }

    rules = [write("live", min_interval_s=60), write("dry", dry_run=True), write("viewer-ish", path=LINE)]
    dcmd = "spBv1.0/acme-dallas/DCMD/modbus-bottling/filler"
    async with (
        recorder_on(broker.url, ["spBv1.0/#"]) as seen,
        engine_on(broker.url, rules, app_cmd_topics=[f"{FILLER}/cmd/#"]) as engine,
    ):
        await _publish(broker, "acme/dallas/bottling/line1/live/data/Go", {"value": 120})
        await until(lambda: seen.on(dcmd), what="the DCMD")
        metric = decode_payload(seen.on(dcmd)[0].payload).payload.metrics[0]
        assert (metric.name, metric.value, metric.datatype.name if metric.datatype else None) == (
            "Setpoints/Speed",
            120,
            "Int32",
        )
        await _publish(broker, "acme/dallas/bottling/line1/live/data/Go", {"value": 130})  # within 60 s: dropped
        await until(lambda: engine.stats()["live"].errors == 1, what="the rate limit")
        assert engine.runner.rate_limited == 1
        await _publish(broker, "acme/dallas/bottling/line1/dry/data/Go", {"value": 7})
        await until(lambda: engine.stats()["dry"].fired == 1, what="the dry run")
        assert [(w.metric, w.value, w.dry_run) for w in engine.runner.written] == [
            ("Setpoints/Speed", 120, False),
            ("Setpoints/Speed", 7, True),
        ]
        await _publish(broker, "acme/dallas/bottling/line1/viewer-ish/data/Go", {"value": 1})
        await until(lambda: engine.stats()["viewer-ish"].errors == 1, what="the refusal")
        assert "role app may not write acme/dallas/bottling/line1/cmd/Setpoints/Speed" in str(
            engine.stats()["viewer-ish"].last_error
        )
        assert len(seen.on(dcmd)) == 1  # neither the dry run, the dropped nor the refused write went out


async def test_a_failing_rule_is_isolated_counted_and_the_others_keep_running(broker: EmbeddedBroker) -> None:
    rules: list[object] = [
        {
            "name": "broken",
            "trigger": {"kind": "topic", "filter": f"{FILLER}/data/+"},
            "actions": [{"kind": "publish", "topic": "${body.missing}/x", "payload": {"v": 1}}],
        },
        {
            "name": "dead-endpoint",
            "trigger": {"kind": "topic", "filter": f"{FILLER}/data/+"},
            "actions": [{"kind": "webhook", "url": "http://127.0.0.1:9/never", "attempts": 1, "timeout_s": 1}],
        },
        {
            "name": "fine",
            "trigger": {"kind": "topic", "filter": f"{FILLER}/data/+"},
            "condition": "value > 50",
            "actions": [{"kind": "publish", "topic": f"{FILLER}/kpi/fine", "payload": {"value": "${value}"}}],
        },
    ]
    async with recorder_on(broker.url, [f"{FILLER}/kpi/fine"]) as seen, engine_on(broker.url, rules) as engine:
        for value in (10, 60, 70):
            await _publish(broker, f"{FILLER}/data/Level", {"value": value})
        await until(lambda: len(seen.messages) == 2, what="the fine rule's two firings")
        assert seen.bodies(f"{FILLER}/kpi/fine") == [{"value": 60}, {"value": 70}]
        stats = engine.stats()
        await until(lambda: stats["broken"].errors == 3 and stats["dead-endpoint"].errors == 3, what="the failures")
        assert stats["fine"].skipped == 1
        assert "${body.missing}" in str(stats["broken"].last_error)
        assert "actions[0] (webhook): url: http://127.0.0.1:9/never" in str(stats["dead-endpoint"].last_error)
        assert stats["broken"].fired == 0


async def test_replace_swaps_rules_without_a_restart_and_keeps_unchanged_state(broker: EmbeddedBroker) -> None:
    first: list[object] = [
        {
            "name": "a",
            "trigger": {"kind": "topic", "filter": f"{FILLER}/data/A"},
            "actions": [{"kind": "publish", "topic": f"{FILLER}/kpi/a", "payload": {"v": "${value}"}}],
        }
    ]
    second: list[object] = [
        *first,
        {
            "name": "b",
            "trigger": {"kind": "topic", "filter": f"{FILLER}/data/B"},
            "actions": [{"kind": "publish", "topic": f"{FILLER}/kpi/b", "payload": {"v": "${value}"}}],
        },
    ]
    from tests.uns.rules.harness import RULES

    async with recorder_on(broker.url, [f"{FILLER}/kpi/#"]) as seen, engine_on(broker.url, first) as engine:
        await _publish(broker, f"{FILLER}/data/A", {"value": 1})
        await until(lambda: seen.on(f"{FILLER}/kpi/a"), what="rule a")
        kept = engine.stats()["a"]
        await engine.replace(RULES.validate_python(second))
        assert engine.stats()["a"] is kept
        await _publish(broker, f"{FILLER}/data/B", {"value": 2})
        await until(lambda: seen.on(f"{FILLER}/kpi/b"), what="the new rule b")
        await engine.replace(RULES.validate_python(second[1:]))
        await _publish(broker, f"{FILLER}/data/A", {"value": 3})
        await _publish(broker, f"{FILLER}/data/B", {"value": 4})
        await until(lambda: len(seen.on(f"{FILLER}/kpi/b")) == 2, what="rule b again")
        assert seen.bodies(f"{FILLER}/kpi/a") == [{"v": 1}]  # a was removed
