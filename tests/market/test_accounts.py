"""Brands and streamers: sign-up and sign-in scoped to their role, members, trusted facts, sealed bank
details, the signup rewards through progression, and wallets in fiat currencies."""

from __future__ import annotations

import httpx
import sqlalchemy as sa

from questline.kit.db import unit_of_work
from questline.kit.runtime import Runtime
from tests.conftest import Factory, problem
from tests.market.helpers import PASSWORD, Market, idem, verify
from tests.pipeline.helpers import settle


async def test_brand_members_sign_in_for_their_brand_only(client: httpx.AsyncClient, factory: Factory,
                                                          runtime: Runtime) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    acme, other = await market.brand(name="Acme"), await market.brand()
    assert acme.body["company_name"] == "Acme" and "password" not in str(acme.body)
    # The owner adds a member, who signs in for the brand; a member may not manage members.
    member = await market.ok("POST", f"/v1/brands/{acme.id}/members", 201, headers=acme.headers,
                             json={"email": "Mia@Example.test", "password": PASSWORD, "name": "Mia"})
    assert member["email"] == "mia@example.test" and member["role"] == "member"
    token = await market.ok("POST", "/v1/brands/login", headers=keys.client,
                            json={"email": "mia@example.test", "password": PASSWORD})
    mia = {"Authorization": f"Bearer {token['token']}"}
    assert token["role"] == "brand" and token["account_id"] == acme.id and token["member_id"] == member["id"]
    assert (await market.ok("GET", f"/v1/brands/{acme.id}", headers=mia))["id"] == acme.id
    problem(await client.post(f"/v1/brands/{acme.id}/members", headers=mia,
                              json={"email": "x@example.test", "password": PASSWORD}), 403, "brand_owner_required")
    problem(await client.patch(f"/v1/brands/{acme.id}", headers=mia, json={"industry": "x"}), 403,
            "brand_owner_required")
    # Another brand's id is a 404 to a brand token; a brand token is no player, admin or server key.
    problem(await client.get(f"/v1/brands/{other.id}", headers=mia), 404, "brand_not_found")
    problem(await client.get("/v1/players", headers=mia), 403, "caller_not_allowed")
    problem(await client.get("/v1/brands", headers=mia), 403, "caller_not_allowed")
    # Removing a member stops their token at once; the last owner stays.
    await market.ok("POST", f"/v1/brands/{acme.id}/members/{member['id']}/remove", headers=acme.headers)
    problem(await client.get(f"/v1/brands/{acme.id}", headers=mia), 401, "invalid_token")
    problem(await client.post("/v1/brands/login", headers=keys.client,
                              json={"email": "mia@example.test", "password": PASSWORD}), 401, "invalid_credentials")
    owners = [m for m in await market.ok("GET", f"/v1/brands/{acme.id}/members", headers=acme.headers)
              if m["role"] == "owner"]
    problem(await client.post(f"/v1/brands/{acme.id}/members/{owners[0]['id']}/remove", headers=acme.headers), 409,
            "last_owner")
    # E-mails are unique among the app's marketplace accounts; wrong passwords are refused alike.
    problem(await client.post("/v1/streamers", headers=keys.client, json={
        "email": "mia@example.test", "password": PASSWORD, "display_name": "Mia"}), 409, "email_taken")
    problem(await client.post("/v1/brands/login", headers=keys.client,
                              json={"email": "nobody@example.test", "password": PASSWORD}), 401, "invalid_credentials")
    # Tokens of app A mean nothing in app B.
    brand_of_b = await Market(client, await factory.app()).brand()
    problem(await client.get(f"/v1/brands/{brand_of_b.id}", headers=acme.headers), 404, "brand_not_found")
    problem(await client.get(f"/v1/brands/{acme.id}", headers=brand_of_b.headers), 404, "brand_not_found")


async def test_streamer_signup_pays_xp_and_rp_once_and_keeps_trusted_facts_trusted(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    keys = await factory.app()
    tracks = {"xp": {"name": "Experience", "curve": {"type": "quadratic", "base": 100}},
              "rp": {"name": "Reputation", "curve": {"type": "geometric", "base": 100, "factor": 1.3}}}
    resp = await client.post("/v1/definitions:bulk", headers=keys.server, json={"definitions": {"xp_track": tracks}})
    assert resp.status_code in (200, 201), resp.text
    market = Market(client, keys)
    signup = await market.ok("POST", "/v1/streamers", 201, headers=keys.client, json={
        "email": "zoe@example.test", "password": PASSWORD, "display_name": "Zoe", "timezone": "Europe/Berlin",
        "platforms": [{"name": "twitch", "username": "zoe"}],
        "bank_details": {"account_holder": "Zoe Z", "account_details": "DE89370400440532013000"}})
    await settle(runtime)
    profile = await market.ok("GET", f"/v1/players/{signup['player_id']}", headers=keys.server)
    totals = {track: info["total_xp"] for track, info in profile["levels"].items()}
    assert totals == {"xp": 10, "rp": 5}
    assert signup["player_id"] == signup["id"]  # a new player, named by the streamer's id
    await settle(runtime)  # nothing more to pay
    profile = await market.ok("GET", f"/v1/players/{signup['player_id']}", headers=keys.server)
    assert {t: i["total_xp"] for t, i in profile["levels"].items()} == {"xp": 10, "rp": 5}

    # Bank details: sealed at rest, shown masked, never in full.
    assert signup["bank_details"] == {"account_holder": "Zoe Z", "account_details": "•••• 3000",
                                      "preferred_payment_method": "bank"}
    async with unit_of_work(runtime.sessions) as session:
        stored = (await session.execute(sa.text("SELECT bank_sealed FROM streamers WHERE id = :i"),
                                        {"i": signup["id"]})).scalar_one()
    assert stored.startswith("v1:") and "DE89" not in stored

    # A streamer changes what they say; audience numbers and verification are the platform's to set.
    token = await market.ok("POST", "/v1/streamers/login", headers=keys.client,
                            json={"email": "zoe@example.test", "password": PASSWORD})
    zoe = {"Authorization": f"Bearer {token['token']}"}
    problem(await client.put(f"/v1/streamers/{signup['id']}/audience", headers=zoe,
                             json={"platforms": {"twitch": {"followers": 10**6}}}), 403, "caller_not_allowed")
    problem(await client.post(f"/v1/streamers/{signup['id']}/platforms/twitch/verification", headers=zoe,
                              json={"status": "verified"}), 403, "caller_not_allowed")
    problem(await client.patch(f"/v1/streamers/{signup['id']}", headers=zoe,
                               json={"platforms": [{"name": "twitch", "username": "zoe", "followers": 5}]}), 422,
            "validation_failed")
    await market.ok("POST", f"/v1/streamers/{signup['id']}/platforms/twitch/verification", headers=keys.server,
                    json={"status": "verified"})
    await market.ok("PUT", f"/v1/streamers/{signup['id']}/audience", headers=keys.server,
                    json={"platforms": {"twitch": {"followers": 900}}})
    # A changed channel goes back to review and loses its numbers.
    changed = await market.ok("PATCH", f"/v1/streamers/{signup['id']}", headers=zoe,
                              json={"platforms": [{"name": "twitch", "username": "zoe_new"}]})
    assert changed["platforms"][0]["verification_status"] == "pending" and changed["platforms"][0]["followers"] == 0
    # Only the server key (or an admin) links a streamer to an existing player.
    problem(await client.post("/v1/streamers", headers=keys.client, json={
        "email": "x@example.test", "password": PASSWORD, "display_name": "X", "player_id": "someone"}), 403,
        "player_link_not_allowed")
    linked = await market.ok("POST", "/v1/streamers", 201, headers=keys.server, json={
        "email": "y@example.test", "password": PASSWORD, "display_name": "Y", "player_id": "alice"})
    assert linked["player_id"] == "alice"
    problem(await client.post("/v1/streamers", headers=keys.server, json={
        "email": "z@example.test", "password": PASSWORD, "display_name": "Z", "player_id": "alice"}), 409,
        "player_is_streamer")
    # Another streamer's id is a 404 to a streamer's token.
    problem(await client.get(f"/v1/streamers/{linked['id']}", headers=zoe), 404, "streamer_not_found")


async def test_wallets_in_fiat_currencies(client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    brand = await market.brand()
    # A deposit is trusted (server key or admin), takes an Idempotency-Key, and posts once.
    key = idem(keys.server, "wire-0001")
    first = await market.ok("POST", f"/v1/brands/{brand.id}/wallet/deposits", 201, headers=key,
                            json={"currency": "JPY", "amount": 5_000})
    again = await market.ok("POST", f"/v1/brands/{brand.id}/wallet/deposits", 201, headers=key,
                            json={"currency": "JPY", "amount": 5_000})
    assert first["id"] == again["id"]
    problem(await client.post(f"/v1/brands/{brand.id}/wallet/deposits", headers=idem(brand.headers),
                              json={"currency": "USD", "amount": 100}), 403, "caller_not_allowed")
    problem(await client.post(f"/v1/brands/{brand.id}/wallet/deposits", headers=keys.server,
                              json={"currency": "USD", "amount": 100}), 400, "idempotency_key_required")
    for bad in ({"currency": "usd", "amount": 1}, {"currency": "USD", "amount": 0},
                {"currency": "USD", "amount": 1.5}, {"currency": "USD", "amount": "5"}):
        problem(await client.post(f"/v1/brands/{brand.id}/wallet/deposits", headers=idem(keys.server), json=bad),
                422, "validation_failed")
    problem(await client.post(f"/v1/brands/{brand.id}/wallet/deposits", headers=idem(keys.server),
                              json={"currency": "XTS", "amount": 1}), 422, "unknown_currency")
    wallet = await market.ok("GET", f"/v1/brands/{brand.id}/wallet", headers=brand.headers)
    assert wallet["balances"] == [{"currency": "JPY", "exponent": 0, "available": 5_000, "held": 0, "pending": 0}]

    # ISO 4217 minor units: known codes have theirs; an unknown code needs its exponent; points have none.
    currencies = {c["code"]: c for c in await market.ok("GET", "/v1/currencies", headers=keys.server)}
    assert (currencies["JPY"]["kind"], currencies["JPY"]["exponent"]) == ("fiat", 0)
    made = await market.ok("PUT", "/v1/currencies/KWD", 201, headers=keys.server, json={"name": "Dinar"})
    assert made["exponent"] == 3
    problem(await client.put("/v1/currencies/EUR", headers=keys.server, json={"name": "Euro", "exponent": 3}), 422,
            "exponent_mismatch")
    problem(await client.put("/v1/currencies/XTS", headers=keys.server, json={"name": "Test"}), 422,
            "exponent_required")
    assert (await market.ok("PUT", "/v1/currencies/XTS", 201, headers=keys.server,
                            json={"name": "Test", "exponent": 4}))["exponent"] == 4
    problem(await client.put("/v1/currencies/gems", headers=keys.server, json={"name": "Gems", "exponent": 2}), 422,
            "invalid_exponent")
    assert await verify(runtime, keys.app_id) == []
