"""Subscription plans (a monthly fee with usage on top), monthly invoicing by the job, and payment
reminders on a schedule, each step sent once however often the job runs."""

from __future__ import annotations

from datetime import timedelta

import httpx
import sqlalchemy as sa

from questline.billing import service
from questline.kit.clock import ManualClock
from questline.kit.db import unit_of_work
from questline.kit.runtime import Runtime
from tests.billing.helpers import AFTER_MONTH, MONTH, brand_in, finalize, generate, settings, spend, subscribed
from tests.conftest import Factory, problem
from tests.market.helpers import Market, count
from tests.notifications.helpers import relay_outbox


async def test_plan_fee_with_usage_on_top(client: httpx.AsyncClient, factory: Factory, runtime: Runtime,
                                          clock: ManualClock) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    await settings(market)
    (brand,), plan = await subscribed(market, clock, fee=4_900, usage_bps=250)
    assert plan["usage_bps"] == 250
    got = await market.ok("GET", f"/v1/billing/brands/{brand.id}/subscription", headers=brand.headers)
    assert got["plan_id"] == plan["id"] and got["ended_at"] is None
    await spend(market, brand, [7_001, 5_003])  # 3997 of spend
    clock.set(AFTER_MONTH)
    inv = (await generate(market, brand.id))[0]
    lines = {x["kind"]: x for x in inv["lines"] if x["kind"] in ("subscription", "usage")}
    assert lines["subscription"]["amount"] == 4_900 and not lines["subscription"]["prepaid"]
    assert lines["usage"]["amount"] == 100  # 2.5% of 3997 = 99.925, half up
    assert inv["subtotal"] == 3_997 + 4_900 + 100 == sum(x["amount"] for x in inv["lines"])
    assert inv["prepaid"] == 3_997
    assert inv["amount_due"] == 5_000 + inv["tax"] and inv["tax"] == (8_997 * 1900 + 5000) // 10000
    # The plan ends: the month it ended in is billed, the one after is not.
    token = await market.sign_in(brand)
    ended = await market.ok("DELETE", f"/v1/billing/brands/{brand.id}/subscription", headers=token.headers)
    assert ended["ended_at"] is not None
    problem(await client.delete(f"/v1/billing/brands/{brand.id}/subscription", headers=token.headers), 404,
            "subscription_not_found")
    clock.set(AFTER_MONTH + timedelta(days=31))
    assert len(await generate(market, brand.id, period="2026-04")) == 1
    clock.set(AFTER_MONTH + timedelta(days=62))
    assert await generate(market, brand.id, period="2026-05") == []
    problem(await client.put(f"/v1/billing/brands/{brand.id}/subscription", headers=keys.server,
                             json={"plan_id": "plan_00000000000000000000000000"}), 404, "plan_not_found")
    problem(await client.post("/v1/billing/plans", headers=keys.server,
                              json={"name": "x", "currency": "usd", "monthly_fee": 1}), 422)
    problem(await client.post("/v1/billing/plans", headers=keys.server,
                              json={"name": "x", "currency": "USD", "monthly_fee": -1}), 422)


async def test_monthly_job_invoices_and_finalizes_once(client: httpx.AsyncClient, factory: Factory,
                                                       runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    await settings(market, auto_generate=True)
    spender = await brand_in(market, "DE")
    await spend(market, spender, [2_000], rate=500)
    (planned,), _ = await subscribed(market, clock, fee=1_000)
    untaxed = await brand_in(market, "BR")  # no rate: left for an admin
    await spend(market, untaxed, [2_000], rate=500)

    async def run_job() -> None:
        # The job covers every app (others too, on a shared database): judge this app's rows.
        async with unit_of_work(runtime.sessions) as session:
            await service.run_months(session, runtime.clock)

    await run_job()  # March is not over: February is, with nothing in it
    assert await count(runtime, "billing_invoices", keys.app_id) == 0
    clock.set(AFTER_MONTH)
    await run_job()
    await run_job()
    assert await count(runtime, "billing_invoices", keys.app_id) == 2
    assert await count(runtime, "billing_runs", keys.app_id) == 2  # 2026-02 and 2026-03, each once
    listed = await market.ok("GET", "/v1/billing/invoices", headers=keys.server)
    assert sorted(i["brand_id"] for i in listed["items"]) == sorted([spender.id, planned.id])
    assert all(i["status"] in ("open", "paid") and i["number"] for i in listed["items"])
    assert sorted(i["period_key"] for i in listed["items"]) == [MONTH, MONTH]
    # The brand skipped for want of a tax rate is still refused by hand, and nothing was written for it.
    problem(await client.post("/v1/billing/invoices/generate", headers=keys.server,
                              json={"brand_id": untaxed.id, "period": MONTH}), 422, "tax_rate_unknown")


async def test_reminder_once_per_step_even_when_the_job_runs_twice(client: httpx.AsyncClient, factory: Factory,
                                                                    runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    await settings(market, due_days=10, reminder_days=[1, 7])
    (brand, paid_brand), _ = await subscribed(market, clock, fee=2_500, brands=2)
    clock.set(AFTER_MONTH)
    inv = await finalize(market, (await generate(market, brand.id))[0]["id"])
    other = await finalize(market, (await generate(market, paid_brand.id))[0]["id"])
    await market.ok("POST", f"/v1/billing/invoices/{other['id']}/credit-notes", 201, headers=keys.server,
                    json={"amount": other["amount_due"], "reason": "waived"})  # settled: never reminded

    async def run_job() -> None:
        # The job covers every app (other tests' invoices too, on a shared database): judge this app's rows.
        async with unit_of_work(runtime.sessions) as session:
            await service.send_reminders(session, runtime.clock)

    async def steps() -> list[tuple[str, int]]:
        async with unit_of_work(runtime.sessions) as session:
            rows = await session.execute(sa.text("SELECT invoice_id, step FROM billing_reminders WHERE app_id = :a "
                                                 "ORDER BY step"), {"a": keys.app_id})
            return [(str(i), int(n)) for i, n in rows]

    async def reminders() -> list[tuple[str, int]]:
        return [(m.payload["invoice_id"], m.payload["step"]) for m in await relay_outbox(runtime, keys)
                if m.type == "invoice.reminder"]

    clock.advance(days=10, hours=12)  # due, not yet a day over
    await run_job()
    assert await steps() == []
    clock.advance(days=1)
    await run_job()
    await run_job()
    assert await steps() == [(inv["id"], 1)]
    clock.advance(hours=5)
    await run_job()
    assert await reminders() == [(inv["id"], 1)]
    clock.advance(days=6)
    await run_job()
    await run_job()
    assert await steps() == [(inv["id"], 1), (inv["id"], 2)]
    clock.advance(days=30)
    await run_job()  # the schedule is done
    assert await reminders() == [(inv["id"], 1), (inv["id"], 2)]
    assert await count(runtime, "billing_reminders", keys.app_id) == 2
    # The brand's inbox has each reminder once (the relay handing messages over again changes nothing).
    await relay_outbox(runtime, keys)
    inbox = await market.ok("GET", f"/v1/brands/{brand.id}/notifications", headers=keys.server)
    titles = [n["title"] for n in inbox["items"] if n["type"] == "invoice_reminder"]
    assert titles == [f"Reminder: invoice {inv['number']} is overdue"] * 2
    assert [n["type"] for n in inbox["items"]].count("invoice_issued") == 1
    # A paid invoice is never reminded.
    assert not [n for n in (await market.ok("GET", f"/v1/brands/{paid_brand.id}/notifications",
                                            headers=keys.server))["items"] if n["type"] == "invoice_reminder"]
