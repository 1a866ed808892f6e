"""The join chain: each check refuses in the seed's order with its own code and consumes nothing;
racing joins for the last energy pack or the same key succeed once."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from questline.kit.clock import ManualClock
from questline.kit.runtime import Runtime
from tests.conftest import AppKeys, Factory, problem
from tests.market.helpers import Account, Market, count, idem, verify


async def snapshot(market: Market, runtime: Runtime, keys: AppKeys, streamer: Account) -> dict[str, Any]:
    """Everything a join of this streamer would consume or write."""
    energy = await market.energy(streamer)
    mentions = [m for m in await market.outbox() if m["data"].get("streamer_id") == streamer.id]
    return {
        "energy": (energy["current"], energy["daily_used"]),
        "keys": [(k["category"], k["status"], k["locked_campaign_id"]) for k in
                 (await market.ok("GET", f"/v1/streamers/{streamer.id}/keys", headers=keys.server))["keys"]],
        "participations": await count(runtime, "participations", keys.app_id, streamer_id=streamer.id),
        "key_rows": await count(runtime, "gkeys", keys.app_id, streamer_id=streamer.id),
        "energy_rows": await count(runtime, "energy", keys.app_id, streamer_id=streamer.id),
        "outbox": len(mentions),
        "wallet": await market.wallet("streamer", streamer.id),
    }


async def test_each_check_refuses_with_its_code_and_consumes_nothing(client: httpx.AsyncClient, factory: Factory,
                                                                     runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    await market.settings(energy_max=2)
    brand, rival = await market.brand("beverages"), await market.brand("beverages")
    streamer = await market.streamer(platforms={"twitch": 5000}, categories=["gaming"], country="DE")
    before = await snapshot(market, runtime, keys, streamer)

    # Not a streamer: a brand's token or a client key may not join.
    live = await market.campaign(brand)
    problem(await client.post(f"/v1/campaigns/{live['id']}/join", headers=idem(brand.headers), json={}), 403,
            "caller_not_allowed")
    problem(await client.post(f"/v1/campaigns/{live['id']}/join", headers=idem(keys.client), json={}), 403,
            "caller_not_allowed")
    # The server key must say for whom; another streamer's id through a streamer's token is a 404.
    problem(await client.post(f"/v1/campaigns/{live['id']}/join", headers=idem(keys.server), json={}), 422,
            "streamer_required")
    other = await market.streamer()
    problem(await client.post(f"/v1/campaigns/{live['id']}/join", headers=idem(streamer.headers),
                              json={"streamer_id": other.id}), 404, "streamer_not_found")

    draft = await market.campaign(brand, approve=False)
    problem(await market.join(draft["id"], streamer), 409, "campaign_inactive")
    later = await market.campaign(brand, starts_at="2026-04-01T00:00:00Z")
    problem(await market.join(later["id"], streamer), 409, "campaign_inactive")

    spent = await market.campaign(brand, budget=1_000, rate=1_000, impression_target=5_000)
    helper = await market.streamer()
    assert (await market.join(spent["id"], helper)).status_code == 201
    assert (await market.impressions(spent["id"], [("x", helper.id, 949)]))["campaign_status"] == "active"
    done = await market.impressions(spent["id"], [("y", helper.id, 50)])  # 999 of 1000 cents: 95% spent
    assert done["completion_reason"] == "budget_exhausted"
    problem(await market.join(spent["id"], streamer), 409, "budget_exhausted")

    targeted = await market.campaign(brand, targeting={"platforms": ["youtube"]})
    body = problem(await market.join(targeted["id"], streamer), 403, "not_eligible")
    assert "youtube" in body["reason"]
    for targeting in ({"min_followers": 10_000}, {"countries": ["FR"]}, {"categories": ["sports"]}):
        problem(await market.join((await market.campaign(brand, targeting=targeting))["id"], streamer), 403,
                "not_eligible")

    assert await snapshot(market, runtime, keys, streamer) == before

    # G-Key: the gaming key is locked with another campaign.
    first = await market.campaign(rival)
    assert (await market.join(first["id"], streamer)).status_code == 201
    problem(await market.join(live["id"], streamer), 409, "gkey_unavailable")
    problem(await market.join(first["id"], streamer), 409, "already_joined")

    # Energy: two packs a day, both used.
    sports = await market.campaign(rival, categories=["sports"])
    assert (await market.join(sports["id"], streamer)).status_code == 201
    after_two = await snapshot(market, runtime, keys, streamer)
    tech = await market.campaign(brand, categories=["technology"])
    body = problem(await market.join(tech["id"], streamer), 409, "no_energy")
    assert body["next_reset_at"] == "2026-03-11T00:00:00+00:00"  # the streamer's next local midnight (UTC)
    assert await snapshot(market, runtime, keys, streamer) == after_two

    # Conflict rules: the last check.
    clock.advance(days=1)
    await market.ok("POST", "/v1/conflict-rules", 201, headers=keys.server, json={
        "name": "no rival drinks", "rule": {"kind": "time_overlap"}})
    # (a day later the streamer's token has expired: the server key acts for them)
    body = problem(await client.post(f"/v1/campaigns/{tech['id']}/join", headers=idem(keys.server),
                                     json={"streamer_id": streamer.id}), 409, "conflict")
    assert body["rule"]["kind"] == "time_overlap" and rival.id in body["reason"]
    # A new local day: both packs back (as seen; the refused join wrote nothing).
    assert await snapshot(market, runtime, keys, streamer) == {**after_two, "energy": (2, 0)}
    assert await verify(runtime, keys.app_id) == []


async def test_join_order_first_failing_check_wins(client: httpx.AsyncClient, factory: Factory,
                                                   runtime: Runtime) -> None:
    """A streamer who fails targeting AND has no key AND no energy hears about targeting."""
    keys = await factory.app()
    market = Market(client, keys)
    brand = await market.brand()
    streamer = await market.streamer(platforms={"twitch": 100})
    await market.settings(energy_max=1)
    assert (await market.join((await market.campaign(brand))["id"], streamer)).status_code == 201
    picky = await market.campaign(brand, targeting={"min_followers": 1000})
    problem(await market.join(picky["id"], streamer), 403, "not_eligible")
    open_ = await market.campaign(brand)
    problem(await market.join(open_["id"], streamer), 409, "gkey_unavailable")
    other = await market.campaign(brand, categories=["sports"])
    problem(await market.join(other["id"], streamer), 409, "no_energy")


async def test_racing_joins_for_the_last_energy_pack_succeed_once(client: httpx.AsyncClient, factory: Factory,
                                                                   runtime: Runtime) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    await market.settings(energy_max=1)
    streamer = await market.streamer()
    brands = [await market.brand() for _ in range(4)]
    categories = ["gaming", "sports", "entertainment", "technology"]
    campaigns = [await market.campaign(b, categories=[c]) for b, c in zip(brands, categories, strict=True)]

    replies = await asyncio.gather(*(market.join(c["id"], streamer) for c in campaigns))
    codes = sorted(r.status_code for r in replies)
    assert codes == [201, 409, 409, 409], [r.text for r in replies]
    for reply in replies:
        if reply.status_code == 409:
            problem(reply, 409, "no_energy")
    assert (await market.energy(streamer))["current"] == 0
    assert await count(runtime, "participations", keys.app_id) == 1
    locked = [k for k in (await market.ok("GET", f"/v1/streamers/{streamer.id}/keys", headers=keys.server))["keys"]
              if k["status"] == "locked"]
    assert len(locked) == 1
    assert len(await market.outbox("energy.consumed")) == 1


async def test_racing_joins_for_the_same_key_succeed_once(client: httpx.AsyncClient, factory: Factory,
                                                          runtime: Runtime) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    streamer = await market.streamer()
    campaigns = [await market.campaign(await market.brand(), categories=["gaming"]) for _ in range(5)]

    replies = await asyncio.gather(*(market.join(c["id"], streamer) for c in campaigns))
    assert sorted(r.status_code for r in replies) == [201, 409, 409, 409, 409], [r.text for r in replies]
    for reply in replies:
        if reply.status_code == 409:
            problem(reply, 409, "gkey_unavailable")
    assert (await market.energy(streamer))["current"] == 9  # one pack, for the one join
    assert await count(runtime, "participations", keys.app_id) == 1
    assert len(await market.outbox("gkey.consumed")) == 1

    # And one streamer joining one campaign many times at once: one participation.
    other = await market.streamer()
    replies = await asyncio.gather(*(market.join(campaigns[0]["id"], other) for _ in range(5)))
    assert sorted(r.status_code for r in replies) == [201, 409, 409, 409, 409], [r.text for r in replies]
    assert (await market.energy(other))["current"] == 9
