"""Withdrawals: held at request (100 racing requests against a balance for 7 give exactly 7 holds),
limits per request, day and month, one and two finance approvals by different people, paid with the
bank's reference or failed/rejected and released; every step in the audit log."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import httpx

from questline.kit.clock import ManualClock
from questline.kit.runtime import Runtime
from tests.conftest import Factory, problem
from tests.finance.helpers import audit_actions, fund
from tests.market.helpers import Account, Market, count, idem, verify

LIMITS = {"min": 100, "max_per_request": 10_000, "per_day": 15_000, "per_month": 40_000,
          "approval_above": 2_000, "two_approvers_above": 5_000, "kyc_required_above": 100_000}


async def setup(client: httpx.AsyncClient, factory: Factory, runtime: Runtime,
                balance: int, **limits: int) -> tuple[Market, Account, str]:
    keys = await factory.app()
    market = Market(client, keys)
    await market.ok("PUT", "/v1/finance/settings", headers=keys.server,
                    json={"limits": {"USD": {**LIMITS, **limits}}})
    streamer = await market.streamer()
    method = await market.ok("POST", f"/v1/streamers/{streamer.id}/payment-methods", 201, headers=streamer.headers,
                             json={"kind": "bank_account", "holder": "Ann Example", "iban": "DE89370400440532013000"})
    await fund(runtime, keys.app_id, "streamer", streamer.id, balance)
    return market, streamer, str(method["id"])


async def withdraw(market: Market, streamer: Account, method: str, amount: int, key: str | None = None,
                   **kw: Any) -> httpx.Response:
    return await market.client.post(f"/v1/streamers/{streamer.id}/withdrawals", headers=idem(streamer.headers, key),
                                    json={"currency": "USD", "amount": amount, "payment_method_id": method, **kw})


async def withdraw_as_a_client_would(market: Market, streamer: Account, method: str, amount: int) -> httpx.Response:
    """Retries a 503 (the connection pool or the database is busy under the burst: the request was rolled
    back and changed nothing) after Retry-After: every request ends with a real answer."""
    for _ in range(60):
        reply = await withdraw(market, streamer, method, amount)
        if reply.status_code != 503:
            return reply
        await asyncio.sleep(float(reply.headers.get("retry-after", "1")) * random.uniform(0.5, 1.5))
    return reply


async def test_racing_withdrawals_hold_exactly_what_the_balance_covers(client: httpx.AsyncClient, factory: Factory,
                                                                       runtime: Runtime) -> None:
    market, streamer, method = await setup(client, factory, runtime, 7, min=1)
    replies = await asyncio.gather(*(withdraw_as_a_client_would(market, streamer, method, 1) for _ in range(100)))
    made = [r for r in replies if r.status_code == 201]
    assert len(made) == 7, sorted({r.text for r in replies if r.status_code != 409})
    for reply in replies:
        if reply.status_code != 201:
            problem(reply, 409, "insufficient_funds")
    assert all(r.json()["status"] == "approved" for r in made)
    assert await market.wallet("streamer", streamer.id) == {"available": 0, "held": 7, "pending": 0}
    assert await count(runtime, "treasury_withdrawals", market.keys.app_id) == 7
    assert await verify(runtime, market.keys.app_id) == []


async def test_limits_per_request_day_and_month(client: httpx.AsyncClient, factory: Factory, runtime: Runtime,
                                                clock: ManualClock) -> None:
    market, streamer, method = await setup(client, factory, runtime, 100_000, per_month=30_000)
    problem(await withdraw(market, streamer, method, 99), 422, "withdrawal_out_of_bounds")
    problem(await withdraw(market, streamer, method, 10_001), 422, "withdrawal_out_of_bounds")
    problem(await withdraw(market, streamer, method, 500, currency="EUR"), 422)  # no EUR money, and its own limits
    for amount in (2_000, 2_000, 2_000, 2_000, 2_000, 2_000, 2_000):  # 14,000 today, each without approval
        assert (await withdraw(market, streamer, method, amount)).status_code == 201
    body = problem(await withdraw(market, streamer, method, 1_500), 422, "withdrawal_limit_reached")
    assert (body["limit"], body["used"], body["allowed"]) == ("per_day", 14_000, 1_000)
    assert (await withdraw(market, streamer, method, 1_000)).status_code == 201
    # A rejected or failed withdrawal no longer counts.
    listed = await market.ok("GET", f"/v1/streamers/{streamer.id}/withdrawals", headers=streamer.headers)
    first = listed["items"][-1]["id"]
    await market.ok("POST", f"/v1/finance/withdrawals/{first}/fail", headers=market.server,
                    json={"reason": "bank bounced it"})
    assert (await withdraw(market, streamer, method, 2_000)).status_code == 201
    # The next days have room again, until the month's 30,000.
    clock.advance(days=1)
    await market.sign_in(streamer)
    for _ in range(7):
        assert (await withdraw(market, streamer, method, 2_000)).status_code == 201
    clock.advance(days=1)
    await market.sign_in(streamer)
    body = problem(await withdraw(market, streamer, method, 2_000), 422, "withdrawal_limit_reached")
    assert (body["limit"], body["used"], body["allowed"]) == ("per_month", 29_000, 1_000)
    assert await market.wallet("streamer", streamer.id) == {"available": 100_000 - 29_000, "held": 29_000,
                                                            "pending": 0}
    # Limits that contradict themselves are refused.
    problem(await client.put("/v1/finance/settings", headers=market.server,
                             json={"limits": {"USD": {**LIMITS, "min": 20_000}}}), 422, "invalid_limits")
    problem(await client.put("/v1/finance/settings", headers=streamer.headers, json={}), 403)
    assert (await market.ok("GET", "/v1/finance/settings", headers=market.server))["limits"]["USD"] == {
        **LIMITS, "per_month": 30_000}
    assert await verify(runtime, market.keys.app_id) == []


async def test_approvals_payouts_and_the_audit_trail(client: httpx.AsyncClient, factory: Factory,
                                                     runtime: Runtime) -> None:
    market, streamer, method = await setup(client, factory, runtime, 30_000)
    keys = market.keys
    ann = await factory.admin(keys.org_id)
    bob = await factory.admin(keys.org_id)
    ann_h, bob_h = ann.headers(keys.app_id), bob.headers(keys.app_id)

    # Above the first threshold: one approval, then finance pays it from the bank and records it.
    one = (await withdraw(market, streamer, method, 3_000)).json()
    assert (one["status"], one["approvals_needed"]) == ("awaiting_approval", 1)
    problem(await client.post(f"/v1/finance/withdrawals/{one['id']}/approve", headers=streamer.headers), 403)
    queue = await market.ok("GET", "/v1/finance/withdrawals", headers=ann_h, params={"status": "awaiting_approval"})
    assert [w["id"] for w in queue["items"]] == [one["id"]]
    approved = await market.ok("POST", f"/v1/finance/withdrawals/{one['id']}/approve", headers=ann_h)
    assert approved["status"] == "approved" and [a["by"] for a in approved["approvals"]] == [f"admin:{ann.admin_id}"]
    problem(await client.post(f"/v1/finance/withdrawals/{one['id']}/approve", headers=bob_h), 409,
            "withdrawal_not_awaiting_approval")
    paid = await market.ok("POST", f"/v1/finance/withdrawals/{one['id']}/paid", headers=bob_h,
                           json={"reference": "SEPA-0001"})
    assert (paid["status"], paid["reference"]) == ("paid", "SEPA-0001") and paid["settle_transaction_id"]
    again = await market.ok("POST", f"/v1/finance/withdrawals/{one['id']}/paid", headers=bob_h,
                            json={"reference": "SEPA-0001"})
    assert again["settle_transaction_id"] == paid["settle_transaction_id"]
    problem(await client.post(f"/v1/finance/withdrawals/{one['id']}/paid", headers=bob_h,
                              json={"reference": "SEPA-0002"}), 409, "withdrawal_not_payable")
    assert await market.wallet("streamer", streamer.id) == {"available": 27_000, "held": 0, "pending": 0}

    # Above the second: two different people; the same one twice does not count twice, even racing.
    two = (await withdraw(market, streamer, method, 8_000)).json()
    assert two["approvals_needed"] == 2
    url = f"/v1/finance/withdrawals/{two['id']}/approve"
    replies = await asyncio.gather(*(client.post(url, headers=ann_h) for _ in range(5)))
    assert sorted(r.status_code for r in replies) == [200, 409, 409, 409, 409]
    assert (await market.ok("GET", f"/v1/finance/withdrawals/{two['id']}", headers=ann_h))["status"] == \
        "awaiting_approval"
    done = await market.ok("POST", url, headers=bob_h)
    assert done["status"] == "approved" and len(done["approvals"]) == 2
    # Whoever asked may not approve: the server key asks, then cannot approve its own request.
    three = await market.ok("POST", f"/v1/streamers/{streamer.id}/withdrawals", 201, headers=idem(keys.server),
                            json={"currency": "USD", "amount": 2_500, "payment_method_id": method})
    problem(await client.post(f"/v1/finance/withdrawals/{three['id']}/approve", headers=keys.server), 409,
            "approver_is_requester")
    rejected = await market.ok("POST", f"/v1/finance/withdrawals/{three['id']}/reject", headers=ann_h,
                               json={"reason": "details do not match"})
    assert rejected["status"] == "rejected"
    failed = await market.ok("POST", f"/v1/finance/withdrawals/{two['id']}/fail", headers=bob_h,
                             json={"reason": "account closed"})
    assert failed["status"] == "failed"
    problem(await client.post(f"/v1/finance/withdrawals/{two['id']}/paid", headers=bob_h,
                              json={"reference": "late"}), 409, "withdrawal_not_payable")
    assert await market.wallet("streamer", streamer.id) == {"available": 27_000, "held": 0, "pending": 0}

    # Every step, with who took it.
    assert await audit_actions(runtime, keys.app_id, one["id"]) == [
        ("withdrawal.requested", f"streamer:{streamer.id}"), ("withdrawal.approved", f"admin:{ann.admin_id}"),
        ("withdrawal.paid", f"admin:{bob.admin_id}")]
    assert [a for a, _ in await audit_actions(runtime, keys.app_id, two["id"])] == [
        "withdrawal.requested", "withdrawal.approved", "withdrawal.approved", "withdrawal.failed"]
    assert [a for a, _ in await audit_actions(runtime, keys.app_id, three["id"])] == [
        "withdrawal.requested", "withdrawal.rejected"]
    other = await market.streamer()
    problem(await client.get(f"/v1/streamers/{streamer.id}/withdrawals", headers=other.headers), 404)
    problem(await withdraw(market, other, method, 500), 404, "payment_method_not_found")
    assert await verify(runtime, keys.app_id) == []
