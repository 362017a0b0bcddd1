"""Webhooks into the HTTP source: signed deliveries accepted, bad and replayed ones refused, big ones cut off."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import orjson

from bridges.http import HttpSource
from bridges.http.signature import sign
from bridges.source import Samples
from tests.bridges.http.rest_api import RestApi
from tests.bridges.http.running import config, running
from tests.fixtures.asgi import serve
from tests.fixtures.waiting import until
from uns.connect import network_clients
from uns.mqtt.types import BrokerUrl

SECRET = "hook-secret"  # noqa: S105  (a test key)


def _signed(body: bytes, *, at: float | None = None, secret: str = SECRET) -> dict[str, str]:
    stamp = str(int(time.time() if at is None else at))
    return {"X-Timestamp": stamp, "X-Signature": "sha256=" + sign(secret.encode(), body, timestamp=stamp)}


async def test_signed_deliveries_in_bad_and_replayed_out(tmp_path: Path) -> None:
    cfg = config(webhook={"secret": SECRET, "items_path": "$.items", "max_body_bytes": 4096})
    async with running(cfg, tmp_path) as (source, got), httpx.AsyncClient() as http:
        hook = source.webhook
        assert hook is not None
        assert hook.url.startswith("http://127.0.0.1:")  # loopback unless configured otherwise
        body = orjson.dumps({"items": [{"id": "a", "qty": 1.5}, {"id": "b", "qty": "x"}, {"id": "c", "qty": 3.0}]})
        headers = _signed(body)
        answer = await http.post(hook.url, content=body, headers=headers)
        assert (answer.status_code, answer.json()) == (200, {"status": "accepted", "items": 2, "refused": 1})
        assert got.values() == [1.5, 3.0]  # answered only once the samples were taken
        # the same delivery again (a replay, or a sender that lost our answer): not processed twice
        again = await http.post(hook.url, content=body, headers=headers)
        assert (again.status_code, again.json()) == (200, {"status": "duplicate"})
        refusals = [
            (body, {**headers, "X-Signature": "sha256=" + "0" * 64}, "does not match"),
            (body + b" ", headers, "does not match"),
            (body, _signed(body, secret="wrong"), "does not match"),  # noqa: S106
            (body, _signed(body, at=time.time() - 3600), "from now (tolerance 300 s)"),
            (body, {"X-Timestamp": headers["X-Timestamp"]}, "signature header missing"),
        ]
        for content, refused_headers, reason in refusals:
            answer = await http.post(hook.url, content=content, headers=refused_headers)
            assert answer.status_code == 401
            assert reason in answer.json()["error"]
        big = orjson.dumps({"items": [{"id": str(i), "qty": 1.0} for i in range(200)]})
        assert (await http.post(hook.url, content=big, headers=_signed(big))).status_code == 413
        not_json = b"{nope"
        assert (await http.post(hook.url, content=not_json, headers=_signed(not_json))).status_code == 400
        assert (await http.get(hook.url)).status_code == 405
        assert got.values() == [1.5, 3.0]
        assert hook.counts == {
            "received": 9, "accepted": 1, "unauthorized": 5, "too_large": 1, "bad_json": 1, "replays": 1,
        }  # fmt: skip
        await until(lambda: got.status("WebhooksRejected") == 7, what="status after the refusals")
        assert (got.status("Webhooks"), got.status("Refused"), got.status("WebhooksReplayed")) == (1, 1, 1)
    # the listener left the event loop cleanly: a socket opened now (maybe on the same fd) works
    rest = RestApi()
    async with serve(rest.app()) as url, httpx.AsyncClient() as http:
        assert (await http.get(f"{url}/open/items")).status_code == 200
    [letter] = [orjson.loads(line) for line in (tmp_path / "http/erp/dead_letters.jsonl").read_bytes().splitlines()]
    assert (letter["key"], letter["path"], letter["item"]) == ("b", "$.qty", {"id": "b", "qty": "x"})


async def test_a_delivery_not_taken_in_time_is_answered_503(tmp_path: Path) -> None:
    cfg = config(webhook={"secret": SECRET, "items_path": "$.items", "answer_within_s": 0.3})
    source = HttpSource(config=cfg, clients=network_clients(BrokerUrl(port=1)), data_dir=tmp_path)
    async with source, httpx.AsyncClient() as http:
        events = aiter(source.events())
        try:
            await anext(events)  # the status; then the consumer (an edge node stuck on a dead broker) waits
            assert source.webhook is not None
            body = orjson.dumps({"items": [{"id": "a", "qty": 1.0}]})
            answer = await http.post(source.webhook.url, content=body, headers=_signed(body))
            assert (answer.status_code, answer.json()) == (503, {"error": "not taken, retry later"})
            assert source.counts["webhooks_failed"] == 1
            # the sender's retry, once the consumer takes again, is accepted (the same body, a new timestamp)
            retry = asyncio.create_task(http.post(source.webhook.url, content=body, headers=_signed(body)))
            taken: list[object] = []
            while not retry.done():
                event = await asyncio.wait_for(anext(events), 5)
                if isinstance(event, Samples) and event.device == "orders":
                    taken.extend(s.value for s in event.samples)
            assert (await retry).status_code == 200
            assert taken[-1:] == [1.0]
        finally:
            await events.aclose()  # type: ignore[attr-defined]
