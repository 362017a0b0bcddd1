"""The web server ticks once a second (uvicorn's own tick is 0.1 s), keeps its Date header, and stops at once."""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import time

import httpx

from tests.fixtures.timers import timers_by_task
from uns.web import WebServer


async def test_an_idle_web_server_wakes_once_a_second_serves_a_date_and_stops_promptly() -> None:
    async with WebServer(bind="127.0.0.1", port=0, health={}, history=None) as web:
        serving = asyncio.create_task(web.run(), name="web-under-test")
        try:
            async with httpx.AsyncClient(base_url=web.url) as client:
                assert (await client.get("/healthz")).status_code == 200
                with timers_by_task() as timers:
                    await asyncio.sleep(1.5)
                assert timers["uns.web.uvicorn"] <= 3, timers  # was 15: a 0.1 s tick
                answer = await client.get("/healthz")
                date = email.utils.parsedate_to_datetime(answer.headers["date"]).timestamp()
                assert abs(date - time.time()) < 3  # the Date header still moves on
        finally:
            stopping = time.monotonic()
            serving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await serving
        assert time.monotonic() - stopping < 1.0  # not held to the next 1 s tick
