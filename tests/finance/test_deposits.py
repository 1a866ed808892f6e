"""Payment methods (sealed at rest, shown masked) and deposits through the manual bank-transfer provider:
nothing moves until finance staff record the transfer, and it is credited once however often they do."""

from __future__ import annotations

import asyncio

import httpx
import sqlalchemy as sa

from questline.kit.runtime import Runtime
from tests.conftest import Factory, problem
from tests.market.helpers import Market, count, idem, verify


async def test_payment_methods_are_sealed_at_rest_and_shown_masked(client: httpx.AsyncClient, factory: Factory,
                                                                   runtime: Runtime) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    streamer = await market.streamer()
    url = f"/v1/streamers/{streamer.id}/payment-methods"
    bank = await market.ok("POST", url, 201, headers=streamer.headers, json={
        "kind": "bank_account", "holder": "Ann Example", "iban": "DE89370400440532013000", "routing_code": "COBADEFF"})
    assert bank["masked"] == "Ann Example, IBAN DE89 **** 3000"
    paypal = await market.ok("POST", url, 201, headers=keys.server, json={"kind": "paypal",
                                                                          "email": "ann@stream.example"})
    assert paypal["masked"] == "a***@stream.example"
    token = await market.ok("POST", url, 201, headers=keys.server, json={"kind": "psp_token",
                                                                         "token": "tok_visa_4242424242"})
    assert token["masked"] == "tok_...4242"
    listed = await market.ok("GET", url, headers=streamer.headers)
    assert [m["id"] for m in listed] == sorted([bank["id"], paypal["id"], token["id"]])
    # At rest: sealed, not a trace of the number, the e-mail or the token.
    async with runtime.sessions() as session:
        rows = (await session.execute(sa.text("SELECT sealed, masked FROM treasury_payment_methods "
                                              "WHERE app_id = :a"), {"a": keys.app_id})).all()
    assert len(rows) == 3
    for sealed, _ in rows:
        assert sealed.startswith("v1:")
        assert not any(s in sealed for s in ("0532013000", "ann@stream", "4242424242"))
    # Bad input changes nothing; another streamer gets a 404; a brand token may not touch it.
    problem(await client.post(url, headers=keys.server, json={"kind": "bank_account", "holder": "Ann"}), 422,
            "invalid_payment_method")
    problem(await client.post(url, headers=keys.server, json={"kind": "bank_account", "holder": "Ann",
                                                              "iban": "not an iban"}), 422)
    problem(await client.post(url, headers=keys.server, json={"kind": "card", "number": "4242424242424242"}), 422)
    other = await market.streamer()
    problem(await client.get(url, headers=other.headers), 404)
    problem(await client.delete(f"{url}/{bank['id']}", headers=other.headers), 404)
    problem(await client.delete(f"/v1/streamers/{other.id}/payment-methods/{bank['id']}", headers=other.headers),
            404, "payment_method_not_found")
    assert await count(runtime, "treasury_payment_methods", keys.app_id) == 3
    assert (await client.delete(f"{url}/{bank['id']}", headers=streamer.headers)).status_code == 204
    assert [m["id"] for m in await market.ok("GET", url, headers=keys.server)] == sorted([paypal["id"], token["id"]])


async def test_manual_transfer_credits_once_when_finance_records_it(client: httpx.AsyncClient, factory: Factory,
                                                                   runtime: Runtime) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    admin = await factory.admin(keys.org_id)
    brand = await market.brand()
    deposit = await market.ok("POST", f"/v1/brands/{brand.id}/deposits", 201, headers=idem(brand.headers),
                              json={"provider": "manual", "currency": "USD", "amount": 25_000})
    assert deposit["status"] == "pending" and deposit["instructions"]["reference"] == deposit["provider_ref"]
    assert deposit["provider_ref"].startswith("QL-")
    assert await market.wallet("brand", brand.id) == {"available": 0, "held": 0, "pending": 0}
    confirm = f"/v1/finance/deposits/{deposit['id']}/confirm"
    # The brand cannot confirm its own deposit; what arrived must be what was asked for.
    problem(await client.post(confirm, headers=idem(brand.headers), json={"reference": "B-1", "amount": 25_000}),
            403)
    problem(await client.post(confirm, headers=idem(keys.server), json={"reference": "B-1", "amount": 25_001}),
            422, "amount_mismatch")
    assert await market.wallet("brand", brand.id) == {"available": 0, "held": 0, "pending": 0}
    done = await market.ok("POST", confirm, headers=idem(admin.headers(keys.app_id)),
                           json={"reference": "BANK-77", "amount": 25_000})
    assert done["status"] == "confirmed" and done["confirmation"] == "BANK-77" and done["transaction_id"]
    again = await market.ok("POST", confirm, headers=idem(keys.server), json={"reference": "BANK-77",
                                                                              "amount": 25_000})
    assert again["transaction_id"] == done["transaction_id"]
    problem(await client.post(confirm, headers=idem(keys.server), json={"reference": "BANK-78", "amount": 25_000}),
            409, "deposit_already_confirmed")
    problem(await client.post(f"/v1/finance/deposits/{deposit['id']}/fail", headers=idem(keys.server),
                              json={"reason": "never came"}), 409, "deposit_not_pending")
    assert await market.wallet("brand", brand.id) == {"available": 25_000, "held": 0, "pending": 0}

    # Twenty racing confirmations of one transfer: credited once.
    second = await market.ok("POST", f"/v1/brands/{brand.id}/deposits", 201, headers=idem(keys.server),
                             json={"provider": "manual", "currency": "USD", "amount": 5_000})
    replies = await asyncio.gather(*(
        client.post(f"/v1/finance/deposits/{second['id']}/confirm", headers=idem(keys.server),
                    json={"reference": "BANK-99", "amount": 5_000}) for _ in range(20)))
    assert all(r.status_code == 200 for r in replies), [r.text for r in replies if r.status_code != 200]
    assert len({r.json()["transaction_id"] for r in replies}) == 1
    assert await market.wallet("brand", brand.id) == {"available": 30_000, "held": 0, "pending": 0}

    # A transfer that never came: failed, nothing credited, and it cannot be confirmed after.
    third = await market.ok("POST", f"/v1/brands/{brand.id}/deposits", 201, headers=idem(keys.server),
                            json={"provider": "manual", "currency": "EUR", "amount": 700})
    failed = await market.ok("POST", f"/v1/finance/deposits/{third['id']}/fail", headers=idem(keys.server),
                             json={"reason": "never came"})
    assert failed["status"] == "failed" and failed["transaction_id"] is None
    problem(await client.post(f"/v1/finance/deposits/{third['id']}/confirm", headers=idem(keys.server),
                              json={"reference": "X", "amount": 700}), 409, "deposit_not_pending")
    listed = await market.ok("GET", f"/v1/brands/{brand.id}/deposits", headers=brand.headers)
    assert [d["status"] for d in listed["items"]] == ["failed", "confirmed", "confirmed"]
    problem(await client.post(f"/v1/brands/{brand.id}/deposits", headers=idem(keys.server),
                              json={"provider": "psp", "currency": "USD", "amount": 1}), 422,
            "provider_not_configured")
    assert await count(runtime, "treasury_deposits", keys.app_id) == 3
    assert await count(runtime, "ledger_transactions", keys.app_id) == 2
    assert await verify(runtime, keys.app_id) == []
