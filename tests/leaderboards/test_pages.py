"""Rendered board reads (``leaderboards.pages``) are reused only while nothing they show changed.

A top page and an around-me read are kept per app after the first read; a score change (the
worker's merge into the index), a privacy or name change, a friendship, and the end of a period
must each be seen by the next read, in this engine and (PostgreSQL + Redis) in another one.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from questline.app import create_app
from questline.kit.clock import ManualClock
from questline.kit.runtime import Runtime
from questline.leaderboards.pages import PAGES, Rendered
from tests.conftest import AppKeys, Factory, lifespan
from tests.leaderboards.helpers import define, play, player, scored
from tests.leaderboards.test_read_cost import until
from tests.leaderboards.tiers import backend, settings, tier  # noqa: F401  (fixtures)

T0 = "2026-03-10T10:00:00Z"


async def read(client: httpx.AsyncClient, headers: dict[str, str], path: str, **params: Any) -> dict[str, Any]:
    resp = await client.get(path, headers=headers, params=params)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def names(page: dict[str, Any]) -> list[tuple[int, str | None, int]]:
    return [(e["rank"], e["player_id"], e["score"]) for e in page["items"]]


def rendered(runtime: Runtime, keys: AppKeys) -> Rendered | None:
    found, held = PAGES.of(runtime.caches).peek(keys.app_id)
    return held if found else None


async def setup(client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> AppKeys:
    keys = await factory.app()
    await define(client, keys, {"leaderboard": {
        "points": {"event_type": "match.end", "field": "data.points"},
        "daily": {"event_type": "match.end", "field": "data.points", "period": "day"}}})
    for pid in ("ann", "ben", "cat", "dan"):
        await player(client, keys, pid)
    await play(client, keys, runtime, [scored("ann", 40, T0), scored("ben", 30, T0), scored("cat", 20, T0),
                                       scored("dan", 10, T0)])
    await runtime.caches.start()  # as the app's lifespan does: with Redis, listening for invalidations
    return keys


async def test_a_score_change_is_read_at_once(client: httpx.AsyncClient, factory: Factory,
                                              runtime: Runtime) -> None:
    keys = await setup(client, factory, runtime)
    dan = await factory.player_token(keys, "dan")
    for _ in range(2):
        assert names(await read(client, dan, "/v1/leaderboards/points", limit=3)) == [
            (1, "ann", 40), (2, "ben", 30), (3, "cat", 20)]
        place = await read(client, dan, "/v1/leaderboards/points/players/dan", around=1)
        assert names(place) == [(3, "cat", 20), (4, "dan", 10)] and place["me"]["rank"] == 4
    held = rendered(runtime, keys)
    assert held is not None and held.tops and held.places  # the second reads came from here
    # dan overtakes everyone: the rendered reads are dropped, the next ones show it.
    await play(client, keys, runtime, [scored("dan", 100, T0)])
    top = await read(client, dan, "/v1/leaderboards/points", limit=3)
    assert names(top) == [(1, "dan", 110), (2, "ann", 40), (3, "ben", 30)]
    assert top["items"][0]["is_me"] and top["me"]["rank"] == 1
    place = await read(client, dan, "/v1/leaderboards/points/players/dan", around=1)
    assert names(place) == [(1, "dan", 110), (2, "ann", 40)]
    # A new player entering the board.
    await player(client, keys, "eve")
    await play(client, keys, runtime, [scored("eve", 35, T0)])
    assert names(await read(client, keys.server, "/v1/leaderboards/points", limit=4))[2:] == [
        (3, "eve", 35), (4, "ben", 30)]


async def test_privacy_names_and_friends_are_read_at_once(client: httpx.AsyncClient, factory: Factory,
                                                          runtime: Runtime) -> None:
    keys = await setup(client, factory, runtime)
    ben, dan = await factory.player_token(keys, "ben"), await factory.player_token(keys, "dan")

    async def top(headers: dict[str, str]) -> list[Any]:
        first = names(await read(client, headers, "/v1/leaderboards/points"))
        assert names(await read(client, headers, "/v1/leaderboards/points")) == first  # from the kept page
        return [r[1] for r in first]

    assert await top(dan) == ["ann", "ben", "cat", "dan"]
    await client.patch("/v1/players/ben/account", headers=ben, json={"leaderboard_visibility": "friends_only"})
    assert await top(keys.server) == ["ann", "cat", "dan"]
    assert await top(ben) == ["ann", "ben", "cat", "dan"]  # hidden from the public, not from themself
    assert await top(dan) == ["ann", "cat", "dan"]
    assert (await client.put("/v1/players/ben/friends/dan", headers=keys.server)).status_code == 200
    assert await top(dan) == ["ann", "ben", "cat", "dan"]  # a friend sees a friends_only player
    assert await top(keys.server) == ["ann", "cat", "dan"]
    await client.patch("/v1/players/cat/account", headers=keys.server, json={"display_name_type": "anonymous"})
    assert await top(keys.server) == ["ann", None, "dan"]
    assert await top(dan) == ["ann", "ben", None, "dan"]
    page = await read(client, dan, "/v1/leaderboards/points/players/dan", around=1)
    assert [(r["player_id"], r["display_name"]) for r in page["items"]] == [(None, "Anonymous player"), ("dan", "Dan")]


async def test_a_new_period_is_read_at_its_start(client: httpx.AsyncClient, factory: Factory,
                                                 runtime: Runtime, clock: ManualClock) -> None:
    keys = await setup(client, factory, runtime)
    for _ in range(2):
        page = await read(client, keys.server, "/v1/leaderboards/daily")
        assert page["period_key"] == "2026-03-10" and len(page["items"]) == 4
    clock.advance(days=1)
    page = await read(client, keys.server, "/v1/leaderboards/daily")
    assert (page["period_key"], page["items"], page["ranked"]) == ("2026-03-11", [], 0)
    yesterday = await read(client, keys.server, "/v1/leaderboards/daily", period_key="2026-03-10")
    assert len(yesterday["items"]) == 4 and yesterday["resets_at"] is None  # no longer the current period
    await play(client, keys, runtime, [scored("cat", 5, "2026-03-11T09:00:00Z")])
    assert names(await read(client, keys.server, "/v1/leaderboards/daily")) == [(1, "cat", 5)]


async def test_a_score_change_made_by_another_engine_is_read(client: httpx.AsyncClient, factory: Factory,
                                                             runtime: Runtime, clock: ManualClock) -> None:
    if runtime.settings.redis_url is None:
        pytest.skip("engines share the index and invalidations through Redis (PostgreSQL + Redis)")
    keys = await setup(client, factory, runtime)
    second_runtime = Runtime.build(runtime.settings, clock)
    second_app = create_app(runtime=second_runtime, background=False)
    async with lifespan(second_app):
        transport = httpx.ASGITransport(app=second_app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://second.test") as second:
            for _ in range(2):
                assert [r[1] for r in names(await read(second, keys.server, "/v1/leaderboards/points"))] == [
                    "ann", "ben", "cat", "dan"]
            assert rendered(second_runtime, keys) is not None
            heard = second_runtime.caches.received
            await play(client, keys, runtime, [scored("dan", 100, T0)])  # the first engine's worker
            await until(lambda: second_runtime.caches.received > heard, "the index change")
            assert names(await read(second, keys.server, "/v1/leaderboards/points"))[0] == (1, "dan", 110)
