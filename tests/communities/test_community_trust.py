"""Issue 10, points 7 and 15: players cannot mint currency through a community's starter reward,
and cannot make other players community admins without their consent."""

from __future__ import annotations

import asyncio

import httpx

from tests.communities.helpers import balance, create, join, points
from tests.conftest import Factory, problem
from tests.ledger.helpers import verify

REWARD = {"currency": "points", "amount": 250}


async def test_a_player_cannot_set_a_starter_reward(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    await points(client, keys)
    mallory = await factory.player_token(keys, "mallory")
    body = {"name": "Mint", "slug": "mint", "starter_reward": {"currency": "points", "amount": 10**9}}
    problem(await client.post("/v1/communities", headers=mallory, json=body), 403, "starter_reward_forbidden")
    problem(await client.get("/v1/communities/mint", headers=keys.client), 404, "community_not_found")
    await create(client, mallory, slug="mint")
    # As the community's admin, she still cannot add one.
    problem(await client.patch("/v1/communities/mint", headers=mallory,
                               json={"starter_reward": {"currency": "points", "amount": 10**9}}),
            403, "starter_reward_forbidden")
    problem(await client.patch("/v1/communities/mint", headers=mallory, json={"starter_reward": None}),
            403, "starter_reward_forbidden")
    assert (await client.get("/v1/communities/mint", headers=keys.client)).json()["starter_reward"] is None
    # Leaving and rejoining, and friends joining, pay nothing.
    await client.post("/v1/communities/mint/members/mallory/leave", headers=mallory)
    assert (await join(client, mallory, "mint")).json()["status"] == "active"
    assert (await join(client, keys.server, "mint", player_id="friend")).status_code == 201
    assert await balance(client, keys, "mallory") == 0 and await balance(client, keys, "friend") == 0


async def test_starter_rewards_are_bounded_by_the_apps_limit(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    await points(client, keys)
    owner = await factory.admin(keys.org_id)
    over = {"name": "Big", "slug": "big", "starter_reward": {"currency": "points", "amount": 1001}}
    body = problem(await client.post("/v1/communities", headers=keys.server, json=over), 422,
                   "starter_reward_over_limit")
    assert body["limit"] == 1000
    # An app admin raises the limit; then the server key (or an app admin) may pay more.
    resp = await client.put(f"/v1/apps/{keys.app_id}/limits", headers=owner.headers(),
                            json={"community_starter_reward_max": 5000})
    assert resp.status_code == 200 and resp.json()["community_starter_reward_max"] == 5000, resp.text
    problem(await client.put(f"/v1/apps/{keys.app_id}/limits", headers=owner.headers(),
                             json={"community_starter_reward_max": -1}), 422, "validation_failed")
    assert (await client.post("/v1/communities", headers=keys.server, json=over)).status_code == 201
    problem(await client.patch("/v1/communities/big", headers=owner.headers(keys.app_id),
                               json={"starter_reward": {"currency": "points", "amount": 5001}}),
            422, "starter_reward_over_limit")
    resp = await client.patch("/v1/communities/big", headers=owner.headers(keys.app_id),
                              json={"starter_reward": {"currency": "points", "amount": 5000}})
    assert resp.status_code == 200 and resp.json()["starter_reward"]["amount"] == 5000
    assert (await join(client, keys.server, "big", player_id="ana")).status_code == 201
    assert await balance(client, keys, "ana") == 5000


async def test_the_starter_reward_is_paid_once_per_player_ever(client: httpx.AsyncClient, factory: Factory,
                                                               runtime: object) -> None:
    keys = await factory.app()
    await points(client, keys)
    await create(client, keys.server, admins=["lead"], starter_reward=REWARD)
    ana = await factory.player_token(keys, "ana")
    # Racing joins of one player pay once.
    replies = await asyncio.gather(*(join(client, ana, "crypto-warriors") for _ in range(6)))
    assert sorted(r.status_code for r in replies) == [200] * 5 + [201], [r.text for r in replies]
    assert await balance(client, keys, "ana") == 250
    # Leave and rejoin, again and again: nothing more.
    for _ in range(3):
        assert (await client.post("/v1/communities/crypto-warriors/members/ana/leave", headers=ana)).status_code == 200
        assert (await join(client, ana, "crypto-warriors")).json()["status"] == "active"
    assert await balance(client, keys, "ana") == 250
    # An admin named at creation was never paid; leaving and rejoining pays them once, not twice.
    lead = await factory.player_token(keys, "lead")
    for _ in range(2):
        await client.post("/v1/communities/crypto-warriors/members/lead/leave", headers=lead)
        await join(client, lead, "crypto-warriors")
    assert await balance(client, keys, "lead") == 250
    # Racing joins of many players pay each exactly once.
    replies = await asyncio.gather(*(join(client, keys.server, "crypto-warriors", player_id=f"p{i % 4}")
                                     for i in range(12)))
    assert sorted(r.status_code for r in replies).count(201) == 4
    for i in range(4):
        assert await balance(client, keys, f"p{i}") == 250
    assert await verify(runtime, keys.app_id) == []  # type: ignore[arg-type]


async def test_admin_grants_by_a_player_are_invitations(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    lead = await factory.player_token(keys, "lead")
    ana, ben = await factory.player_token(keys, "ana"), await factory.player_token(keys, "ben")
    # Naming admins at creation offers them the role; it grants nothing yet.
    await create(client, lead, slug="raiders", open=False, admins=["ben"])
    offer = next(m for m in (await client.get("/v1/communities/raiders/members", headers=lead)).json()["items"]
                 if m["player_id"] == "ben")
    assert (offer["status"], offer["role"], offer["admin_invited_by"]) == ("invited", "member", "lead")
    problem(await client.post("/v1/communities/raiders/members/ben/ban", headers=ben), 403,
            "community_admin_required")
    problem(await client.post("/v1/communities/raiders/admins/ben/accept", headers=ben), 409,
            "not_an_active_member")
    assert (await join(client, ben, "raiders")).json()["status"] == "active"
    assert (await client.post("/v1/communities/raiders/admins/ben/accept", headers=ben)).json()["role"] == "admin"

    # A grant to an active member waits for their answer; they may decline.
    await client.post("/v1/communities/raiders/invites", headers=lead, json={"player_id": "ana"})
    await join(client, ana, "raiders")
    offered = await client.put("/v1/communities/raiders/admins/ana", headers=lead)
    assert offered.status_code == 200 and offered.json()["role"] == "member"
    assert offered.json()["admin_invited_by"] == "lead"
    problem(await client.get("/v1/communities/raiders/members", headers=ana), 403, "community_admin_required")
    # Only ana answers for ana (another player's token does not reach her).
    problem(await client.post("/v1/communities/raiders/admins/ana/accept", headers=ben), 404)
    declined = await client.post("/v1/communities/raiders/admins/ana/decline", headers=ana)
    assert declined.json()["role"] == "member" and declined.json()["admin_invited_by"] is None
    problem(await client.post("/v1/communities/raiders/admins/ana/accept", headers=ana), 409, "no_admin_invitation")
    problem(await client.get("/v1/communities/raiders/members", headers=ana), 403, "community_admin_required")

    # The server key (trusted) grants at once.
    granted = await client.put("/v1/communities/raiders/admins/ana", headers=keys.server)
    assert granted.json()["role"] == "admin" and granted.json()["admin_invited_by"] is None
