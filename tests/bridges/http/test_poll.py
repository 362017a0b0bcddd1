"""The HTTP source polling a real REST API (uvicorn on 127.0.0.1): auth, pagination, 304s, 429s, failures, refusals."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from bridges.http import HttpSource
from bridges.http.poller import Poller
from bridges.http.state import PollState
from bridges.source import Samples
from model.bridges.http import HttpPoll
from tests.bridges.http.rest_api import API_KEY, CLIENT_ID, CLIENT_SECRET, PASSWORD, USER, RestApi
from tests.bridges.http.running import config, poll, running
from tests.fixtures.asgi import serve
from tests.fixtures.tls import self_signed_cert
from tests.fixtures.waiting import until
from uns.connect import network_clients
from uns.errors import DeviceUnreachable
from uns.mqtt.types import BrokerUrl


@pytest.fixture
async def api() -> AsyncIterator[tuple[RestApi, str]]:
    rest = RestApi()
    async with serve(rest.app()) as url:
        yield rest, url


@pytest.mark.parametrize(
    ("kind", "auth"),
    [
        ("basic", {"kind": "basic", "username": USER, "password": PASSWORD}),
        ("bearer", {"kind": "bearer", "token": API_KEY}),
    ],
)
async def test_basic_and_bearer_auth(api: tuple[RestApi, str], tmp_path: Path, kind: str, auth: dict[str, str]) -> None:
    rest, url = api
    async with running(config(poll=poll(f"{url}/{kind}/items", auth=auth)), tmp_path) as (_, got):
        await until(lambda: got.values()[:3] == [0.0, 1.0, 2.0], what="the items")
    assert rest.unauthorized == 0
    wrong = {**auth, "password": "nope"} if kind == "basic" else {**auth, "token": "nope"}
    async with running(config(poll=poll(f"{url}/{kind}/items", auth=wrong)), tmp_path) as (source, got):
        await until(lambda: got.downs, what="401 reported as down")
    assert "answered 401" in got.downs[0]
    assert got.values() == []
    assert source.counts["failures"] >= 1


async def test_oauth2_token_refreshed_before_expiry_and_on_401(api: tuple[RestApi, str], tmp_path: Path) -> None:
    rest, url = api
    auth = {
        "kind": "oauth2",
        "token_url": f"{url}/token",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "refresh_margin_s": 0.6,
    }
    # tokens that live 1 s and say so: fetched again 0.6 s before they run out (slack for a loaded box), never a 401
    rest.token_lifetime_s = rest.token_claimed_s = 1.0
    async with running(config(poll=poll(f"{url}/oauth/items", auth=auth)), tmp_path) as (source, got):
        await until(lambda: rest.tokens_issued >= 3, what="three tokens")
        assert source.counts["failures"] == 0
    assert rest.unauthorized == 0
    assert len(got.values()) >= 6
    # tokens the server revokes long before the hour they claim: the 401 fetches a new one, the poll goes on
    rest.tokens_issued, rest.token_lifetime_s, rest.token_claimed_s = 0, 0.2, 3600.0
    async with running(config(poll=poll(f"{url}/oauth/items", auth=auth)), tmp_path) as (source, got):
        await until(lambda: rest.tokens_issued >= 3, what="tokens after 401s")
        assert source.counts["failures"] == 0
    assert rest.unauthorized >= 2
    assert got.downs == []
    # a wrong client secret: the token endpoint refuses, reported as down with the endpoint named
    async with running(config(poll=poll(f"{url}/oauth/items", auth={**auth, "client_secret": "x"})), tmp_path) as (
        _,
        got,
    ):
        await until(lambda: got.downs, what="token refusal")
    assert f"({url}/token): token endpoint answered 401" in got.downs[0]


@pytest.mark.parametrize(
    ("path", "pagination", "pages"),
    [
        ("/link", {"kind": "link"}, ["/link", "/link?page=1", "/link?page=2"]),
        (
            "/offset",
            {"kind": "offset", "limit": 3},
            ["/offset?offset=0&limit=3", "/offset?offset=3&limit=3", "/offset?offset=6&limit=3"],
        ),
    ],
)
async def test_link_and_offset_pages(
    api: tuple[RestApi, str], tmp_path: Path, path: str, pagination: dict[str, object], pages: list[str]
) -> None:
    rest, url = api
    async with running(config(poll=poll(f"{url}{path}", pagination=pagination, interval_s=60)), tmp_path) as (_, got):
        await until(lambda: len(got.values()) == 7, what="seven items over three pages")
    assert got.values() == [float(i) for i in range(7)]
    assert [request.removeprefix(url) for request in rest.requests] == pages


async def test_cursor_pages_resume_after_a_restart(api: tuple[RestApi, str], tmp_path: Path) -> None:
    rest, url = api
    cfg = config(
        poll=poll(
            f"{url}/cursor",
            items_path="$.data.items",
            pagination={"kind": "cursor", "cursor_path": "$.next"},
            interval_s=60,
        )
    )
    async with running(cfg, tmp_path) as (_, got):
        await until(lambda: len(got.values()) == 7, what="seven items")
        await until(lambda: PollState.load(tmp_path / "http/erp/poll_state.json").cursor == "7", what="cursor saved")
        # the cursor is saved as soon as page 3 is taken; the empty page after it may still be on its way
        await until(lambda: len(rest.requests) == 4, what="the empty page after the last")
    assert [request.removeprefix(url) for request in rest.requests] == [
        "/cursor",
        "/cursor?cursor=3",
        "/cursor?cursor=6",
        "/cursor?cursor=7",
    ]
    rest.requests.clear()
    rest.paged.extend([{"id": "o7", "qty": 7.0}, {"id": "o8", "qty": 8.0}])
    async with running(cfg, tmp_path) as (_, got):  # a restart: only the new items, from the saved cursor
        await until(lambda: len(got.values()) == 2, what="the two new items")
    assert got.values() == [7.0, 8.0]
    assert rest.requests[0].removeprefix(url) == "/cursor?cursor=7"


@pytest.mark.parametrize("etag", ['"v1"', '"lm-only"'])
async def test_not_modified_is_cheap_and_saved_across_restarts(
    api: tuple[RestApi, str], tmp_path: Path, etag: str
) -> None:
    rest, url = api
    rest.etag = etag
    async with running(config(poll=poll(f"{url}/etag")), tmp_path) as (_, got):
        await until(lambda: rest.not_modified >= 3, what="three 304s")
        assert got.values() == [0.0, 1.0, 2.0]  # the first answer only
        await until(lambda: got.status("NotModified") is not None and got.status("NotModified") >= 3, what="status")  # type: ignore[operator]
    state = PollState.load(tmp_path / "http/erp/poll_state.json")
    assert state.validators == {f"{url}/etag": (etag if etag == '"v1"' else None, rest.last_modified)}
    before = rest.not_modified
    async with running(config(poll=poll(f"{url}/etag")), tmp_path) as (_, got):  # restarted
        await until(lambda: rest.not_modified > before, what="a 304 right after the restart")
        assert got.values() == []
    rest.etag, rest.items = '"v2"', [{"id": "n", "qty": 9.0}]
    async with running(config(poll=poll(f"{url}/etag")), tmp_path) as (_, got):
        await until(lambda: got.values() == [9.0], what="the changed list")


async def test_per_page_etags_an_unchanged_first_page_hides_no_later_one(
    api: tuple[RestApi, str], tmp_path: Path
) -> None:
    rest, url = api
    cfg = config(poll=poll(f"{url}/offset", pagination={"kind": "offset", "limit": 3}))
    async with running(cfg, tmp_path) as (_, got):
        await until(lambda: rest.not_modified >= 6, what="two polls of three unchanged pages")
        assert got.values() == [float(i) for i in range(7)]  # each item once: unchanged pages map nothing
        rest.paged.append({"id": "o7", "qty": 7.0})  # the last page changes, the first two do not
        await until(lambda: got.values()[-1:] == [7.0], what="the item on the changed last page")
    assert got.values() == [*(float(i) for i in range(7)), 6.0, 7.0]  # a changed page is read whole


async def test_429_waits_as_told_then_polls(api: tuple[RestApi, str], tmp_path: Path) -> None:
    rest, url = api
    rest.throttle_next, rest.retry_after = 1, "1"
    async with running(config(poll=poll(f"{url}/open/items", backoff_max_s=5)), tmp_path) as (source, got):
        await until(lambda: source.counts["throttled"] == 1, what="throttled")
        throttled_at = len(rest.requests)
        await until(lambda: got.values() == [0.0, 1.0, 2.0], what="items after the wait", within_s=5)
    assert throttled_at == 1
    assert rest.times[1] - rest.times[0] >= 0.9  # nothing asked during the second the API asked for
    assert got.downs == []  # 429 is not down


async def test_500s_reported_down_then_recovery(api: tuple[RestApi, str], tmp_path: Path) -> None:
    rest, url = api
    rest.fail_next = 3
    async with running(config(poll=poll(f"{url}/open/items")), tmp_path) as (source, got):
        await until(lambda: got.values() == [0.0, 1.0, 2.0], what="items after recovery")
    assert len(got.downs) == 1  # reported once, not per retry
    assert "answered 500 Internal Server Error" in got.downs[0]
    assert source.counts["failures"] == 3


async def test_a_slow_api_times_out_and_is_reported(api: tuple[RestApi, str], tmp_path: Path) -> None:
    _, url = api
    async with running(config(poll=poll(f"{url}/slow", timeout_s=0.2)), tmp_path) as (source, got):
        await until(lambda: got.downs, what="the timeout reported")
    assert got.downs[0] == f"bridge erp ({url}/slow): timed out after 0.2 s"
    assert source.counts["failures"] >= 1


async def test_mapping_failure_among_good_items(api: tuple[RestApi, str], tmp_path: Path) -> None:
    _, url = api
    cfg = config(poll=poll(f"{url}/mixed", items_path="$", interval_s=60))
    async with running(cfg, tmp_path) as (source, got):
        await until(lambda: got.status("Refused") == 2, what="two refusals")
        assert got.values() == [1.0, 4.0]
        assert source.counts["items"] == 2
    letters = [orjson.loads(line) for line in (tmp_path / "http/erp/dead_letters.jsonl").read_bytes().splitlines()]
    assert [(d["connector"], d["key"], d["path"]) for d in letters] == [("erp", "b", "$.qty"), ("erp", "c", "$.qty")]
    assert letters[0]["reason"] == "'lots' is not a number (metric type Double)"
    assert letters[0]["item"] == {"id": "b", "qty": "lots", "line": "line1"}
    assert "missing" in letters[1]["reason"]
    assert source.dead_letters.count == 2


async def test_tls_verified_by_default_and_with_a_ca_file(tmp_path: Path) -> None:
    cert, key = self_signed_cert(tmp_path)
    rest = RestApi()
    async with serve(rest.app(), tls=(cert, key)) as url:
        async with running(config(poll=poll(f"{url}/open/items")), tmp_path) as (_, got):
            await until(lambda: got.downs, what="an unknown certificate refused")
        assert "CERTIFICATE_VERIFY_FAILED" in got.downs[0]
        assert rest.requests == []
        async with running(config(poll=poll(f"{url}/open/items", ca_file=str(cert))), tmp_path) as (_, got):
            await until(lambda: got.values()[:3] == [0.0, 1.0, 2.0], what="the items over verified TLS")
        assert got.downs == []


async def test_state_saved_only_once_the_consumer_took_the_page(api: tuple[RestApi, str], tmp_path: Path) -> None:
    _, url = api
    cfg = config(
        poll=poll(f"{url}/cursor", items_path="$.data.items", pagination={"kind": "cursor", "cursor_path": "$.next"})
    )
    state_file = tmp_path / "http/erp/poll_state.json"
    source = HttpSource(config=cfg, clients=network_clients(BrokerUrl(port=1)), data_dir=tmp_path)
    async with source:
        events = aiter(source.events())
        try:
            first_page: list[object] = []
            while not first_page:
                event = await anext(events)
                if isinstance(event, Samples) and event.device == "orders":
                    first_page.append(event)
            # the edge node (here: this test) holds the page's first Samples: nothing is saved yet
            assert not state_file.exists()
            while PollState.load(state_file).cursor != "3":
                await anext(events)  # asking for more is what says "taken"
        finally:
            await events.aclose()  # type: ignore[attr-defined]


class _RawApi:
    """An API at the TCP level: answers ``{"items": []}``, counts connections; ``drop_kept`` closes a connection
    that asks a second time without answering (a server whose keep-alive timeout ran out as the GET arrived),
    ``drop_all`` every connection at its first request; ``cut_kept`` answers a second request with its head and
    half its body, then closes; ``mute_kept`` never answers a second request."""

    def __init__(self) -> None:
        self.connections = 0
        self.drop_kept = False
        self.drop_all = False
        self.cut_kept = False
        self.mute_kept = False
        self.open: dict[asyncio.StreamWriter, asyncio.Task[None]] = {}

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open[writer] = asyncio.current_task()  # type: ignore[assignment]
        answered = 0
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while await reader.readuntil(b"\r\n\r\n"):
                if self.drop_all or (self.drop_kept and answered):
                    break
                if self.cut_kept and answered:
                    writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 13\r\n\r\n")
                    writer.write(b'{"items"')
                    await writer.drain()
                    break
                if self.mute_kept and answered:
                    await reader.read()  # until the client gives up and closes
                    break
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 13\r\n\r\n")
                writer.write(b'{"items": []}')
                answered += 1
        writer.close()
        del self.open[writer]

    async def close(self) -> None:
        """Close the connections still open and wait for their handlers."""
        handlers = list(self.open.values())
        for writer in self.open:
            writer.close()
        await asyncio.gather(*handlers)


@contextlib.asynccontextmanager
async def _raw_api() -> AsyncIterator[tuple[_RawApi, str]]:
    api = _RawApi()
    server = await asyncio.start_server(api.handle, "127.0.0.1", 0)
    async with server:
        try:
            yield api, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/items"
        finally:
            await api.close()


async def _poll_once(poller: Poller) -> None:
    async for _ in poller.pages(PollState()):
        pass


async def test_one_connection_across_polls_further_apart_than_httpxs_default_keep_alive() -> None:
    async with _raw_api() as (api, url):
        settings = HttpPoll.model_validate({"url": url, "interval_s": 6, "items_path": "$.items"})
        async with Poller(name="erp", config=settings) as poller:
            await _poll_once(poller)
            await asyncio.sleep(5.5)  # httpx's own keep-alive (5 s) would have closed it
            await _poll_once(poller)
    assert (api.connections, poller.requests) == (1, 2)


async def test_a_kept_connection_the_server_closed_is_asked_again_once() -> None:
    async with _raw_api() as (api, url):
        settings = HttpPoll.model_validate({"url": url, "interval_s": 1, "items_path": "$.items"})
        async with Poller(name="erp", config=settings) as poller:
            api.drop_kept = True
            for _ in range(3):  # each poll: the kept connection closed under the GET, then a new one answers
                await _poll_once(poller)
            assert (api.connections, poller.requests) == (3, 5)
            api.drop_all = True  # down: the first failure after an answer asks twice, the next ones once
            for expected in (7, 8):
                with pytest.raises(DeviceUnreachable, match=rf"^bridge erp \({url}\): request failed: RemoteProtocol"):
                    await _poll_once(poller)
                assert poller.requests == expected


async def test_a_kept_connection_cut_mid_answer_or_timed_out_is_not_asked_again() -> None:
    async with _raw_api() as (api, url):
        settings = HttpPoll.model_validate({"url": url, "interval_s": 1, "timeout_s": 0.3, "items_path": "$.items"})
        async with Poller(name="erp", config=settings) as poller:
            await _poll_once(poller)
            api.cut_kept = True  # the server answered (status and headers): it served the GET, which is not made again
            with pytest.raises(DeviceUnreachable, match=rf"^bridge erp \({url}\): request failed: RemoteProtocol"):
                await _poll_once(poller)
            assert (api.connections, poller.requests) == (1, 2)
            api.cut_kept = False
            await _poll_once(poller)  # a new connection, answered
            api.mute_kept = True  # no answer within timeout_s: the server may be at work on it, not made again
            with pytest.raises(DeviceUnreachable, match=rf"^bridge erp \({url}\): timed out after 0.3 s$"):
                await _poll_once(poller)
            assert (api.connections, poller.requests) == (2, 4)
