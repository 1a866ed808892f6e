"""The account read (``GET /v1/players/{id}/account``) is the same through the fast lane as through
FastAPI: every request of the matrix is sent with the lane on and off (``both`` compares status,
body, the headers a client reads and the metrics' route), and the good ones were the lane's own."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from questline.kit.db import unit_of_work
from questline.kit.runtime import Runtime
from questline.tenancy import service as tenancy
from tests.conftest import Factory
from tests.leaderboards.test_fast_lane import both


async def test_account_reads_are_the_same_through_the_lane(client: httpx.AsyncClient, engine: FastAPI,
                                                           factory: Factory, runtime: Runtime) -> None:
    keys = await factory.app()
    other = await factory.app("Other Game")
    resp = await client.put("/v1/players/ann/account", headers=keys.server, json={
        "display_name": "Ann ✓", "timezone": "Europe/Paris", "leaderboard_visibility": "friends_only",
        "preferences": {"sound": False, "volume": 7}, "traits": {"team": "red", "level": 3}})
    assert resp.status_code == 200, resp.text
    await client.put("/v1/players/ben/account", headers=keys.server, json={"username": "ben"})
    await client.put("/v1/players/ann/account", headers=other.server, json={"display_name": "Other Ann"})
    ann = await factory.player_token(keys, "ann")
    ben = await factory.player_token(keys, "ben")

    good = [("/v1/players/ann/account", keys.server), ("/v1/players/ann/account", ann),
            ("/v1/players/ben/account", keys.server), ("/v1/players/ann/account", other.server),
            ("/v1/players/ann/account?unknown=1", ann)]
    for path, headers in good:
        for _ in range(2):  # cold, then from the caches
            reply, answered = await both(client, engine, runtime, "GET", path, headers)
            assert reply.status_code == 200 and answered, (path, reply.text)
    assert (await client.get("/v1/players/ann/account", headers=other.server)).json()["display_name"] == "Other Ann"

    refused = [("/v1/players/ann/account", ben, 404),  # another player's account
               ("/v1/players/nobody/account", keys.server, 404),
               ("/v1/players/bad%20id/account", keys.server, 422),
               ("/v1/players/ann/account", keys.client, 403),
               ("/v1/players/ann/account", {}, 401),
               ("/v1/players/ann/account", {"Authorization": "Bearer ql_sk_wrong"}, 401),
               ("/v1/players/ann%00/account", keys.server, 422)]
    for path, headers, status in refused:
        reply, _ = await both(client, engine, runtime, "GET", path, headers)
        assert reply.status_code == status, (path, reply.text)

    # A change is read at once; a revoked key is refused on both paths.
    await client.patch("/v1/players/ann/account", headers=ann, json={"display_name": "Ann 2"})
    reply, answered = await both(client, engine, runtime, "GET", "/v1/players/ann/account", keys.server)
    assert reply.json()["display_name"] == "Ann 2" and answered
    parsed = tenancy.parse_key(keys.server_key)
    assert parsed is not None
    async with unit_of_work(runtime.sessions) as session:
        await tenancy.revoke_key(session, runtime.clock, keys.app_id, parsed[1])
    reply, _ = await both(client, engine, runtime, "GET", "/v1/players/ann/account", keys.server)
    assert reply.status_code == 401 and reply.json()["code"] == "key_revoked"
    for method in ("HEAD", "OPTIONS", "DELETE"):
        reply, answered = await both(client, engine, runtime, method, "/v1/players/ann/account", ann)
        assert not answered
