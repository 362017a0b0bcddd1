"""The web shows a role exactly what the broker would deliver to it: tree, topic, search, streams, Sparkplug status.

A real broker, the real topic cache subscribed to it, and the tree routes behind the real auth middleware, with
one user per role; Sparkplug births, commands and STATE and an edge agent's config published for real.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Callable, Mapping

import httpx
import orjson
import pytest

from model.broker_config import Role, UserConfig
from tests.exports import assert_all_is_honest
from tests.fixtures.passwords import quick_hash
from tests.fixtures.running import running_task
from tests.fixtures.waiting import until
from tests.uns.web.offline import T0, Clock, offline_cache
from tests.uns.web.serving import serve_with_auth
from uns.broker.embedded import EmbeddedBroker
from uns.connect import local_clients, network_clients
from uns.mqtt.types import Message, PubSub
from uns.sparkplug import DataType, Metric, Payload, encode_payload, encode_state
from uns.web.auth import SessionCodec, WebAuth
from uns.web.cache import Page, TopicCache, TreeFilter
from uns.web.roles import Identity, RoutePolicy, TopicAccess
from uns.web.server import ReaderHealth
from uns.web.tree_api import tree_routes
from uns.web.visible_tree import HiddenIndex, VisibleTree

SECRET = b"s" * 32
USERS: Mapping[str, tuple[Role, bool]] = {  # name: (role, read_sparkplug)
    "ada": ("admin", False),
    "hal": ("host", False),
    "amy": ("app", False),
    "vic": ("viewer", False),
    "sven": ("viewer", True),
}
UNS = "acme/dallas/line1/data/temp"
HEALTH = "acme/hub/host/health"
STATUS = "acme/hub/edge/line1/status"
CONFIG = "acme/hub/edge/line1/config"
NBIRTH = "spBv1.0/plant/NBIRTH/edge1"
NDATA = "spBv1.0/plant/NDATA/edge1"
NCMD = "spBv1.0/plant/NCMD/edge1"
STATE = "spBv1.0/STATE/scada"


def _users() -> dict[str, UserConfig]:
    return {
        name: UserConfig(password_hash=quick_hash(f"{name}-pw"), role=role, read_sparkplug=sparkplug)
        for name, (role, sparkplug) in USERS.items()
    }


def _access(user: str) -> TopicAccess:
    """What ``user`` of ``USERS`` may read, as the web's route policy says it."""
    role, sparkplug = USERS[user]
    return RoutePolicy().access(Identity(user=user, role=role, expires_ms=None, read_sparkplug=sparkplug))


def _spb(seq: int | None, *metrics: Metric) -> bytes:
    return encode_payload(Payload(timestamp=T0, seq=seq, metrics=list(metrics)))


@dataclasses.dataclass
class Rig:
    cache: TopicCache
    http: httpx.AsyncClient
    pub: PubSub
    auth: WebAuth

    async def publish(self, topic: str, payload: bytes) -> None:
        before = self.cache.stats.messages
        await self.pub.publish(topic, payload, qos=1)
        await until(lambda: self.cache.stats.messages > before, what=f"the cache to see {topic}")

    async def login(self, user: str) -> None:
        answer = await self.http.post("/api/login", json={"username": user, "password": f"{user}-pw"})
        assert answer.status_code == 200, answer.text

    async def get(self, path: str, **params: str) -> httpx.Response:
        return await self.http.get(path, params=params)


@contextlib.asynccontextmanager
async def _rig(broker: EmbeddedBroker, auth: WebAuth, *, clock: Callable[[], float] = time.time) -> AsyncIterator[Rig]:
    cache = TopicCache(clients=local_clients(broker), clock=clock)
    routes = tree_routes(cache, heartbeat_s=30, interval_s=0.05)
    async with (
        cache,
        running_task(cache, name="test.cache"),
        serve_with_auth(auth, routes=routes, health={"web-cache": ReaderHealth(cache.health)}) as http,
        network_clients(broker.url)(client_id="test-pub") as pub,
    ):
        yield Rig(cache=cache, http=http, pub=pub, auth=auth)


@pytest.fixture
async def rig(broker: EmbeddedBroker) -> AsyncIterator[Rig]:
    async with _rig(broker, WebAuth(users=_users(), secret=SECRET)) as running:
        for topic in (UNS, UNS, HEALTH, STATUS):
            await running.publish(topic, b'{"value": 1}')
        await running.publish(CONFIG, b'{"bridges": [{"kind": "sql", "password": "hunter2"}]}')
        bd_seq = Metric(name="bdSeq", datatype=DataType.Int64, value=4)
        await running.publish(NBIRTH, _spb(0, bd_seq, Metric(name="Secret/Recipe", datatype=DataType.Int64, value=7)))
        await running.publish(NDATA, _spb(1, Metric(name="Secret/Recipe", datatype=DataType.Int64, value=8)))
        await running.publish(NCMD, _spb(None, Metric(name="Node Control/Rebirth", datatype=DataType.Boolean)))
        await running.publish(STATE, encode_state(True, T0))
        yield running


def test_exports() -> None:
    assert_all_is_honest("uns.web.visible_tree")


async def test_the_tree_leaves_out_what_the_broker_refuses_and_its_figures(rig: Rig) -> None:
    await rig.login("ada")
    root = (await rig.get("/api/tree")).json()
    assert (root["node"]["topics"], root["node"]["messages"]) == (8, 9)
    assert [child["name"] for child in root["children"]] == ["acme", "spBv1.0"]

    await rig.login("vic")  # a viewer: no raw Sparkplug, no agent's config
    root = (await rig.get("/api/tree")).json()
    assert (root["node"]["topics"], root["node"]["messages"], root["node"]["children"]) == (3, 4, 1)
    assert [(child["name"], child["topics"], child["messages"]) for child in root["children"]] == [("acme", 3, 4)]
    agent = (await rig.get("/api/tree", prefix="acme/hub/edge/line1")).json()
    assert (agent["node"]["topics"], agent["node"]["children"]) == (1, 1)
    assert [child["name"] for child in agent["children"]] == ["status"]
    unseen = await rig.get("/api/tree", prefix="nowhere")
    for hidden in ("spBv1.0", "spBv1.0/plant", CONFIG):
        answer = await rig.get("/api/tree", prefix=hidden)
        assert answer.status_code == 404, hidden
        assert answer.json() == {**unseen.json(), "error": f"no topic seen under {hidden!r}"}

    await rig.login("sven")  # a viewer with read_sparkplug: births, data and STATE, never commands
    root = (await rig.get("/api/tree")).json()
    assert (root["node"]["topics"], root["node"]["messages"]) == (6, 7)
    group = (await rig.get("/api/tree", prefix="spBv1.0/plant")).json()
    assert (group["node"]["topics"], group["node"]["children"]) == (2, 2)
    assert [child["name"] for child in group["children"]] == ["NBIRTH", "NDATA"]
    assert (await rig.get("/api/tree", prefix="spBv1.0/plant/NCMD")).status_code == 404
    assert rig.auth.counts["hidden_reads"] == 4  # counted, though answered as unseen ("nowhere" is not counted)


async def test_topic_and_search_answer_as_the_broker_would(rig: Rig) -> None:
    expected = {
        # user: (NBIRTH shown, NCMD shown, CONFIG shown)
        "ada": (True, True, True),
        "hal": (True, True, True),
        "amy": (False, False, False),
        "vic": (False, False, False),
        "sven": (True, False, False),
    }
    for user, shown in expected.items():
        await rig.login(user)
        for (topic, word), visible in zip(
            ((NBIRTH, "NBIRTH"), (NCMD, "NCMD"), (CONFIG, "/config")), shown, strict=True
        ):
            answer = await rig.get("/api/topic", topic=topic)
            assert answer.status_code == (200 if visible else 404), (user, topic)
            if not visible:  # the answer for a topic never seen: it confirms nothing
                assert answer.json() == {"error": f"no message seen on topic {topic!r}", "field": "topic"}
            for text in (word, topic):
                found = (await rig.get("/api/search", q=text)).json()["topics"]
                assert [row["topic"] for row in found] == ([topic] if visible else []), (user, text)
        uns = (await rig.get("/api/search", q="acme/")).json()["topics"]
        everything = {UNS, HEALTH, STATUS, CONFIG}
        assert {row["topic"] for row in uns} == (everything if shown[2] else everything - {CONFIG})
    assert rig.auth.counts["hidden_reads"] == 3 + 3 + 2  # amy's, vic's and sven's refused topics; no search counts
    await rig.login("sven")
    birth = (await rig.get("/api/topic", topic=NBIRTH)).json()
    assert (birth["encoding"], [m["name"] for m in birth["payload"]["metrics"]]) == (
        "sparkplug",
        ["bdSeq", "Secret/Recipe"],
    )


async def test_sparkplug_status_needs_a_grant_and_shows_no_commands_without_one(rig: Rig) -> None:
    for user in ("vic", "amy"):
        await rig.login(user)
        refused = await rig.get("/api/sparkplug/nodes")
        assert refused.status_code == 403, user
        assert "read_sparkplug: true" in refused.json()["error"]
        assert "role host or admin" in refused.json()["error"]
        assert refused.json()["role"] == USERS[user][0]
    assert rig.auth.counts["forbidden"] == 2
    await rig.login("sven")
    status = (await rig.get("/api/sparkplug/nodes")).json()
    (node,) = status["nodes"]
    assert (node["edge_node_id"], node["births"], node["commands"]) == ("edge1", 1, None)
    assert [host["host_id"] for host in status["hosts"]] == ["scada"]
    await rig.login("ada")
    (node,) = (await rig.get("/api/sparkplug/nodes")).json()["nodes"]
    assert node["commands"] == 1


async def _collect(response: httpx.Response, event: str, into: list[dict[str, object]]) -> None:
    async for line in response.aiter_lines():
        if line.startswith("data: "):
            into.extend(orjson.loads(line[6:])[event])


async def test_streams_carry_no_hidden_topic(rig: Rig) -> None:
    await rig.login("vic")
    updates: list[dict[str, object]] = []
    rows: list[dict[str, object]] = []
    async with (
        rig.http.stream("GET", "/api/stream") as everything,
        rig.http.stream("GET", "/api/stream", params=(("watch", ""), ("topic", NBIRTH))) as watched,
    ):
        tasks = [
            asyncio.create_task(_collect(everything, "updates", updates), name="test.sse.updates"),
            asyncio.create_task(_collect(watched, "nodes", rows), name="test.sse.nodes"),
        ]
        await until(lambda: rig.cache.health()["streams"] == 2, what="both streams to subscribe")
        for topic in (NBIRTH, NDATA, NCMD):
            await rig.publish(topic, _spb(None, Metric(name="Secret/Recipe", datatype=DataType.Int64, value=9)))
        await rig.publish(STATE, encode_state(True, T0 + 1))
        await rig.publish(CONFIG, b'{"bridges": []}')
        await rig.publish(UNS, b'{"value": 2}')
        await until(lambda: updates and rows, what="the UNS update on both streams")
        await rig.publish(NDATA, _spb(None, Metric(name="Secret/Recipe", datatype=DataType.Int64, value=10)))
        await rig.publish(UNS, b'{"value": 3}')
        await until(lambda: any(row["messages"] == 6 for row in rows), what="the second UNS update")
        for task in tasks:
            task.cancel()
    assert {update["topic"] for update in updates} == {UNS}
    assert {row["path"] for row in rows} == {"acme"}
    assert {(row["topics"], row["messages"]) for row in rows} == {(3, 5), (3, 6)}


async def test_anonymous_roles_read_as_the_broker_lets_them(broker: EmbeddedBroker) -> None:
    cases: tuple[tuple[Role, list[str]], ...] = (("viewer", []), ("admin", [NBIRTH]))
    for role, found in cases:
        auth = WebAuth(users={}, secret=SECRET, allow_anonymous_role=role)
        async with _rig(broker, auth) as running:
            await running.publish(NBIRTH, _spb(0, Metric(name="bdSeq", datatype=DataType.Int64, value=0)))
            shown = (await running.get("/api/search", q="NBIRTH")).json()["topics"]
            assert [row["topic"] for row in shown] == found, role
            status = await running.get("/api/sparkplug/nodes")
            assert status.status_code == (403 if role == "viewer" else 200), role


async def test_a_restricted_reader_s_tree_filters_and_search_pass_on_the_topics_it_may_read(
    broker: EmbeddedBroker,
) -> None:
    # class words, problems and latest times of hidden topics made nodes pass for a reader who may not read them:
    # an agent named cmd with only its desired config, a Sparkplug node named alarm that only got commands, a bad
    # and the latest message on a hidden config under a visible topic (the agent's own node published as one)
    clock = Clock()
    rebirth = _spb(None, Metric(name="Node Control/Rebirth", datatype=DataType.Boolean))
    async with _rig(broker, WebAuth(users=_users(), secret=SECRET), clock=clock) as rig:
        for topic, payload in (
            ("acme/dallas/line1/cmd/start", b'{"value": 1}'),
            ("acme/hub/edge/line1", b'{"value": 1}'),
            (STATUS, b'{"value": 1, "quality": "good"}'),
            ("spBv1.0/plant", b"{}"),
            (NBIRTH, _spb(0, Metric(name="bdSeq", datatype=DataType.Int64, value=4))),
        ):
            await rig.publish(topic, payload)
        clock.ms = T0 + 60_000
        for topic, payload in (
            ("acme/hub/edge/cmd/config", b'{"bridges": []}'),
            (CONFIG, b'{"value": 1, "quality": "bad"}'),
            ("spBv1.0/plant/NCMD/alarm", rebirth),
        ):
            await rig.publish(topic, payload)
        cases: list[tuple[dict[str, str], str, list[str], list[str]]] = [
            # (filter, prefix, admin's rows, a restricted reader's rows)
            ({"class": "cmd"}, "", ["acme"], ["acme"]),
            ({"class": "cmd"}, "acme", ["dallas", "hub"], ["dallas"]),
            ({"class": "cmd"}, "acme/hub/edge", ["cmd"], []),
            ({"class": "alarm"}, "", ["spBv1.0"], []),
            ({"quality": "problem"}, "", ["acme"], []),
            ({"quality": "problem"}, "acme/hub/edge", ["line1"], []),
            ({"changed_s": "30"}, "", ["acme", "spBv1.0"], []),
        ]
        searches: list[tuple[dict[str, str], list[str], list[str]]] = [
            # (filter and text, admin's topics, a restricted reader's topics)
            ({"q": "line1", "quality": "problem"}, ["acme/hub/edge/line1", CONFIG], []),
            ({"q": "line1", "changed_s": "30"}, ["acme/hub/edge/line1", CONFIG], []),
            ({"q": "plant", "class": "alarm"}, ["spBv1.0/plant", "spBv1.0/plant/NCMD/alarm"], []),
            ({"q": "edge", "class": "cmd"}, ["acme/hub/edge/cmd/config"], []),
        ]
        for user in ("ada", "vic", "sven"):
            await rig.login(user)
            for wanted, prefix, every, restricted in cases:
                answer = await rig.get("/api/tree", prefix=prefix, **wanted)
                rows = [child["name"] for child in answer.json()["children"]]
                assert (rows, answer.json()["more"]) == (every if user == "ada" else restricted, 0), (user, wanted)
            for wanted, every, restricted in searches:
                found = (await rig.get("/api/search", **wanted)).json()["topics"]
                assert [row["topic"] for row in found] == (every if user == "ada" else restricted), (user, wanted)
        await rig.login("sven")  # the branches hold what sven may read: unfiltered, as before
        group = (await rig.get("/api/tree", prefix="spBv1.0/plant")).json()
        assert (group["node"]["topics"], [child["name"] for child in group["children"]]) == (2, ["NBIRTH"])
        edge = (await rig.get("/api/tree", prefix="acme/hub/edge")).json()
        assert [child["name"] for child in edge["children"]] == ["line1"]


def test_search_skips_the_first_levels_hidden_whole_from_a_reader_and_finds_new_ones() -> None:
    # not a decide per hidden topic: 40,000 hidden Sparkplug topics cost a viewer's first search ~200 ms
    cache = offline_cache()
    for topic in (UNS, NDATA, "$SYS/broker/uptime", "/x"):
        cache.observe(Message(topic=topic, payload=b"1"))
    readers = {user: _access(user) for user in USERS}
    index = HiddenIndex(cache)
    skipped = {user: sorted(index.skipped(access)) for user, access in readers.items()}
    hidden = ["$SYS", "spBv1.0"]
    assert skipped == {"ada": [], "hal": [], "amy": hidden, "vic": hidden, "sven": ["$SYS"]}
    cache.observe(Message(topic="$private/x", payload=b"1"))
    assert sorted(index.skipped(readers["vic"])) == ["$SYS", "$private", "spBv1.0"]
    assert [info.topic for info in cache.search("x", keep=index.reader(readers["vic"]))] == ["/x"]
    assert [info.topic for info in cache.search("", skip=index.skipped(readers["vic"]))] == [UNS, "/x"]


def test_read_sparkplug_is_read_from_the_account_at_each_request() -> None:
    token = SessionCodec(secret=SECRET).encode(Identity(user="vic", role="viewer", expires_ms=2 * T0))
    users = _users()
    before = WebAuth(users=users, secret=SECRET).identify(token, local=False)
    granted = {**users, "vic": users["vic"].model_copy(update={"read_sparkplug": True})}
    after = WebAuth(users=granted, secret=SECRET).identify(token, local=False)  # the same cookie, no new login
    assert before is not None
    assert after is not None
    assert (before.read_sparkplug, after.read_sparkplug) == (False, True)
    policy = RoutePolicy()
    assert (policy.access(before).may_read(NBIRTH), policy.access(after).may_read(NBIRTH)) == (False, True)


def test_hidden_figures_leave_every_ancestor_rate_problems_and_latest_time_included() -> None:
    clock = Clock()
    cache = offline_cache(clock)

    def put(topic: str, payload: bytes, at: int) -> None:
        clock.ms = T0 + at
        cache.observe(Message(topic=topic, payload=payload), now_ms=T0 + at)

    put(UNS, b'{"value": 1, "quality": "good"}', 0)
    put(CONFIG, b'{"value": 1, "quality": "bad"}', 1_000)  # a hidden topic that looks like a bad value
    put(CONFIG + "/note", b"x", 2_000)  # under a hidden topic, but not refused itself
    put(STATUS, b'{"value": 1, "quality": "good"}', 2_500)
    for at in range(3_000, 6_000, 100):
        put(NDATA, b"1", at)  # busy and latest
    admin = VisibleTree(cache, _access("ada"))
    viewer = VisibleTree(cache, _access("vic"))
    every, seen = admin.node(""), viewer.node("")
    assert every is not None
    assert seen is not None
    assert (every.topics, every.messages, every.problems, every.last_ms) == (5, 34, 1, T0 + 5_900)
    assert (seen.topics, seen.messages, seen.problems, seen.last_ms, seen.children) == (3, 3, 0, T0 + 2_500, 1)
    assert every.rate > 2.0
    assert seen.rate < 0.3
    config = viewer.node(CONFIG)  # shown for what is under it, without its own message
    assert config is not None
    assert (config.topic, config.topics, config.messages, config.children) == (None, 1, 1, 1)
    assert viewer.node(NDATA) is None
    assert viewer.node("spBv1.0") is None
    problems = TreeFilter(problems=True)
    assert [node.name for node in admin.page("", wanted=problems).shown] == ["acme"]
    assert viewer.page("", wanted=problems) == Page(shown=(), more=0)  # no row, no count
    recent = TreeFilter(changed_ms=1_000)  # only the busy Sparkplug node changed in the last second
    assert [node.name for node in admin.page("", wanted=recent).shown] == ["spBv1.0"]
    assert viewer.page("", wanted=recent).shown == ()
    # a shared index finds the cut again once a topic was added: here a new hidden one
    index = HiddenIndex(cache)
    sven = _access("sven")
    before = VisibleTree(cache, sven, index=index).node("")
    put(NCMD, b"1", 6_000)
    after = VisibleTree(cache, sven, index=index)
    grown = after.node("")
    assert before is not None
    assert grown is not None
    assert (after.node(NCMD), grown.topics, grown.messages) == (None, before.topics, before.messages)
    first = viewer.page("acme/hub/edge/line1", limit=1)
    assert ([node.name for node in first.shown], first.more) == (["config"], 1)
    line1 = viewer.node("acme/hub/edge/line1")
    assert line1 is not None
    assert (line1.topics, line1.messages, line1.children) == (2, 2, 2)


async def test_a_node_with_only_hidden_topics_under_it_is_not_listed(rig: Rig) -> None:
    # a group that only ever got commands, an agent with a desired config and no status yet, an enterprise with
    # nothing else: the broker delivers nothing that names them, so neither does the tree (rows nor counts)
    for topic in ("spBv1.0/quiet/NCMD/edge9", "acme/hub/edge/line9/config", "other/hub/edge/a/config"):
        await rig.publish(topic, b'{"value": 1}')
    await rig.login("sven")
    group = (await rig.get("/api/tree", prefix="spBv1.0")).json()
    assert ([child["name"] for child in group["children"]], group["node"]["children"]) == (["plant", "STATE"], 2)
    assert (await rig.get("/api/tree", prefix="spBv1.0/quiet")).status_code == 404
    await rig.login("vic")
    root = (await rig.get("/api/tree")).json()
    assert ([child["name"] for child in root["children"]], root["node"]["children"]) == (["acme"], 1)
    edge = (await rig.get("/api/tree", prefix="acme/hub/edge")).json()
    assert ([child["name"] for child in edge["children"]], edge["node"]["children"]) == (["line1"], 1)
    first = (await rig.get("/api/tree", prefix="acme/hub/edge", limit="1")).json()
    assert (first["more"], first["truncated"]) == (0, False)
    for hidden in ("acme/hub/edge/line9", "other", "other/hub"):
        assert (await rig.get("/api/tree", prefix=hidden)).status_code == 404, hidden
    await rig.login("ada")
    group = (await rig.get("/api/tree", prefix="spBv1.0")).json()
    assert [child["name"] for child in group["children"]] == ["plant", "quiet", "STATE"]


async def test_a_topic_with_an_empty_first_level_breaks_no_reader_s_tree(rig: Rig) -> None:
    # "/x" is a root child named "" (its path is the root's): the latest message hidden made the root walk itself
    await rig.publish("/x", b'{"value": 1}')
    await rig.publish("/hub/edge/a/config", b'{"value": 1, "quality": "bad"}')  # hidden (+/hub/edge/+/config)
    await rig.publish(NDATA, _spb(None, Metric(name="Secret/Recipe", datatype=DataType.Int64, value=9)))
    await rig.login("vic")
    answer = await rig.get("/api/tree")
    assert answer.status_code == 200, answer.text
    root = answer.json()["node"]
    assert (root["topics"], root["messages"], root["problems"]) == (4, 5, 0)
    status = (await rig.get("/api/topic", topic=STATUS)).json()["info"]["last_ms"]
    await rig.login("ada")
    admin = (await rig.get("/api/tree")).json()["node"]
    assert (admin["topics"], admin["problems"]) == (10, 1)
    newest = (await rig.get("/api/topic", topic=NDATA)).json()["info"]["last_ms"]
    assert status <= root["last_ms"] < newest == admin["last_ms"]  # the hidden newest message is not the viewer's


async def test_sparkplug_status_tells_a_reader_without_commands_nothing_of_them(rig: Rig) -> None:
    # commands to a device and a node that never spoke, and one to edge1 after its last data
    for topic in ("spBv1.0/plant/DCMD/edge1/valve7", "spBv1.0/plant/NCMD/ghost", NCMD):
        await rig.publish(topic, _spb(None, Metric(name="Node Control/Rebirth", datatype=DataType.Boolean)))
    await rig.login("ada")
    command = (await rig.get("/api/topic", topic=NCMD)).json()["info"]["last_ms"]
    every = (await rig.get("/api/sparkplug/nodes")).json()["nodes"]
    assert [(node["edge_node_id"], [d["device_id"] for d in node["devices"]]) for node in every] == [
        ("edge1", ["valve7"]),
        ("ghost", []),
    ]
    assert (every[0]["last_seen_ms"], every[0]["commands"]) == (command, 3)  # as before for host and admin
    await rig.login("sven")
    heard = (await rig.get("/api/topic", topic=NDATA)).json()["info"]["last_ms"]
    (node,) = (await rig.get("/api/sparkplug/nodes")).json()["nodes"]
    assert (node["edge_node_id"], node["devices"], node["commands"]) == ("edge1", [], None)
    assert node["last_seen_ms"] == heard < command


async def test_health_tells_a_restricted_reader_no_count_of_what_is_hidden_from_it(rig: Rig) -> None:
    # the cache counts every topic it holds: a viewer's count less its tree root's would be how many are hidden
    full = {"messages": 9, "topics": 8, "streams": 0, "edge_nodes": 1}
    for user in ("ada", "hal"):
        await rig.login(user)
        cache = (await rig.get("/api/health")).json()["web-cache"]
        assert {key: cache[key] for key in full} == full, user
    for user in ("amy", "vic", "sven"):  # sven reads Sparkplug, but not the commands
        await rig.login(user)
        health = (await rig.get("/api/health")).json()
        assert health["web-cache"] == {"streams": 0}, user
        assert "auth" in health  # the other sections are there as before


def test_a_hidden_subtree_s_traffic_is_not_in_an_ancestor_s_rate_however_the_tree_was_read() -> None:
    # the cache's rates are estimates per node, each brought up to date when it is read: the root's less
    # spBv1.0's left a share of the hidden traffic in the viewer's root when they were read at other times
    clock = Clock()
    cache = offline_cache(clock)
    cache.observe(Message(topic=UNS, payload=b'{"value": 1}'), now_ms=T0)  # the only visible message, long ago
    admin = _access("ada")
    viewer = _access("vic")
    index = HiddenIndex(cache)
    rates = []
    for step in range(1, 8_001):
        clock.ms = T0 + 100_000 + step * 5
        if (step // 400) % 2 == 0:  # bursts of 200 messages a second
            cache.observe(Message(topic=NDATA, payload=b"1"), now_ms=clock.ms)
        if step % 50 == 0:
            VisibleTree(cache, admin).node("")  # an admin's page polls the root
        if step % 1_000 == 0:
            seen = VisibleTree(cache, viewer, index=index).node("")
            assert seen is not None
            rates.append(seen.rate)
    every = VisibleTree(cache, admin).node("")
    assert every is not None
    assert every.rate > 50
    assert rates == [0.0] * 8
