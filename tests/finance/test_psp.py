"""Deposits through a PSP stand-in over real HTTP that times out, answers 500 and delivers its webhooks
twice (and forged ones arrive): every deposit is credited once, and only on a signed confirmation."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import SecretStr

from questline.kit.clock import ManualClock
from questline.kit.runtime import Runtime
from questline.kit.settings import Settings
from tests.conftest import Factory, problem
from tests.finance import standin
from tests.finance.helpers import audit_actions, fund
from tests.market.helpers import Market, count, idem, verify


@pytest.fixture
async def psp() -> AsyncIterator[standin.StandIn]:
    async with standin.running() as stand_in:
        yield stand_in


@pytest.fixture
def settings(settings: Settings, psp: standin.StandIn) -> Settings:
    return settings.model_copy(update={
        "psp_url": psp.base, "psp_api_key": SecretStr(standin.API_KEY),
        "psp_webhook_secret": SecretStr(standin.WEBHOOK_SECRET), "psp_timeout_seconds": 0.5})


@pytest.fixture
def stand_in(psp: standin.StandIn, client: httpx.AsyncClient, clock: ManualClock) -> standin.StandIn:
    psp.deliver = client
    psp.now = lambda: clock.now().timestamp()
    return psp


async def test_psp_deposit_survives_timeouts_500s_and_double_webhooks(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime, stand_in: standin.StandIn) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    brand = await market.brand()
    url = f"/v1/brands/{brand.id}/deposits"
    body = {"provider": "psp", "currency": "USD", "amount": 12_000}

    # The provider answers 500: 503 provider_unavailable, nothing recorded.
    stand_in.mode = "error"
    problem(await client.post(url, headers=idem(brand.headers, "dep-1"), json=body), 503, "provider_unavailable")
    # It times out (after creating the intent): 503 again; the retry with the same key finds that same intent.
    stand_in.mode = "timeout"
    problem(await client.post(url, headers=idem(brand.headers, "dep-1"), json=body), 503, "provider_unavailable")
    assert await count(runtime, "treasury_deposits", keys.app_id) == 0
    assert len(stand_in.objects) == 1
    stand_in.mode = "ok"
    deposit = await market.ok("POST", url, 201, headers=idem(brand.headers, "dep-1"), json=body)
    assert deposit["status"] == "pending" and deposit["provider_ref"] in stand_in.objects
    assert len(stand_in.objects) == 1 and stand_in.calls == 3
    assert await market.wallet("brand", brand.id) == {"available": 0, "held": 0, "pending": 0}

    # A forged or unsigned webhook changes nothing.
    forged = await client.post("/v1/finance/webhooks/psp", json={
        "id": "evt_x", "type": "payment_intent.succeeded",
        "data": {"id": deposit["provider_ref"], "amount": 12_000, "currency": "USD",
                 "metadata": {"app_id": keys.app_id}}}, headers={"Psp-Signature": "t=1,v1=00"})
    problem(forged, 401, "invalid_signature")
    assert await market.wallet("brand", brand.id) == {"available": 0, "held": 0, "pending": 0}

    # The provider confirms, delivering its webhook twice at once, then once more later: credited once.
    replies = await stand_in.send(deposit["provider_ref"], "payment_intent.succeeded", times=2)
    assert sorted(r.json()["outcome"] for r in replies) == ["applied", "duplicate"], [r.text for r in replies]
    again = await stand_in.send(deposit["provider_ref"], "payment_intent.succeeded")
    assert again[0].status_code == 200 and again[0].json()["outcome"] == "duplicate"
    assert await market.wallet("brand", brand.id) == {"available": 12_000, "held": 0, "pending": 0}
    seen = await market.ok("GET", f"/v1/finance/deposits/{deposit['id']}", headers=keys.server)
    assert seen["status"] == "confirmed" and seen["transaction_id"]

    # A charged stored token; the PSP reports the payment failed: nothing is credited.
    method = await market.ok("POST", f"/v1/brands/{brand.id}/payment-methods", 201, headers=brand.headers,
                             json={"kind": "psp_token", "token": "tok_brand_card_1881"})
    charged = await market.ok("POST", url, 201, headers=idem(brand.headers),
                              json={**body, "amount": 900, "payment_method_id": method["id"]})
    assert stand_in.objects[charged["provider_ref"]]["payment_method"] == "tok_brand_card_1881"
    failed = await stand_in.send(charged["provider_ref"], "payment_intent.payment_failed", times=2,
                                 failure_message="card declined")
    assert sorted(r.json()["outcome"] for r in failed) == ["applied", "duplicate"]
    seen = await market.ok("GET", f"/v1/finance/deposits/{charged['id']}", headers=keys.server)
    assert (seen["status"], seen["failure_reason"]) == ("failed", "card declined")
    # An event about a payment we do not know (yet) is 404, so the provider delivers it again later.
    stand_in.objects["pi_unknown"] = {"id": "pi_unknown", "amount": 1, "currency": "USD",
                                      "metadata": {"app_id": keys.app_id}}
    (unknown,) = await stand_in.send("pi_unknown", "payment_intent.succeeded")
    problem(unknown, 404, "deposit_not_found")
    problem(await client.post(url, headers=idem(brand.headers), json={**body, "payment_method_id": method["id"],
                                                                       "provider": "manual"}), 422,
            "invalid_payment_method")
    assert await market.wallet("brand", brand.id) == {"available": 12_000, "held": 0, "pending": 0}
    assert await count(runtime, "ledger_transactions", keys.app_id) == 1
    assert await verify(runtime, keys.app_id) == []


async def test_psp_payouts_are_sent_once_and_settled_by_webhook(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime, stand_in: standin.StandIn) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    await market.ok("PUT", "/v1/finance/settings", headers=keys.server, json={"default_limits": {
        "min": 100, "max_per_request": 50_000, "per_day": 100_000, "per_month": 100_000,
        "approval_above": 20_000, "two_approvers_above": 40_000}})
    streamer = await market.streamer()
    await fund(runtime, keys.app_id, "streamer", streamer.id, 30_000)
    method = await market.ok("POST", f"/v1/streamers/{streamer.id}/payment-methods", 201, headers=streamer.headers,
                             json={"kind": "psp_token", "token": "acct_streamer_777"})
    url = f"/v1/streamers/{streamer.id}/withdrawals"

    # Under the threshold: sent at once; the provider pays it and says so twice.
    sent = await market.ok("POST", url, 201, headers=idem(streamer.headers),
                           json={"currency": "USD", "amount": 5_000, "payment_method_id": method["id"]})
    assert sent["status"] == "processing" and sent["provider"] == "psp"
    assert stand_in.objects[sent["provider_ref"]]["destination"] == "acct_streamer_777"
    replies = await stand_in.send(sent["provider_ref"], "payout.paid", times=2)
    assert sorted(r.json()["outcome"] for r in replies) == ["applied", "duplicate"], [r.text for r in replies]
    paid = await market.ok("GET", f"/v1/finance/withdrawals/{sent['id']}", headers=keys.server)
    assert paid["status"] == "paid" and paid["settle_transaction_id"]
    assert await market.wallet("streamer", streamer.id) == {"available": 25_000, "held": 0, "pending": 0}

    # The provider answers 500, then times out (after making the payout): the withdrawal stays approved and
    # held, with the error; sending again reaches the same payout (same key), never a second one.
    stand_in.mode = "error"
    second = await market.ok("POST", url, 201, headers=idem(streamer.headers),
                             json={"currency": "USD", "amount": 7_000, "payment_method_id": method["id"]})
    assert second["status"] == "approved" and "500" in second["last_error"]
    stand_in.mode = "timeout"
    retry = await market.ok("POST", f"/v1/finance/withdrawals/{second['id']}/send", headers=keys.server)
    assert retry["status"] == "approved" and retry["last_error"]
    stand_in.mode = "ok"
    retry = await market.ok("POST", f"/v1/finance/withdrawals/{second['id']}/send", headers=keys.server)
    assert retry["status"] == "processing"
    assert len([o for o in stand_in.objects.values() if o.get("metadata", {}).get("payout_id") == second["id"]]) == 1
    problem(await client.post(f"/v1/finance/withdrawals/{second['id']}/send", headers=keys.server), 409,
            "withdrawal_not_sendable")
    problem(await client.post(f"/v1/finance/withdrawals/{second['id']}/paid", headers=keys.server,
                              json={"reference": "x"}), 409, "withdrawal_not_manual")
    assert await market.wallet("streamer", streamer.id) == {"available": 18_000, "held": 7_000, "pending": 0}
    # The payout fails at the provider: released, once.
    failed = await stand_in.send(retry["provider_ref"], "payout.failed", times=2, failure_message="account closed")
    assert sorted(r.json()["outcome"] for r in failed) == ["applied", "duplicate"]
    seen = await market.ok("GET", f"/v1/finance/withdrawals/{second['id']}", headers=keys.server)
    assert (seen["status"], seen["failure_reason"]) == ("failed", "account closed")
    assert await market.wallet("streamer", streamer.id) == {"available": 25_000, "held": 0, "pending": 0}
    assert [a for a, _ in await audit_actions(runtime, keys.app_id, second["id"])] == [
        "withdrawal.requested", "withdrawal.sent", "withdrawal.failed"]
    assert await verify(runtime, keys.app_id) == []
