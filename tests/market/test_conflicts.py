"""Conflict rules of each kind, on join and on approval, enabled and disabled, with their explanation."""

from __future__ import annotations

from typing import Any

import httpx

from questline.kit.runtime import Runtime
from tests.conftest import Factory, problem
from tests.market.helpers import Market


async def rule(market: Market, body: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return dict(await market.ok("POST", "/v1/conflict-rules", 201, headers=market.server,
                                json={"name": body["kind"], "rule": body, **fields}))


async def test_time_overlap_of_competing_brands(client: httpx.AsyncClient, factory: Factory,
                                                runtime: Runtime) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    cola, pop, shoes = await market.brand("soft drinks"), await market.brand("Soft Drinks"), await market.brand("shoes")
    made = await rule(market, {"kind": "time_overlap"})
    streamer = await market.streamer()
    march = {"starts_at": "2026-03-01T00:00:00Z", "ends_at": "2026-04-01T00:00:00Z"}
    first = await market.campaign(cola, categories=["gaming"], **march)
    assert (await market.join(first["id"], streamer)).status_code == 201
    # A competitor (same industry, any case) overlapping: refused, with the rule and the reason.
    body = problem(await market.join((await market.campaign(pop, categories=["sports"], **march))["id"], streamer),
                   409, "conflict")
    assert body["rule"] == {"id": made["id"], "name": "time_overlap", "kind": "time_overlap"}
    assert first["id"] in body["reason"]
    # Another industry, or the same brand: fine.
    assert (await market.join((await market.campaign(shoes, categories=["sports"], **march))["id"],
                              streamer)).status_code == 201
    assert (await market.join((await market.campaign(cola, categories=["technology"], **march))["id"],
                              streamer)).status_code == 201
    # Not overlapping: fine (the second starts when the first ends).
    after = await market.campaign(pop, categories=["lifestyle"], starts_at="2026-04-01T00:00:00Z")
    verdicts = await market.ok("GET", f"/v1/campaigns/{after['id']}/conflicts", headers=keys.server,
                               params={"streamer_id": streamer.id})
    assert [v["refused"] for v in verdicts] == [False]
    # Disabled: not evaluated.
    await market.ok("PUT", f"/v1/conflict-rules/{made['id']}", headers=keys.server,
                    json={"name": "time_overlap", "enabled": False, "rule": {"kind": "time_overlap"}})
    assert (await market.join((await market.campaign(pop, categories=["entertainment"], **march))["id"],
                              streamer)).status_code == 201


async def test_time_overlap_by_brand_groups(client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    a, b, c = await market.brand("x"), await market.brand("y"), await market.brand("z")
    await rule(market, {"kind": "time_overlap", "competitors": "brand_groups", "brand_groups": [[a.id, b.id]]})
    streamer = await market.streamer()
    assert (await market.join((await market.campaign(a, categories=["gaming"]))["id"], streamer)).status_code == 201
    problem(await market.join((await market.campaign(b, categories=["sports"]))["id"], streamer), 409, "conflict")
    assert (await market.join((await market.campaign(c, categories=["sports"]))["id"], streamer)).status_code == 201
    problem(await client.post("/v1/conflict-rules", headers=keys.server, json={
        "name": "bad", "rule": {"kind": "time_overlap", "competitors": "brand_groups", "brand_groups": [[a.id]]}}),
        422, "validation_failed")


async def test_category_conflict_on_join_and_on_approval(client: httpx.AsyncClient, factory: Factory,
                                                         runtime: Runtime) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    await market.settings(categories=["gaming", "sports", "lifestyle", "alcohol", "kids"])
    await rule(market, {"kind": "category_conflict", "pairs": [["alcohol", "kids"]], "max_active_per_category": 2},
               applies_on=["join", "approval"])
    brand = await market.brand()
    streamer = await market.streamer(categories=["gaming", "sports", "alcohol", "kids"])
    assert (await market.join((await market.campaign(brand, categories=["alcohol"]))["id"], streamer)).status_code \
        == 201
    body = problem(await market.join((await market.campaign(brand, categories=["kids"]))["id"], streamer), 409,
                   "conflict")
    assert "kids" in body["reason"] and "alcohol" in body["reason"]

    # At most two running campaigns sharing a category (the campaigns' own categories are keys too, so
    # the third uses another category's key).
    g1 = await market.campaign(brand, categories=["gaming"])
    g2 = await market.campaign(brand, categories=["gaming", "sports"])
    g3 = await market.campaign(brand, categories=["gaming", "lifestyle"])
    assert (await market.join(g1["id"], streamer)).status_code == 201
    assert (await market.join(g2["id"], streamer)).status_code == 201
    body = problem(await market.join(g3["id"], streamer), 409, "conflict")
    assert "gaming" in body["reason"]

    # On approval: a campaign may not be both sides of a pair.
    await market.deposit(brand, 10_000)
    both = await market.campaign(brand, categories=["alcohol", "kids"], approve=False)
    await market.ok("POST", f"/v1/campaigns/{both['id']}/submit", headers=brand.headers)
    body = problem(await client.post(f"/v1/campaigns/{both['id']}/approve", headers=keys.server), 409, "conflict")
    assert body["rule"]["kind"] == "category_conflict"
    assert (await market.campaign_state(both["id"]))["status"] == "pending_review"  # nothing held
    assert (await market.wallet("brand", brand.id))["held"] == 5 * 10_000


async def test_platform_exclusivity(client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    await rule(market, {"kind": "platform_exclusivity", "platforms": ["twitch"], "max_active": 1})
    brand = await market.brand()
    streamer = await market.streamer(platforms={"twitch": 500, "youtube": 500})
    on_twitch = {"targeting": {"platforms": ["twitch"]}}
    assert (await market.join((await market.campaign(brand, categories=["gaming"], **on_twitch))["id"],
                              streamer)).status_code == 201
    body = problem(await market.join((await market.campaign(brand, categories=["sports"], **on_twitch))["id"],
                                     streamer), 409, "conflict")
    assert "twitch" in body["reason"]
    on_youtube = {"targeting": {"platforms": ["youtube"]}}
    assert (await market.join((await market.campaign(brand, categories=["sports"], **on_youtube))["id"],
                              streamer)).status_code == 201


async def test_custom_rules_in_the_condition_language(client: httpx.AsyncClient, factory: Factory,
                                                      runtime: Runtime) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    # No betting campaigns for streamers in DE; at most two running campaigns in all.
    await rule(market, {"kind": "custom", "message": "betting is not allowed in Germany", "condition": {"all": [
        {"field": "data.streamer.country", "op": "eq", "value": "DE"},
        {"field": "data.campaign.brand_industry", "op": "eq", "value": "betting"}]}})
    await rule(market, {"kind": "custom", "message": "two campaigns at a time",
                        "condition": {"field": "data.active.count", "op": "gte", "value": 2}})
    bet, shoes = await market.brand("betting"), await market.brand("shoes")
    german, french = await market.streamer(country="DE"), await market.streamer(country="FR")
    betting = await market.campaign(bet)
    body = problem(await market.join(betting["id"], german), 409, "conflict")
    assert body["reason"] == "betting is not allowed in Germany"
    assert (await market.join(betting["id"], french)).status_code == 201
    assert (await market.join((await market.campaign(shoes, categories=["sports"]))["id"], french)).status_code \
        == 201
    body = problem(await market.join((await market.campaign(shoes, categories=["lifestyle"]))["id"], french), 409,
                   "conflict")
    assert body["reason"] == "two campaigns at a time"
    # Only field and level conditions over the three documents are accepted.
    for condition in ({"stat": "wins", "op": "gte", "value": 1},
                      {"field": "data.password", "op": "exists"}):
        problem(await client.post("/v1/conflict-rules", headers=keys.server, json={
            "name": "bad", "rule": {"kind": "custom", "condition": condition}}), 422, "validation_failed")
    listed = await market.ok("GET", "/v1/conflict-rules", headers=keys.server)
    assert [r["rule"]["kind"] for r in listed["items"]] == ["custom", "custom"]
    await market.ok("DELETE", f"/v1/conflict-rules/{listed['items'][1]['id']}", 204, headers=keys.server)
    problem(await client.get(f"/v1/conflict-rules/{listed['items'][1]['id']}", headers=keys.server), 404,
            "rule_not_found")
