"""The fast lane (``kit.fastlane``) answers board reads exactly as FastAPI's routes do.

Every request of a matrix (good reads, every kind of caller, wrong and revoked credentials,
other apps' players, missing boards and players, bad query values, privacy, pagination, rate
limits, methods the lane leaves alone) is sent twice through the same engine: with the lane on
and with it off. Status, body and the headers a client may read must be the same; the good
reads must have been answered by the lane itself, not passed on.
"""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from questline.kit.db import unit_of_work
from questline.kit.fastlane import FastLane
from questline.kit.ratelimit import RateLimiter
from questline.kit.runtime import Runtime
from questline.tenancy import service as tenancy
from tests.conftest import AppKeys, Factory
from tests.leaderboards.helpers import define, play, player, scored

T0 = "2026-03-10T10:00:00Z"
SIGNIFICANT = ("content-type", "content-length", "x-request-id", "ratelimit-policy", "ratelimit", "retry-after",
               "www-authenticate", "access-control-allow-origin", "access-control-expose-headers", "location",
               "allow")


def counted(runtime: Runtime) -> dict[tuple[str, str, str], float]:
    """The engine's request counter by (method, route template, status)."""
    return {(s.labels["method"], s.labels["route"], s.labels["status"]): s.value
            for metric in runtime.metrics.requests.collect() for s in metric.samples if s.name.endswith("_total")}


def lane_of(engine: FastAPI) -> FastLane:
    lane = engine.state.fast_lane
    assert isinstance(lane, FastLane)
    return lane


async def both(client: httpx.AsyncClient, engine: FastAPI, runtime: Runtime, method: str, path: str,
               headers: dict[str, str], params: dict[str, Any] | None = None) -> tuple[httpx.Response, bool]:
    """The reply with the lane off, checked equal to the one with it on; and whether the lane answered."""
    lane = lane_of(engine)
    replies = []
    answered = False
    metered = []
    for enabled in (True, False):
        lane.enabled = enabled
        runtime.limiter = RateLimiter()  # both calls meet the same (fresh) rate-limit state
        before, counts = lane.answered, counted(runtime)
        resp = await client.request(method, path, headers={**headers, "X-Request-ID": "req-same",
                                                           "Origin": "https://game.example"}, params=params or None)
        if enabled:
            answered = lane.answered > before
        replies.append(resp)
        metered.append({k: v - counts.get(k, 0) for k, v in counted(runtime).items() if v != counts.get(k, 0)})
    lane.enabled = True
    on, off = replies
    where = f"{method} {path} {params}"
    assert on.status_code == off.status_code, (where, on.text, off.text)
    assert on.content == off.content, (where, on.text, off.text)
    for name in SIGNIFICANT:
        assert on.headers.get(name) == off.headers.get(name), (where, name, on.headers, off.headers)
    assert metered[0] == metered[1], (where, metered)  # counted under the same route template
    return off, answered


async def setup(client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> AppKeys:
    keys = await factory.app()
    await define(client, keys, {"leaderboard": {
        "points": {"event_type": "match.end", "field": "data.points"},
        "daily": {"event_type": "match.end", "field": "data.points", "period": "day"},
        "teams": {"event_type": "match.end", "field": "data.points",
                  "scope": {"type": "partition", "attribute": "team"}},
        "pals": {"event_type": "match.end", "field": "data.points", "scope": {"type": "friends"}}}})
    people = {"ann": {}, "ben": {"leaderboard_visibility": "private"},
              "cat": {"display_name_type": "anonymous"}, "dan": {"leaderboard_visibility": "friends_only"},
              "eve": {"show_on_global_leaderboard": False}, "fay": {}, "gus": {}}
    for index, (pid, fields) in enumerate(people.items()):
        await player(client, keys, pid, traits={"team": "red" if index % 2 else "blue"}, **fields)
    await play(client, keys, runtime, [scored(pid, 70 - 10 * i, T0) for i, pid in enumerate(people)])
    resp = await client.put("/v1/players/dan/friends/fay", headers=keys.server)
    assert resp.status_code == 200, resp.text
    return keys


async def test_board_reads_are_the_same_through_the_lane(client: httpx.AsyncClient, engine: FastAPI,
                                                          factory: Factory, runtime: Runtime) -> None:
    keys = await setup(client, factory, runtime)
    other = await factory.app("Other Game")
    await define(client, other, {"leaderboard": {"points": {"event_type": "match.end", "field": "data.points"}}})
    fay, ben, cat, ann = [await factory.player_token(keys, p) for p in ("fay", "ben", "cat", "ann")]
    stranger = await factory.player_token(other, "zed")
    first = (await client.get("/v1/leaderboards/points", headers=keys.server, params={"limit": 2})).json()
    assert first["next_cursor"]

    good: list[tuple[str, dict[str, str], dict[str, Any]]] = [
        ("/v1/leaderboards/points", keys.server, {}),
        ("/v1/leaderboards/points", keys.server, {"limit": 1}),
        ("/v1/leaderboards/points", keys.server, {"limit": "200"}),
        ("/v1/leaderboards/points", keys.server, {"limit": 2, "cursor": first["next_cursor"]}),
        ("/v1/leaderboards/points", keys.server, {"viewer": "ben"}),  # a private player sees themself
        ("/v1/leaderboards/points", keys.server, {"viewer": "nobody"}),
        ("/v1/leaderboards/points", keys.server, {"unknown": "x", "limit": "3"}),
        ("/v1/leaderboards/points", keys.client, {}),
        ("/v1/leaderboards/points", fay, {}),  # dan is friends_only and fay's friend
        ("/v1/leaderboards/points", ben, {"limit": 3}),
        ("/v1/leaderboards/points", cat, {}),  # anonymous: their own row names them to themself
        ("/v1/leaderboards/points", ann, {"viewer": "ben"}),  # a token reads as itself
        ("/v1/leaderboards/daily", keys.server, {}),
        ("/v1/leaderboards/daily", keys.server, {"period_key": "2026-03-09"}),
        ("/v1/leaderboards/teams", keys.server, {"partition": "red"}),
        ("/v1/leaderboards/teams", fay, {}),
        ("/v1/leaderboards/pals", fay, {}),
        ("/v1/leaderboards/points/players/fay", fay, {"around": 2}),
        ("/v1/leaderboards/points/players/ben", ben, {"around": 50}),
        ("/v1/leaderboards/points/players/cat", keys.server, {"around": 1}),
        ("/v1/leaderboards/points/players/nobody", keys.server, {"around": 3}),
        ("/v1/leaderboards/teams/players/fay", fay, {"around": 1}),
        ("/v1/leaderboards/pals/players/dan", keys.server, {"around": 1}),
    ]
    for path, headers, params in good:
        for _ in range(2):  # cold, then from the caches and rendered pages
            resp, answered = await both(client, engine, runtime, "GET", path, headers, params)
            assert resp.status_code == 200, (path, params, resp.text)
            assert answered, (path, params)

    refused: list[tuple[str, dict[str, str], dict[str, Any], int]] = [
        ("/v1/leaderboards/points", {}, {}, 401),
        ("/v1/leaderboards/points", {"Authorization": "Bearer ql_sk_nonsense"}, {}, 401),
        ("/v1/leaderboards/points", {"Authorization": "Basic abc"}, {}, 401),
        ("/v1/leaderboards/points", {"Authorization": "Bearer " + keys.server_key[:-2] + "xx"}, {}, 401),
        ("/v1/leaderboards/points", {"Authorization": "Bearer e30.e30.e30"}, {}, 401),
        ("/v1/leaderboards/points", keys.server, {"limit": 0}, 422),
        ("/v1/leaderboards/points", keys.server, {"limit": 201}, 422),
        ("/v1/leaderboards/points", keys.server, {"limit": "ten"}, 422),
        ("/v1/leaderboards/points", keys.server, {"limit": ""}, 422),
        ("/v1/leaderboards/points", keys.server, {"cursor": "not-a-cursor"}, 400),
        ("/v1/leaderboards/points", keys.server, {"viewer": "bad id!"}, 422),
        ("/v1/leaderboards/points", keys.server, {"period_key": "2026/03"}, 422),
        ("/v1/leaderboards/points", keys.server, {"partition": "x" * 129}, 422),
        ("/v1/leaderboards/points", keys.client, {"viewer": "ann"}, 403),
        ("/v1/leaderboards/nothing", keys.server, {}, 404),
        ("/v1/leaderboards/Bad%20Key", keys.server, {}, 422),
        ("/v1/leaderboards/points", other.server, {"viewer": "ann"}, 200),  # its own board of that name
        ("/v1/leaderboards/teams", keys.server, {}, 422),  # no partition, no viewer
        ("/v1/leaderboards/pals", keys.server, {}, 422),  # friends boards need a viewer
        ("/v1/leaderboards/points/players/ann", fay, {}, 404),  # another player's place
        ("/v1/leaderboards/points/players/ann", stranger, {}, 404),  # another app's player
        ("/v1/leaderboards/points/players/ann", keys.client, {}, 403),
        ("/v1/leaderboards/points/players/ann", keys.server, {"around": 51}, 422),
        ("/v1/leaderboards/points/players/ann", keys.server, {"around": -1}, 422),
        ("/v1/leaderboards/points/players/bad%20id", keys.server, {}, 422),
        ("/v1/leaderboards/points/players/ann", keys.server, {"period_key": "x" * 33}, 422),
        ("/v1/leaderboards/points?limit=1%00", keys.server, {}, 422),
    ]
    for path, headers, params, status in refused:
        resp, _ = await both(client, engine, runtime, "GET", path, headers, params)
        assert resp.status_code == status, (path, params, resp.text)

    # Methods and shapes the lane leaves to FastAPI: the same answers either way.
    for method, path, status in (("HEAD", "/v1/leaderboards/points", 405), ("POST", "/v1/leaderboards/points", 405),
                                 ("OPTIONS", "/v1/leaderboards/points", 405),
                                 ("GET", "/v1/leaderboards/points/", 307), ("GET", "/v1/leaderboards", 200),
                                 ("GET", "/v1/leaderboards/points/players/", 404)):
        resp, answered = await both(client, engine, runtime, method, path, keys.server)
        assert resp.status_code == status, (method, path, resp.text)
        assert not answered


async def test_revoked_credentials_and_rate_limits_are_the_same(client: httpx.AsyncClient, engine: FastAPI,
                                                                factory: Factory, runtime: Runtime) -> None:
    keys = await setup(client, factory, runtime)
    fay = await factory.player_token(keys, "fay")
    ann = await factory.player_token(keys, "ann")
    for path in ("/v1/leaderboards/points", "/v1/leaderboards/points/players/fay"):
        resp, answered = await both(client, engine, runtime, "GET", path, fay)
        assert resp.status_code == 200 and answered
    # The player's tokens revoked: refused on both paths (the lane's caches heard of it).
    assert (await client.delete("/v1/players/fay/tokens", headers=keys.server)).status_code == 204
    resp, _ = await both(client, engine, runtime, "GET", "/v1/leaderboards/points", fay)
    assert resp.status_code == 401 and resp.json()["code"] == "token_revoked"
    # The server key revoked.
    parsed = tenancy.parse_key(keys.server_key)
    assert parsed is not None
    async with unit_of_work(runtime.sessions) as session:
        await tenancy.revoke_key(session, runtime.clock, keys.app_id, parsed[1])
    resp, _ = await both(client, engine, runtime, "GET", "/v1/leaderboards/points", keys.server)
    assert resp.status_code == 401 and resp.json()["code"] == "key_revoked"

    # A player past their rate limit: the same 429, Retry-After and RateLimit fields on both paths.
    # (ann's token was minted by the key now revoked: it is refused too, so mint with a new app.)
    resp, _ = await both(client, engine, runtime, "GET", "/v1/leaderboards/points", ann)
    assert resp.status_code == 401 and resp.json()["code"] == "token_revoked"
    keys = await setup(client, factory, runtime)
    ann = await factory.player_token(keys, "ann")
    runtime.settings = runtime.settings.model_copy(update={"rate_limit_per_player": "2/minute"})
    lane = lane_of(engine)
    seen: dict[bool, list[tuple[int, bytes, str | None, str | None]]] = {}
    for enabled in (True, False):
        lane.enabled = enabled
        runtime.limiter = RateLimiter()
        seen[enabled] = []
        for _ in range(3):
            resp = await client.get("/v1/leaderboards/points", headers={**ann, "X-Request-ID": "req-same"})
            seen[enabled].append((resp.status_code, resp.content, resp.headers.get("retry-after"),
                                  resp.headers.get("ratelimit")))
    lane.enabled = True
    assert seen[True] == seen[False]
    assert [s[0] for s in seen[True]] == [200, 200, 429]
