"""Statements for a period (opening, every movement, closing) as JSON, CSV and PDF, reconciled to the
ledger to the minor unit; conversions at the rates finance staff set, through the exchange account."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import httpx

from questline.kit.clock import ManualClock
from questline.kit.runtime import Runtime
from tests.conftest import Factory, problem
from tests.market.helpers import Market, count, idem, verify


def day(clock: ManualClock, n: int) -> str:
    return (clock.now().replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=n)).isoformat()


async def test_conversion_at_the_rate_finance_set_records_it(client: httpx.AsyncClient, factory: Factory,
                                                             runtime: Runtime) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    admin = await factory.admin(keys.org_id)
    brand = await market.brand()
    await market.deposit(brand, 50_000)
    url = f"/v1/brands/{brand.id}/wallet/conversions"
    # No rate yet: refused, nothing moves.
    problem(await client.post(url, headers=idem(brand.headers), json={"from": "USD", "to": "EUR", "amount": 10_000}),
            422, "no_rate")
    # A brand may not set rates; a float rate is refused; finance staff (an admin) set one.
    problem(await client.put("/v1/finance/rates/USD/EUR", headers=brand.headers, json={"rate": "0.9"}), 403)
    problem(await client.put("/v1/finance/rates/USD/EUR", headers=keys.server, json={"rate": 0.92}), 422)
    problem(await client.put("/v1/finance/rates/USD/USD", headers=keys.server, json={"rate": "1"}), 422,
            "same_currency")
    rate = await market.ok("PUT", "/v1/finance/rates/USD/EUR", headers=admin.headers(keys.app_id),
                           json={"rate": "0.9215"})
    assert rate["rate"] == "0.9215" and rate["set_by"] == f"admin:{admin.admin_id}"
    await market.ok("PUT", "/v1/finance/rates/USD/JPY", headers=keys.server, json={"rate": "151.37"})

    txn = await market.ok("POST", url, 201, headers=idem(brand.headers, "fx-1"),
                          json={"from": "USD", "to": "EUR", "amount": 10_000})
    assert txn["kind"] == "conversion"
    assert txn["reference"]["rate"] == "0.9215" and txn["reference"]["received"] == 9_215
    moved = {(p["owner_kind"], p["owner_id"], p["currency"]): p["amount"] for p in txn["postings"]}
    assert moved == {("brand", brand.id, "USD"): -10_000, ("system", "exchange", "USD"): 10_000,
                     ("system", "exchange", "EUR"): -9_215, ("brand", brand.id, "EUR"): 9_215}
    # The same key again replays; JPY has no minor units: $100.00 at 151.37 is 15,137 yen.
    again = await market.ok("POST", url, 201, headers=idem(brand.headers, "fx-1"),
                            json={"from": "USD", "to": "EUR", "amount": 10_000})
    assert again["id"] == txn["id"]
    jpy = await market.ok("POST", url, 201, headers=idem(keys.server),
                          json={"from": "USD", "to": "JPY", "amount": 10_000})
    assert jpy["reference"]["received"] == 15_137
    # A rate change applies to later conversions only.
    await market.ok("PUT", "/v1/finance/rates/USD/EUR", headers=keys.server, json={"rate": "0.5"})
    later = await market.ok("POST", url, 201, headers=idem(keys.server),
                            json={"from": "USD", "to": "EUR", "amount": 333})
    assert later["reference"]["received"] == 166  # 166.5 rounds down; the half cent stays with the platform
    assert await market.wallet("brand", brand.id) == {"available": 50_000 - 20_333, "held": 0, "pending": 0}
    assert await market.wallet("brand", brand.id, "EUR") == {"available": 9_381, "held": 0, "pending": 0}
    assert await market.wallet("brand", brand.id, "JPY") == {"available": 15_137, "held": 0, "pending": 0}

    before = await count(runtime, "ledger_transactions", keys.app_id)
    problem(await client.post(url, headers=idem(keys.server), json={"from": "USD", "to": "EUR", "amount": 10**9}),
            409, "insufficient_funds")
    problem(await client.post(url, headers=idem(keys.server), json={"from": "USD", "to": "EUR", "amount": 1.5}), 422)
    problem(await client.post(url, headers=idem(keys.server), json={"from": "USD", "to": "JPY", "amount": 0}), 422)
    problem(await client.post(url, headers=idem(keys.server), json={"from": "USD", "to": "EUR", "amount": 1}),
            422, "amount_too_small")
    other = await market.brand()
    problem(await client.post(url, headers=idem(other.headers), json={"from": "USD", "to": "EUR", "amount": 100}),
            404)
    assert await count(runtime, "ledger_transactions", keys.app_id) == before
    rates = await market.ok("GET", "/v1/finance/rates", headers=brand.headers)
    assert {(r["base"], r["quote"], r["rate"]) for r in rates} == {("USD", "EUR", "0.5"), ("USD", "JPY", "151.37")}
    assert await verify(runtime, keys.app_id) == []


async def test_statement_reconciles_to_the_ledger_in_every_format(client: httpx.AsyncClient, factory: Factory,
                                                                  runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    brand = await market.brand()
    start = day(clock, 0)
    await market.deposit(brand, 40_000)                       # day 0
    clock.advance(days=1)
    await market.ok("PUT", "/v1/finance/rates/USD/EUR", headers=keys.server, json={"rate": "0.9"})
    await market.ok("POST", f"/v1/brands/{brand.id}/wallet/conversions", 201, headers=idem(keys.server),
                    json={"from": "USD", "to": "EUR", "amount": 1_001})   # day 1
    campaign = await market.campaign(brand, budget=12_345, by_server=True)  # day 1: deposit and hold
    clock.advance(days=1)
    await market.deposit(brand, 7)                            # day 2

    base = f"/v1/brands/{brand.id}/wallet/statement"
    period = {"currency": "USD", "from": day(clock, -1), "to": day(clock, 0)}   # day 1 only
    st = await market.ok("GET", base, headers=keys.server, params=period)
    assert st["opening_balance"] == 40_000
    assert [(m["kind"], m["amount"]) for m in st["movements"]] == [
        ("conversion", -1_001), ("deposit", 12_345), ("wallet_hold", -12_345)]
    assert st["total_in"] == 12_345 and st["total_out"] == 13_346
    assert st["closing_balance"] == 40_000 - 1_001 == st["movements"][-1]["balance"]
    # To now: the closing balance is the wallet's, to the minor unit; pieces add up to the whole.
    whole = await market.ok("GET", base, headers=keys.server,
                            params={"currency": "USD", "from": start, "to": day(clock, 1)})
    assert whole["opening_balance"] == 0
    assert whole["closing_balance"] == (await market.wallet("brand", brand.id))["available"] == 40_000 - 1_001 + 7
    held = await market.ok("GET", base, headers=keys.server, params={
        "currency": "USD", "from": start, "to": day(clock, 1), "sub": f"hold:{campaign['id']}"})
    assert held["closing_balance"] == (await market.wallet("brand", brand.id))["held"] == 12_345
    eur = await market.ok("GET", base, headers=keys.server, params={**period, "currency": "EUR"})
    assert (eur["opening_balance"], eur["closing_balance"], eur["exponent"]) == (0, 900, 2)

    raw = await client.get(base, headers=keys.server, params={**period, "format": "csv"})
    assert raw.status_code == 200 and raw.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(raw.text)))
    assert rows[0]["kind"] == "opening_balance" and rows[0]["balance"] == "400.00"
    assert [r["amount_minor"] for r in rows[1:-1]] == ["-1001", "12345", "-12345"]
    assert rows[1]["amount"] == "-10.01"
    assert rows[-1]["kind"] == "closing_balance" and rows[-1]["balance_minor"] == "38999"
    pdf = await client.get(base, headers=keys.server, params={**period, "format": "pdf"})
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-") and b"%%EOF" in pdf.content[-32:]

    # The brand reads its own; another brand's token gets a 404; the platform's revenue has its own.
    await market.sign_in(brand)
    mine = await market.ok("GET", base, headers=brand.headers, params=period)
    assert mine["closing_balance"] == 38_999
    other = await market.brand()
    problem(await client.get(base, headers=other.headers, params=period), 404)
    platform = await market.ok("GET", "/v1/platform/wallet/statement", headers=keys.server, params=period)
    assert platform["owner_id"] == "revenue" and platform["movements"] == []

    # Bad periods and formats answer 422 and change nothing.
    problem(await client.get(base, headers=keys.server, params={**period, "to": period["from"]}), 422,
            "invalid_period")
    problem(await client.get(base, headers=keys.server, params={**period, "from": "2026-03-10T00:00:00"}), 422,
            "invalid_period")
    problem(await client.get(base, headers=keys.server, params={
        **period, "from": "9999-12-31T20:00:00-14:00", "to": "9999-12-31T21:00:00-14:00"}), 422, "invalid_period")
    problem(await client.get(base, headers=keys.server, params={**period, "currency": "XYZ"}), 422,
            "unknown_currency")
    problem(await client.get(base, headers=keys.server, params={**period, "format": "xls"}), 422)
    problem(await client.get(base, headers=keys.server, params={"currency": "USD"}), 422)
    assert await verify(runtime, keys.app_id) == []
