"""Completion by each criterion in the seed's priority order, manual and cancelled, and exactly once when
several processes check at the same time."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx

from questline.campaigns import completion
from questline.kit.clock import ManualClock
from questline.kit.db import unit_of_work
from questline.kit.runtime import Runtime
from questline.roles import build_scheduler
from tests.conftest import Factory, problem
from tests.market.helpers import Market, verify


async def test_impression_target_comes_first(client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    brand = await market.brand()
    # A target of 100 impressions that also spends 95%+ of the budget: the target is the reason given.
    campaign = await market.campaign(brand, budget=1_000, rate=9_500, impression_target=100)
    streamer = await market.streamer()
    assert (await market.join(campaign["id"], streamer)).status_code == 201
    assert (await market.impressions(campaign["id"], [("a", streamer.id, 99)]))["campaign_status"] == "active"
    done = await market.impressions(campaign["id"], [("b", streamer.id, 1)])
    assert done["campaign_status"] == "completed" and done["completion_reason"] == "impression_target_reached"
    completed = await market.outbox("campaign.completed")
    assert [m["data"]["reason"] for m in completed] == ["impression_target_reached"]
    # 100 impressions at 9,500 per mille: 950 spent (95% too); 95 commission, 855 to the streamer, 50 back.
    assert completed[0]["data"]["budget_returned"] == 50 and completed[0]["data"]["earnings_released"] == 855


async def test_ninety_five_percent_of_the_budget(client: httpx.AsyncClient, factory: Factory,
                                                 runtime: Runtime) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    brand = await market.brand()
    campaign = await market.campaign(brand, budget=10_000, rate=1_000, impression_target=1_000_000)
    streamer = await market.streamer()
    assert (await market.join(campaign["id"], streamer)).status_code == 201
    assert (await market.impressions(campaign["id"], [("a", streamer.id, 9_499)]))["campaign_status"] == "active"
    done = await market.impressions(campaign["id"], [("b", streamer.id, 1)])
    assert done["completion_reason"] == "budget_exhausted"
    # The 5% left goes back to the brand.
    assert await market.wallet("brand", brand.id) == {"available": 500, "held": 0, "pending": 0}
    assert await verify(runtime, keys.app_id) == []


async def test_end_date_by_the_scheduled_check_even_without_participants(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    brand = await market.brand()
    quiet = await market.campaign(brand, ends_at="2026-03-11T00:00:00Z")
    busy = await market.campaign(brand, ends_at="2026-03-11T00:00:00Z")
    streamer = await market.streamer()
    assert (await market.join(busy["id"], streamer)).status_code == 201
    await market.impressions(busy["id"], [("a", streamer.id, 2_000)])  # 1,000 cents earned, 900 net

    clock.set(datetime(2026, 3, 11, 0, 5, tzinfo=UTC))
    async with unit_of_work(runtime.sessions) as session:
        await completion.check_all(session, runtime, keys.app_id)
    for campaign in (quiet, busy):
        state = await market.campaign_state(campaign["id"])
        assert state["status"] == "completed" and state["completion_reason"] == "time_expired"
    assert await market.wallet("brand", brand.id) == {"available": 19_000, "held": 0, "pending": 0}
    assert await market.wallet("streamer", streamer.id) == {"available": 900, "held": 0, "pending": 0}
    assert (await market.key(streamer))["status"] == "cooloff"
    # A batch arriving after the end is refused (the campaign is over).
    problem(await client.post(f"/v1/campaigns/{busy['id']}/impressions", headers=keys.server,
                              json={"impressions": [{"id": "late", "streamer_id": streamer.id}]}), 409,
            "campaign_inactive")


async def test_an_impression_batch_after_the_end_date_completes_it(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    brand = await market.brand()
    campaign = await market.campaign(brand, ends_at="2026-03-10T13:00:00Z")
    streamer = await market.streamer()
    assert (await market.join(campaign["id"], streamer)).status_code == 201
    clock.advance(hours=2)
    late = await market.impressions(campaign["id"], [("a", streamer.id, 5)])
    assert late["accepted"] == 0 and late["campaign_status"] == "completed"
    assert late["completion_reason"] == "time_expired" and late["refused"][0]["code"] == "campaign_inactive"


async def test_manual_completion_and_cancellation(client: httpx.AsyncClient, factory: Factory,
                                                  runtime: Runtime) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    brand = await market.brand()
    streamer = await market.streamer()
    manual = await market.campaign(brand)
    assert (await market.join(manual["id"], streamer)).status_code == 201
    await market.impressions(manual["id"], [("a", streamer.id, 1_000)])  # 500 gross, 450 net
    check = await market.ok("POST", f"/v1/campaigns/{manual['id']}/completion/check", headers=brand.headers)
    assert check["completed_now"] is False and check["criteria"]["target_progress"] == 0.05
    done = await market.ok("POST", f"/v1/campaigns/{manual['id']}/complete", headers=brand.headers)
    assert done["status"] == "completed" and done["completion_reason"] == "manual"
    problem(await client.post(f"/v1/campaigns/{manual['id']}/complete", headers=brand.headers), 409,
            "invalid_transition")
    assert await market.wallet("streamer", streamer.id) == {"available": 450, "held": 0, "pending": 0}

    cancelled = await market.campaign(brand, categories=["sports"])
    assert (await market.join(cancelled["id"], streamer)).status_code == 201
    await market.impressions(cancelled["id"], [("b", streamer.id, 100)])  # 50 gross, 45 net
    out = await market.ok("POST", f"/v1/campaigns/{cancelled['id']}/cancel", headers=brand.headers)
    assert out["status"] == "cancelled"
    assert (await market.key(streamer, "sports"))["status"] == "cooloff"
    assert await market.wallet("streamer", streamer.id) == {"available": 495, "held": 0, "pending": 0}
    assert await market.wallet("brand", brand.id) == {"available": 20_000 - 500 - 50, "held": 0, "pending": 0}
    assert [m["data"]["reason"] for m in await market.outbox("campaign.cancelled")] == ["cancelled"]

    draft = await market.campaign(brand, approve=False)
    assert (await market.ok("POST", f"/v1/campaigns/{draft['id']}/cancel", headers=brand.headers))["status"] \
        == "cancelled"
    assert await verify(runtime, keys.app_id) == []


async def test_two_processes_checking_at_once_complete_once(client: httpx.AsyncClient, factory: Factory,
                                                            runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    brand = await market.brand()
    campaigns = [await market.campaign(brand, ends_at="2026-03-10T13:00:00Z") for _ in range(3)]
    streamer = await market.streamer()
    assert (await market.join(campaigns[0]["id"], streamer)).status_code == 201
    await market.impressions(campaigns[0]["id"], [("a", streamer.id, 10)])
    clock.set(datetime(2026, 3, 10, 13, 5, tzinfo=UTC))

    # Two schedulers (as two processes would have) tick at once, and an admin runs the check meanwhile.
    first, second = build_scheduler(runtime), build_scheduler(runtime)
    ran = await asyncio.gather(first.tick(), second.tick(),
                               client.post("/v1/campaigns/completion/run", headers=keys.server))
    claimed = [names for names in ran[:2] if completion.JOB_NAME in names]
    assert len(claimed) == 1
    completed = await market.outbox("campaign.completed")
    assert sorted(m["data"]["campaign_id"] for m in completed) == sorted(c["id"] for c in campaigns)
    assert len(completed) == 3
    assert await market.wallet("streamer", streamer.id) == {"available": 5, "held": 0, "pending": 0}
    released = [m for m in await market.outbox("gkey.released") if m["data"]["streamer_id"] == streamer.id]
    assert len(released) == 1
    status = await market.ok("GET", "/v1/campaigns/completion/status", headers=keys.server)
    assert status["active"] == 0 and status["completed_last_24h"] == 3 and status["job"]["every_seconds"] == 300
    assert await verify(runtime, keys.app_id) == []
