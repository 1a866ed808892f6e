"""Claiming a tier's reward: only when reached, premium only with premium, exactly once."""

from __future__ import annotations

import asyncio

import httpx

from questline.kit.clock import ManualClock
from questline.kit.runtime import Runtime
from questline.pipeline.replay import start_replay
from tests.battlepass.helpers import balance, claim, configure, grant, inventory, premium, progress, won
from tests.conftest import Factory, problem
from tests.pipeline.helpers import send, settle


async def test_claims_pay_out_once_when_the_tier_is_reached(client: httpx.AsyncClient, factory: Factory,
                                                             runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app()
    await configure(client, keys)
    await send(client, keys, [won(1, score=1200), won(2)])  # 160 pass XP: tier 1
    await settle(runtime)
    token = await factory.player_token(keys, "alice")

    body = problem(await claim(client, token, 2), 409, "tier_not_reached")
    assert body["current_tier"] == 1 and body["xp_needed"] == 40
    problem(await claim(client, token, 4), 404, "reward_not_found")
    problem(await claim(client, token, 1, "premium"), 403, "premium_required")

    resp = await claim(client, token, 1, key="claim-1")
    assert resp.status_code == 201, resp.text
    out = resp.json()
    assert out["reward"]["badge"] == "season_participant" and len(out["transaction_ids"]) == 1
    assert await balance(client, keys, "alice") == 100
    again = await claim(client, token, 1, key="claim-1")
    assert again.status_code == 201 and again.content == resp.content
    problem(await claim(client, token, 1), 409, "already_claimed")
    assert await balance(client, keys, "alice") == 100
    got = await progress(client, keys)
    assert got["claimable"]["free"] == [] and got["free_rewards"][0]["claimed"]

    # Items go into the inventory; rewards earned stay claimable after the season ends.
    await send(client, keys, [won(3, ts="2026-03-11T10:00:00Z")])
    await settle(runtime)
    clock.advance(days=40)
    resp = await claim(client, keys.server, 2)
    assert resp.status_code == 201, resp.text
    assert await inventory(client, keys) == {"protein": 2}


async def test_premium_track_after_buying_premium(client: httpx.AsyncClient, factory: Factory,
                                                  runtime: Runtime) -> None:
    keys = await factory.app()
    await configure(client, keys)
    await send(client, keys, [won(1, score=1200)])
    await settle(runtime)
    await grant(client, keys, "alice", 3000)
    assert (await premium(client, keys.server)).status_code == 201
    resp = await claim(client, keys.server, 1, "premium")
    assert resp.status_code == 201, resp.text
    assert await balance(client, keys, "alice") == 1000
    assert await inventory(client, keys) == {"session": 1}
    got = await progress(client, keys)
    assert got["claimable"] == {"free": [1], "premium": []}
    assert got["premium_rewards"][0]["claimed"] and not got["premium_rewards"][0]["locked"]


async def test_racing_claims_of_one_tier_pay_once(client: httpx.AsyncClient, factory: Factory,
                                                  runtime: Runtime) -> None:
    keys = await factory.app()
    await configure(client, keys)
    await send(client, keys, [won(1, score=1200)])
    await settle(runtime)
    token = await factory.player_token(keys, "alice")
    replies = await asyncio.gather(*(claim(client, token if i % 2 else keys.server, 1) for i in range(8)))
    assert sorted(r.status_code for r in replies) == [201] + [409] * 7, [r.text for r in replies]
    for reply in replies:
        if reply.status_code == 409:
            problem(reply, 409, "already_claimed")
    assert await balance(client, keys, "alice") == 100
    history = (await client.get("/v1/players/alice/transactions", headers=keys.server)).json()
    assert history["total"] == 1


async def test_replay_rebuilds_pass_xp_and_keeps_purchases_and_claims(client: httpx.AsyncClient, factory: Factory,
                                                                      runtime: Runtime) -> None:
    keys = await factory.app()
    await configure(client, keys)
    await send(client, keys, [won(1, score=1200), won(2), won(3, ts="2026-03-11T10:00:00Z")])
    await settle(runtime)
    await grant(client, keys, "alice", 3000)
    assert (await premium(client, keys.server)).status_code == 201
    assert (await claim(client, keys.server, 1)).status_code == 201
    before = await progress(client, keys)

    await start_replay(runtime, keys.app_id)
    await settle(runtime)
    after = await progress(client, keys)
    assert after == before
    assert after["xp"] == 220 and after["has_premium"] and after["free_rewards"][0]["claimed"]
    assert await balance(client, keys, "alice") == 100


async def test_a_tier_badge_is_an_achievement_granted_on_claim(client: httpx.AsyncClient, factory: Factory,
                                                               runtime: Runtime) -> None:
    keys = await factory.app()
    await configure(client, keys)
    await send(client, keys, [won(1, score=1200)])  # tier 1
    await settle(runtime)
    token = await factory.player_token(keys, "alice")
    before = (await client.get("/v1/players/alice/achievements", headers=token)).json()
    assert {a["key"]: a["progress"]["current"] for a in before["achievements"]} == \
        {"season_participant": 0, "season_champion": 0}  # grant-only: 0/1 until granted

    resp = await claim(client, token, 1, key="badge-claim")
    assert resp.status_code == 201, resp.text
    assert (await claim(client, token, 1, key="badge-claim")).content == resp.content
    mine = {a["key"]: a for a in (await client.get("/v1/players/alice/achievements", headers=token)).json()[
        "achievements"]}
    assert mine["season_participant"]["unlocked"] and not mine["season_champion"]["unlocked"]
    assert mine["season_participant"]["progress"] == {"current": 1, "target": 1, "percent": 100}
    catalog = {a["key"]: a for a in (await client.get("/v1/achievements", headers=keys.client)).json()["achievements"]}
    assert (catalog["season_participant"]["unlocked_count"], catalog["season_champion"]["unlocked_count"]) == (1, 0)
    feed = (await client.get("/v1/outbox", headers=keys.server, params={"limit": 200})).json()["items"]
    unlocked = [m["data"] for m in feed if m["type"] == "achievement.unlocked"]
    assert len(unlocked) == 1
    assert (unlocked[0]["achievement"], unlocked[0]["source"], unlocked[0]["granted_by"]) == (
        "season_participant", "grant", "battle_pass")
    assert unlocked[0]["reference"] == {"season": "s1", "tier": 1, "track": "free"}
    # Granted already: the grant route says so; an achievement a season uses cannot be deleted.
    again = await client.post("/v1/players/alice/achievements/season_participant/grant",
                              headers={**keys.server, "Idempotency-Key": "bp-badge-again"})
    assert (again.status_code, again.json()["granted"]) == (200, False)
    problem(await client.delete("/v1/definitions/achievement/season_champion", headers=keys.server), 409,
            "definition_in_use")


async def test_a_badge_with_points_pays_them_once_with_the_claim(client: httpx.AsyncClient, factory: Factory,
                                                                 runtime: Runtime) -> None:
    keys = await factory.app()
    await configure(client, keys)
    bundle = {"achievement": {"season_participant": {"name": "Season Participant",
                                                     "points_reward": {"currency": "points", "amount": 25}}}}
    resp = await client.post("/v1/definitions:bulk", headers=keys.server, json={"definitions": bundle})
    assert resp.status_code == 200, resp.text
    await send(client, keys, [won(1, score=1200)])
    await settle(runtime)
    # Racing claims of the badge tier: one claim, one grant, one payment of each.
    replies = await asyncio.gather(*(claim(client, keys.server, 1) for _ in range(4)))
    assert sorted(r.status_code for r in replies) == [201, 409, 409, 409], [r.text for r in replies]
    assert await balance(client, keys, "alice") == 100 + 25
    await start_replay(runtime, keys.app_id)
    await settle(runtime)
    got = (await client.get("/v1/players/alice/achievements", headers=keys.server)).json()
    assert got["unlocked"] == 1 and await balance(client, keys, "alice") == 125
