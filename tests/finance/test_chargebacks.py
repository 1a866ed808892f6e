"""Chargebacks from the PSP stand-in (signed webhooks over real HTTP, delivered twice at once and again
later): exactly one dispute per payment, the disputed money held as far as the brand still has it;
the provider's verdict releases the hold (won) or reverses the deposit, the rest a loss (lost)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import SecretStr

from questline.kit.clock import ManualClock
from questline.kit.runtime import Runtime
from questline.kit.settings import Settings
from questline.tenancy.schemas import Role
from tests.conftest import Factory, problem
from tests.finance import standin
from tests.market.helpers import Account, Market, count, idem, verify


@pytest.fixture
async def psp() -> AsyncIterator[standin.StandIn]:
    async with standin.running() as stand_in:
        yield stand_in


@pytest.fixture
def settings(settings: Settings, psp: standin.StandIn) -> Settings:
    return settings.model_copy(update={
        "psp_url": psp.base, "psp_api_key": SecretStr(standin.API_KEY),
        "psp_webhook_secret": SecretStr(standin.WEBHOOK_SECRET), "psp_timeout_seconds": 2.0})


@pytest.fixture
def stand_in(psp: standin.StandIn, client: httpx.AsyncClient, clock: ManualClock) -> standin.StandIn:
    psp.deliver = client
    psp.now = lambda: clock.now().timestamp()
    return psp


async def paid_deposit(market: Market, stand_in: standin.StandIn, brand: Account, amount: int) -> dict[str, object]:
    deposit = await market.ok("POST", f"/v1/brands/{brand.id}/deposits", 201, headers=idem(brand.headers),
                              json={"provider": "psp", "currency": "USD", "amount": amount})
    (paid,) = await stand_in.send(str(deposit["provider_ref"]), "payment_intent.succeeded")
    assert paid.json()["outcome"] == "applied", paid.text
    return dict(deposit)


async def test_a_chargeback_opens_one_dispute_and_holds_then_reverses(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime, stand_in: standin.StandIn) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    finance = await factory.admin(keys.org_id, Role.FINANCE)
    brand = await market.brand()
    deposit = await paid_deposit(market, stand_in, brand, 12_000)
    # The brand has put 5,000 of it into a campaign's budget: 7,000 available.
    await market.campaign(brand, budget=5_000, rate=500, fund=False)
    assert await market.wallet("brand", brand.id) == {"available": 7_000, "held": 5_000, "pending": 0}

    # Its closing arriving before its opening: 404, kept for nothing, so the provider delivers it again.
    ref = str(deposit["provider_ref"])
    (early,) = await stand_in.send(ref, "charge.dispute.closed", status="lost")
    problem(early, 404, "dispute_not_found")
    # The payer's bank disputes 10,000: delivered twice at once, then once more (another event id).
    replies = await stand_in.send(ref, "charge.dispute.created", times=2, amount=10_000, reason="fraudulent")
    assert sorted(r.json()["outcome"] for r in replies) == ["applied", "duplicate"], [r.text for r in replies]
    (again,) = await stand_in.send(ref, "charge.dispute.created", amount=10_000, reason="fraudulent")
    assert again.json()["outcome"] == "duplicate"
    assert await count(runtime, "finance_disputes", keys.app_id) == 1
    # What the brand still has (7,000 of the 10,000) is held; nothing else moves.
    assert await market.wallet("brand", brand.id) == {"available": 0, "held": 12_000, "pending": 0}
    listed = await market.ok("GET", "/v1/disputes", headers=finance.headers(keys.app_id), params={"status": "open"})
    (dispute,) = listed["items"]
    assert (dispute["kind"], dispute["subject_ref"], dispute["amount"]) == ("chargeback", deposit["id"], 10_000)
    assert dispute["decision"] == {"held": 7_000}
    seen = await market.ok("GET", f"/v1/disputes/{dispute['id']}", headers=brand.headers)
    assert [e["party"] for e in seen["evidence"]] == ["provider"]
    # Finance does not decide a chargeback: the provider does.
    problem(await client.post(f"/v1/disputes/{dispute['id']}/decision", headers=finance.headers(keys.app_id),
                              json={"verdict": "refund", "reason": "x"}), 409, "decided_by_provider")
    # An unsigned or forged one changes nothing; a bad amount is refused.
    forged = await client.post("/v1/finance/webhooks/psp", json={"id": "evt_f", "type": "charge.dispute.created",
                                                                  "data": {"id": ref, "amount": 1, "currency": "USD",
                                                                           "metadata": {"app_id": keys.app_id}}})
    problem(forged, 401, "invalid_signature")
    other = await paid_deposit(market, stand_in, brand, 3_000)
    (too_much,) = await stand_in.send(str(other["provider_ref"]), "charge.dispute.created", amount=3_001)
    problem(too_much, 422, "amount_mismatch")

    # The bank decides for the payer: the held 7,000 leaves to the outside; the 3,000 already spent is a loss.
    closed = await stand_in.send(ref, "charge.dispute.closed", times=2, status="lost")
    assert sorted(r.json()["outcome"] for r in closed) == ["applied", "duplicate"], [r.text for r in closed]
    done = await market.ok("GET", f"/v1/disputes/{dispute['id']}", headers=finance.headers(keys.app_id))
    assert (done["status"], done["refunded"], done["loss"]) == ("lost", 10_000, 3_000)
    assert await market.wallet("brand", brand.id) == {"available": 3_000, "held": 5_000, "pending": 0}
    assert await verify(runtime, keys.app_id) == []

    # A chargeback the platform wins: held, then released.
    (opened,) = await stand_in.send(str(other["provider_ref"]), "charge.dispute.created", amount=2_000)
    assert opened.json()["outcome"] == "applied"
    assert await market.wallet("brand", brand.id) == {"available": 1_000, "held": 7_000, "pending": 0}
    (won,) = await stand_in.send(str(other["provider_ref"]), "charge.dispute.closed", status="won")
    assert won.json()["outcome"] == "applied"
    assert await market.wallet("brand", brand.id) == {"available": 3_000, "held": 5_000, "pending": 0}
    statuses = sorted(d["status"] for d in (await market.ok("GET", "/v1/disputes", headers=brand.headers))["items"])
    assert statuses == ["lost", "won"]
    assert await verify(runtime, keys.app_id) == []
