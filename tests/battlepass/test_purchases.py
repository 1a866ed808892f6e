"""Premium (points or cash) and tier boosts: paid through the ledger, never twice."""

from __future__ import annotations

import asyncio

import httpx

from questline.kit.clock import ManualClock
from questline.kit.runtime import Runtime
from tests.battlepass.helpers import SEASON, balance, configure, grant, idem, premium, progress, won
from tests.conftest import Factory, problem
from tests.pipeline.helpers import send, settle


async def test_premium_bought_with_points(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    await configure(client, keys)
    token = await factory.player_token(keys, "alice")
    await grant(client, keys, "alice", 2999)

    body = problem(await premium(client, token), 409, "insufficient_funds")
    assert body["shortfall"] == 1
    assert await balance(client, keys, "alice") == 2999
    assert not (await progress(client, keys))["has_premium"]

    await grant(client, keys, "alice", 1001)
    resp = await premium(client, token, key="buy-1")
    assert resp.status_code == 201, resp.text
    out = resp.json()
    assert out["has_premium"] and out["premium_source"] == "points" and out["transaction_id"]
    assert await balance(client, keys, "alice") == 1000
    # A retry with the same key replays; a second purchase is refused and costs nothing.
    again = await premium(client, token, key="buy-1")
    assert again.status_code == 201 and again.content == resp.content
    problem(await premium(client, token), 409, "already_premium")
    assert await balance(client, keys, "alice") == 1000
    got = await progress(client, keys)
    assert got["has_premium"] and got["premium_source"] == "points"
    history = (await client.get("/v1/players/alice/transactions", headers=keys.server)).json()
    assert history["items"][0]["source"] == "battle_pass_premium" and history["items"][0]["amount"] == -3000


async def test_premium_paid_externally_is_for_the_server_key(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    await configure(client, keys)
    token = await factory.player_token(keys, "alice")
    problem(await premium(client, token, paid_externally=True), 403, "server_key_required")
    resp = await premium(client, keys.server, paid_externally=True, external_reference="stripe:pi_123")
    assert resp.status_code == 201, resp.text
    assert resp.json()["premium_source"] == "external" and resp.json()["transaction_id"] is None
    assert await balance(client, keys, "alice") == 0
    problem(await premium(client, keys.server, paid_externally=True), 409, "already_premium")


async def test_premium_refusals(client: httpx.AsyncClient, factory: Factory, clock: ManualClock) -> None:
    keys = await factory.app()
    await configure(client, keys, season={**SEASON, "premium_price": None, "tier_boost_price": None})
    token = await factory.player_token(keys, "alice")
    other = await factory.player_token(keys, "bob")
    await grant(client, keys, "alice", 10_000)
    problem(await premium(client, token), 409, "premium_not_for_sale")
    problem(await premium(client, other), 404)  # a player acts only for themself
    resp = await client.post("/v1/players/alice/battle-pass/s1/premium", headers=token, json={})
    problem(resp, 400, "idempotency_key_required")
    problem(await client.post("/v1/players/alice/battle-pass/nope/premium", headers=idem(token), json={}),
            404, "season_not_found")
    problem(await client.post("/v1/players/alice/battle-pass/s1/premium", headers=idem(keys.client), json={}),
            403, "caller_not_allowed")
    problem(await client.post("/v1/players/alice/battle-pass/s1/boost", headers=idem(token), json={}),
            409, "boosts_not_for_sale")
    clock.advance(days=30)  # the season has ended
    problem(await premium(client, keys.server, paid_externally=True), 409, "season_not_active")
    assert await balance(client, keys, "alice") == 10_000


async def test_racing_premium_purchases_charge_once(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    await configure(client, keys)
    await grant(client, keys, "alice", 10_000)
    replies = await asyncio.gather(*(premium(client, keys.server) for _ in range(6)))
    assert sorted(r.status_code for r in replies) == [201] + [409] * 5, [r.text for r in replies]
    for reply in replies:
        if reply.status_code == 409:
            problem(reply, 409, "already_premium")
    assert await balance(client, keys, "alice") == 7000


async def test_tier_boosts(client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    keys = await factory.app()
    await configure(client, keys)
    await send(client, keys, [won(1)])  # 60 pass XP: tier 0
    await settle(runtime)
    await grant(client, keys, "alice", 1000)
    token = await factory.player_token(keys, "alice")

    resp = await client.post("/v1/players/alice/battle-pass/s1/boost", headers=idem(token), json={"tiers": 2})
    assert resp.status_code == 201, resp.text
    assert resp.json()["current_tier"] == 2 and resp.json()["boost_tiers"] == 2
    assert await balance(client, keys, "alice") == 600
    got = await progress(client, keys)
    assert got["current_tier"] == 2 and got["xp"] == 200 and got["xp_in_tier"] == 0

    # Earned XP adds on top of the bought XP; near the top only the tiers left are sold.
    await send(client, keys, [won(2)])
    await settle(runtime)
    assert (await progress(client, keys))["xp"] == 260
    resp = await client.post("/v1/players/alice/battle-pass/s1/boost", headers=idem(token), json={"tiers": 10})
    assert resp.status_code == 201, resp.text
    assert resp.json()["current_tier"] == 5 and resp.json()["boost_tiers"] == 5
    assert await balance(client, keys, "alice") == 0
    problem(await client.post("/v1/players/alice/battle-pass/s1/boost", headers=idem(token), json={}),
            409, "max_tier_reached")
    got = await progress(client, keys)
    assert got["current_tier"] == 5 and got["xp_for_next_tier"] is None
    assert got["claimable"]["free"] == [1, 2, 5]


async def test_a_boost_the_player_cannot_pay_changes_nothing(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    await configure(client, keys)
    await grant(client, keys, "alice", 300)
    resp = await client.post("/v1/players/alice/battle-pass/s1/boost", headers=idem(keys.server), json={"tiers": 2})
    problem(resp, 409, "insufficient_funds")
    got = await progress(client, keys)
    assert got["current_tier"] == 0 and got["boost_tiers"] == 0 and await balance(client, keys, "alice") == 300
