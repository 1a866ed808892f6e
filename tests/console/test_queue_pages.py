"""The console's queues in process, on SQLite and PostgreSQL: a campaign approved (its budget held from
the brand's wallet) and one rejected with a reason; a withdrawal rejected (the money goes back) and
one approved; the KYC and referral queues listed; decisions need the form's CSRF token."""

from __future__ import annotations

import re

import httpx

from questline.kit.runtime import Runtime
from questline.tenancy.schemas import Role
from tests.conftest import Factory
from tests.console.helpers import Console, text_of
from tests.finance.test_disputes import settled_campaign
from tests.finance.test_withdrawals import setup, withdraw
from tests.market.helpers import Market


def rows(html: str) -> list[str]:
    return re.findall(r'<tr id="item-([^"]+)"', html)


async def test_campaigns_wait_for_approval_in_the_console(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    console = await Console(client, keys.app_id).sign_in(await factory.admin(keys.org_id, Role.ADMIN))
    brand = await market.brand()
    good = await market.campaign(brand, approve=False, title="Good one", budget=5_000)
    bad = await market.campaign(brand, approve=False, title="Bad one")
    await market.deposit(brand, 5_000)
    for made in (good, bad):
        await market.ok("POST", f"/v1/campaigns/{made['id']}/submit", headers=brand.headers)
    listed = await console.get("/queues/campaigns")
    assert sorted(rows(listed.text)) == sorted([good["id"], bad["id"]]) and "Good one" in listed.text

    forged = await client.post(f"{console.base}/queues/campaigns/{good['id']}", data={"decision": "approve"})
    assert forged.status_code == 403
    no_reason = await console.post(f"/queues/campaigns/{bad['id']}", {"decision": "reject", "reason": ""})
    assert no_reason.status_code == 422 and bad["id"] in rows(no_reason.text)
    rejected = await console.post(f"/queues/campaigns/{bad['id']}", {"decision": "reject", "reason": "off brand"})
    assert rejected.status_code == 200 and rows(rejected.text) == [good["id"]]
    approved = await console.post(f"/queues/campaigns/{good['id']}", {"decision": "approve"})
    assert approved.status_code == 200 and rows(approved.text) == []
    assert "No campaign waits" in approved.text
    assert (await market.campaign_state(good["id"]))["status"] == "active"
    state = await market.campaign_state(bad["id"])
    assert (state["status"], state["rejection_reason"]) == ("rejected", "off brand")
    assert (await market.wallet("brand", brand.id))["held"] == 5_000


async def test_withdrawals_kyc_and_referrals_queues(client: httpx.AsyncClient, factory: Factory,
                                                   runtime: Runtime) -> None:
    market, streamer, method = await setup(client, factory, runtime, 30_000)
    keys = market.keys
    console = await Console(client, keys.app_id).sign_in(await factory.admin(keys.org_id, Role.ADMIN))
    one = (await withdraw(market, streamer, method, 3_000)).json()
    two = (await withdraw(market, streamer, method, 4_000)).json()
    listed = await console.get("/queues/withdrawals")
    assert sorted(rows(listed.text)) == sorted([one["id"], two["id"]])
    assert "3000" in text_of(listed.text, f"item-{one['id']}")
    rejected = await console.post(f"/queues/withdrawals/{two['id']}", {"decision": "reject", "reason": "unknown bank"})
    assert rejected.status_code == 200 and rows(rejected.text) == [one["id"]]
    approved = await console.post(f"/queues/withdrawals/{one['id']}", {"decision": "approve"})
    assert approved.status_code == 200 and rows(approved.text) == []
    assert (await market.ok("GET", f"/v1/finance/withdrawals/{one['id']}", headers=keys.server))["status"] == "approved"
    wallet = await market.wallet("streamer", streamer.id)
    assert wallet["available"] == 30_000 - 3_000  # the rejected 4,000 came back
    again = await console.post(f"/queues/withdrawals/{one['id']}", {"decision": "approve"})
    assert again.status_code == 409 and "withdrawal_not_awaiting_approval" in again.text
    unknown = await console.post(f"/queues/withdrawals/{one['id']}", {"decision": "pay everyone"})
    assert unknown.status_code == 422 and "unknown_decision" in unknown.text

    for name, empty in (("kyc", "No KYC case waits"), ("referrals", "No flagged referral waits")):
        page = await console.get(f"/queues/{name}")
        assert page.status_code == 200 and empty in page.text
    assert (await console.get("/queues/nothing")).status_code == 404


async def test_a_dispute_is_decided_in_the_console_by_finance(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    brand, streamer, campaign = await settled_campaign(market)
    body = {"campaign_id": campaign["id"], "streamer_id": streamer.id, "impressions": 2_000, "reason": "bot traffic"}
    dispute = await market.ok("POST", "/v1/disputes", 201, headers=brand.headers, json=body)
    admin = await Console(client, keys.app_id).sign_in(await factory.admin(keys.org_id, Role.ADMIN))
    hidden = await admin.get("/queues/disputes")  # a plain admin is not finance: the API says no
    assert rows(hidden.text) == [] and "insufficient_role" in hidden.text
    refused = await admin.post(f"/queues/disputes/{dispute['id']}", {"decision": "refund", "reason": "agreed"})
    assert refused.status_code == 403
    finance = await Console(client, keys.app_id).sign_in(await factory.admin(keys.org_id, Role.FINANCE))
    listed = await finance.get("/queues/disputes")
    assert rows(listed.text) == [dispute["id"]] and "bot traffic" in listed.text
    no_reason = await finance.post(f"/queues/disputes/{dispute['id']}", {"decision": "refund", "reason": ""})
    assert no_reason.status_code == 422
    refunded = await finance.post(f"/queues/disputes/{dispute['id']}", {"decision": "refund", "reason": "agreed"})
    assert refunded.status_code == 200 and rows(refunded.text) == [] and "No dispute is open" in refunded.text
    decided = await market.ok("GET", f"/v1/disputes/{dispute['id']}", headers=brand.headers)
    assert decided["status"] == "refunded"
    assert (await market.wallet("brand", brand.id))["available"] == dispute["amount"]
