"""In-process caches (``kit.cache``): what is cached is dropped when it changes, here and in every
process sharing the Redis; and a warm authenticated request reads no key, app or revocation row."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
import pytest
from redis.asyncio import Redis

from questline.app import create_app
from questline.kit.cache import CacheHub, CacheSpec
from questline.kit.clock import ManualClock
from questline.kit.db import unit_of_work
from questline.kit.runtime import Runtime
from questline.tenancy.schemas import Role
from tests.conftest import REDIS_URL, Factory, lifespan, problem
from tests.pipeline.helpers import recorded_statements

SPEC = CacheSpec[str, int]("test.numbers", max_entries=3)


class Loads:
    """A loader that counts its calls and returns the current value of ``value``."""

    def __init__(self, value: int = 1) -> None:
        self.value = value
        self.calls = 0

    async def __call__(self) -> int:
        self.calls += 1
        return self.value


async def test_entries_are_kept_and_dropped_only_once_the_change_commits(runtime: Runtime) -> None:
    await runtime.caches.start()  # as the app's lifespan does (with Redis: subscribes)
    load = Loads(1)
    async with runtime.read_sessions() as session:
        assert [await SPEC.get(session, "a", load) for _ in range(3)] == [1, 1, 1]
    assert load.calls == 1
    load.value = 2
    # Rolled back: the invalidation never happens (the row did not change).
    with pytest.raises(RuntimeError):
        async with unit_of_work(runtime.sessions) as session:
            SPEC.invalidate(session, "a")
            raise RuntimeError("rolled back")
    async with runtime.read_sessions() as session:
        assert await SPEC.get(session, "a", load) == 1
    # Committed: dropped once the commit is done, not before.
    async with unit_of_work(runtime.sessions) as session:
        SPEC.invalidate(session, "a")
        assert await SPEC.get(session, "a", load) == 1
    async with runtime.read_sessions() as session:
        assert await SPEC.get(session, "a", load) == 2
    assert load.calls == 2


async def test_a_load_that_overlaps_an_invalidation_is_not_kept(runtime: Runtime) -> None:
    await runtime.caches.start()
    started, finish = asyncio.Event(), asyncio.Event()

    async def slow_old_value() -> int:
        started.set()
        await finish.wait()
        return 1  # read before the change committed

    async with runtime.read_sessions() as session:
        reader = asyncio.create_task(SPEC.get(session, "k", slow_old_value))
        await started.wait()
        async with unit_of_work(runtime.sessions) as writer:
            SPEC.invalidate(writer, "k")  # the change commits while the read is in flight
        finish.set()
        assert await reader == 1  # answered, but not kept
        assert await SPEC.get(session, "k", Loads(2)) == 2


async def test_bounded_aged_and_off_when_asked() -> None:
    now = [0.0]
    hub = CacheHub(None, channel="unused", max_age_seconds=60, monotonic=lambda: now[0])
    cache = SPEC.of(hub)
    for key in "abcd":
        await cache.get(key, Loads(ord(key)))
    assert len(cache) == 3 and cache.peek("a") == (False, None)  # the least recently used went first
    assert cache.peek("d") == (True, ord("d"))
    now[0] = 61.0
    assert cache.peek("d") == (False, None)  # the backstop age passed
    off = CacheHub(None, channel="unused", max_age_seconds=0)
    load = Loads(5)
    for _ in range(2):
        await SPEC.of(off).get("a", load)
    assert load.calls == 2


# --- across processes: Redis pub/sub ---------------------------------------------------------

needs_redis = pytest.mark.skipif(REDIS_URL is None, reason="needs QUESTLINE_TEST_REDIS_URL")


async def until(condition: Callable[[], bool], what: str) -> None:
    """Wait for another process's message to be applied (delivery is asynchronous; bounded wait)."""
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(0.005)
    pytest.fail(f"never happened: {what}")


@asynccontextmanager
async def hubs(count: int, name: str | None = None) -> AsyncIterator[list[CacheHub]]:
    """``count`` hubs on one fresh channel, each with its own Redis client (named ``name``)."""
    assert REDIS_URL is not None
    channel = f"qltest:{uuid.uuid4().hex[:8]}:cache"
    clients = [Redis.from_url(REDIS_URL, client_name=name or f"qltest-{uuid.uuid4().hex[:8]}") for _ in range(count)]
    made = [CacheHub(client, channel=channel, max_age_seconds=60) for client in clients]
    try:
        yield made
    finally:
        for hub, client in zip(made, clients, strict=True):
            await hub.stop()
            await client.aclose()


@needs_redis
async def test_an_invalidation_reaches_every_process() -> None:
    async with hubs(2) as (a, b):
        for hub in (a, b):
            await hub.start()
        load_a, load_b = Loads(1), Loads(1)
        await SPEC.of(a).get("k", load_a)
        await SPEC.of(b).get("k", load_b)
        await a.invalidate(SPEC.name, ["k"])
        await until(lambda: b.received == 1, "b hears of a's invalidation")
        assert SPEC.of(b).peek("k") == (False, None) and SPEC.of(a).peek("k") == (False, None)
        # Tuple keys survive the trip.
        tuple_spec = CacheSpec[tuple[str, str], int]("test.pairs")
        await tuple_spec.of(b).get(("app", "alice"), Loads(3))
        await a.invalidate(tuple_spec.name, [("app", "alice")])
        await until(lambda: b.received == 2, "b hears of the second invalidation")
        assert tuple_spec.of(b).peek(("app", "alice")) == (False, None)


@needs_redis
async def test_a_process_not_listening_keeps_nothing_and_one_that_lost_its_link_forgets_all() -> None:
    assert REDIS_URL is not None
    name = f"qltest-{uuid.uuid4().hex[:8]}"
    async with hubs(1, name=name) as (hub,):
        load = Loads(1)
        for _ in range(2):
            await SPEC.of(hub).get("k", load)
        assert load.calls == 2 and not hub.serving  # never started (a CLI command): bypassed
        await hub.start()
        await SPEC.of(hub).get("k", load)
        assert SPEC.of(hub).peek("k") == (True, 1)
        # Kill our own connections (only ours, by name): messages may be lost, so all is forgotten.
        admin = Redis.from_url(REDIS_URL)
        try:
            clients = await admin.client_list()
            for client in clients:
                if client.get("name") == name:
                    await admin.client_kill_filter(_id=client["id"])
        finally:
            await admin.aclose()
        await until(lambda: SPEC.of(hub).peek("k") == (False, None), "the cache is cleared after the link broke")
        await until(lambda: hub.serving, "the listener subscribes again")
        await SPEC.of(hub).get("k", load)
        assert SPEC.of(hub).peek("k") == (True, 1)


# --- over HTTP: changes take effect at once, caches on as in production ------------------------


async def test_a_changed_app_setting_takes_effect_at_once(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    admin = await factory.admin(keys.org_id, Role.ADMIN)
    event = {"events": [{"id": f"e-{uuid.uuid4().hex[:6]}", "player_id": "alice", "type": "level.done"}]}
    alice = await factory.player_token(keys, "alice")

    async def accepted() -> bool:
        event["events"][0]["id"] = f"e-{uuid.uuid4().hex[:6]}"
        resp = await client.post("/v1/events", headers=alice, json=event)
        if resp.status_code == 422:
            problem(resp, 422, "type_not_allowed")
            return False
        assert resp.status_code == 202 and not resp.json()["rejected"], resp.text
        return True

    assert [await accepted() for _ in range(2)] == [False, False]  # warm: refused, from cache
    types = f"/v1/apps/{keys.app_id}/client-event-types"
    assert (await client.put(types, headers=admin.headers(), json={"event_types": ["level.done"]})).status_code == 200
    assert await accepted()
    assert (await client.put(types, headers=admin.headers(), json={"event_types": []})).status_code == 200
    assert not await accepted()


async def test_changes_reach_a_second_engine_sharing_the_redis(client: httpx.AsyncClient, factory: Factory,
                                                               runtime: Runtime, clock: ManualClock) -> None:
    if runtime.settings.redis_url is None:
        pytest.skip("two engines share invalidations through Redis (the PostgreSQL + Redis backend)")
    keys = await factory.app()
    owner = await factory.admin(keys.org_id, Role.OWNER)
    second_runtime = Runtime.build(runtime.settings, clock)
    second_app = create_app(runtime=second_runtime, background=False)
    async with lifespan(second_app):
        transport = httpx.ASGITransport(app=second_app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://second.test") as second:
            made = (await client.post(f"/v1/apps/{keys.app_id}/keys", headers=owner.headers(),
                                      json={"kind": "server", "name": "deploy"})).json()
            deploy = {"Authorization": f"Bearer {made['secret']}"}
            alice = await factory.player_token(keys, "alice")
            bob = await factory.player_token(keys, "bob")
            for headers, url in ((deploy, "/v1/players"), (alice, "/v1/players/alice/account"),
                                 (bob, "/v1/players/bob/account")):
                for _ in range(2):  # warm the second engine's caches
                    assert (await second.get(url, headers=headers)).status_code == 200
            heard = second_runtime.caches.received

            # A key revoked on the first engine...
            await client.post(f"/v1/apps/{keys.app_id}/keys/{made['id']}/revoke", headers=owner.headers())
            await until(lambda: second_runtime.caches.received > heard, "the key's revocation")
            problem(await second.get("/v1/players", headers=deploy), 401, "key_revoked")
            # ... a player's tokens revoked there ...
            heard = second_runtime.caches.received
            assert (await client.delete("/v1/players/alice/tokens", headers=keys.server)).status_code == 204
            await until(lambda: second_runtime.caches.received > heard, "the player's token revocation")
            problem(await second.get("/v1/players/alice/account", headers=alice), 401, "token_revoked")
            assert (await second.get("/v1/players/bob/account", headers=bob)).status_code == 200
            # ... and an app setting changed there: the second engine follows each at once.
            event = {"events": [{"id": "c-1", "player_id": "bob", "type": "level.done"}]}
            problem(await second.post("/v1/events", headers=bob, json=event), 422, "type_not_allowed")
            heard = second_runtime.caches.received
            await client.put(f"/v1/apps/{keys.app_id}/client-event-types", headers=owner.headers(),
                             json={"event_types": ["level.done"]})
            await until(lambda: second_runtime.caches.received > heard, "the app's new client event types")
            event["events"][0]["id"] = "c-2"
            assert (await second.post("/v1/events", headers=bob, json=event)).status_code == 202


# --- what a warm authenticated request reads ----------------------------------------------------


CACHED_TABLES = ("api_keys", "apps", "player_token_epochs")


async def test_a_warm_authenticated_request_reads_no_credential_rows(client: httpx.AsyncClient, factory: Factory,
                                                                     runtime: Runtime) -> None:
    keys = await factory.app()
    alice = await factory.player_token(keys, "alice")
    admin = await factory.admin(keys.org_id, Role.ADMIN)
    calls = [(keys.server, "/v1/players/alice/account"), (alice, "/v1/players/alice/account"),
             (admin.headers(keys.app_id), "/v1/players/alice/account")]
    for headers, url in calls:
        assert (await client.get(url, headers=headers)).status_code == 200  # warm
    for headers, url in calls:
        with recorded_statements(runtime) as seen:
            assert (await client.get(url, headers=headers)).status_code == 200
        touched = [s for s in seen if any(f" {t} " in f" {s} ".replace('"', " ").replace("\n", " ")
                                          for t in CACHED_TABLES)]
        assert touched == [], touched
        if "Bearer ql_" in headers["Authorization"] or headers is alice:
            # Nothing for who is calling; the account itself is read on a bare connection (kit.prebuilt),
            # one statement that SQLAlchemy's events do not see (tests/foundation/test_edge_cost.py counts it).
            assert seen == [], seen
