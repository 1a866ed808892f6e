"""Invoices from campaign spend: totals equal the lines plus tax and the ledger's spend for the period,
generation is idempotent, numbers are assigned at finalization without gaps or duplicates, and
statuses move only along the allowed transitions."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx

from questline.billing.service import tax_of
from questline.kit.clock import ManualClock
from questline.kit.runtime import Runtime
from tests.billing.helpers import AFTER_MONTH, MONTH, brand_in, finalize, generate, settings, spend, subscribed
from tests.conftest import Factory, problem
from tests.market.helpers import Market, count, idem


def test_tax_is_rounded_half_up_once_per_invoice() -> None:
    assert tax_of(3997, 1900) == 759  # 759.43
    assert tax_of(250, 1900) == 48  # 47.5 -> 48
    assert tax_of(249, 1900) == 47  # 47.31
    assert tax_of(0, 1900) == 0
    assert tax_of(12345, 0) == 0


async def test_invoice_totals_match_lines_tax_and_ledger_spend(client: httpx.AsyncClient, factory: Factory,
                                                               runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    await settings(market)
    brand = await brand_in(market, "DE", name="Fizz <b>Cola</b> & Co")
    first = await spend(market, brand, [7_001, 5_003])  # 333 per mille: 2331 then 1666, commission 10%
    second = await spend(market, brand, [1_000])
    # Spend of another brand and of next month stays off this invoice.
    other = await brand_in(market, "FR")
    await spend(market, other, [4_000])
    problem(await client.post("/v1/billing/invoices/generate", headers=keys.server,
                              json={"brand_id": brand.id, "period": MONTH}), 422, "period_not_over")
    clock.set(AFTER_MONTH)
    late = await market.sign_in(brand)
    drafts = await generate(market, brand.id)
    assert len(drafts) == 1
    inv = drafts[0]
    assert inv["status"] == "draft" and inv["number"] is None and inv["currency"] == "USD"
    assert inv["tax_country"] == "DE" and inv["tax_rate_bps"] == 1900
    assert inv["bill_to"]["name"] == "Fizz <b>Cola</b> & Co"
    # Lines: per campaign the streamers' earnings and the platform's commission, both prepaid.
    assert [(x["kind"], x["campaign_id"], x["amount"], x["prepaid"]) for x in inv["lines"]] == sorted([
        ("media", first["id"], 3997 - 399, True), ("commission", first["id"], 399, True),
        ("media", second["id"], 333 - 33, True), ("commission", second["id"], 33, True)],
        key=lambda t: (t[1], t[0] != "media"))
    assert inv["subtotal"] == sum(x["amount"] for x in inv["lines"]) == 3997 + 333
    assert inv["tax"] == tax_of(4330, 1900) == 823
    assert inv["total"] == inv["subtotal"] + inv["tax"]
    assert inv["prepaid"] == 4330 and inv["amount_due"] == inv["tax"]
    # The ledger's own record of the spend (the budget holds' statements) says the same.
    spent = 0
    for campaign in (first, second):
        st = await market.ok("GET", f"/v1/brands/{brand.id}/wallet/statement", headers=keys.server, params={
            "currency": "USD", "sub": f"hold:{campaign['id']}", "from": "2026-03-01T00:00:00Z",
            "to": "2026-04-01T00:00:00Z"})
        spent += sum(-m["amount"] for m in st["movements"] if m["kind"] == "earning")
    assert spent == inv["subtotal"]
    assert late.id == brand.id

    # Generating again (and racing) answers the same invoice; nothing new is written.
    again = await asyncio.gather(*(client.post("/v1/billing/invoices/generate", headers=keys.server,
                                               json={"brand_id": brand.id, "period": MONTH}) for _ in range(5)))
    assert all(r.status_code == 200 for r in again), [r.text for r in again]
    assert {r.json()[0]["id"] for r in again} == {inv["id"]}
    assert await count(runtime, "billing_invoices", keys.app_id) == 1
    assert await count(runtime, "billing_invoice_lines", keys.app_id) == 4

    # A brand's own token sees no drafts; once finalized, its invoice.
    assert (await market.ok("GET", f"/v1/billing/brands/{brand.id}/invoices", headers=late.headers))["items"] == []
    problem(await client.get(f"/v1/billing/brands/{brand.id}/invoices/{inv['id']}", headers=late.headers), 404)
    opened = await finalize(market, inv["id"])
    assert opened["status"] == "open" and opened["number"] == "INV-2026-000001"
    assert opened["due_at"].startswith("2026-04-16")
    mine = await market.ok("GET", f"/v1/billing/brands/{brand.id}/invoices/{inv['id']}", headers=late.headers)
    assert mine["number"] == "INV-2026-000001"
    other_token = await market.sign_in(other)
    problem(await client.get(f"/v1/billing/brands/{brand.id}/invoices/{inv['id']}", headers=other_token.headers),
            404)
    problem(await client.get(f"/v1/billing/brands/{other.id}/invoices/{inv['id']}", headers=keys.server), 404,
            "invoice_not_found")


async def test_tax_by_country_unknown_refused_unless_configured_zero(client: httpx.AsyncClient, factory: Factory,
                                                                     runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    await settings(market)
    brands = {c: await brand_in(market, c) for c in ("FR", "US", "BR")}
    nowhere = await brand_in(market, None)
    for brand in [*brands.values(), nowhere]:
        await spend(market, brand, [3_000], rate=500)  # 1500 gross
    clock.set(AFTER_MONTH)
    fr = (await generate(market, brands["FR"].id))[0]
    assert (fr["tax_rate_bps"], fr["tax"], fr["total"]) == (2000, 300, 1800)
    us = (await generate(market, brands["US"].id))[0]
    assert (us["tax_rate_bps"], us["tax"], us["total"]) == (0, 0, 1500)
    # A country without a rate, or no country at all: refused, nothing written.
    body = problem(await client.post("/v1/billing/invoices/generate", headers=keys.server,
                                     json={"brand_id": brands["BR"].id, "period": MONTH}), 422, "tax_rate_unknown")
    assert body["country"] == "BR"
    problem(await client.post("/v1/billing/invoices/generate", headers=keys.server,
                              json={"brand_id": nowhere.id, "period": MONTH}), 422, "tax_rate_unknown")
    assert await count(runtime, "billing_invoices", keys.app_id) == 2
    # An app that chooses to charge no tax where it has no rate.
    await settings(market, unknown_country="zero")
    br = (await generate(market, brands["BR"].id))[0]
    assert (br["tax_country"], br["tax_rate_bps"], br["tax"]) == ("BR", 0, 0)
    # Bad settings and bad requests change nothing.
    problem(await client.put("/v1/billing/settings", headers=keys.server, json={"tax_rates": {"de": 1900}}), 422)
    problem(await client.put("/v1/billing/settings", headers=keys.server, json={"tax_rates": {"DE": 10_001}}), 422)
    problem(await client.put("/v1/billing/settings", headers=keys.server, json={"reminder_days": [7, 1]}), 422)
    problem(await client.post("/v1/billing/invoices/generate", headers=keys.server,
                              json={"brand_id": nowhere.id}), 422)
    problem(await client.post("/v1/billing/invoices/generate", headers=keys.server,
                              json={"brand_id": nowhere.id, "period": "2026-13"}), 422)
    assert (await market.ok("GET", "/v1/billing/settings", headers=keys.server))["unknown_country"] == "zero"


async def test_numbers_have_no_gap_or_duplicate_under_racing_finalizations(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    await settings(market, invoice_prefix="QL")
    brands, _ = await subscribed(market, clock, brands=21)
    clock.set(AFTER_MONTH)
    drafts = [(await generate(market, b.id))[0] for b in brands]
    assert all(d["number"] is None and d["total"] == 4_900 + tax_of(4_900, 1900) for d in drafts)
    replies = await asyncio.gather(*(client.post(f"/v1/billing/invoices/{d['id']}/finalize", headers=keys.server)
                                     for d in drafts[:20]))
    assert all(r.status_code == 200 for r in replies), [r.text for r in replies if r.status_code != 200]
    numbers = sorted(r.json()["number"] for r in replies)
    assert numbers == [f"QL-2026-{n:06d}" for n in range(1, 21)]
    # The same draft finalized 10 times at once: numbered once, the others refused.
    last = drafts[20]["id"]
    replies = await asyncio.gather(*(client.post(f"/v1/billing/invoices/{last}/finalize", headers=keys.server)
                                     for _ in range(10)))
    assert sorted(r.status_code for r in replies) == [200] + [409] * 9
    assert all(r.json()["code"] == "invoice_transition_not_allowed" for r in replies if r.status_code == 409)
    assert next(r.json()["number"] for r in replies if r.status_code == 200) == "QL-2026-000021"
    # A voided invoice keeps its number; the series goes on after it.
    voided = await market.ok("POST", f"/v1/billing/invoices/{last}/void", headers=keys.server)
    assert voided["status"] == "void" and voided["number"] == "QL-2026-000021"
    more, _ = await subscribed(market, clock, brands=1)
    clock.set(AFTER_MONTH.replace(month=5))
    nxt = (await generate(market, more[0].id, period="2026-04"))[0]
    assert (await finalize(market, nxt["id"]))["number"] == "QL-2026-000022"
    listed = await market.ok("GET", "/v1/billing/invoices", headers=keys.server, params={"limit": 100})
    assert len({i["number"] for i in listed["items"]}) == len(listed["items"]) == 22


async def test_illegal_transitions_are_409_and_change_nothing(client: httpx.AsyncClient, factory: Factory,
                                                              runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    await settings(market)
    brands, _ = await subscribed(market, clock, brands=3)
    clock.set(AFTER_MONTH)
    a, b, c = [(await generate(market, x.id))[0]["id"] for x in brands]
    url = "/v1/billing/invoices"

    async def refused(path: str, status_now: str) -> None:
        body = problem(await client.post(f"{url}/{path}", headers=idem(keys.server)), 409,
                       "invoice_transition_not_allowed")
        assert body["invoice_status"] == status_now
        got = await market.ok("GET", f"{url}/{path.split('/', maxsplit=1)[0]}", headers=keys.server)
        assert got["status"] == status_now

    await refused(f"{a}/uncollectible", "draft")
    await refused(f"{a}/pay", "draft")
    await finalize(market, a)
    await refused(f"{a}/finalize", "open")
    await market.ok("POST", f"{url}/{a}/uncollectible", headers=keys.server)
    await refused(f"{a}/uncollectible", "uncollectible")
    await refused(f"{a}/finalize", "uncollectible")
    voided = await market.ok("POST", f"{url}/{b}/void", headers=keys.server)
    assert voided["status"] == "void" and voided["number"] is None  # a draft never had one
    await refused(f"{b}/finalize", "void")
    await refused(f"{b}/void", "void")
    await finalize(market, c)
    await market.ok("POST", f"{url}/{a}/void", headers=keys.server)
    await refused(f"{a}/pay", "void")
    problem(await client.post(f"{url}/inv_00000000000000000000000000/finalize", headers=keys.server), 404,
            "invoice_not_found")
    # Only finance staff move invoices.
    problem(await client.post(f"{url}/{c}/void", headers=(await market.sign_in(brands[2])).headers), 403)
    assert (await market.ok("GET", f"{url}/{c}", headers=keys.server))["status"] == "open"


async def test_campaign_invoice_and_month_do_not_bill_the_same_spend(client: httpx.AsyncClient, factory: Factory,
                                                                     runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    await settings(market)
    brand = await brand_in(market)
    done = await spend(market, brand, [2_000], rate=500, budget=1_000)  # runs to its target: completed
    running = await spend(market, brand, [2_000], rate=500)
    problem(await client.post("/v1/billing/invoices/generate", headers=keys.server,
                              json={"brand_id": brand.id, "campaign_id": running["id"]}), 409,
            "campaign_not_finished")
    own = (await market.ok("POST", "/v1/billing/invoices/generate", headers=keys.server,
                           json={"brand_id": brand.id, "campaign_id": done["id"]}))[0]
    assert own["kind"] == "campaign" and own["subtotal"] == 1_000
    clock.set(AFTER_MONTH + timedelta(days=1))
    month = (await generate(market, brand.id))[0]
    assert {x["campaign_id"] for x in month["lines"]} == {running["id"]} and month["subtotal"] == 1_000
