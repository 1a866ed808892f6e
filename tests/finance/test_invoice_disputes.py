"""Disputes of an invoice line (billing's invoices): the brand's own lines only, one dispute per line,
refunded once from the platform's revenue, the rest booked as the platform's loss; ``ledger verify``
stays clean and no balance goes below zero."""

from __future__ import annotations

import httpx

from questline.kit.runtime import Runtime
from questline.tenancy.schemas import Role
from tests.billing.helpers import finalize, generate, settings, spend
from tests.conftest import Factory, problem
from tests.market.helpers import Market, count, verify


async def test_invoice_line_disputes_refund_from_revenue_then_book_a_loss(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    finance = (await factory.admin(keys.org_id, Role.FINANCE)).headers(keys.app_id)
    await settings(market, unknown_country="zero")
    brand, other = await market.brand(), await market.brand()
    campaign = await spend(market, brand, [20_000], rate=500, budget=10_000)
    assert (await market.campaign_state(campaign["id"]))["status"] == "completed"
    drafts = await generate(market, brand.id, period="", campaign_id=campaign["id"])
    invoice = await finalize(market, drafts[0]["id"])
    lines = {line["kind"]: line for line in invoice["lines"]}
    media, commission = lines["media"], lines["commission"]
    assert (media["amount"], commission["amount"]) == (9_000, 1_000)
    assert (await market.wallet("platform", "revenue"))["available"] == 1_000

    # Only the brand's own lines; one dispute each; a subject is either a line or impressions.
    problem(await client.post("/v1/disputes", headers=other.headers,
                              json={"invoice_line_id": commission["id"], "reason": "not ours"}), 404,
            "invoice_line_not_found")
    problem(await client.post("/v1/disputes", headers=brand.headers, json={
        "invoice_line_id": commission["id"], "campaign_id": campaign["id"], "reason": "both"}), 422)
    problem(await client.post("/v1/disputes", headers=brand.headers, json={
        "invoice_line_id": commission["id"], "amount": 1_001, "reason": "too much"}), 422, "amount_too_large")
    first = await market.ok("POST", "/v1/disputes", 201, headers=brand.headers,
                            json={"invoice_line_id": commission["id"], "reason": "the commission was agreed at 5%"})
    assert (first["kind"], first["subject_ref"], first["amount"]) == ("invoice_line", commission["id"], 1_000)
    problem(await client.post("/v1/disputes", headers=brand.headers,
                              json={"invoice_line_id": commission["id"], "reason": "again"}), 409, "already_disputed")

    # Refund half of it: from the platform's revenue.
    decided = await market.ok("POST", f"/v1/disputes/{first['id']}/decision", headers=finance,
                              json={"verdict": "refund", "amount": 500, "reason": "5% was agreed"})
    assert (decided["refunded"], decided["from_revenue"], decided["loss"]) == (500, 500, 0)
    problem(await client.post(f"/v1/disputes/{first['id']}/decision", headers=finance,
                              json={"verdict": "refund", "reason": "again"}), 409, "dispute_already_decided")

    # The media line: the revenue holds only 500 more; the other 3,500 is the platform's loss.
    second = await market.ok("POST", "/v1/disputes", 201, headers=brand.headers,
                             json={"invoice_line_id": media["id"], "amount": 4_000, "reason": "bot views"})
    decided = await market.ok("POST", f"/v1/disputes/{second['id']}/decision", headers=finance,
                              json={"verdict": "refund", "reason": "bot views confirmed"})
    assert (decided["refunded"], decided["from_revenue"], decided["loss"]) == (4_000, 500, 3_500)
    assert await market.wallet("brand", brand.id) == {"available": 4_500, "held": 0, "pending": 0}
    assert (await market.wallet("platform", "revenue"))["available"] == 0
    assert await count(runtime, "ledger_transactions", keys.app_id, kind="dispute_loss") == 1
    assert await verify(runtime, keys.app_id) == []
