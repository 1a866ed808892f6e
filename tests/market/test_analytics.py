"""Discovery for streamers, metrics and forecasts for brands, performance for streamers, CSV exports."""

from __future__ import annotations

import csv
import io

import httpx

from questline.kit.clock import ManualClock
from questline.kit.runtime import Runtime
from tests.conftest import Factory, problem
from tests.market.helpers import Market


async def test_campaigns_open_to_a_streamer(client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    brand = await market.brand()
    streamer = await market.streamer(content_categories=["gaming", "sports"])
    small = await market.campaign(brand, budget=1_000, categories=["gaming"])
    big = await market.campaign(brand, budget=9_000, categories=["sports"])
    anywhere = await market.campaign(brand, budget=5_000, categories=[])
    await market.campaign(brand, budget=8_000, categories=["lifestyle"])  # not their category
    await market.campaign(brand, budget=7_000, approve=False)  # not active
    joined = await market.campaign(brand, budget=6_000, categories=["gaming"])
    assert (await market.join(joined["id"], streamer)).status_code == 201

    page = await market.ok("GET", "/v1/campaigns", headers=streamer.headers, params={"limit": 2})
    assert [c["id"] for c in page["items"]] == [big["id"], anywhere["id"]]
    rest = await market.ok("GET", "/v1/campaigns", headers=streamer.headers,
                           params={"limit": 2, "cursor": page["next_cursor"]})
    assert [c["id"] for c in rest["items"]] == [small["id"]] and rest["next_cursor"] is None
    by_server = await market.ok("GET", "/v1/campaigns", headers=keys.server, params={"available_for": streamer.id})
    assert [c["id"] for c in by_server["items"]] == [big["id"], anywhere["id"], small["id"]]
    # A streamer asking for another streamer's list, or a forged cursor, is refused.
    other = await market.streamer()
    problem(await client.get("/v1/campaigns", headers=streamer.headers, params={"available_for": other.id}), 404,
            "streamer_not_found")
    problem(await client.get("/v1/campaigns", headers=streamer.headers, params={"cursor": "WyJ4Il0"}), 400,
            "invalid_cursor")
    # A brand lists its own campaigns only.
    mine = await market.ok("GET", "/v1/campaigns", headers=brand.headers)
    assert len(mine["items"]) == 6
    other_brand = await market.brand()
    assert (await market.ok("GET", "/v1/campaigns", headers=other_brand.headers))["items"] == []


async def test_metrics_forecast_and_performance_with_csv(client: httpx.AsyncClient, factory: Factory,
                                                         runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    brand = await market.brand()
    campaign = await market.campaign(brand, budget=100_000, rate=2_000)  # target 50,000 impressions
    ann = await market.streamer(timezone="America/New_York")
    ben = await market.streamer()
    for streamer in (ann, ben):
        assert (await market.join(campaign["id"], streamer)).status_code == 201
    await market.impressions(campaign["id"], [("a1", ann.id, 1_000), ("b1", ben.id, 500)])
    clock.advance(hours=1)
    await market.impressions(campaign["id"], [("a2", ann.id, 1_000)])
    for account in (brand, ann, ben):
        await market.sign_in(account)

    metrics = await market.ok("GET", f"/v1/campaigns/{campaign['id']}/metrics", headers=brand.headers)
    assert metrics["impressions"] == 2_500 and metrics["spent"] == 5_000 and metrics["commission"] == 500
    assert metrics["paid_to_streamers"] == 4_500 and metrics["remaining"] == 95_000
    assert metrics["effective_rate_per_mille"] == 2_000
    assert metrics["participants"] == {"total": 2, "active": 2, "paused": 0, "left": 0, "completed": 0,
                                       "removed": 0}
    assert [(p["impressions"], p["spent"]) for p in metrics["timeline"]] == [(1_500, 3_000), (1_000, 2_000)]
    forecast = metrics["forecast"]
    # 2,500 impressions in the last 24 hours: 104.17 an hour; 47,500 to go -> 456 hours.
    assert forecast["pace_per_hour"] == round(2_500 / 24, 3)
    assert forecast["projected_reason"] == "budget_exhausted"  # 95% of the budget comes before the target
    assert abs(forecast["hours_to_budget"] - (95_000 - 5_000) / (5_000 / 24)) < 0.01
    days = await market.ok("GET", f"/v1/campaigns/{campaign['id']}/metrics", headers=brand.headers,
                           params={"granularity": "day"})
    assert [(p["impressions"], p["spent"]) for p in days["timeline"]] == [(2_500, 5_000)]

    timeline = await client.get(f"/v1/campaigns/{campaign['id']}/metrics.csv", headers=brand.headers)
    assert timeline.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(timeline.text)))
    assert [int(r["impressions"]) for r in rows] == [1_500, 1_000]
    people = await client.get(f"/v1/campaigns/{campaign['id']}/metrics.csv", headers=brand.headers,
                              params={"of": "participants"})
    rows = list(csv.DictReader(io.StringIO(people.text)))
    assert {r["streamer_id"]: int(r["earned"]) for r in rows} == {ann.id: 3_600, ben.id: 900}

    performance = await market.ok("GET", f"/v1/streamers/{ann.id}/performance", headers=ann.headers)
    assert performance["timezone"] == "America/New_York"
    assert [(c["campaign_id"], c["impressions"], c["earned"], c["pending"]) for c in performance["campaigns"]] == \
        [(campaign["id"], 2_000, 3_600, 3_600)]
    assert performance["months"] == [{"month": "2026-03", "currency": "USD", "impressions": 2_000, "earned": 3_600}]
    months = await client.get(f"/v1/streamers/{ann.id}/performance.csv", headers=ann.headers, params={"of": "months"})
    assert months.text.splitlines() == ["month,currency,impressions,earned", "2026-03,USD,2000,3600"]
    problem(await client.get(f"/v1/streamers/{ann.id}/performance", headers=ben.headers), 404)
    problem(await client.get(f"/v1/campaigns/{campaign['id']}/metrics", headers=ann.headers), 403,
            "caller_not_allowed")
