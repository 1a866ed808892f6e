from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx

from questline.kit.clock import ManualClock
from questline.kit.db import unit_of_work
from questline.kit.runtime import Runtime
from questline.leaderboards.schemas import ArchivePage, BoardPage
from questline.leaderboards.service import boards_of
from questline.leaderboards.service import roll_over as roll_over_boards
from tests.conftest import Factory, problem
from tests.leaderboards.helpers import board, define, play, player, ranks, scored

T0 = "2026-03-10T10:00:00Z"
T1 = "2026-03-10T10:05:00Z"
T2 = "2026-03-10T10:10:00Z"


async def test_sum_board_ties_go_to_who_reached_the_score_first(client: httpx.AsyncClient, factory: Factory,
                                                                 runtime: Runtime) -> None:
    keys = await factory.app()
    await define(client, keys, {"leaderboard": {"points": {"event_type": "match.end", "field": "data.points",
                                                           "operator": "sum", "name": "Points"}}})
    # carol reaches 100 first (one event), alice at T1, bob at T2: equal scores rank by arrival.
    await play(client, keys, runtime, [
        scored("bob", 60, T0), scored("alice", 40, T0), scored("carol", 100, T0),
        scored("alice", 60, T1), scored("bob", 40, T2), scored("dave", 30, T2),
    ])
    page = await board(client, keys.server, "points")
    assert ranks(page) == [(1, "carol", 100), (2, "alice", 100), (3, "bob", 100), (4, "dave", 30)]
    assert page["period"] == "all" and page["period_key"] == "all" and page["resets_at"] is None
    assert page["ranked"] == 4 and page["items"][0]["display_name"] == "carol"
    # The order survives a rebuild of the index from the database.
    await boards_of(runtime).forget(keys.app_id)
    assert ranks(await board(client, keys.server, "points")) == ranks(page)


async def test_operators_order_and_min_score(client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    keys = await factory.app()
    await define(client, keys, {"leaderboard": {
        "best": {"event_type": "match.end", "field": "data.points", "operator": "best"},
        "fastest": {"event_type": "match.end", "field": "data.time", "operator": "best", "order": "asc"},
        "last": {"event_type": "match.end", "field": "data.points", "operator": "set"},
        "matches": {"event_type": "match.end", "operator": "increment", "min_score": 2},
        "big": {"event_type": "match.end", "operator": "increment",
                "filter": {"field": "data.points", "op": "gte", "value": 50}},
    }})
    await play(client, keys, runtime, [
        scored("alice", 80, T0, time=31.5), scored("alice", 20, T1, time=29.25),
        scored("bob", 50, T0, time=40), scored("bob", 90, T2, time=45),
        scored("carol", 10, T0, time="n/a"),
    ])
    assert ranks(await board(client, keys.server, "best")) == [(1, "bob", 90), (2, "alice", 80), (3, "carol", 10)]
    # data.time: 29.25 -> 29 (integers; scale would keep decimals); lowest first; carol sent no number.
    assert ranks(await board(client, keys.server, "fastest")) == [(1, "alice", 29), (2, "bob", 40)]
    assert ranks(await board(client, keys.server, "last")) == [(1, "bob", 90), (2, "alice", 20), (3, "carol", 10)]
    # carol played once: below min_score 2, not ranked.
    assert ranks(await board(client, keys.server, "matches")) == [(1, "alice", 2), (2, "bob", 2)]
    assert ranks(await board(client, keys.server, "big")) == [(1, "bob", 2), (2, "alice", 1)]


async def test_stat_board_ranks_by_what_the_stat_gained_in_the_period(client: httpx.AsyncClient, factory: Factory,
                                                                       runtime: Runtime) -> None:
    keys = await factory.app()
    await define(client, keys, {
        "stat": {"kills": {"event_type": "match.end", "aggregation": "sum", "field": "data.kills"}},
        "leaderboard": {"weekly-kills": {"stat": "kills", "operator": "sum", "period": "week"},
                        "career-kills": {"stat": "kills", "operator": "set"}},
    })
    await play(client, keys, runtime, [scored("alice", 0, "2026-03-03T10:00:00Z", kills=7),  # the week before
                                       scored("alice", 0, T0, kills=3), scored("bob", 0, T0, kills=5)])
    weekly = await board(client, keys.server, "weekly-kills")
    assert weekly["period_key"] == "2026-W11"
    assert ranks(weekly) == [(1, "bob", 5), (2, "alice", 3)]
    assert weekly["resets_at"] == "2026-03-16T00:00:00Z"
    assert ranks(await board(client, keys.server, "career-kills")) == [(1, "alice", 10), (2, "bob", 5)]
    previous = await board(client, keys.server, "weekly-kills", period_key="2026-W10")
    assert ranks(previous) == [(1, "alice", 7)] and previous["resets_at"] is None


async def test_privacy_in_every_read(client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    keys = await factory.app()
    await define(client, keys, {"leaderboard": {"points": {"event_type": "match.end", "field": "data.points"}}})
    await player(client, keys, "ann", real_name="Ann Real", display_name_type="real_name")
    await player(client, keys, "pat", leaderboard_visibility="private")
    await player(client, keys, "fred", leaderboard_visibility="friends_only")
    await player(client, keys, "nogl", show_on_global_leaderboard=False)
    await player(client, keys, "anon", display_name_type="anonymous")
    await player(client, keys, "zoe")
    resp = await client.put("/v1/players/zoe/friends/fred", headers=keys.server)
    assert resp.status_code == 200 and resp.json()["friends"] == ["fred"]
    await play(client, keys, runtime, [scored(p, s, T0) for p, s in
                                       [("pat", 90), ("fred", 80), ("nogl", 70), ("anon", 60), ("ann", 50),
                                        ("zoe", 10)]])

    public = await board(client, keys.client, "points")
    assert [(e["rank"], e["player_id"], e["display_name"]) for e in public["items"]] == [
        (4, None, "Anonymous player"), (5, "ann", "Ann Real"), (6, "zoe", "Zoe")]
    assert public["me"] is None and public["ranked"] == 6

    # A friend sees fred; pat (private) sees only themself added, with their true rank.
    zoe = await factory.player_token(keys, "zoe")
    as_zoe = await board(client, zoe, "points")
    assert [e["player_id"] for e in as_zoe["items"]] == ["fred", None, "ann", "zoe"]
    assert as_zoe["me"]["rank"] == 6 and as_zoe["me"]["is_me"] is True
    pat = await factory.player_token(keys, "pat")
    as_pat = await board(client, pat, "points")
    assert [e["player_id"] for e in as_pat["items"]] == ["pat", None, "ann", "zoe"]
    assert as_pat["me"] == as_pat["items"][0] and as_pat["me"]["rank"] == 1
    place = (await client.get("/v1/leaderboards/points/players/nogl", headers=keys.server)).json()
    assert place["me"]["rank"] == 3 and place["me"]["score"] == 70

    # The server reads as a named viewer; a publishable key may not pretend to be one.
    assert (await board(client, keys.server, "points", viewer="zoe"))["items"] == as_zoe["items"]
    problem(await client.get("/v1/leaderboards/points", headers=keys.client, params={"viewer": "zoe"}), 403,
            "viewer_not_allowed")
    # A player reads only their own place.
    problem(await client.get("/v1/leaderboards/points/players/zoe", headers=pat), 404)

    # Privacy changes apply at once; unfriending hides fred from zoe again.
    await player(client, keys, "pat", leaderboard_visibility="public")
    assert (await board(client, keys.client, "points"))["items"][0]["player_id"] == "pat"
    assert (await client.delete("/v1/players/fred/friends/zoe", headers=keys.server)).status_code == 204
    assert "fred" not in [e["player_id"] for e in (await board(client, zoe, "points"))["items"]]


async def test_pagination_and_around_me(client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    keys = await factory.app()
    await define(client, keys, {"leaderboard": {"points": {"event_type": "match.end", "field": "data.points"}}})
    await player(client, keys, "p05", leaderboard_visibility="private")
    await play(client, keys, runtime, [scored(f"p{i:02d}", 100 - i, T0) for i in range(1, 21)])
    first = await board(client, keys.client, "points", limit=4)
    BoardPage.model_validate(first)  # replies are built without pydantic: they still match the documented schema
    assert [e["rank"] for e in first["items"]] == [1, 2, 3, 4] and first["next_cursor"]
    second = await board(client, keys.client, "points", limit=4, cursor=first["next_cursor"])
    assert [e["rank"] for e in second["items"]] == [6, 7, 8, 9]  # p05 is private
    seen, cursor = [], None
    while True:
        page = await board(client, keys.client, "points", limit=7, **({"cursor": cursor} if cursor else {}))
        seen += [e["rank"] for e in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [r for r in range(1, 21) if r != 5]
    problem(await client.get("/v1/leaderboards/points", headers=keys.client, params={"cursor": "bad!"}), 400,
            "invalid_cursor")

    around = (await client.get("/v1/leaderboards/points/players/p07", headers=keys.server,
                               params={"around": 2})).json()
    assert [e["rank"] for e in around["items"]] == [4, 6, 7, 8, 9]  # rank 5 is hidden from p07
    assert around["me"]["rank"] == 7 and around["me"]["player_id"] == "p07"
    top = (await client.get("/v1/leaderboards/points/players/p01", headers=keys.server, params={"around": 2})).json()
    assert [e["rank"] for e in top["items"]] == [1, 2, 3]
    nobody = (await client.get("/v1/leaderboards/points/players/ghost", headers=keys.server)).json()
    assert nobody["me"] is None and nobody["items"] == []
    problem(await client.get("/v1/leaderboards/nope", headers=keys.server), 404, "leaderboard_not_found")


async def test_friends_and_partition_scopes(client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    keys = await factory.app()
    await define(client, keys, {"leaderboard": {
        "friends": {"event_type": "match.end", "field": "data.points", "scope": {"type": "friends"}},
        "gyms": {"event_type": "match.end", "field": "data.points",
                 "scope": {"type": "partition", "attribute": "gym"}},
    }})
    for pid, gym in [("amy", "north"), ("ben", "north"), ("cat", "south"), ("dan", "south"), ("eve", None)]:
        await player(client, keys, pid, **({"traits": {"gym": gym}} if gym else {}))
    await player(client, keys, "dan", leaderboard_visibility="private", traits={"gym": "south"})
    for a, b in [("amy", "cat"), ("amy", "dan"), ("amy", "eve")]:
        assert (await client.put(f"/v1/players/{a}/friends/{b}", headers=keys.server)).status_code == 200
    problem(await client.put("/v1/players/amy/friends/amy", headers=keys.server), 422, "cannot_befriend_self")
    await play(client, keys, runtime, [scored(p, s, T0) for p, s in
                                       [("amy", 10), ("ben", 50), ("cat", 30), ("dan", 90), ("eve", 20)]])

    amy = await factory.player_token(keys, "amy")
    friends = await board(client, amy, "friends")
    # ben is not amy's friend; dan is, but private.
    assert ranks(friends) == [(1, "cat", 30), (2, "eve", 20), (3, "amy", 10)]
    assert friends["me"]["rank"] == 3
    assert (await client.get("/v1/players/cat/friends", headers=keys.server)).json()["friends"] == ["amy"]
    problem(await client.get("/v1/leaderboards/friends", headers=keys.client), 422, "viewer_required")

    assert ranks(await board(client, amy, "gyms")) == [(1, "ben", 50), (2, "amy", 10)]  # amy's own gym
    south = await board(client, keys.client, "gyms", partition="south")
    # dan (private) keeps first place in the south without being shown.
    assert ranks(south) == [(2, "cat", 30)] and south["ranked"] == 2 and south["partition"] == "south"
    problem(await client.get("/v1/leaderboards/gyms", headers=keys.client), 422, "partition_required")
    # Moving gym moves the player's entry on their next score.
    await player(client, keys, "ben", traits={"gym": "south"})
    await play(client, keys, runtime, [scored("ben", 5, T1)])
    assert ranks(await board(client, keys.client, "gyms", partition="south")) == [(2, "ben", 55), (3, "cat", 30)]
    assert ranks(await board(client, amy, "gyms")) == [(1, "amy", 10)]


async def roll_over(runtime: Runtime) -> int:
    """The rollover job's body (job claims in ``job_runs`` are shared by all tests on one PostgreSQL database)."""
    async with unit_of_work(runtime.sessions) as session:
        return await roll_over_boards(session, runtime, runtime.clock.now())


async def test_daily_board_rolls_over_at_local_midnight(client: httpx.AsyncClient, factory: Factory,
                                                        runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app()
    await define(client, keys, {"leaderboard": {"daily": {
        "event_type": "match.end", "field": "data.points", "period": "day", "timezone": "America/New_York"}}})
    # 2026-03-10 23:30 in New York is 03:30 UTC on the 11th.
    clock.set(datetime(2026, 3, 11, 3, 30, tzinfo=UTC))
    await play(client, keys, runtime, [scored("ann", 40, "2026-03-11T03:00:00Z"),
                                       scored("bob", 70, "2026-03-11T03:20:00Z"),
                                       scored("ann", 45, "2026-03-11T03:25:00Z")])
    page = await board(client, keys.server, "daily")
    assert page["period_key"] == "2026-03-10" and page["resets_at"] == "2026-03-11T04:00:00Z"
    assert ranks(page) == [(1, "ann", 85), (2, "bob", 70)]
    await roll_over(runtime)
    problem(await client.get("/v1/leaderboards/daily/archive/2026-03-10", headers=keys.server), 404,
            "archive_not_found")

    clock.set(datetime(2026, 3, 11, 4, 0, 5, tzinfo=UTC))  # just after local midnight
    # Two schedulers at once (two engines on one database): the period is archived once.
    other = Runtime.build(runtime.settings, clock)
    try:
        done = await asyncio.gather(roll_over(runtime), roll_over(other))
    finally:
        await other.close()
    assert sorted(done) == [0, 1]
    archived = (await client.get("/v1/leaderboards/daily/archive/2026-03-10", headers=keys.client)).json()
    ArchivePage.model_validate(archived)
    assert ranks(archived) == [(1, "ann", 85), (2, "bob", 70)]
    fresh = await board(client, keys.server, "daily")
    assert fresh["period_key"] == "2026-03-11" and fresh["items"] == [] and fresh["ranked"] == 0
    assert fresh["resets_at"] == "2026-03-12T04:00:00Z"
    await play(client, keys, runtime, [scored("bob", 5, "2026-03-11T04:01:00Z")])
    assert ranks(await board(client, keys.server, "daily")) == [(1, "bob", 5)]
    clock.set(datetime(2026, 3, 11, 4, 1, 30, tzinfo=UTC))
    assert await roll_over(runtime) == 0
    outbox = (await client.get("/v1/outbox", headers=keys.server)).json()["items"]
    closed = [m for m in outbox if m["type"] == "leaderboard.period_closed"]
    assert len(closed) == 1 and closed[0]["data"]["leaders"] == [{"partition": "", "player_id": "ann", "score": 85}]
    # The scheduler runs the same body as a job.
    from questline.roles import build_scheduler

    assert "leaderboards.roll_over" in build_scheduler(runtime).jobs


async def test_definition_validation(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    bad = [
        {"event_type": "x", "stat": "y"},
        {"event_type": "x", "operator": "best"},
        {"event_type": "x", "period": "custom"},
        {"event_type": "x", "timezone": "Mars/Olympus"},
        {"event_type": "x", "scope": {"type": "partition"}},
        {"stat": "missing"},
    ]
    for body in bad:
        resp = await client.put("/v1/definitions/leaderboard/b", headers=keys.server, json=body)
        problem(resp, 422, "invalid_definition")
