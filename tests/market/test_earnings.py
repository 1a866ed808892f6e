"""Impressions and earnings: the rounding rule carries remainders exactly, racing batches never spend more
than the budget, duplicates count once, bounds per minute hold, and the overlay records impressions."""

from __future__ import annotations

import asyncio
import random

import httpx

from questline.kit.clock import ManualClock
from questline.kit.runtime import Runtime
from tests.conftest import Factory, problem
from tests.market.helpers import Market, verify


async def test_rounding_carries_remainders_per_participation(client: httpx.AsyncClient, factory: Factory,
                                                             runtime: Runtime) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    await market.settings(commission_bps=1_250)  # 12.5%
    brand = await market.brand()
    campaign = await market.campaign(brand, budget=1_000_000, rate=333, impression_target=10**9)
    streamer = await market.streamer()
    assert (await market.join(campaign["id"], streamer)).status_code == 201
    rng = random.Random(7)
    total = gross = fee = 0
    for i in range(25):
        n = rng.randint(1, 17)
        out = await market.impressions(campaign["id"], [(f"r-{i}", streamer.id, n)])
        total, gross, fee = total + n, gross + out["paid_gross"], fee + out["paid_fee"]
        # After every batch: exactly what the totals owe, never a cent more or less.
        assert gross == 333 * total // 1000
        assert fee == gross * 1_250 // 10_000
    wallet = await market.wallet("streamer", streamer.id)
    assert wallet == {"available": 0, "held": 0, "pending": gross - fee}
    assert await market.wallet("platform") == {"available": fee, "held": 0, "pending": 0}
    assert await verify(runtime, keys.app_id) == []


async def test_racing_batches_never_spend_more_than_the_budget(client: httpx.AsyncClient, factory: Factory,
                                                               runtime: Runtime) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    brand = await market.brand()
    # 1,000 cents; each impression is worth a cent; the target is far away, so only the budget stops it.
    campaign = await market.campaign(brand, budget=1_000, rate=1_000, impression_target=10**9)
    streamers = [await market.streamer() for _ in range(4)]
    for streamer in streamers:
        assert (await market.join(campaign["id"], streamer)).status_code == 201

    async def batch(i: int) -> httpx.Response:
        s = streamers[i % len(streamers)]
        return await client.post(f"/v1/campaigns/{campaign['id']}/impressions", headers=keys.server, json={
            "impressions": [{"id": f"b{i}-{j}", "streamer_id": s.id, "count": 37} for j in range(3)]})

    replies = await asyncio.gather(*(batch(i) for i in range(16)))  # 16 × 111 = 1,776 cents asked for
    assert all(r.status_code in (200, 409) for r in replies), [r.text for r in replies]
    paid = sum(r.json()["paid_gross"] for r in replies if r.status_code == 200)
    for reply in replies:
        if reply.status_code == 409:
            problem(reply, 409, "campaign_inactive")  # arrived after the budget completed it
    state = await market.campaign_state(campaign["id"])
    assert state["status"] == "completed" and state["completion_reason"] == "budget_exhausted"
    assert paid == state["spent"] <= 1_000
    earned = sum([(await market.wallet("streamer", s.id))["available"] for s in streamers])
    platform = (await market.wallet("platform"))["available"]
    brand_back = (await market.wallet("brand", brand.id))["available"]
    assert earned + platform == paid and brand_back == 1_000 - paid
    assert await verify(runtime, keys.app_id) == []


async def test_duplicates_paused_strangers_and_the_minute_bound(client: httpx.AsyncClient, factory: Factory,
                                                                runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    await market.settings(impressions_per_minute=100, overlay_impressions_per_minute=10)
    brand = await market.brand()
    campaign = await market.campaign(brand, budget=100_000, rate=1_000)
    ann, ben, cat = await market.streamer(), await market.streamer(), await market.streamer()
    for streamer in (ann, ben):
        assert (await market.join(campaign["id"], streamer)).status_code == 201
    await market.ok("POST", f"/v1/campaigns/{campaign['id']}/participants/{ben.id}/pause", headers=ben.headers)

    out = await market.impressions(campaign["id"], [
        ("a1", ann.id, 60), ("a1", ann.id, 60), ("a2", ann.id, 30), ("a3", ann.id, 20),
        ("b1", ben.id, 5), ("c1", cat.id, 5)])
    assert out["accepted"] == 90 and out["duplicates"] == ["a1"]
    refused = {(r["id"], r["code"]) for r in out["refused"]}
    assert refused == {("a3", "rate_limited"), ("b1", "participation_not_active"), ("c1", "not_participating")}
    # The refused record counts once it fits: in the next minute.
    again = await market.impressions(campaign["id"], [("a3", ann.id, 20), ("a1", ann.id, 60)])
    assert again["refused"][0]["code"] == "rate_limited" and again["duplicates"] == ["a1"]
    clock.advance(minutes=1)
    later = await market.impressions(campaign["id"], [("a3", ann.id, 20)])
    assert later["accepted"] == 20 and later["paid_gross"] == 20
    participant = await market.ok("GET", f"/v1/campaigns/{campaign['id']}/participants/{ann.id}",
                                  headers=ann.headers)
    assert participant["impressions"] == 110 and participant["earned"] == 99 and participant["pending"] == 99


async def test_the_overlay_page_records_impressions_and_rotation_revokes_it(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    await market.settings(overlay_impressions_per_minute=2)
    brand = await market.brand()
    campaign = await market.campaign(brand, budget=10_000, rate=10_000)
    streamer = await market.streamer()
    joined = await market.join(campaign["id"], streamer)
    url = joined.json()["overlay_url"].removeprefix("http://questline.test")
    page = await client.get(url)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'nonce-" in page.headers["content-security-policy"] and "/impressions" in page.text
    assert 'data-running="true"' in page.text

    first = await client.post(f"{url}/impressions", json={"impressions": [{"id": "overlay-0001"}]})
    assert first.status_code == 200 and first.json()["accepted"] == 1 and first.json()["paid_gross"] == 10
    # Overlays count one impression a record and at most overlay_impressions_per_minute a minute.
    second = await client.post(f"{url}/impressions",
                               json={"impressions": [{"id": "overlay-0002"}, {"id": "overlay-0003"}]})
    assert second.json()["accepted"] == 1 and second.json()["refused"][0]["code"] == "rate_limited"
    problem(await client.post(f"{url}/impressions", json={"impressions": [{"id": "x", "count": 5}]}), 422,
            "validation_failed")

    rotated = await market.ok("POST", f"/v1/campaigns/{campaign['id']}/participants/{streamer.id}/overlay/rotate",
                              headers=streamer.headers)
    problem(await client.get(url), 404, "overlay_not_found")
    problem(await client.post(f"{url}/impressions", json={"impressions": [{"id": "overlay-0004"}]}), 404,
            "overlay_not_found")
    fresh = rotated["overlay_url"].removeprefix("http://questline.test")
    assert (await client.get(fresh)).status_code == 200
    problem(await client.get("/v1/overlay/not-a-real-token-at-all"), 404, "overlay_not_found")

    # Leaving stops the page (it shows nothing and reports nothing).
    await market.ok("POST", f"/v1/campaigns/{campaign['id']}/participants/{streamer.id}/leave",
                    headers=streamer.headers)
    assert 'data-running="false"' in (await client.get(fresh)).text
    late = await client.post(f"{fresh}/impressions", json={"impressions": [{"id": "overlay-0005"}]})
    assert late.json()["refused"][0]["code"] == "participation_not_active"
