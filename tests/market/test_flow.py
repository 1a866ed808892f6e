"""The marketplace end to end: a brand funds a campaign, two streamers join, impressions flow until the
target, the campaign completes, keys cool off, earnings land, and the books balance."""

from __future__ import annotations

from datetime import datetime

import httpx

from questline.kit.runtime import Runtime
from tests.conftest import Factory
from tests.market.helpers import Market, verify


async def test_a_campaign_from_funding_to_earnings(client: httpx.AsyncClient, factory: Factory,
                                                   runtime: Runtime) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    brand = await market.brand()
    await market.deposit(brand, 50_000)
    assert await market.wallet("brand", brand.id) == {"available": 50_000, "held": 0, "pending": 0}

    # 10,000 cents at 500 per mille buys 20,000 impressions; commission 10% by default.
    campaign = await market.campaign(brand, budget=10_000, rate=500, fund=False)
    assert campaign["status"] == "active" and campaign["impression_target"] == 20_000
    assert await market.wallet("brand", brand.id) == {"available": 40_000, "held": 10_000, "pending": 0}

    ann, ben = await market.streamer(), await market.streamer()
    for streamer in (ann, ben):
        joined = await market.join(campaign["id"], streamer)
        assert joined.status_code == 201, joined.text
        assert joined.json()["overlay_url"].startswith("http://questline.test/v1/overlay/")
        assert joined.json()["energy_remaining"] == 9
    assert (await market.key(ann))["status"] == "locked"

    first = await market.impressions(campaign["id"], [("a-1", ann.id, 3), ("b-1", ben.id, 1)])
    # Ann: 500 * 3 // 1000 = 1 cent; Ben: 500 * 1 // 1000 = 0 (carried).
    assert first["accepted"] == 4 and first["paid_gross"] == 1
    again = await market.impressions(campaign["id"], [("a-1", ann.id, 3), ("b-2", ben.id, 1)])
    assert again["duplicates"] == ["a-1"] and again["accepted"] == 1 and again["paid_gross"] == 1  # Ben: 2 -> 1 cent

    # Up to the target: 20,000 impressions in all.
    done = await market.impressions(campaign["id"], [("a-2", ann.id, 9_997), ("b-3", ben.id, 9_998)])
    assert done["campaign_status"] == "completed" and done["completion_reason"] == "impression_target_reached"
    state = await market.campaign_state(campaign["id"])
    assert state["impressions"] == 20_000 and state["spent"] == 10_000 and state["remaining"] == 0

    # Earnings landed (available now), the platform kept 10%, the brand got nothing back (all spent).
    ann_wallet, ben_wallet = await market.wallet("streamer", ann.id), await market.wallet("streamer", ben.id)
    assert ann_wallet["pending"] == 0 and ben_wallet["pending"] == 0
    assert ann_wallet["available"] + ben_wallet["available"] == 9_000
    assert await market.wallet("platform") == {"available": 1_000, "held": 0, "pending": 0}
    assert await market.wallet("brand", brand.id) == {"available": 40_000, "held": 0, "pending": 0}

    # Keys cool off for the campaign's 720 hours.
    key = await market.key(ann)
    assert key["status"] == "cooloff" and key["last_brand_id"] == brand.id and key["last_brand_cooloff_hours"] == 720
    assert (datetime.fromisoformat(key["cooloff_until"]) - runtime.clock.now()).total_seconds() == 720 * 3600

    types = [m["type"] for m in await market.outbox()]
    assert types.count("campaign.joined") == 2 and types.count("campaign.completed") == 1
    assert types.count("gkey.released") == 2 and types.count("energy.consumed") == 2
    assert await verify(runtime, keys.app_id) == []
