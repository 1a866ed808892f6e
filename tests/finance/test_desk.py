"""The finance desk: only the finance role and the owner reach it; the fee structure applies to campaigns
approved after a change (running ones keep theirs; the fixed fee is charged once, or the approval is
refused); the review queue catches transactions at or above the threshold, and each verdict is audited."""

from __future__ import annotations

import asyncio

import httpx
import sqlalchemy as sa

from questline.audit.models import AuditEntry
from questline.kit.db import unit_of_work
from questline.kit.runtime import Runtime
from questline.tenancy.schemas import Role
from tests.conftest import Factory, problem
from tests.market.helpers import Market, count, verify


async def test_fee_structure_applies_to_campaigns_approved_after_it(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    finance = (await factory.admin(keys.org_id, Role.FINANCE)).headers(keys.app_id)
    owner = (await factory.admin(keys.org_id, Role.OWNER)).headers(keys.app_id)
    for role in (Role.ADMIN, Role.VIEWER):
        plain = (await factory.admin(keys.org_id, role)).headers(keys.app_id)
        problem(await client.get("/v1/finance/fees", headers=plain), 403, "insufficient_role")
        problem(await client.put("/v1/finance/fees", headers=plain, json={"commission_bps": 0}), 403)
    problem(await client.get("/v1/finance/fees", headers=keys.server), 403, "caller_not_allowed")
    assert (await market.ok("GET", "/v1/finance/fees", headers=finance))["version"] == 0

    brand = await market.brand()
    before = await market.campaign(brand, budget=10_000, rate=500)
    assert before["commission_bps"] == 1_000
    pending = await market.campaign(brand, budget=1_000, rate=500, approve=False)
    await market.ok("POST", f"/v1/campaigns/{pending['id']}/submit", headers=brand.headers)

    fees = await market.ok("PUT", "/v1/finance/fees", headers=finance, json={
        "commission_bps": 2_000, "by_type": {"gaming": 1_500}, "fixed_fees": {"USD": 250}})
    assert (fees["version"], fees["commission_bps"], fees["by_type"], fees["fixed_fees"]) == (
        1, 2_000, {"gaming": 1_500}, {"USD": 250})
    problem(await client.put("/v1/finance/fees", headers=owner, json={"commission_bps": 10_001}), 422)
    assert [f["version"] for f in await market.ok("GET", "/v1/finance/fees/history", headers=owner)] == [1]

    # The running campaign keeps its 10%: 20,000 impressions pay the platform 1,000.
    streamer = await market.streamer()
    assert (await market.join(before["id"], streamer)).status_code == 201
    paid = await market.impressions(before["id"], [("a-1", streamer.id, 20_000)])
    assert (paid["paid_gross"], paid["paid_fee"]) == (10_000, 1_000)

    # A campaign approved now: the gaming commission (15%) and the fixed fee of 250, charged once.
    revenue = (await market.wallet("platform", "revenue"))["available"]
    await market.deposit(brand, 250)
    after = await market.campaign(brand, budget=10_000, rate=500)
    assert after["commission_bps"] == 1_500
    assert (await market.wallet("platform", "revenue"))["available"] == revenue + 250
    assert await count(runtime, "ledger_transactions", keys.app_id, kind="platform_fee") == 1
    assert (await market.join(after["id"], streamer)).status_code == 201
    paid = await market.impressions(after["id"], [("b-1", streamer.id, 2_000)])
    assert (paid["paid_gross"], paid["paid_fee"]) == (1_000, 150)

    # Short of the fixed fee: the approval is refused and nothing changes.
    assert (await market.wallet("brand", brand.id))["available"] == 0
    await market.deposit(brand, 1_000)
    problem(await client.post(f"/v1/campaigns/{pending['id']}/approve", headers=keys.server), 409,
            "insufficient_funds")
    assert (await market.campaign_state(pending["id"]))["status"] == "pending_review"
    await market.deposit(brand, 250)
    approved = await market.ok("POST", f"/v1/campaigns/{pending['id']}/approve", headers=keys.server)
    assert approved["commission_bps"] == 1_500
    assert await count(runtime, "ledger_transactions", keys.app_id, kind="platform_fee") == 2
    assert await verify(runtime, keys.app_id) == []


async def test_review_queue_catches_large_transactions_and_audits_verdicts(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    finance_login = await factory.admin(keys.org_id, Role.FINANCE)
    finance = finance_login.headers(keys.app_id)
    plain = (await factory.admin(keys.org_id, Role.ADMIN)).headers(keys.app_id)
    await market.ok("PUT", "/v1/finance/review-settings", headers=finance,
                    json={"default_review_above": 50_000, "review_above": {"EUR": 10_000}})
    brand = await market.brand()
    await market.deposit(brand, 60_000)
    await market.deposit(brand, 49_999)
    await market.deposit(brand, 12_000, currency="EUR")
    await market.deposit(brand, 9_999, currency="EUR")
    problem(await client.get("/v1/finance/reviews", headers=plain), 403, "insufficient_role")

    queue = await market.ok("GET", "/v1/finance/reviews", headers=finance, params={"status": "pending"})
    assert sorted((r["currency"], r["amount"], r["kind"]) for r in queue["items"]) == [
        ("EUR", 12_000, "deposit"), ("USD", 60_000, "deposit")]
    # Reading again (and the scan job) queues nothing twice.
    again = await market.ok("GET", "/v1/finance/reviews", headers=finance)
    assert len(again["items"]) == 2
    usd = next(r for r in queue["items"] if r["currency"] == "USD")
    eur = next(r for r in queue["items"] if r["currency"] == "EUR")

    problem(await client.post(f"/v1/finance/reviews/{usd['id']}/approve", headers=plain, json={}), 403)
    replies = await asyncio.gather(*(client.post(f"/v1/finance/reviews/{usd['id']}/approve", headers=finance,
                                                 json={"note": "known customer"}) for _ in range(2)))
    assert sorted(r.status_code for r in replies) == [200, 409], [r.text for r in replies]
    problem(await client.post(f"/v1/finance/reviews/{eur['id']}/reject", headers=finance, json={}), 422)
    rejected = await market.ok("POST", f"/v1/finance/reviews/{eur['id']}/reject", headers=finance,
                               json={"note": "source of funds unclear"})
    assert (rejected["status"], rejected["note"], rejected["reviewed_by"]) == (
        "rejected", "source of funds unclear", f"admin:{finance_login.admin_id}")
    problem(await client.post(f"/v1/finance/reviews/{eur['id']}/approve", headers=finance, json={}), 409,
            "review_already_decided")
    assert [r["status"] for r in (await market.ok("GET", "/v1/finance/reviews", headers=finance,
                                                  params={"status": "pending"}))["items"]] == []

    async with unit_of_work(runtime.sessions) as session:
        rows = (await session.execute(sa.select(AuditEntry.action, AuditEntry.actor_id).where(
            AuditEntry.app_id == keys.app_id, AuditEntry.action.like("finance.review.%"))
            .order_by(AuditEntry.id))).all()
    assert [tuple(r) for r in rows] == [("finance.review.approved", finance_login.admin_id),
                                        ("finance.review.rejected", finance_login.admin_id)]
    assert await verify(runtime, keys.app_id) == []
