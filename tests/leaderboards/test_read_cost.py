"""Issue 11 point 4: board reads come from the rank index and the process's cache of how players
are shown (privacy flags, names, friends, the viewer's partition trait): a warm read opens no
database connection at all. A change of any of those is seen by the next read, in this process
and (through Redis) in every other one.

Counted with the engine's own events: statements sent through a cursor and pool checkouts. A
read that checks out no connection sends the database nothing (no ping, no BEGIN).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from questline.app import create_app
from questline.kit.clock import ManualClock
from questline.kit.runtime import Runtime
from tests.conftest import Factory, lifespan
from tests.leaderboards.helpers import define, play, player, scored
from tests.leaderboards.tiers import backend, settings, tier  # noqa: F401  (fixtures)

T0 = "2026-03-10T10:00:00Z"


@dataclass
class Cost:
    statements: int = 0
    checkouts: int = 0


@contextmanager
def counting(runtime: Runtime) -> Iterator[Cost]:
    cost = Cost()

    def sent(*_args: Any) -> None:
        cost.statements += 1

    def checkout(*_args: Any) -> None:
        cost.checkouts += 1

    engine = runtime.engine.sync_engine
    sa.event.listen(engine, "before_cursor_execute", sent)
    sa.event.listen(engine, "checkout", checkout)
    try:
        yield cost
    finally:
        sa.event.remove(engine, "before_cursor_execute", sent)
        sa.event.remove(engine, "checkout", checkout)


async def read(client: httpx.AsyncClient, headers: dict[str, str], path: str, **params: Any) -> dict[str, Any]:
    resp = await client.get(path, headers=headers, params=params)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def rows(page: dict[str, Any]) -> list[tuple[int, str | None, str, int]]:
    return [(e["rank"], e["player_id"], e["display_name"], e["score"]) for e in page["items"]]


async def setup_board(client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> Any:
    keys = await factory.app()
    await define(client, keys, {"leaderboard": {
        "points": {"event_type": "match.end", "field": "data.points"},
        "teams": {"event_type": "match.end", "field": "data.points", "scope": {"type": "partition",
                                                                               "attribute": "team"}}}})
    for pid, team in (("ann", "red"), ("ben", "red"), ("cat", "blue"), ("dan", "red")):
        await player(client, keys, pid, traits={"team": team})
    await play(client, keys, runtime, [scored("ann", 40, T0), scored("ben", 30, T0), scored("cat", 20, T0),
                                       scored("dan", 10, T0)])
    return keys


async def test_a_warm_read_touches_no_database(client: httpx.AsyncClient, factory: Factory,
                                               runtime: Runtime) -> None:
    keys = await setup_board(client, factory, runtime)
    await runtime.caches.start()  # as the app's lifespan does: with Redis, listening for invalidations
    dan = await factory.player_token(keys, "dan")
    reads: list[tuple[dict[str, str], str, dict[str, Any]]] = [
        (keys.server, "/v1/leaderboards/points", {"limit": 10}),
        (keys.server, "/v1/leaderboards/points", {"limit": 10, "viewer": "dan"}),
        (keys.server, "/v1/leaderboards/points/players/ben", {"around": 2}),
        (dan, "/v1/leaderboards/points", {"limit": 2}),
        (dan, "/v1/leaderboards/points/players/dan", {"around": 5}),
        (dan, "/v1/leaderboards/teams", {}),  # the viewer's partition, from their traits
    ]
    first = [await read(client, headers, path, **params) for headers, path, params in reads]
    for (headers, path, params), expected in zip(reads, first, strict=True):
        with counting(runtime) as cost:
            again = await read(client, headers, path, **params)
        assert again == expected
        assert (cost.statements, cost.checkouts) == (0, 0), (path, params)
    assert rows(first[0]) == [(1, "ann", "Ann", 40), (2, "ben", "Ben", 30), (3, "cat", "Cat", 20),
                              (4, "dan", "Dan", 10)]
    assert [r[1] for r in rows(first[5])] == ["ann", "ben", "dan"] and first[5]["partition"] == "red"


async def test_privacy_and_names_changed_are_read_at_once(client: httpx.AsyncClient, factory: Factory,
                                                          runtime: Runtime) -> None:
    keys = await setup_board(client, factory, runtime)
    await runtime.caches.start()
    ben = await factory.player_token(keys, "ben")
    dan = await factory.player_token(keys, "dan")

    async def top(headers: dict[str, str] = keys.server, key: str = "points") -> list[tuple[Any, ...]]:
        return rows(await read(client, headers, f"/v1/leaderboards/{key}", limit=10))

    assert [r[1] for r in await top()] == ["ann", "ben", "cat", "dan"]
    assert [r[1] for r in await top(dan)] == ["ann", "ben", "cat", "dan"]
    # The player hides themself (their own token): gone for others, at once; still there for them.
    resp = await client.patch("/v1/players/ben/account", headers=ben, json={"leaderboard_visibility": "private"})
    assert resp.status_code == 200, resp.text
    assert [r[1] for r in await top()] == ["ann", "cat", "dan"]
    assert [r[1] for r in await top(ben)] == ["ann", "ben", "cat", "dan"]
    around = await read(client, dan, "/v1/leaderboards/points/players/dan", around=2)
    assert [(r[0], r[1]) for r in rows(around)] == [(1, "ann"), (3, "cat"), (4, "dan")]
    # Friends only: dan sees ben once they are friends, and not after they are not.
    await client.patch("/v1/players/ben/account", headers=ben, json={"leaderboard_visibility": "friends_only"})
    assert [r[1] for r in await top(dan)] == ["ann", "cat", "dan"]
    assert (await client.put("/v1/players/ben/friends/dan", headers=keys.server)).status_code == 200
    assert [r[1] for r in await top(dan)] == ["ann", "ben", "cat", "dan"]
    assert (await client.delete("/v1/players/ben/friends/dan", headers=keys.server)).status_code == 204
    assert [r[1] for r in await top(dan)] == ["ann", "cat", "dan"]
    # Names: a new username and an anonymous display are shown at once.
    await client.patch("/v1/players/ben/account", headers=ben, json={"leaderboard_visibility": "public",
                                                                    "username": "Benedict"})
    assert (await top())[1] == (2, "ben", "Benedict", 30)
    await client.patch("/v1/players/ann/account", headers=keys.server, json={"display_name_type": "anonymous"})
    assert (await top())[0] == (1, None, "Anonymous player", 40)
    await client.patch("/v1/players/cat/account", headers=keys.server, json={"show_on_global_leaderboard": False})
    assert [r[1] for r in await top()] == [None, "ben", "dan"]
    # A trait the server changes moves the viewer's default partition at once.
    assert (await read(client, dan, "/v1/leaderboards/teams"))["partition"] == "red"
    await client.patch("/v1/players/dan/account", headers=keys.server, json={"traits": {"team": "blue"}})
    assert (await read(client, dan, "/v1/leaderboards/teams"))["partition"] == "blue"


async def until(condition: Callable[[], bool], what: str) -> None:
    """Wait for the other engine to apply a published invalidation (asynchronous; bounded)."""
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(0.005)
    pytest.fail(f"never happened: {what}")


async def test_a_change_made_in_one_engine_is_read_in_another(client: httpx.AsyncClient, factory: Factory,
                                                               runtime: Runtime, clock: ManualClock) -> None:
    if runtime.settings.redis_url is None:
        pytest.skip("engines share invalidations through Redis (PostgreSQL + Redis)")
    keys = await setup_board(client, factory, runtime)
    second_runtime = Runtime.build(runtime.settings, clock)
    second_app = create_app(runtime=second_runtime, background=False)
    async with lifespan(second_app):
        transport = httpx.ASGITransport(app=second_app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://second.test") as second:
            dan = await factory.player_token(keys, "dan")

            async def seen_by_dan() -> list[tuple[int, str | None, str, int]]:
                return rows(await read(second, dan, "/v1/leaderboards/points", limit=10))

            async def on_the_first(method: str, path: str, **kwargs: Any) -> None:
                heard = second_runtime.caches.received
                resp = await client.request(method, path, headers=keys.server, **kwargs)
                assert resp.status_code in (200, 204), resp.text
                await until(lambda: second_runtime.caches.received > heard, f"{method} {path}")

            for _ in range(2):  # warm the second engine
                assert [r[1] for r in await seen_by_dan()] == ["ann", "ben", "cat", "dan"]
            with counting(second_runtime) as cost:
                await seen_by_dan()
            assert cost.checkouts == 0
            await on_the_first("PATCH", "/v1/players/ben/account", json={"leaderboard_visibility": "private"})
            assert [r[1] for r in await seen_by_dan()] == ["ann", "cat", "dan"]
            await on_the_first("PATCH", "/v1/players/ben/account",
                               json={"leaderboard_visibility": "friends_only", "username": "B2"})
            assert [r[1] for r in await seen_by_dan()] == ["ann", "cat", "dan"]
            await on_the_first("PUT", "/v1/players/ben/friends/dan")
            assert (await seen_by_dan())[1] == (2, "ben", "B2", 30)
