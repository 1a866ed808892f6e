"""Disputes of a participation's impressions: evidence from the two parties only, a finance decision
(finance role or owner; a plain admin, a viewer and the server key get 403) that refunds once by
compensating ledger transactions, from the revenue and the streamer's earnings (never below zero),
the rest booked as the platform's loss to the minor unit; ``ledger verify`` stays clean."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import sqlalchemy as sa

from questline.audit.models import AuditEntry
from questline.kit.db import unit_of_work
from questline.kit.runtime import Runtime
from questline.tenancy.schemas import Role
from tests.conftest import AdminLogin, AppKeys, Factory, problem
from tests.market.helpers import Account, Market, count, idem, verify


async def settled_campaign(market: Market, *, impressions: int = 20_000) -> tuple[Account, Account, dict[str, Any]]:
    """A brand's campaign ($100.00 at $5.00 a mille, the platform's 10%) that a streamer completed:
    gross 10,000, commission 1,000, the streamer's 9,000 released to their available money."""
    brand = await market.brand()
    campaign = await market.campaign(brand, budget=10_000, rate=500)
    streamer = await market.streamer()
    assert (await market.join(campaign["id"], streamer)).status_code == 201
    await market.impressions(campaign["id"], [(f"imp-{uuid.uuid4().hex[:8]}", streamer.id, impressions)])
    return brand, streamer, await market.campaign_state(campaign["id"])


async def finance_staff(factory: Factory, keys: AppKeys) -> AdminLogin:
    return await factory.admin(keys.org_id, Role.FINANCE)


async def test_refund_recovers_what_it_can_and_books_the_rest_as_a_loss(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    finance = await finance_staff(factory, keys)
    admin, viewer = await factory.admin(keys.org_id, Role.ADMIN), await factory.admin(keys.org_id, Role.VIEWER)
    brand, streamer, campaign = await settled_campaign(market)
    assert campaign["status"] == "completed"
    assert await market.wallet("streamer", streamer.id) == {"available": 9_000, "held": 0, "pending": 0}
    assert await market.wallet("brand", brand.id) == {"available": 0, "held": 0, "pending": 0}

    # The streamer has already withdrawn 8,000 of it (held for the payout): 1,000 left available.
    await market.ok("PUT", "/v1/finance/settings", headers=keys.server, json={"default_limits": {
        "min": 100, "max_per_request": 50_000, "per_day": 50_000, "per_month": 50_000, "approval_above": 40_000,
        "two_approvers_above": 45_000, "kyc_required_above": 50_000}})
    method = await market.ok("POST", f"/v1/streamers/{streamer.id}/payment-methods", 201, headers=streamer.headers,
                             json={"kind": "bank_account", "holder": "Ann Example", "iban": "DE89370400440532013000"})
    await market.ok("POST", f"/v1/streamers/{streamer.id}/withdrawals", 201, headers=idem(streamer.headers),
                    json={"currency": "USD", "amount": 8_000, "payment_method_id": method["id"]})
    assert await market.wallet("streamer", streamer.id) == {"available": 1_000, "held": 8_000, "pending": 0}

    # The brand disputes 7,777 of the 20,000 impressions: 3,888 gross (388 commission, 3,500 the streamer's).
    body = {"campaign_id": campaign["id"], "streamer_id": streamer.id, "impressions": 7_777, "reason": "bot traffic"}
    problem(await client.post("/v1/disputes", headers=brand.headers, json={**body, "impressions": 20_001}), 422,
            "too_many_impressions")
    other_brand, other_streamer = await market.brand(), await market.streamer()
    problem(await client.post("/v1/disputes", headers=other_brand.headers, json=body), 404, "campaign_not_found")
    problem(await client.post("/v1/disputes", headers=keys.server, json=body), 403, "caller_not_allowed")
    dispute = await market.ok("POST", "/v1/disputes", 201, headers=brand.headers, json=body)
    assert (dispute["status"], dispute["amount"], dispute["impressions"]) == ("open", 3_888, 7_777)
    url = f"/v1/disputes/{dispute['id']}"

    # Evidence from both sides, and from nobody else.
    await market.ok("POST", f"{url}/evidence", 201, headers=brand.headers,
                    json={"statement": "70% of viewers came from one ASN", "links": ["https://example.test/asn"]})
    await market.ok("POST", f"{url}/evidence", 201, headers=streamer.headers,
                    json={"statement": "a raid from a friend's channel"})
    problem(await client.post(f"{url}/evidence", headers=other_brand.headers, json={"statement": "x"}), 404,
            "dispute_not_found")
    problem(await client.post(f"{url}/evidence", headers=other_streamer.headers, json={"statement": "x"}), 404,
            "dispute_not_found")
    problem(await client.post(f"{url}/evidence", headers=finance.headers(keys.app_id), json={"statement": "x"}),
            403, "caller_not_allowed")
    problem(await client.get(url, headers=other_streamer.headers), 404, "dispute_not_found")
    seen = await market.ok("GET", url, headers=streamer.headers)
    assert [e["party"] for e in seen["evidence"]] == ["brand", "streamer"]

    # Only the finance role (or the owner) decides: a plain admin, a viewer, the server key and the parties: 403.
    decision = {"verdict": "refund", "reason": "the ASN evidence holds"}
    for headers in (admin.headers(keys.app_id), viewer.headers(keys.app_id), keys.server, brand.headers):
        problem(await client.post(f"{url}/decision", headers=headers, json=decision), 403)
    assert await count(runtime, "ledger_transactions", keys.app_id, kind="dispute_refund") == 0

    decided = await market.ok("POST", f"{url}/decision", headers=finance.headers(keys.app_id), json=decision)
    assert decided["status"] == "refunded"
    assert (decided["refunded"], decided["from_revenue"], decided["from_streamer"], decided["loss"]) == (
        3_888, 388, 1_000, 2_500)
    assert await market.wallet("brand", brand.id) == {"available": 3_888, "held": 0, "pending": 0}
    assert await market.wallet("streamer", streamer.id) == {"available": 0, "held": 8_000, "pending": 0}
    assert (await market.wallet("platform", "revenue"))["available"] == 1_000 - 388
    assert await verify(runtime, keys.app_id) == []

    # Deciding again changes nothing.
    problem(await client.post(f"{url}/decision", headers=finance.headers(keys.app_id), json=decision), 409,
            "dispute_already_decided")
    problem(await client.post(f"{url}/evidence", headers=brand.headers, json={"statement": "more"}), 409,
            "dispute_decided")
    assert await market.wallet("brand", brand.id) == {"available": 3_888, "held": 0, "pending": 0}
    assert await count(runtime, "ledger_transactions", keys.app_id, kind="dispute_refund") == 1
    assert await count(runtime, "ledger_transactions", keys.app_id, kind="dispute_loss") == 1

    # What was refunded cannot be disputed again; the rest can. The platform covers the streamer's share here.
    problem(await client.post("/v1/disputes", headers=brand.headers, json={**body, "impressions": 12_224}), 422,
            "too_many_impressions")
    second = await market.ok("POST", "/v1/disputes", 201, headers=brand.headers, json={**body, "impressions": 1_000})
    owner = await factory.admin(keys.org_id, Role.OWNER)
    second = await market.ok("POST", f"/v1/disputes/{second['id']}/decision", headers=owner.headers(keys.app_id),
                             json={**decision, "recover_from_streamer": False})
    assert (second["refunded"], second["from_revenue"], second["from_streamer"], second["loss"]) == (500, 500, 0, 0)
    assert (await market.wallet("platform", "revenue"))["available"] == 112
    assert await verify(runtime, keys.app_id) == []
    async with unit_of_work(runtime.sessions) as session:
        actions = (await session.execute(sa.select(AuditEntry.action).where(
            AuditEntry.app_id == keys.app_id, AuditEntry.action.like("dispute.%")).order_by(AuditEntry.id))).scalars()
        assert list(actions) == ["dispute.opened", "dispute.refunded", "dispute.opened", "dispute.refunded"]
    listed = await market.ok("GET", "/v1/disputes", headers=other_brand.headers)
    assert listed["items"] == []
    assert len((await market.ok("GET", "/v1/disputes", headers=finance.headers(keys.app_id)))["items"]) == 2


async def test_racing_decisions_refund_once(client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    finance, owner = await finance_staff(factory, keys), await factory.admin(keys.org_id, Role.OWNER)
    brand, streamer, campaign = await settled_campaign(market)
    body = {"campaign_id": campaign["id"], "streamer_id": streamer.id, "impressions": 4_000, "reason": "duplicates"}
    dispute = await market.ok("POST", "/v1/disputes", 201, headers=brand.headers, json=body)
    decision = {"verdict": "refund", "reason": "agreed"}
    url = f"/v1/disputes/{dispute['id']}/decision"
    replies = await asyncio.gather(
        client.post(url, headers=finance.headers(keys.app_id), json=decision),
        client.post(url, headers=owner.headers(keys.app_id), json=decision),
        client.post(url, headers=finance.headers(keys.app_id), json={"verdict": "reject", "reason": "no"}))
    assert sorted(r.status_code for r in replies) == [200, 409, 409], [r.text for r in replies]
    for reply in replies:
        if reply.status_code == 409:
            problem(reply, 409, "dispute_already_decided")
    won = next(r.json() for r in replies if r.status_code == 200)
    refunded = 2_000 if won["status"] == "refunded" else 0
    assert await market.wallet("brand", brand.id) == {"available": refunded, "held": 0, "pending": 0}
    assert await count(runtime, "ledger_transactions", keys.app_id, kind="dispute_refund") == (1 if refunded else 0)
    assert await verify(runtime, keys.app_id) == []

    # A rejected dispute moves nothing; a refund waits for the campaign to complete.
    rejected = await market.ok("POST", "/v1/disputes", 201, headers=brand.headers, json={**body, "impressions": 10})
    done = await market.ok("POST", f"/v1/disputes/{rejected['id']}/decision", headers=finance.headers(keys.app_id),
                           json={"verdict": "reject", "reason": "the traffic is real"})
    assert (done["status"], done["refunded"], done["transactions"]) == ("rejected", 0, [])
    running = await market.campaign(brand, budget=10_000, rate=500)
    assert (await market.join(running["id"], streamer)).status_code == 201
    await market.impressions(running["id"], [("r-1", streamer.id, 100)])
    early = await market.ok("POST", "/v1/disputes", 201, headers=brand.headers,
                            json={**body, "campaign_id": running["id"], "impressions": 50})
    problem(await client.post(f"/v1/disputes/{early['id']}/decision", headers=finance.headers(keys.app_id),
                              json=decision), 409, "campaign_not_settled")
    assert (await market.ok("GET", f"/v1/disputes/{early['id']}", headers=brand.headers))["status"] == "open"
    problem(await client.post(f"/v1/disputes/{early['id']}/decision", headers=finance.headers(keys.app_id),
                              json={"verdict": "maybe", "reason": "x"}), 422)
    assert await verify(runtime, keys.app_id) == []
