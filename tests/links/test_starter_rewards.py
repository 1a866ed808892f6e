"""Starter rewards of every kind: points through the ledger, an item into the inventory, and token,
NFT, in-game and webhook rewards as reward fulfilment records; each lands once per player and
community, whatever joins, retries, races, approvals or rejoins follow."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from questline.fulfilment import service as fulfilment
from questline.kit.runtime import Runtime
from tests.communities.helpers import balance, create, join, points
from tests.conftest import Factory, problem
from tests.fulfilment.helpers import records, target
from tests.receivers import receiving

KINDS: dict[str, dict[str, Any]] = {
    "token": {"token": {"amount": "1000000000000000", "contract": "0x" + "ab" * 20}},
    "nft": {"nft": {"collection": "founders-badge", "metadata": {"tier": "gold"}}},
    "in_game": {"in_game": {"item": "sword", "quantity": 2}},
    "webhook": {"webhook": {"perk": "discord-role", "role": "founder"}},
}


async def _join_every_way(client: httpx.AsyncClient, keys: Any, slug: str, player: str) -> None:
    """Join, join again, race two joins, leave and rejoin: every way a reward could be paid twice."""
    first = await join(client, keys.server, slug, player_id=player)
    assert first.status_code == 201, first.text
    assert (await join(client, keys.server, slug, player_id=player)).status_code == 200
    left = await client.post(f"/v1/communities/{slug}/members/{player}/leave", headers=keys.server)
    assert left.status_code == 200, left.text
    raced = await asyncio.gather(*(join(client, keys.server, slug, player_id=player) for _ in range(3)))
    assert sorted(r.status_code for r in raced) in ([200, 200, 201], [201, 409, 409], [200, 201, 409]), \
        [r.text for r in raced]


@pytest.mark.parametrize("kind", sorted(KINDS))
async def test_fulfilment_starter_rewards_land_once(client: httpx.AsyncClient, factory: Factory, kind: str) -> None:
    keys = await factory.app()
    out = await create(client, keys.server, slug="crypto-warriors", starter_reward=KINDS[kind])
    assert out["starter_reward"]["kind"] == kind
    await _join_every_way(client, keys, "crypto-warriors", "ana")
    found = await records(client, keys, player_id="ana")
    expected_kind = "webhook" if kind == "nft" else kind
    assert [(r["kind"], r["source"], r["status"]) for r in found] == [(expected_kind, "community_starter", "pending")]
    member = (await client.get("/v1/players/ana/communities", headers=keys.server)).json()[0]
    assert member["starter_reference"] == found[0]["id"] and member["starter_transaction_id"] is None
    spec = found[0]["spec"]
    assert spec["community_id"] == out["id"]
    if kind == "nft":
        assert spec == {"type": "nft", "collection": "founders-badge", "metadata": {"tier": "gold"},
                        "community_id": out["id"]}


async def test_points_and_item_starter_rewards_land_once(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    await points(client, keys)
    resp = await client.put("/v1/definitions/item/founder-cape", headers=keys.server, json={"name": "Founder cape"})
    assert resp.status_code in (200, 201), resp.text
    await create(client, keys.server, slug="point-guild", starter_reward={"currency": "points", "amount": 100})
    cape = await create(client, keys.server, slug="cape-guild", starter_reward={"item": "founder-cape",
                                                                                 "quantity": 1})
    assert cape["starter_reward"] == {"kind": "item", "item": "founder-cape"}
    await _join_every_way(client, keys, "point-guild", "ana")
    await _join_every_way(client, keys, "cape-guild", "ana")
    assert await balance(client, keys, "ana") == 100
    inventory = (await client.get("/v1/players/ana/inventory", headers=keys.server)).json()
    assert [(i["item"], i["quantity"]) for i in inventory["items"]] == [("founder-cape", 1)]
    members = {m["community_id"]: m for m in
               (await client.get("/v1/players/ana/communities", headers=keys.server)).json()}
    assert members[cape["id"]]["starter_reference"] == "inventory"
    assert (await records(client, keys, player_id="ana")) == []


async def test_a_pending_join_gets_its_reward_when_approved_and_delivery_reaches_the_studio(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    keys = await factory.app()
    await create(client, keys.server, slug="nft-guild", auto_approve=False, starter_reward=KINDS["nft"])
    await create(client, keys.server, slug="game-guild", starter_reward=KINDS["in_game"])
    assert (await join(client, keys.server, "nft-guild", player_id="ana")).json()["status"] == "pending"
    assert await records(client, keys, player_id="ana") == []
    for _ in range(2):
        await client.post("/v1/communities/nft-guild/members/ana/approve", headers=keys.server)
    await join(client, keys.server, "game-guild", player_id="ana")
    async with receiving() as receiver:
        hook_secret = await target(client, keys, "webhook", f"{receiver.base}/rewards")
        game_secret = await target(client, keys, "in_game", f"{receiver.base}/game")
        # (On a shared PostgreSQL database other tests' due records are worked on too.)
        assert await fulfilment.process_due(runtime, limit=500) >= 2
        nft = receiver.to("/rewards")[0].verified(hook_secret)
        game = receiver.to("/game")[0].verified(game_secret)
    assert nft["type"] == "reward.webhook" and nft["player_id"] == "ana" and nft["source"] == "community_starter"
    assert nft["reward"]["type"] == "nft" and nft["reward"]["collection"] == "founders-badge"
    assert (game["type"], game["item"], game["quantity"]) == ("reward.in_game", "sword", 2)
    assert sorted(r["status"] for r in await records(client, keys, player_id="ana")) == ["completed", "completed"]


async def test_only_trusted_callers_set_starter_rewards_and_bad_ones_are_refused(
        client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    await points(client, keys)
    ana = await factory.player_token(keys, "ana")
    for reward in KINDS.values():
        resp = await client.post("/v1/communities", headers=ana,
                                 json={"name": "Mine", "slug": "ana-guild", "starter_reward": reward})
        problem(resp, 403, "starter_reward_forbidden")
    await create(client, ana, slug="ana-guild")
    problem(await client.patch("/v1/communities/ana-guild", headers=ana, json={"starter_reward": KINDS["token"]}),
            403, "starter_reward_forbidden")
    for bad in ({"currency": "points"}, {"currency": "points", "amount": 5, "item": "x"}, {},
                {"token": {"amount": "0"}}, {"in_game": {"item": ""}}, {"nft": {}}):
        resp = await client.post("/v1/communities", headers=keys.server,
                                 json={"name": "Bad", "slug": "bad-guild", "starter_reward": bad})
        problem(resp, 422, "validation_failed")
    problem(await client.post("/v1/communities", headers=keys.server, json={
        "name": "Bad", "slug": "bad-guild", "starter_reward": {"item": "no-such-item"}}), 422, "item_not_found")
    problem(await client.post("/v1/communities", headers=keys.server, json={
        "name": "Bad", "slug": "bad-guild", "starter_reward": {"currency": "gems", "amount": 5}}), 422,
        "unknown_currency")
    problem(await client.post("/v1/communities", headers=keys.server, json={
        "name": "Bad", "slug": "bad-guild", "starter_reward": {"currency": "points", "amount": 5000}}), 422,
        "starter_reward_over_limit")
    assert (await client.get("/v1/communities/slug-available", headers=keys.server,
                             params={"slug": "bad-guild"})).json()["available"]
