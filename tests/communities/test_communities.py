"""Communities: slugs and links, joining (open, invite-only, approval queue, full), member metadata,
moderation by community admins, bans, the starter reward and who referred whom."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.communities.helpers import balance, create, join, points
from tests.conftest import Factory, problem
from tests.ledger.helpers import verify


async def test_a_community_with_a_unique_slug_and_link(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    out = await create(client, keys.server, redirect_url="https://play.example.com/join", description="Guild")
    assert out["id"].startswith("cmy_") and out["slug"] == "crypto-warriors"
    assert out["link"] == f"/c/{keys.app_id}/crypto-warriors"
    assert out["redirect_url"] == "https://play.example.com/join"
    assert out["open"] and out["auto_approve"] and out["member_count"] == 0
    resp = await client.post("/v1/communities", headers=keys.server, json={"name": "Again", "slug": "crypto-warriors"})
    problem(resp, 409, "slug_taken")
    problem(await client.post("/v1/communities", headers=keys.server, json={"name": "X", "slug": "Bad Slug"}),
            422, "validation_failed")
    avail = await client.get("/v1/communities/slug-available", headers=keys.client, params={"slug": "crypto-warriors"})
    assert avail.json() == {"slug": "crypto-warriors", "available": False}
    avail = await client.get("/v1/communities/slug-available", headers=keys.client, params={"slug": "other-guild"})
    assert avail.json()["available"]
    by_slug = await client.get("/v1/communities/crypto-warriors", headers=keys.client)
    by_id = await client.get(f"/v1/communities/{out['id']}", headers=keys.client)
    assert by_slug.json() == by_id.json() == out
    listed = (await client.get("/v1/communities", headers=keys.client)).json()
    assert [c["slug"] for c in listed["items"]] == ["crypto-warriors"]
    # Slugs are per app.
    other = await factory.app()
    await create(client, other.server)
    problem(await client.get("/v1/communities/nope", headers=keys.client), 404, "community_not_found")


async def test_joining_pays_the_starter_reward_once_and_records_the_referrer(client: httpx.AsyncClient,
                                                                            factory: Factory, runtime: object) -> None:
    keys = await factory.app()
    await points(client, keys)
    await create(client, keys.server, redirect_url="https://play.example.com/join",
                 starter_reward={"currency": "points", "amount": 250})
    alice = await factory.player_token(keys, "alice")
    resp = await join(client, alice, "crypto-warriors")
    assert resp.status_code == 201, resp.text
    member = resp.json()
    assert member["status"] == "active" and member["starter_transaction_id"]
    assert member["referral_link"] == f"/c/{keys.app_id}/crypto-warriors/{member['member_code']}"
    assert await balance(client, keys, "alice") == 250
    again = await join(client, alice, "crypto-warriors")
    assert again.status_code == 200 and again.json()["status"] == "active"

    bob = await factory.player_token(keys, "bob")
    resp = await join(client, bob, "crypto-warriors", referred_by="alice")
    assert resp.status_code == 201 and resp.json()["referred_by"] == "alice"
    problem(await join(client, keys.server, "crypto-warriors", player_id="carl", referred_by="nobody"), 422,
            "invalid_referrer")
    problem(await join(client, keys.server, "crypto-warriors", player_id="carl", referred_by="carl"), 422,
            "invalid_referrer")
    problem(await join(client, keys.server, "crypto-warriors"), 422, "player_id_required")
    problem(await join(client, alice, "crypto-warriors", player_id="bob"), 404)
    assert (await client.get("/v1/communities/crypto-warriors", headers=keys.client)).json()["member_count"] == 2

    # Leaving frees the seat; coming back pays no second starter reward.
    resp = await client.post("/v1/communities/crypto-warriors/members/alice/leave", headers=alice)
    assert resp.json()["status"] == "left" and resp.json()["referral_link"] is None
    assert (await client.get("/v1/communities/crypto-warriors", headers=keys.client)).json()["member_count"] == 1
    assert (await join(client, alice, "crypto-warriors")).json()["status"] == "active"
    assert await balance(client, keys, "alice") == 250
    mine = (await client.get("/v1/players/alice/communities", headers=alice)).json()
    assert [(m["community_id"], m["status"]) for m in mine] == [(member["community_id"], "active")]
    assert await verify(runtime, keys.app_id) == []  # type: ignore[arg-type]


@pytest.mark.parametrize(("schema", "good", "bad"), [
    ({"type": "wallet"}, {"address": "0x" + "ab" * 20}, {"address": "0x123"}),
    ({"type": "email"}, {"email": "ana@example.com"}, {"email": "not-an-email"}),
    ({"type": "username"}, {"username": "ana_22"}, {"username": "a"}),
    ({"type": "discord"}, {"discord": "ana.gg"}, {"discord": "Ana With Spaces Too Long For Discord Names"}),
    ({"type": "custom", "fields": [{"name": "steam_id", "pattern": "[0-9]{17}"},
                                   {"name": "clan", "required": False, "max_length": 5}]},
     {"steam_id": "76561197960287930"}, {"steam_id": "76561197960287930", "clan": "toolongclan"}),
])
async def test_member_metadata_is_validated(client: httpx.AsyncClient, factory: Factory, schema: dict[str, object],
                                            good: dict[str, str], bad: dict[str, str]) -> None:
    keys = await factory.app()
    await create(client, keys.server, member_schema=schema)
    body = problem(await join(client, keys.server, "crypto-warriors", player_id="ana", metadata=bad), 422,
                   "invalid_metadata")
    assert body["errors"]
    problem(await join(client, keys.server, "crypto-warriors", player_id="ana"), 422, "invalid_metadata")
    problem(await join(client, keys.server, "crypto-warriors", player_id="ana", metadata={**good, "extra": "x"}),
            422, "invalid_metadata")
    resp = await join(client, keys.server, "crypto-warriors", player_id="ana", metadata=good)
    assert resp.status_code == 201 and resp.json()["metadata"] == good
    bad_schema = {"name": "X", "slug": "bad-schema", "member_schema": {"fields": [{"name": "x", "pattern": "("}]}}
    problem(await client.post("/v1/communities", headers=keys.server, json=bad_schema), 422, "validation_failed")


async def test_invite_only_communities(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    await create(client, keys.server, slug="inner-circle", open=False)
    ana = await factory.player_token(keys, "ana")
    problem(await join(client, ana, "inner-circle"), 403, "invite_required")
    resp = await client.post("/v1/communities/inner-circle/invites", headers=keys.server, json={"player_id": "ana"})
    assert resp.status_code == 201 and resp.json()["status"] == "invited"
    assert (await join(client, ana, "inner-circle")).json()["status"] == "active"
    problem(await client.post("/v1/communities/inner-circle/invites", headers=keys.server, json={"player_id": "ana"}),
            409, "cannot_invite")


async def test_approval_queue_and_community_admins(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    await points(client, keys)
    lead = await factory.player_token(keys, "lead")
    out = await create(client, lead, slug="raiders", auto_approve=False)
    assert out["member_count"] == 1  # the creating player administers it
    # Only the server key (or an app admin) gives the community a starter reward.
    resp = await client.patch("/v1/communities/raiders", headers=keys.server,
                              json={"starter_reward": {"currency": "points", "amount": 100}})
    assert resp.status_code == 200, resp.text
    ana, ben = await factory.player_token(keys, "ana"), await factory.player_token(keys, "ben")
    assert (await join(client, ana, "raiders")).json()["status"] == "pending"
    assert (await join(client, ben, "raiders")).json()["status"] == "pending"
    assert await balance(client, keys, "ana") == 0

    queue = (await client.get("/v1/communities/raiders/members", headers=lead, params={"status": "pending"})).json()
    assert [m["player_id"] for m in queue["items"]] == ["ana", "ben"]
    problem(await client.get("/v1/communities/raiders/members", headers=ana), 403, "community_admin_required")
    problem(await client.post("/v1/communities/raiders/members/ben/approve", headers=ana), 403,
            "community_admin_required")
    resp = await client.post("/v1/communities/raiders/members/ana/approve", headers=lead, json={"note": "welcome"})
    assert resp.json()["status"] == "active" and resp.json()["joined_at"]
    assert await balance(client, keys, "ana") == 100
    problem(await client.post("/v1/communities/raiders/members/ana/approve", headers=lead), 409, "not_pending")

    # The lead offers ana the admin role; once she accepts she can moderate, and rejects ben.
    offered = (await client.put("/v1/communities/raiders/admins/ana", headers=lead)).json()
    assert offered["role"] == "member" and offered["admin_invited_by"] == "lead"
    accepted = await client.post("/v1/communities/raiders/admins/ana/accept", headers=ana)
    assert accepted.json()["role"] == "admin" and accepted.json()["admin_invited_by"] is None
    problem(await client.put("/v1/communities/raiders/admins/ben", headers=lead), 409, "not_an_active_member")
    resp = await client.post("/v1/communities/raiders/members/ben/reject", headers=ana)
    assert resp.json()["status"] == "left"
    resp = await client.patch("/v1/communities/raiders", headers=ana, json={"description": "We raid", "open": False})
    assert resp.json()["description"] == "We raid" and not resp.json()["open"]
    assert (await client.delete("/v1/communities/raiders/admins/ana", headers=lead)).json()["role"] == "member"
    problem(await client.patch("/v1/communities/raiders", headers=ana, json={"open": True}), 403,
            "community_admin_required")


async def test_bans(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    await create(client, keys.server)
    ana = await factory.player_token(keys, "ana")
    assert (await join(client, ana, "crypto-warriors")).status_code == 201
    resp = await client.post("/v1/communities/crypto-warriors/members/ana/ban", headers=keys.server,
                             json={"note": "cheating"})
    assert resp.json()["status"] == "banned" and resp.json()["note"] == "cheating"
    assert (await client.get("/v1/communities/crypto-warriors", headers=keys.client)).json()["member_count"] == 0
    problem(await join(client, ana, "crypto-warriors"), 403, "banned")
    problem(await client.post("/v1/communities/crypto-warriors/members/ana/ban", headers=keys.server), 409,
            "already_banned")
    # A pre-emptive ban of someone who never joined.
    resp = await client.post("/v1/communities/crypto-warriors/members/troll/ban", headers=keys.server)
    assert resp.json()["status"] == "banned"
    problem(await join(client, keys.server, "crypto-warriors", player_id="troll"), 403, "banned")


async def test_racing_joins_never_pass_max_members(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    await create(client, keys.server, max_members=3)
    replies = await asyncio.gather(*(join(client, keys.server, "crypto-warriors", player_id=f"p{i}")
                                     for i in range(8)))
    assert sorted(r.status_code for r in replies) == [201] * 3 + [409] * 5, [r.text for r in replies]
    for reply in replies:
        if reply.status_code == 409:
            problem(reply, 409, "community_full")
    assert (await client.get("/v1/communities/crypto-warriors", headers=keys.client)).json()["member_count"] == 3
    members = (await client.get("/v1/communities/crypto-warriors/members", headers=keys.server)).json()["items"]
    assert len(members) == 3 and {m["status"] for m in members} == {"active"}
