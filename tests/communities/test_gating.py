"""Gating: each part of the requirement refuses on its own, and the shop and battle pass call it."""

from __future__ import annotations

from typing import Any

import httpx

from questline.kit.runtime import Runtime
from tests.battlepass.helpers import SEASON
from tests.battlepass.helpers import configure as configure_pass
from tests.communities.helpers import create, idem, join, points
from tests.conftest import AppKeys, Factory, problem
from tests.pipeline.helpers import send, settle
from tests.shop.helpers import snapshot

CONFIG: dict[str, Any] = {
    "xp_track": {"xp": {"curve": {"type": "linear", "base": 100}}},
    "xp_rule": {"win-xp": {"track": "xp", "event_type": "match.won", "amount": 100}},
    "challenge": {"first-win": {"name": "First win",
                                "objectives": [{"type": "count", "event_type": "match.won", "target": 1}]}},
}


async def check(client: httpx.AsyncClient, keys: AppKeys, player: str, requirement: dict[str, Any]) -> list[str]:
    resp = await client.post("/v1/gating/check", headers=keys.server,
                             json={"player_id": player, "requirement": requirement})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["allowed"] == (not body["unmet"])
    unmet: list[str] = body["unmet"]
    return unmet


async def setup(client: httpx.AsyncClient, keys: AppKeys) -> None:
    await points(client, keys)
    resp = await client.post("/v1/definitions:bulk", headers=keys.server, json={"definitions": CONFIG})
    assert resp.status_code == 200, resp.text


async def test_each_part_of_a_requirement(client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    keys = await factory.app()
    await setup(client, keys)
    guild = await create(client, keys.server, slug="guild", auto_approve=False)
    await create(client, keys.server, slug="other")
    for player in ("ana", "ben"):
        assert (await client.put(f"/v1/players/{player}/account", headers=keys.server, json={})).status_code == 200

    assert await check(client, keys, "ana", {}) == []
    # Communities: an active member of any listed community (by id or slug); pending is not enough.
    assert await check(client, keys, "ana", {"communities": [guild["id"], "other"]})
    assert (await join(client, keys.server, "guild", player_id="ana")).json()["status"] == "pending"
    assert await check(client, keys, "ana", {"communities": ["guild"]}) == ["an active member of one of: guild"]
    await client.post("/v1/communities/guild/members/ana/approve", headers=keys.server)
    assert await check(client, keys, "ana", {"communities": [guild["id"]]}) == []
    assert await check(client, keys, "ana", {"communities": ["other", "guild"]}) == []
    # Whitelist.
    assert await check(client, keys, "ben", {"whitelist": ["ana"]}) == ["not on the whitelist"]
    assert await check(client, keys, "ana", {"whitelist": ["ana"]}) == []
    # Minimum level on a track; completed challenges.
    requirement = {"min_level": {"track": "xp", "level": 2}, "completed_challenges": ["first-win"]}
    assert await check(client, keys, "ana", requirement) == ["level 2 on xp (has 1)",
                                                             "completed challenges: first-win"]
    await send(client, keys, [{"id": "w1", "player_id": "ana", "type": "match.won"}])
    await settle(runtime)
    assert await check(client, keys, "ana", requirement) == []
    # All parts at once: each unmet one is listed.
    everything = {"communities": ["guild"], "whitelist": ["ana"], **requirement}
    assert await check(client, keys, "ana", everything) == []
    assert len(await check(client, keys, "ben", everything)) == 4


async def test_the_shop_refuses_gated_purchases(client: httpx.AsyncClient, factory: Factory,
                                                runtime: Runtime) -> None:
    keys = await factory.app()
    await setup(client, keys)
    await create(client, keys.server, slug="guild")
    items = {"guild-sword": {"name": "Guild sword", "price": {"currency": "points", "amount": 100},
                             "gating": {"communities": ["guild"]}}}
    resp = await client.post("/v1/definitions:bulk", headers=keys.server, json={"definitions": {"item": items}})
    assert resp.status_code == 200, resp.text
    resp = await client.post("/v1/ledger/grants", headers=idem(keys.server),
                             json={"player_id": "ana", "currency": "points", "amount": 500})
    assert resp.status_code == 201
    token = await factory.player_token(keys, "ana")
    before = await snapshot(runtime, keys.app_id)
    body = problem(await client.post("/v1/players/ana/shop/orders", headers=idem(token), json={"item": "guild-sword"}),
                   403, "gated")
    assert body["unmet"] == ["an active member of one of: guild"]
    assert await snapshot(runtime, keys.app_id) == before
    assert (await join(client, token, "guild")).status_code == 201
    resp = await client.post("/v1/players/ana/shop/orders", headers=idem(token), json={"item": "guild-sword"})
    assert resp.status_code == 201 and resp.json()["status"] == "completed"


async def test_the_battle_pass_refuses_gated_premium_boosts_and_claims(client: httpx.AsyncClient, factory: Factory,
                                                                        runtime: Runtime) -> None:
    keys = await factory.app()
    await configure_pass(client, keys, season={**SEASON, "gating": {"whitelist": ["vip"]}})
    for player in ("vip", "pleb"):
        resp = await client.post("/v1/ledger/grants", headers=idem(keys.server),
                                 json={"player_id": player, "currency": "points", "amount": 10_000})
        assert resp.status_code == 201
    await send(client, keys, [{"id": f"w-{p}", "player_id": p, "type": "match.won", "data": {"score": 1200},
                               "timestamp": "2026-03-10T12:00:00Z"} for p in ("vip", "pleb")])
    await settle(runtime)
    pleb = await factory.player_token(keys, "pleb")
    base = "/v1/players/pleb/battle-pass/s1"
    problem(await client.post(f"{base}/premium", headers=idem(pleb), json={}), 403, "gated")
    problem(await client.post(f"{base}/premium", headers=idem(keys.server), json={"paid_externally": True}), 403,
            "gated")
    problem(await client.post(f"{base}/boost", headers=idem(pleb), json={}), 403, "gated")
    problem(await client.post(f"{base}/claim", headers=idem(pleb), json={"tier": 1, "track": "free"}), 403, "gated")
    balance = (await client.get("/v1/players/pleb/balances", headers=keys.server)).json()["balances"][0]["balance"]
    assert balance == 10_000
    vip = "/v1/players/vip/battle-pass/s1"
    assert (await client.post(f"{vip}/premium", headers=idem(keys.server), json={})).status_code == 201
    resp = await client.post(f"{vip}/claim", headers=idem(keys.server), json={"tier": 1, "track": "premium"})
    assert resp.status_code == 201, resp.text


async def test_requirements_in_definitions_are_validated(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    await setup(client, keys)
    bad = {"name": "X", "price": {"currency": "points", "amount": 1}, "gating": {"completed_challenges": ["nope"]}}
    body = problem(await client.put("/v1/definitions/item/x", headers=keys.server, json=bad), 422,
                   "invalid_definition")
    assert "unknown challenge 'nope'" in body["detail"]
    bad = {"name": "X", "gating": {"min_level": {"track": "rp", "level": 2}}}
    problem(await client.put("/v1/definitions/item/x", headers=keys.server, json=bad), 422, "invalid_definition")
    bad = {"name": "X", "gating": {"whitelist": ["not a player id!"]}}
    problem(await client.put("/v1/definitions/item/x", headers=keys.server, json=bad), 422, "invalid_definition")
    bad = {"name": "X", "gating": {"unknown": 1}}
    problem(await client.put("/v1/definitions/item/x", headers=keys.server, json=bad), 422, "invalid_definition")
    token = await factory.player_token(keys, "ana")
    problem(await client.post("/v1/gating/check", headers=token, json={"player_id": "ana", "requirement": {}}), 403,
            "caller_not_allowed")
